//! The buffer-first allocator: a caller buffer first, then a fallback
//! allocator (Zig's `BufferFirstAllocator`, the "stack fallback").
//!
//! The state (`la_buffer_first`) lives in caller storage, typically next to
//! a stack array. As Zig's holds a `FixedBufferAllocator`, it begins with
//! the fields of an `la_fixed_buffer` (same types, same order), and the
//! buffer half of every call is the fixed-buffer allocator's own code
//! (`fixed_buffer::Plain`): `alloc` bumps through the buffer (the last
//! block can grow, shrink and be given back), and when the buffer has no
//! room it asks the fallback. `resize`, `remap` and `free` route by
//! ownership: a block inside the buffer goes to the fixed-buffer code, any
//! other block to the fallback unchanged. Not thread-safe (the bump index
//! is plain memory).

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;

use crate::allocators::fixed_buffer::{
    Plain, la_fixed_buffer, la_fixed_buffer_init, la_fixed_buffer_owns,
};
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

// `la_buffer_first` begins with an `la_fixed_buffer`'s fields, at the same
// offsets: the fixed-buffer allocator can work on that prefix.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(la_buffer_first, buffer) == offset_of!(la_fixed_buffer, buffer));
    assert!(offset_of!(la_buffer_first, len) == offset_of!(la_fixed_buffer, len));
    assert!(offset_of!(la_buffer_first, end_index) == offset_of!(la_fixed_buffer, end_index));
};

impl la_buffer_first {
    /// The state's first fields, as the fixed-buffer state they are.
    #[inline]
    fn fixed(&self) -> *const la_fixed_buffer {
        (self as *const la_buffer_first).cast()
    }

    /// Whether `memory` points inside the buffer.
    #[inline]
    fn owns(&self, memory: *const u8) -> bool {
        // SAFETY: the prefix is an initialised la_fixed_buffer (see above).
        unsafe { la_fixed_buffer_owns(self.fixed(), memory.cast(), 0) }
    }
}

impl Shared {
    /// The fixed-buffer allocator over the state's prefix.
    #[inline]
    fn buffer(&self) -> &Plain {
        // SAFETY: the prefix is an initialised la_fixed_buffer that lives
        // as long as `self`; the allocator is single-threaded (documented).
        unsafe { Plain::over(self.0.get().cast()) }
    }

    /// Whether `memory` points inside the buffer.
    #[inline]
    fn owns(&self, memory: *const u8) -> bool {
        // SAFETY: a shared read of the fields that never change after init.
        unsafe { (*self.0.get()).owns(memory) }
    }

    /// The fallback allocator.
    #[inline]
    fn fallback(&self) -> ChildAllocator {
        // SAFETY: as in `owns`.
        ChildAllocator(unsafe { (*self.0.get()).fallback })
    }
}

// SAFETY: buffer blocks are the fixed-buffer allocator's, which keeps the
// contract; other blocks are the fallback's, which keeps it too.
unsafe impl RawAllocator for Shared {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        // SAFETY: forwarded vtable promise.
        let p = unsafe { self.buffer().alloc(len, alignment, ret_addr) };
        if !p.is_null() {
            return p;
        }
        // SAFETY: the fallback is a valid allocator (la_buffer_first_init).
        match unsafe { self.fallback().alloc(len, alignment, ret_addr) } {
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
        if self.owns(memory) {
            // SAFETY: a buffer block; forwarded vtable promise.
            unsafe {
                self.buffer()
                    .resize(memory, len, alignment, new_len, ret_addr)
            }
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            unsafe {
                self.fallback()
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
        if self.owns(memory) {
            // SAFETY: a buffer block; forwarded vtable promise.
            unsafe {
                self.buffer()
                    .remap(memory, len, alignment, new_len, ret_addr)
            }
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            let p = unsafe {
                self.fallback()
                    .remap(memory, len, alignment, new_len, ret_addr)
            };
            p.map_or(ptr::null_mut(), |p| p.as_ptr())
        }
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        if self.owns(memory) {
            // SAFETY: a buffer block; forwarded vtable promise.
            unsafe { self.buffer().free(memory, len, alignment, ret_addr) }
        } else {
            // SAFETY: a block outside the buffer came from the fallback.
            unsafe { self.fallback().free(memory, len, alignment, ret_addr) }
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
    // SAFETY: bf is non-null and writable (caller's promise), and begins
    // with an la_fixed_buffer's fields.
    unsafe {
        la_fixed_buffer_init(bf.cast(), buf, len);
        (&raw mut (*bf).fallback).write(fallback);
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
