/*
 * test_debug: the debug allocator through the C API -- the shared
 * conformance suite, leak and misuse reports read back from a report file
 * (continue mode), the memory limit, and la_check_all_allocation_failures
 * on a correct function, a swallowed failure, a leak on the error path and
 * a nondeterministic function.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conformance.h"
#include "registry.h"

/* A debug allocator in continue mode writing its reports to a temp file. */
typedef struct {
    la_debug *d;
    la_allocator a;
    FILE *report;
} fixture;

static fixture fixture_make(la_allocator backing) {
    fixture f;
    la_debug_config cfg;
    la_debug_config_init(&cfg);
    f.report = tmpfile();
    cfg.on_error = LA_DEBUG_CONTINUE;
    cfg.report_fd = fileno(f.report);
    f.d = la_debug_create(backing, &cfg);
    f.a = la_debug_allocator(f.d);
    return f;
}

/* The report so far (static buffer). */
static const char *fixture_report(fixture *f) {
    static char buf[1 << 16];
    ssize_t n = pread(fileno(f->report), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* Checks that `r` contains `needle`; on failure shows the whole report (the
 * reason is usually in it; at most four times, to keep the log short). */
#define CHECK_REPORT(r, needle) check_report_((r), (needle), __FILE__, __LINE__)
static void check_report_(const char *r, const char *needle, const char *file, int line) {
    static int shown;
    if (strstr(r, needle) != NULL) {
        check_passed_++;
        return;
    }
    check_fail_(file, line, needle);
    fprintf(stderr, "%s:%d: check failed: the report lacks \"%s\"\n", file, line, needle);
    if (shown++ < 4) fprintf(stderr, "---- the report ----\n%s---- end of the report ----\n", r);
}

static la_check fixture_done(fixture *f) {
    la_check r = la_debug_destroy(f->d);
    fclose(f->report);
    return r;
}

static la_debug_stats stats(fixture *f) {
    la_debug_stats s;
    la_debug_get_stats(f->d, &s);
    return s;
}

/* Not a tail call, so the helper keeps its frame in the trace. */
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

__attribute__((noinline)) static void *leaky_helper(la_allocator a) {
    void *p = la_alloc(a, 1, 24, 8);
    NO_TAIL_CALL();
    return p;
}

static void test_leak_report(void) {
    fixture f = fixture_make(la_c_allocator());
    CHECK(leaky_helper(f.a) != NULL);
    CHECK(la_debug_detect_leaks(f.d));
    const char *r = fixture_report(&f);
    CHECK_REPORT(r, "Direct leak of 24 byte(s) in 1 object(s) allocated from:");
    CHECK_REPORT(r, "#0 0x");
    CHECK_REPORT(r, "in leaky_helper");
    CHECK_REPORT(r, "test_debug.c:");
    CHECK_REPORT(r, "SUMMARY: liballoc: 24 byte(s) leaked in 1 allocation(s).");
    CHECK(fixture_done(&f) == LA_CHECK_LEAK);
}

/* Different bodies, so the compiler cannot fold the two sites into one. */
static volatile int free_site;
__attribute__((noinline)) static void first_free_site(la_allocator a, int *p) {
    LA_FREE(a, p, 4);
    free_site = 1;
}
__attribute__((noinline)) static void second_free_site(la_allocator a, int *p) {
    LA_FREE(a, p, 4);
    free_site = 2;
}

static void test_double_free(void) {
    fixture f = fixture_make(la_page_allocator());
    int *p = LA_ALLOC(f.a, int, 4);
    CHECK(p != NULL);
    first_free_site(f.a, p);
    second_free_site(f.a, p);
    la_debug_stats s = stats(&f);
    CHECK_EQ_SZ(s.errors, 1);
    CHECK(s.last_error == LA_DEBUG_DOUBLE_FREE);
    const char *r = fixture_report(&f);
    CHECK(strstr(r, "liballoc: error: double free") == r);
    CHECK_REPORT(r, "in first_free_site");
    CHECK_REPORT(r, "in second_free_site");
    CHECK_REPORT(r, "allocated by thread");
    CHECK(fixture_done(&f) == LA_CHECK_OK);
}

static void test_wrong_size_and_interior(void) {
    fixture f = fixture_make(la_page_allocator());
    char *p = la_alloc(f.a, 1, 100, 16);
    la_free(f.a, p, 1, 99, 16);
    CHECK(stats(&f).last_error == LA_DEBUG_WRONG_SIZE);
    CHECK_REPORT(fixture_report(&f), "free with wrong size: block");
    char *q = la_alloc(f.a, 1, 100, 16);
    la_free(f.a, q + 10, 1, 90, 1);
    CHECK(stats(&f).last_error == LA_DEBUG_INTERIOR_POINTER);
    CHECK(!la_resize(f.a, q, 1, 99, 50, 16));
    CHECK(stats(&f).last_error == LA_DEBUG_WRONG_SIZE);
    q[100] = 1; /* one byte past the end: caught on free */
    la_free(f.a, q, 1, 100, 16);
    CHECK(stats(&f).last_error == LA_DEBUG_OVERFLOW);
    CHECK_REPORT(fixture_report(&f), "heap buffer overflow: byte 0 past the end of the 100-byte block");
    CHECK_EQ_SZ(stats(&f).errors, 4);
    CHECK(fixture_done(&f) == LA_CHECK_OK);
}

static void test_memory_limit(void) {
    fixture f = fixture_make(la_page_allocator());
    la_debug_set_memory_limit(f.d, 1000);
    void *a = la_alloc(f.a, 1, 600, 1);
    CHECK(a != NULL);
    CHECK(la_alloc(f.a, 1, 401, 1) == NULL);
    void *b = la_alloc(f.a, 1, 400, 1);
    CHECK(b != NULL);
    CHECK_EQ_SZ(stats(&f).live_bytes, 1000);
    la_free(f.a, a, 1, 600, 1);
    la_free(f.a, b, 1, 400, 1);
    CHECK_EQ_SZ(stats(&f).live_bytes, 0);
    CHECK(fixture_done(&f) == LA_CHECK_OK);
}

/* ---- la_check_all_allocation_failures ---- */

typedef struct {
    char *name;
    int *values;
    size_t n;
} record;

/* Correct: every failure propagates and frees what was allocated. */
static int make_record(la_allocator a, void *ctx) {
    (void)ctx;
    record *r = LA_CREATE(a, record);
    if (!r) return 1;
    r->name = la_dupez(a, "hello", 5);
    if (!r->name) goto fail_name;
    r->values = LA_ALLOC(a, int, 16);
    if (!r->values) goto fail_values;
    int *grown = la_realloc(a, r->values, sizeof(int), 16, 64, _Alignof(int));
    if (!grown) goto fail_grow;
    LA_FREE(a, grown, 64);
    la_free(a, r->name, 1, 6, 1);
    LA_DESTROY(a, r);
    return 0;
fail_grow:
    LA_FREE(a, r->values, 16);
fail_values:
    la_free(a, r->name, 1, 6, 1);
fail_name:
    LA_DESTROY(a, r);
    return 1;
}

/* Swallows the failure of its second allocation. */
static int swallow(la_allocator a, void *ctx) {
    (void)ctx;
    void *x = la_alloc(a, 1, 32, 8);
    if (!x) return 1;
    void *y = la_alloc(a, 1, 64, 8);
    if (y) la_free(a, y, 1, 64, 8); /* BUG: a failure is not reported */
    la_free(a, x, 1, 32, 8);
    return 0;
}

/* Leaks its first block when the second allocation fails. */
static int leak_on_error(la_allocator a, void *ctx) {
    (void)ctx;
    void *x = la_alloc(a, 1, 32, 8);
    if (!x) return 1;
    void *y = la_alloc(a, 1, 64, 8);
    if (!y) return 1; /* BUG: x leaks */
    la_free(a, y, 1, 64, 8);
    la_free(a, x, 1, 32, 8);
    return 0;
}

/* Allocates less on later runs. */
static int nondeterministic(la_allocator a, void *ctx) {
    int *runs = ctx;
    int n = (*runs)++ == 0 ? 3 : 1;
    for (int i = 0; i < n; i++) {
        void *x = la_alloc(a, 1, 8, 8);
        if (!x) return 1;
        la_free(a, x, 1, 8, 8);
    }
    return 0;
}

static int always_fails(la_allocator a, void *ctx) {
    (void)a;
    (void)ctx;
    return 7;
}

static void test_check_all(void) {
    CHECK(la_check_all_allocation_failures(la_c_allocator(), make_record, NULL) == LA_CHECK_OK);
    fprintf(stderr, "test_debug: three expected check_all_allocation_failures reports follow\n");
    CHECK(la_check_all_allocation_failures(la_c_allocator(), swallow, NULL) ==
          LA_CHECK_SWALLOWED_FAILURE);
    CHECK(la_check_all_allocation_failures(la_page_allocator(), leak_on_error, NULL) ==
          LA_CHECK_LEAK);
    int runs = 0;
    CHECK(la_check_all_allocation_failures(la_c_allocator(), nondeterministic, &runs) ==
          LA_CHECK_NONDETERMINISTIC);
    CHECK(la_check_all_allocation_failures(la_c_allocator(), always_fails, NULL) ==
          LA_CHECK_TEST_FAILED);
    CHECK(la_check_all_allocation_failures(la_c_allocator(), NULL, NULL) == LA_CHECK_OUT_OF_MEMORY);
    fprintf(stderr, "test_debug: end of expected reports\n");
}

static void conform(const char *name, la_allocator a) { conformance_run(name, a); }

int main(void) {
    registry_each(REGISTRY_DEBUG, conform);

    test_leak_report();
    test_double_free();
    test_wrong_size_and_interior();
    test_memory_limit();
    test_check_all();
    return check_summary("test_debug");
}
