//! Threads of the library's own: starting a detached background thread,
//! sleeping, yielding, and handlers run around `fork()`.
//!
//! The thread is made with every signal blocked (so the program's signal
//! handlers never run on it and process-directed signals go to the
//! program's own threads), detached (nobody joins it) and with a small
//! stack. The same contract as the rest of `sys` holds: no allocation of
//! our own (the C library allocates the thread's TLS, which may call
//! `malloc`: callers start threads only where re-entering the allocator is
//! safe), no panic, failures reported by return value, `errno` untouched.

use core::ffi::c_void;
use core::ptr;

/// Stack size of a background thread.
const STACK: usize = 128 << 10;

/// Starts `f(NULL)` on a new detached thread named `name` (at most 15 bytes,
/// NUL-terminated) with every signal blocked; false when the thread could
/// not be made.
pub fn spawn_detached(
    f: extern "C" fn(*mut c_void) -> *mut c_void,
    name: &core::ffi::CStr,
) -> bool {
    super::errno::keep(|| {
        // SAFETY: attr, the signal sets and tid are valid locals; the
        // calls follow the pthread API's rules (attr initialised before use
        // and destroyed after; the old mask restored).
        unsafe {
            let mut attr: libc::pthread_attr_t = core::mem::zeroed();
            if libc::pthread_attr_init(&mut attr) != 0 {
                return false;
            }
            libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            libc::pthread_attr_setstacksize(&mut attr, STACK);
            let mut all: libc::sigset_t = core::mem::zeroed();
            let mut old: libc::sigset_t = core::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let mut tid: libc::pthread_t = 0;
            let ok = libc::pthread_create(&mut tid, &attr, f, ptr::null_mut()) == 0;
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
            libc::pthread_attr_destroy(&mut attr);
            if ok {
                libc::pthread_setname_np(tid, name.as_ptr());
            }
            ok
        }
    })
}

/// Sleeps for `ms` milliseconds (less if a signal interrupts it).
pub fn sleep_ms(ms: u64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
    };
    super::errno::keep(|| {
        // SAFETY: ts is a valid timespec; no remainder is asked for.
        unsafe { libc::nanosleep(&ts, ptr::null_mut()) };
    });
}

/// Registers handlers run around every `fork()`: `prepare` in the forking
/// thread before it, `parent` and `child` in each process after it; false
/// when they could not be registered.
pub fn on_fork(
    prepare: unsafe extern "C" fn(),
    parent: unsafe extern "C" fn(),
    child: unsafe extern "C" fn(),
) -> bool {
    // SAFETY: registering plain functions.
    super::errno::keep(|| unsafe {
        libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) == 0
    })
}

/// Registers `child` to run in the child process after every `fork()`;
/// false when it could not be registered.
pub fn on_fork_child(child: unsafe extern "C" fn()) -> bool {
    // SAFETY: registering a plain function; no prepare or parent handler.
    super::errno::keep(|| unsafe { libc::pthread_atfork(None, None, Some(child)) == 0 })
}

/// Lets other threads run (`sched_yield`).
pub fn yield_now() {
    // SAFETY: no preconditions.
    super::errno::keep(|| unsafe {
        libc::sched_yield();
    });
}
