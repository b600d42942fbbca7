#ifndef LIBALLOC_HELPERS_H
#define LIBALLOC_HELPERS_H
/* ---- C helpers (src/c/helpers.c): typed allocation on top of the vtable ----
 *
 * Alignments here are in bytes (a power of two, as _Alignof gives them); an
 * alignment that is not a power of two (0 included) gives NULL / false and
 * frees nothing. A zero-byte request returns a non-NULL, suitably aligned
 * dangling pointer (the highest aligned address) that must not be
 * dereferenced; freeing zero bytes does nothing. `elem_size * n` overflow is
 * out of memory (NULL). Each helper passes its own caller's return address
 * down to the allocator. Thread safety: that of the allocator passed in.
 */
#ifdef __cplusplus
extern "C" {
#endif

/** Allocates one object of `size` bytes aligned to `align` bytes.
 *  Returns: the object, a dangling pointer when `size` is 0, or NULL when out
 *  of memory or `align` is not a power of two. Free with la_destroy. */
void *la_create(la_allocator a, size_t size, size_t align);

/** Frees an object from la_create with the same `size` and `align`.
 *  NULL `ptr`, `size` 0 or a bad `align` do nothing. */
void la_destroy(la_allocator a, void *ptr, size_t size, size_t align);

/** Allocates an array of `n` elements of `elem_size` bytes aligned to `align`.
 *  Returns: the array; a dangling pointer when it has 0 bytes; NULL when out
 *  of memory, when `elem_size * n` overflows or `align` is not a power of two.
 *  Free with la_free(a, p, elem_size, n, align). */
void *la_alloc(la_allocator a, size_t elem_size, size_t n, size_t align);

/** Like la_alloc for `n + 1` elements, with element `n` set to the
 *  `elem_size` bytes at `sentinel` (a terminator, as in Zig's allocSentinel).
 *  Returns NULL also when `sentinel` is NULL. Free with la_free(..., n + 1, ...). */
void *la_alloc_sentinel(la_allocator a, size_t elem_size, size_t n, size_t align,
                        const void *sentinel);

/** Resizes an array of `n` elements to `new_n` in place.
 *  Returns: true when `mem` now holds `new_n` elements at the same address;
 *  `new_n == 0` frees the array and returns true; false when the allocator
 *  cannot (the array is unchanged), when `n` is 0 or `mem` NULL, on overflow
 *  or a bad `align`. */
bool la_resize(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Resizes an array of `n` elements to `new_n`, allowing it to move (no copy
 *  needed by the caller).
 *  Returns: the array's address afterwards; for `new_n == 0` the array is
 *  freed and a dangling pointer returned; NULL when the allocator cannot do
 *  better than allocate+copy+free (the array is unchanged), when `n` is 0 or
 *  `mem` NULL, on overflow or a bad `align`. Zero-size elements: returns `mem`. */
void *la_remap(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Changes an array of `n` elements to `new_n`: tries la_remap, else
 *  allocates, copies min(n, new_n) elements and frees the old array.
 *  `n == 0` allocates afresh (`mem` is ignored); `new_n == 0` frees and
 *  returns a dangling pointer.
 *  Returns: the new array, or NULL when out of memory (or overflow, or a bad
 *  `align`) -- then the old array is untouched and still owned by the caller. */
void *la_realloc(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Frees an array of `n` elements from la_alloc/la_realloc/...
 *  NULL `mem`, zero bytes, overflow or a bad `align` do nothing. */
void la_free(la_allocator a, void *mem, size_t elem_size, size_t n, size_t align);

/** Copies `len` bytes from `src` into a new byte array (alignment 1).
 *  Returns: the copy, a dangling pointer when `len` is 0, NULL when out of
 *  memory or `src` is NULL with `len` > 0. Free with la_free(a, p, 1, len, 1). */
void *la_dupe(la_allocator a, const void *src, size_t len);

/** Copies `len` bytes from `src` and appends a NUL byte.
 *  Returns: the NUL-terminated copy, or NULL when out of memory or `src` is
 *  NULL with `len` > 0. Free with la_free(a, s, 1, len + 1, 1). */
char *la_dupez(la_allocator a, const char *src, size_t len);

#ifdef __cplusplus
} /* extern "C" */
#endif

/** Typed helpers: LA_CREATE(a, T) -> T *, LA_DESTROY(a, p),
 *  LA_ALLOC(a, T, n) -> T *, LA_FREE(a, p, n). */
#define LA_CREATE(a, T) ((T *)la_create((a), sizeof(T), _Alignof(T)))
#define LA_DESTROY(a, p) la_destroy((a), (p), sizeof *(p), _Alignof(__typeof__(*(p))))
#define LA_ALLOC(a, T, n) ((T *)la_alloc((a), sizeof(T), (n), _Alignof(T)))
#define LA_FREE(a, p, n) la_free((a), (p), sizeof *(p), (n), _Alignof(__typeof__(*(p))))

#endif /* LIBALLOC_HELPERS_H */
