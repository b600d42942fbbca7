/*
 * logging.c: see every allocation a piece of code makes.
 *
 * The logging wrapper forwards to its child and writes one line per call
 * to a file descriptor (here stdout), without allocating. A minimum
 * length filters out the small stuff.
 */
#include <stdio.h>
#include <unistd.h>

#include "liballoc.h"

int main(void) {
    fflush(stdout);
    la_logging *lg = la_logging_create(la_c_allocator(), STDOUT_FILENO, 0);
    if (lg == NULL) return 1;
    la_allocator a = la_logging_allocator(lg);

    int *xs = LA_ALLOC(a, int, 10);                         /* alloc  */
    xs = la_realloc(a, xs, sizeof(int), 10, 1000, _Alignof(int)); /* remap (or alloc+free) */
    la_resize(a, xs, sizeof(int), 1000, 500, _Alignof(int)); /* resize */
    LA_FREE(a, xs, 500);                                     /* free   */
    la_logging_destroy(lg);

    /* Only calls of 1 KiB or more. */
    lg = la_logging_create(la_c_allocator(), STDOUT_FILENO, 1024);
    a = la_logging_allocator(lg);
    void *small = la_alloc(a, 1, 100, 1);  /* not logged */
    void *large = la_alloc(a, 1, 4096, 1); /* logged */
    la_free(a, small, 1, 100, 1);
    la_free(a, large, 1, 4096, 1);
    la_logging_destroy(lg);
    return 0;
}
