/* Seeded bug: writes into a block after freeing it; found when the freed
 * block is checked (at exit at the latest). */
#include <stdlib.h>

#include "common.h"

static NOINLINE void use_after(char *p) {
    p[5] = 42;
    KEEP();
}

int main(void) {
    char *p = malloc(64);
    free(p);
    use_after(p);
    return 0;
}
