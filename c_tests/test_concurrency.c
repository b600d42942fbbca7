/*
 * test_concurrency: four threads hammer one allocator at once: the
 * thread-safe fixed buffer, and arenas over thread-safe children (smp, c).
 * Each thread allocates blocks of varied sizes and alignments, stamps each
 * with a pattern of its own, and now and then grows, shrinks, remaps or frees
 * its latest block. Afterwards every live block must still hold its pattern,
 * be aligned as asked, and no two live blocks may overlap.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "liballoc.h"

#define THREADS 4
#define PER_THREAD 3000
#define MAX_LEN 512

typedef struct {
    unsigned char *p;
    size_t len;
    la_alignment align;
    uint32_t seed;
} block;

typedef struct {
    la_allocator a;
    pthread_barrier_t *start;
    unsigned id;
    block blocks[PER_THREAD];
    size_t n;
    unsigned long bad;  /* wrong alignment or pattern seen by the thread */
    unsigned long oom;  /* allocations that failed */
} worker;

static unsigned char pattern(uint32_t seed, size_t k) {
    return (unsigned char)((seed * 2654435761u + k * 40503u) >> 13);
}

static void stamp(const block *b, size_t from) {
    for (size_t k = from; k < b->len; k++) b->p[k] = pattern(b->seed, k);
}

static int intact(const block *b) {
    for (size_t k = 0; k < b->len; k++)
        if (b->p[k] != pattern(b->seed, k)) return 0;
    return 1;
}

static uint32_t next_rand(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *work(void *arg) {
    worker *w = arg;
    uint32_t rng = 0x9e3779b9u * (w->id + 1);
    pthread_barrier_wait(w->start);
    for (unsigned i = 0; i < PER_THREAD; i++) {
        block b = {NULL, 1 + next_rand(&rng) % MAX_LEN, (la_alignment)(next_rand(&rng) % 7),
                   (w->id << 20) | i};
        b.p = la_raw_alloc(w->a, b.len, b.align, 0);
        if (!b.p) {
            w->oom++;
            continue;
        }
        if (((uintptr_t)b.p & (((uintptr_t)1 << b.align) - 1)) != 0) w->bad++;
        stamp(&b, 0);
        w->blocks[w->n++] = b;

        block *last = &w->blocks[w->n - 1];
        switch (next_rand(&rng) % 8) {
        case 0: { /* grow in place */
            size_t old = last->len;
            if (la_raw_resize(w->a, last->p, old, last->align, old + 32, 0)) {
                last->len = old + 32;
                stamp(last, old);
            }
            break;
        }
        case 1: /* shrink in place: always succeeds for these allocators */
            if (last->len > 1) {
                if (la_raw_resize(w->a, last->p, last->len, last->align, last->len / 2, 0))
                    last->len /= 2;
                else
                    w->bad++;
            }
            break;
        case 2: { /* remap: may only keep the address here */
            size_t old = last->len;
            unsigned char *q = la_raw_remap(w->a, last->p, old, last->align, old + 100, 0);
            if (q) {
                if (q != last->p) w->bad++;
                last->len = old + 100;
                stamp(last, old);
            }
            break;
        }
        case 3: /* free */
            if (!intact(last)) w->bad++;
            la_raw_free(w->a, last->p, last->len, last->align, 0);
            w->n--;
            break;
        default:
            break;
        }
    }
    return NULL;
}

static int by_address(const void *x, const void *y) {
    uintptr_t a = (uintptr_t)((const block *)x)->p, b = (uintptr_t)((const block *)y)->p;
    return a < b ? -1 : a > b;
}

static worker workers[THREADS];
static block all[THREADS * PER_THREAD];

/* Runs the workers on `a`; returns the number of live blocks checked. */
static size_t hammer(const char *name, la_allocator a, int oom_allowed) {
    pthread_barrier_t start;
    pthread_t threads[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (unsigned t = 0; t < THREADS; t++) {
        workers[t] = (worker){.a = a, .start = &start, .id = t};
        CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
    }
    for (unsigned t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);

    size_t n = 0;
    unsigned long broken = 0;
    for (unsigned t = 0; t < THREADS; t++) {
        CHECK_EQ_SZ(workers[t].bad, 0);
        if (!oom_allowed) CHECK_EQ_SZ(workers[t].oom, 0);
        for (size_t i = 0; i < workers[t].n; i++) {
            if (!intact(&workers[t].blocks[i])) broken++;
            all[n++] = workers[t].blocks[i];
        }
    }
    CHECK_EQ_SZ(broken, 0);
    qsort(all, n, sizeof all[0], by_address);
    size_t overlaps = 0;
    for (size_t i = 1; i < n; i++)
        if ((uintptr_t)all[i - 1].p + all[i - 1].len > (uintptr_t)all[i].p) overlaps++;
    CHECK_EQ_SZ(overlaps, 0);
    CHECK(n > THREADS * PER_THREAD / 2);
    printf("%s: %zu live blocks checked\n", name, n);
    return n;
}

static unsigned char fixed_memory[THREADS * PER_THREAD * (MAX_LEN + 200)];

int main(void) {
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, fixed_memory, sizeof fixed_memory);
    hammer("thread-safe fixed buffer", la_fixed_buffer_thread_safe_allocator(&fb), 0);

    /* A small buffer: threads race for the last bytes and must fail cleanly. */
    la_fixed_buffer_init(&fb, fixed_memory, THREADS * PER_THREAD * 100);
    for (unsigned t = 0; t < THREADS; t++) workers[t].n = 0;
    {
        pthread_barrier_t start;
        pthread_t threads[THREADS];
        pthread_barrier_init(&start, NULL, THREADS);
        for (unsigned t = 0; t < THREADS; t++) {
            workers[t] = (worker){.a = la_fixed_buffer_thread_safe_allocator(&fb),
                                  .start = &start, .id = t};
            CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
        }
        unsigned long oom = 0;
        for (unsigned t = 0; t < THREADS; t++) {
            pthread_join(threads[t], NULL);
            oom += workers[t].oom;
            CHECK_EQ_SZ(workers[t].bad, 0);
            for (size_t i = 0; i < workers[t].n; i++) CHECK(intact(&workers[t].blocks[i]));
        }
        pthread_barrier_destroy(&start);
        CHECK(oom > 0);
        CHECK(fb.end_index <= fb.len);
    }

    la_allocator children[2] = {la_smp_allocator(), la_c_allocator()};
    const char *names[2] = {"arena over smp", "arena over c"};
    for (int c = 0; c < 2; c++) {
        for (int round = 0; round < 3; round++) {
            la_arena *arena = la_arena_create(children[c]);
            CHECK(arena != NULL);
            if (!arena) continue;
            hammer(names[c], la_arena_allocator(arena), 0);
            /* Reuse retained capacity in a second pass, racing on the free list. */
            CHECK(la_arena_reset(arena, LA_ARENA_RETAIN_CAPACITY, 0));
            hammer(names[c], la_arena_allocator(arena), 0);
            CHECK(la_arena_reset(arena, LA_ARENA_RETAIN_WITH_LIMIT, 4096));
            CHECK(la_arena_query_capacity(arena) <= 4096);
            hammer(names[c], la_arena_allocator(arena), 0);
            la_arena_destroy(arena);
        }
    }
    return check_summary("test_concurrency");
}
