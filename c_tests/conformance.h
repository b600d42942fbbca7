/*
 * conformance.h: the one conformance suite every allocator runs.
 *
 * A C port of Zig's std.heap testAllocator, testAllocatorAligned,
 * testAllocatorLargeAlignment and testAllocatorAlignedShrink, driven through
 * the C helpers. The allocator under test is wrapped in a validating
 * allocator (Zig's mem.validationWrap) that checks every call against the
 * vtable contract: results aligned as asked, len > 0, and resize/remap/free
 * given exactly the length and alignment last granted for that block.
 *
 * Use: #include "check.h" then "conformance.h"; call
 * conformance_run("name", allocator) for each allocator; failures are
 * counted by check.h.
 */
#ifndef LA_CONFORMANCE_H
#define LA_CONFORMANCE_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "liballoc.h"

/* ---- the validating wrapper ---- */

#define VALIDATOR_MAX_LIVE 4096

typedef struct {
    void *ptr;
    size_t len;
    la_alignment align;
} validator_block;

typedef struct {
    la_allocator child;
    validator_block live[VALIDATOR_MAX_LIVE];
    size_t n_live;
    const char *name;
} validator;

static validator_block *validator_find(validator *v, void *ptr) {
    for (size_t i = 0; i < v->n_live; i++)
        if (v->live[i].ptr == ptr) return &v->live[i];
    return NULL;
}

/* Checks that (ptr, len, align) is exactly a live block as last granted. */
static validator_block *validator_expect(validator *v, void *ptr, size_t len, la_alignment a) {
    validator_block *b = validator_find(v, ptr);
    CHECK(b != NULL);
    if (b == NULL) return NULL;
    CHECK_EQ_SZ(b->len, len);
    CHECK_EQ_SZ(b->align, a);
    CHECK(len > 0);
    return b;
}

static void *validator_alloc(void *ctx, size_t len, la_alignment a, uintptr_t ra) {
    validator *v = ctx;
    CHECK(len > 0);
    void *p = la_raw_alloc(v->child, len, a, ra);
    if (p == NULL) return NULL;
    CHECK(((uintptr_t)p & (((uintptr_t)1 << a) - 1)) == 0);
    CHECK(validator_find(v, p) == NULL); /* no two live blocks at one address */
    CHECK(v->n_live < VALIDATOR_MAX_LIVE);
    if (v->n_live < VALIDATOR_MAX_LIVE) v->live[v->n_live++] = (validator_block){p, len, a};
    return p;
}

static bool validator_resize(void *ctx, void *mem, size_t len, la_alignment a, size_t new_len,
                             uintptr_t ra) {
    validator *v = ctx;
    CHECK(new_len > 0);
    validator_block *b = validator_expect(v, mem, len, a);
    if (!la_raw_resize(v->child, mem, len, a, new_len, ra)) return false;
    if (b) b->len = new_len;
    return true;
}

static void *validator_remap(void *ctx, void *mem, size_t len, la_alignment a, size_t new_len,
                             uintptr_t ra) {
    validator *v = ctx;
    CHECK(new_len > 0);
    validator_block *b = validator_expect(v, mem, len, a);
    void *p = la_raw_remap(v->child, mem, len, a, new_len, ra);
    if (p == NULL) return NULL;
    CHECK(((uintptr_t)p & (((uintptr_t)1 << a) - 1)) == 0);
    if (b) {
        b->ptr = p;
        b->len = new_len;
    }
    return p;
}

static void validator_free(void *ctx, void *mem, size_t len, la_alignment a, uintptr_t ra) {
    validator *v = ctx;
    validator_block *b = validator_expect(v, mem, len, a);
    la_raw_free(v->child, mem, len, a, ra);
    if (b) *b = v->live[--v->n_live];
}

static const la_vtable validator_vtable = {validator_alloc, validator_resize, validator_remap,
                                           validator_free};

static la_allocator validator_wrap(validator *v, la_allocator child, const char *name) {
    memset(v, 0, sizeof *v);
    v->child = child;
    v->name = name;
    return (la_allocator){v, &validator_vtable};
}

/* ---- the four Zig tests ---- */

static void conformance_basic(la_allocator a) {
    int **slice = LA_ALLOC(a, int *, 100);
    CHECK(slice != NULL);
    if (!slice) return;
    for (int i = 0; i < 100; i++) {
        slice[i] = LA_CREATE(a, int);
        CHECK(slice[i] != NULL);
        if (slice[i]) *slice[i] = i;
    }
    int **grown = la_realloc(a, slice, sizeof(int *), 100, 20000, _Alignof(int *));
    CHECK(grown != NULL);
    if (!grown) return;
    slice = grown;
    for (int i = 0; i < 100; i++) {
        CHECK(slice[i] != NULL && *slice[i] == i);
        if (slice[i]) LA_DESTROY(a, slice[i]);
    }
    size_t n = 20000;
    if (la_resize(a, slice, sizeof(int *), n, 50, _Alignof(int *))) {
        n = 50;
        if (la_resize(a, slice, sizeof(int *), n, 25, _Alignof(int *))) {
            n = 25;
            CHECK(la_resize(a, slice, sizeof(int *), n, 0, _Alignof(int *)));
            n = 0;
            slice = la_realloc(a, slice, sizeof(int *), 0, 10, _Alignof(int *));
            CHECK(slice != NULL);
            n = 10;
        }
    }
    LA_FREE(a, slice, n);

    /* zero-length allocation */
    unsigned char *empty = LA_ALLOC(a, unsigned char, 0);
    CHECK(empty != NULL);
    LA_FREE(a, empty, 0);
    /* zero-sized object */
    void *zero = la_create(a, 0, 8);
    CHECK(zero != NULL && ((uintptr_t)zero & 7) == 0);
    la_destroy(a, zero, 0, 8);

    uint32_t *oversize = LA_ALLOC(a, uint32_t, 5);
    CHECK(oversize != NULL);
    if (oversize) {
        for (int i = 0; i < 5; i++) oversize[i] = 0xDEADBEEF;
        LA_FREE(a, oversize, 5);
    }
}

static void conformance_aligned(la_allocator a) {
    for (size_t align = 1; align <= 64; align *= 2) {
        unsigned char *s = la_alloc(a, 1, 10, align);
        CHECK(s != NULL && ((uintptr_t)s & (align - 1)) == 0);
        if (!s) continue;
        size_t n = 10;
        s = la_realloc(a, s, 1, n, 100, align);
        CHECK(s != NULL && ((uintptr_t)s & (align - 1)) == 0);
        if (!s) continue;
        n = 100;
        if (la_resize(a, s, 1, n, 10, align)) n = 10;
        CHECK(la_resize(a, s, 1, n, 0, align));
        s = la_realloc(a, s, 1, 0, 100, align);
        CHECK(s != NULL && ((uintptr_t)s & (align - 1)) == 0);
        if (!s) continue;
        n = 100;
        if (la_resize(a, s, 1, n, 10, align)) n = 10;
        CHECK(la_resize(a, s, 1, n, 0, align));
    }
}

static void conformance_large_alignment(la_allocator a) {
    const size_t large = 4096 / 2; /* page_size_min / 2, as in Zig */
    unsigned char *s = la_alloc(a, 1, 500, large);
    CHECK(s != NULL && ((uintptr_t)s & (large - 1)) == 0);
    if (!s) return;
    size_t n = 500;
    if (la_resize(a, s, 1, n, 100, large)) n = 100;
    s = la_realloc(a, s, 1, n, 5000, large);
    CHECK(s != NULL && ((uintptr_t)s & (large - 1)) == 0);
    if (!s) return;
    n = 5000;
    if (la_resize(a, s, 1, n, 10, large)) n = 10;
    s = la_realloc(a, s, 1, n, 20000, large);
    CHECK(s != NULL && ((uintptr_t)s & (large - 1)) == 0);
    if (!s) return;
    la_free(a, s, 1, 20000, large);
}

static void conformance_aligned_shrink(la_allocator a) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t size = page * 2 + 50;
    unsigned char *stash[64];
    size_t n_stash = 0;
    unsigned char *s = la_alloc(a, 1, size, 16);
    CHECK(s != NULL);
    if (!s) return;
    /* Get a block that is not 32-page aligned, so shrinking must keep the
     * smaller alignment's contents in place. */
    while (((uintptr_t)s & (page * 32 - 1)) == 0 && n_stash < 64) {
        stash[n_stash++] = s;
        s = la_alloc(a, 1, size, 16);
        CHECK(s != NULL);
        if (!s) break;
    }
    while (n_stash > 0) la_free(a, stash[--n_stash], 1, size, 16);
    if (!s) return;
    s[0] = 0x12;
    s[60] = 0x34;
    unsigned char *t = la_realloc(a, s, 1, size, size / 2, 16);
    CHECK(t != NULL);
    if (!t) {
        la_free(a, s, 1, size, 16);
        return;
    }
    CHECK(t[0] == 0x12);
    CHECK(t[60] == 0x34);
    la_free(a, t, 1, size / 2, 16);
}

/* Runs the whole suite on `a` behind a validating wrapper; every block the
 * suite allocates must be freed by the end. Returns the failures it added. */
static unsigned long conformance_run(const char *name, la_allocator a) {
    static validator v;
    unsigned long before = check_failures();
    la_allocator w = validator_wrap(&v, a, name);
    conformance_basic(w);
    conformance_aligned(w);
    conformance_large_alignment(w);
    conformance_aligned_shrink(w);
    CHECK_EQ_SZ(v.n_live, 0);
    unsigned long failed = check_failures() - before;
    printf("%s conformance: %s\n", name, failed ? "FAILED" : "ok");
    return failed;
}

#endif
