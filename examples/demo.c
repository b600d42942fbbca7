/*
 * demo: a short tour of liballoc, printing what each allocator does.
 *
 *   make demo
 *
 * Every allocator is an la_allocator value {ptr, vtable}; the helpers
 * (la_alloc, la_realloc, la_free, la_dupez, LA_CREATE ...) work with any of
 * them, so code written against la_allocator does not care which one it gets.
 * The program checks what it shows and exits non-zero if anything is off.
 */
#include <liballoc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "demo: unexpected: %s\n", what);
        exit(1);
    }
}

static void section(const char *title) { printf("\n== %s\n", title); }

/* Code that only knows la_allocator: builds "a, b, c, ..." of n words. */
static char *join_words(la_allocator a, size_t n, size_t *out_len) {
    static const char *words[] = {"alpha", "beta", "gamma", "delta"};
    size_t len = 0, cap = 8;
    char *buf = la_alloc(a, 1, cap, 1);
    if (buf == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *w = words[i % 4];
        size_t need = len + strlen(w) + 2;
        if (need > cap) {
            char *grown = la_realloc(a, buf, 1, cap, need * 2, 1);
            if (grown == NULL) { /* the old buffer is still ours */
                la_free(a, buf, 1, cap, 1);
                return NULL;
            }
            buf = grown;
            cap = need * 2;
        }
        len += (size_t)sprintf(buf + len, "%s%s", i ? ", " : "", w);
    }
    char *exact = la_realloc(a, buf, 1, cap, len + 1, 1); /* shrink to fit */
    if (exact == NULL) {
        la_free(a, buf, 1, cap, 1);
        return NULL;
    }
    *out_len = len + 1;
    return exact;
}

static void demo_page(void) {
    section("page allocator: every block is its own mmap");
    la_allocator page = la_page_allocator();
    unsigned char *p = la_alloc(page, 1, 10000, 4096);
    expect(p != NULL && ((uintptr_t)p & 4095) == 0, "page block is page-aligned");
    memset(p, 0xab, 10000);
    printf("10000 bytes at %p (page-aligned: %s)\n", (void *)p,
           ((uintptr_t)p & 4095) == 0 ? "yes" : "no");
    unsigned char *q = la_remap(page, p, 1, 10000, 1 << 20, 4096);
    if (q != NULL) {
        printf("remap to 1 MiB: %s (mremap, no copy), first byte still %#x\n",
               q == p ? "same address" : "moved", q[0]);
        expect(q[9999] == 0xab, "remap keeps the contents");
        p = q;
        la_free(page, p, 1, 1 << 20, 4096);
    } else {
        la_free(page, p, 1, 10000, 4096);
    }
}

static void demo_c(void) {
    section("c allocator: the C library's malloc behind the interface");
    la_allocator c = la_c_allocator();
    double *v = LA_ALLOC(c, double, 100);
    expect(v != NULL, "c alloc");
    for (int i = 0; i < 100; i++) v[i] = i * 0.5;
    bool grew = la_resize(c, v, sizeof(double), 100, 101, _Alignof(double));
    printf("100 doubles at %p; grow in place to 101: %s\n", (void *)v,
           grew ? "yes (malloc had room)" : "no (caller must move)");
    LA_FREE(c, v, grew ? 101 : 100);
    void *big = la_alloc(c, 1, 100, 256);
    expect(big != NULL && ((uintptr_t)big & 255) == 0, "over-aligned c block");
    printf("100 bytes aligned to 256 at %p (posix_memalign)\n", big);
    la_free(c, big, 1, 100, 256);
}

static void demo_smp(void) {
    section("smp allocator: the fast general-purpose allocator");
    la_allocator smp = la_smp_allocator();
    size_t len = 0;
    char *s = join_words(smp, 10, &len);
    expect(s != NULL, "smp join");
    printf("join_words(smp, 10): \"%s\" (%zu bytes)\n", s, len);
    la_free(smp, s, 1, len, 1);
    enum { N = 1000 };
    void *blocks[N];
    for (int i = 0; i < N; i++) blocks[i] = la_alloc(smp, 1, 16 + (size_t)(i % 7) * 16, 16);
    for (int i = 0; i < N; i++) {
        expect(blocks[i] != NULL, "smp small block");
        la_free(smp, blocks[i], 1, 16 + (size_t)(i % 7) * 16, 16);
    }
    la_smp_collect();
    printf("%d small blocks allocated and freed; la_smp_collect() returned the free pages\n", N);
}

static void demo_fixed_buffer(void) {
    section("fixed buffer: bump allocation inside memory you own (no syscalls)");
    static unsigned char storage[256];
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, storage, sizeof storage);
    la_allocator a = la_fixed_buffer_allocator(&fb);
    size_t len = 0;
    char *s = join_words(a, 4, &len);
    expect(s != NULL, "join in a fixed buffer");
    printf("join_words(fixed, 4): \"%s\" -- inside the buffer: %s, %zu of %zu bytes used\n", s,
           la_fixed_buffer_owns(&fb, s, len) ? "yes" : "no", fb.end_index, fb.len);
    char *more = join_words(a, 40, &len);
    printf("join_words(fixed, 40): %s (the buffer is full; nothing leaked)\n",
           more ? "fits?!" : "NULL, out of memory");
    expect(more == NULL, "fixed buffer runs out");
    la_fixed_buffer_reset(&fb);
    printf("la_fixed_buffer_reset: %zu bytes used, the whole buffer is free again\n", fb.end_index);
}

static void demo_arena(void) {
    section("arena: many allocations, one free (over the page allocator)");
    la_arena *arena = la_arena_create(la_page_allocator());
    expect(arena != NULL, "arena create");
    la_allocator a = la_arena_allocator(arena);
    for (int i = 0; i < 1000; i++) {
        int *v = LA_ALLOC(a, int, 16);
        expect(v != NULL, "arena alloc");
        v[15] = i; /* no la_free needed: the arena frees everything at once */
    }
    printf("1000 arrays of 16 ints, never freed one by one; capacity %zu bytes\n",
           la_arena_query_capacity(arena));
    la_arena_reset(arena, LA_ARENA_RETAIN_CAPACITY, 0);
    printf("reset(RETAIN_CAPACITY): everything freed, %zu bytes kept for the next round\n",
           la_arena_query_capacity(arena));
    la_arena_reset(arena, LA_ARENA_RETAIN_WITH_LIMIT, 4096);
    printf("reset(RETAIN_WITH_LIMIT, 4096): %zu bytes kept\n", la_arena_query_capacity(arena));
    la_arena_reset(arena, LA_ARENA_FREE_ALL, 0);
    printf("reset(FREE_ALL): %zu bytes kept\n", la_arena_query_capacity(arena));
    la_arena_destroy(arena);
}

static void demo_failing(void) {
    section("failing allocator: inject an out-of-memory to test error paths");
    la_failing *f = la_failing_create(la_c_allocator(), 2, SIZE_MAX); /* 3rd alloc fails */
    expect(f != NULL, "failing create");
    la_allocator a = la_failing_allocator(f);
    char *copies[3];
    for (int i = 0; i < 3; i++) {
        copies[i] = la_dupez(a, "copy", 4);
        printf("allocation %d: %s\n", i + 1, copies[i] ? "ok" : "NULL (injected failure)");
    }
    expect(copies[0] && copies[1] && !copies[2], "failure injected at index 2");
    for (int i = 0; i < 2; i++) la_free(a, copies[i], 1, 5, 1);
    la_failing_stats st;
    la_failing_get_stats(f, &st);
    printf("stats: %zu allocations, %zu frees, %zu bytes allocated, %zu freed, failure seen: %s\n",
           st.allocations, st.deallocations, st.allocated_bytes, st.freed_bytes,
           st.has_induced_failure ? "yes" : "no");
    la_failing_destroy(f);
    la_allocator never = la_always_failing_allocator();
    printf("la_always_failing_allocator(): la_alloc -> %s\n",
           la_alloc(never, 1, 1, 1) ? "a block?!" : "NULL, always");
}

static void demo_helpers(void) {
    section("helpers: typed allocation on any allocator");
    la_allocator a = la_c_allocator();

    typedef struct {
        int id;
        double score;
    } player;
    player *pl = LA_CREATE(a, player); /* sizeof/_Alignof taken for you */
    expect(pl != NULL, "LA_CREATE");
    pl->id = 7;
    pl->score = 99.5;
    printf("LA_CREATE(a, player) -> id %d, score %.1f\n", pl->id, pl->score);
    LA_DESTROY(a, pl);

    char *name = la_dupez(a, "liballoc demo", 8);
    expect(name != NULL && strcmp(name, "liballoc") == 0, "la_dupez");
    printf("la_dupez(\"liballoc demo\", 8) -> \"%s\" (NUL added)\n", name);
    la_free(a, name, 1, 9, 1);

    int *none = LA_ALLOC(a, int, 0);
    printf("LA_ALLOC(a, int, 0) -> %p: non-NULL, aligned, never dereferenced\n", (void *)none);
    LA_FREE(a, none, 0); /* freeing zero bytes does nothing */

    void *huge = la_alloc(a, 4, SIZE_MAX / 2, 4);
    printf("la_alloc(a, 4, SIZE_MAX/2, 4) -> %s (size overflow is out of memory)\n",
           huge ? "a block?!" : "NULL");
    expect(huge == NULL, "overflow gives NULL");
    printf("la_alloc(a, 1, 10, 3) -> %s (alignment must be a power of two)\n",
           la_alloc(a, 1, 10, 3) ? "a block?!" : "NULL");

    char sentinel = '\0';
    char *buf = la_alloc_sentinel(a, 1, 5, 1, &sentinel);
    expect(buf != NULL, "la_alloc_sentinel");
    memcpy(buf, "zig!!", 5);
    printf("la_alloc_sentinel(5 chars, '\\0') -> \"%s\"\n", buf);
    la_free(a, buf, 1, 6, 1);
}

int main(void) {
    printf("liballoc %s: Zig's allocator interface for C\n", la_version());
    demo_page();
    demo_c();
    demo_smp();
    demo_fixed_buffer();
    demo_arena();
    demo_failing();
    demo_helpers();
    printf("\ndone.\n");
    return 0;
}
