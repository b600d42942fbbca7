/*
 * scale.c: thread-scaling workloads for comparing malloc implementations
 * under LD_PRELOAD (benches/scale/bench.py runs each one at several thread
 * counts on glibc, mimalloc, jemalloc, tcmalloc and liballoc_preload.so).
 *
 *   scale WORKLOAD THREADS
 *
 * The work is fixed PER THREAD: with perfect scaling the wall time stays
 * flat up to the number of cores and doubles at twice as many threads.
 *
 *   churn   each thread keeps a window of 1024 live blocks and replaces a
 *           random one at each step: 16 B..2 KiB mostly, 1 in 32 up to 32 KiB
 *   ring    thread i hands every block it allocates to thread (i+1)%n, which
 *           frees it: every free is a remote free. Blocks travel in batches
 *           of 64 through a single-producer single-consumer ring per thread
 *           (one atomic flag per batch), so the queue costs little next to
 *           the allocator
 *   large   each thread churns 8 live blocks of 256 KiB..4 MiB, writing the
 *           first, middle and last page of each so that pages are faulted in
 *   waves   200 waves of short-lived threads: each starts THREADS threads
 *           that allocate 2,000 blocks of 16..2,000 B, free them and exit;
 *           the wave is joined before the next one starts
 *
 * Each prints a checksum that does not depend on the thread interleaving
 * (only on the workload and the thread count), so that a broken allocator
 * cannot look fast. Plain C11 + pthreads, plain malloc/free.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Work per thread, sized for 0.1 to 0.5 s per run with one thread on a
 * 2-core machine, so that the whole suite (5 allocators, 3 rounds, 1, 2
 * and 4 threads) takes a few minutes there. */
enum {
    CHURN_WINDOW = 1024,
    CHURN_OPS = 7500000,
    RING_BATCH = 64,
    RING_SLOTS = 32,
    RING_BATCHES = 60000,
    LARGE_LIVE = 8,
    LARGE_OPS = 30000,
    WAVES = 200,
    WAVE_BLOCKS = 2000,
};

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t seed_for(int id) { return (uint64_t)(id + 1) * 0x9e3779b97f4a7c15ull; }

/* A small size: 16..2048 B, weighted towards the small end. */
static size_t small_size(uint64_t r) {
    unsigned c = (unsigned)(r & 7);
    size_t span = c < 5 ? 240 : c < 7 ? 1008 : 2032;
    return 16 + (size_t)((r >> 8) % span);
}

/* ---- churn ---- */

static void *churn_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t seed = seed_for(id), sum = 0;
    unsigned char **win = calloc(CHURN_WINDOW, sizeof *win);
    if (!win) abort();
    for (long i = 0; i < CHURN_OPS; i++) {
        uint64_t r = rng(&seed);
        int k = (int)(r % CHURN_WINDOW);
        if (win[k]) {
            sum += win[k][0];
            free(win[k]);
        }
        size_t n = (r >> 59) == 0 ? 2048 + (size_t)((r >> 20) % 30720) : small_size(r >> 12);
        unsigned char *p = malloc(n);
        if (!p) abort();
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)i;
        win[k] = p;
    }
    for (int k = 0; k < CHURN_WINDOW; k++) {
        if (win[k]) sum += win[k][0];
        free(win[k]);
    }
    free(win);
    return (void *)(uintptr_t)sum;
}

/* ---- ring ---- */

/* One batch slot, on its own cache line: `full` is set by the producer
 * (release) once `p` is filled, and cleared by the consumer (release) once
 * the blocks are freed. */
struct slot {
    _Alignas(64) atomic_int full;
    void *p[RING_BATCH];
};

/* The incoming ring of one thread; only its predecessor writes to it. */
struct ring {
    struct slot slot[RING_SLOTS];
};

static struct ring *rings;
static int nthreads;

/* Frees the blocks of the next full batch in `in`, if any; returns 1 if it
 * took one. */
static int ring_drain_one(struct ring *in, long *head, uint64_t *sum) {
    struct slot *s = &in->slot[*head % RING_SLOTS];
    if (!atomic_load_explicit(&s->full, memory_order_acquire)) return 0;
    for (int i = 0; i < RING_BATCH; i++) {
        *sum += *(unsigned char *)s->p[i];
        free(s->p[i]);
    }
    atomic_store_explicit(&s->full, 0, memory_order_release);
    (*head)++;
    return 1;
}

static void *ring_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    struct ring *in = &rings[id], *out = &rings[(id + 1) % nthreads];
    uint64_t seed = seed_for(id), sum = 0;
    long head = 0, consumed = 0;
    for (long b = 0; b < RING_BATCHES; b++) {
        struct slot *s = &out->slot[b % RING_SLOTS];
        /* The successor's ring is full: free incoming blocks meanwhile, so
         * that a cycle of full rings cannot stall. */
        while (atomic_load_explicit(&s->full, memory_order_acquire)) {
            if (ring_drain_one(in, &head, &sum)) consumed++;
            else sched_yield();
        }
        for (int i = 0; i < RING_BATCH; i++) {
            uint64_t r = rng(&seed);
            size_t n = 16 + (size_t)(r % 497);
            unsigned char *p = malloc(n);
            if (!p) abort();
            p[0] = (unsigned char)(r >> 32);
            p[n - 1] = 0;
            s->p[i] = p;
        }
        atomic_store_explicit(&s->full, 1, memory_order_release);
        while (consumed < b && ring_drain_one(in, &head, &sum)) consumed++;
    }
    while (consumed < RING_BATCHES) {
        if (ring_drain_one(in, &head, &sum)) consumed++;
        else sched_yield();
    }
    return (void *)(uintptr_t)sum;
}

/* ---- large ---- */

static void *large_thread(void *arg) {
    enum { PAGE = 4096 };
    int id = (int)(intptr_t)arg;
    uint64_t seed = seed_for(id), sum = 0;
    unsigned char *live[LARGE_LIVE] = {0};
    size_t len[LARGE_LIVE] = {0};
    for (long i = 0; i < LARGE_OPS; i++) {
        uint64_t r = rng(&seed);
        int k = (int)(r % LARGE_LIVE);
        if (live[k]) {
            sum += live[k][0] + live[k][len[k] - 1] + live[k][len[k] / 2];
            free(live[k]);
        }
        size_t n = (256u << 10) + (size_t)((r >> 8) % ((4u << 20) - (256u << 10) + 1));
        unsigned char *p = malloc(n);
        if (!p) abort();
        /* First, middle and last page. */
        memset(p, (int)(i & 0x7f), 64);
        p[n / 2] = 1;
        p[(n / 2) & ~(size_t)(PAGE - 1)] = 2;
        memset(p + n - 64, 3, 64);
        live[k] = p;
        len[k] = n;
    }
    for (int k = 0; k < LARGE_LIVE; k++) {
        if (live[k]) sum += live[k][0] + live[k][len[k] - 1] + live[k][len[k] / 2];
        free(live[k]);
    }
    return (void *)(uintptr_t)sum;
}

/* ---- waves ---- */

static void *wave_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t seed = seed_for(id), sum = 0;
    unsigned char **blk = malloc(WAVE_BLOCKS * sizeof *blk);
    if (!blk) abort();
    for (int i = 0; i < WAVE_BLOCKS; i++) {
        size_t n = 16 + (size_t)(rng(&seed) % 1985);
        unsigned char *p = malloc(n);
        if (!p) abort();
        p[0] = (unsigned char)n;
        p[n - 1] = (unsigned char)i;
        blk[i] = p;
    }
    /* Free in a scattered order (a stride coprime to the count). */
    for (int i = 0; i < WAVE_BLOCKS; i++) {
        unsigned char *p = blk[(i * 7) % WAVE_BLOCKS];
        sum += p[0];
        free(p);
    }
    free(blk);
    return (void *)(uintptr_t)sum;
}

static uint64_t run_threads(void *(*fn)(void *), int n, int base) {
    pthread_t *t = malloc((size_t)n * sizeof *t);
    if (!t) abort();
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)(base + i)) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    free(t);
    return sum;
}

static uint64_t churn(int n) { return run_threads(churn_thread, n, 0); }

static uint64_t ring(int n) {
    nthreads = n;
    rings = aligned_alloc(64, (size_t)n * sizeof *rings);
    if (!rings) abort();
    for (int i = 0; i < n; i++)
        for (int k = 0; k < RING_SLOTS; k++) atomic_init(&rings[i].slot[k].full, 0);
    uint64_t sum = run_threads(ring_thread, n, 0);
    free(rings);
    return sum;
}

static uint64_t large(int n) { return run_threads(large_thread, n, 0); }

static uint64_t waves(int n) {
    uint64_t sum = 0;
    for (int w = 0; w < WAVES; w++) sum += run_threads(wave_thread, n, w * n);
    return sum;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        uint64_t (*run)(int);
    } w[] = {{"churn", churn}, {"ring", ring}, {"large", large}, {"waves", waves}};
    int n = argc == 3 ? atoi(argv[2]) : 0;
    for (size_t i = 0; n > 0 && n <= 4096 && i < sizeof w / sizeof *w; i++)
        if (strcmp(argv[1], w[i].name) == 0) {
            printf("%s threads %d checksum %llu\n", w[i].name, n, (unsigned long long)w[i].run(n));
            return 0;
        }
    fprintf(stderr, "usage: %s churn|ring|large|waves THREADS (1..4096)\n", argv[0]);
    return 2;
}
