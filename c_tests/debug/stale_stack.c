/* Seeded bug: a leaked block's address survives in dead stack (below the
 * caller, and in the holes of the frames exit() runs in), never scrubbed.
 *
 *   stale_stack main     leaked in a deep call from main, which returns
 *   stale_stack atexit   leaked by the program's own atexit handler, after
 *                        a deep call there spread its address
 *   stale_stack exit     leaked in a deep call; main then calls exit()
 *
 * Each mode leaks one 777-byte block from lose_block. */
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void *volatile keep;

/* Leaves many copies of `p` in its frame, then returns. */
static NOINLINE void spread(void *p, int depth) {
    void *volatile copies[64];
    for (int i = 0; i < 64; i++) copies[i] = p;
    if (depth > 0) spread(p, depth - 1);
    __asm__ volatile("" : : "r"(copies) : "memory");
}

static NOINLINE void lose_block(void) {
    void *p = malloc(777);
    if (p) memset(p, 1, 777);
    keep = p;
    spread(p, 8);
    keep = NULL;
}

static void leak_at_exit(void) { lose_block(); }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "main";
    if (!strcmp(mode, "atexit")) {
        atexit(leak_at_exit);
        return 0;
    }
    lose_block();
    if (!strcmp(mode, "exit")) exit(0);
    return 0;
}
