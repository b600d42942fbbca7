/*
 * san_canary: a deliberate heap overflow through liballoc, which the
 * sanitizer build must catch. `make c-tests-san` runs it first and expects
 * AddressSanitizer to stop it with a heap-buffer-overflow report, so a
 * sanitizer run that silently checks nothing cannot pass.
 *
 * The block comes from la_c_allocator (malloc underneath), whose blocks
 * AddressSanitizer tracks even though the library itself is not
 * instrumented.
 */
#include <stdio.h>

#include "liballoc.h"

int main(int argc, char **argv) {
    (void)argv;
    la_allocator a = la_c_allocator();
    volatile char *p = la_alloc(a, 1, 24, 1);
    if (p == NULL) return 2;
    p[24 + (argc - 1)] = 1; /* one past the end */
    la_free(a, (void *)p, 1, 24, 1);
    printf("san_canary: the overflow went unnoticed\n");
    return 0;
}
