/* Seeded bug: blocks whose last pointer the program dropped are leaks,
 * whatever else of the allocator's still holds their address.
 *
 *   leak_roots overwrite   three 1000-byte mallocs kept one after the other
 *                          in a single global, which is then cleared
 *                          (from overwrite_three, not make_block)
 *   leak_roots calloc      the same with calloc (from make_block)
 *   leak_roots memalign    the same with posix_memalign (64-byte aligned)
 *   leak_roots big         the same with 3 MiB mallocs (guarded mappings)
 *   leak_roots freed       each block's only pointer sits in a holder block
 *                          that the program frees (small and large holders)
 *
 * Every mode leaks exactly 3 blocks of 1000 bytes (3 MiB for `big`) from
 * make_block. The stack is deliberately not scrubbed before exit. */
#define _POSIX_C_SOURCE 200112L
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define BIG (3u << 20)

static void *volatile keep;

static NOINLINE void *make_block(int how) {
    void *p = NULL;
    switch (how) {
    case 0: p = malloc(1000); break;
    case 1: p = calloc(1, 1000); break;
    case 2:
        if (posix_memalign(&p, 64, 1000) != 0) p = NULL;
        break;
    case 3: p = malloc(BIG); break;
    }
    if (p) memset(p, 0x5a, how == 3 ? 64 : 1000);
    KEEP();
    return p;
}

/* The plainest form: each new block replaces the last in the global. */
static NOINLINE void overwrite_three(void) {
    for (int i = 0; i < 3; i++) keep = malloc(1000);
}

/* The pointer to `b` lives only in a holder of `holder_len` bytes, which
 * is then freed. */
static NOINLINE void hide_in_freed(void *b, size_t holder_len) {
    void **h = malloc(holder_len);
    if (!h) return;
    memset(h, 0, holder_len);
    h[holder_len / sizeof(void *) - 1] = b;
    keep = h;
    keep = NULL;
    free(h);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "overwrite";
    if (!strcmp(mode, "freed")) {
        static const size_t holders[3] = {64, 16384, 300000};
        for (int i = 0; i < 3; i++) hide_in_freed(make_block(0), holders[i]);
        return 0;
    }
    if (!strcmp(mode, "overwrite")) {
        overwrite_three();
        keep = NULL;
        return 0;
    }
    int how = !strcmp(mode, "calloc") ? 1 : !strcmp(mode, "memalign") ? 2 : !strcmp(mode, "big") ? 3 : 0;
    for (volatile int i = 0; i < 3; i++) keep = make_block(how);
    keep = NULL;
    return 0;
}
