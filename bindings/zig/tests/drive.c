/*
 * drive.c: C code that only knows la_allocator, handed a Zig allocator
 * through liballoc.fromZig (the reverse direction of the binding).
 * Returns 0 when every step worked, else the number of the failing step.
 */
#include <stddef.h>
#include <string.h>

#include "liballoc.h"

int drive_allocator(la_allocator a) {
    /* typed helpers on top of the vtable */
    int *xs = LA_ALLOC(a, int, 100);
    if (xs == NULL) return 1;
    for (int i = 0; i < 100; i++) xs[i] = i * i;
    int *ys = la_realloc(a, xs, sizeof(int), 100, 10000, _Alignof(int));
    if (ys == NULL) return 2;
    for (int i = 0; i < 100; i++)
        if (ys[i] != i * i) return 3;
    char *s = la_dupez(a, "hello from C", 12);
    if (s == NULL || strcmp(s, "hello from C") != 0) return 4;
    /* an over-aligned block */
    void *big = la_alloc(a, 1, 3000, 4096);
    if (big == NULL || ((uintptr_t)big & 4095) != 0) return 5;
    memset(big, 0x5a, 3000);
    /* the defensive ABI: impossible requests fail, never crash */
    if (la_raw_alloc(a, 0, 0, 0) != NULL) return 6;
    if (la_raw_alloc(a, 8, 64, 0) != NULL) return 7;
    if (la_raw_resize(a, NULL, 8, 0, 16, 0)) return 8;
    la_free(a, big, 1, 3000, 4096);
    la_free(a, s, 1, 13, 1);
    la_free(a, ys, sizeof(int), 10000, _Alignof(int));
    return 0;
}

/* Layouts of the caller-storage structs as C sees them, so the Zig test
 * can check the hand-written declarations in liballoc.zig against the
 * header. */
size_t drive_sizeof(int which) {
    switch (which) {
    case 0: return sizeof(la_allocator);
    case 1: return sizeof(la_vtable);
    case 2: return sizeof(la_fixed_buffer);
    case 3: return sizeof(la_buffer_first);
    case 4: return sizeof(la_arena_reset_mode);
    case 5: return offsetof(la_buffer_first, fallback);
    case 6: return offsetof(la_fixed_buffer, end_index);
    default: return 0;
    }
}
