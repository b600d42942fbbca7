//! The exported C allocation symbols of `liballoc_preload.so`, with their
//! POSIX / C17 / glibc 2.36 semantics:
//!
//! - `malloc(0)` returns a unique non-NULL block; every block is 16-byte
//!   aligned;
//! - every failure returns NULL with `errno = ENOMEM`: sizes above
//!   `PTRDIFF_MAX`, `calloc`/`reallocarray`/`pvalloc` overflow, exhausted
//!   memory, `LA_FAIL_AT`;
//! - `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and
//!   returns NULL, as glibc does (C17 leaves it implementation-defined);
//!   a failed `realloc` leaves the block untouched;
//! - `posix_memalign` returns EINVAL for an alignment that is not a power of
//!   two or is below `sizeof(void *)`, ENOMEM when out of memory, and
//!   leaves `*memptr` alone on failure (and `errno` untouched always);
//! - `aligned_alloc` with an alignment that is not a power of two returns
//!   NULL with EINVAL (C17 DR 460, glibc >= 2.38; glibc 2.36 rounded it up);
//!   `memalign` keeps glibc's rounding up to a power of two;
//! - `valloc` aligns to a page, `pvalloc` also rounds the size up to a page
//!   (0 gives one page) and fails on overflow;
//! - `free` (and `cfree`, `free_sized`, `free_aligned_sized`) preserves
//!   `errno`; a pointer that is not a live block aborts with a
//!   `liballoc: fatal:` message;
//! - `calloc` memory is zero even when recycled.
//!
//! The `__libc_*` names glibc exports for the same functions are aliases,
//! so that code calling them directly reaches the same allocator.

use core::ffi::{c_int, c_void};
use core::ptr;

use super::{MIN_ALIGN, MIN_ALIGN_LOG2};
use crate::sys::errno;

#[inline(always)]
fn malloc_impl(size: usize) -> *mut c_void {
    super::alloc(size, MIN_ALIGN_LOG2).cast()
}

#[inline(always)]
fn calloc_impl(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        errno::set(libc::ENOMEM);
        return ptr::null_mut();
    };
    super::alloc_zeroed(total).cast()
}

/// glibc `memalign`: an alignment that is not a power of two is rounded up
/// to one; one that cannot be is EINVAL.
fn memalign_impl(align: usize, size: usize) -> *mut c_void {
    if align <= MIN_ALIGN {
        return malloc_impl(size);
    }
    let Some(align) = align.checked_next_power_of_two() else {
        errno::set(libc::EINVAL);
        return ptr::null_mut();
    };
    super::alloc_aligned(size, align).cast()
}

fn valloc_impl(size: usize) -> *mut c_void {
    super::alloc_aligned(size, crate::sys::page_size()).cast()
}

fn pvalloc_impl(size: usize) -> *mut c_void {
    let page = crate::sys::page_size();
    match crate::alignment::forward(size.max(1), page) {
        Some(rounded) => super::alloc_aligned(rounded, page).cast(),
        None => {
            errno::set(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// # Safety
/// `p` is NULL or a live block.
unsafe fn reallocarray_impl(p: *mut c_void, n: usize, size: usize, func: &str) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: caller's promise (reallocarray is an unsafe fn).
        Some(total) => unsafe { super::realloc(p.cast(), total, func).cast() },
        None => {
            errno::set(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc(size)`.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// `__libc_malloc`, glibc's alias of `malloc`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// `free(p)`.
///
/// # Safety
/// `p` is NULL or a live block of this allocator (anything else aborts
/// with a report when detected).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::free(p.cast(), "free") }
}

/// `__libc_free`, glibc's alias of `free`.
///
/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::free(p.cast(), "free") }
}

/// `cfree(p)`, the obsolete alias of `free`.
///
/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::free(p.cast(), "cfree") }
}

/// C23 `free_sized(p, size)`: the size is a hint and is not needed.
///
/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::free(p.cast(), "free_sized") }
}

/// C23 `free_aligned_sized(p, alignment, size)`.
///
/// # Safety
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _alignment: usize, _size: usize) {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::free(p.cast(), "free_aligned_sized") }
}

/// `calloc(n, size)`.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    calloc_impl(n, size)
}

/// `__libc_calloc`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    calloc_impl(n, size)
}

/// `realloc(p, size)`.
///
/// # Safety
/// `p` is NULL or a live block of this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::realloc(p.cast(), size, "realloc").cast() }
}

/// `__libc_realloc`.
///
/// # Safety
/// As for [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::realloc(p.cast(), size, "realloc").cast() }
}

/// `reallocarray(p, n, size)`: `realloc(p, n * size)` with overflow check.
///
/// # Safety
/// As for [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: caller's promise.
    unsafe { reallocarray_impl(p, n, size, "reallocarray") }
}

/// `__libc_reallocarray`.
///
/// # Safety
/// As for [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: caller's promise.
    unsafe { reallocarray_impl(p, n, size, "reallocarray") }
}

/// `posix_memalign(memptr, alignment, size)`.
///
/// # Safety
/// `memptr` is valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if !alignment.is_power_of_two() || alignment < core::mem::size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    // errno is left as it was (a failed allocation sets it): read once
    // through its address, written back only on failure.
    let errno_at = errno::location();
    // SAFETY: the calling thread's errno, valid while the thread lives.
    let saved = unsafe { *errno_at };
    let p = super::alloc_aligned(size, alignment);
    if p.is_null() {
        // SAFETY: as above.
        unsafe { *errno_at = saved };
        return libc::ENOMEM;
    }
    // SAFETY: caller's promise: memptr is writable.
    unsafe { *memptr = p.cast() };
    0
}

/// `aligned_alloc(alignment, size)`: NULL/EINVAL for a non-power-of-two
/// alignment.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    if !alignment.is_power_of_two() {
        errno::set(libc::EINVAL);
        return ptr::null_mut();
    }
    super::alloc_aligned(size, alignment).cast()
}

/// `memalign(alignment, size)` (glibc: rounds the alignment up to a power
/// of two).
#[unsafe(no_mangle)]
pub extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    memalign_impl(alignment, size)
}

/// `__libc_memalign`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_memalign(alignment: usize, size: usize) -> *mut c_void {
    memalign_impl(alignment, size)
}

/// `valloc(size)`: page-aligned.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    valloc_impl(size)
}

/// `__libc_valloc`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc_impl(size)
}

/// `pvalloc(size)`: page-aligned, size rounded up to a page.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// `__libc_pvalloc`.
#[unsafe(no_mangle)]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// `malloc_usable_size(p)`: 0 for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: caller's promise, checked by validate as far as it can.
    unsafe { super::usable_size(p.cast(), "malloc_usable_size") }
}
