/* Leak programs for the differential check against LeakSanitizer: each mode
 * leaves the last pointer to a block in one place, then exits.
 *
 *   global     a global                      (reachable)
 *   tls        a thread-local of main        (reachable)
 *   thread     another live thread's stack   (reachable)
 *   register   another live thread's register only (reachable; x86-64)
 *   interior   a global, 24 bytes into the block (reachable)
 *   mmap       memory the program mapped itself  (see run_tests.sh)
 *   freed      a holder block the program freed  (leaked)
 *   recent     nowhere: the most recent allocation, dropped (leaked)
 *   realloc    nowhere: a block grown by realloc, dropped (leaked)
 *   memalign   nowhere: a 64-byte-aligned block, dropped (leaked)
 *   child      only another leaked block     (1 direct, 1 indirect)
 *
 * Reachable blocks are 1000 bytes, leaked ones 700 (the grown block 3000). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common.h"

static void *volatile keep;
static _Thread_local void *volatile tls_keep;
static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int ready;

static void signal_ready(void) {
    pthread_mutex_lock(&ready_lock);
    ready = 1;
    pthread_cond_signal(&ready_cond);
    pthread_mutex_unlock(&ready_lock);
}

static void wait_ready(void) {
    pthread_mutex_lock(&ready_lock);
    while (!ready) pthread_cond_wait(&ready_cond, &ready_lock);
    pthread_mutex_unlock(&ready_lock);
}

/* Holds its block in a local of its own frame until the process exits. */
static void *hold_on_stack(void *arg) {
    (void)arg;
    void *volatile mine = malloc(1000);
    signal_ready();
    for (;;) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
        KEEP();
    }
    return (void *)mine;
}

/* Holds its block in a callee-saved register only, spinning. */
static void *hold_in_register(void *arg) {
    (void)arg;
#if defined(__x86_64__)
    void *p = malloc(1000);
    __asm__ volatile("mov %0, %%r15\n\t"
                     "xor %0, %0"
                     : "+r"(p)
                     :
                     : "r15", "memory");
    signal_ready();
    __asm__ volatile("1: pause\n\t"
                     "jmp 1b" ::: "memory");
#else
    keep = malloc(1000);
    signal_ready();
    for (;;) KEEP();
#endif
    return NULL;
}

static NOINLINE void *leaked(size_t n) {
    void *p = malloc(n);
    if (p) memset(p, 0x5a, n);
    KEEP();
    return p;
}

int main(int argc, char **argv) {
    const char *m = argc > 1 ? argv[1] : "global";
    pthread_t t;
    if (!strcmp(m, "global")) {
        keep = malloc(1000);
    } else if (!strcmp(m, "tls")) {
        tls_keep = malloc(1000);
    } else if (!strcmp(m, "thread") || !strcmp(m, "register")) {
        if (pthread_create(&t, NULL, !strcmp(m, "thread") ? hold_on_stack : hold_in_register, NULL) != 0)
            return 1;
        wait_ready();
    } else if (!strcmp(m, "interior")) {
        keep = (char *)malloc(1000) + 24;
    } else if (!strcmp(m, "mmap")) {
        void **area = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED) return 1;
        area[100] = malloc(1000);
    } else if (!strcmp(m, "freed")) {
        void **holder = malloc(64);
        if (!holder) return 1;
        holder[3] = leaked(700);
        free(holder);
    } else if (!strcmp(m, "recent")) {
        keep = leaked(700);
        keep = NULL;
    } else if (!strcmp(m, "realloc")) {
        void *p = leaked(700);
        keep = realloc(p, 3000);
        keep = NULL;
    } else if (!strcmp(m, "memalign")) {
        keep = memalign(64, 700);
        keep = NULL;
    } else if (!strcmp(m, "child")) {
        void **parent = leaked(700);
        if (parent) parent[5] = leaked(700);
        keep = NULL;
    }
    clobber_stack();
    return 0;
}
