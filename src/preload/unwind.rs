//! Stack traces for the heap profiler's samples, through code built without
//! frame pointers: libgcc's DWARF unwinder (`_Unwind_Backtrace`), with the
//! frame-pointer walk of the debug allocator as the fallback.
//!
//! Why the unwinder, and why it is safe here:
//! - Debian's libc, python and most distribution libraries are built
//!   without frame pointers; a frame-pointer walk silently skips or stops
//!   at their frames. The unwinder reads each frame's call-frame
//!   information (`.eh_frame`), which every x86-64 and aarch64 object has.
//! - It is slow next to a frame-pointer walk (a table lookup and a small
//!   interpreter per frame), but it runs only for a sampled allocation,
//!   about once per `rate` bytes (512 KiB by default).
//! - It takes no lock of its own that `fork()` could leave held: frame
//!   lookups go through `_dl_find_object` (glibc 2.35 and later) or
//!   `dl_iterate_phdr`, whose loader lock is recursive (a thread that holds
//!   it, inside `dlopen`, may unwind) and reset in the child of `fork()`.
//!   The shim's `malloc` takes no lock at all, so nothing can invert with it.
//! - It may call `malloc` (the registry of frame tables registered with
//!   `__register_frame_info`). The caller ([`super::profile`]) sets a
//!   per-thread guard around [`capture`]: an allocation made while this
//!   thread unwinds is served but never sampled, so the unwinder never
//!   re-enters itself.
//!
//! The trace starts at the first frame outside the shim's own code (the
//! innermost caller of `malloc`), as return addresses.

use core::ffi::{c_int, c_void};

use crate::allocators::debug::trace;

/// `_URC_NO_REASON`: go on to the next frame.
const URC_NO_REASON: c_int = 0;
/// `_URC_END_OF_STACK`: returned by the callback to stop the walk.
const URC_END_OF_STACK: c_int = 5;

type TraceFn = extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int;

unsafe extern "C" {
    fn _Unwind_Backtrace(trace: TraceFn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(ctx: *mut c_void) -> usize;
}

/// The state of one walk, handed to [`step`].
struct Walk<'a> {
    out: &'a mut [usize],
    n: usize,
    /// Whether the shim's own frames are behind.
    started: bool,
}

extern "C" fn step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Walk` that `capture` passed, alive for the
    // whole walk and reached by this thread only.
    let w = unsafe { &mut *arg.cast::<Walk<'_>>() };
    // SAFETY: `ctx` is the unwinder's context for the current frame.
    let ip = unsafe { _Unwind_GetIP(ctx) };
    if ip == 0 || w.n >= w.out.len() {
        return URC_END_OF_STACK;
    }
    if !w.started {
        if trace::is_own(ip) {
            return URC_NO_REASON;
        }
        w.started = true;
    }
    w.out[w.n] = ip;
    w.n += 1;
    if w.n == w.out.len() {
        URC_END_OF_STACK
    } else {
        URC_NO_REASON
    }
}

/// Captures the return addresses of the current call chain, without the
/// shim's own frames, into `out`; returns how many were written. Falls back
/// to the frame-pointer walk when the unwinder finds no frame.
///
/// The caller must hold the per-thread re-entrancy guard (see the module
/// doc) and must have called [`trace::init`].
#[inline(never)]
pub fn capture(out: &mut [usize]) -> usize {
    if out.is_empty() {
        return 0;
    }
    let mut w = Walk {
        out,
        n: 0,
        started: false,
    };
    // SAFETY: `step` only touches `w`, which outlives the call.
    unsafe { _Unwind_Backtrace(step, (&raw mut w).cast()) };
    let n = w.n;
    if n > 0 {
        return n;
    }
    trace::capture(out, 0)
}
