//! The allocator interface: `la_vtable`, `la_allocator`, the raw calls and the
//! `la_no_*` building blocks.
//!
//! This is Zig's `std.mem.Allocator` written once for the C ABI. An allocator
//! is a `{ptr, vtable}` pair; the vtable has four entry points with the
//! contract below, and every allocator in this crate relies on it rather than
//! restating it:
//!
//! - `alloc(ctx, len, alignment, ret_addr)`: `len > 0` bytes aligned to
//!   `1 << alignment`, or NULL.
//! - `resize(ctx, memory, len, alignment, new_len, ret_addr)`: grow or shrink
//!   in place; true means the block keeps its address and now has `new_len`
//!   bytes.
//! - `remap(ctx, memory, len, alignment, new_len, ret_addr)`: grow or shrink,
//!   possibly moving the block; NULL means "allocate, copy and free yourself".
//! - `free(ctx, memory, len, alignment, ret_addr)`.
//!
//! `len` and `alignment` given to resize/remap/free are those of the most
//! recent successful alloc/resize/remap of that block. The C ABI is
//! defensive: a NULL vtable or entry, `len == 0`, `new_len == 0`, a NULL block
//! or an alignment of 64 or more gives NULL / false / nothing, never a crash.
//!
//! Rust allocators implement [`RawAllocator`]; [`vtable_of`] turns one into a
//! `la_vtable` whose trampolines apply the defensive checks once.
//! [`ChildAllocator`] is the one wrapper through which a Rust allocator calls
//! the allocator beneath it.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use crate::alignment;
use libc::size_t;

/// Log2 of an alignment in bytes: 0 = 1 byte, 4 = 16 bytes, 12 = 4096 bytes.
#[allow(non_camel_case_types)]
pub type la_alignment = u8;

/// The four entry points of an allocator (Zig's `Allocator.VTable`).
///
/// `len` and `alignment` passed to resize/remap/free must be those of the most
/// recent successful alloc/resize/remap of the block. `ret_addr` is the
/// caller's return address (0 = none), recorded by debugging allocators.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct la_vtable {
    /// Returns `len` (> 0) bytes aligned to `1 << alignment`, or NULL.
    pub alloc: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            len: size_t,
            alignment: la_alignment,
            ret_addr: usize,
        ) -> *mut c_void,
    >,
    /// Grows or shrinks `memory` in place; true means same address, now
    /// `new_len` bytes; false means nothing changed.
    pub resize: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            memory: *mut c_void,
            len: size_t,
            alignment: la_alignment,
            new_len: size_t,
            ret_addr: usize,
        ) -> bool,
    >,
    /// Grows or shrinks, possibly moving the block; NULL means the caller
    /// should allocate, copy and free itself (nothing changed).
    pub remap: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            memory: *mut c_void,
            len: size_t,
            alignment: la_alignment,
            new_len: size_t,
            ret_addr: usize,
        ) -> *mut c_void,
    >,
    /// Releases `memory`.
    pub free: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            memory: *mut c_void,
            len: size_t,
            alignment: la_alignment,
            ret_addr: usize,
        ),
    >,
}

/// An allocator: an opaque state pointer and the vtable that interprets it.
/// Passed and returned by value; copying it does not copy the allocator.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct la_allocator {
    /// The allocator's state, handed to every vtable call as `ctx`.
    pub ptr: *mut c_void,
    /// The entry points (NULL: every call fails).
    pub vtable: *const la_vtable,
}

impl la_allocator {
    /// An allocator whose vtable is NULL: every call through it fails.
    pub const NULL: la_allocator = la_allocator {
        ptr: ptr::null_mut(),
        vtable: ptr::null(),
    };

    /// The allocator of a stateful allocator's handle: `handle` paired with
    /// `vtable`, or [`la_allocator::NULL`] for a NULL handle. The handle is
    /// not read, so the `la_*_allocator` getters built on this are safe
    /// functions: their callers' promises about the handle matter only when
    /// the allocator is used.
    pub fn of_handle<T>(handle: *mut T, vtable: &'static la_vtable) -> la_allocator {
        if handle.is_null() {
            return la_allocator::NULL;
        }
        la_allocator {
            ptr: handle.cast(),
            vtable,
        }
    }
}

/// Allocates through `a`'s vtable.
///
/// Parameters: `a` the allocator; `len` the byte count (> 0); `alignment`
/// log2 of the alignment; `ret_addr` the caller's return address or 0.
///
/// Returns: the block, or NULL when out of memory, when `len` is 0, when
/// `alignment` is 64 or more, or when `a` has a NULL vtable or entry.
///
/// Thread safety: that of the allocator `a`.
///
/// # Safety
/// `a` must be a valid allocator (or have a NULL vtable).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_raw_alloc(
    a: la_allocator,
    len: size_t,
    alignment: la_alignment,
    ret_addr: usize,
) -> *mut c_void {
    if len == 0 || alignment > alignment::MAX_LOG2 || a.vtable.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: the vtable pointer is non-null and, by the caller's promise,
    // points to a valid `la_vtable` for `a.ptr`.
    match unsafe { (*a.vtable).alloc } {
        // SAFETY: arguments satisfy the vtable contract (len > 0, alignment < 64).
        Some(f) => unsafe { f(a.ptr, len, alignment, ret_addr) },
        None => ptr::null_mut(),
    }
}

/// Resizes `memory` in place through `a`'s vtable.
///
/// Parameters: `memory`, `len` and `alignment` describe the block as last
/// granted; `new_len` (> 0) is the wanted length.
///
/// Returns: true when the block now has `new_len` bytes at the same address;
/// false otherwise (and always for a NULL block, `len == 0`, `new_len == 0`,
/// an alignment of 64 or more, or a NULL vtable or entry).
///
/// Thread safety: that of the allocator `a`.
///
/// # Safety
/// `a` must be a valid allocator and `memory` a live block of it with the
/// given `len` and `alignment`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_raw_resize(
    a: la_allocator,
    memory: *mut c_void,
    len: size_t,
    alignment: la_alignment,
    new_len: size_t,
    ret_addr: usize,
) -> bool {
    if memory.is_null()
        || len == 0
        || new_len == 0
        || alignment > alignment::MAX_LOG2
        || a.vtable.is_null()
    {
        return false;
    }
    // SAFETY: non-null vtable, valid by the caller's promise.
    match unsafe { (*a.vtable).resize } {
        // SAFETY: the block is live with this len/alignment (caller's promise).
        Some(f) => unsafe { f(a.ptr, memory, len, alignment, new_len, ret_addr) },
        None => false,
    }
}

/// Resizes `memory` through `a`'s vtable, allowing it to move.
///
/// Parameters: as for [`la_raw_resize`]: `memory`, `len` and `alignment`
/// describe the block as last granted; `new_len` (> 0) is the wanted length;
/// `ret_addr` the caller's return address or 0.
///
/// Returns: the (possibly new) address of the block, now `new_len` bytes; or
/// NULL, meaning nothing changed and the caller should allocate, copy and free
/// itself (also for a NULL block, zero lengths, an alignment of 64 or more, or
/// a NULL vtable or entry).
///
/// Thread safety: that of the allocator `a`.
///
/// # Safety
/// As for [`la_raw_resize`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_raw_remap(
    a: la_allocator,
    memory: *mut c_void,
    len: size_t,
    alignment: la_alignment,
    new_len: size_t,
    ret_addr: usize,
) -> *mut c_void {
    if memory.is_null()
        || len == 0
        || new_len == 0
        || alignment > alignment::MAX_LOG2
        || a.vtable.is_null()
    {
        return ptr::null_mut();
    }
    // SAFETY: non-null vtable, valid by the caller's promise.
    match unsafe { (*a.vtable).remap } {
        // SAFETY: the block is live with this len/alignment (caller's promise).
        Some(f) => unsafe { f(a.ptr, memory, len, alignment, new_len, ret_addr) },
        None => ptr::null_mut(),
    }
}

/// Frees `memory` through `a`'s vtable.
///
/// Parameters: `memory`, `len` and `alignment` describe the block as last
/// granted. A NULL block or `len == 0` does nothing.
///
/// Thread safety: that of the allocator `a`.
///
/// # Safety
/// As for [`la_raw_resize`]; the block must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_raw_free(
    a: la_allocator,
    memory: *mut c_void,
    len: size_t,
    alignment: la_alignment,
    ret_addr: usize,
) {
    if memory.is_null() || len == 0 || alignment > alignment::MAX_LOG2 || a.vtable.is_null() {
        return;
    }
    // SAFETY: non-null vtable, valid by the caller's promise.
    if let Some(f) = unsafe { (*a.vtable).free } {
        // SAFETY: the block is live with this len/alignment (caller's promise).
        unsafe { f(a.ptr, memory, len, alignment, ret_addr) }
    }
}

/// A vtable `alloc` entry that always fails: returns NULL.
///
/// Parameters: those of `la_vtable.alloc`, all ignored (NULL included).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// None: the arguments are ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_no_alloc(
    _ctx: *mut c_void,
    _len: size_t,
    _alignment: la_alignment,
    _ret_addr: usize,
) -> *mut c_void {
    ptr::null_mut()
}

/// A vtable `resize` entry that never resizes: returns false.
///
/// Parameters: those of `la_vtable.resize`, all ignored (NULL included).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// None: the arguments are ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_no_resize(
    _ctx: *mut c_void,
    _memory: *mut c_void,
    _len: size_t,
    _alignment: la_alignment,
    _new_len: size_t,
    _ret_addr: usize,
) -> bool {
    false
}

/// A vtable `remap` entry that never remaps: returns NULL.
///
/// Parameters: those of `la_vtable.remap`, all ignored (NULL included).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// None: the arguments are ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_no_remap(
    _ctx: *mut c_void,
    _memory: *mut c_void,
    _len: size_t,
    _alignment: la_alignment,
    _new_len: size_t,
    _ret_addr: usize,
) -> *mut c_void {
    ptr::null_mut()
}

/// A vtable `free` entry that does nothing.
///
/// Parameters: those of `la_vtable.free`, all ignored (NULL included).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// None: the arguments are ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_no_free(
    _ctx: *mut c_void,
    _memory: *mut c_void,
    _len: size_t,
    _alignment: la_alignment,
    _ret_addr: usize,
) {
}

/// A Rust allocator behind the vtable.
///
/// The trampolines built by [`vtable_of`] have already checked, before any of
/// these methods runs: `len > 0`, `new_len > 0`, `alignment < 64`, `memory`
/// non-null, and that the context resolved (see [`RawAllocator::from_ctx`]).
///
/// # Safety
/// Implementors must honour the vtable contract in the module documentation:
/// never return a block shorter than asked or misaligned, never report success
/// for a resize that did not happen.
pub unsafe trait RawAllocator {
    /// Turns the vtable context pointer into the allocator state, or `None`
    /// when it cannot (a NULL context for a stateful allocator). The default
    /// reads `ctx` as a `*const Self`.
    ///
    /// # Safety
    /// `ctx` must be NULL or the pointer this allocator put into its
    /// `la_allocator`, still alive.
    unsafe fn from_ctx<'a>(ctx: *mut c_void) -> Option<&'a Self>
    where
        Self: Sized,
    {
        // SAFETY: by the caller's promise ctx is NULL or a live `Self`.
        unsafe { (ctx as *const Self).as_ref() }
    }

    /// # Safety
    /// `len > 0`, `alignment < 64`.
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8;

    /// # Safety
    /// `memory` is a live block of this allocator with `len`/`alignment` as
    /// last granted; `new_len > 0`.
    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool;

    /// Resizes, possibly moving the block. The default is what an allocator
    /// that cannot move blocks cheaply does: the in-place resize, else NULL
    /// (the caller allocates, copies and frees).
    ///
    /// # Safety
    /// As for [`RawAllocator::resize`].
    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        // SAFETY: forwarded caller promise.
        if unsafe { self.resize(memory, len, alignment, new_len, ret_addr) } {
            memory
        } else {
            ptr::null_mut()
        }
    }

    /// # Safety
    /// As for [`RawAllocator::resize`]; the block is dead afterwards.
    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize);
}

/// The `alloc` entry of [`vtable_of`]: rejects `len == 0` and alignments of
/// 64 or more, resolves the context, then calls [`RawAllocator::alloc`].
///
/// # Safety
/// - `ctx` is NULL or the context of an `la_allocator` built for `T`, alive.
unsafe extern "C" fn tramp_alloc<T: RawAllocator>(
    ctx: *mut c_void,
    len: usize,
    alignment: la_alignment,
    ret_addr: usize,
) -> *mut c_void {
    if len == 0 || alignment > alignment::MAX_LOG2 {
        return ptr::null_mut();
    }
    // SAFETY: ctx comes from an `la_allocator` built for T.
    match unsafe { T::from_ctx(ctx) } {
        // SAFETY: len > 0 and alignment < 64 were checked above.
        Some(a) => unsafe { a.alloc(len, alignment, ret_addr).cast() },
        None => ptr::null_mut(),
    }
}

/// The `resize` entry of [`vtable_of`]: rejects a NULL block, zero lengths and
/// alignments of 64 or more, then calls [`RawAllocator::resize`].
///
/// # Safety
/// - `ctx` is NULL or the context of an `la_allocator` built for `T`, alive;
/// - `memory` is NULL or a live block of that allocator with `len` and
///   `alignment` as last granted.
unsafe extern "C" fn tramp_resize<T: RawAllocator>(
    ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    new_len: usize,
    ret_addr: usize,
) -> bool {
    if memory.is_null() || len == 0 || new_len == 0 || alignment > alignment::MAX_LOG2 {
        return false;
    }
    // SAFETY: ctx comes from an `la_allocator` built for T.
    match unsafe { T::from_ctx(ctx) } {
        // SAFETY: the vtable caller promises a live block; zero lengths were rejected.
        Some(a) => unsafe { a.resize(memory.cast(), len, alignment, new_len, ret_addr) },
        None => false,
    }
}

/// The `remap` entry of [`vtable_of`]: the checks of [`tramp_resize`], then
/// [`RawAllocator::remap`].
///
/// # Safety
/// As for [`tramp_resize`].
unsafe extern "C" fn tramp_remap<T: RawAllocator>(
    ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    new_len: usize,
    ret_addr: usize,
) -> *mut c_void {
    if memory.is_null() || len == 0 || new_len == 0 || alignment > alignment::MAX_LOG2 {
        return ptr::null_mut();
    }
    // SAFETY: ctx comes from an `la_allocator` built for T.
    match unsafe { T::from_ctx(ctx) } {
        // SAFETY: the vtable caller promises a live block; zero lengths were rejected.
        Some(a) => unsafe {
            a.remap(memory.cast(), len, alignment, new_len, ret_addr)
                .cast()
        },
        None => ptr::null_mut(),
    }
}

/// The `free` entry of [`vtable_of`]: ignores a NULL block, `len == 0` and
/// alignments of 64 or more, then calls [`RawAllocator::free`].
///
/// # Safety
/// As for [`tramp_resize`]; the block is dead afterwards.
unsafe extern "C" fn tramp_free<T: RawAllocator>(
    ctx: *mut c_void,
    memory: *mut c_void,
    len: usize,
    alignment: la_alignment,
    ret_addr: usize,
) {
    if memory.is_null() || len == 0 || alignment > alignment::MAX_LOG2 {
        return;
    }
    // SAFETY: ctx comes from an `la_allocator` built for T.
    if let Some(a) = unsafe { T::from_ctx(ctx) } {
        // SAFETY: the vtable caller promises a live block.
        unsafe { a.free(memory.cast(), len, alignment, ret_addr) }
    }
}

/// The vtable for a [`RawAllocator`]; use it to initialise a `static`.
pub const fn vtable_of<T: RawAllocator>() -> la_vtable {
    la_vtable {
        alloc: Some(tramp_alloc::<T>),
        resize: Some(tramp_resize::<T>),
        remap: Some(tramp_remap::<T>),
        free: Some(tramp_free::<T>),
    }
}

/// The allocator beneath another one (an arena's child, a wrapper's backing).
/// Every Rust allocator calls its child through this type, never through the
/// vtable directly, so that the defensive checks live in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildAllocator(pub la_allocator);

// SAFETY: an `la_allocator` is a handle; whether calls through it may happen
// from several threads is the child's documented property, which the
// allocators that hold a child state and honour.
unsafe impl Send for ChildAllocator {}
// SAFETY: as above.
unsafe impl Sync for ChildAllocator {}

impl ChildAllocator {
    /// Whether the child has a vtable at all.
    pub fn is_valid(&self) -> bool {
        !self.0.vtable.is_null()
    }

    /// Allocates `len` bytes; `None` when the child fails.
    ///
    /// # Safety
    /// The child must be a valid allocator usable from this thread.
    #[inline]
    pub unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> Option<NonNull<u8>> {
        // SAFETY: the child is valid (caller's promise); la_raw_alloc checks the rest.
        NonNull::new(unsafe { la_raw_alloc(self.0, len, alignment, ret_addr) }.cast())
    }

    /// # Safety
    /// `memory` is a live block of the child with `len`/`alignment`.
    #[inline]
    pub unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        // SAFETY: forwarded caller promise.
        unsafe { la_raw_resize(self.0, memory.cast(), len, alignment, new_len, ret_addr) }
    }

    /// # Safety
    /// `memory` is a live block of the child with `len`/`alignment`.
    #[inline]
    pub unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> Option<NonNull<u8>> {
        // SAFETY: forwarded caller promise.
        NonNull::new(
            unsafe { la_raw_remap(self.0, memory.cast(), len, alignment, new_len, ret_addr) }
                .cast(),
        )
    }

    /// # Safety
    /// `memory` is a live block of the child with `len`/`alignment`; it is
    /// dead afterwards.
    #[inline]
    pub unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: forwarded caller promise.
        unsafe { la_raw_free(self.0, memory.cast(), len, alignment, ret_addr) }
    }
}
