/*
 * smp_policy: how the smp allocator gets memory from the OS and gives it
 * back, asserted with counts (system calls from la_smp_stats, resident
 * memory from /proc/self/statm), never with timings. One mode per run:
 *
 *   large   4 threads churn 8 live blocks each of 256 KiB - 4 MiB; after a
 *           warm-up, at most 1 mmap + munmap + madvise per 100 operations
 *           (freed large blocks wait in the shared reserve for reuse);
 *   waves   1,000 threads one after another, each allocating ~2,000 blocks
 *           of 16 - 2,000 bytes and freeing them: at most 2 allocator system
 *           calls per thread on average (an exiting thread hands its pages
 *           on still committed);
 *   inherit one thread, 8 rounds: a 4 MiB block written whole and freed,
 *           then a block of a new 256 - 512 KiB class kept, whose segment
 *           (one 4 MiB page) starts clean, never over the memory the freed
 *           block left resident, so the resident set grows by the live
 *           bytes and one freed block, not by 4 MiB a round (nothing is
 *           purged meanwhile);
 *   split   the same with a block of two slots (7 MiB): the segments leave
 *           the run of slots the freed block left resident alone, so each
 *           round's block reuses it instead of faulting in fresh slots
 *           beside the ones a segment split;
 *   relay   4,000 threads one after another, each leaving one 128-byte
 *           block alive in a table of 1,000 and freeing the block it
 *           displaces (mimalloc-bench's mleak): a new thread takes the
 *           pages an exited one left with free blocks, so the memory
 *           committed stays within 1 MiB of the live bytes and the run
 *           makes fewer than one allocator system call per 10 threads;
 *   idle    512 MiB allocated in small and large blocks, 95% freed, then no
 *           allocation call at all: within 2 s the resident set falls to at
 *           most 1.25 x the live bytes + 8 MiB (the background purger);
 *   trim    the same burst with the purger switched off (la_smp_set_purge_
 *           thread, or LA_PURGE_THREAD=0 for the shim): nothing comes back
 *           by itself, and la_smp_collect() (malloc_trim(0) when built with
 *           -DPOLICY_MALLOC) gets there at once;
 *   fork    idle in the child of a fork() taken while the parent's purger
 *           ran: the child's own purger gives its memory back;
 *   exited  a thread that allocated 256 MiB exits keeping one block in
 *           16,384 alive, so its segments are abandoned with free pages:
 *           within 2 s RSS is back under the same bound.
 *
 * Built twice: against liballoc (la_smp_allocator, all modes) and with
 * -DPOLICY_MALLOC as plain malloc code for the shim (idle, trim, fork,
 * exited).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifdef POLICY_MALLOC
#include <malloc.h>
static void *xalloc(size_t n) { return malloc(n); }
static void xfree(void *p, size_t n) {
    (void)n;
    free(p);
}
static void collect(void) { malloc_trim(0); }
static void purger_off(void) {}
#else
#include "liballoc.h"
static void *xalloc(size_t n) { return la_alloc(la_smp_allocator(), 1, n, 16); }
static void xfree(void *p, size_t n) { la_free(la_smp_allocator(), p, 1, n, 16); }
static void collect(void) { la_smp_collect(); }
static void purger_off(void) { la_smp_set_purge_thread(false); }

static uint64_t syscalls(void) {
    la_smp_stats s;
    la_smp_get_stats(&s);
    return s.mmap_calls + s.munmap_calls + s.madvise_calls + s.mremap_calls;
}
#endif

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#ifndef POLICY_MALLOC
/* ---- large ---- */

#define LARGE_THREADS 4
#define LARGE_LIVE 8
#define LARGE_WARM 400
#define LARGE_OPS 4000

static pthread_barrier_t large_bar;

static void *large_thread(void *arg) {
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)((uintptr_t)arg + 1);
    char *live[LARGE_LIVE] = {0};
    size_t len[LARGE_LIVE] = {0};
    for (int phase = 0; phase < 2; phase++) {
        int ops = phase == 0 ? LARGE_WARM : LARGE_OPS;
        for (int i = 0; i < ops; i++) {
            int k = (int)(rng(&seed) % LARGE_LIVE);
            if (live[k]) xfree(live[k], len[k]);
            len[k] = (256u << 10) + (size_t)(rng(&seed) % ((4u << 20) - (256u << 10)));
            live[k] = xalloc(len[k]);
            if (!live[k]) return (void *)1;
            live[k][0] = 1;
            live[k][len[k] / 2] = 2;
            live[k][len[k] - 1] = 3;
        }
        /* Every thread ends its warm-up before the counters are read. */
        pthread_barrier_wait(&large_bar);
        pthread_barrier_wait(&large_bar);
    }
    for (int k = 0; k < LARGE_LIVE; k++)
        if (live[k]) xfree(live[k], len[k]);
    return NULL;
}

static void test_large(void) {
    pthread_t t[LARGE_THREADS];
    pthread_barrier_init(&large_bar, NULL, LARGE_THREADS + 1);
    for (intptr_t i = 0; i < LARGE_THREADS; i++)
        pthread_create(&t[i], NULL, large_thread, (void *)i);
    pthread_barrier_wait(&large_bar);
    uint64_t before = syscalls();
    pthread_barrier_wait(&large_bar);
    pthread_barrier_wait(&large_bar);
    uint64_t after = syscalls();
    pthread_barrier_wait(&large_bar);
    int failed = 0;
    for (int i = 0; i < LARGE_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    CHECK(failed == 0);
    uint64_t ops = 2ull * LARGE_THREADS * LARGE_OPS; /* an alloc and a free each */
    printf("large: %llu system calls for %llu operations\n", (unsigned long long)(after - before),
           (unsigned long long)ops);
    CHECK((after - before) * 100 <= ops);
}

/* ---- waves ---- */

#define WAVES 1000
#define WAVE_BLOCKS 2000

static void *wave_thread(void *arg) {
    uint64_t seed = 0x243f6a8885a308d3ull ^ (uint64_t)(uintptr_t)arg;
    static _Thread_local void *blocks[WAVE_BLOCKS];
    static _Thread_local size_t lens[WAVE_BLOCKS];
    for (int i = 0; i < WAVE_BLOCKS; i++) {
        lens[i] = 16 + (size_t)(rng(&seed) % 1985);
        blocks[i] = xalloc(lens[i]);
        if (!blocks[i]) return (void *)1;
        memset(blocks[i], 0x33, lens[i] < 64 ? lens[i] : 64);
    }
    for (int i = 0; i < WAVE_BLOCKS; i++) xfree(blocks[i], lens[i]);
    return NULL;
}

/* Runs `n` threads of `fn` one after another (each given its index);
 * returns how many failed to start or returned non-NULL. */
static int run_one_by_one(int n, void *(*fn)(void *)) {
    int failed = 0;
    for (intptr_t i = 0; i < n; i++) {
        pthread_t t;
        void *r = NULL;
        if (pthread_create(&t, NULL, fn, (void *)i) != 0) {
            failed++;
            continue;
        }
        pthread_join(t, &r);
        failed += r != NULL;
    }
    return failed;
}

static void test_waves(void) {
    uint64_t before = syscalls();
    int failed = run_one_by_one(WAVES, wave_thread);
    uint64_t n = syscalls() - before;
    CHECK(failed == 0);
    printf("waves: %llu system calls for %d threads\n", (unsigned long long)n, WAVES);
    CHECK(n <= 2 * WAVES);
}

/* ---- inherit and split ---- */

#define INHERIT_ROUNDS 8

/* Minor page faults of the process so far. */
static long minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

/* INHERIT_ROUNDS rounds of a block of `huge` bytes written whole and
 * freed, then a block of a new 256 - 512 KiB class kept. Checks that the
 * resident set grows by the live bytes and one freed block at most, and
 * returns the page faults of writing the block from the second round on
 * (its pages are resident by then). */
static long huge_then_segment(const char *name, size_t huge) {
    /* No purge during the run: what stays resident is what the slots hold. */
    la_smp_set_purge_delay_ms(60000);
    size_t live = 0;
    char *kept[INHERIT_ROUNDS] = {0};
    size_t kept_len[INHERIT_ROUNDS] = {0};
    size_t before = rss_bytes();
    long faults = 0;
    for (int i = 0; i < INHERIT_ROUNDS; i++) {
        long f0 = minor_faults();
        char *h = xalloc(huge);
        CHECK(h != NULL);
        if (!h) break;
        memset(h, 0x5a, huge);
        if (i > 0) faults += minor_faults() - f0;
        xfree(h, huge);
        /* 260 KiB, 292 KiB, ...: one size class (so one segment) each. */
        kept_len[i] = ((size_t)260 << 10) + (size_t)i * ((size_t)32 << 10);
        kept[i] = xalloc(kept_len[i]);
        CHECK(kept[i] != NULL);
        if (!kept[i]) break;
        memset(kept[i], 0x33, 4096);
        live += kept_len[i];
    }
    size_t grown = rss_bytes() - before;
    printf("%s: %d rounds of %zu bytes, %zu live bytes, resident set grew by %zu bytes, "
           "%ld page faults writing the block after the first round\n",
           name, INHERIT_ROUNDS, huge, live, grown, faults);
    CHECK(grown <= live + huge + ((size_t)2 << 20));
    for (int i = 0; i < INHERIT_ROUNDS; i++)
        if (kept[i]) xfree(kept[i], kept_len[i]);
    la_smp_set_purge_delay_ms(50);
    return faults;
}

static void test_inherit(void) {
    huge_then_segment("inherit", ((size_t)4 << 20) - ((size_t)64 << 10));
}

static void test_split(void) {
    /* A block over fresh slots faults in 1,792 pages a round. */
    CHECK(huge_then_segment("split", (size_t)7 << 20) <= 64 * (INHERIT_ROUNDS - 1));
}

/* ---- relay ---- */

#define RELAY_THREADS 4000
#define RELAY_SLOTS 1000
#define RELAY_LEN 128

static void *_Atomic relay_slot[RELAY_SLOTS];

static void *relay_thread(void *arg) {
    uint64_t seed = 0x2545f4914f6cdd1dull * ((uint64_t)(uintptr_t)arg + 1);
    char *p = xalloc(RELAY_LEN);
    if (!p) return (void *)1;
    memset(p, 0x5a, RELAY_LEN);
    void *old = atomic_exchange(&relay_slot[rng(&seed) % RELAY_SLOTS], p);
    if (old) xfree(old, RELAY_LEN);
    return NULL;
}

static void test_relay(void) {
    /* No purge during the run: what is committed is what the pages hold. */
    la_smp_set_purge_delay_ms(60000);
    uint64_t before = syscalls();
    int failed = run_one_by_one(RELAY_THREADS, relay_thread);
    uint64_t calls = syscalls() - before;
    la_smp_stats s;
    la_smp_get_stats(&s);
    size_t live = 0;
    for (int i = 0; i < RELAY_SLOTS; i++) live += relay_slot[i] ? RELAY_LEN : 0;
    printf("relay: %d threads, %zu live bytes, %zu bytes committed, %llu system calls\n",
           RELAY_THREADS, live, (size_t)s.committed_bytes, (unsigned long long)calls);
    CHECK(failed == 0);
    CHECK(s.committed_bytes <= live + ((size_t)1 << 20));
    CHECK(calls * 10 <= RELAY_THREADS);
    for (int i = 0; i < RELAY_SLOTS; i++) {
        void *p = atomic_exchange(&relay_slot[i], NULL);
        if (p) xfree(p, RELAY_LEN);
    }
    la_smp_set_purge_delay_ms(50);
}
#endif

/* ---- idle / trim / fork ---- */

#define BURST ((size_t)512 << 20)
#define MAX_BLOCKS (1 << 21)

static void *burst_ptr[MAX_BLOCKS];
static size_t burst_len[MAX_BLOCKS];

/* Allocates BURST bytes (a fifth in 1-4 MiB blocks, the rest in blocks of
 * 16-1024 bytes), writes every page, then frees the first 95% of the bytes
 * (in allocation order) and returns the bytes still live. */
static size_t burst(uint64_t seed) {
    size_t total = 0;
    int n = 0;
    while (total < BURST && n < MAX_BLOCKS) {
        size_t len = n % 64 == 63 ? (1u << 20) + (size_t)(rng(&seed) % (3u << 20))
                                  : 16 + (size_t)(rng(&seed) % 1009);
        char *p = xalloc(len);
        if (!p) break;
        for (size_t o = 0; o < len; o += 4096) p[o] = (char)o;
        p[len - 1] = 1;
        burst_ptr[n] = p;
        burst_len[n] = len;
        total += len;
        n++;
    }
    CHECK(total >= BURST);
    size_t freed = 0;
    int i = 0;
    for (; i < n && freed < total / 20 * 19; i++) {
        xfree(burst_ptr[i], burst_len[i]);
        burst_ptr[i] = NULL;
        freed += burst_len[i];
    }
    return total - freed;
}

static void release_rest(void) {
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (burst_ptr[i]) {
            xfree(burst_ptr[i], burst_len[i]);
            burst_ptr[i] = NULL;
        }
}

static size_t bound(size_t live) { return live + live / 4 + ((size_t)8 << 20); }

/* Waits up to 2 s without any allocation call for RSS to fall under the
 * bound; returns the last RSS seen. */
static size_t wait_for_rss(size_t limit) {
    size_t rss = rss_bytes();
    for (int i = 0; i < 40 && rss > limit; i++) {
        sleep_ms(50);
        rss = rss_bytes();
    }
    return rss;
}

static void report(const char *what, size_t live, size_t rss) {
    printf("%s: live %zu KiB, RSS %zu KiB, bound %zu KiB\n", what, live >> 10, rss >> 10,
           bound(live) >> 10);
}

static void test_idle(void) {
    size_t live = burst(1);
    size_t peak = rss_bytes();
    size_t rss = wait_for_rss(bound(live));
    report("idle", live, rss);
    CHECK(peak > bound(live)); /* the test measures something */
    CHECK(rss <= bound(live));
    release_rest();
}

static void test_trim(void) {
    purger_off();
    size_t live = burst(2);
    sleep_ms(300);
    /* Without the purger and without allocation calls nothing comes back
     * (the shim's purger is switched off by LA_PURGE_THREAD=0). */
    const char *env = getenv("LA_PURGE_THREAD");
#ifdef POLICY_MALLOC
    int off = env && !strcmp(env, "0");
#else
    int off = 1;
    (void)env;
#endif
    if (off) CHECK(rss_bytes() > bound(live));
    collect();
    size_t rss = rss_bytes();
    report("trim", live, rss);
    CHECK(rss <= bound(live));
    release_rest();
}

static void test_fork(void) {
    size_t live = burst(3);
    pid_t pid = fork();
    if (pid == 0) {
        release_rest();
        collect();
        live = burst(4);
        size_t rss = wait_for_rss(bound(live));
        report("fork child", live, rss);
        fflush(stdout);
        _exit(rss <= bound(live) ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    release_rest();
}

/* A worker allocates 256 MiB of small blocks, 16,384 at a time, and frees
 * each batch but its first block (so most of its segments keep a block
 * and are abandoned, not released, when it exits), then exits; the purger
 * decommits the free pages of those segments, which no thread owns. The
 * blocks kept are listed in burst_ptr (a few hundred entries). */
static void *exited_thread(void *arg) {
    size_t *live = arg;
    uint64_t seed = 5;
    static void *batch[16384];
    static size_t batch_len[16384];
    size_t total = 0;
    int kept = 0;
    while (total < BURST / 2 && kept < MAX_BLOCKS) {
        for (int i = 0; i < 16384; i++) {
            size_t len = 16 + (size_t)(rng(&seed) % 1009);
            char *p = xalloc(len);
            if (!p) return (void *)1;
            memset(p, 7, len);
            batch[i] = p;
            batch_len[i] = len;
            if (i == 0) {
                burst_ptr[kept] = p;
                burst_len[kept++] = len;
                *live += len;
            }
            total += len;
        }
        for (int i = 1; i < 16384; i++) xfree(batch[i], batch_len[i]);
    }
    return NULL;
}

static void test_exited(void) {
    size_t live = 0;
    pthread_t t;
    void *r = NULL;
    CHECK(pthread_create(&t, NULL, exited_thread, &live) == 0);
    pthread_join(t, &r);
    CHECK(r == NULL);
    size_t rss = wait_for_rss(bound(live));
    report("exited", live, rss);
    CHECK(rss <= bound(live));
    release_rest();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
#ifndef POLICY_MALLOC
    if (!strcmp(mode, "large")) test_large();
    else if (!strcmp(mode, "waves")) test_waves();
    else if (!strcmp(mode, "relay")) test_relay();
    else if (!strcmp(mode, "inherit")) test_inherit();
    else if (!strcmp(mode, "split")) test_split();
    else
#endif
        if (!strcmp(mode, "idle")) test_idle();
    else if (!strcmp(mode, "trim")) test_trim();
    else if (!strcmp(mode, "fork")) test_fork();
    else if (!strcmp(mode, "exited")) test_exited();
    else {
        fprintf(stderr, "usage: %s large|waves|relay|inherit|split|idle|trim|fork|exited\n", argv[0]);
        return 2;
    }
    return check_summary(mode);
}
