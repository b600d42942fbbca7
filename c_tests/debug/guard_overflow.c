/* Seeded bug: reads one byte past the end of a large (guarded) block; the
 * block ends at a guard page, so the access faults and is explained. */
#include <stdlib.h>

#include "common.h"

enum { LEN = 200000 }; /* above the 128 KiB guard-page threshold */

static NOINLINE int read_past(const char *p, size_t n) {
    int v = p[n];
    KEEP();
    return v;
}

int main(void) {
    char *p = malloc(LEN);
    for (int i = 0; i < LEN; i++) p[i] = (char)i;
    int v = read_past(p, LEN);
    free(p);
    return v;
}
