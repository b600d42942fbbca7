//! The allocators for Rust collections: safe owners of the stateful
//! allocators, and [`AllocatorRef`], the handle through which collections
//! use them (it implements `allocator-api2`'s [`Allocator`], the trait that
//! `allocator_api2::vec::Vec` and `hashbrown` take).
//!
//! | owner | C allocator | threads |
//! |---|---|---|
//! | [`Arena`] | `la_arena` over the smp allocator | `Send + Sync`: share `&Arena` |
//! | [`Pool`] | `la_pool`: fixed-size items | `Send`, one thread at a time |
//! | [`FixedBuffer`] | `la_fixed_buffer` over a borrowed slice | one thread at a time |
//! | [`BufferFirst`] | `la_buffer_first`: a slice, then the smp allocator | one thread at a time |
//! | [`DebugAllocator`] | `la_debug` over the smp allocator | `Send + Sync`: share `&DebugAllocator` |
//!
//! Each owner hands out handles with `allocator(&self)`; a handle borrows
//! its owner, so the owner can be neither reset (`&mut self`) nor dropped
//! while a collection still uses it. Dropping an owner destroys the C
//! allocator and the memory it holds.
//!
//! ```ignore
//! use allocator_api2::vec::Vec;
//! let arena = liballoc::Arena::new();
//! let mut v = Vec::new_in(arena.allocator());
//! v.extend(0..1000);
//! ```

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::allocators::arena::{
    LA_ARENA_FREE_ALL, LA_ARENA_RETAIN_CAPACITY, LA_ARENA_RETAIN_WITH_LIMIT, la_arena,
    la_arena_allocator, la_arena_create, la_arena_destroy, la_arena_query_capacity, la_arena_reset,
    la_arena_reset_mode,
};
use crate::allocators::buffer_first::{
    la_buffer_first, la_buffer_first_allocator, la_buffer_first_init, la_buffer_first_owns,
    la_buffer_first_used,
};
use crate::allocators::debug::{
    la_check, la_debug, la_debug_allocator, la_debug_config, la_debug_create, la_debug_destroy,
    la_debug_detect_leaks, la_debug_get_stats, la_debug_stats,
};
use crate::allocators::fixed_buffer::{
    la_fixed_buffer, la_fixed_buffer_allocator, la_fixed_buffer_init, la_fixed_buffer_reset,
};
use crate::allocators::pool::{
    la_pool, la_pool_create, la_pool_create_item, la_pool_destroy, la_pool_destroy_item,
    la_pool_query_capacity, la_pool_reset,
};
use crate::allocators::smp::la_smp_allocator;
use crate::global::{dangling, slice};
use crate::vtable::{la_allocator, la_raw_alloc, la_raw_free, la_raw_remap};

/// Log2 of a layout's alignment.
#[inline(always)]
fn log2(layout: &Layout) -> u8 {
    layout.align().trailing_zeros() as u8
}

/// A borrowed `la_allocator` as an `allocator-api2` [`Allocator`]: what the
/// owners' `allocator()` return. Copy it freely; it lives as long as the
/// owner's borrow. Not `Send`: share the owner (where it is `Sync`) and take
/// a handle in each thread.
#[derive(Clone, Copy, Debug)]
pub struct AllocatorRef<'a> {
    raw: la_allocator,
    _owner: PhantomData<&'a ()>,
}

impl<'a> AllocatorRef<'a> {
    /// Wraps a C allocator.
    ///
    /// # Safety
    /// `raw` is a valid allocator that stays valid for `'a`, and may be used
    /// from whichever thread uses the handle.
    pub unsafe fn from_raw(raw: la_allocator) -> Self {
        AllocatorRef {
            raw,
            _owner: PhantomData,
        }
    }

    /// The C allocator behind the handle (for C code that takes an
    /// `la_allocator`).
    pub fn as_raw(&self) -> la_allocator {
        self.raw
    }

    /// Allocates, copies and frees: a move to a new layout.
    ///
    /// # Safety
    /// `ptr` is a live block of `old` (non-zero size) from this allocator.
    unsafe fn copy_to(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        let p = self.allocate(new)?;
        // SAFETY: two distinct live blocks, each of at least min(old, new)
        // bytes; the old one is freed once copied.
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

    /// Grows or shrinks a block to `new`: `remap` when the alignment stays
    /// (the vtable wants a block's own alignment back), else a copy.
    ///
    /// # Safety
    /// `ptr` is a block of `old` from this allocator (dangling when
    /// `old.size()` is 0).
    unsafe fn change(
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
        if new.align() == old.align() {
            // SAFETY: caller's promise: a live block of old.size() bytes
            // aligned to old.align(), the length and alignment it was
            // allocated with.
            let p = unsafe {
                la_raw_remap(
                    self.raw,
                    ptr.as_ptr().cast(),
                    old.size(),
                    log2(&old),
                    new.size(),
                    0,
                )
            };
            if !p.is_null() {
                return slice(p.cast(), new.size());
            }
        }
        // SAFETY: caller's promise.
        unsafe { self.copy_to(ptr, old, new) }
    }
}

// SAFETY: blocks come from the C allocator, which gives `len` bytes aligned
// to `1 << alignment` or NULL; free and remap are given the length and
// alignment of the block's most recent alloc or remap (the `change` rule);
// a block stays valid until freed, and the handle cannot outlive its owner.
// Zero-sized blocks are dangling and never reach the C allocator.
unsafe impl Allocator for AllocatorRef<'_> {
    #[inline]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        // SAFETY: the handle's allocator is valid while it lives.
        let p = unsafe { la_raw_alloc(self.raw, layout.size(), log2(&layout), 0) };
        slice(p.cast(), layout.size())
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: Allocator's promise: a live block of this layout.
            unsafe {
                la_raw_free(
                    self.raw,
                    ptr.as_ptr().cast(),
                    layout.size(),
                    log2(&layout),
                    0,
                )
            }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: Allocator's promise.
        unsafe { self.change(ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: Allocator's promise.
        unsafe { self.change(ptr, old, new) }
    }
}

/// How [`Arena::reset`] treats the memory the arena holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetMode {
    /// Give every buffer back.
    FreeAll,
    /// Keep one buffer as large as everything allocated so far.
    RetainCapacity,
    /// As `RetainCapacity`, keeping at most this many bytes.
    RetainWithLimit(usize),
}

impl ResetMode {
    /// The C API's mode and limit (`la_arena_reset`, `la_pool_reset`).
    fn raw(self) -> (la_arena_reset_mode, usize) {
        match self {
            ResetMode::FreeAll => (LA_ARENA_FREE_ALL, 0),
            ResetMode::RetainCapacity => (LA_ARENA_RETAIN_CAPACITY, 0),
            ResetMode::RetainWithLimit(n) => (LA_ARENA_RETAIN_WITH_LIMIT, n),
        }
    }
}

/// An arena (`la_arena`) over the smp allocator: bump allocation, every
/// block freed at once by [`Arena::reset`] or when the arena is dropped.
#[derive(Debug)]
pub struct Arena {
    raw: NonNull<la_arena>,
}

// SAFETY: the arena is safe from several threads at once over a
// thread-safe child, and its child is the smp allocator.
unsafe impl Send for Arena {}
// SAFETY: as for Send; `reset` and drop take `&mut self`/`self`.
unsafe impl Sync for Arena {}

impl Arena {
    /// A new arena; `None` when out of memory.
    pub fn try_new() -> Option<Self> {
        // SAFETY: the smp allocator is valid for the life of the process.
        let raw = unsafe { la_arena_create(la_smp_allocator()) };
        NonNull::new(raw).map(|raw| Arena { raw })
    }

    /// A new arena.
    ///
    /// # Panics
    /// When out of memory (see [`Arena::try_new`]).
    pub fn new() -> Self {
        Self::try_new().expect("liballoc: out of memory creating an arena")
    }

    /// The allocator handle for collections; valid while `self` is
    /// borrowed.
    pub fn allocator(&self) -> AllocatorRef<'_> {
        // SAFETY: the arena lives as long as the borrow, and is thread-safe.
        unsafe { AllocatorRef::from_raw(la_arena_allocator(self.raw.as_ptr())) }
    }

    /// Frees every block at once. Returns false when a retained buffer
    /// could not be resized (every block is freed all the same).
    pub fn reset(&mut self, mode: ResetMode) -> bool {
        let (mode, limit) = mode.raw();
        // SAFETY: a live arena; `&mut self` means no handle (and so no
        // block) is in use.
        unsafe { la_arena_reset(self.raw.as_ptr(), mode, limit) }
    }

    /// Bytes the arena holds from its child (`la_arena_query_capacity`).
    pub fn capacity(&self) -> usize {
        // SAFETY: a live arena.
        unsafe { la_arena_query_capacity(self.raw.as_ptr()) }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: a live arena, never used again.
        unsafe { la_arena_destroy(self.raw.as_ptr()) }
    }
}

/// A memory pool (`la_pool`) over the smp allocator: items of one size and
/// alignment, recycled in O(1). As an [`Allocator`] it serves any layout
/// that fits an item (at most the item's size and alignment) and fails for
/// larger ones, so it suits `Box`es and fixed-capacity collections.
#[derive(Debug)]
pub struct Pool {
    raw: NonNull<la_pool>,
    item: Layout,
}

// SAFETY: the pool owns its state and its child (smp) may be used from any
// thread; it is not Sync (a pool is for one thread at a time).
unsafe impl Send for Pool {}

impl Pool {
    /// A pool of items of `item`'s size and alignment; `None` when out of
    /// memory.
    pub fn try_new(item: Layout) -> Option<Self> {
        let raw = la_pool_create(la_smp_allocator(), item.size(), item.align());
        NonNull::new(raw).map(|raw| Pool { raw, item })
    }

    /// A pool of items of `item`'s size and alignment.
    ///
    /// # Panics
    /// When out of memory (see [`Pool::try_new`]).
    pub fn new(item: Layout) -> Self {
        Self::try_new(item).expect("liballoc: out of memory creating a pool")
    }

    /// A pool whose items hold a `T`.
    pub fn for_type<T>() -> Self {
        Self::new(Layout::new::<T>())
    }

    /// The layout of an item.
    pub fn item_layout(&self) -> Layout {
        self.item
    }

    /// The allocator handle for collections; valid while `self` is
    /// borrowed.
    pub fn allocator(&self) -> PoolRef<'_> {
        PoolRef { pool: self }
    }

    /// Frees every item at once (as [`Arena::reset`]).
    pub fn reset(&mut self, mode: ResetMode) -> bool {
        let (mode, limit) = mode.raw();
        // SAFETY: a live pool with no handle in use (`&mut self`).
        unsafe { la_pool_reset(self.raw.as_ptr(), mode, limit) }
    }

    /// Bytes the pool holds from its child.
    pub fn capacity(&self) -> usize {
        // SAFETY: a live pool.
        unsafe { la_pool_query_capacity(self.raw.as_ptr()) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: a live pool, never used again.
        unsafe { la_pool_destroy(self.raw.as_ptr()) }
    }
}

/// The [`Allocator`] handle of a [`Pool`].
#[derive(Clone, Copy, Debug)]
pub struct PoolRef<'a> {
    pool: &'a Pool,
}

impl PoolRef<'_> {
    fn fits(&self, layout: &Layout) -> bool {
        layout.size() <= self.pool.item.size() && layout.align() <= self.pool.item.align()
    }
}

// SAFETY: an item holds at least the pool's item size at its alignment, so
// any layout that `fits` is served by one; items stay valid until given
// back or the pool is reset or dropped, which the borrow rules out.
// PoolRef is not Send (it borrows a Pool, which is not Sync).
unsafe impl Allocator for PoolRef<'_> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        if !self.fits(&layout) {
            return Err(AllocError);
        }
        // SAFETY: a live pool, used by this thread only (PoolRef is !Send).
        let p = unsafe { la_pool_create_item(self.pool.raw.as_ptr()) };
        slice(p.cast(), layout.size())
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: Allocator's promise: a live item of this pool.
            unsafe { la_pool_destroy_item(self.pool.raw.as_ptr(), ptr.as_ptr().cast()) }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() != 0 && self.fits(&new) {
            // The item already holds the new layout.
            return Ok(NonNull::slice_from_raw_parts(ptr, new.size()));
        }
        let p = self.allocate(new)?;
        // SAFETY: Allocator's promise: ptr holds old.size() bytes (none
        // when dangling); p is a distinct block of new.size() >= old.size().
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), p.cast::<u8>().as_ptr(), old.size());
            self.deallocate(ptr, old);
        }
        Ok(p)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.size() == 0 {
            // SAFETY: Allocator's promise.
            unsafe { self.deallocate(ptr, old) };
            return Ok(dangling(new));
        }
        if self.fits(&new) {
            return Ok(NonNull::slice_from_raw_parts(ptr, new.size()));
        }
        Err(AllocError)
    }
}

/// A fixed-buffer allocator (`la_fixed_buffer`) over a borrowed slice:
/// bump allocation; only the latest block grows in place or is freed.
pub struct FixedBuffer<'buf> {
    state: UnsafeCell<la_fixed_buffer>,
    _buf: PhantomData<&'buf mut [u8]>,
}

impl<'buf> FixedBuffer<'buf> {
    /// An allocator over `buf` (which it borrows mutably until dropped).
    pub fn new(buf: &'buf mut [u8]) -> Self {
        let mut state = la_fixed_buffer {
            buffer: ptr::null_mut(),
            len: 0,
            end_index: 0,
        };
        // SAFETY: `state` is writable; `buf` is borrowed for 'buf, longer
        // than any block (blocks borrow `self`).
        unsafe { la_fixed_buffer_init(&mut state, buf.as_mut_ptr().cast(), buf.len()) };
        FixedBuffer {
            state: UnsafeCell::new(state),
            _buf: PhantomData,
        }
    }

    /// The allocator handle for collections; valid while `self` is
    /// borrowed (and `self` cannot move meanwhile).
    pub fn allocator(&self) -> AllocatorRef<'_> {
        // SAFETY: the state lives (unmoved) as long as the borrow; the
        // handle is !Send and FixedBuffer is !Sync, so one thread uses it.
        unsafe { AllocatorRef::from_raw(la_fixed_buffer_allocator(self.state.get())) }
    }

    /// Bytes handed out so far.
    pub fn used(&self) -> usize {
        // SAFETY: read on the owning thread, no call in progress.
        unsafe { (*self.state.get()).end_index }
    }

    /// Frees every block at once.
    pub fn reset(&mut self) {
        // SAFETY: initialised state; `&mut self`: no block is in use.
        unsafe { la_fixed_buffer_reset(self.state.get_mut()) }
    }
}

/// A buffer-first allocator (`la_buffer_first`): blocks from a borrowed
/// slice while it has room, then from the smp allocator.
pub struct BufferFirst<'buf> {
    state: UnsafeCell<la_buffer_first>,
    _buf: PhantomData<&'buf mut [u8]>,
}

impl<'buf> BufferFirst<'buf> {
    /// An allocator over `buf`, falling back to the smp allocator.
    pub fn new(buf: &'buf mut [u8]) -> Self {
        let mut state = la_buffer_first {
            buffer: ptr::null_mut(),
            len: 0,
            end_index: 0,
            fallback: la_allocator::NULL,
        };
        // SAFETY: `state` is writable; `buf` outlives every block (they
        // borrow `self`); the smp allocator lives for the process.
        unsafe {
            la_buffer_first_init(
                &mut state,
                buf.as_mut_ptr().cast(),
                buf.len(),
                la_smp_allocator(),
            )
        };
        BufferFirst {
            state: UnsafeCell::new(state),
            _buf: PhantomData,
        }
    }

    /// The allocator handle for collections; valid while `self` is
    /// borrowed.
    pub fn allocator(&self) -> AllocatorRef<'_> {
        // SAFETY: as for FixedBuffer::allocator.
        unsafe { AllocatorRef::from_raw(la_buffer_first_allocator(self.state.get())) }
    }

    /// Whether `p` lies in the buffer (rather than in the fallback).
    pub fn owns(&self, p: *const u8) -> bool {
        // SAFETY: initialised state, read on the owning thread.
        unsafe { la_buffer_first_owns(self.state.get(), p.cast::<c_void>()) }
    }

    /// Bytes of the buffer handed out.
    pub fn used(&self) -> usize {
        // SAFETY: initialised state, read on the owning thread.
        unsafe { la_buffer_first_used(self.state.get()) }
    }
}

/// A debug allocator (`la_debug`) over the smp allocator: traces, leak
/// reports, double-free and overflow detection. Dropping it reports leaks
/// (to the configured fd) and frees everything.
#[derive(Debug)]
pub struct DebugAllocator {
    raw: NonNull<la_debug>,
}

// SAFETY: a debug allocator may be used from any thread at once (one lock
// per instance) over a backing callable from any thread (smp).
unsafe impl Send for DebugAllocator {}
// SAFETY: as for Send.
unsafe impl Sync for DebugAllocator {}

impl DebugAllocator {
    /// A debug allocator with `cfg` (`None`: the defaults); `None` when out
    /// of memory.
    pub fn try_new(cfg: Option<&la_debug_config>) -> Option<Self> {
        let cfg = cfg.map_or(ptr::null(), |c| c as *const la_debug_config);
        // SAFETY: smp is valid for the process; cfg is NULL or a config.
        let raw = unsafe { la_debug_create(la_smp_allocator(), cfg) };
        NonNull::new(raw).map(|raw| DebugAllocator { raw })
    }

    /// A debug allocator with the default configuration.
    ///
    /// # Panics
    /// When out of memory (see [`DebugAllocator::try_new`]).
    pub fn new() -> Self {
        Self::try_new(None).expect("liballoc: out of memory creating a debug allocator")
    }

    /// A debug allocator with `cfg`.
    ///
    /// # Panics
    /// When out of memory.
    pub fn with_config(cfg: &la_debug_config) -> Self {
        Self::try_new(Some(cfg)).expect("liballoc: out of memory creating a debug allocator")
    }

    /// The allocator handle for collections; valid while `self` is
    /// borrowed.
    pub fn allocator(&self) -> AllocatorRef<'_> {
        // SAFETY: the instance lives as long as the borrow and is
        // thread-safe.
        unsafe { AllocatorRef::from_raw(la_debug_allocator(self.raw.as_ptr())) }
    }

    /// Prints a leak report of the live blocks; true when there are any.
    pub fn detect_leaks(&self) -> bool {
        // SAFETY: a live instance.
        unsafe { la_debug_detect_leaks(self.raw.as_ptr()) }
    }

    /// The counters (live bytes and blocks, peaks, misuse reports).
    pub fn stats(&self) -> la_debug_stats {
        let mut s = core::mem::MaybeUninit::<la_debug_stats>::uninit();
        // SAFETY: a live instance; `s` is writable and filled by the call.
        unsafe {
            la_debug_get_stats(self.raw.as_ptr(), s.as_mut_ptr());
            s.assume_init()
        }
    }

    /// Destroys the allocator, reporting writes after free and leaks;
    /// `LA_CHECK_LEAK` when blocks were still live.
    pub fn finish(self) -> la_check {
        let raw = self.raw;
        core::mem::forget(self);
        // SAFETY: a live instance, never used again (self is forgotten).
        unsafe { la_debug_destroy(raw.as_ptr()) }
    }
}

impl Default for DebugAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DebugAllocator {
    fn drop(&mut self) {
        // SAFETY: a live instance, never used again.
        unsafe { la_debug_destroy(self.raw.as_ptr()) };
    }
}
