/*
 * preload_conformance.c: the malloc family's contract (POSIX, C17, glibc
 * 2.36), checked on whatever malloc the process runs on.
 *
 * Run twice by c_tests/preload/run_tests.sh: under LD_PRELOAD=
 * liballoc_preload.so ("shim") and on plain glibc ("glibc"), to show that
 * the checks test what glibc does. The argument names the expected
 * allocator; the program detects which one it really runs on (malloc_info
 * output names liballoc) and fails on a mismatch, so a shim that silently
 * did not load cannot pass. Checks where glibc 2.36 legitimately differs
 * are in separate sections run only for the allocator they describe.
 * Not named test_*.c: it must not be auto-run without its argument.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* Not declared by glibc 2.36's headers (C23 / obsolete); weak so the
 * program also runs where they do not exist. */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));
extern void cfree(void *) __attribute__((weak));
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define BIG ((size_t)PTRDIFF_MAX + 1)

/* Keeps the compiler from folding allocation-size checks away. */
static volatile size_t opaque_zero = 0;
static size_t big(size_t v) { return v + opaque_zero; }

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* An allocation made before main, from a constructor. */
static char *early;
__attribute__((constructor)) static void before_main(void) {
    early = malloc(100);
    if (early) strcpy(early, "before main");
}

static int runs_on_liballoc(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return -1;
    malloc_info(0, f);
    fclose(f);
    int yes = buf && strstr(buf, "liballoc") != NULL;
    free(buf);
    return yes;
}

static void basic(void) {
    CHECK(early && strcmp(early, "before main") == 0);
    free(early);

    /* malloc(0): unique, non-NULL, freeable. */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    free(z1);
    free(z2);

    /* Every block is aligned for max_align_t and writable to its end. */
    for (size_t n = 1; n <= (1u << 20); n = n * 3 + 1) {
        unsigned char *p = malloc(n);
        CHECK(p != NULL && aligned(p, _Alignof(max_align_t)));
        if (!p) continue;
        memset(p, 0x5a, n);
        CHECK(malloc_usable_size(p) >= n);
        free(p);
    }
    CHECK_EQ_SZ(malloc_usable_size(NULL), 0);
    free(NULL);

    /* A large block. */
    size_t large = (size_t)64 << 20;
    char *l = malloc(large);
    CHECK(l != NULL);
    if (l) {
        l[0] = 1;
        l[large - 1] = 2;
        CHECK(l[0] + l[large - 1] == 3);
    }
    free(l);
}

static void failures(void) {
    errno = 0;
    CHECK(malloc(big(BIG)) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(big(SIZE_MAX)) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(big(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(big((size_t)1 << 33), (size_t)1 << 33) == NULL && errno == ENOMEM);
    void *c0 = calloc(0, 0);
    CHECK(c0 != NULL);
    free(c0);
    errno = 0;
    CHECK(memalign(64, big(BIG)) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(valloc(big(SIZE_MAX)) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(big(SIZE_MAX - 100)) == NULL && errno == ENOMEM);
}

static void calloc_zeroes(void) {
    /* Dirty blocks of several sizes, free them, then calloc the same sizes:
     * recycled memory must come back zeroed. */
    static const size_t sizes[] = {8, 24, 100, 1000, 5000, 70000, 300000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        void *dirty[16];
        for (int i = 0; i < 16; i++) {
            dirty[i] = malloc(n);
            if (dirty[i]) memset(dirty[i], 0xa5, n);
        }
        for (int i = 0; i < 16; i++) free(dirty[i]);
        int all_zero = 1;
        void *clean[16];
        for (int i = 0; i < 16; i++) {
            unsigned char *p = calloc(1, n);
            clean[i] = p;
            if (!p) {
                all_zero = 0;
                continue;
            }
            for (size_t k = 0; k < n; k++)
                if (p[k]) all_zero = 0;
        }
        CHECK(all_zero);
        for (int i = 0; i < 16; i++) free(clean[i]);
    }
}

static void reallocs(void) {
    /* realloc(NULL, n) is malloc(n). */
    char *p = realloc(NULL, 10);
    CHECK(p != NULL);
    if (!p) return;
    memcpy(p, "abcdefghi", 10);

    /* Growth and shrinking keep the contents. */
    size_t n = 10;
    for (size_t next = 17; next < (8u << 20); next = next * 2 + 3) {
        char *q = realloc(p, next);
        CHECK(q != NULL);
        if (!q) break;
        CHECK(memcmp(q, "abcdefghi", 10) == 0);
        p = q;
        n = next;
        p[n - 1] = 'z';
    }
    char *s = realloc(p, 5);
    CHECK(s != NULL && memcmp(s, "abcde", 5) == 0);
    if (s) p = s;

    /* A failed realloc leaves the block untouched (called through a
     * volatile pointer: the compiler assumes realloc always frees). */
    void *(*volatile realloc_fn)(void *, size_t) = realloc;
    errno = 0;
    CHECK(realloc_fn(p, big(BIG)) == NULL && errno == ENOMEM);
    CHECK(memcmp(p, "abcde", 5) == 0);
    errno = 0;
    void *(*volatile reallocarray_fn)(void *, size_t, size_t) = reallocarray;
    CHECK(reallocarray_fn(p, big(SIZE_MAX / 2), 4) == NULL && errno == ENOMEM);
    CHECK(memcmp(p, "abcde", 5) == 0);
    char *r = reallocarray(p, 100, 2);
    CHECK(r != NULL && memcmp(r, "abcde", 5) == 0);
    if (r) p = r;

    /* Shrinking a big block to a few bytes does not pin the old size. */
    char *shrink = malloc(100000);
    CHECK(shrink != NULL);
    if (shrink) {
        memcpy(shrink, "0123456789", 10);
        char *small = realloc(shrink, 10);
        CHECK(small != NULL && memcmp(small, "0123456789", 10) == 0);
        void *fresh = malloc(10);
        CHECK(small && fresh && malloc_usable_size(small) <= malloc_usable_size(fresh));
        free(fresh);
        free(small ? small : shrink);
    }

    /* realloc(p, 0) frees p and returns NULL (glibc's choice; C17 leaves it
     * implementation-defined). */
    CHECK(realloc(p, 0) == NULL);
}

static void alignments(void) {
    void *p = (void *)0x1234;
    CHECK(posix_memalign(&p, 3, 8) == EINVAL && p == (void *)0x1234);
    CHECK(posix_memalign(&p, 0, 8) == EINVAL && p == (void *)0x1234);
    CHECK(posix_memalign(&p, sizeof(void *) / 2, 8) == EINVAL && p == (void *)0x1234);
    CHECK(posix_memalign(&p, 24, 8) == EINVAL && p == (void *)0x1234);
    errno = 12345;
    CHECK(posix_memalign(&p, 64, big(BIG)) == ENOMEM && p == (void *)0x1234);
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 22); a <<= 1) {
        void *q = NULL;
        CHECK(posix_memalign(&q, a, 100) == 0 && q != NULL && aligned(q, a));
        if (q) memset(q, 1, 100);
        free(q);
    }
    void *q0 = NULL;
    errno = 777;
    CHECK(posix_memalign(&q0, 64, 0) == 0 && q0 != NULL);
    CHECK(errno == 777);
    free(q0);

    for (size_t a = 1; a <= 65536; a <<= 1) {
        void *q = aligned_alloc(a, 3 * a);
        CHECK(q != NULL && aligned(q, a));
        free(q);
        q = memalign(a, 100);
        CHECK(q != NULL && aligned(q, a));
        free(q);
    }
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(10);
    CHECK(v != NULL && aligned(v, (size_t)page));
    free(v);
    char *pv = pvalloc(10);
    CHECK(pv != NULL && aligned(pv, (size_t)page) && malloc_usable_size(pv) >= (size_t)page);
    if (pv) pv[page - 1] = 1;
    free(pv);
    pv = pvalloc(0);
    CHECK(pv != NULL && aligned(pv, (size_t)page));
    free(pv);
}

static void errno_and_aliases(void) {
    void *p = malloc(100);
    errno = 4242;
    free(p);
    CHECK(errno == 4242);
    errno = 4243;
    free(NULL);
    CHECK(errno == 4243);
    /* Large block (returned to the OS on free). */
    p = malloc((size_t)32 << 20);
    errno = 4244;
    free(p);
    CHECK(errno == 4244);

    void *a = __libc_malloc(32);
    CHECK(a != NULL);
    a = __libc_realloc(a, 64);
    CHECK(a != NULL);
    free(a);
    a = __libc_calloc(4, 4);
    CHECK(a != NULL && ((int *)a)[3] == 0);
    __libc_free(a);
    a = __libc_memalign(256, 8);
    CHECK(a != NULL && aligned(a, 256));
    free(a);
    if (free_sized) {
        a = malloc(48);
        free_sized(a, 48);
        CHECK(1);
    }
    if (free_aligned_sized) {
        a = aligned_alloc(128, 256);
        free_aligned_sized(a, 128, 256);
        CHECK(1);
    }
    if (cfree) {
        a = malloc(8);
        cfree(a);
        CHECK(1);
    }
}

static void introspection(int on_liballoc) {
    size_t n = (size_t)16 << 20;
    char *p = malloc(n);
    memset(p, 1, n);
    struct mallinfo2 mi = mallinfo2();
    /* Both allocators account a touched 16 MiB block somewhere. */
    CHECK(mi.arena + mi.hblkhd >= n);
    CHECK(mi.uordblks + mi.hblkhd > 0);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo m1 = mallinfo();
#pragma GCC diagnostic pop
    CHECK(m1.arena != 0 || m1.hblkhd != 0);
    free(p);
    CHECK(malloc_trim(0) >= 0);
    CHECK(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    if (f) {
        CHECK(malloc_info(0, f) == 0);
        fclose(f);
        CHECK(buf && strncmp(buf, "<malloc version=", 16) == 0);
        CHECK(on_liballoc == (strstr(buf, "liballoc") != NULL));
        free(buf);
    }
    f = fopen("/dev/null", "w");
    if (f) {
        /* glibc returns EINVAL itself (not -1 with errno). */
        CHECK(malloc_info(1, f) == EINVAL);
        fclose(f);
    }
}

/* Where glibc 2.36 and the shim differ on purpose. */
static void shim_only(void) {
    /* aligned_alloc rejects a non-power-of-two alignment (C17 DR 460;
     * glibc >= 2.38 does too). */
    errno = 0;
    CHECK(aligned_alloc(3, 9) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(aligned_alloc(0, 8) == NULL && errno == EINVAL);
    /* posix_memalign reports by its result alone: errno is left as it
     * was, also on failure (POSIX asks nothing of it; glibc sets ENOMEM). */
    void *p = (void *)0x1234;
    errno = 12345;
    CHECK(posix_memalign(&p, 64, big(BIG)) == ENOMEM && p == (void *)0x1234);
    CHECK(errno == 12345);
    /* mallinfo2 reports liballoc's live bytes and blocks, not zeros. */
    char *volatile live = malloc(3000);
    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.arena >= 3000 && mi.uordblks >= 3000 && mi.ordblks >= 1);
    CHECK(mi.fordblks == mi.arena - mi.uordblks);
    free(live);

    /* malloc_trim really returns memory: after freeing 32 MiB of small
     * blocks, trimming lowers what the allocator holds. */
    enum { N = 32 * 1024 };
    void **blocks = malloc(N * sizeof *blocks);
    CHECK(blocks != NULL);
    if (blocks) {
        for (int i = 0; i < N; i++) {
            blocks[i] = malloc(1000);
            if (blocks[i]) memset(blocks[i], 1, 1000);
        }
        for (int i = 0; i < N; i++) free(blocks[i]);
        size_t before = mallinfo2().arena;
        CHECK(malloc_trim(0) == 1);
        size_t after = mallinfo2().arena;
        CHECK(after + ((size_t)16 << 20) < before);
        free(blocks);
    }
}

static void glibc_only(void) {
    /* glibc 2.36's aligned_alloc is memalign: it rounds 3 up to 4. */
    void *p = aligned_alloc(3, 9);
    CHECK(p != NULL && aligned(p, 4));
    free(p);
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "shim") && strcmp(argv[1], "glibc"))) {
        fprintf(stderr, "usage: %s shim|glibc\n", argv[0]);
        return 2;
    }
    int want_shim = strcmp(argv[1], "shim") == 0;
    int on_liballoc = runs_on_liballoc();
    CHECK(on_liballoc == want_shim);
    basic();
    failures();
    calloc_zeroes();
    reallocs();
    alignments();
    errno_and_aliases();
    introspection(on_liballoc);
    if (want_shim)
        shim_only();
    else
        glibc_only();
    char name[64];
    snprintf(name, sizeof name, "preload_conformance (%s)", argv[1]);
    return check_summary(name);
}
