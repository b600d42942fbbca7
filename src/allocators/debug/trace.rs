//! Stack-trace capture without allocating: a frame-pointer walk.
//!
//! The walk starts at this function's own frame and follows the saved frame
//! pointers, collecting return addresses. The crate is built with
//! `-C force-frame-pointers=yes` (`.cargo/config.toml`) and C code with
//! `-fno-omit-frame-pointer`, so the chain is intact through the library and
//! through programs built that way; frames of code built without frame
//! pointers are skipped over or end the walk. Every step is checked against
//! the current thread's stack bounds (read once per thread from
//! `/proc/self/maps`), so a broken chain stops the walk instead of faulting.
//!
//! The allocator's own frames are dropped: the trace starts at the caller's
//! return address when the caller passed one (`ret_addr` of the vtable) and
//! it appears in the walk; otherwise leading frames inside the library's own
//! code (its executable segments, found with `dl_iterate_phdr` at init) are
//! skipped.

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{depot, maps};

/// Most frames a trace can hold.
pub(crate) const MAX_FRAMES: usize = 32;

/// Frames walked beyond the wanted count, to make room for skipped ones.
const EXTRA: usize = 16;

/// The library's own executable range `[OWN_LO, OWN_HI)` (0, 0 when unknown
/// or when the library is linked into the main program).
static OWN_LO: AtomicUsize = AtomicUsize::new(0);
static OWN_HI: AtomicUsize = AtomicUsize::new(0);
static OWN_INIT: AtomicUsize = AtomicUsize::new(0);

/// What is cached per thread: its stack bounds and kernel id (one
/// thread-local, so a capture looks both up at once). The layout of
/// `struct liballoc_debug_thread` in src/c/debug_tls.c.
#[repr(C)]
#[derive(Clone, Copy)]
struct Thread {
    lo: usize,
    hi: usize,
    tid: u32,
}

/// The cache in the initial-exec TLS slot of src/c/debug_tls.c (x86-64).
///
/// cbindgen:ignore
#[cfg(target_arch = "x86_64")]
mod tls {
    use super::Thread;
    use crate::sys::tls::StaticSlot;

    unsafe extern "C" {
        fn liballoc_debug_thread_slot() -> *mut core::ffi::c_void;
    }

    static SLOT: StaticSlot = StaticSlot::new(liballoc_debug_thread_slot);

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
        static THREAD: Cell<Thread> = const { Cell::new(Thread { lo: 0, hi: 0, tid: 0 }) };
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

/// Forgets the cached thread id (in a child after `fork()`).
pub fn reset_tid() {
    let mut t = tls::get();
    t.tid = 0;
    tls::set(t);
}

/// The calling thread's kernel id, cached per thread.
pub fn tid() -> u32 {
    let t = tls::get();
    if t.tid != 0 {
        return t.tid;
    }
    thread_refreshed(t, None).tid
}

/// Fills in what `t` (the thread's cached state) lacks: the id, and the
/// stack bounds when `sp` is given and outside them; stores and returns it.
#[cold]
fn thread_refreshed(mut t: Thread, sp: Option<usize>) -> Thread {
    if t.tid == 0 {
        t.tid = crate::sys::thread_id() as u32;
    }
    if let Some(sp) = sp
        && !(t.lo <= sp && sp < t.hi)
    {
        (t.lo, t.hi) = maps::containing(sp).unwrap_or((sp, sp));
    }
    tls::set(t);
    t
}

/// The thread's cached state, with bounds that hold `sp`.
#[inline(always)]
fn thread_at(sp: usize) -> Thread {
    let t = tls::get();
    if t.tid != 0 && t.lo <= sp && sp < t.hi {
        t
    } else {
        thread_refreshed(t, Some(sp))
    }
}

struct Search {
    target: usize,
    lo: usize,
    hi: usize,
}

unsafe extern "C" fn phdr_cb(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut libc::c_void,
) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info and our Search.
    let (info, s) = unsafe { (&*info, &mut *(data as *mut Search)) };
    let mut lo = usize::MAX;
    let mut hi = 0;
    let mut hit = false;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr has dlpi_phnum entries.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_X == 0 {
            continue;
        }
        let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
        let end = start + ph.p_memsz as usize;
        lo = lo.min(start);
        hi = hi.max(end);
        if start <= s.target && s.target < end {
            hit = true;
        }
    }
    if !hit {
        return 0;
    }
    // SAFETY: dlpi_name is NULL or a C string.
    let main_program = info.dlpi_name.is_null() || unsafe { *info.dlpi_name } == 0;
    if !main_program {
        s.lo = lo;
        s.hi = hi;
    }
    1
}

/// Finds the library's own code range. Call outside any allocator lock (it
/// takes the dynamic loader's lock); later calls do nothing.
pub fn init() {
    if OWN_INIT.load(Ordering::Acquire) != 0 {
        return;
    }
    let mut s = Search {
        target: init as fn() as usize,
        lo: 0,
        hi: 0,
    };
    // SAFETY: the callback only reads the loader's program headers.
    unsafe { libc::dl_iterate_phdr(Some(phdr_cb), (&mut s as *mut Search).cast()) };
    OWN_LO.store(s.lo, Ordering::Relaxed);
    OWN_HI.store(s.hi, Ordering::Relaxed);
    OWN_INIT.store(1, Ordering::Release);
}

/// Whether `addr` lies in the library's own code.
#[inline]
pub fn is_own(addr: usize) -> bool {
    OWN_LO.load(Ordering::Relaxed) <= addr && addr < OWN_HI.load(Ordering::Relaxed)
}

#[inline(always)]
fn frame_pointer() -> usize {
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
    (t.lo, t.hi)
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
    let (lo, hi) = stack_bounds(fp);
    walk_in(fp, lo, hi, raw)
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
    capture_in(out, ret_addr, fp, thread_at(fp)).0
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
    let (n, h) = capture_in(out, ret_addr, fp, t);
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
    t: Thread,
) -> (usize, u64) {
    let want = out.len().min(MAX_FRAMES);
    if want == 0 {
        return (0, depot::hash(&[]));
    }
    if ret_addr == 0 {
        return capture_skipping_own(&mut out[..want], fp, t.lo, t.hi);
    }
    let n = capture_from_caller(&mut out[..want], ret_addr, fp, t);
    // SAFETY: the first n entries were just written.
    (n, depot::hash(unsafe { frames(out, n) }))
}

/// [`capture`] with the caller's address: the trace starts at its frame
/// (out of line: its scratch array stays off the common path's frame).
#[inline(never)]
fn capture_from_caller(
    out: &mut [MaybeUninit<usize>],
    ret_addr: usize,
    fp: usize,
    t: Thread,
) -> usize {
    let want = out.len();
    let mut raw = [0usize; MAX_FRAMES + EXTRA];
    let n = walk_in(fp, t.lo, t.hi, &mut raw[..want + EXTRA]);
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

/// [`capture`] without a caller's address: the walk drops the leading
/// frames inside the library (at most `EXTRA + 1`) and writes the rest
/// straight into `out`, hashing them on the way.
#[inline(always)]
fn capture_skipping_own(
    out: &mut [MaybeUninit<usize>],
    mut fp: usize,
    lo: usize,
    hi: usize,
) -> (usize, u64) {
    // A frame at `fp` is readable when lo <= fp <= hi - 16 (one unsigned
    // compare against `span`) and fp is aligned.
    let none = (0, depot::hash(&[]));
    if hi < lo.saturating_add(16) {
        return none;
    }
    let span = hi - 16 - lo;
    let ok = |fp: usize| fp.wrapping_sub(lo) <= span && fp.is_multiple_of(8);
    let (own_lo, own_hi) = (
        OWN_LO.load(Ordering::Relaxed),
        OWN_HI.load(Ordering::Relaxed),
    );
    let own_span = own_hi.wrapping_sub(own_lo);
    let mut skip_left = EXTRA + 1;
    // The library's own frames.
    loop {
        if !ok(fp) {
            return none;
        }
        // SAFETY: [fp, fp + 16) lies within the current thread's stack mapping.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            return none;
        }
        if ret.wrapping_sub(own_lo) >= own_span {
            break;
        }
        skip_left -= 1;
        if skip_left == 0 || next <= fp {
            return none;
        }
        fp = next;
    }
    // The caller's frames, from the first outside the library.
    let mut n = 0;
    let mut h = depot::HASH_SEED;
    while n < out.len() && ok(fp) {
        // SAFETY: as above.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        out[n] = MaybeUninit::new(ret);
        h = depot::hash_step(h, ret);
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    (n, depot::hash_finish(h, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn nested(out: &mut [usize]) -> usize {
        capture(out, 0)
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
