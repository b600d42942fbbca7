//! The C allocator: blocks come from the C library's `malloc` family
//! (Zig's `std.heap.c_allocator`).
//!
//! `alloc` uses `malloc` when the alignment is at most that of `max_align_t`
//! (16 bytes on x86-64 and aarch64), rounding tiny lengths up to it so the
//! guarantee holds, and `posix_memalign` above it. `resize` shrinks always and
//! grows when `malloc_usable_size` says the block already has room. `remap`
//! resizes in place when it can, else uses `realloc` for malloc-aligned blocks
//! (which may move without the caller copying). `free` is `free`. Stateless;
//! as thread-safe as the C library (glibc's is).

use core::ffi::c_void;
use core::ptr;

use crate::alignment;
use crate::vtable::{RawAllocator, la_allocator, la_vtable, vtable_of};

/// The C allocator's (empty) state.
pub struct CAllocator;

/// Alignment `malloc` guarantees for any request of at least this many bytes.
const MAX_ALIGN: usize = core::mem::align_of::<libc::max_align_t>();

static INSTANCE: CAllocator = CAllocator;
static VTABLE: la_vtable = vtable_of::<CAllocator>();

#[inline]
fn malloc_aligned_enough(alignment: u8) -> bool {
    alignment::to_bytes(alignment).is_some_and(|a| a <= MAX_ALIGN)
}

// SAFETY: malloc returns MAX_ALIGN-aligned blocks for requests of at least
// MAX_ALIGN bytes, posix_memalign honours larger alignments; resize reports
// success only when the usable size covers the new length.
unsafe impl RawAllocator for CAllocator {
    unsafe fn from_ctx<'a>(_ctx: *mut c_void) -> Option<&'a Self> {
        Some(&INSTANCE)
    }

    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        debug_assert!(len > 0);
        // Above PTRDIFF_MAX no C object can exist; refuse before asking libc.
        if len > isize::MAX as usize {
            return ptr::null_mut();
        }
        if malloc_aligned_enough(alignment) {
            // SAFETY: plain malloc of a positive length.
            return unsafe { libc::malloc(len.max(MAX_ALIGN)) }.cast();
        }
        let Some(align) = alignment::to_bytes(alignment) else {
            return ptr::null_mut();
        };
        // The block plus its alignment padding must stay below PTRDIFF_MAX
        // (some malloc implementations mis-handle sizes near it).
        if len
            .checked_add(align)
            .is_none_or(|total| total > isize::MAX as usize)
        {
            return ptr::null_mut();
        }
        let mut out: *mut c_void = ptr::null_mut();
        // SAFETY: align is a power of two and a multiple of sizeof(void *)
        // (it exceeds MAX_ALIGN); `out` is a valid place to write.
        if unsafe { libc::posix_memalign(&mut out, align, len) } != 0 {
            return ptr::null_mut();
        }
        out.cast()
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        _alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> bool {
        if new_len <= len {
            return true;
        }
        // SAFETY: `memory` is a live malloc block (vtable promise).
        new_len <= unsafe { libc::malloc_usable_size(memory.cast()) }
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        // SAFETY: forwarded vtable promise.
        if unsafe { self.resize(memory, len, alignment, new_len, ret_addr) } {
            return memory;
        }
        if !malloc_aligned_enough(alignment) || new_len > isize::MAX as usize {
            return ptr::null_mut();
        }
        // SAFETY: `memory` is a live malloc block; on failure realloc leaves
        // it untouched and we report NULL (nothing changed).
        unsafe { libc::realloc(memory.cast(), new_len.max(MAX_ALIGN)) }.cast()
    }

    unsafe fn free(&self, memory: *mut u8, _len: usize, _alignment: u8, _ret_addr: usize) {
        // SAFETY: `memory` is a live malloc block (vtable promise).
        unsafe { libc::free(memory.cast()) }
    }
}

/// The C allocator: blocks from the C library's `malloc`, `posix_memalign`
/// and `realloc`; `resize` grows in place when `malloc_usable_size` allows.
///
/// Parameters: none.
///
/// Returns: the allocator (stateless; the value may be copied freely); its
/// vtable is never NULL. Blocks are NULL when malloc fails.
///
/// Thread safety: as thread-safe as the C library's malloc (glibc's is).
#[unsafe(no_mangle)]
pub extern "C" fn la_c_allocator() -> la_allocator {
    la_allocator {
        ptr: ptr::null_mut(),
        vtable: &VTABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

    #[test]
    fn small_blocks_are_max_aligned() {
        let a = la_c_allocator();
        // SAFETY: allocate/free pairs.
        unsafe {
            for len in 1..40 {
                let p = la_raw_alloc(a, len, 4, 0);
                assert_eq!(p as usize % 16, 0);
                la_raw_free(a, p, len, 4, 0);
            }
        }
    }

    #[test]
    fn over_aligned_and_remap() {
        let a = la_c_allocator();
        // SAFETY: blocks used within their lengths and freed once.
        unsafe {
            let p = la_raw_alloc(a, 10, 12, 0) as *mut u8;
            assert_eq!(p as usize % 4096, 0);
            assert!(la_raw_resize(a, p.cast(), 10, 12, 5, 0));
            la_raw_free(a, p.cast(), 5, 12, 0);

            let q = la_raw_alloc(a, 64, 3, 0) as *mut u8;
            q.write_bytes(7, 64);
            let r = la_raw_remap(a, q.cast(), 64, 3, 100_000, 0) as *mut u8;
            assert!(!r.is_null());
            assert_eq!(*r.add(63), 7);
            la_raw_free(a, r.cast(), 100_000, 3, 0);
        }
    }

    #[test]
    fn resize_grows_exactly_within_the_usable_size() {
        let a = la_c_allocator();
        // SAFETY: the block is used within its granted length and freed once
        // with the length last granted.
        unsafe {
            let p = la_raw_alloc(a, 1, 0, 0) as *mut u8;
            assert!(!p.is_null());
            let usable = libc::malloc_usable_size(p.cast());
            assert!(usable >= MAX_ALIGN);
            // Shrinking always works; growing works up to the usable size
            // and not one byte further.
            assert!(la_raw_resize(a, p.cast(), 1, 0, 1, 0));
            assert!(la_raw_resize(a, p.cast(), 1, 0, usable, 0));
            p.write_bytes(0x3c, usable);
            assert!(!la_raw_resize(a, p.cast(), usable, 0, usable + 1, 0));
            // remap prefers the in-place answer, and keeps the address.
            assert_eq!(la_raw_remap(a, p.cast(), usable, 0, 2, 0), p.cast());
            assert!(la_raw_resize(a, p.cast(), 2, 0, usable, 0));
            assert_eq!(*p.add(usable - 1), 0x3c);
            la_raw_free(a, p.cast(), usable, 0, 0);

            // Over-aligned blocks: resize in place works the same way, but
            // remap never falls back to realloc (which could lose the
            // alignment), as in Zig.
            let q = la_raw_alloc(a, 64, 12, 0) as *mut u8;
            assert!(!q.is_null() && (q as usize).is_multiple_of(4096));
            let usable = libc::malloc_usable_size(q.cast());
            assert!(la_raw_resize(a, q.cast(), 64, 12, usable, 0));
            assert!(la_raw_remap(a, q.cast(), usable, 12, usable + 1, 0).is_null());
            la_raw_free(a, q.cast(), usable, 12, 0);
        }
    }

    #[test]
    fn refuses_impossible_sizes() {
        let a = la_c_allocator();
        // SAFETY: requests that must fail cleanly.
        unsafe {
            assert!(la_raw_alloc(a, usize::MAX, 0, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX / 2 + 1, 4, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX - 4096, 13, 0).is_null());
            // Alignments no object can have below PTRDIFF_MAX.
            assert!(la_raw_alloc(a, 1, 63, 0).is_null());
            assert!(la_raw_alloc(a, isize::MAX as usize - 4094, 12, 0).is_null());
        }
    }
}
