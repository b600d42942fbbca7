/*
 * test_family: the buffer-first, memory pool, thread-safe and logging
 * allocators from C.
 *
 * The shared conformance suite runs on every allocator of the family in
 * the registry (registry.h); then the specific behaviours: routing by
 * ownership, pool reuse and reset modes, a fork() while another thread
 * holds the thread-safe lock, the log line format, and NULL handles.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "conformance.h"
#include "registry.h"

/* ---- conformance ---- */

static void conform(const char *name, la_allocator a) { conformance_run(name, a); }

/* The suite on every wrapper of the family in the registry. */
static void conformance_family(void) { registry_each(REGISTRY_FAMILY, conform); }

/* ---- buffer-first: routing by ownership ---- */

static void buffer_first_routing(void) {
    unsigned char buf[10];
    la_buffer_first bf;
    la_buffer_first_init(&bf, buf, sizeof buf, la_c_allocator());
    la_allocator a = la_buffer_first_allocator(&bf);

    char *b0 = la_dupe(a, "hellowrld", 9);
    CHECK(b0 == (char *)buf && la_buffer_first_owns(&bf, b0));
    char *b1 = la_dupe(a, "test!", 5); /* does not fit: fallback */
    CHECK(b1 != NULL && !la_buffer_first_owns(&bf, b1));
    la_free(a, b0, 1, 9, 1); /* last buffer block: space comes back */
    CHECK_EQ_SZ(la_buffer_first_used(&bf), 0);
    char *b2 = la_dupe(a, "qwertyqwerty", 12); /* too big for the buffer */
    CHECK(b2 != NULL && !la_buffer_first_owns(&bf, b2));
    char *b3 = la_dupe(a, "dvorak", 6);
    CHECK(la_buffer_first_owns(&bf, b3));
    char *b4 = la_dupe(a, "moretext", 8); /* remainder too small */
    CHECK(b4 != NULL && !la_buffer_first_owns(&bf, b4));

    /* The fallback block is grown by the fallback, keeping its contents. */
    char *b2g = la_realloc(a, b2, 1, 12, 100000, 1);
    CHECK(b2g != NULL && memcmp(b2g, "qwertyqwerty", 12) == 0);
    /* The buffer block grows in place up to the buffer's end, then moves. */
    CHECK(la_resize(a, b3, 1, 6, 10, 1));
    CHECK(!la_resize(a, b3, 1, 10, 11, 1));
    char *b3g = la_realloc(a, b3, 1, 10, 11, 1);
    CHECK(b3g != NULL && !la_buffer_first_owns(&bf, b3g) && memcmp(b3g, "dvorak", 6) == 0);
    CHECK_EQ_SZ(la_buffer_first_used(&bf), 0);

    la_free(a, b1, 1, 5, 1);
    la_free(a, b2g, 1, 100000, 1);
    la_free(a, b3g, 1, 11, 1);
    la_free(a, b4, 1, 8, 1);
}

/* ---- memory pool ---- */

typedef struct {
    double x, y, z;
    int id;
} particle;

static void pool_reuse_and_reset(void) {
    la_pool *pool = la_pool_create(la_c_allocator(), sizeof(particle), _Alignof(particle));
    CHECK(pool != NULL);
    CHECK_EQ_SZ(la_pool_query_capacity(pool), 0);

    particle *ps[300];
    for (int i = 0; i < 300; i++) {
        ps[i] = la_pool_create_item(pool);
        CHECK(ps[i] != NULL && ((uintptr_t)ps[i] % _Alignof(particle)) == 0);
        ps[i]->id = i;
    }
    for (int i = 0; i < 300; i++) CHECK(ps[i]->id == i);
    size_t cap = la_pool_query_capacity(pool);
    CHECK(cap >= 300);

    /* O(1) reuse: a destroyed item is the next one handed out; steady
     * create/destroy never grows the pool. */
    for (int round = 0; round < 10000; round++) {
        la_pool_destroy_item(pool, ps[round % 300]);
        particle *p = la_pool_create_item(pool);
        CHECK(p == ps[round % 300]);
    }
    CHECK_EQ_SZ(la_pool_query_capacity(pool), cap);

    /* Reset modes. */
    CHECK(la_pool_reset(pool, LA_ARENA_RETAIN_CAPACITY, 0));
    CHECK_EQ_SZ(la_pool_query_capacity(pool), cap);
    CHECK(la_pool_create_item(pool) == ps[0]); /* reused from the start */
    CHECK(la_pool_reset(pool, LA_ARENA_RETAIN_WITH_LIMIT, 8192)); /* the first chunk */
    CHECK(la_pool_query_capacity(pool) > 0 && la_pool_query_capacity(pool) < cap);
    CHECK(la_pool_reset(pool, LA_ARENA_FREE_ALL, 0));
    CHECK_EQ_SZ(la_pool_query_capacity(pool), 0);

    /* Preheat: capacity first, then no growth while using it. */
    CHECK(la_pool_preheat(pool, 50));
    CHECK_EQ_SZ(la_pool_query_capacity(pool), 50);
    for (int i = 0; i < 50; i++) CHECK(la_pool_create_item(pool) != NULL);
    CHECK_EQ_SZ(la_pool_query_capacity(pool), 50);
    la_pool_destroy(pool);

    /* Over-aligned items from the page allocator. */
    pool = la_pool_create(la_page_allocator(), 1, 4096);
    CHECK(pool != NULL);
    for (int i = 0; i < 5; i++) {
        void *p = la_pool_create_item(pool);
        CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
    }
    la_pool_destroy(pool);

    /* A pool over an always-failing child reports out of memory. */
    la_allocator failing = {NULL, NULL};
    CHECK(la_pool_create(failing, 8, 8) == NULL);
}

/* ---- thread-safe: fork while another thread holds the lock ---- */

/* A child allocator whose alloc stays inside (holding the wrapper's lock)
 * until released, so fork() happens while the lock is taken. */
static atomic_int slow_inside;
static atomic_int slow_release;
/* The last block slow_alloc made, stored before the wrapper's lock is
 * released: the holder's block is live while fork() runs, and a child of
 * that fork() has no holder thread, so this keeps the block reachable
 * there (a leak checker would otherwise count it lost). */
static void *_Atomic slow_block;

static void *slow_alloc(void *ctx, size_t len, la_alignment a, uintptr_t ra) {
    (void)ctx;
    if (atomic_load(&slow_release) == 0) {
        atomic_store(&slow_inside, 1);
        struct timespec ts = {0, 1000000};
        while (atomic_load(&slow_release) == 0) nanosleep(&ts, NULL);
    }
    void *p = la_raw_alloc(la_c_allocator(), len, a, ra);
    atomic_store(&slow_block, p);
    return p;
}
static bool slow_resize(void *ctx, void *m, size_t len, la_alignment a, size_t n, uintptr_t ra) {
    (void)ctx;
    return la_raw_resize(la_c_allocator(), m, len, a, n, ra);
}
static void *slow_remap(void *ctx, void *m, size_t len, la_alignment a, size_t n, uintptr_t ra) {
    (void)ctx;
    return la_raw_remap(la_c_allocator(), m, len, a, n, ra);
}
static void slow_free(void *ctx, void *m, size_t len, la_alignment a, uintptr_t ra) {
    (void)ctx;
    la_raw_free(la_c_allocator(), m, len, a, ra);
}
static const la_vtable slow_vtable = {slow_alloc, slow_resize, slow_remap, slow_free};

static void *holder_thread(void *arg) {
    la_allocator a = *(la_allocator *)arg;
    void *p = la_alloc(a, 1, 64, 8); /* blocks inside the child, lock held */
    la_free(a, p, 1, 64, 8);
    return p;
}

static void *releaser_thread(void *arg) {
    (void)arg;
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    atomic_store(&slow_release, 1);
    return NULL;
}

static void thread_safe_fork(void) {
    la_thread_safe *ts = la_thread_safe_create((la_allocator){NULL, &slow_vtable});
    CHECK(ts != NULL);
    la_allocator a = la_thread_safe_allocator(ts);

    pthread_t holder, releaser;
    CHECK(pthread_create(&holder, NULL, holder_thread, &a) == 0);
    struct timespec tick = {0, 1000000};
    while (atomic_load(&slow_inside) == 0) nanosleep(&tick, NULL);
    /* The holder is inside the child with the lock held. fork() must wait
     * for it (the prepare handler takes the lock), and the child process
     * must then find the lock usable. */
    CHECK(pthread_create(&releaser, NULL, releaser_thread, NULL) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10); /* a deadlock kills the child instead of hanging the test */
        void *p = la_alloc(a, 1, 100, 8);
        if (p == NULL) _exit(2);
        memset(p, 1, 100);
        la_free(a, p, 1, 100, 8);
        _exit(0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(pthread_join(holder, NULL) == 0);
    CHECK(pthread_join(releaser, NULL) == 0);
    /* The parent keeps using it too. */
    void *p = la_alloc(a, 1, 10, 1);
    CHECK(p != NULL);
    la_free(a, p, 1, 10, 1);
    la_thread_safe_destroy(ts);
}

/* Many threads through one wrapper over a single-threaded allocator. */
#define N_THREADS 4
static void *hammer_thread(void *arg) {
    la_allocator a = *(la_allocator *)arg;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(i % 200) + 1;
        unsigned char *p = la_alloc(a, 1, n, 8);
        if (p == NULL) return (void *)1;
        memset(p, (int)n, n);
        la_free(a, p, 1, n, 8);
    }
    return NULL;
}

static void thread_safe_threads(void) {
    static unsigned char buf[1 << 16];
    la_buffer_first bf; /* single-threaded on its own */
    la_buffer_first_init(&bf, buf, sizeof buf, la_c_allocator());
    la_thread_safe *ts = la_thread_safe_create(la_buffer_first_allocator(&bf));
    la_allocator a = la_thread_safe_allocator(ts);
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) CHECK(pthread_create(&t[i], NULL, hammer_thread, &a) == 0);
    for (int i = 0; i < N_THREADS; i++) {
        void *r = (void *)1;
        CHECK(pthread_join(t[i], &r) == 0);
        CHECK(r == NULL);
    }
    la_thread_safe_destroy(ts);
}

/* ---- logging: the line format ---- */

static void logging_format(void) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    la_logging *lg = la_logging_create(la_c_allocator(), fds[1], 16);
    CHECK(lg != NULL);
    la_allocator a = la_logging_allocator(lg);

    void *small = la_raw_alloc(a, 8, 0, 0x10); /* below min_len: not logged */
    void *p = la_raw_alloc(a, 100, 4, 0xabc);
    CHECK(la_raw_resize(a, p, 100, 4, 20, 0xabc));
    void *q = la_raw_remap(a, p, 20, 4, 1 << 20, 0);
    CHECK(q != NULL);
    la_raw_free(a, q, 1 << 20, 4, 0x1);
    la_raw_free(a, small, 8, 0, 0x10);
    CHECK(la_raw_alloc(a, SIZE_MAX / 2, 4, 0x2) == NULL);
    la_logging_destroy(lg);
    close(fds[1]);

    char got[2048] = {0};
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], got + n, sizeof got - 1 - n)) > 0) n += (size_t)r;
    close(fds[0]);

    char want[2048];
    snprintf(want, sizeof want,
             "alloc len=100 align=16 ra=0xabc -> %#lx\n"
             "resize ptr=%#lx len=100 align=16 new_len=20 ra=0xabc -> true\n"
             "remap ptr=%#lx len=20 align=16 new_len=1048576 ra=0x0 -> %#lx\n"
             "free ptr=%#lx len=1048576 align=16 ra=0x1\n"
             "alloc len=%zu align=16 ra=0x2 -> null\n",
             (unsigned long)(uintptr_t)p, (unsigned long)(uintptr_t)p,
             (unsigned long)(uintptr_t)p, (unsigned long)(uintptr_t)q,
             (unsigned long)(uintptr_t)q, (size_t)(SIZE_MAX / 2));
    CHECK(strcmp(got, want) == 0);
    if (strcmp(got, want) != 0) fprintf(stderr, "got:\n%s\nwant:\n%s\n", got, want);
}

/* ---- NULL handles and bad input ---- */

static void null_handles(void) {
    la_allocator none = {NULL, NULL};
    la_buffer_first_init(NULL, NULL, 0, la_c_allocator());
    CHECK(la_raw_alloc(la_buffer_first_allocator(NULL), 8, 0, 0) == NULL);
    CHECK(!la_buffer_first_owns(NULL, "x"));
    CHECK_EQ_SZ(la_buffer_first_used(NULL), 0);

    CHECK(la_pool_create(none, 8, 8) == NULL);
    CHECK(la_pool_create(la_c_allocator(), 8, 3) == NULL);
    CHECK(la_pool_create(la_c_allocator(), SIZE_MAX, 8) == NULL);
    CHECK(la_pool_create_item(NULL) == NULL);
    la_pool_destroy_item(NULL, NULL);
    CHECK(!la_pool_preheat(NULL, 1));
    CHECK(!la_pool_reset(NULL, LA_ARENA_FREE_ALL, 0));
    CHECK_EQ_SZ(la_pool_query_capacity(NULL), 0);
    la_pool_destroy(NULL);

    CHECK(la_thread_safe_create(none) == NULL);
    CHECK(la_raw_alloc(la_thread_safe_allocator(NULL), 8, 0, 0) == NULL);
    la_thread_safe_destroy(NULL);

    CHECK(la_logging_create(none, 2, 0) == NULL);
    CHECK(la_logging_create(la_c_allocator(), -1, 0) == NULL);
    CHECK(la_raw_alloc(la_logging_allocator(NULL), 8, 0, 0) == NULL);
    la_logging_destroy(NULL);
}

int main(void) {
    conformance_family();
    buffer_first_routing();
    pool_reuse_and_reset();
    thread_safe_fork();
    thread_safe_threads();
    logging_format();
    null_handles();
    return check_summary("test_family");
}
