/*
 * preload_introspect.c: glibc's introspection calls behave as glibc's do.
 *
 *   cancel    a thread with a pending (deferred) cancellation request calls
 *             malloc_stats(): the statistics must be printed and the call
 *             return (glibc's malloc_stats is no cancellation point); the
 *             next cancellation point then cancels the thread.
 *   mallinfo  after malloc(1 GiB), mallinfo2() counts one more huge
 *             (directly mapped) block in hblks and its bytes in hblkhd, and
 *             so does mallinfo() (int fields); after free both drop back.
 *
 * Plain malloc code: run_tests.sh runs it on glibc and under the shim. Not
 * named test_*.c: it is run under LD_PRELOAD by its script.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

static volatile int stats_returned;

static void *cancelled_thread(void *arg) {
    (void)arg;
    /* Deferred cancellation (the default): the request stays pending until
     * a cancellation point. */
    pthread_cancel(pthread_self());
    malloc_stats();
    stats_returned = 1;
    for (;;) pthread_testcancel();
    return NULL;
}

static void test_cancel(void) {
    char path[] = "/tmp/la_introspect.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    pthread_t t;
    void *ret = NULL;
    int rc = pthread_create(&t, NULL, cancelled_thread, NULL);
    if (rc == 0) pthread_join(t, &ret);
    dup2(saved, 2);
    close(saved);
    CHECK(rc == 0);
    CHECK(stats_returned == 1);
    CHECK(ret == PTHREAD_CANCELED);
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    CHECK(n > 0);
    buf[n > 0 ? n : 0] = 0;
    for (char *c = buf; *c; c++)
        if (*c == '\n') *c = ' ';
    printf("  malloc_stats printed %zd bytes before the thread was cancelled: %.40s...\n", n,
           buf);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static struct mallinfo old_mallinfo(void) { return mallinfo(); }
#pragma GCC diagnostic pop

static void test_mallinfo(void) {
    const size_t len = (size_t)1 << 30;
    struct mallinfo2 before = mallinfo2();
    struct mallinfo before1 = old_mallinfo();
    char *p = malloc(len);
    CHECK(p != NULL);
    if (!p) return;
    p[0] = 1;
    p[len - 1] = 2;
    struct mallinfo2 m = mallinfo2();
    struct mallinfo m1 = old_mallinfo();
    printf("  malloc(1 GiB): hblks %zu -> %zu, hblkhd %zu -> %zu; mallinfo hblkhd %d -> %d\n",
           before.hblks, m.hblks, before.hblkhd, m.hblkhd, before1.hblkhd, m1.hblkhd);
    CHECK(m.hblks == before.hblks + 1);
    CHECK(m.hblkhd >= before.hblkhd + len);
    CHECK(m.hblkhd < before.hblkhd + len + ((size_t)64 << 20));
    CHECK(m1.hblks == before1.hblks + 1);
    CHECK((long long)m1.hblkhd >= (long long)before1.hblkhd + (long long)len);
    free(p);
    struct mallinfo2 after = mallinfo2();
    CHECK(after.hblks == before.hblks);
    CHECK(after.hblkhd == before.hblkhd);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s cancel|mallinfo\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "cancel") == 0)
        test_cancel();
    else if (strcmp(argv[1], "mallinfo") == 0)
        test_mallinfo();
    else {
        fprintf(stderr, "unknown test %s\n", argv[1]);
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "preload_introspect %s", argv[1]);
    return check_summary(name);
}
