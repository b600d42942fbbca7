//! The page allocator: every block is its own anonymous mapping
//! (Zig's `std.heap.page_allocator`).
//!
//! `alloc` maps the length rounded up to whole pages; alignments above the
//! page size are met by over-mapping and trimming both ends. `resize`
//! succeeds in place when the page-rounded length does not change, or when
//! `mremap` can grow/shrink the mapping without moving it; `remap` lets
//! `mremap` move the mapping (no copy: the kernel moves the page tables).
//! Blocks aligned above the page size are never moved by `remap`, since
//! `mremap` only promises page alignment. `free` unmaps. Stateless and
//! thread-safe.
//!
//! Two deliberate differences from Zig 0.17, both only ever turning a
//! refusal into a success the contract allows: Zig's `resize` on Linux
//! x86-64 never calls `mremap` (its mmap address hints walk down towards the
//! stack, and growing a mapping upwards in place could take room the stack
//! needs), so it cannot grow a block past its last page; we give no hints, so
//! growing in place with `mremap` and no MAYMOVE is safe. And Zig refuses to
//! resize or remap blocks aligned above the page size at all; changing their
//! length in place keeps their address, hence their alignment, so we allow
//! it.

use core::ffi::c_void;
use core::ptr;

use crate::alignment;
use crate::sys;
use crate::vtable::{RawAllocator, la_allocator, la_vtable, vtable_of};

/// The page allocator's (empty) state.
pub struct PageAllocator;

static INSTANCE: PageAllocator = PageAllocator;
static VTABLE: la_vtable = vtable_of::<PageAllocator>();

/// The page-rounded mapping length for `len`, or `None` on overflow.
#[inline]
fn mapped_len(len: usize) -> Option<usize> {
    alignment::forward(len, sys::page_size())
}

impl PageAllocator {
    /// Grows or shrinks the mapping holding `memory`; `may_move` allows a
    /// different address. Returns the block's address afterwards.
    ///
    /// # Safety
    /// `memory` is a live block of this allocator with length `len`.
    unsafe fn realloc(memory: *mut u8, len: usize, new_len: usize, may_move: bool) -> *mut u8 {
        let (Some(old_mapped), Some(new_mapped)) = (mapped_len(len), mapped_len(new_len)) else {
            return ptr::null_mut();
        };
        if old_mapped == new_mapped {
            return memory;
        }
        // SAFETY: `memory` starts a mapping of `old_mapped` bytes made by
        // `sys::map*` (caller's promise); new_mapped is page-rounded and > 0.
        match unsafe { sys::remap(memory, old_mapped, new_mapped, may_move) } {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        }
    }
}

// SAFETY: blocks are whole mappings of at least the requested length, aligned
// by `sys::map_aligned`; resize reports success only when mremap kept the
// address.
unsafe impl RawAllocator for PageAllocator {
    unsafe fn from_ctx<'a>(_ctx: *mut c_void) -> Option<&'a Self> {
        Some(&INSTANCE)
    }

    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        debug_assert!(len > 0);
        let Some(align) = alignment::to_bytes(alignment) else {
            return ptr::null_mut();
        };
        if mapped_len(len).is_none() {
            return ptr::null_mut();
        }
        match sys::map_aligned(len, align) {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        }
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        _alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> bool {
        // SAFETY: forwarded vtable promise; may_move = false keeps the address.
        !unsafe { Self::realloc(memory, len, new_len, false) }.is_null()
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> *mut u8 {
        // mremap may only promise page alignment when it moves a mapping.
        let may_move = alignment::to_bytes(alignment).is_some_and(|a| a <= sys::page_size());
        // SAFETY: forwarded vtable promise.
        unsafe { Self::realloc(memory, len, new_len, may_move) }
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, _alignment: u8, _ret_addr: usize) {
        if let Some(mapped) = mapped_len(len) {
            // SAFETY: the block is a whole mapping of `mapped` bytes and dead now.
            unsafe { sys::unmap(memory, mapped) }
        }
    }
}

/// The page allocator: each block is its own `mmap`, rounded up to whole
/// pages; `remap` uses `mremap` (no copy). Best for few, large blocks.
///
/// Parameters: none.
///
/// Returns: the allocator (stateless; the value may be copied freely); its
/// vtable is never NULL. Blocks are NULL only when the OS refuses memory.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_page_allocator() -> la_allocator {
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
    fn alloc_write_free() {
        let a = la_page_allocator();
        // SAFETY: every block is used within its length and freed once.
        unsafe {
            let p = la_raw_alloc(a, 100, 3, 0) as *mut u8;
            assert!(!p.is_null());
            assert_eq!(p as usize % sys::page_size(), 0);
            p.write_bytes(0xAB, 100);
            assert!(la_raw_resize(a, p.cast(), 100, 3, 200, 0));
            let q = la_raw_remap(a, p.cast(), 200, 3, 1 << 20, 0) as *mut u8;
            assert!(!q.is_null());
            assert_eq!(*q.add(99), 0xAB);
            la_raw_free(a, q.cast(), 1 << 20, 3, 0);
        }
    }

    #[test]
    fn large_alignment() {
        let a = la_page_allocator();
        for log2 in [13u8, 16, 21] {
            // SAFETY: allocate/free pair.
            unsafe {
                let p = la_raw_alloc(a, 3000, log2, 0);
                assert!(!p.is_null());
                assert_eq!(p as usize % (1usize << log2), 0);
                la_raw_free(a, p, 3000, log2, 0);
            }
        }
    }

    #[test]
    fn resize_follows_page_rounding() {
        let a = la_page_allocator();
        let page = sys::page_size();
        // SAFETY: blocks are used within their granted lengths and freed
        // with the length last granted.
        unsafe {
            let p = la_raw_alloc(a, 1, 0, 0) as *mut u8;
            assert!(!p.is_null());
            // Anything up to the end of the page fits without a syscall.
            assert!(la_raw_resize(a, p.cast(), 1, 0, page, 0));
            p.write_bytes(0x11, page);
            assert!(la_raw_resize(a, p.cast(), page, 0, 10, 0));
            assert_eq!(*p.add(9), 0x11);
            la_raw_free(a, p.cast(), 10, 0, 0);

            // Shrinking across pages gives the tail back in place.
            let q = la_raw_alloc(a, 4 * page, 0, 0) as *mut u8;
            assert!(!q.is_null());
            q.write_bytes(0x22, 4 * page);
            assert!(la_raw_resize(a, q.cast(), 4 * page, 0, page + 1, 0));
            assert_eq!(*q.add(page), 0x22);
            la_raw_free(a, q.cast(), page + 1, 0, 0);
        }
    }

    #[test]
    fn remap_moves_without_losing_contents_or_alignment() {
        let a = la_page_allocator();
        let page = sys::page_size();
        // SAFETY: as above.
        unsafe {
            // A page-aligned block may move: its contents come along.
            let p = la_raw_alloc(a, page, 12, 0) as *mut u8;
            assert!(!p.is_null());
            p.write_bytes(0x5a, page);
            let q = la_raw_remap(a, p.cast(), page, 12, 64 * page, 0) as *mut u8;
            assert!(!q.is_null());
            assert!((0..page).all(|i| *q.add(i) == 0x5a));
            la_raw_free(a, q.cast(), 64 * page, 12, 0);

            // A block aligned above the page size is never moved by remap
            // (mremap only promises page alignment): it grows in place or
            // not at all, and always stays aligned.
            let big = 1usize << 21;
            let r = la_raw_alloc(a, page, 21, 0) as *mut u8;
            assert!(!r.is_null() && (r as usize).is_multiple_of(big));
            let s = la_raw_remap(a, r.cast(), page, 21, 64 * page, 0) as *mut u8;
            let len = if s.is_null() {
                page
            } else {
                assert_eq!(s, r);
                64 * page
            };
            la_raw_free(a, r.cast(), len, 21, 0);
        }
    }

    #[test]
    fn bad_input() {
        let a = la_page_allocator();
        // SAFETY: calls that must be rejected before touching memory.
        unsafe {
            assert!(la_raw_alloc(a, 0, 0, 0).is_null());
            assert!(la_raw_alloc(a, 1, 64, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX, 0, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX - 100, 0, 0).is_null());
            assert!(la_raw_alloc(a, 1, 63, 0).is_null());
        }
    }
}
