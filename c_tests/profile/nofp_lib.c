/*
 * nofp_lib.c: a shared library built without frame pointers
 * (-fomit-frame-pointer -O2, see c_tests/profile/run_tests.sh) that calls
 * malloc, so that the heap profiler's traces must unwind through a frame
 * the frame-pointer walk cannot see to reach the caller in the program.
 */
#include <stdlib.h>
#include <string.h>

void **nofp_fill(size_t n, size_t size);

/* Allocates n blocks of size bytes, touching each; the array of them. */
void **nofp_fill(size_t n, size_t size) {
    void **v = calloc(n, sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(size);
        if (v[i]) memset(v[i], (int)i, 1);
    }
    return v;
}
