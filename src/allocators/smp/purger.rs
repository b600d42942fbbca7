//! The background purger: gives memory back to the OS while the program
//! makes no allocation call.
//!
//! The decay of the reserve (`reserve.rs`) otherwise runs only from
//! allocation slow paths, so a program that frees most of its heap and then
//! sleeps, waits on I/O or only computes would keep its peak RSS forever.
//! The purger is a thread that exists only while the reserve holds memory
//! waiting for its purge delay:
//!
//! - it is started lazily, the first time memory enters the reserve
//!   resident ([`notify`] only sets a flag; the thread is made by [`poll`],
//!   which callers run at the end of an allocator call, where re-entering
//!   `malloc` from the C library's thread set-up is safe, and never before
//!   the library's constructor ran);
//! - it sleeps a purge delay, purges what has waited long enough (in the
//!   reserve, and the free pages of segments that exited threads left with
//!   live blocks, which no heap owns until one adopts them), and exits
//!   as soon as nothing is left to purge, so it never keeps a process alive
//!   (a program whose `main` called `pthread_exit` ends at most a purge
//!   delay after its last thread) and an idle program has no extra thread;
//! - it takes no lock (the reserve is lock-free) and runs with every signal
//!   blocked; after `fork()` the child, which has no purger, starts its own
//!   when it needs one (a handler registered at start-up resets the state).
//!
//! Chosen over a timer signal (which would interrupt the program's system
//! calls and compete for its handlers) and over purging only on allocation
//! calls (jemalloc's default, which leaves an idle program's memory
//! resident). [`set_enabled`]`(false)` (the shim's `LA_PURGE_THREAD=0`)
//! switches it off; the decay then runs from slow paths, `malloc_trim` and
//! `la_smp_collect` only.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering, fence};

use super::{heap, segment};
use crate::sys;

/// No purger runs; one may be started.
const IDLE: u8 = 0;
/// A purger runs.
const RUNNING: u8 = 1;
/// Switched off.
const OFF: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// Memory entered the reserve while no purger ran.
static WANTED: AtomicBool = AtomicBool::new(false);
/// The library's constructor ran: threads may be made.
static READY: AtomicBool = AtomicBool::new(false);

/// Memory entered the reserve resident: a purger is wanted.
#[inline]
pub fn notify() {
    fence(Ordering::SeqCst);
    if STATE.load(Ordering::Relaxed) == IDLE && !WANTED.load(Ordering::Relaxed) {
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
    if !sys::thread::spawn_detached(run, c"la-purge") {
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
        let now = sys::now_ms();
        let abandoned = heap::purge_abandoned(now, delay, false);
        if segment::purge_shared(now, delay, false) || abandoned {
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

/// In the child of `fork()`: no purger thread exists there.
unsafe extern "C" fn after_fork_child() {
    if STATE.load(Ordering::Relaxed) == RUNNING {
        STATE.store(IDLE, Ordering::Relaxed);
        WANTED.store(super::reserve::has_dirty(), Ordering::Relaxed);
    }
}

/// Called once from the library's constructor: threads may be made from
/// now on, and the fork handler is registered.
pub fn init() {
    sys::thread::on_fork_child(after_fork_child);
    READY.store(true, Ordering::Release);
}
