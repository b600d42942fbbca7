/* Seeded bug: reads byte 0 of a malloc(0) block (which has no bytes) and
 * never frees it, so no check at free time could see it: the block sits
 * right at a guard page, so the read itself faults and is explained. */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* The read is the seeded bug: GCC sees it as of uninitialised memory. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

static NOINLINE int peek(const char *p) {
    int v = p[0];
    KEEP();
    return v;
}

int main(void) {
    char *p = malloc(0);
    if (p == NULL) return 1;
    printf("%d\n", peek(p));
    return 0;
}
