/*
 * core_bench: nanoseconds per alloc+free for the core allocators, beside
 * glibc malloc/free and a hand-written inline pointer bump (the floor).
 *
 *   make bench-core            (or: build/benches/core_bench [--quick])
 *
 * Contenders: glibc, the bump floor, and through la_alloc / la_free the
 * page, c and smp allocators, a 64 KiB fixed buffer, an arena over the page
 * allocator, and a failing allocator over c that never fails (its
 * bookkeeping cost is its row minus the c row). The fixed buffer is also
 * driven through la_raw_alloc / la_raw_free (alignment as log2, no C
 * helper), which shows what the helper layer costs.
 *
 * Workload, for each block size (16, 32, 64, 128, 256 bytes, alignment 16):
 * rounds of BATCH allocations (one byte written into each) followed by
 * BATCH frees in allocation order; allocators that only reclaim on reset
 * (fixed buffer, arena, the bump floor) are reset after every round, and
 * that reset is part of the measured time. Every allocator goes through
 * la_alloc / la_free; glibc is called directly.
 *
 * Measurement: the number of rounds per run is calibrated so one run takes
 * about TARGET_NS; then REPS repetitions are made, interleaving all
 * contenders within each repetition (so machine noise hits them alike),
 * and the median is reported, with its ratio to glibc from the same run.
 * The bytes written and read back feed a volatile sink, so the compiler
 * cannot drop the work (GCC may otherwise delete a malloc/free pair).
 */
#define _POSIX_C_SOURCE 200809L
#include <liballoc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 100
#define ALIGN 16 /* la_raw_* take it as log2: 4 */
#define MAX_CONTENDERS 12

static const size_t sizes[] = {16, 32, 64, 128, 256};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static volatile unsigned long sink;

enum kind { K_GLIBC, K_BUMP, K_LA, K_RAW };

typedef struct {
    const char *name;
    enum kind kind;
    la_allocator a;                /* K_LA, K_RAW */
    void (*reset)(void *ctx);      /* called after each round, or NULL */
    void *reset_ctx;
    double ns[NSIZES];             /* median ns per alloc+free */
} contender;

/* ---- the floor: an inline pointer bump over a static buffer ---- */

static unsigned char bump_buf[BATCH * (256 + ALIGN)];
typedef struct {
    uintptr_t cur, end;
} bump;

static inline void *bump_alloc(bump *b, size_t len, size_t align) {
    uintptr_t p = (b->cur + (align - 1)) & ~(uintptr_t)(align - 1);
    if (p + len > b->end) return NULL;
    b->cur = p + len;
    return (void *)p;
}

/* ---- one run: rounds x (BATCH allocs, BATCH frees) ---- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *who, size_t size) {
    fprintf(stderr, "core_bench: %s failed to allocate %zu bytes\n", who, size);
    exit(1);
}

static uint64_t run(contender *c, size_t size, size_t rounds) {
    unsigned char *ptrs[BATCH];
    unsigned long sum = 0;
    uint64_t t0 = now_ns();
    switch (c->kind) {
    case K_GLIBC:
        for (size_t r = 0; r < rounds; r++) {
            for (size_t i = 0; i < BATCH; i++) {
                unsigned char *p = malloc(size);
                if (p == NULL) die(c->name, size);
                p[0] = (unsigned char)i;
                ptrs[i] = p;
            }
            for (size_t i = 0; i < BATCH; i++) {
                sum += ptrs[i][0];
                free(ptrs[i]);
            }
        }
        break;
    case K_BUMP:
        for (size_t r = 0; r < rounds; r++) {
            bump b = {(uintptr_t)bump_buf, (uintptr_t)bump_buf + sizeof bump_buf};
            for (size_t i = 0; i < BATCH; i++) {
                unsigned char *p = bump_alloc(&b, size, ALIGN);
                if (p == NULL) die(c->name, size);
                p[0] = (unsigned char)i;
                ptrs[i] = p;
            }
            for (size_t i = 0; i < BATCH; i++) sum += ptrs[i][0]; /* free is a no-op */
            __asm__ volatile("" ::: "memory");
        }
        break;
    case K_LA:
        for (size_t r = 0; r < rounds; r++) {
            for (size_t i = 0; i < BATCH; i++) {
                unsigned char *p = la_alloc(c->a, 1, size, ALIGN);
                if (p == NULL) die(c->name, size);
                p[0] = (unsigned char)i;
                ptrs[i] = p;
            }
            for (size_t i = 0; i < BATCH; i++) {
                sum += ptrs[i][0];
                la_free(c->a, ptrs[i], 1, size, ALIGN);
            }
            if (c->reset) c->reset(c->reset_ctx);
        }
        break;
    case K_RAW: /* la_raw_alloc / la_raw_free: the vtable without the C helpers */
        for (size_t r = 0; r < rounds; r++) {
            for (size_t i = 0; i < BATCH; i++) {
                unsigned char *p = la_raw_alloc(c->a, size, 4, 0);
                if (p == NULL) die(c->name, size);
                p[0] = (unsigned char)i;
                ptrs[i] = p;
            }
            for (size_t i = 0; i < BATCH; i++) {
                sum += ptrs[i][0];
                la_raw_free(c->a, ptrs[i], size, 4, 0);
            }
            if (c->reset) c->reset(c->reset_ctx);
        }
        break;
    }
    uint64_t t = now_ns() - t0;
    sink += sum;
    return t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the contenders ---- */

static contender contenders[MAX_CONTENDERS];
static size_t ncontenders;

static contender *add(const char *name, enum kind kind, la_allocator a) {
    if (ncontenders == MAX_CONTENDERS) {
        fprintf(stderr, "core_bench: too many contenders\n");
        exit(1);
    }
    contender *c = &contenders[ncontenders++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->kind = kind;
    c->a = a;
    return c;
}

static void reset_fixed(void *ctx) { la_fixed_buffer_reset(ctx); }
static void reset_arena(void *ctx) { la_arena_reset(ctx, LA_ARENA_RETAIN_CAPACITY, 0); }

static unsigned char fixed_storage[1 << 16];
static la_fixed_buffer fixed;

static void add_contenders(void) {
    la_allocator none = {0};
    add("glibc malloc/free", K_GLIBC, none);
    add("inline bump (floor)", K_BUMP, none);
    add("page", K_LA, la_page_allocator());
    add("c", K_LA, la_c_allocator());
    add("smp", K_LA, la_smp_allocator());

    la_fixed_buffer_init(&fixed, fixed_storage, sizeof fixed_storage);
    contender *c = add("fixed buffer+reset", K_LA, la_fixed_buffer_allocator(&fixed));
    c->reset = reset_fixed;
    c->reset_ctx = &fixed;
    c = add("fixed buffer+reset raw", K_RAW, la_fixed_buffer_allocator(&fixed));
    c->reset = reset_fixed;
    c->reset_ctx = &fixed;

    la_arena *arena = la_arena_create(la_page_allocator());
    if (arena == NULL) {
        fprintf(stderr, "core_bench: la_arena_create failed\n");
        exit(1);
    }
    c = add("arena(page)+reset", K_LA, la_arena_allocator(arena));
    c->reset = reset_arena;
    c->reset_ctx = arena;

    la_failing *f = la_failing_create(la_c_allocator(), SIZE_MAX, SIZE_MAX);
    if (f == NULL) {
        fprintf(stderr, "core_bench: la_failing_create failed\n");
        exit(1);
    }
    add("failing(c) pass", K_LA, la_failing_allocator(f));
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const int reps = quick ? 1 : 9;
    const double target_ns = quick ? 2e5 : 1.5e7; /* per run */

    add_contenders();

    printf("core_bench: ns per alloc+free, rounds of %d allocs then %d frees, align %d\n",
           BATCH, BATCH, ALIGN);
    printf("(median of %d interleaved runs of ~%.0f ms each; lower is better)\n\n", reps,
           target_ns / 1e6);

    for (size_t s = 0; s < NSIZES; s++) {
        size_t size = sizes[s];
        size_t rounds[MAX_CONTENDERS];
        double samples[MAX_CONTENDERS][9];
        /* calibrate: rounds so one run takes about target_ns (after a warm-up) */
        for (size_t c = 0; c < ncontenders; c++) {
            run(&contenders[c], size, 2);
            uint64_t t = run(&contenders[c], size, 4);
            double per_round = t > 0 ? (double)t / 4 : 1;
            double want = target_ns / per_round;
            rounds[c] = want < 1 ? 1 : want > 1e7 ? 10000000 : (size_t)want;
        }
        for (int r = 0; r < reps; r++)
            for (size_t c = 0; c < ncontenders; c++) {
                uint64_t t = run(&contenders[c], size, rounds[c]);
                samples[c][r] = (double)t / ((double)rounds[c] * BATCH);
            }
        for (size_t c = 0; c < ncontenders; c++) {
            qsort(samples[c], (size_t)reps, sizeof(double), cmp_double);
            contenders[c].ns[s] = samples[c][reps / 2];
        }
    }

    printf("%-24s", "ns per alloc+free");
    for (size_t s = 0; s < NSIZES; s++) printf("%9zu B", sizes[s]);
    printf("\n");
    for (size_t c = 0; c < ncontenders; c++) {
        printf("%-24s", contenders[c].name);
        for (size_t s = 0; s < NSIZES; s++) printf("%11.1f", contenders[c].ns[s]);
        printf("\n");
    }
    printf("\n%-24s", "ratio to glibc");
    for (size_t s = 0; s < NSIZES; s++) printf("%9zu B", sizes[s]);
    printf("\n");
    for (size_t c = 0; c < ncontenders; c++) {
        printf("%-24s", contenders[c].name);
        for (size_t s = 0; s < NSIZES; s++)
            printf("%10.2fx", contenders[c].ns[s] / contenders[0].ns[s]);
        printf("\n");
    }
    printf("\n(ratio < 1: faster than glibc malloc/free in this run)\n");
    return 0;
}
