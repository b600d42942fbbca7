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

/** Allocates one object (Zig's Allocator.create).
 *  Parameters: `a` the allocator; `size` the object's size in bytes; `align`
 *  its alignment in bytes (a power of two).
 *  Returns: the object; a dangling, aligned pointer when `size` is 0 (nothing
 *  reaches the allocator); NULL when out of memory or `align` is not a power
 *  of two. Free with la_destroy(a, p, size, align).
 *  NULL: an allocator with a NULL vtable gives NULL (except for size 0).
 *  Thread safety: that of `a`. */
void *la_create(la_allocator a, size_t size, size_t align);

/** Frees an object from la_create (Zig's Allocator.destroy).
 *  Parameters: `a` the allocator it came from; `ptr` the object; `size` and
 *  `align` as given to la_create.
 *  NULL: a NULL `ptr` does nothing, as do `size` 0 and a bad `align`.
 *  Thread safety: that of `a`. */
void la_destroy(la_allocator a, void *ptr, size_t size, size_t align);

/** Allocates an array (Zig's Allocator.alloc / alignedAlloc).
 *  Parameters: `a` the allocator; `n` elements of `elem_size` bytes each;
 *  `align` the alignment in bytes (a power of two).
 *  Returns: the array; a dangling, aligned pointer when it has 0 bytes; NULL
 *  when out of memory, when `elem_size * n` overflows or `align` is not a
 *  power of two. Free with la_free(a, p, elem_size, n, align).
 *  NULL: an allocator with a NULL vtable gives NULL (except for 0 bytes).
 *  Thread safety: that of `a`. */
void *la_alloc(la_allocator a, size_t elem_size, size_t n, size_t align);

/** Allocates `n + 1` elements and sets element `n` to the `elem_size` bytes
 *  at `sentinel` (a terminator, as in Zig's allocSentinel).
 *  Parameters: as la_alloc, plus `sentinel` the terminator element.
 *  Returns: the array, or NULL as for la_alloc (also when `n + 1` overflows).
 *  Free with la_free(a, p, elem_size, n + 1, align).
 *  NULL: a NULL `sentinel` gives NULL.
 *  Thread safety: that of `a`. */
void *la_alloc_sentinel(la_allocator a, size_t elem_size, size_t n, size_t align,
                        const void *sentinel);

/** Resizes an array of `n` elements to `new_n` in place (Zig's
 *  Allocator.resize).
 *  Parameters: `a` the allocator; `mem` the array; `elem_size`, `n` and
 *  `align` as last granted; `new_n` the wanted element count.
 *  Returns: true when `mem` now holds `new_n` elements at the same address;
 *  `new_n == 0` frees the array and returns true; false when the allocator
 *  cannot (the array is unchanged), when `n` is 0, on overflow or a bad
 *  `align` (which frees nothing).
 *  NULL: a NULL `mem` gives false (or, with `new_n == 0`, true and nothing).
 *  Thread safety: that of `a`. */
bool la_resize(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Resizes an array of `n` elements to `new_n`, allowing it to move with no
 *  copy by the caller (Zig's Allocator.remap).
 *  Parameters: as la_resize.
 *  Returns: the array's address afterwards; for `new_n == 0` the array is
 *  freed and a dangling pointer returned; zero-size elements: `mem`; NULL
 *  when the allocator cannot do better than allocate+copy+free (the array is
 *  unchanged and still the caller's), when `n` is 0, on overflow or a bad
 *  `align`.
 *  NULL: a NULL `mem` gives NULL.
 *  Thread safety: that of `a`. */
void *la_remap(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Changes an array of `n` elements to `new_n` (Zig's Allocator.realloc):
 *  tries la_remap, else allocates, copies min(n, new_n) elements and frees
 *  the old array.
 *  Parameters: as la_resize. `n == 0` allocates afresh (`mem` is ignored);
 *  `new_n == 0` frees and returns a dangling pointer.
 *  Returns: the new array, or NULL when out of memory, on overflow or a bad
 *  `align` -- then the old array is untouched and still owned by the caller.
 *  NULL: a NULL `mem` allocates afresh.
 *  Thread safety: that of `a`. */
void *la_realloc(la_allocator a, void *mem, size_t elem_size, size_t n, size_t new_n, size_t align);

/** Frees an array from la_alloc / la_realloc / ... (Zig's Allocator.free).
 *  Parameters: `a` the allocator it came from; `mem` the array;
 *  `elem_size`, `n` and `align` as last granted.
 *  NULL: a NULL `mem` does nothing, as do zero bytes, overflow and a bad
 *  `align`.
 *  Thread safety: that of `a`. */
void la_free(la_allocator a, void *mem, size_t elem_size, size_t n, size_t align);

/** Copies `len` bytes into a new byte array, alignment 1 (Zig's
 *  Allocator.dupe).
 *  Parameters: `a` the allocator; `src` the bytes; `len` their count.
 *  Returns: the copy; a dangling pointer when `len` is 0; NULL when out of
 *  memory. Free with la_free(a, p, 1, len, 1).
 *  NULL: a NULL `src` with `len` > 0 gives NULL.
 *  Thread safety: that of `a`. */
void *la_dupe(la_allocator a, const void *src, size_t len);

/** Copies `len` bytes and appends a NUL byte (Zig's Allocator.dupeZ).
 *  Parameters: `a` the allocator; `src` the bytes (NULs inside are copied
 *  as they are); `len` their count.
 *  Returns: the NUL-terminated copy, or NULL when out of memory or `len + 1`
 *  overflows. Free with la_free(a, s, 1, len + 1, 1).
 *  NULL: a NULL `src` with `len` > 0 gives NULL.
 *  Thread safety: that of `a`. */
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
