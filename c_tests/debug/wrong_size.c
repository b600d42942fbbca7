/* Seeded bug, through the API: an array of 10 ints freed as 9, on an
 * la_debug allocator with the default configuration (abort with report). */
#include "liballoc.h"

#include "common.h"

static NOINLINE void release_short(la_allocator a, int *xs) {
    LA_FREE(a, xs, 9);
    KEEP();
}

int main(void) {
    la_debug *d = la_debug_create(la_c_allocator(), NULL);
    la_allocator a = la_debug_allocator(d);
    int *xs = LA_ALLOC(a, int, 10);
    release_short(a, xs);
    return la_debug_destroy(d) == LA_CHECK_OK ? 0 : 1;
}
