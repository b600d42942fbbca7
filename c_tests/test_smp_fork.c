/*
 * test_smp_fork: fork() 20 times while 4 other threads allocate and free
 * through la_smp_allocator; each child must allocate (small, medium, large
 * and huge blocks), pass la_smp_check_heap() and exit cleanly within 10 s
 * (a lock left held by fork would hang it: alarm() turns that into a
 * failure).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "liballoc.h"

#define WORKERS 4
static la_allocator A;
static atomic_int stop;

static void *worker(void *arg) {
    uint64_t r = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    void *slot[64] = {0};
    size_t len[64] = {0};
    while (!atomic_load(&stop)) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        unsigned i = (unsigned)(r % 64);
        if (slot[i]) la_free(A, slot[i], 1, len[i], 16);
        len[i] = 8 + (r >> 8) % ((r & 1) ? 300000 : 2000);
        slot[i] = la_alloc(A, 1, len[i], 16);
        if (slot[i]) memset(slot[i], 1, len[i] < 64 ? len[i] : 64);
    }
    for (unsigned i = 0; i < 64; i++)
        if (slot[i]) la_free(A, slot[i], 1, len[i], 16);
    return NULL;
}

static int child(void) {
    alarm(10);
    size_t sizes[] = {8, 100, 1000, 9000, 100000, 300000, 3u << 20};
    void *p[7];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 7; i++) {
            p[i] = la_alloc(A, 1, sizes[i], 16);
            if (!p[i]) return 2;
            memset(p[i], i, sizes[i]);
        }
        for (int i = 0; i < 7; i++) la_free(A, p[i], 1, sizes[i], 16);
    }
    return la_smp_check_heap() == 0 ? 0 : 3;
}

int main(void) {
    A = la_smp_allocator();
    pthread_t t[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int k = 0; k < 20; k++) {
        usleep(5000);
        pid_t pid = fork();
        if (pid == 0) _exit(child());
        CHECK(pid > 0);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
    CHECK_EQ_SZ(la_smp_check_heap(), 0);
    return check_summary("test_smp_fork");
}
