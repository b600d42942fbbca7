/* Seeded bug: three 32-byte blocks from leaky_alloc are never freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static NOINLINE char *leaky_alloc(int i) {
    char *p = malloc(32);
    if (p) snprintf(p, 32, "leaked %d", i);
    KEEP();
    return p;
}

static NOINLINE void run(void) {
    for (volatile int i = 0; i < 3; i++) {
        char *p = leaky_alloc(i);
        printf("%s\n", p);
    }
    char *q = malloc(100); /* freed: not a leak */
    free(q);
}

int main(void) {
    run();
    clobber_stack();
    return 0;
}
