/*
 * profile_sites.c: allocation sites of known volume for the heap
 * profiler's test (c_tests/profile/run_tests.sh, check_profile.py).
 *
 *   site_churn    64 MiB in 1 KiB blocks, allocated and freed
 *   site_live     16 MiB in 100 KiB blocks, live until exit
 *   site_leak      8 MiB in 4 KiB blocks, leaked
 *   site_via_lib   8 MiB in 2 KiB blocks, allocated by nofp_fill() in a
 *                  library built without frame pointers, then freed
 *   site_realloc_move  2048 blocks of 16 B (from small_block) moved by
 *                  realloc to 32 KiB: 64 MiB, freed
 *   site_realloc_stay  one 1000-byte block (from small_block) resized by
 *                  realloc 2^20 times within its block: no new allocation,
 *                  so no sample (counting each call would make 1 GiB)
 *   site_big      64 MiB in 1 MiB blocks, live until exit (huge blocks, at
 *                  the same offset in their 4 MiB slots: each is sampled at
 *                  the test's rate, and each sample must be kept)
 *
 * With an argument, it also dumps the profile to that file with
 * la_profile_dump() half-way and prints whether it could.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "liballoc.h"

void **nofp_fill(size_t n, size_t size);

static void *volatile sink;
static void *live[200];
static void *big[64];

__attribute__((noinline)) static void site_churn(void) {
    void *batch[64];
    for (int round = 0; round < 1024; round++) {
        for (int i = 0; i < 64; i++) {
            batch[i] = malloc(1024);
            memset(batch[i], 1, 16);
        }
        for (int i = 0; i < 64; i++) free(batch[i]);
    }
}

__attribute__((noinline)) static void site_live(void) {
    for (int i = 0; i < 164; i++) {
        live[i] = malloc(100 << 10);
        memset(live[i], 2, 16);
    }
}

__attribute__((noinline)) static void site_leak(void) {
    for (int i = 0; i < 2048; i++) {
        void *p = malloc(4096);
        memset(p, 3, 16);
        sink = p;
    }
}

__attribute__((noinline)) static void site_via_lib(void) {
    void **v = nofp_fill(4096, 2048);
    if (!v) abort();
    for (int i = 0; i < 4096; i++) free(v[i]);
    free(v);
}

__attribute__((noinline)) static void *small_block(size_t n) {
    void *p = malloc(n);
    if (!p) abort();
    return p;
}

__attribute__((noinline)) static void site_realloc_move(void) {
    for (int i = 0; i < 2048; i++) {
        char *p = realloc(small_block(16), 32 << 10);
        if (!p) abort();
        memset(p, 4, 16);
        free(p);
    }
}

__attribute__((noinline)) static void site_realloc_stay(void) {
    char *p = small_block(1000);
    uintptr_t first = (uintptr_t)p;
    for (int i = 0; i < (1 << 20); i++) {
        p = realloc(p, 1000 + (i & 1));
        /* It stays: the block holds 1001 bytes. */
        if ((uintptr_t)p != first) abort();
    }
    free(p);
}

__attribute__((noinline)) static void site_big(void) {
    for (int i = 0; i < 64; i++) {
        big[i] = malloc(1 << 20);
        memset(big[i], 6, 16);
    }
}

int main(int argc, char **argv) {
    site_churn();
    site_live();
    if (argc > 1) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return 2;
        printf("la_profile_dump: %s\n", la_profile_dump(fd) ? "written" : "not written");
        close(fd);
    }
    site_leak();
    site_via_lib();
    site_realloc_move();
    site_realloc_stay();
    site_big();
    printf("done\n");
    return 0;
}
