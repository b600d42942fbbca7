/*
 * stress: multi-threaded allocator stress test, written once, built twice.
 *
 *   default build     : through the API (la_smp_allocator via la_alloc/la_free),
 *                       with la_smp_check_heap() and la_smp_get_stats() checks;
 *   -DSTRESS_MALLOC   : plain malloc/free, to run under LD_PRELOAD of any
 *                       malloc (ours or a peer).
 *
 * NTHREADS threads each run a loop: steal a block from another thread's
 * outbox and free it (so every block is freed by a thread other than the one
 * that allocated it), then allocate a block of a random size from 8 B to
 * 1 MiB, stamp its contents, and publish it in its own outbox. Contents are
 * verified before every free. The run is split into phases; after each phase
 * the main thread frees what is left and (API build) checks the heap and
 * that no block is still counted live.
 *
 * Usage: stress [seconds] [phases]   (defaults: 6 s, 3 phases)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

#ifndef STRESS_MALLOC
#include "liballoc.h"
static la_allocator A;
static void *blk_alloc(size_t n) { return la_alloc(A, 1, n, 16); }
static void blk_free(void *p, size_t n) { la_free(A, p, 1, n, 16); }
#else
static void *blk_alloc(size_t n) { return malloc(n); }
static void blk_free(void *p, size_t n) {
    (void)n;
    free(p);
}
#endif

#define NTHREADS 8
#define OUTBOX 512

typedef struct {
    uint64_t magic; /* STAMP ^ size */
    uint32_t owner; /* allocating thread */
    uint32_t size;
} stamp_head;

static const uint64_t STAMP = 0x5eedf00dcafe1234ull;
static _Atomic(void *) outbox[NTHREADS][OUTBOX];
static atomic_int stop;
static void *leftover[NTHREADS];
static atomic_ulong bad_blocks, n_allocs, n_frees, same_thread_frees;

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t random_size(uint64_t *r) {
    uint64_t v = rng_next(r);
    unsigned pick = (unsigned)(v % 1000);
    v >>= 10;
    if (pick < 800) return 8 + v % 249;               /* 8 .. 256 B */
    if (pick < 950) return 256 + v % (16384 - 256);   /* .. 16 KiB */
    if (pick < 995) return 16384 + v % (131072 - 16384); /* .. 128 KiB */
    return 131072 + v % (1048576 - 131072 + 1);       /* .. 1 MiB */
}

static unsigned char fill_byte(const void *p, size_t i) {
    return (unsigned char)(((uintptr_t)p >> 4) ^ (i * 31u) ^ (i >> 8));
}

/* Positions stamped: everything for small blocks, a sample for big ones. */
static int stamped(size_t i, size_t size) {
    return size <= 4096 || i < 256 || i + 256 >= size || i % 4096 == 0;
}

static void stamp(void *p, size_t size, unsigned owner) {
    stamp_head h = {STAMP ^ size, owner, (uint32_t)size};
    unsigned char *b = p;
    size_t hs = sizeof h < size ? sizeof h : size;
    memcpy(b, &h, hs);
    for (size_t i = hs; i < size; i++)
        if (stamped(i, size)) b[i] = fill_byte(p, i);
}

/* Verifies a block; returns its size, or 0 when it is corrupt. */
static size_t verify(void *p, unsigned freeing_thread) {
    stamp_head h;
    unsigned char *b = p;
    memcpy(&h, b, sizeof h < 8 ? 8 : sizeof h);
    size_t size = h.size;
    if (size < 8 || size > 1048576 || (h.magic ^ size) != STAMP) return 0;
    if (h.owner == freeing_thread) atomic_fetch_add(&same_thread_frees, 1);
    size_t hs = sizeof h < size ? sizeof h : size;
    for (size_t i = hs; i < size; i++)
        if (stamped(i, size) && b[i] != fill_byte(p, i)) return 0;
    return size;
}

static void release(void *p, unsigned me) {
    size_t size = verify(p, me);
    if (size == 0) {
        atomic_fetch_add(&bad_blocks, 1);
        return; /* leak it rather than free garbage */
    }
    blk_free(p, size);
    atomic_fetch_add(&n_frees, 1);
}

static void *worker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t r = 0x9e3779b97f4a7c15ull * (me + 1);
    unsigned long allocs = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        /* Free one block published by another thread. */
        unsigned other = (me + 1 + (unsigned)(rng_next(&r) % (NTHREADS - 1))) % NTHREADS;
        void *q = atomic_exchange(&outbox[other][rng_next(&r) % OUTBOX], NULL);
        if (q) release(q, me);
        /* Allocate, stamp, publish. */
        size_t size = random_size(&r);
        if (size < 16) size = 16; /* room for the stamp header */
        void *p = blk_alloc(size);
        if (!p) {
            atomic_fetch_add(&bad_blocks, 1);
            continue;
        }
        stamp(p, size, me);
        allocs++;
        unsigned k = (unsigned)(rng_next(&r) % OUTBOX);
        for (unsigned tries = 0;; tries++) {
            void *expected = NULL;
            if (atomic_compare_exchange_strong(&outbox[me][k], &expected, p)) break;
            k = (k + 1) % OUTBOX;
            if (tries >= OUTBOX) {
                if (atomic_load_explicit(&stop, memory_order_relaxed)) {
                    leftover[me] = p; /* the main thread frees it */
                    break;
                }
                tries = 0;
            }
        }
    }
    atomic_fetch_add(&n_allocs, allocs);
#ifndef STRESS_MALLOC
    CHECK_EQ_SZ(la_smp_check_heap(), 0);
#endif
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 6.0;
    int phases = argc > 2 ? atoi(argv[2]) : 3;
    if (phases < 1) phases = 1;
#ifndef STRESS_MALLOC
    A = la_smp_allocator();
#endif
    for (int ph = 0; ph < phases; ph++) {
        pthread_t t[NTHREADS];
        atomic_store(&stop, 0);
        for (unsigned i = 0; i < NTHREADS; i++)
            CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i) == 0);
        sleep_ms((long)(seconds * 1000 / phases));
        atomic_store(&stop, 1);
        for (unsigned i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
        /* The main thread (never an allocator here) frees what is left. */
        for (unsigned i = 0; i < NTHREADS; i++) {
            if (leftover[i]) release(leftover[i], NTHREADS);
            leftover[i] = NULL;
        }
        for (unsigned i = 0; i < NTHREADS; i++)
            for (unsigned k = 0; k < OUTBOX; k++) {
                void *q = atomic_exchange(&outbox[i][k], NULL);
                if (q) release(q, NTHREADS);
            }
        CHECK_EQ_SZ(atomic_load(&bad_blocks), 0);
        CHECK_EQ_SZ(atomic_load(&same_thread_frees), 0);
        CHECK_EQ_SZ(atomic_load(&n_allocs), atomic_load(&n_frees));
#ifndef STRESS_MALLOC
        la_smp_collect();
        CHECK_EQ_SZ(la_smp_check_heap(), 0);
        la_smp_stats st;
        la_smp_get_stats(&st);
        CHECK_EQ_SZ(st.current_count, 0);
        CHECK_EQ_SZ(st.current_bytes, 0);
        printf("phase %d: %lu blocks, peak live %zu KiB, peak committed %zu KiB, "
               "committed now %zu KiB\n",
               ph + 1, atomic_load(&n_allocs), st.peak_bytes >> 10,
               st.peak_committed_bytes >> 10, st.committed_bytes >> 10);
#else
        printf("phase %d: %lu blocks\n", ph + 1, atomic_load(&n_allocs));
#endif
        fflush(stdout);
    }
#ifdef STRESS_MALLOC
    return check_summary("stress (malloc)");
#else
    return check_summary("stress (la_smp_allocator)");
#endif
}
