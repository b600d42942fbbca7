//! Stack traces for the heap profiler's samples, through code built without
//! frame pointers: the diagnostics runtime's call-frame unwinder
//! (`diag::cfi`, which remembers each code address's rule), libgcc's DWARF
//! unwinder (`_Unwind_Backtrace`) for the frames that one does not read
//! (signal frames, unusual rules), both cached by the frame-pointer walk of
//! the same stack, and the debug allocator's frame-pointer walk as the
//! last fallback. libgcc's unwinder is linked into the shim from libgcc's
//! static part (`-static-libgcc`, see mk/preload.mk), so a process does
//! not load libgcc_s for it.
//!
//! Why `diag::cfi` first: libgcc decodes every frame of every trace from
//! the tables (about 1,700 instructions a frame, cold or not); `diag::cfi`
//! decodes a code address once per process (about 1,300 instructions) and
//! then finds its row in a cache (about 60 a frame). The frames of a
//! process's traces repeat (its `main`, its loops, the C library's
//! start), so a short process that takes a few samples decodes about half
//! of what libgcc would, and a long one almost nothing.
//!
//! Why unwinders, and why they are safe here:
//! - Debian's libc, python and most distribution libraries are built
//!   without frame pointers; a frame-pointer walk silently skips or stops
//!   at their frames. The unwinder reads each frame's call-frame
//!   information (`.eh_frame`), which every x86-64 and aarch64 object has.
//! - They are slow next to a frame-pointer walk (a table lookup and a
//!   small interpreter per frame decoded), but they run only for a sampled
//!   allocation, about once per `rate` bytes (512 KiB by default).
//! - They take no lock of their own that `fork()` could leave held: frame
//!   lookups go through `_dl_find_object` (glibc 2.35 and later) or
//!   `dl_iterate_phdr`, whose loader lock is recursive (a thread that holds
//!   it, inside `dlopen`, may unwind) and reset in the child of `fork()`.
//!   The shim's `malloc` takes no lock at all, so nothing can invert with it.
//! - libgcc's may call `malloc` (the registry of frame tables registered
//!   with `__register_frame_info`). The caller ([`super::profile`]) sets a
//!   per-thread guard around [`capture`]: an allocation made while this
//!   thread unwinds is served but never sampled, so the unwinder never
//!   re-enters itself.
//!
//! Where the frame-pointer walk suffices. Each sample first walks the
//! frame-pointer chain (a few nanoseconds a frame) until it ends (a zero
//! frame pointer, as `_start` and `clone` leave it) or breaks (a frame
//! whose code uses the register for something else, as Debian's libc
//! does in `start_thread`). Its return addresses and the depth in the
//! stack where it stopped are hashed into a key; a cache of [`CACHE`]
//! entries maps keys to the unwinder's traces (their ids in the profiler's
//! trace store, so a hit neither unwinds nor stores), so a hot allocation
//! site pays for the unwinder once. A trace is cached only when the walk's
//! frames are exactly the first frames of the unwinder's trace: a walk
//! that skipped or misread a frame (code without frame pointers in the
//! middle of the chain, as in most of python) is never trusted, and such
//! call paths are unwound every time. What the cache cannot tell apart:
//! two call paths that agree on every frame up to a break, at the same
//! depth, and differ only beyond it (code without frame pointers calling
//! back into code with them, from two callers); they share the trace seen
//! first.
//!
//! The trace starts at the first frame outside the shim's own code (the
//! innermost caller of `malloc`), as return addresses.

use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;

use super::profile::MAX_FRAMES;
use crate::diag::seqcache::SeqCache;
use crate::diag::{cfi, trace};

/// Entries of the trace cache (a power of two).
const CACHE: usize = 4096;

/// The trace cache: the frame-pointer walk's hash (never 0) to the id the
/// trace store gave the unwinder's trace, plus one. Ids never change once
/// given, so an entry never goes stale.
static TRACES: SeqCache<CACHE> = SeqCache::new();

/// Maps the trace cache (lazily touched); false when it cannot be mapped
/// (then every sample unwinds).
pub fn init() -> bool {
    // Without its row cache, the call-frame unwinder decodes every frame.
    cfi::init();
    TRACES.init()
}

/// What [`fp_walk`] found.
struct Walked {
    /// Frames written.
    n: usize,
    /// The key of the trace cache (never 0).
    key: u64,
    /// The frame record that holds the first frame's return address: the
    /// record of the shim's outermost frame (its caller's frame pointer,
    /// then the return address into the program).
    record: usize,
}

/// The frame-pointer walk from the caller's frame, without the shim's own
/// frames, until the chain ends or breaks: the frames, and a key hashing
/// them and the depth of the last frame read; `None` when no frame outside
/// the shim was found.
#[inline(never)]
fn fp_walk(out: &mut [MaybeUninit<usize>; MAX_FRAMES]) -> Option<Walked> {
    let mut fp = trace::frame_pointer();
    let (lo, hi) = trace::stack_bounds(fp);
    // This function's own record returns into the shim (its caller):
    // start at the caller's record (one frame less to test).
    if fp >= lo && fp.saturating_add(16) <= hi && fp.is_multiple_of(8) {
        // SAFETY: [fp, fp + 8) lies within the current thread's stack.
        let next = unsafe { *(fp as *const usize) };
        if next > fp {
            fp = next;
        }
    }
    let own = trace::own_code();
    let mut n = 0;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut last = fp;
    let mut record = 0;
    loop {
        if fp < lo || fp.saturating_add(16) > hi || !fp.is_multiple_of(8) {
            break;
        }
        last = fp;
        // SAFETY: [fp, fp + 16) lies within the current thread's stack.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        if n > 0 || !own.contains(ret) {
            if n == MAX_FRAMES {
                break;
            }
            if n == 0 {
                record = fp;
            }
            out[n].write(ret);
            n += 1;
            h = (h ^ ret as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        if next == 0 {
            break;
        }
        if next <= fp {
            break;
        }
        fp = next;
    }
    if n == 0 {
        return None;
    }
    h = (h ^ hi.wrapping_sub(last) as u64).wrapping_mul(0x0000_0100_0000_01b3);
    Some(Walked {
        n,
        key: (h ^ (h >> 29)) | 1,
        record,
    })
}

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

/// The id of the current call chain's trace (return addresses, without
/// the shim's own frames) in the caller's trace store, `intern`, which
/// stores a trace and gives its id (`None`: no room). From the cache when
/// the frame-pointer walk finds its key there (no unwinding, no storing),
/// else from the unwinder's trace (see the module doc). Neither buffer is
/// cleared first: the walk's holds what it wrote, and the unwinder's is
/// set up only on a miss.
///
/// The caller must hold the per-thread re-entrancy guard (see the module
/// doc) and must have called [`trace::init`].
///
/// Inlined into its caller, as [`unwind_and_store`] is into it: every
/// frame of the shim between the unwinder and the program is a frame an
/// unwinder decodes only to skip it (once per process for `diag::cfi`,
/// every time for libgcc's).
#[inline(always)]
pub fn capture_id(intern: impl Fn(&[usize]) -> Option<u32>) -> Option<u32> {
    let mut walk = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
    let Some(walked) = fp_walk(&mut walk) else {
        return unwind_and_store(&intern, &[], None);
    };
    // SAFETY: fp_walk wrote the first `walked.n` entries; MaybeUninit<usize>
    // has the layout of usize.
    let walk = unsafe { core::slice::from_raw_parts(walk.as_ptr().cast::<usize>(), walked.n) };
    if let Some(id) = TRACES.lookup(walked.key) {
        return Some((id - 1) as u32);
    }
    unwind_and_store(&intern, walk, Some((walked.key, walked.record)))
}

/// [`capture_id`]'s miss: unwinds, stores the trace, and caches its id
/// under the walk's `key` when the frame-pointer walk (`walk`) agrees with
/// the unwinder on every frame it found. Inlined (see [`capture_id`]).
#[inline(always)]
fn unwind_and_store(
    intern: &impl Fn(&[usize]) -> Option<u32>,
    walk: &[usize],
    found: Option<(u64, usize)>,
) -> Option<u32> {
    let mut out = [0usize; MAX_FRAMES];
    let n = unwind(&mut out, found.map_or(0, |(_, record)| record));
    let id = intern(&out[..n])?;
    let Some((key, _)) = found else {
        return Some(id);
    };
    let walked = walk.len();
    if n == 0 || n < walked || out[..walked] != *walk {
        // The walk missed or misread a frame: not a key to trust.
        return Some(id);
    }
    TRACES.store(key, u64::from(id) + 1);
    Some(id)
}

/// The unwinder's trace: the diagnostics runtime's call-frame unwinder
/// (`diag::cfi`, its rows cached), libgcc's for the frames it does not
/// read, the frame-pointer walk when neither finds a frame.
///
/// `record` (0: none) is the frame record of the shim's outermost frame,
/// found by the frame-pointer walk: the call-frame unwinder then starts
/// at the program's frame it returns to, without decoding the shim's own
/// frames (each a decode of about 1,300 instructions once per process).
/// Every frame of the shim has a frame record (`.cargo/config.toml`, and
/// `-fno-omit-frame-pointer` for its C), so the record's return address is
/// the program's frame and the stack pointer there is just above it.
fn unwind(out: &mut [usize], record: usize) -> usize {
    if out.is_empty() {
        return 0;
    }
    let from = if record == 0 {
        cfi::backtrace(out, trace::is_own)
    } else {
        // SAFETY: fp_walk read these two words inside this thread's stack.
        let (saved, ret) = unsafe { (*(record as *const usize), *((record + 8) as *const usize)) };
        cfi::backtrace_from(out, ret, record + 16, saved)
    };
    if let Some(n) = from
        && n > 0
    {
        return n;
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
