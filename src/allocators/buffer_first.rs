//! The buffer-first allocator: a caller buffer first, then a fallback
//! allocator (Zig's `BufferFirstAllocator`, the "stack fallback").
//!
//! The state (`la_buffer_first`) lives in caller storage, typically next to
//! a stack array. `alloc` bumps through the buffer exactly like a fixed-buffer
//! allocator (the last block can grow, shrink and be given back); when the
//! buffer has no room it asks the fallback. `resize`, `remap` and `free`
//! route by ownership: a block inside the buffer is handled by the bump
//! logic, any other block is passed to the fallback unchanged. Not
//! thread-safe (the bump index is plain memory).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;

use crate::alignment;
use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};
use libc::size_t;

/// Buffer-first allocator state, kept in caller storage. Initialise with
/// `la_buffer_first_init`; the fields are private to the library.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct la_buffer_first {
    /// Start of the caller's buffer (may be NULL when `len` is 0).
    pub buffer: *mut u8,
    /// Length of the buffer in bytes.
    pub len: size_t,
    /// Bytes of the buffer handed out (the bump index).
    pub end_index: size_t,
    /// Where requests go when the buffer has no room.
    pub fallback: la_allocator,
}

/// The vtable's view of the state: the context pointer names caller storage
/// that the allocator mutates, so it is reached through an `UnsafeCell`.
#[repr(transparent)]
struct Shared(UnsafeCell<la_buffer_first>);

static VTABLE: la_vtable = vtable_of::<Shared>();

impl la_buffer_first {
    /// Whether `memory` points inside the buffer.
    #[inline]
    fn owns(&self, memory: *const u8) -> bool {
        let start = self.buffer as usize;
        let p = memory as usize;
        p >= start && p - start < self.len
    }

    /// Whether `memory[..len]` is the most recent block of the buffer.
    #[inline]
    fn is_last(&self, memory: *const u8, len: usize) -> bool {
        memory as usize + len == self.buffer as usize + self.end_index
    }

    fn fallback(&self) -> ChildAllocator {
        ChildAllocator(self.fallback)
    }

    /// Bump allocation inside the buffer; NULL when it does not fit.
    fn buffer_alloc(&mut self, len: usize, align: usize) -> *mut u8 {
        let cur = self.buffer as usize + self.end_index;
        let Some(aligned) = alignment::forward(cur, align) else {
            return ptr::null_mut();
        };
        let start = aligned - self.buffer as usize;
        match start.checked_add(len) {
            Some(end) if end <= self.len => {
                self.end_index = end;
                // Derive the pointer from the buffer to keep its provenance.
                self.buffer.wrapping_add(start)
            }
            _ => ptr::null_mut(),
        }
    }

    /// In-place resize of a buffer block (the fixed-buffer rules).
    fn buffer_resize(&mut self, memory: *mut u8, len: usize, new_len: usize) -> bool {
        if !self.is_last(memory, len) {
            return new_len <= len;
        }
        if new_len <= len {
            self.end_index -= len - new_len;
            return true;
        }
        let add = new_len - len;
        match self.end_index.checked_add(add) {
            Some(end) if end <= self.len => {
                self.end_index = end;
                true
            }
            _ => false,
        }
    }
}

impl Shared {
    /// Mutable access to the state for the duration of one vtable call.
    ///
    /// # Safety
    /// The allocator is not thread-safe: callers guarantee no concurrent use,
    /// so no other reference to the state is active during a vtable call.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut la_buffer_first {
        // SAFETY: caller's promise of exclusive use; the cell makes the
        // mutation through a shared reference legitimate.
        unsafe { &mut *self.0.get() }
    }
}

// SAFETY: buffer blocks lie inside the buffer, aligned by `buffer_alloc`, and
// resize only reports success when the bump index moved accordingly or the
// block shrank; other blocks are the fallback's, which keeps its contract.
unsafe impl RawAllocator for Shared {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        // SAFETY: single-threaded use (documented on the type).
        let this = unsafe { self.state() };
        if let Some(align) = alignment::to_bytes(alignment) {
            let p = this.buffer_alloc(len, align);
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: the fallback is a valid allocator (la_buffer_first_init).
        match unsafe { this.fallback().alloc(len, alignment, ret_addr) } {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        }
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        // SAFETY: single-threaded use.
        let this = unsafe { self.state() };
        if this.owns(memory) {
            this.buffer_resize(memory, len, new_len)
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            unsafe {
                this.fallback()
                    .resize(memory, len, alignment, new_len, ret_addr)
            }
        }
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        // SAFETY: single-threaded use.
        let this = unsafe { self.state() };
        if this.owns(memory) {
            if this.buffer_resize(memory, len, new_len) {
                memory
            } else {
                ptr::null_mut()
            }
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            match unsafe {
                this.fallback()
                    .remap(memory, len, alignment, new_len, ret_addr)
            } {
                Some(p) => p.as_ptr(),
                None => ptr::null_mut(),
            }
        }
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: single-threaded use.
        let this = unsafe { self.state() };
        if this.owns(memory) {
            if this.is_last(memory, len) {
                this.end_index -= len;
            }
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            unsafe { this.fallback().free(memory, len, alignment, ret_addr) }
        }
    }
}

/// Initialises a buffer-first allocator in caller storage: requests are
/// served from `buf` first and from `fallback` when the buffer has no room.
///
/// Parameters: `bf` the state to initialise; `buf`/`len` the buffer (NULL
/// with `len` 0 means "no buffer": everything goes to the fallback);
/// `fallback` the allocator used when the buffer is full.
///
/// Returns: nothing. A NULL `bf` does nothing; a NULL `buf` with `len` > 0 is
/// treated as an empty buffer.
///
/// Thread safety: the allocator is for one thread at a time.
///
/// # Safety
/// `bf` is NULL or writable; `buf[..len]` stays valid and unused by anything
/// else while the allocator or any block from it is in use; `fallback` is a
/// valid allocator that outlives `bf`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_buffer_first_init(
    bf: *mut la_buffer_first,
    buf: *mut c_void,
    len: size_t,
    fallback: la_allocator,
) {
    if bf.is_null() {
        return;
    }
    let len = if buf.is_null() { 0 } else { len };
    // SAFETY: bf is non-null and writable (caller's promise).
    unsafe {
        bf.write(la_buffer_first {
            buffer: buf.cast(),
            len,
            end_index: 0,
            fallback,
        })
    }
}

/// The allocator interface of a buffer-first allocator.
///
/// Parameters: `bf` state initialised by `la_buffer_first_init`.
///
/// Returns: the allocator, valid while `bf` lives; for a NULL `bf` an
/// allocator whose every call fails.
///
/// Thread safety: the allocator is for one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn la_buffer_first_allocator(bf: *mut la_buffer_first) -> la_allocator {
    la_allocator::of_handle(bf, &VTABLE)
}

/// Whether `ptr` lies inside the buffer of `bf` (so the block is served by
/// the buffer rather than the fallback).
///
/// Returns: false for a NULL `bf`.
///
/// Thread safety: read-only; safe while no thread allocates through `bf`.
///
/// # Safety
/// `bf` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_buffer_first_owns(
    bf: *const la_buffer_first,
    ptr: *const c_void,
) -> bool {
    // SAFETY: bf is NULL or initialised (caller's promise).
    match unsafe { bf.as_ref() } {
        Some(bf) => bf.owns(ptr.cast()),
        None => false,
    }
}

/// Bytes of the buffer currently handed out (Zig's `end_index`); 0 once
/// every buffer block has been freed in reverse order.
///
/// Returns: 0 for a NULL `bf`.
///
/// Thread safety: read-only; safe while no thread allocates through `bf`.
///
/// # Safety
/// `bf` is NULL or initialised.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_buffer_first_used(bf: *const la_buffer_first) -> size_t {
    // SAFETY: bf is NULL or initialised (caller's promise).
    match unsafe { bf.as_ref() } {
        Some(bf) => bf.end_index,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::c::la_c_allocator;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};
    use core::mem::MaybeUninit;

    fn make(buf: &mut [u8]) -> Box<la_buffer_first> {
        let mut bf = Box::new(MaybeUninit::<la_buffer_first>::uninit());
        // SAFETY: writable state, live buffer, valid fallback.
        unsafe {
            la_buffer_first_init(
                bf.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                la_c_allocator(),
            );
            Box::from_raw(Box::into_raw(bf).cast())
        }
    }

    #[test]
    fn routes_by_ownership() {
        let mut buf = [0u8; 10];
        let mut bf = make(&mut buf);
        // SAFETY: blocks are used within their lengths and freed once.
        unsafe {
            let a = la_buffer_first_allocator(&mut *bf);
            let b0 = la_raw_alloc(a, 9, 0, 0);
            assert!(la_buffer_first_owns(&*bf, b0));
            let b1 = la_raw_alloc(a, 5, 0, 0);
            assert!(!la_buffer_first_owns(&*bf, b1));
            la_raw_free(a, b0, 9, 0, 0);
            assert_eq!(la_buffer_first_used(&*bf), 0);
            let b2 = la_raw_alloc(a, 12, 0, 0);
            assert!(!la_buffer_first_owns(&*bf, b2));
            let b3 = la_raw_alloc(a, 6, 0, 0);
            assert!(la_buffer_first_owns(&*bf, b3));
            // The last buffer block grows in place up to the buffer's end.
            assert!(la_raw_resize(a, b3, 6, 0, 10, 0));
            assert!(!la_raw_resize(a, b3, 10, 0, 11, 0));
            assert_eq!(la_raw_remap(a, b3, 10, 0, 4, 0), b3);
            // A fallback block is remapped by the fallback.
            let b2 = la_raw_remap(a, b2, 12, 0, 4000, 0);
            assert!(!b2.is_null() && !la_buffer_first_owns(&*bf, b2));
            la_raw_free(a, b1, 5, 0, 0);
            la_raw_free(a, b2, 4000, 0, 0);
            la_raw_free(a, b3, 4, 0, 0);
            assert_eq!(la_buffer_first_used(&*bf), 0);
        }
    }

    #[test]
    fn alignment_in_buffer() {
        let mut buf = [0u8; 256];
        let mut bf = make(&mut buf);
        // SAFETY: blocks freed once.
        unsafe {
            let a = la_buffer_first_allocator(&mut *bf);
            let p = la_raw_alloc(a, 1, 0, 0);
            let q = la_raw_alloc(a, 8, 5, 0);
            assert_eq!(q as usize % 32, 0);
            la_raw_free(a, q, 8, 5, 0);
            la_raw_free(a, p, 1, 0, 0);
        }
    }

    #[test]
    fn null_handles() {
        // SAFETY: NULL handles must be refused without touching memory.
        unsafe {
            la_buffer_first_init(ptr::null_mut(), ptr::null_mut(), 0, la_c_allocator());
            let a = la_buffer_first_allocator(ptr::null_mut());
            assert!(la_raw_alloc(a, 8, 0, 0).is_null());
            assert!(!la_buffer_first_owns(ptr::null(), ptr::null()));
            assert_eq!(la_buffer_first_used(ptr::null()), 0);
            // No buffer at all: everything goes to the fallback.
            let mut bf = make(&mut []);
            let a = la_buffer_first_allocator(&mut *bf);
            let p = la_raw_alloc(a, 8, 0, 0);
            assert!(!p.is_null() && !la_buffer_first_owns(&*bf, p));
            la_raw_free(a, p, 8, 0, 0);
        }
    }
}
