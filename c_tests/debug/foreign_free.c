/* Seeded bug: free() of a pointer that malloc never returned. */
#include <stdlib.h>

#include "common.h"

static char not_heap[64];

static char *volatile hidden = not_heap + 16; /* the compiler cannot tell */

static NOINLINE void release_static(void) {
    free(hidden);
    KEEP();
}

int main(void) {
    release_static();
    return 0;
}
