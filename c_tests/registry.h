/*
 * registry.h: every allocator under test, listed once, and how each is made
 * and unmade, for the C suites and the Zig binding's tests. The Rust side's
 * list is `for_each_kind!` in tests/all/allocators.rs.
 *
 * LA_REGISTRY(X) calls X(id, name, suite) once per allocator; `suite` says
 * which C program's conformance runs cover it (CORE: test_conformance, the
 * core library's allocators; FAMILY: test_family, the wrappers; DEBUG:
 * test_debug). registry_make_<id> builds the allocator into a
 * registry_subject, registry_unmake_<id> checks what it can (the failing
 * allocator's counters balance, the debug allocator found no leak) and
 * tears it down. registry_each(suites, f) runs f on every allocator of the
 * given suites, made fresh for the call. registry_export.c hands every
 * allocator of the list, whatever its suite, to the Zig tests
 * (bindings/zig/tests/tests.zig), which run Zig's testAllocator* and std
 * containers on each, made and unmade by the same pair.
 *
 * To add an allocator: one X line and its make/unmake pair here puts it in
 * the C suites and the Zig tests; a line in `for_each_kind!` (and its arm
 * in `Subject::new`) puts it in the Rust suites. Each allocator must pass
 * every suite as made: one with less room or other rules (a fixed buffer,
 * a failing or debug allocator) gets a make that gives it what the suites
 * need and an unmake that checks what it alone can.
 *
 * Needs POSIX (open, close): define _POSIX_C_SOURCE or _GNU_SOURCE before
 * the first #include.
 */
#ifndef LA_REGISTRY_H
#define LA_REGISTRY_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "liballoc.h"

enum { REGISTRY_CORE = 1, REGISTRY_FAMILY = 2, REGISTRY_DEBUG = 4, REGISTRY_ALL = 7 };

#define LA_REGISTRY(X)                                              \
    X(page, "page", CORE)                                           \
    X(c, "c", CORE)                                                 \
    X(smp, "smp", CORE)                                             \
    X(arena_page, "arena over page", CORE)                          \
    X(arena_c, "arena over c", CORE)                                \
    X(arena_smp, "arena over smp", CORE)                            \
    X(fixed, "fixed buffer", CORE)                                  \
    X(fixed_thread_safe, "thread-safe fixed buffer", CORE)          \
    X(failing_c, "failing over c", CORE)                            \
    X(buffer_first_c, "buffer-first(64K)/c", FAMILY)                \
    X(buffer_first_small_c, "buffer-first(100)/c", FAMILY)          \
    X(buffer_first_smp, "buffer-first(64K)/smp", FAMILY)            \
    X(thread_safe_c, "thread-safe/c", FAMILY)                       \
    X(thread_safe_arena, "thread-safe/arena", FAMILY)               \
    X(logging_c, "logging/c", FAMILY)                               \
    X(debug_page, "debug(page)", DEBUG)                             \
    X(debug_smp, "debug(smp)", DEBUG)                               \
    X(debug_thread_safe_smp, "debug(thread-safe/smp)", DEBUG)

/* An allocator under test and what it owns. */
typedef struct {
    la_allocator a;
    void *handle; /* the wrapper or allocator object, if any */
    la_arena *arena; /* an arena under a wrapper */
    la_thread_safe *inner; /* a thread-safe wrapper under the debug allocator */
    void *memory; /* a buffer for fixed-buffer and buffer-first allocators */
    la_fixed_buffer fb;
    la_buffer_first bf;
    int fd;
} registry_subject;

/* Zig runs its fixed-buffer tests on 800000 * 8 bytes; so do we. */
enum { REGISTRY_FIXED_LEN = 800000 * 8, REGISTRY_BUFFER_FIRST_LEN = 64 * 1024 };

static inline int registry_make_page(registry_subject *s) { s->a = la_page_allocator(); return 1; }
static inline int registry_make_c(registry_subject *s) { s->a = la_c_allocator(); return 1; }
static inline int registry_make_smp(registry_subject *s) { s->a = la_smp_allocator(); return 1; }
static inline void registry_unmake_page(registry_subject *s) { (void)s; }
static inline void registry_unmake_c(registry_subject *s) { (void)s; }
static inline void registry_unmake_smp(registry_subject *s) { (void)s; }

static inline int registry_arena(registry_subject *s, la_allocator child) {
    s->arena = la_arena_create(child);
    if (!s->arena) return 0;
    s->a = la_arena_allocator(s->arena);
    return 1;
}
static inline int registry_make_arena_page(registry_subject *s) { return registry_arena(s, la_page_allocator()); }
static inline int registry_make_arena_c(registry_subject *s) { return registry_arena(s, la_c_allocator()); }
static inline int registry_make_arena_smp(registry_subject *s) { return registry_arena(s, la_smp_allocator()); }
static inline void registry_unmake_arena(registry_subject *s) { la_arena_destroy(s->arena); }
#define registry_unmake_arena_page registry_unmake_arena
#define registry_unmake_arena_c registry_unmake_arena
#define registry_unmake_arena_smp registry_unmake_arena

static inline int registry_fixed_buffer(registry_subject *s) {
    s->memory = malloc(REGISTRY_FIXED_LEN);
    if (!s->memory) return 0;
    la_fixed_buffer_init(&s->fb, s->memory, REGISTRY_FIXED_LEN);
    return 1;
}
static inline int registry_make_fixed(registry_subject *s) {
    if (!registry_fixed_buffer(s)) return 0;
    s->a = la_fixed_buffer_allocator(&s->fb);
    return 1;
}
static inline int registry_make_fixed_thread_safe(registry_subject *s) {
    if (!registry_fixed_buffer(s)) return 0;
    s->a = la_fixed_buffer_thread_safe_allocator(&s->fb);
    return 1;
}
static inline void registry_unmake_memory(registry_subject *s) { free(s->memory); }
#define registry_unmake_fixed registry_unmake_memory
#define registry_unmake_fixed_thread_safe registry_unmake_memory

static inline int registry_make_failing_c(registry_subject *s) {
    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    if (!f) return 0;
    s->handle = f;
    s->a = la_failing_allocator(f);
    return 1;
}
/* The suites free everything they allocate, and nothing was induced. */
static inline void registry_unmake_failing_c(registry_subject *s) {
    la_failing_stats st;
    la_failing_get_stats(s->handle, &st);
    CHECK_EQ_SZ(st.allocations, st.deallocations);
    CHECK_EQ_SZ(st.allocated_bytes, st.freed_bytes);
    CHECK(!st.has_induced_failure);
    la_failing_destroy(s->handle);
}

static inline int registry_buffer_first(registry_subject *s, size_t len, la_allocator fallback) {
    s->memory = malloc(REGISTRY_BUFFER_FIRST_LEN);
    if (!s->memory) return 0;
    la_buffer_first_init(&s->bf, s->memory, len, fallback);
    s->a = la_buffer_first_allocator(&s->bf);
    return 1;
}
static inline int registry_make_buffer_first_c(registry_subject *s) {
    return registry_buffer_first(s, REGISTRY_BUFFER_FIRST_LEN, la_c_allocator());
}
static inline int registry_make_buffer_first_small_c(registry_subject *s) {
    return registry_buffer_first(s, 100, la_c_allocator());
}
static inline int registry_make_buffer_first_smp(registry_subject *s) {
    return registry_buffer_first(s, REGISTRY_BUFFER_FIRST_LEN, la_smp_allocator());
}
#define registry_unmake_buffer_first_c registry_unmake_memory
#define registry_unmake_buffer_first_small_c registry_unmake_memory
#define registry_unmake_buffer_first_smp registry_unmake_memory

static inline int registry_thread_safe(registry_subject *s, la_allocator child) {
    la_thread_safe *ts = la_thread_safe_create(child);
    if (!ts) return 0;
    s->handle = ts;
    s->a = la_thread_safe_allocator(ts);
    return 1;
}
static inline int registry_make_thread_safe_c(registry_subject *s) {
    return registry_thread_safe(s, la_c_allocator());
}
static inline int registry_make_thread_safe_arena(registry_subject *s) {
    s->arena = la_arena_create(la_page_allocator());
    return s->arena && registry_thread_safe(s, la_arena_allocator(s->arena));
}
static inline void registry_unmake_thread_safe_c(registry_subject *s) { la_thread_safe_destroy(s->handle); }
static inline void registry_unmake_thread_safe_arena(registry_subject *s) {
    la_thread_safe_destroy(s->handle);
    la_arena_destroy(s->arena);
}

static inline int registry_make_logging_c(registry_subject *s) {
    s->fd = open("/dev/null", O_WRONLY);
    la_logging *lg = s->fd < 0 ? NULL : la_logging_create(la_c_allocator(), s->fd, 0);
    if (!lg) return 0;
    s->handle = lg;
    s->a = la_logging_allocator(lg);
    return 1;
}
static inline void registry_unmake_logging_c(registry_subject *s) {
    la_logging_destroy(s->handle);
    close(s->fd);
}

static inline int registry_debug(registry_subject *s, la_allocator backing) {
    la_debug *d = la_debug_create(backing, NULL);
    if (!d) return 0;
    s->handle = d;
    s->a = la_debug_allocator(d);
    return 1;
}
static inline int registry_make_debug_page(registry_subject *s) { return registry_debug(s, la_page_allocator()); }
static inline int registry_make_debug_smp(registry_subject *s) { return registry_debug(s, la_smp_allocator()); }
/* The suites leave no block behind. */
static inline void registry_unmake_debug(registry_subject *s) { CHECK(la_debug_destroy(s->handle) == LA_CHECK_OK); }
#define registry_unmake_debug_page registry_unmake_debug
#define registry_unmake_debug_smp registry_unmake_debug
/* A wrapper that forwards smp's live-block capability: the debug allocator
 * keeps its in-band record strategy over it. */
static inline int registry_make_debug_thread_safe_smp(registry_subject *s) {
    s->inner = la_thread_safe_create(la_smp_allocator());
    return s->inner && registry_debug(s, la_thread_safe_allocator(s->inner));
}
static inline void registry_unmake_debug_thread_safe_smp(registry_subject *s) {
    registry_unmake_debug(s);
    la_thread_safe_destroy(s->inner);
}

/* Runs f(name, allocator) on every allocator of `suites` (REGISTRY_* bits),
 * each made fresh and unmade afterwards; one that cannot be made is a
 * failed check. */
static inline void registry_each(unsigned suites, void (*f)(const char *name, la_allocator a)) {
#define REGISTRY_RUN_(id, name, suite)                        \
    if (suites & REGISTRY_##suite) {                          \
        registry_subject s = {0};                             \
        int made = registry_make_##id(&s);                    \
        CHECK(made);                                          \
        if (made) {                                           \
            f(name, s.a);                                     \
            registry_unmake_##id(&s);                         \
        }                                                     \
    }
    LA_REGISTRY(REGISTRY_RUN_)
#undef REGISTRY_RUN_
}

#endif
