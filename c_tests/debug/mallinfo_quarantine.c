/* Clean program: freed blocks that the debug mode holds back (its
 * quarantine) count as free in mallinfo/mallinfo2, not in use. Exits 1,
 * naming the figure, when they do not. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* mallinfo is deprecated (int fields), and still checked here. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#define N 64
#define LEN 1000

static void *blocks[N];

int main(void) {
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(LEN);
        if (blocks[i] == NULL) return 1;
    }
    struct mallinfo2 a2 = mallinfo2();
    struct mallinfo a = mallinfo();
    for (int i = 0; i < N; i++) free(blocks[i]);
    struct mallinfo2 b2 = mallinfo2();
    struct mallinfo b = mallinfo();
    int bad = 0;
    if (a2.uordblks < b2.uordblks + (size_t)N * LEN) {
        fprintf(stderr, "mallinfo2: in use %zu before the frees, %zu after\n", a2.uordblks,
                b2.uordblks);
        bad = 1;
    }
    if (b2.fordblks < a2.fordblks + (size_t)N * LEN) {
        fprintf(stderr, "mallinfo2: free %zu before the frees, %zu after\n", a2.fordblks,
                b2.fordblks);
        bad = 1;
    }
    if (a.uordblks < b.uordblks + N * LEN) {
        fprintf(stderr, "mallinfo: in use %d before the frees, %d after\n", a.uordblks,
                b.uordblks);
        bad = 1;
    }
    if (b.fordblks < a.fordblks + N * LEN) {
        fprintf(stderr, "mallinfo: free %d before the frees, %d after\n", a.fordblks, b.fordblks);
        bad = 1;
    }
    if (!bad) puts("mallinfo ok");
    return bad;
}
