//! Stack-trace capture without allocating: a frame-pointer walk.
//!
//! The walk starts at this function's own frame and follows the saved frame
//! pointers, collecting return addresses. The crate is built with
//! `-C force-frame-pointers=yes` (`.cargo/config.toml`) and C code with
//! `-fno-omit-frame-pointer`, so the chain is intact through the library and
//! through programs built that way; frames of code built without frame
//! pointers are skipped over or end the walk, unless the call-frame
//! unwinder was asked to take over where the walk stops
//! ([`set_unwind_tables`], the debug mode's `LA_DEBUG_UNWIND`).
//! Every step is checked against
//! the current thread's stack bounds (for the main thread, from its
//! current page to the stack's end recorded at start-up, checked mapped;
//! for other stacks, read once from `/proc/self/maps`), so a broken chain
//! stops the walk instead of faulting.
//!
//! The allocator's own frames are dropped: the trace starts at the caller's
//! return address when the caller passed one (`ret_addr` of the vtable) and
//! it appears in the walk; otherwise leading frames inside the library's own
//! code (its executable segments, found with `dl_iterate_phdr` at init) are
//! skipped. An entry point of the library that knows its own frame returns
//! to the user (the malloc shim's `malloc`, `free`, ...) passes that frame
//! instead ([`entry_frame`]): the walk then starts there, with no library
//! frames to walk through and skip.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{depot, maps};
use crate::sys::loader;

/// Most frames a trace can hold.
pub(crate) const MAX_FRAMES: usize = 32;

/// Frames walked beyond the wanted count, to make room for skipped ones.
const EXTRA: usize = 16;

/// The library's own executable range `[OWN_LO, OWN_LO + OWN_SPAN)` (0, 0
/// when unknown or when the library is linked into the main program).
static OWN_LO: AtomicUsize = AtomicUsize::new(0);
static OWN_SPAN: AtomicUsize = AtomicUsize::new(0);
static OWN_INIT: AtomicUsize = AtomicUsize::new(0);

/// What is cached per thread: its stack bounds and kernel id (one
/// thread-local, so a capture looks both up at once). The layout of
/// `struct liballoc_diag_thread` in src/sys/c/diag_tls.c.
///
/// The bounds are `[lo, lo + span)`; `span` is 0 until they are known and
/// whenever `tid` is not, so one compare (`sp - lo < span`) tells that both
/// are valid for a stack pointer `sp`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Thread {
    lo: usize,
    span: usize,
    tid: u32,
}

/// The cache in the initial-exec TLS slot of src/sys/c/diag_tls.c (x86-64).
///
/// cbindgen:ignore
#[cfg(target_arch = "x86_64")]
mod tls {
    use super::Thread;
    use crate::sys::tls::StaticSlot;

    unsafe extern "C" {
        fn liballoc_diag_thread_slot() -> *mut core::ffi::c_void;
    }

    static SLOT: StaticSlot = StaticSlot::new(liballoc_diag_thread_slot);

    /// The calling thread's cache slot.
    #[inline(always)]
    fn slot() -> *mut Thread {
        SLOT.get().cast()
    }

    #[inline(always)]
    pub fn get() -> Thread {
        // SAFETY: the calling thread's own initial-exec slot: valid, and
        // touched by no other thread.
        unsafe { *slot() }
    }

    #[inline(always)]
    pub fn set(t: Thread) {
        // SAFETY: as above.
        unsafe { *slot() = t }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tls {

    use super::Thread;

    std::thread_local! {
        static THREAD: Cell<Thread> = const { Cell::new(Thread { lo: 0, span: 0, tid: 0 }) };
    }

    #[inline(always)]
    pub fn get() -> Thread {
        THREAD.with(|c| c.get())
    }

    #[inline(always)]
    pub fn set(t: Thread) {
        THREAD.with(|c| c.set(t))
    }
}

/// Forgets the cached thread id (in a child after `fork()`), and with it
/// the stack bounds (see [`Thread`]).
pub fn reset_tid() {
    tls::set(Thread {
        lo: 0,
        span: 0,
        tid: 0,
    });
}

/// The calling thread's kernel id, cached per thread.
pub fn tid() -> u32 {
    let t = tls::get();
    if t.tid != 0 {
        return t.tid;
    }
    refresh_thread(None);
    tls::get().tid
}

/// Fills in what the thread's cached state lacks: the id, and the stack
/// bounds when `sp` is given and outside them.
#[cold]
#[inline(never)]
fn refresh_thread(sp: Option<usize>) {
    let mut t = tls::get();
    if t.tid == 0 {
        t.tid = crate::sys::thread_id() as u32;
    }
    if let Some(sp) = sp
        && sp.wrapping_sub(t.lo) >= t.span
    {
        let (lo, hi) = main_stack(sp)
            .or_else(|| maps::containing(sp))
            .unwrap_or((sp, sp));
        t.lo = lo;
        t.span = hi - lo;
    }
    tls::set(t);
}

/// Most bytes between a stack pointer and the main stack's end for
/// [`main_stack`] to take it for a pointer on the main stack: below the
/// kernel's gap between the stack and the mappings under it (128 MiB at
/// least), so a pointer into any other mapping (a thread's stack, an
/// alternate signal stack) is too far.
const MAIN_STACK_SPAN: usize = 64 << 20;

/// Bounds for the walk from `sp` when `sp` lies on the main thread's
/// stack: from its page up to the top of the stack mapping as start-up
/// left it (`sys::thread::main_stack_top`), checked to be mapped
/// throughout (one `mincore` for a usual depth). The main thread's first
/// trace thus costs no read of `/proc/self/maps` (about 70,000
/// instructions and a dozen system calls), which every short-lived process
/// paid; other stacks still take that read. The top is the mapping's, as
/// that read gave: the leak scan reads the exiting thread's stack up to it.
fn main_stack(sp: usize) -> Option<(usize, usize)> {
    let top = crate::sys::thread::main_stack_top();
    let lo = sp & !(crate::sys::page_size() - 1);
    (sp < top && top - sp <= MAIN_STACK_SPAN && crate::sys::range_mapped(lo, top))
        .then_some((lo, top))
}

/// The thread's cached state, with bounds that hold `sp` (unless they
/// cannot be found: then `span` is 0).
#[inline(always)]
fn thread_at(sp: usize) -> Thread {
    let t = tls::get();
    if sp.wrapping_sub(t.lo) < t.span {
        return t;
    }
    refresh_thread(Some(sp));
    tls::get()
}

/// Finds the library's own code range, from its own program headers
/// (`loader::own_code`: no lock, no walk over the loaded modules); later
/// calls do nothing.
pub fn init() {
    if OWN_INIT.load(Ordering::Acquire) != 0 {
        return;
    }
    // Linked into the main program: no range of its own to skip.
    let (lo, hi) = match loader::own_code() {
        (_, _, true) => (0, 0),
        (lo, hi, false) => (lo, hi),
    };
    OWN_LO.store(lo, Ordering::Relaxed);
    OWN_SPAN.store(hi - lo, Ordering::Relaxed);
    OWN_INIT.store(1, Ordering::Release);
}

/// Whether `addr` lies in the library's own code.
#[inline(always)]
pub fn is_own(addr: usize) -> bool {
    own_code().contains(addr)
}

/// The library's own code, read once for a loop that tests many
/// addresses (the loads of [`is_own`] are not moved out of one).
#[inline(always)]
pub fn own_code() -> OwnCode {
    OwnCode {
        lo: OWN_LO.load(Ordering::Relaxed),
        span: OWN_SPAN.load(Ordering::Relaxed),
    }
}

/// The library's executable range, as [`own_code`] read it.
#[derive(Clone, Copy)]
pub struct OwnCode {
    lo: usize,
    span: usize,
}

impl OwnCode {
    /// Whether `addr` lies in it.
    #[inline(always)]
    pub fn contains(self, addr: usize) -> bool {
        addr.wrapping_sub(self.lo) < self.span
    }
}

/// The frame pointer register: the calling function's frame (frame
/// pointers are kept in every function, `.cargo/config.toml`).
#[inline(always)]
pub(crate) fn frame_pointer() -> usize {
    let fp: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fp = 0;
    }
    fp
}

/// The current thread's stack bounds, cached per thread and refreshed when
/// the stack pointer leaves them (signal stacks, a new thread).
pub fn stack_bounds(sp: usize) -> (usize, usize) {
    let t = thread_at(sp);
    (t.lo, t.lo + t.span)
}

/// The bit that marks a `ret_addr` as an entry point's frame ([`entry_frame`])
/// rather than a return address: the top bit, never set in a user-space
/// code address.
pub(crate) const ENTRY_FRAME: usize = 1 << 63;

/// The calling function's frame, as a `ret_addr` for the debug allocator:
/// its trace then starts at that function's return address. For the
/// library's entry points, called in the function that returns to the
/// user (when its return address is in the library after all, the
/// library's frames from there on are skipped as usual). Only the debug
/// allocator reads the value; its backing gets 0 instead
/// ([`return_address`]).
#[cfg_attr(not(feature = "preload"), allow(dead_code))]
#[inline(always)]
pub(crate) fn entry_frame() -> usize {
    frame_pointer() | ENTRY_FRAME
}

/// `ret_addr` as passed on to a backing allocator: a return address as
/// is, 0 for an entry point's frame ([`entry_frame`]).
#[inline(always)]
pub(crate) fn return_address(ret_addr: usize) -> usize {
    if ret_addr & ENTRY_FRAME != 0 {
        0
    } else {
        ret_addr
    }
}

/// Captures the call chain of an interrupted context (a signal's
/// `ucontext`): the faulting instruction `pc`, then the frame-pointer walk
/// from `fp`. Returns the number of frames written.
pub fn capture_from(out: &mut [usize], pc: usize, fp: usize) -> usize {
    if out.is_empty() {
        return 0;
    }
    // Stored as if it were a return address (symbolization looks up the
    // byte before each frame's address), so the faulting instruction itself
    // is named.
    out[0] = pc + 1;
    let n = out.len().min(MAX_FRAMES);
    let mut raw = [0usize; MAX_FRAMES];
    let k = walk(fp, &mut raw[..n - 1]);
    out[1..1 + k].copy_from_slice(&raw[..k]);
    1 + k
}

/// Follows the frame-pointer chain from `fp`, storing return addresses.
fn walk(fp: usize, raw: &mut [usize]) -> usize {
    let t = thread_at(fp);
    walk_in(fp, t.lo, t.lo + t.span, raw)
}

/// [`walk`] within known stack bounds `[lo, hi)`.
#[inline(always)]
fn walk_in(mut fp: usize, lo: usize, hi: usize, raw: &mut [usize]) -> usize {
    let mut n = 0;
    while n < raw.len() {
        if fp < lo
            || !fp.is_multiple_of(core::mem::size_of::<usize>())
            || fp.saturating_add(16) > hi
        {
            break;
        }
        // SAFETY: [fp, fp + 16) lies within the current thread's stack mapping.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        raw[n] = ret;
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

/// Captures the return addresses of the current call chain into `out`,
/// without the allocator's own frames. `ret_addr` is the allocator caller's
/// return address (0 when unknown). Returns the number of frames written.
#[inline(never)]
pub fn capture(out: &mut [usize], ret_addr: usize) -> usize {
    // SAFETY: MaybeUninit<usize> has the layout of usize, and only
    // initialized values are written through the view.
    let out = unsafe { &mut *(out as *mut [usize] as *mut [MaybeUninit<usize>]) };
    let fp = frame_pointer();
    let t = thread_at(fp);
    capture_in(out, ret_addr, fp, t.lo, t.span).0
}

/// [`capture`] into a buffer that needs no clearing (read the frames with
/// [`frames`]), also giving the calling thread's kernel id (one
/// thread-local lookup for both) and the trace's hash (`depot::hash`,
/// computed during the walk). Inlined into the allocator's entry points:
/// the walk starts at their frame (skipped with the library's other
/// frames).
#[inline(always)]
pub fn capture_tid(out: &mut [MaybeUninit<usize>], ret_addr: usize) -> (usize, u32, u64) {
    let fp = frame_pointer();
    let t = thread_at(fp);
    let (n, h) = capture_in(out, ret_addr, fp, t.lo, t.span);
    (n, t.tid, h)
}

/// The first `n` frames of `buf`, as written by [`capture_tid`].
///
/// # Safety
/// [`capture_tid`] wrote `buf` and returned `n`.
#[inline(always)]
pub unsafe fn frames(buf: &[MaybeUninit<usize>], n: usize) -> &[usize] {
    debug_assert!(n <= buf.len());
    // SAFETY: caller's promise: the first n entries are initialized;
    // MaybeUninit<usize> has the layout of usize.
    unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) }
}

/// The frames written and their hash.
#[inline(always)]
fn capture_in(
    out: &mut [MaybeUninit<usize>],
    ret_addr: usize,
    fp: usize,
    lo: usize,
    span: usize,
) -> (usize, u64) {
    let want = out.len().min(MAX_FRAMES);
    if want == 0 {
        return (0, depot::hash(&[]));
    }
    let out = &mut out[..want];
    if ret_addr & ENTRY_FRAME != 0 {
        // An entry point's frame (aligned: the mask drops the tag and
        // the low bits), readable, and an ancestor of this one, or this
        // very frame (the capture inlined into the entry point: the
        // common case, the shim's `malloc` and `free`).
        let entry = ret_addr & !(ENTRY_FRAME | 7);
        let last = (lo + span).wrapping_sub(16);
        let here = entry == fp && span >= 16 && fp.wrapping_sub(lo) <= span - 16;
        if here || climbs(fp, entry, last) {
            // SAFETY: [entry, entry + 16) lies within the thread's stack.
            let (next, ret) = unsafe { read_frame(entry) };
            if !is_own(ret) {
                return collect(out, entry, next, ret, last);
            }
            // Called from within the library after all.
            return capture_skipping_own(out, entry, lo, span);
        }
        // Not a frame of this call chain: the walk starts here.
        return capture_skipping_own(out, fp, lo, span);
    }
    if ret_addr == 0 {
        return capture_skipping_own(out, fp, lo, span);
    }
    let n = capture_from_caller(out, ret_addr, fp, lo, span);
    // SAFETY: the first n entries were just written.
    (n, depot::hash(unsafe { frames(out, n) }))
}

/// Whether `next`, the frame saved in frame `fp`, continues the chain: it
/// lies above `fp`, at most at `last` (the highest address a frame can
/// have in the stack), and is aligned.
#[inline(always)]
fn climbs(fp: usize, next: usize, last: usize) -> bool {
    next > fp && next <= last && next.is_multiple_of(8)
}

/// The saved frame pointer and return address of frame `fp`.
///
/// # Safety
/// `[fp, fp + 16)` is readable (within the current thread's stack).
#[inline(always)]
unsafe fn read_frame(fp: usize) -> (usize, usize) {
    // SAFETY: caller's promise.
    unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) }
}

/// Writes the trace from frame `fp` (readable, its saved frame pointer
/// `next` and return address `ret` already read) into `out` (not empty),
/// hashing it on the way, up to `out.len()` frames, a zero return address
/// or a frame that does not [`climbs`] (`last` as there).
#[inline(always)]
fn collect(
    out: &mut [MaybeUninit<usize>],
    mut fp: usize,
    mut next: usize,
    mut ret: usize,
    last: usize,
) -> (usize, u64) {
    debug_assert!(!out.is_empty());
    let (p, want) = (out.as_mut_ptr(), out.len());
    let mut n = want;
    let mut h = depot::HASH_SEED;
    for i in 0..want {
        if ret == 0 {
            n = i;
            break;
        }
        // SAFETY: i < want, the length of `out`.
        unsafe { *p.add(i) = MaybeUninit::new(ret) };
        h = depot::hash_step(h, ret);
        if !climbs(fp, next, last) {
            n = i + 1;
            // A frame that saved something other than a frame pointer
            // (code built without them): the unwind tables take over when
            // asked to (a zero ends the chain: `_start`, `clone`).
            if next != 0 && n < want && n < UNWIND_BELOW.load(Ordering::Relaxed) {
                return continue_with_tables(out, n, fp, next, ret, h);
            }
            break;
        }
        fp = next;
        // SAFETY: `climbs`: within the thread's stack.
        (next, ret) = unsafe { read_frame(fp) };
    }
    (n, depot::hash_finish(h))
}

/// When the call-frame unwinder goes on where a walk stopped at a frame of
/// code built without frame pointers ([`set_unwind_tables`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnwindTables {
    /// Never: such a trace ends there.
    Off,
    /// When the walk found fewer than three frames (`SHORT_TRACE`): where the
    /// program calling `malloc` has no frame pointers (the first frame or
    /// two), not where a program built with them reaches the C library's
    /// start below `main` or a thread's.
    Short,
    /// Always.
    Always,
}

/// Walks that found fewer frames than this go on with the unwinder under
/// [`UnwindTables::Short`].
const SHORT_TRACE: usize = 3;

/// Walks that found fewer frames than this when they stopped go on with
/// the call-frame unwinder (0: none; see [`set_unwind_tables`]).
static UNWIND_BELOW: AtomicUsize = AtomicUsize::new(0);

/// Makes walks that stop at a frame of code built without frame pointers
/// (Debian's C library and most distribution programs) go on with the
/// call-frame unwinder (`diag::cfi`, which reads the `.eh_frame` tables
/// every x86-64 object carries and remembers each code address's rule),
/// as `when` says, so that traces name the callers beyond that frame;
/// otherwise such a trace ends there. The walk through frames with frame
/// pointers costs the same either way. Where walks stop, the frames found
/// are remembered (`diag::resume`): a stop met again with its stack words
/// unchanged costs about 200 instructions for two frames; a new one about
/// 60 a frame once each code address's rule is cached (about 1,300 the
/// first time one is met). False when the unwinder's caches cannot be
/// mapped (walks then stop as with [`UnwindTables::Off`]).
pub fn set_unwind_tables(when: UnwindTables) -> bool {
    let below = match when {
        UnwindTables::Off => 0,
        UnwindTables::Short => SHORT_TRACE,
        UnwindTables::Always => usize::MAX,
    };
    if below != 0 && !(super::cfi::init() && super::resume::init()) {
        UNWIND_BELOW.store(0, Ordering::Relaxed);
        return false;
    }
    UNWIND_BELOW.store(below, Ordering::Relaxed);
    true
}

/// [`collect`]'s walk stopped at frame `fp` (its saved word `next` not a
/// frame pointer, `ret` the return address into the frame without one,
/// written last as frame `n - 1`, `h` the hash so far): the call-frame
/// unwinder adds the frames beyond it, up to `out.len()`. Out of line:
/// programs built with frame pointers never come here.
#[cold]
#[inline(never)]
fn continue_with_tables(
    out: &mut [MaybeUninit<usize>],
    n: usize,
    fp: usize,
    next: usize,
    ret: usize,
    mut h: u64,
) -> (usize, u64) {
    debug_assert!(n >= 1 && n < out.len());
    // The unwinder starts where the frame record leaves off: the frame
    // that `ret` returns into, its stack pointer just above the record,
    // its frame-pointer register as the record saved it.
    let sp = fp + 16;
    let t = thread_at(sp);
    // A stop met before, its stack words unchanged: its frames again.
    let k = match super::resume::lookup(ret, sp, next, t.lo, t.span, &mut out[n..]) {
        Some(k) => k,
        None => {
            let mut more = [0usize; MAX_FRAMES];
            let room = (out.len() - n + 1).min(MAX_FRAMES);
            let mut words = [(0usize, 0usize); super::resume::READS];
            let (mut nw, mut over, mut fp_used) = (0, false, false);
            let found =
                super::cfi::backtrace_from_noting(&mut more[..room], ret, sp, next, &mut |a, v| {
                    if a == 0 {
                        fp_used = true;
                    } else if nw < words.len() {
                        words[nw] = (a, v);
                        nw += 1;
                    } else {
                        over = true;
                    }
                });
            // No frame beyond the stop (the stack's end, or a frame the
            // unwinder cannot read) is remembered too: it would be as
            // slow to find out again.
            let m = found.unwrap_or(1).max(1);
            debug_assert!(more[0] == ret);
            if !over {
                let ended = found.is_none() || m < room;
                let fp = fp_used.then_some(next);
                super::resume::store(ret, sp, fp, &more[1..m], &words[..nw], ended);
            }
            for (o, &r) in out[n..].iter_mut().zip(&more[1..m]) {
                *o = MaybeUninit::new(r);
            }
            m - 1
        }
    };
    debug_assert!(n + k <= out.len());
    // SAFETY: `out[n..n + k]` was just written.
    for &r in unsafe { frames(&out[n..], k) } {
        h = depot::hash_step(h, r);
    }
    (n + k, depot::hash_finish(h))
}

/// [`capture`] with the caller's address: the trace starts at its frame
/// (out of line: its scratch array stays off the common path's frame).
#[inline(never)]
fn capture_from_caller(
    out: &mut [MaybeUninit<usize>],
    ret_addr: usize,
    fp: usize,
    lo: usize,
    span: usize,
) -> usize {
    let want = out.len();
    let mut raw = [0usize; MAX_FRAMES + EXTRA];
    let n = walk_in(fp, lo, lo + span, &mut raw[..want + EXTRA]);
    let mut start = raw[..n].iter().position(|&r| r == ret_addr);
    if start.is_none() {
        let skip = raw[..n].iter().take_while(|&&r| is_own(r)).count();
        if skip > 0 {
            start = Some(skip);
        } else {
            // The caller's address is not in the walk (a frame without a
            // frame pointer): the trace is the caller alone.
            out[0] = MaybeUninit::new(ret_addr);
            return 1;
        }
    }
    let start = start.unwrap_or(0);
    let k = (n - start).min(want);
    for (o, &r) in out.iter_mut().zip(&raw[start..start + k]) {
        *o = MaybeUninit::new(r);
    }
    k
}

/// [`capture`] without a caller's address, from frame `fp` (the
/// capturing function's, or an entry point's): the walk drops the leading frames inside the library (at most
/// `EXTRA`) and writes the rest straight into `out` (not empty), hashing
/// them on the way (out of line: the shim's entry points pass their frame
/// instead, see [`entry_frame`]).
#[inline(never)]
fn capture_skipping_own(
    out: &mut [MaybeUninit<usize>],
    mut fp: usize,
    lo: usize,
    span: usize,
) -> (usize, u64) {
    let none = (0, depot::hash(&[]));
    // A frame at `fp` is readable when it is aligned and lo <= fp <= last
    // (16 bytes below the top of the stack).
    let Some(room) = span.checked_sub(16) else {
        return none;
    };
    let last = lo + room;
    if fp.wrapping_sub(lo) > room || !fp.is_multiple_of(8) {
        return none;
    }
    // SAFETY: just checked (and `climbs` for every further frame).
    let (mut next, mut ret) = unsafe { read_frame(fp) };
    let mut skip_left = EXTRA;
    while is_own(ret) {
        if skip_left == 0 || !climbs(fp, next, last) {
            return none;
        }
        skip_left -= 1;
        fp = next;
        // SAFETY: as above.
        (next, ret) = unsafe { read_frame(fp) };
    }
    collect(out, fp, next, ret, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(out: &mut [usize]) -> usize {
        capture(out, 0)
    }

    /// Captures from a frame below `site`'s: from `entry_frame` (mode 0),
    /// by the walk from `capture`'s own frame (1), or with a tagged value
    /// that is no frame of the chain (2).
    #[inline(never)]
    fn leaf(out: &mut [usize], mode: u8) -> usize {
        match mode {
            0 => capture(out, entry_frame()),
            1 => capture(out, 0),
            _ => capture(out, ENTRY_FRAME | 8),
        }
    }

    #[inline(never)]
    fn site(out: &mut [usize], mode: u8) -> usize {
        let n = leaf(out, mode);
        core::hint::black_box(n)
    }

    // Frame layout is only fixed without optimisation (an optimised build
    // may inline `capture` into some of `leaf`'s arms and not others).
    #[test]
    #[cfg_attr(not(debug_assertions), ignore)]
    fn entry_frame_starts_at_its_return_address() {
        init();
        let (mut a, mut b, mut c) = ([0usize; 8], [0usize; 8], [0usize; 8]);
        let na = site(&mut a, 0);
        let nb = site(&mut b, 1);
        let nc = site(&mut c, 2);
        // The walk: capture's return into leaf, leaf's into site, ...; from
        // leaf's frame: leaf's return into site first.
        assert!(na >= 1 && nb >= 2, "captured {na} and {nb} frames");
        assert_eq!(a[0], b[1]);
        // Not a frame: the walk from capture's frame (the frames past the
        // test's two calls of site agree).
        assert_eq!(nc, nb);
        assert_eq!(b[1], c[1]);
        assert_eq!(b[3..nb], c[3..nc]);
    }

    #[test]
    fn the_main_stack_top_is_the_stack_mapping_end() {
        // From start-up data alone, as /proc/self/maps gives it.
        let mut stack = None;
        maps::for_each(|m| {
            if m.name == b"[stack]" {
                stack = Some((m.lo, m.hi));
            }
            true
        });
        let (lo, hi) = stack.expect("a [stack] mapping");
        assert_eq!(crate::sys::thread::main_stack_top(), hi);
        // A pointer on the main stack gets bounds up to it; one on this
        // test's own thread stack (not the main thread's) none.
        let sp = hi - 4096 - 8;
        assert_eq!(main_stack(sp), Some(((hi - 8192).max(lo), hi)));
        let local = 0u64;
        assert_eq!(main_stack(&local as *const u64 as usize), None);
        assert_eq!(main_stack(0), None);
        assert_eq!(main_stack(hi), None);
    }

    #[test]
    fn captures_frames() {
        init();
        let mut out = [0usize; 8];
        let n = nested(&mut out);
        assert!(n >= 2, "captured {n} frames");
        assert!(out[..n].iter().all(|&a| a != 0));
    }
}
