/*
 * test_bad_input: impossible requests and NULL handles must give NULL /
 * false / nothing, never a crash. Covers the page, C, fixed-buffer, arena
 * and failing allocators: alignments of 64 and above and above what the
 * allocator can meet, lengths whose rounding overflows, zero lengths given
 * straight to the vtable, and NULL handles to every la_fixed_buffer_*,
 * la_arena_* and la_failing_* function.
 */
#include <stdint.h>

#include "check.h"
#include "liballoc.h"

static unsigned char memory[1 << 16];

/* Calls every vtable entry directly with arguments the contract forbids. */
static void vtable_rejects(const char *name, la_allocator a) {
    (void)name;
    const la_vtable *vt = a.vtable;
    CHECK(vt != NULL);
    if (!vt) return;
    unsigned char *p = vt->alloc(a.ptr, 16, 3, 0);
    CHECK(p != NULL);
    if (!p) return;
    /* len == 0 / new_len == 0 at the vtable. */
    CHECK(vt->alloc(a.ptr, 0, 0, 0) == NULL);
    CHECK(!vt->resize(a.ptr, p, 16, 3, 0, 0));
    CHECK(vt->remap(a.ptr, p, 16, 3, 0, 0) == NULL);
    CHECK(!vt->resize(a.ptr, p, 0, 3, 8, 0));
    CHECK(vt->remap(a.ptr, p, 0, 3, 8, 0) == NULL);
    vt->free(a.ptr, p, 0, 3, 0);
    /* NULL memory. */
    CHECK(!vt->resize(a.ptr, NULL, 16, 3, 8, 0));
    CHECK(vt->remap(a.ptr, NULL, 16, 3, 8, 0) == NULL);
    vt->free(a.ptr, NULL, 16, 3, 0);
    /* Alignments of 64 and more, and the largest representable one. */
    CHECK(vt->alloc(a.ptr, 1, 64, 0) == NULL);
    CHECK(vt->alloc(a.ptr, 1, 255, 0) == NULL);
    CHECK(vt->alloc(a.ptr, 1, 63, 0) == NULL);
    CHECK(la_raw_alloc(a, 1, 64, 0) == NULL);
    CHECK(la_raw_alloc(a, 1, 63, 0) == NULL);
    /* Lengths whose rounding overflows. */
    CHECK(la_raw_alloc(a, SIZE_MAX, 0, 0) == NULL);
    CHECK(la_raw_alloc(a, SIZE_MAX - 3, 4, 0) == NULL);
    CHECK(la_raw_alloc(a, SIZE_MAX / 2 + 1, 12, 0) == NULL);
    CHECK(!la_raw_resize(a, p, 16, 3, SIZE_MAX, 0));
    CHECK(la_raw_remap(a, p, 16, 3, SIZE_MAX - 7, 0) == NULL);
    /* Helper-level: overflowing element counts, bad byte alignments. */
    CHECK(la_alloc(a, 16, SIZE_MAX / 8, 8) == NULL);
    CHECK(la_alloc(a, 1, 8, 0) == NULL);
    CHECK(la_alloc(a, 1, 8, 3) == NULL);
    /* The block is still intact and usable. */
    p[0] = 1;
    p[15] = 2;
    CHECK(p[0] == 1 && p[15] == 2);
    vt->free(a.ptr, p, 16, 3, 0);
}

static void fixed_buffer_bad_input(void) {
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, memory, sizeof memory);
    vtable_rejects("fixed buffer", la_fixed_buffer_allocator(&fb));
    la_fixed_buffer_reset(&fb);
    vtable_rejects("thread-safe fixed buffer", la_fixed_buffer_thread_safe_allocator(&fb));
    /* An alignment the buffer cannot meet (larger than the buffer). */
    la_fixed_buffer_reset(&fb);
    CHECK(la_raw_alloc(la_fixed_buffer_allocator(&fb), 1, 40, 0) == NULL);
    CHECK(la_raw_alloc(la_fixed_buffer_thread_safe_allocator(&fb), 1, 40, 0) == NULL);
    CHECK(la_raw_alloc(la_fixed_buffer_allocator(&fb), sizeof memory + 1, 0, 0) == NULL);
    CHECK(la_fixed_buffer_owns(&fb, memory, sizeof memory));
    CHECK(!la_fixed_buffer_owns(&fb, memory, sizeof memory + 1));
    CHECK(!la_fixed_buffer_owns(&fb, memory + 10, SIZE_MAX));
    CHECK(!la_fixed_buffer_owns(&fb, NULL, 1));

    /* NULL handles. */
    la_fixed_buffer_init(NULL, memory, sizeof memory);
    la_fixed_buffer_reset(NULL);
    CHECK(!la_fixed_buffer_owns(NULL, memory, 1));
    la_allocator a = la_fixed_buffer_allocator(NULL);
    CHECK(la_raw_alloc(a, 8, 0, 0) == NULL);
    CHECK(LA_CREATE(a, int) == NULL);
    a = la_fixed_buffer_thread_safe_allocator(NULL);
    CHECK(la_raw_alloc(a, 8, 0, 0) == NULL);
    /* A NULL buffer is an empty one. */
    la_fixed_buffer_init(&fb, NULL, 4096);
    CHECK(la_raw_alloc(la_fixed_buffer_allocator(&fb), 1, 0, 0) == NULL);
    CHECK(!la_fixed_buffer_owns(&fb, memory, 0));
}

static void arena_bad_input(void) {
    la_allocator children[2] = {la_c_allocator(), la_page_allocator()};
    for (int i = 0; i < 2; i++) {
        la_arena *arena = la_arena_create(children[i]);
        CHECK(arena != NULL);
        if (!arena) continue;
        vtable_rejects("arena", la_arena_allocator(arena));
        la_allocator a = la_arena_allocator(arena);
        /* Alignments the child cannot back. */
        CHECK(la_raw_alloc(a, 1, 62, 0) == NULL);
        CHECK(la_raw_alloc(a, (size_t)1 << 62, 0, 0) == NULL);
        /* Still works afterwards. */
        CHECK(la_raw_alloc(a, 100, 6, 0) != NULL);
        CHECK(!la_arena_reset(arena, (la_arena_reset_mode)42, 0));
        CHECK(la_arena_reset(arena, LA_ARENA_RETAIN_WITH_LIMIT, SIZE_MAX));
        CHECK(la_arena_reset(arena, LA_ARENA_RETAIN_CAPACITY, 0));
        CHECK(la_arena_reset(arena, LA_ARENA_FREE_ALL, 0));
        CHECK_EQ_SZ(la_arena_query_capacity(arena), 0);
        la_arena_destroy(arena);
    }
    /* NULL handles and invalid children. */
    la_allocator null_child = {NULL, NULL};
    CHECK(la_arena_create(null_child) == NULL);
    CHECK(!la_arena_reset(NULL, LA_ARENA_FREE_ALL, 0));
    CHECK(!la_arena_reset(NULL, LA_ARENA_RETAIN_CAPACITY, 0));
    CHECK_EQ_SZ(la_arena_query_capacity(NULL), 0);
    la_arena_destroy(NULL);
    la_allocator a = la_arena_allocator(NULL);
    CHECK(la_raw_alloc(a, 8, 0, 0) == NULL);
    CHECK(LA_CREATE(a, int) == NULL);
}

static void failing_bad_input(void) {
    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    CHECK(f != NULL);
    if (f) {
        vtable_rejects("failing", la_failing_allocator(f));
        la_failing_stats s;
        la_failing_get_stats(f, &s);
        /* Rejected calls never reach the counters or the child. */
        CHECK_EQ_SZ(s.allocations, 1);
        CHECK_EQ_SZ(s.deallocations, 1);
        CHECK_EQ_SZ(s.allocated_bytes, 16);
        CHECK_EQ_SZ(s.freed_bytes, 16);
        la_failing_get_stats(f, NULL);
        la_failing_destroy(f);
    }
    la_allocator always = la_always_failing_allocator();
    unsigned char byte = 0;
    CHECK(always.vtable->alloc(always.ptr, 0, 0, 0) == NULL);
    CHECK(always.vtable->alloc(always.ptr, 1, 64, 0) == NULL);
    CHECK(always.vtable->alloc(always.ptr, SIZE_MAX, 0, 0) == NULL);
    CHECK(!always.vtable->resize(always.ptr, &byte, 1, 0, 0, 0));
    CHECK(always.vtable->remap(always.ptr, NULL, 1, 0, 2, 0) == NULL);
    always.vtable->free(always.ptr, NULL, 0, 0, 0);

    la_allocator null_child = {NULL, NULL};
    CHECK(la_failing_create(null_child, 0, 0) == NULL);
    la_failing_destroy(NULL);
    la_failing_stats s = {1, 2, 3, 4, true};
    la_failing_get_stats(NULL, &s);
    CHECK(s.allocations == 0 && s.deallocations == 0 && s.allocated_bytes == 0 &&
          s.freed_bytes == 0 && !s.has_induced_failure);
    la_failing_get_stats(NULL, NULL);
    la_allocator a = la_failing_allocator(NULL);
    CHECK(la_raw_alloc(a, 8, 0, 0) == NULL);
    CHECK(LA_CREATE(a, int) == NULL);
}

static void stateless_bad_input(void) {
    vtable_rejects("page", la_page_allocator());
    vtable_rejects("c", la_c_allocator());
    /* An alignment no mapping can have. (Not asked of the C allocator
     * here: valgrind's posix_memalign aborts on such alignments, where
     * glibc's returns ENOMEM.) */
    CHECK(la_raw_alloc(la_page_allocator(), 1, 62, 0) == NULL);
    CHECK(la_raw_alloc(la_page_allocator(), SIZE_MAX - 4095, 0, 0) == NULL);
    CHECK(la_raw_alloc(la_c_allocator(), SIZE_MAX - 15, 4, 0) == NULL);
}

/* An allocator whose vtable is NULL, or has NULL entries, fails every call
 * made through la_raw_* and the helpers instead of jumping to address 0. */
static void null_vtables(void) {
    static const la_vtable empty = {NULL, NULL, NULL, NULL};
    unsigned char byte = 7;
    la_allocator none = {NULL, NULL};
    la_allocator holes = {&byte, &empty};
    la_allocator all[2] = {none, holes};
    for (int i = 0; i < 2; i++) {
        la_allocator a = all[i];
        CHECK(la_raw_alloc(a, 8, 0, 0) == NULL);
        CHECK(!la_raw_resize(a, &byte, 1, 0, 2, 0));
        CHECK(la_raw_remap(a, &byte, 1, 0, 2, 0) == NULL);
        la_raw_free(a, &byte, 1, 0, 0);
        CHECK(la_alloc(a, 4, 4, 4) == NULL);
        CHECK(la_realloc(a, &byte, 1, 1, 2, 1) == NULL);
        CHECK(la_dupez(a, "x", 1) == NULL);
        la_free(a, &byte, 1, 1, 1);
        CHECK(byte == 7);
    }
}

int main(void) {
    null_vtables();
    stateless_bad_input();
    fixed_buffer_bad_input();
    arena_bad_input();
    failing_bad_input();
    return check_summary("test_bad_input");
}
