/* Every allocation sampled (run with LA_PROFILE_RATE=1): the malloc API on
 * sampled blocks. A sample of malloc, calloc or aligned_alloc(16) is handed
 * out past its block's start (the profiler's shifted samples), one made by
 * realloc or memalign at its start with its page marked: both must behave
 * as any block does. The program checks sizes, alignment, contents,
 * zeroing, realloc's copies and a realloc that stays, frees everything but KEEP blocks through
 * free, free_sized and realloc, and prints how many it kept; check_profile.py
 * then finds exactly those live in the dump (every other free was seen).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Class boundaries, sizes with and without 16 spare bytes in their class,
 * the largest classes and the first huge sizes. */
static const size_t sizes[] = {1,     8,     15,    16,     17,     24,     100,    112,
                               1000,  1024,  4000,  4100,   4608,   8191,   8192,   10000,
                               65536, 73000, 100000, 300000, 524272, 524288, 600000};
#define NSIZES (sizeof sizes / sizeof *sizes)
/* Blocks kept live to the end, of sizes no other allocation here uses. */
#define KEEP 5

static int failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "profile_every: " __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                                   \
            failed = 1;                                                                            \
        }                                                                                          \
    } while (0)

static void fill(unsigned char *p, size_t n, unsigned char v) { memset(p, v, n); }

static int all(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

int main(void) {
    void (*free_sized_fn)(void *, size_t) = NULL;
    /* The shim's own (C23; the C library may not have it). */
    *(void **)&free_sized_fn = dlsym(RTLD_DEFAULT, "free_sized");
    CHECK(free_sized_fn != NULL, "no free_sized");

    /* Dirty the heap first, so that calloc's zeroing is seen. */
    for (size_t i = 0; i < NSIZES; i++) {
        unsigned char *p = malloc(sizes[i]);
        CHECK(p != NULL, "malloc(%zu) failed", sizes[i]);
        fill(p, malloc_usable_size(p), 0xff);
        free(p);
    }
    for (size_t i = 0; i < NSIZES; i++) {
        size_t s = sizes[i];
        unsigned char v = (unsigned char)(i + 1);

        unsigned char *p = malloc(s);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0, "malloc(%zu): %p", s, (void *)p);
        size_t u = malloc_usable_size(p);
        CHECK(u >= s, "malloc(%zu): usable size %zu", s, u);
        /* All of it is the caller's: a wrong usable size corrupts a
         * neighbour or the block's start, which the frees below catch. */
        fill(p, u, v);
        /* A block that holds the new size without wasting half of it
         * stays, sampled or not. */
        uintptr_t at = (uintptr_t)p;
        p = realloc(p, s);
        CHECK(s < u / 2 || (uintptr_t)p == at, "realloc(%zu -> the same size) moved the block",
              s);
        CHECK(p != NULL && all(p, s, v), "realloc(%zu -> the same size) changed the block", s);

        unsigned char *z = calloc(1, s);
        CHECK(z != NULL && all(z, s, 0), "calloc(%zu) not zeroed", s);
        CHECK(malloc_usable_size(z) >= s, "calloc(%zu): usable size", s);

        unsigned char *a = aligned_alloc(16, (s + 15) & ~(size_t)15);
        CHECK(a != NULL && (uintptr_t)a % 16 == 0, "aligned_alloc(16, %zu): %p", s, (void *)a);
        fill(a, s, v);

        unsigned char *m = memalign(64, s);
        CHECK(m != NULL && (uintptr_t)m % 64 == 0, "memalign(64, %zu): %p", s, (void *)m);
        fill(m, malloc_usable_size(m), v);

        /* Grow, then shrink: the contents follow. */
        unsigned char *r = realloc(p, 2 * s + 1);
        CHECK(r != NULL && all(r, s, v), "realloc(%zu -> %zu)", s,
              2 * s + 1);
        fill(r, malloc_usable_size(r), v);
        unsigned char *r2 = realloc(r, s / 2 + 1);
        CHECK(r2 != NULL && all(r2, s / 2 + 1, v), "realloc(%zu -> %zu)", 2 * s + 1, s / 2 + 1);

        /* Every way out: free, free_sized, realloc(p, 0) is not used (its
         * result is implementation-defined). */
        free(r2);
        if (free_sized_fn) free_sized_fn(z, s);
        else free(z);
        free(a);
        free(m);
    }
    static void *keep[KEEP];
    for (int k = 0; k < KEEP; k++) {
        keep[k] = malloc(3001 + 1000 * (size_t)k);
        CHECK(keep[k] != NULL, "malloc for keeping failed");
    }
    if (failed) return 1;
    printf("%d\n", KEEP);
    return 0;
}
