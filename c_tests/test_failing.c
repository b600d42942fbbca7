/*
 * test_failing: the failing allocators. la_failing's counters must match
 * Zig's std.testing.FailingAllocator exactly after a known sequence of
 * calls; fail_index and resize_fail_index must be honoured; and
 * la_always_failing_allocator must fail every call. The first induced
 * failure's stack trace is kept.
 */
#include <stdint.h>

#include "check.h"
#include "liballoc.h"

static la_failing_stats stats(const la_failing *f) {
    la_failing_stats s;
    la_failing_get_stats(f, &s);
    return s;
}

/* Counters after a known sequence over the C allocator. */
static void test_exact_counts(void) {
    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    CHECK(f != NULL);
    if (!f) return;
    la_allocator a = la_failing_allocator(f);

    unsigned char *p = la_raw_alloc(a, 100, 0, 0);
    unsigned char *q = la_raw_alloc(a, 50, 4, 0);
    CHECK(p != NULL && q != NULL);
    la_failing_stats s = stats(f);
    CHECK_EQ_SZ(s.allocations, 2);
    CHECK_EQ_SZ(s.allocated_bytes, 150);
    CHECK_EQ_SZ(s.freed_bytes, 0);

    /* A shrinking resize counts the difference as freed. */
    CHECK(la_raw_resize(a, p, 100, 0, 60, 0));
    /* A shrinking remap likewise. */
    unsigned char *q2 = la_raw_remap(a, q, 50, 4, 20, 0);
    CHECK(q2 != NULL);
    s = stats(f);
    CHECK_EQ_SZ(s.freed_bytes, 40 + 30);
    /* A growing remap counts the growth as allocated. */
    unsigned char *q3 = la_raw_remap(a, q2, 20, 4, 100000, 0);
    CHECK(q3 != NULL);
    /* A resize to the same length succeeds and counts nothing. */
    CHECK(la_raw_resize(a, p, 60, 0, 60, 0));
    /* A resize the child refuses changes no counter. */
    CHECK(!la_raw_resize(a, p, 60, 0, (size_t)1 << 40, 0));
    s = stats(f);
    CHECK_EQ_SZ(s.allocations, 2);
    CHECK_EQ_SZ(s.allocated_bytes, 150 + 99980);
    CHECK_EQ_SZ(s.freed_bytes, 70);
    CHECK_EQ_SZ(s.deallocations, 0);

    la_raw_free(a, p, 60, 0, 0);
    la_raw_free(a, q3, 100000, 4, 0);
    s = stats(f);
    CHECK_EQ_SZ(s.allocations, 2);
    CHECK_EQ_SZ(s.deallocations, 2);
    CHECK_EQ_SZ(s.allocated_bytes, 100130);
    CHECK_EQ_SZ(s.freed_bytes, 100130);
    CHECK(!s.has_induced_failure);
    la_failing_destroy(f);
}

/* Zig's FailingAllocator test: fail_index = 2. */
static void test_fail_index(void) {
    la_failing *f = la_failing_create(la_c_allocator(), 2, SIZE_MAX);
    CHECK(f != NULL);
    if (!f) return;
    la_allocator a = la_failing_allocator(f);
    int *x = LA_CREATE(a, int);
    int *y = LA_CREATE(a, int);
    CHECK(x != NULL && y != NULL);
    CHECK(!stats(f).has_induced_failure);
    CHECK(LA_CREATE(a, int) == NULL);
    CHECK(stats(f).has_induced_failure);
    /* Freeing does not move the index back: later allocations fail too. */
    LA_DESTROY(a, x);
    CHECK(la_raw_alloc(a, 1, 0, 0) == NULL);
    LA_DESTROY(a, y);
    la_failing_stats s = stats(f);
    CHECK_EQ_SZ(s.allocations, 2);
    CHECK_EQ_SZ(s.deallocations, 2);
    CHECK_EQ_SZ(s.allocated_bytes, 2 * sizeof(int));
    CHECK_EQ_SZ(s.freed_bytes, 2 * sizeof(int));
    la_failing_destroy(f);

    /* fail_index 0: the very first allocation fails. */
    f = la_failing_create(la_c_allocator(), 0, SIZE_MAX);
    CHECK(f != NULL);
    if (!f) return;
    CHECK(la_raw_alloc(la_failing_allocator(f), 8, 3, 0) == NULL);
    CHECK(stats(f).has_induced_failure);
    CHECK_EQ_SZ(stats(f).allocations, 0);
    la_failing_destroy(f);
}

/* The first induced failure's trace is kept (Zig's getStackTrace): it
 * passes through the function that made the failed request. */
__attribute__((noinline)) static void test_stack_trace(void) {
    la_failing *f = la_failing_create(la_c_allocator(), 1, SIZE_MAX);
    CHECK(f != NULL);
    if (!f) return;
    la_allocator a = la_failing_allocator(f);
    uintptr_t tr[LA_FAILING_MAX_FRAMES + 4];
    CHECK_EQ_SZ(la_failing_get_stack_trace(f, tr, LA_FAILING_MAX_FRAMES), 0);
    void *x = la_raw_alloc(a, 16, 3, 0);
    CHECK(x != NULL);
    CHECK(la_raw_alloc(a, 16, 3, 0) == NULL);
    size_t n = la_failing_get_stack_trace(f, tr, LA_FAILING_MAX_FRAMES + 4);
    CHECK(n >= 1 && n <= LA_FAILING_MAX_FRAMES);
    uintptr_t self = (uintptr_t)test_stack_trace;
    int here = 0;
    for (size_t i = 0; i < n; i++) here |= tr[i] > self && tr[i] < self + 4096;
    CHECK(here);
    /* A later failure keeps the first one's trace; short buffers and NULL. */
    CHECK(la_raw_alloc(a, 1, 0, 0) == NULL);
    CHECK_EQ_SZ(la_failing_get_stack_trace(f, tr, 1), 1);
    CHECK_EQ_SZ(la_failing_get_stack_trace(f, NULL, 4), 0);
    CHECK_EQ_SZ(la_failing_get_stack_trace(NULL, tr, 4), 0);
    la_raw_free(a, x, 16, 3, 0);
    la_failing_destroy(f);
}

/* A failure of the child is not an induced failure and counts nothing. */
static void test_child_failure(void) {
    static unsigned char mem[512];
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, mem, sizeof mem);
    la_failing *f = la_failing_create(la_fixed_buffer_allocator(&fb), SIZE_MAX, SIZE_MAX);
    CHECK(f != NULL);
    if (!f) return;
    la_allocator a = la_failing_allocator(f);
    CHECK(la_raw_alloc(a, 4096, 0, 0) == NULL);
    la_failing_stats s = stats(f);
    CHECK(!s.has_induced_failure);
    CHECK_EQ_SZ(s.allocations, 0);
    CHECK_EQ_SZ(s.allocated_bytes, 0);
    CHECK(la_raw_alloc(a, 16, 0, 0) != NULL);
    CHECK_EQ_SZ(stats(f).allocations, 1);
    la_failing_destroy(f);
}

/* Zig's FailingAllocator test: resize_fail_index = 1. */
static void test_resize_fail_index(void) {
    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, 1);
    CHECK(f != NULL);
    if (!f) return;
    la_allocator a = la_failing_allocator(f);
    unsigned char *s8 = LA_ALLOC(a, unsigned char, 8);
    CHECK(s8 != NULL);
    if (!s8) return;
    unsigned char *s6 = la_remap(a, s8, 1, 8, 6, 1);
    CHECK(s6 != NULL);
    if (!s6) return;
    /* From now on remap and resize fail, even when shrinking. */
    CHECK(la_remap(a, s6, 1, 6, 4, 1) == NULL);
    CHECK(!la_resize(a, s6, 1, 6, 4, 1));
    CHECK(la_raw_remap(a, s6, 6, 0, 2, 0) == NULL);
    /* realloc still succeeds by allocating, copying and freeing. */
    s6[0] = 42;
    unsigned char *s100 = la_realloc(a, s6, 1, 6, 100, 1);
    CHECK(s100 != NULL && s100[0] == 42);
    la_failing_stats st = stats(f);
    CHECK_EQ_SZ(st.allocations, 2);
    CHECK_EQ_SZ(st.deallocations, 1);
    CHECK_EQ_SZ(st.allocated_bytes, 8 + 100);
    CHECK_EQ_SZ(st.freed_bytes, 2 + 6);
    CHECK(!st.has_induced_failure);
    if (s100) la_free(a, s100, 1, 100, 1);
    la_failing_destroy(f);

    /* resize_fail_index 0: no resize ever succeeds. */
    f = la_failing_create(la_c_allocator(), SIZE_MAX, 0);
    CHECK(f != NULL);
    if (!f) return;
    a = la_failing_allocator(f);
    void *p = la_raw_alloc(a, 64, 0, 0);
    CHECK(p != NULL);
    CHECK(!la_raw_resize(a, p, 64, 0, 32, 0));
    CHECK(la_raw_remap(a, p, 64, 0, 32, 0) == NULL);
    la_raw_free(a, p, 64, 0, 0);
    la_failing_destroy(f);
}

static void test_always_failing(void) {
    la_allocator a = la_always_failing_allocator();
    unsigned char byte = 0;
    CHECK(a.vtable != NULL);
    CHECK(la_raw_alloc(a, 1, 0, 0) == NULL);
    CHECK(la_raw_alloc(a, 4096, 12, 0) == NULL);
    /* Zig's `test failing`: huge requests fail too (in the allocator, not
     * by overflowing in the interface). */
    const unsigned char zero = 0;
    CHECK(la_alloc(a, 1, 123, 1) == NULL);
    CHECK(la_alloc(a, 1, SIZE_MAX, 1) == NULL);
    CHECK(la_alloc_sentinel(a, 1, SIZE_MAX - 1, 1, &zero) == NULL);
    CHECK(!la_raw_resize(a, &byte, 1, 0, 1, 0));
    CHECK(la_raw_remap(a, &byte, 1, 0, 2, 0) == NULL);
    la_raw_free(a, &byte, 1, 0, 0);
    CHECK(LA_CREATE(a, int) == NULL);
    CHECK(la_dupe(a, "abc", 3) == NULL);
    /* Zero-byte requests never reach the vtable (as in Zig). */
    CHECK(la_alloc(a, 1, 0, 8) != NULL);
    /* An arena and a failing allocator over it cannot even be created. */
    CHECK(la_arena_create(a) == NULL);
    CHECK(la_failing_create(a, SIZE_MAX, SIZE_MAX) == NULL);
}

int main(void) {
    test_exact_counts();
    test_fail_index();
    test_stack_trace();
    test_child_failure();
    test_resize_fail_index();
    test_always_failing();
    return check_summary("test_failing");
}
