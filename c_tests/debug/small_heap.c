/* Clean program for a process with little address space (run under
 * `ulimit -v`): malloc(100), then enough small blocks to fill a record
 * region's first reservation. Exits 1 when an allocation fails. */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define N 200000

static void *blocks[N];

int main(void) {
    char *p = malloc(100);
    if (p == NULL) {
        fputs("malloc(100) failed\n", stderr);
        return 1;
    }
    p[99] = 1;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(16);
        if (blocks[i] == NULL) {
            fprintf(stderr, "malloc(16) number %d failed\n", i);
            return 1;
        }
    }
    for (int i = 0; i < N; i++) free(blocks[i]);
    free(p);
    puts("small heap ok");
    return 0;
}
