//! `LA_DEBUG=1`: the shim backed by the debug allocator (`la_debug` over
//! the smp allocator) instead of the smp allocator directly.
//!
//! Every `malloc`/`free`/`realloc`/`malloc_usable_size` then goes through
//! `la_debug`: misuse (double free, interior or foreign pointers, overflow
//! into the redzones, writes after free) prints a `liballoc: error: ...`
//! report with stack traces and aborts. At exit a leak report is printed:
//! blocks made before the shim's constructor ran (the C runtime and the
//! dynamic loader) are suppressed, and blocks still reachable from global
//! data or the exiting thread's stack are not leaks (`roots.rs`), so a clean
//! program reports nothing. `LA_SUPPRESSIONS=file` adds LeakSanitizer-style
//! `leak:pattern` lines; `LA_LEAK_EXITCODE=N` makes a leak end the process
//! with status N; `LA_LOG_PATH=prefix` sends the leak report to the file
//! `prefix.<pid>` (appended to, created 0644; stderr with a warning when
//! it cannot be opened), so programs whose children must keep stderr empty
//! can still be checked. `LA_DEBUG_FRAMES`, `LA_DEBUG_QUARANTINE`,
//! `LA_DEBUG_FILL` and `LA_DEBUG_UNWIND` trade cost against coverage
//! (frames per trace, bytes held back before reuse, bytes filled and
//! checked per freed block, traces through code without frame pointers
//! by its unwind tables: `diag::trace::set_unwind_tables`).
//! The smp allocator keeps free pages committed ten times longer than
//! usual, as every operation takes longer.
//!
//! A zero-size request gets a block with no user bytes (its back redzone
//! starts at the address returned), so a write to its byte 0 is an
//! overflow. C++ sized and aligned `operator delete` are checked against
//! the block's requested size and alignment. `mallinfo` counts the
//! quarantine as free (`live_totals`).
//!
//! Reports never call `malloc` (private arena, raw `write`), so they are
//! safe from inside the shim. A child of `fork()` resets the instance's
//! lock (`pthread_atfork` child handler), in case another thread of the
//! parent held it. The lock is not taken in a prepare handler: other
//! libraries' prepare handlers, which run after it, may call `malloc`.

use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::allocators::debug::{la_debug, la_debug_config, leaks, roots};
use crate::allocators::smp::{self, la_smp_allocator};
use crate::diag::scratch::Scratch;
use crate::diag::trace;
use crate::sys::{self, process, write::Writer};

use super::options::Options;

static DEBUG: AtomicPtr<la_debug> = AtomicPtr::new(ptr::null_mut());

/// The smp allocator's purge delay in debug mode: ten times its default.
const DEBUG_PURGE_DELAY_MS: u64 = 10 * smp::PURGE_DELAY_MS;

/// Suppressions always applied: allocations the C runtime keeps for the
/// life of the process in places the root scan does not see.
const BUILTIN_SUPPRESSIONS: &[u8] = b"leak:_dl_allocate_tls\nleak:__libc_early_init\n";

/// The instance (NULL before [`init`]).
#[inline]
fn instance() -> &'static la_debug {
    // SAFETY: set once by `init` before the DEBUG flag is published, never
    // freed.
    unsafe { &*DEBUG.load(Ordering::Acquire) }
}

/// Creates the instance; false when that fails (the shim then stays on the
/// smp allocator). Blocks made until [`on_load`] are suppressed.
pub fn init(opts: &Options) -> bool {
    if !DEBUG.load(Ordering::Acquire).is_null() {
        return true;
    }
    // Reports go to a private copy of stderr: programs often close fd 2 at
    // exit (coreutils do), before the leak report is printed.
    let fd = sys::fd::dup_above(2, 100);
    let mut cfg = la_debug_config {
        report_fd: fd.unwrap_or(2),
        ..la_debug_config::default()
    };
    if let Some(n) = opts.debug_frames {
        cfg.stack_trace_frames = n;
    }
    if let Some(n) = opts.debug_quarantine {
        cfg.quarantine_bytes = n;
    }
    // Without its caches the unwinder is not used: traces then stop at the
    // first frame without a frame pointer, as with `LA_DEBUG_UNWIND=fp`.
    if cfg.stack_trace_frames > 0 {
        trace::set_unwind_tables(opts.debug_unwind);
    }
    if let Some(n) = opts.debug_fill {
        cfg.free_fill_max_len = n;
        cfg.check_write_after_free = n > 0;
    }
    // The smp allocator may be called from any thread at once: blocks come
    // from it and go back to it without the debug allocator's lock held.
    let d = la_debug::create_with(la_smp_allocator(), &cfg, true);
    if d.is_null() {
        return false;
    }
    // Checked operations take several times as long: free pages wait as
    // many times longer before they are decommitted, so that a program
    // phase that frees and then allocates again finds them still committed
    // (rather than fault them in anew).
    smp::set_purge_delay_ms(DEBUG_PURGE_DELAY_MS);
    // SAFETY: fresh instance.
    unsafe { (*d).set_suppress_new(true) };
    if DEBUG
        .compare_exchange(ptr::null_mut(), d, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread won the race; ours holds no blocks.
        // SAFETY: d is ours and unused.
        unsafe { la_debug::destroy(d) };
        if let Some(fd) = fd {
            sys::close(fd);
        }
    }
    true
}

extern "C" fn fork_child() {
    instance().after_fork();
    trace::reset_tid();
}

/// The SIGSEGV action in place before ours (restored for faults that are
/// not ours).
static OLD_SEGV: process::SavedAction = process::SavedAction::new();

extern "C" fn on_fault(sig: i32, info: *mut c_void, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
    let addr = unsafe { process::fault_address(info) };
    let mut here = [0usize; trace::MAX_FRAMES];
    let mut n = 0;
    // SAFETY: ctx is the interrupted context the kernel passed.
    if let Some((pc, fp)) = unsafe { process::interrupted_frame(ctx) } {
        n = trace::capture_from(&mut here[..9], pc, fp);
    }
    if !instance().explain_fault(addr, &here[..n]) {
        // Not a guard page of ours: put the previous action back; the
        // faulting instruction runs again and gets it.
        process::restore_action(sig, &OLD_SEGV);
    }
}

/// Installs [`on_fault`] for SIGSEGV: guard pages and freed guarded blocks
/// are PROT_NONE, so touching them faults, and the handler explains it.
fn install_fault_handler() {
    // SAFETY: called once, from the shim's constructor: nothing else
    // touches OLD_SEGV yet.
    unsafe { process::on_fault_signal(process::SIGSEGV, on_fault, &OLD_SEGV) };
}

/// The shim's constructor, in debug mode: from now on blocks are tracked as
/// the program's; register the exit report and the fork handlers.
pub fn on_load() {
    trace::init();
    instance().set_suppress_new(false);
    process::at_exit(at_exit);
    sys::thread::on_fork_child(fork_child);
    install_fault_handler();
}

/// Reads the `LA_SUPPRESSIONS` file into the arena (empty when unset or
/// unreadable).
fn suppressions(scratch: &mut Scratch) -> &'static [u8] {
    const MAX: usize = 1 << 20;
    let Some(buf) = scratch.slice::<u8>(MAX) else {
        return b"";
    };
    // Unset or unreadable: no extra patterns (la-run checks the file up
    // front).
    let n = process::env(c"LA_SUPPRESSIONS")
        .and_then(|path| sys::fd::read_file(path, buf))
        .unwrap_or(0);
    &buf[..n]
}

/// `LA_LEAK_EXITCODE` (0 when unset or not a number).
fn leak_exitcode() -> i32 {
    let Some(v) = process::env(c"LA_LEAK_EXITCODE") else {
        return 0;
    };
    let s = v.to_bytes();
    let mut n: i32 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return 0;
        }
        n = n.saturating_mul(10).saturating_add((c - b'0') as i32);
    }
    n & 0xff
}

/// Opens `<LA_LOG_PATH>.<pid>` for the leak report (only when there is one
/// to print, so clean processes leave no file): `None` when the variable is
/// unset or empty, or when the file cannot be opened (then with a one-line
/// warning, and the report goes to stderr).
fn log_file() -> Option<i32> {
    let prefix = process::env(c"LA_LOG_PATH")?.to_bytes();
    if prefix.is_empty() {
        return None;
    }
    let mut path = [0u8; 4096];
    let mut digits = [0u8; 10];
    let mut pid = sys::process_id();
    let mut nd = 0;
    loop {
        digits[nd] = b'0' + (pid % 10) as u8;
        nd += 1;
        pid /= 10;
        if pid == 0 || nd == digits.len() {
            break;
        }
    }
    digits[..nd].reverse();
    let len = prefix.len() + 1 + nd;
    let opened = if len < path.len() {
        path[..prefix.len()].copy_from_slice(prefix);
        path[prefix.len()] = b'.';
        path[prefix.len() + 1..len].copy_from_slice(&digits[..nd]);
        core::ffi::CStr::from_bytes_until_nul(&path)
            .ok()
            .and_then(sys::open_append)
    } else {
        None
    };
    if opened.is_none() {
        let mut w = Writer::fd(2);
        w.str("liballoc: warning: cannot open LA_LOG_PATH file ")
            .bytes(prefix)
            .str(".")
            .bytes(&digits[..nd]);
        w.str("; the leak report goes to stderr\n");
    }
    opened
}

extern "C" fn at_exit() {
    // Frames below this one are dead (the program's own exit handlers ran
    // there, and earlier, deeper calls): not roots.
    roots::note_exit_frame();
    let d = instance();
    d.verify_freed();
    let mut scratch = Scratch::new();
    let supp = suppressions(&mut scratch);
    let (_, leaked) = d.report_leaks(&leaks::Options {
        suppressions: supp,
        quiet_suppressions: BUILTIN_SUPPRESSIONS,
        scan_roots: true,
        open_log: Some(&log_file),
    });
    if leaked > 0 {
        let code = leak_exitcode();
        if code != 0 {
            process::exit_now(code);
        }
    }
}

/// The functions below hand the debug allocator the frame of the function
/// they are in or inlined into (`trace::entry_frame`), so traces start at
/// that function's return address, the user's call (or, when that function
/// was called by another of the library's, at the first frame outside the
/// library) without a walk through the library's frames.
///
/// `malloc` in the debug mode alone (no statistics, no failure injection):
/// `malloc` jumps to the shim's `alloc_general`, which jumps here, so this
/// frame returns to the caller of `malloc`. NULL with `errno = ENOMEM` on
/// failure.
#[inline(never)]
pub fn alloc_entry(size: usize, align_log2: u8) -> *mut u8 {
    if size > super::MAX_SIZE {
        return super::out_of_memory();
    }
    let p = alloc(size, align_log2);
    if p.is_null() {
        return super::out_of_memory();
    }
    p
}

/// `free` of non-NULL `p` in the debug mode alone: `free` jumps here, so
/// this frame returns to the caller of `free`. Keeps `errno` (the debug
/// allocator's free may make system calls: unmapping, reports).
#[inline(never)]
pub fn free_entry(p: *mut u8) {
    let errno = sys::errno::location();
    // SAFETY: this thread's errno slot.
    let saved = unsafe { *errno };
    free(p);
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// C++ sized or aligned `operator delete` of non-NULL `p` in the debug
/// mode: `size` (or [`ANY_LEN`](crate::allocators::debug::ANY_LEN) when not given) and `align_log2` (16 bytes
/// or more) are checked against the block's request, a mismatch reported
/// as misuse. Keeps `errno`, like [`free_entry`].
#[inline(never)]
pub fn free_shaped_entry(p: *mut u8, size: usize, align_log2: u8) {
    let errno = sys::errno::location();
    // SAFETY: this thread's errno slot.
    let saved = unsafe { *errno };
    instance().free_as(
        p,
        Some((size, align_log2)),
        "operator delete",
        trace::entry_frame(),
    );
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// `malloc`-family allocation of `size` bytes. A zero-size block has no
/// user bytes: its back redzone starts at the address returned, so a write
/// to byte 0 is reported as an overflow.
#[inline(always)]
pub fn alloc(size: usize, align_log2: u8) -> *mut u8 {
    instance().alloc_any(size, align_log2, trace::entry_frame())
}

/// `free` (NULL already filtered out).
#[inline(always)]
pub fn free(p: *mut u8) {
    instance().free(p, None, trace::entry_frame())
}

/// `malloc_usable_size`: the requested length (so writes past it are
/// caught), 0 for NULL.
#[inline(always)]
pub fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    instance().usable_size(p, trace::entry_frame())
}

/// The program's blocks as the debug allocator counts them: requested
/// bytes in live blocks, live blocks, and the peak of live bytes. Freed
/// blocks held in the quarantine are not live.
pub fn live_totals() -> (usize, usize, usize) {
    let s = instance().stats();
    (s.live_bytes, s.live_allocations, s.peak_bytes)
}

/// The length of live block `p` (for statistics), reporting nothing.
pub fn len_of(p: *mut u8) -> Option<usize> {
    instance().len_of(p)
}

/// `realloc` of a non-NULL block to `size > 0` bytes: in place when the
/// block has room, else allocate, copy and free. NULL (block untouched)
/// when out of memory or when the block is not live (reported).
#[inline(always)]
pub fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    let d = instance();
    let at = trace::entry_frame();
    let Some(old) = d.live_len(p, "realloc", at) else {
        return ptr::null_mut();
    };
    if d.resize(p, None, size, at) {
        return p;
    }
    let q = d.alloc(size, super::MIN_ALIGN_LOG2, at);
    if q.is_null() {
        return q;
    }
    // SAFETY: both blocks are live and distinct; the copy fits in both.
    unsafe { ptr::copy_nonoverlapping(p, q, old.min(size)) };
    d.free(p, None, at);
    q
}
