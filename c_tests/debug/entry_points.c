/* Seeded leaks, one from each allocation entry point of the shim, each
 * called from its own function: every leak's trace must start at that
 * function (frame #0 is the user's call, never the library's). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void *keep[16];
static int nkeep;

static NOINLINE void via_malloc(void) {
    keep[nkeep++] = malloc(11);
    KEEP();
}
static NOINLINE void via_calloc(void) {
    keep[nkeep++] = calloc(3, 7);
    KEEP();
}
static NOINLINE void via_realloc_null(void) {
    keep[nkeep++] = realloc(NULL, 23);
    KEEP();
}
static NOINLINE void via_realloc_grow(void) {
    char *p = malloc(8);
    if (p) memset(p, 1, 8);
    KEEP();
    keep[nkeep++] = realloc(p, 4000);
    KEEP();
}
static NOINLINE void via_memalign(void) {
    keep[nkeep++] = memalign(64, 29);
    KEEP();
}
static NOINLINE void via_aligned_alloc(void) {
    keep[nkeep++] = aligned_alloc(128, 256);
    KEEP();
}
static NOINLINE void via_posix_memalign(void) {
    void *p = NULL;
    if (posix_memalign(&p, 32, 37) == 0) keep[nkeep++] = p;
    KEEP();
}
static NOINLINE void via_valloc(void) {
    keep[nkeep++] = valloc(41);
    KEEP();
}

int main(void) {
    via_malloc();
    via_calloc();
    via_realloc_null();
    via_realloc_grow();
    via_memalign();
    via_aligned_alloc();
    via_posix_memalign();
    via_valloc();
    /* Unreachable from here on: reported as leaks. */
    memset(keep, 0, sizeof keep);
    clobber_stack();
    return 0;
}
