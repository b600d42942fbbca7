/*
 * buffer_first.c: a stack buffer first, the heap only when it runs out.
 *
 * Typical use: a function that usually needs a little scratch memory but
 * must cope with large inputs. Small requests are served from a local
 * array (no heap traffic at all); larger ones go to the fallback.
 */
#include <stdio.h>
#include <string.h>

#include "liballoc.h"

/* Joins `n` words with spaces, using `a` for the temporary string. */
static void shout(la_allocator a, const char *const *words, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(words[i]) + 1;
    char *s = la_alloc(a, 1, len, 1);
    if (s == NULL) return;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strcat(s, words[i]);
        if (i + 1 < n) strcat(s, " ");
    }
    printf("%s (%zu bytes)\n", s, len);
    la_free(a, s, 1, len, 1);
}

int main(void) {
    unsigned char stack[64]; /* the buffer tried first */
    la_buffer_first bf;
    la_buffer_first_init(&bf, stack, sizeof stack, la_smp_allocator());
    la_allocator a = la_buffer_first_allocator(&bf);

    const char *few[] = {"small", "input"};
    shout(a, few, 2); /* fits in `stack` */

    const char *many[] = {"a", "much", "longer", "input", "that", "does", "not", "fit", "in",
                          "sixty", "four", "bytes", "of", "stack", "space"};
    shout(a, many, 15); /* goes to the smp allocator */

    /* Ownership decides where a free goes; you never need to know. */
    void *p = la_alloc(a, 1, 16, 1);
    printf("16 bytes from the buffer? %s\n", la_buffer_first_owns(&bf, p) ? "yes" : "no");
    la_free(a, p, 1, 16, 1);
    return 0;
}
