/* Seeded bug: free() of a pointer 8 bytes into a block. */
#include <stdlib.h>

#include "common.h"

static volatile size_t offset = 8; /* hidden from the compiler's warning */

static NOINLINE void release_middle(char *p) {
    free(p + offset);
    KEEP();
}

int main(void) {
    char *p = malloc(64);
    release_middle(p);
    free(p);
    return 0;
}
