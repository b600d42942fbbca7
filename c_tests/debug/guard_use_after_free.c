/* Seeded bug: writes into a large block after freeing it; freed guarded
 * blocks are made inaccessible, so the write faults and is explained.
 * Arguments (optional): the block's length (default 300000) and how many
 * small blocks to allocate and free between the free and the write
 * (default 0): a freed large block stays in the quarantine, and explained,
 * as long as small ones do. */
#include <stdlib.h>

#include "common.h"

static NOINLINE void scribble(char *p) {
    p[1000] = 1;
    KEEP();
}

int main(int argc, char **argv) {
    size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) : 300000;
    long between = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    char *p = malloc(len);
    if (!p) return 1;
    p[0] = 0;
    free(p);
    for (long i = 0; i < between; i++) {
        char *q = malloc(64 + (size_t)(i % 256));
        if (q) q[0] = 1;
        free(q);
    }
    scribble(p);
    return 0;
}
