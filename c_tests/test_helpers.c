/*
 * test_helpers: the edge cases of the C helpers (src/c/helpers.c).
 *
 * Most checks run through a recording allocator written here in C: it
 * forwards to a child allocator, remembers the last call (its kind, lengths,
 * alignment and return address) and can be told to refuse alloc, resize or
 * remap. That shows what the helpers hand to the vtable -- or that they do
 * not call it at all (zero bytes, overflow, bad alignment). The failure
 * paths are also run on the library's failing and fixed-buffer allocators,
 * and the ordinary paths on every core allocator.
 *
 * The return-address checks call each helper from a small non-inlined
 * function of this file and expect the recorded ret_addr to lie inside that
 * function (and, by dladdr, inside this program rather than the library).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "liballoc.h"

/* ---- the recording allocator ---- */

enum call_kind { CALL_NONE, CALL_ALLOC, CALL_RESIZE, CALL_REMAP, CALL_FREE };

typedef struct {
    la_allocator child;
    unsigned calls[5];     /* per call_kind */
    enum call_kind last;   /* kind of the last call */
    size_t last_len;       /* len of the last call */
    size_t last_new_len;   /* new_len of the last resize/remap */
    la_alignment last_align;
    uintptr_t last_ret;    /* ret_addr of the last call */
    bool fail_alloc, fail_resize, fail_remap;
} recorder;

static void rec_note(recorder *r, enum call_kind k, size_t len, la_alignment a, uintptr_t ra) {
    r->calls[k]++;
    r->last = k;
    r->last_len = len;
    r->last_align = a;
    r->last_ret = ra;
}

static void *rec_alloc(void *ctx, size_t len, la_alignment a, uintptr_t ra) {
    recorder *r = ctx;
    rec_note(r, CALL_ALLOC, len, a, ra);
    return r->fail_alloc ? NULL : la_raw_alloc(r->child, len, a, ra);
}

static bool rec_resize(void *ctx, void *mem, size_t len, la_alignment a, size_t new_len,
                       uintptr_t ra) {
    recorder *r = ctx;
    rec_note(r, CALL_RESIZE, len, a, ra);
    r->last_new_len = new_len;
    return r->fail_resize ? false : la_raw_resize(r->child, mem, len, a, new_len, ra);
}

static void *rec_remap(void *ctx, void *mem, size_t len, la_alignment a, size_t new_len,
                       uintptr_t ra) {
    recorder *r = ctx;
    rec_note(r, CALL_REMAP, len, a, ra);
    r->last_new_len = new_len;
    return r->fail_remap ? NULL : la_raw_remap(r->child, mem, len, a, new_len, ra);
}

static void rec_free(void *ctx, void *mem, size_t len, la_alignment a, uintptr_t ra) {
    recorder *r = ctx;
    rec_note(r, CALL_FREE, len, a, ra);
    la_raw_free(r->child, mem, len, a, ra);
}

static const la_vtable rec_vtable = {rec_alloc, rec_resize, rec_remap, rec_free};

static la_allocator rec_init(recorder *r, la_allocator child) {
    memset(r, 0, sizeof *r);
    r->child = child;
    return (la_allocator){r, &rec_vtable};
}

static unsigned rec_total(const recorder *r) {
    unsigned t = 0;
    for (int i = 0; i < 5; i++) t += r->calls[i];
    return t;
}

static bool aligned(const void *p, size_t align) { return ((uintptr_t)p & (align - 1)) == 0; }

/* The dangling pointer Zig uses for zero-byte blocks: the highest aligned address. */
static void *zig_dangling(size_t align) { return (void *)(UINTPTR_MAX & ~(uintptr_t)(align - 1)); }

static void fill(void *p, size_t n, unsigned char seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(seed + i * 7);
}

static bool filled(const void *p, size_t n, unsigned char seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed + i * 7)) return false;
    return true;
}

/* ---- zero-byte requests ---- */

static void test_zero_size(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    static const size_t aligns[] = {1, 2, 4, 8, 16, 64, 4096};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t al = aligns[i];
        void *p = la_alloc(a, 4, 0, al);
        CHECK(p != NULL);
        CHECK(aligned(p, al));
        CHECK(p == zig_dangling(al));
        la_free(a, p, 4, 0, al); /* no-op */

        void *q = la_create(a, 0, al);
        CHECK(q != NULL && aligned(q, al));
        la_destroy(a, q, 0, al); /* no-op */

        void *z = la_alloc(a, 0, 1000, al); /* zero-size elements */
        CHECK(z != NULL && aligned(z, al));
        la_free(a, z, 0, 1000, al);
    }
    void *d = la_dupe(a, NULL, 0);
    CHECK(d != NULL);
    la_free(a, d, 1, 0, 1);
    CHECK_EQ_SZ(rec_total(&r), 0); /* nothing reached the vtable */
}

/* ---- elem_size * n overflow ---- */

static void test_overflow(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    CHECK(la_alloc(a, 4, SIZE_MAX / 2, 4) == NULL);
    CHECK(la_alloc(a, 2, SIZE_MAX / 2 + 1, 2) == NULL);
    CHECK(la_alloc(a, SIZE_MAX, SIZE_MAX, 1) == NULL);
    CHECK(la_alloc_sentinel(a, 1, SIZE_MAX, 1, "") == NULL);
    CHECK(la_alloc_sentinel(a, 8, SIZE_MAX / 8, 8, "\0\0\0\0\0\0\0") == NULL);
    unsigned before = r.calls[CALL_ALLOC];
    CHECK(la_alloc(a, 4, SIZE_MAX / 2, 4) == NULL);
    CHECK_EQ_SZ(r.calls[CALL_ALLOC], before); /* overflow never reaches alloc */

    /* A huge but representable request reaches the allocator and fails there. */
    CHECK(la_alloc(a, 1, SIZE_MAX - 4096, 1) == NULL);

    /* resize / remap / realloc overflow leave the block alone. */
    int *p = la_alloc(a, sizeof(int), 8, _Alignof(int));
    CHECK(p != NULL);
    if (p == NULL) return;
    fill(p, 8 * sizeof(int), 3);
    CHECK(!la_resize(a, p, sizeof(int), 8, SIZE_MAX / 2, _Alignof(int)));
    CHECK(la_remap(a, p, sizeof(int), 8, SIZE_MAX / 2, _Alignof(int)) == NULL);
    CHECK(la_realloc(a, p, sizeof(int), 8, SIZE_MAX / 2, _Alignof(int)) == NULL);
    CHECK(filled(p, 8 * sizeof(int), 3));
    unsigned frees = r.calls[CALL_FREE];
    la_free(a, p, sizeof(int), SIZE_MAX / 2, _Alignof(int)); /* overflow: frees nothing */
    CHECK_EQ_SZ(r.calls[CALL_FREE], frees);
    la_free(a, p, sizeof(int), 8, _Alignof(int));
    CHECK_EQ_SZ(r.calls[CALL_FREE], frees + 1);
}

/* ---- alignments that are not powers of two ---- */

static void test_bad_alignment(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    static const size_t bad[] = {0, 3, 5, 6, 12, 24, 100, 4097, SIZE_MAX, SIZE_MAX / 2};
    char *good = la_alloc(a, 1, 32, 8);
    CHECK(good != NULL);
    if (good == NULL) return;
    fill(good, 32, 9);
    unsigned calls = rec_total(&r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t al = bad[i];
        CHECK(la_create(a, 16, al) == NULL);
        CHECK(la_alloc(a, 4, 4, al) == NULL);
        CHECK(la_alloc(a, 4, 0, al) == NULL); /* even for zero bytes */
        CHECK(la_alloc_sentinel(a, 1, 4, al, "") == NULL);
        CHECK(!la_resize(a, good, 1, 32, 16, al));
        CHECK(!la_resize(a, good, 1, 32, 0, al)); /* does not free either */
        CHECK(la_remap(a, good, 1, 32, 64, al) == NULL);
        CHECK(la_remap(a, good, 1, 32, 0, al) == NULL);
        CHECK(la_realloc(a, good, 1, 32, 64, al) == NULL);
        CHECK(la_realloc(a, NULL, 1, 0, 64, al) == NULL);
        la_free(a, good, 1, 32, al);
        la_destroy(a, good, 32, al);
    }
    CHECK_EQ_SZ(rec_total(&r), calls); /* none of them reached the vtable */
    CHECK(filled(good, 32, 9));
    la_free(a, good, 1, 32, 8);
    CHECK_EQ_SZ(r.calls[CALL_FREE], 1);
}

/* ---- sentinels ---- */

static void test_sentinel(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    static const size_t sizes[] = {1, 2, 3, 4, 8, 12, 16, 32};
    static const size_t ns[] = {0, 1, 5, 100};
    unsigned char sentinel[32];
    for (size_t i = 0; i < sizeof sentinel; i++) sentinel[i] = (unsigned char)(0xA0 + i);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t es = sizes[s];
        size_t al = (es & (es - 1)) == 0 ? es : 1;
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            size_t n = ns[k];
            unsigned char *p = la_alloc_sentinel(a, es, n, al, sentinel);
            CHECK(p != NULL);
            if (p == NULL) continue;
            CHECK(aligned(p, al));
            CHECK_EQ_SZ(r.last_len, es * (n + 1)); /* room for n elements and the sentinel */
            CHECK(memcmp(p + es * n, sentinel, es) == 0);
            memset(p, 0x11, es * n); /* the n elements are usable */
            CHECK(memcmp(p + es * n, sentinel, es) == 0);
            la_free(a, p, es, n + 1, al);
            CHECK(r.last == CALL_FREE && r.last_len == es * (n + 1));
        }
    }
    /* A string-like use: n chars and a NUL. */
    char *s = la_alloc_sentinel(a, 1, 5, 1, "");
    CHECK(s != NULL);
    if (s != NULL) {
        memcpy(s, "hello", 5);
        CHECK(strcmp(s, "hello") == 0);
        la_free(a, s, 1, 6, 1);
    }
    CHECK(la_alloc_sentinel(a, 4, 3, 4, NULL) == NULL); /* NULL sentinel */
    /* Zero-size elements: no bytes, so a dangling pointer and no vtable call. */
    unsigned calls = rec_total(&r);
    CHECK(la_alloc_sentinel(a, 0, 10, 8, sentinel) == zig_dangling(8));
    CHECK_EQ_SZ(rec_total(&r), calls);
}

/* ---- realloc ---- */

static void test_realloc_contents(const char *name, la_allocator a) {
    /* grow in several steps, through sizes that force a move for most allocators */
    size_t n = 10;
    unsigned *p = la_alloc(a, sizeof(unsigned), n, _Alignof(unsigned));
    CHECK(p != NULL);
    if (p == NULL) return;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned)(i * 2654435761u);
    static const size_t steps[] = {11, 100, 5000, 70000, 300000, 1000, 3, 1};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        size_t new_n = steps[s];
        unsigned *q = la_realloc(a, p, sizeof(unsigned), n, new_n, _Alignof(unsigned));
        CHECK(q != NULL);
        if (q == NULL) {
            fprintf(stderr, "  (%s: realloc %zu -> %zu failed)\n", name, n, new_n);
            la_free(a, p, sizeof(unsigned), n, _Alignof(unsigned));
            return;
        }
        CHECK(aligned(q, _Alignof(unsigned)));
        size_t keep = n < new_n ? n : new_n;
        bool same = true;
        for (size_t i = 0; i < keep; i++) same = same && q[i] == (unsigned)(i * 2654435761u);
        CHECK(same);
        for (size_t i = keep; i < new_n; i++) q[i] = (unsigned)(i * 2654435761u);
        p = q;
        n = new_n;
    }
    /* realloc to zero frees and gives the dangling pointer */
    void *z = la_realloc(a, p, sizeof(unsigned), n, 0, _Alignof(unsigned));
    CHECK(z == zig_dangling(_Alignof(unsigned)));
    /* realloc from zero allocates afresh (mem ignored) */
    unsigned *f = la_realloc(a, z, sizeof(unsigned), 0, 4, _Alignof(unsigned));
    CHECK(f != NULL && f != z);
    if (f != NULL && f != z) {
        f[3] = 42;
        la_free(a, f, sizeof(unsigned), 4, _Alignof(unsigned));
    }
    /* over-aligned blocks keep their alignment across realloc */
    char *big = la_alloc(a, 1, 100, 256);
    CHECK(big != NULL && aligned(big, 256));
    if (big != NULL) {
        fill(big, 100, 1);
        char *b2 = la_realloc(a, big, 1, 100, 20000, 256);
        CHECK(b2 != NULL && aligned(b2, 256));
        if (b2 != NULL) {
            CHECK(filled(b2, 100, 1));
            la_free(a, b2, 1, 20000, 256);
        } else {
            la_free(a, big, 1, 100, 256);
        }
    }
}

/* remap refused, alloc refused: NULL, and the old block is untouched and still owned. */
static void test_realloc_failure(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    char *p = la_alloc(a, 1, 64, 16);
    CHECK(p != NULL);
    if (p == NULL) return;
    fill(p, 64, 5);
    r.fail_alloc = true;
    r.fail_remap = true;
    unsigned frees = r.calls[CALL_FREE];
    CHECK(la_realloc(a, p, 1, 64, 4096, 16) == NULL);
    CHECK(r.calls[CALL_REMAP] == 1 && r.calls[CALL_ALLOC] == 2); /* tried remap, then alloc */
    CHECK_EQ_SZ(r.calls[CALL_FREE], frees);                     /* old block not freed */
    CHECK(filled(p, 64, 5));
    CHECK(la_realloc(a, p, 1, 64, 8, 16) == NULL); /* a shrink can fail the same way */
    CHECK(filled(p, 64, 5));

    /* remap refused but alloc works: allocate, copy, free the old block */
    r.fail_alloc = false;
    char *q = la_realloc(a, p, 1, 64, 4096, 16);
    CHECK(q != NULL);
    if (q == NULL) {
        la_free(a, p, 1, 64, 16);
        return;
    }
    CHECK(q != p && aligned(q, 16) && filled(q, 64, 5));
    CHECK(r.last == CALL_FREE && r.last_len == 64 && r.last_align == 4);
    r.fail_remap = false;
    la_free(a, q, 1, 4096, 16);
    CHECK(r.last == CALL_FREE && r.last_len == 4096 && r.last_align == 4);
}

/* The same with the library's failing allocator: remaps fail from the first
 * (resize_fail_index 0), allocations after the first (fail_index 1). */
static void test_realloc_failure_failing(void) {
    la_failing *f = la_failing_create(la_c_allocator(), 1, 0);
    CHECK(f != NULL);
    if (f == NULL) return;
    la_allocator a = la_failing_allocator(f);
    char *p = la_alloc(a, 1, 64, 8);
    CHECK(p != NULL);
    if (p != NULL) {
        fill(p, 64, 6);
        CHECK(la_realloc(a, p, 1, 64, 4096, 8) == NULL);
        CHECK(la_realloc(a, p, 1, 64, 16, 8) == NULL);
        CHECK(filled(p, 64, 6));
        la_failing_stats st;
        la_failing_get_stats(f, &st);
        CHECK_EQ_SZ(st.allocations, 1);
        CHECK_EQ_SZ(st.deallocations, 0); /* the old block was not freed */
        CHECK(st.has_induced_failure);
        CHECK(la_dupez(a, "x", 1) == NULL);
        CHECK(la_alloc(a, 4, 0, 4) != NULL); /* zero bytes never reach the allocator */
        la_free(a, p, 1, 64, 8);
        la_failing_get_stats(f, &st);
        CHECK_EQ_SZ(st.deallocations, 1);
        CHECK_EQ_SZ(st.freed_bytes, 64);
    }
    la_failing_destroy(f);

    /* Allocator.failing: every request fails, zero-byte ones still succeed. */
    la_allocator never = la_always_failing_allocator();
    CHECK(la_alloc(never, 1, 1, 1) == NULL);
    CHECK(LA_CREATE(never, double) == NULL);
    CHECK(la_dupe(never, "abc", 3) == NULL);
    CHECK(la_alloc(never, 8, 0, 8) == zig_dangling(8));
    CHECK(la_realloc(never, NULL, 1, 0, 10, 1) == NULL);
}

/* A full fixed buffer: realloc fails and keeps the old block; the most
 * recent block grows in place. */
static void test_fixed_buffer_realloc(void) {
    static unsigned char buf[256];
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, buf, sizeof buf);
    la_allocator a = la_fixed_buffer_allocator(&fb);
    char *first = la_alloc(a, 1, 100, 1);
    char *last = la_alloc(a, 1, 100, 1);
    CHECK(first != NULL && last != NULL);
    if (first == NULL || last == NULL) return;
    fill(first, 100, 1);
    fill(last, 100, 2);
    char *grown = la_realloc(a, last, 1, 100, 150, 1); /* in place: the last block */
    CHECK(grown == last && filled(grown, 100, 2));
    CHECK(la_realloc(a, first, 1, 100, 200, 1) == NULL); /* no room to move it */
    CHECK(filled(first, 100, 1) && filled(grown, 100, 2));
    CHECK(la_fixed_buffer_owns(&fb, first, 100));
    char *s = la_alloc_sentinel(a, 1, 3, 1, "");
    CHECK(s != NULL && s[3] == '\0');
    la_fixed_buffer_reset(&fb);
    CHECK(la_alloc(a, 1, 256, 1) == (void *)buf);
}

/* ---- resize / remap: new_n == 0 frees, n == 0 is refused ---- */

static void test_resize_remap(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);

    double *p = la_alloc(a, sizeof(double), 16, 16);
    CHECK(p != NULL);
    if (p == NULL) return;
    CHECK(la_resize(a, p, sizeof(double), 16, 0, 16)); /* frees */
    CHECK(r.last == CALL_FREE && r.last_len == 16 * sizeof(double) && r.last_align == 4);

    p = la_alloc(a, sizeof(double), 16, 16);
    CHECK(p != NULL);
    if (p == NULL) return;
    void *z = la_remap(a, p, sizeof(double), 16, 0, 16); /* frees */
    CHECK(z != NULL && aligned(z, 16));
    CHECK(r.last == CALL_FREE && r.last_len == 16 * sizeof(double) && r.last_align == 4);

    /* n == 0: nothing to resize, nothing reaches the vtable */
    unsigned calls = rec_total(&r);
    void *d = la_alloc(a, 8, 0, 8);
    CHECK(!la_resize(a, d, 8, 0, 4, 8));
    CHECK(la_remap(a, d, 8, 0, 4, 8) == NULL);
    CHECK(la_resize(a, d, 8, 0, 0, 8));      /* 0 -> 0 is a successful no-op */
    CHECK(la_remap(a, d, 8, 0, 0, 8) != NULL);
    CHECK(!la_resize(a, NULL, 8, 4, 5, 8));   /* NULL mem */
    CHECK(la_remap(a, NULL, 8, 4, 5, 8) == NULL);
    CHECK_EQ_SZ(rec_total(&r), calls);

    /* pass-through of lengths and log2 alignment; a refused resize changes nothing */
    char *c = la_alloc(a, 4, 100, 32);
    CHECK(c != NULL);
    if (c == NULL) return;
    fill(c, 400, 8);
    r.fail_resize = true;
    CHECK(!la_resize(a, c, 4, 100, 200, 32));
    CHECK(r.last == CALL_RESIZE && r.last_len == 400 && r.last_new_len == 800 &&
          r.last_align == 5);
    CHECK(filled(c, 400, 8));
    r.fail_resize = false;
    r.fail_remap = true;
    CHECK(la_remap(a, c, 4, 100, 200, 32) == NULL);
    CHECK(r.last == CALL_REMAP && r.last_len == 400 && r.last_new_len == 800 &&
          r.last_align == 5);
    CHECK(filled(c, 400, 8));
    r.fail_remap = false;
    /* shrinking in place works for the C and page allocators */
    if (la_resize(a, c, 4, 100, 50, 32)) {
        CHECK(filled(c, 200, 8));
        la_free(a, c, 4, 50, 32);
    } else {
        la_free(a, c, 4, 100, 32);
    }
    CHECK(r.last == CALL_FREE);

    /* zero-size elements: remap returns mem unchanged */
    void *zs = la_alloc(a, 0, 5, 4);
    CHECK(la_remap(a, zs, 0, 5, 50, 4) == zs);
}

/* ---- dupe / dupez ---- */

static void test_dupe(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);
    const char text[] = "liballoc duplicates bytes";
    char *d = la_dupe(a, text, sizeof text);
    CHECK(d != NULL && d != text);
    if (d != NULL) {
        CHECK(memcmp(d, text, sizeof text) == 0);
        CHECK(r.last == CALL_ALLOC && r.last_len == sizeof text && r.last_align == 0);
        la_free(a, d, 1, sizeof text, 1);
    }
    CHECK(la_dupe(a, NULL, 5) == NULL);

    char *z = la_dupez(a, "hello world", 5);
    CHECK(z != NULL);
    if (z != NULL) {
        CHECK(strcmp(z, "hello") == 0); /* copies len bytes, then NUL */
        CHECK(r.last == CALL_ALLOC && r.last_len == 6);
        la_free(a, z, 1, 6, 1);
    }
    /* bytes with an embedded NUL are copied as they are */
    char *e = la_dupez(a, "a\0b", 3);
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK(e[0] == 'a' && e[1] == '\0' && e[2] == 'b' && e[3] == '\0');
        la_free(a, e, 1, 4, 1);
    }
    char *empty = la_dupez(a, NULL, 0); /* empty string: one byte, the NUL */
    CHECK(empty != NULL);
    if (empty != NULL) {
        CHECK(empty[0] == '\0');
        la_free(a, empty, 1, 1, 1);
    }
    CHECK(la_dupez(a, NULL, 3) == NULL);
    CHECK(la_dupez(a, "x", SIZE_MAX) == NULL); /* len + 1 overflows */

    r.fail_alloc = true;
    CHECK(la_dupe(a, text, 4) == NULL);
    CHECK(la_dupez(a, text, 4) == NULL);
}

/* ---- the typed macros ---- */

typedef struct {
    char tag;
    double value;
    long long count;
} sample;

typedef struct {
    _Alignas(64) unsigned char line[64];
} cache_line;

static void test_macros(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);

    sample *s = LA_CREATE(a, sample);
    CHECK(s != NULL && aligned(s, _Alignof(sample)));
    CHECK(r.last == CALL_ALLOC && r.last_len == sizeof(sample));
    CHECK(((size_t)1 << r.last_align) == _Alignof(sample));
    if (s != NULL) {
        s->tag = 'x';
        s->value = 2.5;
        s->count = 7;
        LA_DESTROY(a, s);
        CHECK(r.last == CALL_FREE && r.last_len == sizeof(sample));
        CHECK(((size_t)1 << r.last_align) == _Alignof(sample));
    }

    cache_line *cl = LA_CREATE(a, cache_line);
    CHECK(cl != NULL && aligned(cl, 64) && r.last_align == 6);
    if (cl != NULL) {
        LA_DESTROY(a, cl);
        CHECK(r.last == CALL_FREE && r.last_align == 6 && r.last_len == 64);
    }

    long long *arr = LA_ALLOC(a, long long, 33);
    CHECK(arr != NULL && aligned(arr, _Alignof(long long)));
    CHECK(r.last == CALL_ALLOC && r.last_len == 33 * sizeof(long long));
    if (arr != NULL) {
        for (int i = 0; i < 33; i++) arr[i] = i;
        CHECK(arr[32] == 32);
        LA_FREE(a, arr, 33);
        CHECK(r.last == CALL_FREE && r.last_len == 33 * sizeof(long long));
        CHECK(((size_t)1 << r.last_align) == _Alignof(long long));
    }

    unsigned calls = rec_total(&r);
    short *none = LA_ALLOC(a, short, 0);
    CHECK(none != NULL && aligned(none, _Alignof(short)));
    LA_FREE(a, none, 0);
    CHECK_EQ_SZ(rec_total(&r), calls);
    CHECK(LA_ALLOC(a, int, SIZE_MAX / 2) == NULL);
}

/* ---- each helper passes its caller's return address ---- */

/* Each wrapper calls one helper and does something afterwards, so the call
 * is not a tail call and its return address lies inside the wrapper. */
#define NOINLINE __attribute__((noinline))
static volatile uintptr_t sink;
static int module_anchor; /* an object of this program, for dladdr */

typedef struct {
    const char *name;
    uintptr_t start; /* the wrapper's entry address */
} site;

#define WRAPPER_MAX_BYTES 4096 /* a generous bound on a wrapper's code size */

static NOINLINE void *via_create(la_allocator a) {
    void *p = la_create(a, 24, 8);
    sink = (uintptr_t)p;
    return p;
}
static NOINLINE void via_destroy(la_allocator a, void *p) {
    la_destroy(a, p, 24, 8);
    sink = 1;
}
static NOINLINE void *via_alloc(la_allocator a) {
    void *p = la_alloc(a, 4, 10, 4);
    sink = (uintptr_t)p;
    return p;
}
static NOINLINE void *via_alloc_sentinel(la_allocator a) {
    void *p = la_alloc_sentinel(a, 1, 10, 1, "");
    sink = (uintptr_t)p;
    return p;
}
static NOINLINE bool via_resize(la_allocator a, void *p, size_t n, size_t new_n) {
    bool ok = la_resize(a, p, 1, n, new_n, 1);
    sink = ok;
    return ok;
}
static NOINLINE void *via_remap(la_allocator a, void *p, size_t n, size_t new_n) {
    void *q = la_remap(a, p, 1, n, new_n, 1);
    sink = (uintptr_t)q;
    return q;
}
static NOINLINE void *via_realloc(la_allocator a, void *p, size_t n, size_t new_n) {
    void *q = la_realloc(a, p, 1, n, new_n, 1);
    sink = (uintptr_t)q;
    return q;
}
static NOINLINE void via_free(la_allocator a, void *p, size_t n) {
    la_free(a, p, 1, n, 1);
    sink = 2;
}
static NOINLINE void *via_dupe(la_allocator a) {
    void *p = la_dupe(a, "abc", 3);
    sink = (uintptr_t)p;
    return p;
}
static NOINLINE char *via_dupez(la_allocator a) {
    char *p = la_dupez(a, "abc", 3);
    sink = (uintptr_t)p;
    return p;
}

/* Function addresses as integers (through a union: ISO C has no cast). */
#define FN_ADDR(f) fn_addr((void (*)(void))(f))
static uintptr_t fn_addr(void (*f)(void)) {
    uintptr_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void expect_ret_in(const recorder *r, enum call_kind k, uintptr_t fn, const char *what) {
    bool ok = r->last == k && r->last_ret != 0 && r->last_ret > fn &&
              r->last_ret < fn + WRAPPER_MAX_BYTES;
    Dl_info info_ret, info_self;
    if (ok && dladdr((void *)r->last_ret, &info_ret) && dladdr(&module_anchor, &info_self))
        ok = info_ret.dli_fbase == info_self.dli_fbase; /* this program, not liballoc.so */
    else
        ok = false;
    if (!ok)
        fprintf(stderr, "  %s: ret_addr %#lx, caller at %#lx (last call kind %d)\n", what,
                (unsigned long)r->last_ret, (unsigned long)fn, (int)r->last);
    CHECK(ok);
}

static void test_return_addresses(la_allocator child) {
    recorder r;
    la_allocator a = rec_init(&r, child);

    void *c = via_create(a);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_create), "la_create");
    via_destroy(a, c);
    expect_ret_in(&r, CALL_FREE, FN_ADDR(via_destroy), "la_destroy");

    void *p = via_alloc(a);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_alloc), "la_alloc");
    la_free(a, p, 4, 10, 4);

    void *s = via_alloc_sentinel(a);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_alloc_sentinel), "la_alloc_sentinel");
    la_free(a, s, 1, 11, 1);

    char *b = la_alloc(a, 1, 100, 1);
    CHECK(b != NULL);
    if (b == NULL) return;
    size_t n = via_resize(a, b, 100, 50) ? 50 : 100;
    expect_ret_in(&r, CALL_RESIZE, FN_ADDR(via_resize), "la_resize");
    r.fail_resize = true;
    via_resize(a, b, n, 200); /* refused resize: still the caller's address */
    expect_ret_in(&r, CALL_RESIZE, FN_ADDR(via_resize), "la_resize (refused)");
    r.fail_resize = false;

    char *m = via_remap(a, b, n, 60);
    expect_ret_in(&r, CALL_REMAP, FN_ADDR(via_remap), "la_remap");
    if (m != NULL) {
        b = m;
        n = 60;
    }
    /* realloc, remap path */
    char *q = via_realloc(a, b, n, 70);
    expect_ret_in(&r, r.last, FN_ADDR(via_realloc), "la_realloc");
    CHECK(q != NULL);
    if (q == NULL) return;
    /* realloc, alloc + copy + free path: every call carries the caller's address */
    r.fail_remap = true;
    unsigned allocs = r.calls[CALL_ALLOC];
    char *q2 = via_realloc(a, q, 70, 80);
    CHECK(q2 != NULL && r.calls[CALL_ALLOC] == allocs + 1);
    expect_ret_in(&r, CALL_FREE, FN_ADDR(via_realloc), "la_realloc (copying: free)");
    r.fail_remap = false;
    if (q2 == NULL) return;
    /* remap to zero frees with the caller's address */
    via_remap(a, q2, 80, 0);
    expect_ret_in(&r, CALL_FREE, FN_ADDR(via_remap), "la_remap (to zero)");

    char *f = la_alloc(a, 1, 16, 1);
    CHECK(f != NULL);
    if (f != NULL) {
        via_free(a, f, 16);
        expect_ret_in(&r, CALL_FREE, FN_ADDR(via_free), "la_free");
    }

    void *d = via_dupe(a);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_dupe), "la_dupe");
    la_free(a, d, 1, 3, 1);
    char *dz = via_dupez(a);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_dupez), "la_dupez");
    la_free(a, dz, 1, 4, 1);

    /* the realloc alloc step too (remap refused, alloc recorded before the free) */
    char *g = la_alloc(a, 1, 8, 1);
    CHECK(g != NULL);
    if (g == NULL) return;
    r.fail_remap = true;
    r.fail_alloc = true;
    CHECK(via_realloc(a, g, 8, 4096) == NULL);
    expect_ret_in(&r, CALL_ALLOC, FN_ADDR(via_realloc), "la_realloc (copying: alloc)");
    r.fail_remap = false;
    r.fail_alloc = false;
    la_free(a, g, 1, 8, 1);
}

/* ---- helpers over the library's own allocators ---- */

static void test_on_allocator(const char *name, la_allocator a) {
    test_realloc_contents(name, a);
    int *x = LA_ALLOC(a, int, 1000);
    CHECK(x != NULL);
    if (x != NULL) {
        for (int i = 0; i < 1000; i++) x[i] = i;
        CHECK(la_resize(a, x, sizeof(int), 1000, 1000, _Alignof(int))); /* same size */
        LA_FREE(a, x, 1000);
    }
    char *s = la_dupez(a, name, strlen(name));
    CHECK(s != NULL && strcmp(s, name) == 0);
    if (s != NULL) la_free(a, s, 1, strlen(name) + 1, 1);
}

int main(void) {
    la_allocator c = la_c_allocator();
    test_zero_size(c);
    test_overflow(c);
    test_bad_alignment(c);
    test_sentinel(c);
    test_realloc_failure(c);
    test_realloc_failure(la_page_allocator());
    test_realloc_failure_failing();
    test_fixed_buffer_realloc();
    test_resize_remap(c);
    test_resize_remap(la_page_allocator());
    test_dupe(c);
    test_macros(c);
    test_macros(la_page_allocator());
    test_return_addresses(c);
    test_on_allocator("page", la_page_allocator());
    test_on_allocator("c", c);
    test_on_allocator("smp", la_smp_allocator());

    la_arena *arena = la_arena_create(la_page_allocator());
    CHECK(arena != NULL);
    if (arena != NULL) {
        test_on_allocator("arena", la_arena_allocator(arena));
        la_arena_destroy(arena);
    }
    static unsigned char fixed[2 << 20];
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, fixed, sizeof fixed);
    test_on_allocator("fixed buffer", la_fixed_buffer_allocator(&fb));
    la_fixed_buffer_init(&fb, fixed, sizeof fixed);
    test_on_allocator("fixed buffer (thread-safe)", la_fixed_buffer_thread_safe_allocator(&fb));
    la_failing *pass = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    CHECK(pass != NULL);
    if (pass != NULL) {
        test_on_allocator("failing (pass-through)", la_failing_allocator(pass));
        la_failing_stats st;
        la_failing_get_stats(pass, &st);
        CHECK(st.allocations > 0 && st.allocations == st.deallocations);
        CHECK_EQ_SZ(st.allocated_bytes, st.freed_bytes);
        la_failing_destroy(pass);
    }
    return check_summary("test_helpers");
}
