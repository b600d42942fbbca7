//! Allocators that fail on purpose, so that out-of-memory paths can be
//! tested.
//!
//! - `la_always_failing_allocator()` is Zig's `Allocator.failing`: every
//!   alloc, resize and remap fails and free does nothing (its vtable is made
//!   of the `la_no_*` entries).
//! - `la_failing` is Zig's `std.testing.FailingAllocator`: it passes calls
//!   through to a child allocator and counts them, failing the allocation
//!   numbered `fail_index` (counting successful allocations from 0) and every
//!   later one, and likewise every resize/remap once `resize_fail_index`
//!   successful resizes/remaps have happened. Its counters follow Zig exactly:
//!   an alloc adds `len` to `allocated_bytes`; a successful resize or remap
//!   adds the growth to `allocated_bytes` or the shrinkage to `freed_bytes`;
//!   a free adds `len` to `freed_bytes` and one to `deallocations`.
//!   Like Zig's, it records the stack trace of the first failure it
//!   induces (`la_failing_get_stack_trace`), captured by the diagnostics
//!   runtime's frame-pointer walk (`diag::trace`, no allocation).

use core::cell::Cell;
use core::ptr;

use libc::size_t;

use crate::diag::trace;
use crate::vtable::{
    ChildAllocator, RawAllocator, la_allocator, la_no_alloc, la_no_free, la_no_remap, la_no_resize,
    la_vtable, vtable_of,
};

static ALWAYS_FAILING_VTABLE: la_vtable = la_vtable {
    alloc: Some(la_no_alloc),
    resize: Some(la_no_resize),
    remap: Some(la_no_remap),
    free: Some(la_no_free),
};

/// An allocator that always fails (Zig's `Allocator.failing`): alloc and
/// remap return NULL, resize returns false, free does nothing.
///
/// Parameters: none.
///
/// Returns: the allocator (stateless; the value may be copied freely); its
/// vtable is never NULL, every allocation through it is.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_always_failing_allocator() -> la_allocator {
    la_allocator {
        ptr: ptr::null_mut(),
        vtable: &ALWAYS_FAILING_VTABLE,
    }
}

/// Counters of an `la_failing` allocator, filled by `la_failing_get_stats`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct la_failing_stats {
    /// Successful allocations.
    pub allocations: size_t,
    /// Frees passed to the child.
    pub deallocations: size_t,
    /// Bytes allocated, plus growth from successful resizes/remaps.
    pub allocated_bytes: size_t,
    /// Bytes freed, plus shrinkage from successful resizes/remaps.
    pub freed_bytes: size_t,
    /// Whether an allocation has been made to fail on purpose.
    pub has_induced_failure: bool,
}

/// A failing allocator (Zig's `std.testing.FailingAllocator`); opaque, made
/// by `la_failing_create`.
#[allow(non_camel_case_types)]
pub struct la_failing {
    child: ChildAllocator,
    alloc_index: Cell<usize>,
    resize_index: Cell<usize>,
    fail_index: usize,
    resize_fail_index: usize,
    allocations: Cell<usize>,
    deallocations: Cell<usize>,
    allocated_bytes: Cell<usize>,
    freed_bytes: Cell<usize>,
    has_induced_failure: Cell<bool>,
    /// Return addresses of the first induced failure's trace (innermost
    /// first) and how many there are.
    stack: [Cell<usize>; LA_FAILING_MAX_FRAMES],
    stack_len: Cell<usize>,
}

/// Most frames `la_failing_get_stack_trace` gives (Zig keeps 16 too).
pub const LA_FAILING_MAX_FRAMES: usize = 16;

static FAILING_VTABLE: la_vtable = vtable_of::<la_failing>();

/// Adds to a counter, wrapping as Zig's release builds would overflow.
#[inline]
fn bump(c: &Cell<usize>, by: usize) {
    c.set(c.get().wrapping_add(by));
}

impl la_failing {
    /// A failing allocator over `child` (see `la_failing_create`), held by
    /// the caller rather than allocated from the child. Call
    /// [`trace::init`] first, outside any allocator.
    pub(crate) fn new(child: ChildAllocator, fail_index: usize, resize_fail_index: usize) -> Self {
        la_failing {
            child,
            alloc_index: Cell::new(0),
            resize_index: Cell::new(0),
            fail_index,
            resize_fail_index,
            allocations: Cell::new(0),
            deallocations: Cell::new(0),
            allocated_bytes: Cell::new(0),
            freed_bytes: Cell::new(0),
            has_induced_failure: Cell::new(false),
            stack: [const { Cell::new(0) }; LA_FAILING_MAX_FRAMES],
            stack_len: Cell::new(0),
        }
    }

    /// The allocator face of this instance.
    pub(crate) fn allocator(&self) -> la_allocator {
        la_allocator::of_handle(
            self as *const la_failing as *mut la_failing,
            &FAILING_VTABLE,
        )
    }

    /// Successful allocations so far.
    pub(crate) fn allocations(&self) -> usize {
        self.allocations.get()
    }

    /// Whether an allocation was made to fail on purpose.
    pub(crate) fn has_induced_failure(&self) -> bool {
        self.has_induced_failure.get()
    }

    /// Copies the first induced failure's trace into `out`; returns the
    /// frames copied (0 when no failure was induced).
    pub(crate) fn stack_trace(&self, out: &mut [usize]) -> usize {
        let n = self.stack_len.get().min(out.len());
        for (d, s) in out.iter_mut().zip(&self.stack[..n]) {
            *d = s.get();
        }
        n
    }

    /// Marks a failure induced, capturing its trace the first time.
    #[cold]
    fn induce(&self, ret_addr: usize) {
        if self.has_induced_failure.replace(true) {
            return;
        }
        let mut tr = [0usize; LA_FAILING_MAX_FRAMES];
        let n = trace::capture(&mut tr, ret_addr);
        debug_assert!(n <= LA_FAILING_MAX_FRAMES);
        for (d, &a) in self.stack.iter().zip(&tr[..n]) {
            d.set(a);
        }
        self.stack_len.set(n);
    }

    /// Counts a successful resize or remap from `len` to `new_len`.
    fn count_resize(&self, len: usize, new_len: usize) {
        if new_len < len {
            bump(&self.freed_bytes, len - new_len);
        } else {
            bump(&self.allocated_bytes, new_len - len);
        }
        bump(&self.resize_index, 1);
    }
}

// SAFETY: every block is the child's, returned unchanged; success is
// reported only when the child succeeded.
unsafe impl RawAllocator for la_failing {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        if self.alloc_index.get() == self.fail_index {
            self.induce(ret_addr);
            return ptr::null_mut();
        }
        // SAFETY: the child is valid (checked at create) and, by this
        // allocator's contract, used from one thread at a time.
        let Some(p) = (unsafe { self.child.alloc(len, alignment, ret_addr) }) else {
            return ptr::null_mut();
        };
        bump(&self.allocated_bytes, len);
        bump(&self.allocations, 1);
        bump(&self.alloc_index, 1);
        p.as_ptr()
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        if self.resize_index.get() == self.resize_fail_index {
            return false;
        }
        // SAFETY: memory is a live block of the child (vtable promise).
        if !unsafe { self.child.resize(memory, len, alignment, new_len, ret_addr) } {
            return false;
        }
        self.count_resize(len, new_len);
        true
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        if self.resize_index.get() == self.resize_fail_index {
            return ptr::null_mut();
        }
        // SAFETY: memory is a live block of the child (vtable promise).
        let Some(p) = (unsafe { self.child.remap(memory, len, alignment, new_len, ret_addr) })
        else {
            return ptr::null_mut();
        };
        self.count_resize(len, new_len);
        p.as_ptr()
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: memory is a live block of the child (vtable promise).
        unsafe { self.child.free(memory, len, alignment, ret_addr) };
        bump(&self.deallocations, 1);
        bump(&self.freed_bytes, len);
    }
}

/// Log2 alignment of `la_failing`, for allocating it from the child.
const STATE_ALIGN: u8 = core::mem::align_of::<la_failing>().trailing_zeros() as u8;

/// Creates a failing allocator over `child` (Zig's `FailingAllocator.init`).
/// The state itself is allocated from `child`.
///
/// Parameters: `child` the allocator calls are passed to; `fail_index` the
/// number of allocations that succeed before every further one fails;
/// `resize_fail_index` the number of resizes/remaps that succeed before every
/// further one fails. `SIZE_MAX` for either means never.
///
/// Returns: the handle, or NULL when `child` has a NULL vtable or cannot
/// allocate the state.
///
/// Thread safety: the allocator is not thread-safe (as in Zig): use it from
/// one thread at a time.
///
/// # Safety
/// `child` is a valid allocator (or has a NULL vtable) that outlives the
/// handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_failing_create(
    child: la_allocator,
    fail_index: size_t,
    resize_fail_index: size_t,
) -> *mut la_failing {
    let child = ChildAllocator(child);
    if !child.is_valid() {
        return ptr::null_mut();
    }
    trace::init();
    // SAFETY: the child is valid (caller's promise); the request is a
    // positive size with the state's alignment.
    let Some(mem) = (unsafe { child.alloc(size_of::<la_failing>(), STATE_ALIGN, 0) }) else {
        return ptr::null_mut();
    };
    let f = mem.as_ptr().cast::<la_failing>();
    // SAFETY: fresh, suitably aligned storage of the state's size.
    unsafe { f.write(la_failing::new(child, fail_index, resize_fail_index)) };
    f
}

/// The allocator face of a failing allocator.
///
/// Parameters: `f` a handle from `la_failing_create`.
///
/// Returns: the allocator, valid until `la_failing_destroy(f)`. NULL: a NULL
/// `f` gives an allocator with a NULL vtable, whose every call fails.
///
/// Thread safety: the allocator is not thread-safe: one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn la_failing_allocator(f: *mut la_failing) -> la_allocator {
    la_allocator::of_handle(f, &FAILING_VTABLE)
}

/// Copies the counters of `f` into `*out`.
///
/// Parameters: `f` a handle; `out` where to write the counters.
///
/// NULL: a NULL `out` does nothing; a NULL `f` writes all-zero counters.
///
/// Thread safety: not thread-safe with calls through the allocator.
///
/// # Safety
/// `f` is NULL or a live handle; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_failing_get_stats(f: *const la_failing, out: *mut la_failing_stats) {
    if out.is_null() {
        return;
    }
    // SAFETY: f is NULL or live (caller's promise).
    let stats = match unsafe { f.as_ref() } {
        Some(f) => la_failing_stats {
            allocations: f.allocations.get(),
            deallocations: f.deallocations.get(),
            allocated_bytes: f.allocated_bytes.get(),
            freed_bytes: f.freed_bytes.get(),
            has_induced_failure: f.has_induced_failure.get(),
        },
        None => la_failing_stats::default(),
    };
    // SAFETY: out is non-null and writable (caller's promise).
    unsafe { out.write(stats) }
}

/// Copies the stack trace of the first allocation `f` made fail (Zig's
/// `FailingAllocator.getStackTrace`): return addresses, innermost first,
/// up to `LA_FAILING_MAX_FRAMES` frames.
///
/// Parameters: `f` a handle; `out_frames` where to write the addresses;
/// `out_len` how many fit there.
///
/// Returns: the number of addresses written (at most `out_len`); 0 when no
/// failure was induced yet. NULL: a NULL `f` or `out_frames` writes nothing
/// and returns 0.
///
/// Thread safety: not thread-safe with calls through the allocator.
///
/// # Safety
/// `f` is NULL or a live handle; `out_frames` is NULL or writable for
/// `out_len` addresses.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_failing_get_stack_trace(
    f: *const la_failing,
    out_frames: *mut usize,
    out_len: size_t,
) -> size_t {
    // SAFETY: f is NULL or live (caller's promise).
    let Some(f) = (unsafe { f.as_ref() }) else {
        return 0;
    };
    if out_frames.is_null() {
        return 0;
    }
    // SAFETY: writable for out_len addresses (caller's promise).
    let out = unsafe { core::slice::from_raw_parts_mut(out_frames, out_len) };
    f.stack_trace(out)
}

/// Destroys a failing allocator, returning its state to the child. Blocks
/// still live belong to the child and are not freed.
///
/// Parameters: `f` a handle. NULL: does nothing.
///
/// Thread safety: not thread-safe; the allocator must no longer be in use.
///
/// # Safety
/// `f` is NULL or a live handle, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_failing_destroy(f: *mut la_failing) {
    if f.is_null() {
        return;
    }
    // SAFETY: f is live (caller's promise); the child is copied out before
    // the state's memory is returned to it.
    unsafe {
        let child = (*f).child;
        child.free(f.cast(), size_of::<la_failing>(), STATE_ALIGN, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::c::la_c_allocator;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

    fn stats(f: *const la_failing) -> la_failing_stats {
        let mut s = la_failing_stats::default();
        // SAFETY: f is live, s writable.
        unsafe { la_failing_get_stats(f, &mut s) };
        s
    }

    #[test]
    fn fail_on_allocation() {
        // SAFETY: blocks used within their lengths and freed once.
        unsafe {
            let f = la_failing_create(la_c_allocator(), 2, usize::MAX);
            let a = la_failing_allocator(f);
            let x = la_raw_alloc(a, 4, 2, 0);
            let y = la_raw_alloc(a, 4, 2, 0);
            assert!(!x.is_null() && !y.is_null());
            assert!(!stats(f).has_induced_failure);
            let mut tr = [0usize; LA_FAILING_MAX_FRAMES];
            assert_eq!(la_failing_get_stack_trace(f, tr.as_mut_ptr(), tr.len()), 0);
            assert!(la_raw_alloc(a, 4, 2, 0).is_null());
            assert!(la_raw_alloc(a, 1, 0, 0).is_null());
            assert!(stats(f).has_induced_failure);
            // The first induced failure's trace is kept: it starts in
            // this test (the caller of `la_raw_alloc`).
            let n = la_failing_get_stack_trace(f, tr.as_mut_ptr(), tr.len());
            assert!(n >= 1 && tr[..n].iter().all(|&a| a != 0), "{n}");
            assert_eq!(la_failing_get_stack_trace(f, tr.as_mut_ptr(), 1), 1);
            assert_eq!(la_failing_get_stack_trace(f, core::ptr::null_mut(), 4), 0);
            assert_eq!(
                la_failing_get_stack_trace(core::ptr::null(), tr.as_mut_ptr(), 4),
                0
            );
            la_raw_free(a, x, 4, 2, 0);
            la_raw_free(a, y, 4, 2, 0);
            let s = stats(f);
            assert_eq!((s.allocations, s.deallocations), (2, 2));
            assert_eq!((s.allocated_bytes, s.freed_bytes), (8, 8));
            la_failing_destroy(f);
        }
    }

    #[test]
    fn fail_on_resize() {
        // SAFETY: as above.
        unsafe {
            let f = la_failing_create(la_c_allocator(), usize::MAX, 1);
            let a = la_failing_allocator(f);
            let p = la_raw_alloc(a, 8, 0, 0);
            let q = la_raw_remap(a, p, 8, 0, 6, 0);
            assert_eq!(p, q);
            assert!(la_raw_remap(a, q, 6, 0, 4, 0).is_null());
            assert!(!la_raw_resize(a, q, 6, 0, 4, 0));
            la_raw_free(a, q, 6, 0, 0);
            let s = stats(f);
            assert_eq!(s.allocated_bytes, 8);
            assert_eq!(s.freed_bytes, 2 + 6);
            assert!(!s.has_induced_failure);
            la_failing_destroy(f);
        }
    }

    #[test]
    fn always_failing() {
        let a = la_always_failing_allocator();
        // SAFETY: calls that must fail without touching memory.
        unsafe {
            assert!(la_raw_alloc(a, 1, 0, 0).is_null());
            let mut x = 0u8;
            let p = (&raw mut x).cast();
            assert!(!la_raw_resize(a, p, 1, 0, 1, 0));
            assert!(la_raw_remap(a, p, 1, 0, 1, 0).is_null());
            la_raw_free(a, p, 1, 0, 0);
        }
    }

    #[test]
    fn null_handles() {
        // SAFETY: NULL is accepted everywhere.
        unsafe {
            assert!(la_failing_create(la_allocator::NULL, 0, 0).is_null());
            la_failing_destroy(ptr::null_mut());
            assert_eq!(stats(ptr::null()), la_failing_stats::default());
            la_failing_get_stats(ptr::null(), ptr::null_mut());
            assert!(la_raw_alloc(la_failing_allocator(ptr::null_mut()), 1, 0, 0).is_null());
            // A child that cannot allocate the state.
            assert!(la_failing_create(la_always_failing_allocator(), 0, 0).is_null());
        }
    }
}
