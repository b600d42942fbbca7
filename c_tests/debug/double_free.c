/* Seeded bug: make_buffer's block is freed by first_release and again by
 * second_release. */
#include <stdlib.h>

#include "common.h"

static volatile int sink;
static NOINLINE char *make_buffer(void) {
    char *p = malloc(48);
    KEEP();
    return p;
}
static NOINLINE void first_release(char *p) {
    free(p);
    sink = 1;
}
static NOINLINE void second_release(char *p) {
    free(p);
    sink = 2;
}

int main(void) {
    char *p = make_buffer();
    first_release(p);
    second_release(p);
    return 0;
}
