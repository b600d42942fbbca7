/*
 * thread_safe.c: share a single-threaded allocator between threads.
 *
 * A fixed buffer is not thread-safe on its own; behind la_thread_safe
 * every call takes a lock. The lock survives fork(): a child process can
 * keep using the allocator even if another thread held it at the fork.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "liballoc.h"

static la_allocator shared;

static void *worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < 1000; i++) {
        long *x = LA_CREATE(shared, long);
        if (x == NULL) return (void *)1;
        *x = id;
        LA_DESTROY(shared, x);
    }
    return NULL;
}

int main(void) {
    static unsigned char memory[1 << 16];
    la_fixed_buffer fb;
    la_fixed_buffer_init(&fb, memory, sizeof memory);

    la_thread_safe *ts = la_thread_safe_create(la_fixed_buffer_allocator(&fb));
    if (ts == NULL) return 1;
    shared = la_thread_safe_allocator(ts);

    pthread_t t[4];
    fflush(stdout);
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    pid_t pid = fork(); /* threads may be inside the allocator right now */
    if (pid == 0) {
        char *s = la_dupez(shared, "child", 5); /* the lock is usable here */
        printf("%s process allocated through the wrapper\n", s ? s : "(failed)");
        fflush(stdout);
        _exit(s == NULL);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("parent: 4 threads done, child exited %d\n", WEXITSTATUS(status));

    la_thread_safe_destroy(ts);
    return 0;
}
