/*
 * preload_vm.c: the address space the preloaded malloc takes.
 *
 *   preload_vm vmsize    allocates and frees one small block, then prints
 *                        the process's VmSize (kB, from /proc/self/status):
 *                        what a trivial program costs at start.
 *   preload_vm threads   4 threads allocate and free small blocks and a few
 *                        1-4 MiB blocks, checking their contents; exits 0
 *                        when every allocation succeeded and every block
 *                        kept its data. run_tests.sh runs it under a small
 *                        `ulimit -v`.
 *   preload_vm textrss NAME
 *                        runs the threads workload, then prints the resident
 *                        kB of the executable mappings whose path contains
 *                        NAME (from /proc/self/smaps): the code of the
 *                        preloaded malloc that the process keeps in memory.
 *   preload_vm rodatarss NAME
 *                        the same, then the resident kB of the read-only
 *                        mapping just after NAME's code: its constant data
 *                        (.rodata and the unwind tables).
 *
 * Plain malloc code: it runs on any malloc. Not named test_*.c: it is run
 * under LD_PRELOAD by its script.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define ROUNDS 20000
#define SLOTS 256

static long vmsize_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0) kb = strtol(line + 7, NULL, 10);
    fclose(f);
    return kb;
}

/* Rss (kB) of the executable mappings whose path contains `name`; -1 when
 * there is none. */
static long text_rss_kb(const char *name) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long kb = -1;
    int in = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        /* A mapping's first line: "lo-hi perms offset dev inode path". */
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
            in = perms[2] == 'x' && strstr(line, name) != NULL;
            continue;
        }
        if (in && strncmp(line, "Rss:", 4) == 0) kb = (kb < 0 ? 0 : kb) + strtol(line + 4, NULL, 10);
    }
    fclose(f);
    return kb;
}

/* Rss (kB) of the first read-only mapping of `name` that follows one of
 * its executable mappings; -1 when there is none. */
static long rodata_rss_kb(const char *name) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long kb = -1;
    int after_text = 0, in = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
            int ours = strstr(line, name) != NULL;
            in = ours && after_text && kb < 0 && strcmp(perms, "r--p") == 0;
            after_text = ours && perms[2] == 'x';
            continue;
        }
        if (in && strncmp(line, "Rss:", 4) == 0) kb = strtol(line + 4, NULL, 10);
    }
    fclose(f);
    return kb;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static _Atomic int failures;

/* Writes the block's first and last 64 bytes from its size and seed. */
static void fill(unsigned char *p, size_t n, unsigned char seed) {
    size_t k = n < 64 ? n : 64;
    memset(p, seed, k);
    memset(p + n - k, (unsigned char)(seed ^ 0x5a), k);
}

static int intact(const unsigned char *p, size_t n, unsigned char seed) {
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k && i < n - k; i++)
        if (p[i] != seed) return 0;
    for (size_t i = n - k; i < n; i++)
        if (p[i] != (unsigned char)(seed ^ 0x5a)) return 0;
    return 1;
}

static void *worker(void *arg) {
    uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    unsigned char *slot[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t x = rng_next(&s);
        int i = (int)(x % SLOTS);
        if (slot[i]) {
            if (!intact(slot[i], len[i], (unsigned char)i)) failures++;
            free(slot[i]);
            slot[i] = NULL;
            continue;
        }
        /* One in 500 is a 1-4 MiB block, the rest small. */
        size_t n = x % 500 == 0 ? ((size_t)1 << 20) + (size_t)(x >> 12) % (3u << 20)
                                : (size_t)(x >> 16) % 512 + 1;
        slot[i] = malloc(n);
        if (!slot[i]) {
            failures++;
            continue;
        }
        len[i] = n;
        fill(slot[i], n, (unsigned char)i);
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i] && !intact(slot[i], len[i], (unsigned char)i)) failures++;
        free(slot[i]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "vmsize") == 0) {
        void *volatile p = malloc(16);
        free(p);
        long kb = vmsize_kb();
        if (kb < 0) return 1;
        printf("%ld\n", kb);
        return 0;
    }
    int rss_mode = strcmp(mode, "textrss") == 0 || strcmp(mode, "rodatarss") == 0;
    if (strcmp(mode, "threads") == 0 || (rss_mode && argc > 2)) {
        pthread_t t[THREADS];
        for (uintptr_t i = 0; i < THREADS; i++)
            if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
                fprintf(stderr, "pthread_create failed\n");
                return 1;
            }
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
        if (failures) fprintf(stderr, "%d failed or damaged allocations\n", (int)failures);
        if (failures) return 1;
        if (argc > 2) {
            long kb = strcmp(mode, "textrss") == 0 ? text_rss_kb(argv[2]) : rodata_rss_kb(argv[2]);
            if (kb < 0) return 1;
            printf("%ld\n", kb);
        }
        return 0;
    }
    fprintf(stderr, "usage: preload_vm vmsize|threads|textrss NAME|rodatarss NAME\n");
    return 2;
}
