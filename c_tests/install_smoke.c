/*
 * install_smoke: the program the install test builds against an installed
 * liballoc, using nothing but `pkg-config --cflags --libs liballoc`. It
 * touches each kind of export (an allocator constructor, raw vtable calls,
 * the C helpers, la_version) and prints one line the test compares.
 */
#include <liballoc.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    la_allocator a = la_page_allocator();
    char *s = la_dupez(a, "installed", 9);
    int *v = LA_ALLOC(a, int, 1000);
    void *raw = la_raw_alloc(la_c_allocator(), 64, 4, 0);
    if (s == NULL || v == NULL || raw == NULL || strcmp(s, "installed") != 0) {
        fprintf(stderr, "install_smoke: allocation failed\n");
        return 1;
    }
    v[999] = 7;
    la_raw_free(la_c_allocator(), raw, 64, 4, 0);
    LA_FREE(a, v, 1000);
    printf("liballoc %s %s (header %s)\n", la_version(), s, LA_VERSION_STRING);
    la_free(a, s, 1, 10, 1);
    return strcmp(la_version(), LA_VERSION_STRING) == 0 ? 0 : 1;
}
