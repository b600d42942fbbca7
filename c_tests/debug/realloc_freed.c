/* Seeded bug: realloc() of a block that was already freed. */
#include <stdlib.h>

#include "common.h"

static NOINLINE char *grow(char *p) {
    char *q = realloc(p, 200);
    KEEP();
    return q;
}

int main(void) {
    char *p = malloc(20);
    free(p);
    p = grow(p);
    free(p);
    return 0;
}
