/* Seeded bug: of two binary trees (depth 3, 7 nodes of 32 bytes, each
 * child held through a pointer into its middle), one stays reachable from
 * a global and one is dropped: 1 direct leak of 32 bytes and 6 indirect
 * ones of 32. A 64-byte block that points only to itself leaks as well:
 * pointers to itself do not make a block indirect, so it is direct. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

struct tree {
    long key;
    char *left;  /* &child->key + 8: interior */
    char *right; /* likewise */
    long spare;
};

static struct tree *kept;

static NOINLINE struct tree *grow(int depth) {
    struct tree *t = malloc(sizeof *t);
    if (!t) exit(1);
    memset(t, 0, sizeof *t);
    t->key = depth;
    if (depth > 1) {
        t->left = (char *)grow(depth - 1) + 8;
        t->right = (char *)grow(depth - 1) + 8;
    }
    KEEP();
    return t;
}

static NOINLINE void self_loop(void) {
    void **p = malloc(64);
    if (!p) exit(1);
    memset(p, 0, 64);
    p[0] = p;
    p[3] = p + 2;
    KEEP();
}

int main(void) {
    kept = grow(3);
    grow(3);
    self_loop();
    clobber_stack();
    return kept->key == 3 ? 0 : 1;
}
