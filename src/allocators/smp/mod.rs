//! The general-purpose allocator behind `la_smp_allocator()` and the malloc
//! shim.
//!
//! STAND-IN: this file currently holds a deliberately simple implementation
//! (one mapping per block, a header in front) that fixes the module's
//! interface for its users (the vtable below and the preload shim). The
//! thread-caching segment allocator replaces the bodies, not the interface:
//!
//! - [`alloc`]`(len, align_log2)`: `len > 0` bytes, aligned; NULL when out
//!   of memory or the alignment cannot be met;
//! - [`free`]`(ptr)`: frees a live block without being told its size;
//! - [`usable_size`]`(ptr)`: bytes usable in a live block (>= requested);
//! - [`resize`]`(ptr, new_len)`: in place, true when the block now holds
//!   `new_len` bytes;
//! - [`remap`]`(ptr, new_len)`: may move without the caller copying; NULL
//!   when that is no better than alloc + copy + free;
//! - [`check`]`(ptr)`: classifies a pointer before it is freed, so the shim
//!   can report foreign, interior and double frees instead of corrupting;
//! - [`collect`]: returns free memory to the OS now.
//!
//! None of these allocate through the global allocator, panic or take a
//! lock that `fork()` could leave held.

use core::ffi::c_void;
use core::ptr;

use crate::alignment;
use crate::sys;
use crate::vtable::{RawAllocator, la_allocator, la_vtable, vtable_of};

/// What [`check`] knows about a pointer about to be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtrCheck {
    /// The start of a live block of this allocator.
    Live,
    /// Not inside memory this allocator manages.
    NotOurs,
    /// Inside a block of this allocator, but not at its start.
    Interior,
    /// The start of a block that is already free.
    Free,
}

const HEADER: usize = 64;
const MAGIC: usize = 0x6c61_736d_7031_2121;

#[repr(C)]
struct Header {
    magic: usize,
    base: usize,
    mapped: usize,
    len: usize,
}

/// # Safety
/// `ptr` is the start of a live block from [`alloc`].
unsafe fn header(ptr: *const u8) -> *mut Header {
    ptr.wrapping_sub(HEADER) as *mut Header
}

/// Allocates `len > 0` bytes aligned to `1 << align_log2`.
pub fn alloc(len: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(len > 0);
    let Some(align) = alignment::to_bytes(align_log2) else {
        return ptr::null_mut();
    };
    let align = align.max(HEADER);
    let Some(total) = len
        .checked_add(HEADER + align)
        .and_then(|t| alignment::forward(t, sys::page_size()))
    else {
        return ptr::null_mut();
    };
    let Some(base) = sys::map(total) else {
        return ptr::null_mut();
    };
    let base = base.as_ptr() as usize;
    let Some(user) = alignment::forward(base + HEADER, align) else {
        return ptr::null_mut();
    };
    // SAFETY: user - HEADER >= base and the header lies inside the fresh mapping.
    unsafe {
        header(user as *const u8).write(Header {
            magic: MAGIC,
            base,
            mapped: total,
            len,
        });
    }
    user as *mut u8
}

/// Frees a block from [`alloc`] or [`remap`].
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: caller's promise: the header in front of ptr is ours.
    unsafe {
        let h = header(ptr);
        debug_assert_eq!((*h).magic, MAGIC);
        (*h).magic = 0;
        sys::unmap((*h).base as *mut u8, (*h).mapped);
    }
}

/// Usable bytes of a live block.
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn usable_size(ptr: *const u8) -> usize {
    // SAFETY: caller's promise.
    unsafe {
        let h = header(ptr);
        (*h).base + (*h).mapped - ptr as usize
    }
}

/// Grows or shrinks a block in place.
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn resize(ptr: *mut u8, new_len: usize) -> bool {
    // SAFETY: caller's promise.
    let ok = new_len <= unsafe { usable_size(ptr) };
    if ok {
        // SAFETY: as above.
        unsafe { (*header(ptr)).len = new_len };
    }
    ok
}

/// Resizes a block, possibly moving it without the caller copying.
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn remap(ptr: *mut u8, new_len: usize) -> *mut u8 {
    // SAFETY: caller's promise.
    if unsafe { resize(ptr, new_len) } {
        ptr
    } else {
        ptr::null_mut()
    }
}

/// Classifies a pointer before it is freed (the stand-in cannot tell; the
/// segment allocator answers exactly).
pub fn check(_ptr: *const u8) -> PtrCheck {
    PtrCheck::Live
}

/// Returns free memory to the OS now (the stand-in holds none).
pub fn collect() {}

/// The vtable face of the smp allocator.
pub struct SmpAllocator;

static INSTANCE: SmpAllocator = SmpAllocator;
static VTABLE: la_vtable = vtable_of::<SmpAllocator>();

// SAFETY: blocks are at least `len` bytes and aligned by `alloc`; resize
// reports success only when the block holds the new length.
unsafe impl RawAllocator for SmpAllocator {
    unsafe fn from_ctx<'a>(_ctx: *mut c_void) -> Option<&'a Self> {
        Some(&INSTANCE)
    }
    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        alloc(len, alignment)
    }
    unsafe fn resize(&self, m: *mut u8, _len: usize, _a: u8, new_len: usize, _r: usize) -> bool {
        // SAFETY: vtable promise: m is a live block.
        unsafe { resize(m, new_len) }
    }
    unsafe fn remap(&self, m: *mut u8, _len: usize, _a: u8, new_len: usize, _r: usize) -> *mut u8 {
        // SAFETY: vtable promise: m is a live block.
        unsafe { remap(m, new_len) }
    }
    unsafe fn free(&self, m: *mut u8, _len: usize, _a: u8, _r: usize) {
        // SAFETY: vtable promise: m is a live block.
        unsafe { free(m) }
    }
}

/// The process-wide general-purpose allocator (thread-caching; backs the
/// malloc shim).
///
/// Returns: the allocator (stateless handle; may be copied freely).
///
/// Thread safety: safe from any thread; a block may be freed by a thread
/// other than the one that allocated it.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_allocator() -> la_allocator {
    la_allocator {
        ptr: ptr::null_mut(),
        vtable: &VTABLE,
    }
}

/// Returns free memory held by the smp allocator to the OS now.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_collect() {
    collect()
}
