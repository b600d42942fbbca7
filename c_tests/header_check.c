/*
 * header_check: include/liballoc.h is self-contained and clean in every
 * language mode a user may pick. `make header-test` compiles this file as
 * C99, C11 and C17 with -Wall -Wextra -Wpedantic -Werror, and as C++11 and
 * C++17 (the same file, valid in both languages), then links and runs the
 * C++ build: a missing extern "C" guard would fail at the link.
 */
#include <liballoc.h>
#include <liballoc.h> /* the include guard holds */

#include <stdio.h>
#include <string.h>

int main(void) {
    la_allocator a = la_c_allocator();
    char *p = (char *)la_alloc(a, 1, 16, 1);
    if (p == NULL) return 1;
    memcpy(p, "header", 7);
    /* The version macros and the library agree. */
    char version[64];
    snprintf(version, sizeof version, "%d.%d.%d", LA_VERSION_MAJOR, LA_VERSION_MINOR,
             LA_VERSION_PATCH);
    int ok = strcmp(p, "header") == 0 && strcmp(la_version(), version) == 0 &&
             strcmp(la_version(), LA_VERSION_STRING) == 0;
    if (!ok) fprintf(stderr, "header_check: la_version() %s, macros %s\n", la_version(), version);
    la_free(a, p, 1, 16, 1);
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
    /* The typed macros need C11's _Alignof. */
    double *d = LA_CREATE(a, double);
    if (d == NULL) return 1;
    LA_DESTROY(a, d);
    long *v = LA_ALLOC(a, long, 8);
    if (v == NULL) return 1;
    LA_FREE(a, v, 8);
#endif
    printf("header_check: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
