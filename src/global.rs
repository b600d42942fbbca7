//! [`LibAlloc`]: the smp allocator as Rust's global allocator.
//!
//! ```ignore
//! use liballoc::LibAlloc;
//!
//! #[global_allocator]
//! static GLOBAL: LibAlloc = LibAlloc;
//! ```
//!
//! Rust passes the size and alignment of every block to `dealloc` and
//! `realloc`, so no per-block header is kept: a block is exactly what
//! `smp::alloc` hands out. `realloc` goes through `smp::remap` (in place
//! when the block's size class has room, by `mremap` for huge blocks, and
//! otherwise a growing block moves with headroom), `alloc_zeroed` through
//! `smp::alloc_zeroed` (fresh huge mappings are not cleared again).
//!
//! None of these paths allocate through the global allocator (they *are*
//! it), panic or take a lock.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::allocators::smp;
use crate::allocators::smp::size_class;

/// The smp allocator as a Rust allocator: `#[global_allocator]` (through
/// [`GlobalAlloc`]) or a per-collection allocator (through `allocator-api2`'s
/// [`Allocator`]). A zero-sized handle; every value is the same
/// process-wide allocator.
///
/// Thread safety: safe from any thread; a block may be freed by a thread
/// other than the one that allocated it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LibAlloc;

/// Log2 of a layout's alignment (a power of two, so its trailing zeros).
#[inline(always)]
fn align_log2(layout: &Layout) -> u8 {
    layout.align().trailing_zeros() as u8
}

impl LibAlloc {
    /// The bytes usable in a live block: at least the size it was
    /// allocated (or reallocated) with.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator.
    #[inline]
    pub unsafe fn usable_size(&self, ptr: *const u8) -> usize {
        // SAFETY: caller's promise: a live block of the smp allocator.
        unsafe { smp::usable_size(ptr) }
    }

    /// Returns free memory held by the allocator to the OS now (as
    /// `la_smp_collect`).
    pub fn collect(&self) {
        smp::collect();
    }
}

// SAFETY: blocks come from the smp allocator with at least `layout.size()`
// bytes aligned to `layout.align()` (smp honours any power-of-two
// alignment below 2^63, or returns NULL); `dealloc` and `realloc` are given
// blocks of this allocator, which smp finds without their size; `realloc`
// keeps the first `min(old, new)` bytes.
unsafe impl GlobalAlloc for LibAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if size <= size_class::TABLE_MAX && layout.align() <= 16 {
            // A zero size (not allowed by GlobalAlloc) maps to class 0,
            // which gives NULL.
            return smp::alloc_in(size_class::class_small(size, align_log2(&layout)));
        }
        smp::alloc(size.max(1), align_log2(&layout))
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        smp::alloc_zeroed(layout.size().max(1), align_log2(&layout))
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's promise: a live block of this allocator.
        unsafe { smp::free(ptr) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        // SAFETY: GlobalAlloc's promise: a live block of `old` bytes
        // aligned to `layout.align()`; the copied length is at most `old`,
        // so within its usable size. `new_size` is non-zero.
        unsafe {
            smp::remap_ex(
                ptr,
                new_size.max(1),
                align_log2(&layout),
                old.min(new_size),
                new_size < old,
            )
        }
    }
}

// SAFETY: as for GlobalAlloc above; zero-sized requests get a dangling,
// aligned pointer and are never passed to smp.
unsafe impl Allocator for LibAlloc {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        // SAFETY: a non-zero size.
        let p = unsafe { GlobalAlloc::alloc(self, layout) };
        slice(p, layout.size())
    }

    #[inline]
    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        slice(
            smp::alloc_zeroed(layout.size(), align_log2(&layout)),
            layout.size(),
        )
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: Allocator's promise: a live block of this allocator.
            unsafe { smp::free(ptr.as_ptr()) }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: Allocator's promise: ptr is a block of `old`.
        unsafe { self.move_to(ptr, old, new) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: Allocator's promise: ptr is a block of `old`.
        let p = unsafe { self.move_to(ptr, old, new) }?;
        // SAFETY: the block holds new.size() >= old.size() bytes.
        unsafe {
            ptr::write_bytes(
                p.cast::<u8>().as_ptr().add(old.size()),
                0,
                new.size() - old.size(),
            )
        };
        Ok(p)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: Allocator's promise: ptr is a block of `old`.
        unsafe { self.move_to(ptr, old, new) }
    }
}

impl LibAlloc {
    /// Moves or resizes a block of `old` to `new`, keeping
    /// `min(old, new)` bytes.
    ///
    /// # Safety
    /// `ptr` is a block of this allocator of layout `old` (dangling when
    /// `old.size()` is 0).
    unsafe fn move_to(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() == 0 {
            return self.allocate(new);
        }
        if new.size() == 0 {
            // SAFETY: caller's promise.
            unsafe { self.deallocate(ptr, old) };
            return Ok(dangling(new));
        }
        if new.align() <= old.align() {
            // smp keeps a block's alignment when it remaps it.
            // SAFETY: caller's promise; new.size() is non-zero.
            let p = unsafe { GlobalAlloc::realloc(self, ptr.as_ptr(), old, new.size()) };
            return slice(p, new.size());
        }
        let p = self.allocate(new)?;
        // SAFETY: both blocks hold at least min(old, new) bytes and are
        // distinct; the old one is live until freed here.
        unsafe {
            ptr::copy_nonoverlapping(
                ptr.as_ptr(),
                p.cast::<u8>().as_ptr(),
                old.size().min(new.size()),
            );
            self.deallocate(ptr, old);
        }
        Ok(p)
    }
}

/// The empty block of a zero-sized layout: its alignment as an address.
#[inline]
pub(crate) fn dangling(layout: Layout) -> NonNull<[u8]> {
    let p = ptr::without_provenance_mut::<u8>(layout.align());
    // SAFETY: an alignment is never zero.
    NonNull::slice_from_raw_parts(unsafe { NonNull::new_unchecked(p) }, 0)
}

/// `p` as a block of `len` bytes, or `AllocError` for NULL.
#[inline]
pub(crate) fn slice(p: *mut u8, len: usize) -> Result<NonNull<[u8]>, AllocError> {
    match NonNull::new(p) {
        Some(p) => Ok(NonNull::slice_from_raw_parts(p, len)),
        None => Err(AllocError),
    }
}
