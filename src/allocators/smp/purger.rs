//! The background purger: gives memory back to the OS while the program
//! makes no allocation call.
//!
//! The decay of the reserve (`reserve.rs`) otherwise runs only from
//! allocation slow paths, so a program that frees most of its heap and then
//! sleeps, waits on I/O or only computes would keep its peak RSS forever.
//! The purger is a thread that exists only while the reserve holds memory
//! waiting for its purge delay:
//!
//! - it is started lazily, whenever memory waits in the reserve once the
//!   program has given 4 MiB to it in all, so a small program never gets
//!   the thread (its allocation calls run the decay); [`notify`] only counts and sets a
//!   flag, and the thread is made by [`poll`], which callers run at the end
//!   of an allocator call, where re-entering `malloc` from the C library's
//!   thread set-up is safe, and never before the library's constructor ran;
//! - it sleeps a purge delay, purges what has waited long enough (in the
//!   reserve, and the free pages of segments that exited threads left with
//!   live blocks, which no heap owns until one adopts them), and exits
//!   as soon as nothing is left to purge, so it never keeps a process alive
//!   (a program whose `main` called `pthread_exit` ends at most a purge
//!   delay after its last thread) and an idle program has no extra thread;
//! - it takes no lock (the reserve is lock-free) and runs with every signal
//!   blocked; `fork()` waits for a purge under way to end, the purger's or
//!   any thread's slow-path purge ([`guarded`]), so the child never
//!   inherits slots or segments a purge had taken off their lists; the child, which has no purger, starts its own once it
//!   frees enough (handlers registered at start-up do both).
//!
//! Chosen over a timer signal (which would interrupt the program's system
//! calls and compete for its handlers) and over purging only on allocation
//! calls (jemalloc's default, which leaves an idle program's memory
//! resident). [`set_enabled`]`(false)` (the shim's `LA_PURGE_THREAD=0`)
//! switches it off; the decay then runs from slow paths, `malloc_trim` and
//! `la_smp_collect` only.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence};

use super::{heap, segment};
use crate::sys;

/// No purger runs; one may be started.
const IDLE: u8 = 0;
/// A purger runs.
const RUNNING: u8 = 1;
/// Switched off.
const OFF: u8 = 2;

/// The purger thread's name. A named static, not a literal: the C library
/// reads it, and `src/preload/hot.ld` keeps smp's named read-only data
/// together with the shim's other hot data (a literal lands among the cold
/// strings, whose pages it would bring in).
static NAME: [u8; 9] = *b"la-purge\0";

static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// Memory entered the reserve while no purger ran.
static WANTED: AtomicBool = AtomicBool::new(false);
/// Bytes given to the reserve (or left in abandoned segments) resident so
/// far (since the process, or its `fork()`, started): the purger is started
/// only once they reach [`START_BYTES`], and then whenever memory waits.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// A purger is started only for this much memory waiting: a small program
/// never gets the thread (the decay from its allocation calls is enough),
/// and so stays single-threaded for calls such as `unshare(CLONE_NEWUSER)`.
const START_BYTES: usize = 4 << 20;
/// The library's constructor ran: threads may be made.
static READY: AtomicBool = AtomicBool::new(false);
/// A `fork()` is under way: the purger makes no pass.
static PAUSED: AtomicBool = AtomicBool::new(false);
/// Purges under way, by the purger or by any thread's slow path (each holds
/// slots or abandoned segments that no list shows while it works on them).
static IN_PASS: AtomicU32 = AtomicU32::new(0);

/// `bytes` of memory entered the reserve resident (or stayed in an
/// abandoned segment): a purger is wanted once enough waits.
#[inline]
pub fn notify(bytes: usize) {
    fence(Ordering::SeqCst);
    if STATE.load(Ordering::Relaxed) == IDLE
        && !WANTED.load(Ordering::Relaxed)
        && (WAITING.load(Ordering::Relaxed) >= START_BYTES
            || WAITING.fetch_add(bytes, Ordering::Relaxed) + bytes >= START_BYTES)
    {
        WANTED.store(true, Ordering::Relaxed);
    }
}

/// Starts the purger if one is wanted. Run only where a re-entrant
/// `malloc` is safe (no heap structure half-updated).
#[inline]
pub fn poll() {
    if WANTED.load(Ordering::Relaxed) {
        start();
    }
}

#[cold]
#[inline(never)]
fn start() {
    if !READY.load(Ordering::Acquire) {
        return;
    }
    WANTED.store(false, Ordering::Relaxed);
    if STATE
        .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // SAFETY: NAME ends with its only NUL.
    let name = unsafe { core::ffi::CStr::from_bytes_with_nul_unchecked(&NAME) };
    if !sys::thread::spawn_detached(run, name) {
        // No thread now (a thread limit, no memory): the decay still runs
        // from slow paths; a later release tries again.
        STATE.store(IDLE, Ordering::Release);
    }
}

extern "C" fn run(_arg: *mut c_void) -> *mut c_void {
    loop {
        let delay = heap::purge_delay().max(1);
        sys::thread::sleep_ms(delay);
        if STATE.load(Ordering::Acquire) != RUNNING {
            return core::ptr::null_mut();
        }
        // Skipped while a `fork()` is under way (see `guarded`).
        let now = sys::now_ms();
        let left = guarded(|| {
            let abandoned = heap::purge_abandoned(now, delay, false);
            segment::purge_shared(now, delay, false) || abandoned
        });
        if left != Some(false) {
            continue;
        }
        // Nothing left: stop, unless memory came in since the pass (its
        // release saw RUNNING and did not ask for a purger).
        if STATE
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return core::ptr::null_mut();
        }
        fence(Ordering::SeqCst);
        if !super::reserve::has_dirty()
            || STATE
                .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return core::ptr::null_mut();
        }
    }
}

/// Runs `purge` unless a `fork()` is under way (then `None`): with
/// `fork()`'s prepare handler (a Dekker pair on `IN_PASS` and `PAUSED`),
/// either the handler sees the purge and waits for it to end, or the purge
/// sees the pause and is skipped, so that a child never inherits slots or
/// segments a purge had taken off their lists (they would be lost to it).
/// Every purge of shared state goes through here, from the purger and from
/// any thread's slow path alike.
pub fn guarded<R>(purge: impl FnOnce() -> R) -> Option<R> {
    IN_PASS.fetch_add(1, Ordering::SeqCst);
    if PAUSED.load(Ordering::SeqCst) {
        IN_PASS.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let r = purge();
    IN_PASS.fetch_sub(1, Ordering::SeqCst);
    Some(r)
}

/// Switches the purger on or off (process-wide). Off: a running purger
/// exits after its current sleep. On: it starts with the next release.
pub fn set_enabled(on: bool) {
    if on {
        if STATE
            .compare_exchange(OFF, IDLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            WANTED.store(super::reserve::has_dirty(), Ordering::Relaxed);
        }
    } else {
        STATE.store(OFF, Ordering::Release);
    }
}

/// Before `fork()`: waits for a purge pass under way to end, and holds
/// off the next one until the fork is done.
unsafe extern "C" fn before_fork() {
    PAUSED.store(true, Ordering::SeqCst);
    while IN_PASS.load(Ordering::SeqCst) != 0 {
        sys::thread::yield_now();
    }
}

/// After `fork()`, in the parent: passes resume.
unsafe extern "C" fn after_fork_parent() {
    PAUSED.store(false, Ordering::SeqCst);
}

/// In the child of `fork()`: no purger thread exists there.
unsafe extern "C" fn after_fork_child() {
    PAUSED.store(false, Ordering::SeqCst);
    IN_PASS.store(0, Ordering::SeqCst);
    // The parent's purger did not come along: the child starts its own
    // once it frees enough itself (a child that only execs never does).
    if STATE.load(Ordering::Relaxed) == RUNNING {
        STATE.store(IDLE, Ordering::Relaxed);
    }
    WANTED.store(false, Ordering::Relaxed);
    WAITING.store(0, Ordering::Relaxed);
}

/// Called once from the library's constructor: threads may be made from
/// now on, and the fork handler is registered.
pub fn init() {
    sys::thread::on_fork(before_fork, after_fork_parent, after_fork_child);
    READY.store(true, Ordering::Release);
}
