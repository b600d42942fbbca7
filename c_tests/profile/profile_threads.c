/*
 * profile_threads.c: the heap profiler under threads and fork (see
 * c_tests/profile/run_tests.sh).
 *
 * 4 rounds of 8 short-lived threads each keep 2 MiB in 4 KiB blocks
 * (thread_site, 64 MiB live in all, allocated by threads that have exited
 * by the time of the dump); then the process forks, and the child
 * allocates 4 MiB in 8 KiB blocks (child_site) and exits normally, writing
 * its own profile. The parent waits for it and exits 0 if it exited 0.
 * After the fork both allocate the same sequence of blocks (twin_site: 512
 * blocks of 6001 + 8 i bytes, then freed): the sizes each one's
 * profile sampled tell whether the child drew its own samples or repeated
 * the parent's.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 4
#define PER_THREAD 512 /* blocks of 4 KiB: 2 MiB */

static void *blocks[ROUNDS * THREADS][PER_THREAD];

__attribute__((noinline)) static void thread_site(void **out) {
    for (int i = 0; i < PER_THREAD; i++) {
        out[i] = malloc(4096);
        memset(out[i], 1, 16);
    }
}

static void *worker(void *arg) {
    thread_site(arg);
    return NULL;
}

__attribute__((noinline)) static void child_site(void) {
    for (int i = 0; i < 512; i++) {
        void *p = malloc(8192);
        memset(p, 2, 16);
    }
}

static void *twins[512];

__attribute__((noinline)) static void twin_site(void) {
    for (int i = 0; i < 512; i++) {
        twins[i] = malloc(6001 + 8 * (size_t)i);
        memset(twins[i], 3, 16);
    }
    for (int i = 0; i < 512; i++) free(twins[i]);
}

int main(void) {
    for (int r = 0; r < ROUNDS; r++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            if (pthread_create(&t[i], NULL, worker, blocks[r * THREADS + i]) != 0) return 3;
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 4;
    if (pid == 0) {
        twin_site();
        child_site();
        exit(0);
    }
    twin_site();
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 5;
    printf("child %d\n", (int)pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 6;
}
