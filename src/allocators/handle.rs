//! Storage for the opaque handles of the wrapper allocators (thread-safe,
//! logging, pool).
//!
//! A handle is placed in its own anonymous mapping rather than in the child
//! allocator: creating a wrapper then works over any child (a failing one,
//! an arena that is later reset), and nothing here goes through malloc.
//! Handles are few and long-lived, so a page each is an acceptable price.

use core::ptr::NonNull;

use crate::alignment;
use crate::sys;

/// Moves `value` into a fresh mapping; `None` when the OS refuses.
pub fn create<T>(value: T) -> Option<NonNull<T>> {
    debug_assert!(core::mem::align_of::<T>() <= sys::page_size());
    let p = sys::map(core::mem::size_of::<T>().max(1))?.cast::<T>();
    // SAFETY: the mapping is fresh, writable, page-aligned (so aligned for T)
    // and at least size_of::<T>() bytes long.
    unsafe { p.as_ptr().write(value) };
    Some(p)
}

/// Drops the value and unmaps its storage.
///
/// # Safety
/// - `p` came from [`create`] with the same `T` and was not destroyed;
/// - nothing uses it afterwards.
pub unsafe fn destroy<T>(p: NonNull<T>) {
    // SAFETY: caller's promise: a live value in its own mapping.
    unsafe {
        core::ptr::drop_in_place(p.as_ptr());
        let len = alignment::forward(core::mem::size_of::<T>().max(1), sys::page_size())
            .unwrap_or(sys::page_size());
        sys::unmap(p.as_ptr().cast(), len);
    }
}
