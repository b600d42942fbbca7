/* Seeded bug: writes into a large block after freeing it; freed guarded
 * blocks are made inaccessible, so the write faults and is explained. */
#include <stdlib.h>

#include "common.h"

enum { LEN = 300000 };

static NOINLINE void scribble(char *p) {
    p[1000] = 1;
    KEEP();
}

int main(void) {
    char *p = malloc(LEN);
    p[0] = 0;
    free(p);
    scribble(p);
    return 0;
}
