//! Threads of the library's own: starting a detached background thread,
//! sleeping, yielding, and handlers run around `fork()`; and where the
//! main thread's stack ends.
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

unsafe extern "C" {
    /// Set by the dynamic loader at start-up: an address near the top of
    /// the main thread's stack, above every frame of it (glibc).
    static __libc_stack_end: *mut c_void;
}

/// The top of the main thread's stack mapping as start-up left it: past
/// the frames (`__libc_stack_end`, recorded by the loader), the arguments,
/// the environment and the auxiliary vector, up to the program's file name,
/// which the kernel writes last, at the very top (`AT_EXECFN`); rounded up
/// to a page. 0 when unknown. Callers check it against the mapping before
/// they read below it (`range_mapped`).
pub fn main_stack_top() -> usize {
    // SAFETY: a pointer-sized variable of the C library, written once by
    // the loader before any of our code runs.
    let end = unsafe { ptr::read_volatile(ptr::addr_of!(__libc_stack_end)) as usize };
    // SAFETY: getauxval reads the process's auxiliary vector; AT_EXECFN,
    // when present, is the address of a NUL-terminated string.
    let name = super::errno::keep(|| unsafe { libc::getauxval(libc::AT_EXECFN) }) as usize;
    let past_name = if name > end {
        // SAFETY: the file name the kernel wrote on the stack, NUL-terminated.
        name + unsafe { libc::strlen(name as *const libc::c_char) } + 1
    } else {
        end
    };
    if end == 0 {
        return 0;
    }
    past_name.next_multiple_of(super::page_size())
}
