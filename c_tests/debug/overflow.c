/* Seeded bug: writes one byte past the end of a 10-byte block. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static NOINLINE void fill(char *p, size_t n) {
    memset(p, 'x', n + 1); /* off by one */
    KEEP();
}

int main(void) {
    char *p = malloc(10);
    fill(p, 10);
    free(p);
    return 0;
}
