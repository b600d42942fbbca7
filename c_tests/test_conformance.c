/*
 * test_conformance: the shared conformance suite (conformance.h) run against
 * every allocator of the core library.
 */
#include "check.h"
#include "conformance.h"

/* Zig runs its fixed-buffer tests on 800000 * 8 bytes; so do we. */
static unsigned char fixed_memory[800000 * 8];

static void run_arena(const char *name, la_allocator child) {
    la_arena *arena = la_arena_create(child);
    CHECK(arena != NULL);
    if (!arena) return;
    conformance_run(name, la_arena_allocator(arena));
    la_arena_destroy(arena);
}

int main(void) {
    conformance_run("page", la_page_allocator());
    conformance_run("c", la_c_allocator());
    conformance_run("smp", la_smp_allocator());

    run_arena("arena over page", la_page_allocator());
    run_arena("arena over c", la_c_allocator());
    run_arena("arena over smp", la_smp_allocator());

    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, fixed_memory, sizeof fixed_memory);
    conformance_run("fixed buffer", la_fixed_buffer_allocator(&fb));
    la_fixed_buffer_init(&fb, fixed_memory, sizeof fixed_memory);
    conformance_run("thread-safe fixed buffer", la_fixed_buffer_thread_safe_allocator(&fb));

    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    CHECK(f != NULL);
    if (f) {
        conformance_run("failing over c", la_failing_allocator(f));
        la_failing_stats s;
        la_failing_get_stats(f, &s);
        /* The suite frees everything it allocates. */
        CHECK_EQ_SZ(s.allocations, s.deallocations);
        CHECK_EQ_SZ(s.allocated_bytes, s.freed_bytes);
        CHECK(!s.has_induced_failure);
        la_failing_destroy(f);
    }
    return check_summary("test_conformance");
}
