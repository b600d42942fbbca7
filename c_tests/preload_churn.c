/*
 * preload_churn.c: threads, fork and thread exit on the preloaded malloc.
 *
 *   preload_churn churn    threads allocating, freeing and handing blocks to
 *                          each other; fork() while they run (the child
 *                          allocates, checks and exits); thread-exit
 *                          destructors (pthread keys) that free and allocate
 *                          after the thread's other state is gone; many
 *                          short-lived threads.
 *   preload_churn failat   counts the NULLs of many malloc calls: run with
 *                          LA_FAIL_AT=N it must see exactly one, with ENOMEM.
 *   preload_churn count N  makes N allocations (for the LA_STATS checks).
 *
 * Plain malloc code: it runs on glibc as well (run_tests.sh runs "churn"
 * both ways). Not named test_*.c: it is run under LD_PRELOAD by its script.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define THREADS 4
#define ROUNDS 20000
#define SLOTS 64

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t pick_size(uint64_t r) {
    switch (r % 16) {
    case 0: return (size_t)(r >> 8) % 65536 + 1;
    case 1: return (size_t)(r >> 8) % (1 << 20) + 1;
    default: return (size_t)(r >> 8) % 256 + 1;
    }
}

/* A mailbox per thread: other threads drop blocks here; the owner frees. */
static _Atomic(void *) mailbox[THREADS];
static pthread_key_t exit_key;
static _Atomic int failures;

/* Fills a block with a pattern derived from its size so corruption shows. */
static void fill(unsigned char *p, size_t n) {
    memcpy(p, &n, sizeof n < n ? sizeof n : n);
    if (n > sizeof n) memset(p + sizeof n, (int)(n & 0xff), n - sizeof n > 64 ? 64 : n - sizeof n);
}

static int intact(const unsigned char *p, size_t n) {
    size_t m;
    if (n < sizeof m) return 1;
    memcpy(&m, p, sizeof m);
    if (m != n) return 0;
    for (size_t i = sizeof n; i < n && i < sizeof n + 64; i++)
        if (p[i] != (unsigned char)(n & 0xff)) return 0;
    return 1;
}

static void exit_destructor(void *v) {
    /* Runs at thread exit, after the thread's own allocations were freed:
     * free the block registered at start, then allocate and free again. */
    if (!intact(v, 777)) failures++;
    free(v);
    void *again = malloc(123);
    if (!again) failures++;
    free(again);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    void *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    void *reg = malloc(777);
    fill(reg, 777);
    pthread_setspecific(exit_key, reg);
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t x = rng_next(&seed);
        int i = (int)(x % SLOTS);
        if (slot[i]) {
            if (!intact(slot[i], size[i])) failures++;
            if (x & (1 << 20)) {
                /* Hand it to another thread's mailbox (freed by whoever
                 * takes it); whatever was there is freed here. */
                void *old = __atomic_exchange_n((void **)&mailbox[(id + 1) % THREADS], slot[i], __ATOMIC_ACQ_REL);
                free(old);
            } else if (x & (1 << 21)) {
                size_t n = pick_size(rng_next(&seed));
                void *q = realloc(slot[i], n);
                if (!q) { failures++; continue; }
                /* The old contents survive up to the smaller size. */
                if (n >= size[i] && !intact(q, size[i])) failures++;
                slot[i] = q;
                size[i] = n;
                fill(q, n);
                continue;
            } else {
                free(slot[i]);
            }
            slot[i] = NULL;
        } else {
            size[i] = pick_size(x >> 24);
            slot[i] = (x & 3) == 0 ? calloc(1, size[i]) : malloc(size[i]);
            if (!slot[i]) { failures++; continue; }
            fill(slot[i], size[i]);
        }
        void *m = __atomic_exchange_n((void **)&mailbox[id], NULL, __ATOMIC_ACQ_REL);
        free(m);
    }
    for (int i = 0; i < SLOTS; i++) free(slot[i]);
    return NULL;
}

static void *short_lived(void *arg) {
    (void)arg;
    void *v = malloc(777);
    fill(v, 777);
    pthread_setspecific(exit_key, v);
    for (int i = 0; i < 100; i++) free(malloc((size_t)i * 16 + 1));
    return NULL;
}

static void churn(void) {
    CHECK(pthread_key_create(&exit_key, exit_destructor) == 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) == 0);

    /* fork() while the workers allocate: the child must be able to use
     * malloc (no lock left held) and exit cleanly. */
    for (int f = 0; f < 8; f++) {
        pid_t pid = fork();
        if (pid == 0) {
            int ok = 1;
            for (int i = 0; i < 1000; i++) {
                char *p = malloc((size_t)i + 1);
                if (!p) ok = 0;
                else { memset(p, 7, (size_t)i + 1); free(p); }
            }
            pthread_t ct;
            if (pthread_create(&ct, NULL, short_lived, NULL) != 0 || pthread_join(ct, NULL) != 0) ok = 0;
            _exit(ok ? 0 : 1);
        }
        int status = -1;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    for (int i = 0; i < THREADS; i++) free(mailbox[i]);

    /* Many short-lived threads, each freeing at exit. */
    for (int round = 0; round < 50; round++) {
        pthread_t s[4];
        for (int i = 0; i < 4; i++) CHECK(pthread_create(&s[i], NULL, short_lived, NULL) == 0);
        for (int i = 0; i < 4; i++) CHECK(pthread_join(s[i], NULL) == 0);
    }
    CHECK(failures == 0);
}

static void failat(void) {
    int nulls = 0, enomem = 0;
    void **keep = calloc(20000, sizeof *keep);
    CHECK(keep != NULL);
    if (!keep) return;
    for (int i = 0; i < 20000; i++) {
        errno = 0;
        keep[i] = malloc(32);
        if (!keep[i]) {
            nulls++;
            if (errno == ENOMEM) enomem++;
        }
    }
    for (int i = 0; i < 20000; i++) free(keep[i]);
    free(keep);
    printf("failat: %d of 20000 allocations failed\n", nulls);
    CHECK(nulls == 1);
    CHECK(enomem == 1);
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "churn") == 0) {
        churn();
        return check_summary("preload_churn");
    }
    if (argc >= 2 && strcmp(argv[1], "failat") == 0) {
        failat();
        return check_summary("preload_churn failat");
    }
    if (argc >= 3 && strcmp(argv[1], "count") == 0) {
        long n = atol(argv[2]);
        void *volatile sink;
        for (long i = 0; i < n; i++) {
            sink = malloc(24);
            free(sink);
        }
        return 0;
    }
    fprintf(stderr, "usage: %s churn|failat|count N\n", argv[0]);
    return 2;
}
