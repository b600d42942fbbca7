/*
 * The C helpers: typed allocation on top of the vtable (Zig's
 * Allocator.create/destroy/alloc/allocSentinel/resize/remap/realloc/free/
 * dupe/dupeZ). They only ever reach an allocator through la_raw_*, so they
 * work with any la_allocator, including ones written in C.
 *
 * The rules live here rather than in each allocator: zero-byte requests get
 * a dangling, aligned, non-NULL pointer (the highest aligned address, as in
 * Zig) and never reach the vtable; elem_size * n overflow is out of memory;
 * new_n == 0 frees; realloc tries remap first and otherwise copies, leaving
 * the old block untouched when it fails. Every helper passes its own return
 * address down, so debugging allocators see the user's call site.
 */
#include "liballoc.h"

#include <string.h>

#define RET_ADDR() ((uintptr_t)__builtin_return_address(0))

/* log2 of a power-of-two byte alignment, or -1. */
static int log2_align(size_t align) {
    if (align == 0 || (align & (align - 1)) != 0) return -1;
    return __builtin_ctzll((unsigned long long)align);
}

/* The dangling pointer for a zero-byte block of the given alignment. */
static void *dangling(size_t align) { return (void *)(UINTPTR_MAX & ~(uintptr_t)(align - 1)); }

/* elem_size * n into *out; false on overflow. */
static bool mul_size(size_t elem_size, size_t n, size_t *out) {
    if (elem_size != 0 && n > SIZE_MAX / elem_size) return false;
    *out = elem_size * n;
    return true;
}

static void *alloc_bytes(la_allocator a, size_t bytes, size_t align, uintptr_t ret) {
    int l = log2_align(align);
    if (l < 0) return NULL;
    if (bytes == 0) return dangling(align);
    return la_raw_alloc(a, bytes, (la_alignment)l, ret);
}

static void free_bytes(la_allocator a, void *mem, size_t bytes, size_t align, uintptr_t ret) {
    int l = log2_align(align);
    if (l < 0 || bytes == 0 || mem == NULL) return;
    la_raw_free(a, mem, bytes, (la_alignment)l, ret);
}

void *la_create(la_allocator a, size_t size, size_t align) {
    return alloc_bytes(a, size, align, RET_ADDR());
}

void la_destroy(la_allocator a, void *ptr, size_t size, size_t align) {
    free_bytes(a, ptr, size, align, RET_ADDR());
}

void *la_alloc(la_allocator a, size_t elem_size, size_t n, size_t align) {
    size_t bytes;
    if (!mul_size(elem_size, n, &bytes)) return NULL;
    return alloc_bytes(a, bytes, align, RET_ADDR());
}

void *la_alloc_sentinel(la_allocator a, size_t elem_size, size_t n, size_t align,
                        const void *sentinel) {
    size_t bytes;
    if (sentinel == NULL || n == SIZE_MAX || !mul_size(elem_size, n + 1, &bytes)) return NULL;
    unsigned char *p = alloc_bytes(a, bytes, align, RET_ADDR());
    if (p != NULL && elem_size != 0) memcpy(p + elem_size * n, sentinel, elem_size);
    return p;
}

bool la_resize(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align) {
    uintptr_t ret = RET_ADDR();
    int l = log2_align(align);
    size_t old_bytes, new_bytes;
    if (l < 0 || !mul_size(elem_size, n, &old_bytes)) return false;
    if (new_n == 0) {
        free_bytes(a, mem, old_bytes, align, ret);
        return true;
    }
    if (old_bytes == 0 || mem == NULL) return false;
    if (!mul_size(elem_size, new_n, &new_bytes)) return false;
    return la_raw_resize(a, mem, old_bytes, (la_alignment)l, new_bytes, ret);
}

void *la_remap(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align) {
    uintptr_t ret = RET_ADDR();
    int l = log2_align(align);
    size_t old_bytes, new_bytes;
    if (l < 0 || !mul_size(elem_size, n, &old_bytes)) return NULL;
    if (new_n == 0) {
        free_bytes(a, mem, old_bytes, align, ret);
        return dangling(align);
    }
    if (n == 0 || mem == NULL) return NULL;
    if (elem_size == 0) return mem;
    if (!mul_size(elem_size, new_n, &new_bytes)) return NULL;
    return la_raw_remap(a, mem, old_bytes, (la_alignment)l, new_bytes, ret);
}

void *la_realloc(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align) {
    uintptr_t ret = RET_ADDR();
    int l = log2_align(align);
    size_t old_bytes, new_bytes;
    if (l < 0 || !mul_size(elem_size, n, &old_bytes)) return NULL;
    if (old_bytes == 0 || mem == NULL) {
        if (!mul_size(elem_size, new_n, &new_bytes)) return NULL;
        return alloc_bytes(a, new_bytes, align, ret);
    }
    if (new_n == 0) {
        free_bytes(a, mem, old_bytes, align, ret);
        return dangling(align);
    }
    if (!mul_size(elem_size, new_n, &new_bytes)) return NULL;
    void *moved = la_raw_remap(a, mem, old_bytes, (la_alignment)l, new_bytes, ret);
    if (moved != NULL) return moved;
    void *fresh = la_raw_alloc(a, new_bytes, (la_alignment)l, ret);
    if (fresh == NULL) return NULL;
    memcpy(fresh, mem, old_bytes < new_bytes ? old_bytes : new_bytes);
    la_raw_free(a, mem, old_bytes, (la_alignment)l, ret);
    return fresh;
}

void la_free(la_allocator a, void *mem, size_t elem_size, size_t n, size_t align) {
    size_t bytes;
    if (!mul_size(elem_size, n, &bytes)) return;
    free_bytes(a, mem, bytes, align, RET_ADDR());
}

void *la_dupe(la_allocator a, const void *src, size_t len) {
    if (src == NULL && len > 0) return NULL;
    void *p = alloc_bytes(a, len, 1, RET_ADDR());
    if (p != NULL && len > 0) memcpy(p, src, len);
    return p;
}

char *la_dupez(la_allocator a, const char *src, size_t len) {
    if ((src == NULL && len > 0) || len == SIZE_MAX) return NULL;
    char *p = alloc_bytes(a, len + 1, 1, RET_ADDR());
    if (p == NULL) return NULL;
    if (len > 0) memcpy(p, src, len);
    p[len] = '\0';
    return p;
}
