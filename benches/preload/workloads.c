/*
 * workloads.c: allocation workloads for comparing malloc implementations
 * under LD_PRELOAD (benches/preload/bench.py runs each one on glibc,
 * jemalloc, tcmalloc, mimalloc and liballoc_preload.so).
 *
 *   churn      one thread: random sizes 16..512 B through a window of 4096
 *              live blocks (allocate, touch, free the oldest)
 *   prodcons   a producer thread allocates, a consumer frees (every block
 *              crosses threads), in batches of 256 through a lock-free ring
 *   realloc    1000 buffers grown by realloc in small steps up to 8..16 KiB
 *   mixed      2 threads, sizes 8 B..64 KiB with rare 1 MiB blocks
 *   nodes      linked lists of 1M tiny (16..32 B) nodes built, walked, freed
 *
 * Each prints a checksum so that a broken allocator cannot look fast.
 * Plain C11 + pthreads; sizes chosen for about a second on glibc here.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint64_t churn(void) {
    enum { WINDOW = 4096, OPS = 6000000 };
    static void *win[WINDOW];
    uint64_t seed = 42, sum = 0;
    for (long i = 0; i < OPS; i++) {
        int k = (int)(i % WINDOW);
        if (win[k]) {
            sum += *(unsigned char *)win[k];
            free(win[k]);
        }
        size_t n = 16 + rng(&seed) % 497;
        unsigned char *p = malloc(n);
        p[0] = (unsigned char)n;
        p[n - 1] = 1;
        win[k] = p;
    }
    for (int k = 0; k < WINDOW; k++) free(win[k]);
    return sum;
}

/* A producer thread allocates blocks in batches and hands each batch to a
 * consumer thread, which frees the blocks: every block crosses threads.
 * Batches travel through a small ring of batch pointers, so the threads
 * wait for each other (sched_yield) only when the ring is full or empty,
 * not once per block: the figure is the allocators' cross-thread cost, not
 * the scheduler's. */
enum { BATCH = 256, BATCHES = 12000, RING = 16 };
static void **_Atomic ring[RING];

static void *producer(void *arg) {
    (void)arg;
    uint64_t seed = 7;
    for (long b = 0; b < BATCHES; b++) {
        void **batch = malloc(BATCH * sizeof *batch);
        for (int i = 0; i < BATCH; i++) {
            size_t n = 16 + rng(&seed) % 240;
            unsigned char *p = malloc(n);
            p[0] = (unsigned char)n;
            batch[i] = p;
        }
        void **_Atomic *slot = &ring[b % RING];
        while (atomic_load_explicit(slot, memory_order_acquire) != NULL) sched_yield();
        atomic_store_explicit(slot, batch, memory_order_release);
    }
    return NULL;
}

static uint64_t prodcons(void) {
    pthread_t t;
    pthread_create(&t, NULL, producer, NULL);
    uint64_t sum = 0;
    for (long b = 0; b < BATCHES; b++) {
        void **_Atomic *slot = &ring[b % RING];
        void **batch;
        while ((batch = atomic_load_explicit(slot, memory_order_acquire)) == NULL) sched_yield();
        atomic_store_explicit(slot, NULL, memory_order_release);
        for (int i = 0; i < BATCH; i++) {
            sum += *(unsigned char *)batch[i];
            free(batch[i]);
        }
        free(batch);
    }
    pthread_join(t, NULL);
    return sum;
}

static uint64_t realloc_growth(void) {
    enum { BUFS = 1000 };
    uint64_t sum = 0, seed = 3;
    for (int round = 0; round < 2; round++) {
        static char *buf[BUFS];
        static size_t len[BUFS], cap[BUFS];
        for (int b = 0; b < BUFS; b++) {
            buf[b] = NULL;
            len[b] = cap[b] = 0;
        }
        size_t limit = 8192u << round;
        for (int step = 0; step < 2000; step++) {
            for (int b = 0; b < BUFS; b++) {
                if (len[b] >= limit) continue;
                size_t add = 1 + rng(&seed) % 48;
                /* Grow exactly to need, like naive string appends. */
                char *q = realloc(buf[b], len[b] + add);
                memset(q + len[b], 'a' + b % 26, add);
                buf[b] = q;
                len[b] += add;
                cap[b] = len[b];
            }
        }
        for (int b = 0; b < BUFS; b++) {
            sum += (unsigned char)buf[b][len[b] - 1] + cap[b];
            free(buf[b]);
        }
    }
    return sum;
}

static void *mixed_thread(void *arg) {
    enum { SLOTS = 2048, OPS = 2500000 };
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1, sum = 0;
    void **slot = calloc(SLOTS, sizeof *slot);
    for (long i = 0; i < OPS; i++) {
        uint64_t r = rng(&seed);
        int k = (int)(r % SLOTS);
        if (slot[k]) {
            sum += *(unsigned char *)slot[k];
            free(slot[k]);
            slot[k] = NULL;
            continue;
        }
        size_t n;
        uint64_t c = (r >> 16) % 1000;
        if (c == 0) n = 1 << 20;
        else if (c < 50) n = 4096 + (r >> 32) % 61440;
        else if (c < 300) n = 256 + (r >> 32) % 3840;
        else n = 8 + (r >> 32) % 248;
        unsigned char *p = malloc(n);
        p[0] = (unsigned char)c;
        p[n - 1] = 0;
        slot[k] = p;
    }
    for (int k = 0; k < SLOTS; k++) free(slot[k]);
    free(slot);
    return (void *)(uintptr_t)sum;
}

static uint64_t mixed(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, mixed_thread, (void *)(uintptr_t)(i + 1));
    uint64_t sum = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    return sum;
}

struct node {
    struct node *next;
    uint64_t value;
};

static uint64_t nodes(void) {
    uint64_t sum = 0, seed = 11;
    for (int round = 0; round < 6; round++) {
        struct node *head = NULL;
        for (long i = 0; i < 1000000; i++) {
            /* 16 to 32 bytes: a node with an optional payload. */
            size_t n = sizeof(struct node) + (rng(&seed) & 1) * 16;
            struct node *x = malloc(n);
            x->next = head;
            x->value = (uint64_t)i;
            head = x;
        }
        while (head) {
            struct node *n = head->next;
            sum += head->value;
            free(head);
            head = n;
        }
    }
    return sum;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        uint64_t (*run)(void);
    } w[] = {{"churn", churn}, {"prodcons", prodcons}, {"realloc", realloc_growth},
             {"mixed", mixed}, {"nodes", nodes}};
    for (size_t i = 0; argc == 2 && i < sizeof w / sizeof *w; i++)
        if (strcmp(argv[1], w[i].name) == 0) {
            printf("%s checksum %llu\n", w[i].name, (unsigned long long)w[i].run());
            return 0;
        }
    fprintf(stderr, "usage: %s churn|prodcons|realloc|mixed|nodes\n", argv[0]);
    return 2;
}
