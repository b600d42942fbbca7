/*
 * smp_bench: allocator workloads, written once, built twice.
 *
 *   default build    : through the la_smp_allocator vtable (vtable->alloc and
 *                      vtable->free, la_realloc for growth);
 *   -DBENCH_MALLOC   : plain malloc/free/realloc, so that glibc and peers
 *                      (LD_PRELOAD) run exactly the same code.
 *
 * Usage: smp_bench <workload>; prints "<workload> <seconds> <peak RSS KiB>".
 * Workloads:
 *   pairs     alloc+free pairs of 16-128 B, one thread
 *   churn     random-order churn over a live set of 20,000 mixed sizes
 *             (16 B - 64 KiB, mostly small), one thread
 *   prodcons  a producer and a consumer thread: every block freed by the other
 *   mixed     8 threads, each churning a live set of mixed small, medium and
 *             large (up to 2 MiB) blocks
 *   realloc   grow a block by 1/8 at a time from 16 B to 64 MiB, 40 times
 * benches/smp_bench.py runs them for every allocator and prints the table.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifndef BENCH_MALLOC
#include "liballoc.h"
static la_allocator A;
/* Straight through the vtable (the allocator interface), 16-byte aligned. */
static inline void *b_alloc(size_t n) { return A.vtable->alloc(A.ptr, n, 4, 0); }
static inline void b_free(void *p, size_t n) { A.vtable->free(A.ptr, p, n, 4, 0); }
static inline void *b_realloc(void *p, size_t old, size_t n) { return la_realloc(A, p, 1, old, n, 16); }
#else
static inline void *b_alloc(size_t n) { return malloc(n); }
static inline void b_free(void *p, size_t n) {
    (void)n;
    free(p);
}
static inline void *b_realloc(void *p, size_t old, size_t n) {
    (void)old;
    return realloc(p, n);
}
#endif

static inline uint64_t rnd(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile uintptr_t sink;
/* BENCH_SCALE (environment) scales iteration counts, e.g. 0.1 for profiling. */
static double scale = 1.0;
#define ITERS(n) ((long)((n) * scale))

/* ---- pairs ---- */
static void w_pairs(void) {
    uint64_t r = 1;
    for (long i = 0; i < ITERS(20000000); i++) {
        size_t n = 16 + (rnd(&r) & 112);
        char *p = b_alloc(n);
        p[0] = (char)i;
        sink += (uintptr_t)p[0];
        b_free(p, n);
    }
}

/* ---- churn ---- */
static size_t mixed_small(uint64_t *r) {
    uint64_t v = rnd(r);
    unsigned pick = (unsigned)(v & 1023);
    v >>= 10;
    if (pick < 900) return 16 + v % 240;
    if (pick < 1010) return 256 + v % 3840;
    return 4096 + v % 61440;
}

/* Live blocks are kept as (pointer, length) pairs, like slices, so that
 * passing the length to the allocator costs no extra cache miss. */
typedef struct {
    void *p;
    size_t n;
} slice;

static void w_churn(void) {
    enum { LIVE_SET = 20000 };
    static slice slot[LIVE_SET];
    uint64_t r = 7;
    for (long i = 0; i < ITERS(8000000); i++) {
        slice *s = &slot[rnd(&r) % LIVE_SET];
        if (s->p) b_free(s->p, s->n);
        s->n = mixed_small(&r);
        s->p = b_alloc(s->n);
        memset(s->p, 0, 16);
    }
    for (unsigned k = 0; k < LIVE_SET; k++)
        if (slot[k].p) b_free(slot[k].p, slot[k].n);
}

/* ---- producer/consumer ---- */
enum { RING = 4096, PC_ITEMS = 5000000 };
typedef struct {
    _Atomic(void *) ring[RING];
    char pad[64];
} channel;
static channel chans[1];

static void *producer(void *arg) {
    channel *c = arg;
    uint64_t r = (uintptr_t)arg | 1;
    for (long i = 0; i < ITERS(PC_ITEMS); i++) {
        size_t n = 16 + rnd(&r) % 496;
        char *p = b_alloc(n);
        *(size_t *)p = n;
        _Atomic(void *) *s = &c->ring[i % RING];
        while (atomic_load_explicit(s, memory_order_acquire) != NULL) sched_yield();
        atomic_store_explicit(s, p, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg) {
    channel *c = arg;
    for (long i = 0; i < ITERS(PC_ITEMS); i++) {
        _Atomic(void *) *s = &c->ring[i % RING];
        void *p;
        while ((p = atomic_load_explicit(s, memory_order_acquire)) == NULL) sched_yield();
        atomic_store_explicit(s, NULL, memory_order_release);
        b_free(p, *(size_t *)p);
    }
    return NULL;
}

static void w_prodcons(void) {
    pthread_t t[2];
    pthread_create(&t[0], NULL, producer, &chans[0]);
    pthread_create(&t[1], NULL, consumer, &chans[0]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
}

/* ---- mixed, many threads ---- */
static size_t mixed_any(uint64_t *r) {
    uint64_t v = rnd(r);
    unsigned pick = (unsigned)(v & 1023);
    v >>= 10;
    if (pick < 800) return 16 + v % 496;
    if (pick < 980) return 512 + v % 32256;
    if (pick < 1020) return 32768 + v % 491520;
    return 524288 + v % 1572864;
}

static void *mixed_worker(void *arg) {
    enum { LIVE_SET = 2000 };
    slice slot[LIVE_SET] = {{0, 0}};
    uint64_t r = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 3;
    for (long i = 0; i < ITERS(600000); i++) {
        slice *s = &slot[rnd(&r) % LIVE_SET];
        if (s->p) b_free(s->p, s->n);
        s->n = mixed_any(&r);
        s->p = b_alloc(s->n);
        memset(s->p, 1, s->n < 64 ? s->n : 64);
    }
    for (unsigned k = 0; k < LIVE_SET; k++)
        if (slot[k].p) b_free(slot[k].p, slot[k].n);
    return NULL;
}

static void w_mixed(void) {
    pthread_t t[8];
    for (uintptr_t i = 0; i < 8; i++) pthread_create(&t[i], NULL, mixed_worker, (void *)(i + 1));
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
}

/* ---- realloc growth ---- */
static void w_realloc(void) {
    for (int rep = 0; rep < 40; rep++) {
        size_t n = 16;
        char *p = b_alloc(n);
        p[0] = 1;
        while (n < (64u << 20)) {
            size_t m = n + n / 8 + 16;
            if (m > (64u << 20)) m = 64u << 20;
            p = b_realloc(p, n, m);
            if (!p) abort();
            p[m - 1] = 2; /* touch the new end */
            n = m;
        }
        sink += (uintptr_t)p[0];
        b_free(p, n);
    }
}

/* Peak RSS of this process in KiB: VmHWM (ru_maxrss would include the
 * parent's RSS before exec). */
static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = atol(line + 6);
    fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s pairs|churn|prodcons|mixed|realloc\n", argv[0]);
        return 2;
    }
#ifndef BENCH_MALLOC
    A = la_smp_allocator();
#endif
    if (getenv("BENCH_SCALE")) scale = atof(getenv("BENCH_SCALE"));
    struct {
        const char *name;
        void (*fn)(void);
    } w[] = {{"pairs", w_pairs}, {"churn", w_churn}, {"prodcons", w_prodcons},
             {"mixed", w_mixed}, {"realloc", w_realloc}};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        if (strcmp(argv[1], w[i].name) != 0) continue;
        double t0 = now();
        w[i].fn();
        double t = now() - t0;
        printf("%s %.4f %ld\n", w[i].name, t, peak_rss_kib());
        return 0;
    }
    fprintf(stderr, "unknown workload %s\n", argv[1]);
    return 2;
}
