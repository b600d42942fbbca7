/* Not a bug: another thread frees memory from inside its dl_iterate_phdr
 * callback while the main thread exits and the leak check scans the
 * loaded modules. The check must not wait for that thread while holding
 * what the thread waits for (the program would hang). No leaks: the one
 * block left is reachable from a global. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common.h"

static void *volatile keep;
static volatile int started;

static int churn_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info;
    (void)size;
    (void)data;
    /* Hold the loader's lock a while, so the main thread's exit-time check
     * is under way when this thread frees. */
    started = 1;
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 50; i++) free(malloc(32));
    return 0;
}

static void *iterate(void *arg) {
    (void)arg;
    for (;;) dl_iterate_phdr(churn_cb, NULL);
    return NULL;
}

int main(void) {
    keep = malloc(48);
    pthread_t t;
    if (pthread_create(&t, NULL, iterate, NULL) != 0) return 1;
    while (!started) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}
