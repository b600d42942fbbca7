/* Seeded bug: writes byte 0 of a malloc(0) block (which has no bytes). */
#include <stdlib.h>

#include "common.h"

static NOINLINE void poke(char *p) {
    p[0] = 'x';
    KEEP();
}

int main(void) {
    char *p = malloc(0);
    if (p == NULL) return 1;
    poke(p);
    free(p);
    return 0;
}
