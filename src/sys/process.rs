//! The process and its threads as the OS sees them: ids, the environment,
//! signal handlers, cancellation, and ending the process.
//!
//! Nothing here allocates or takes a lock; failures are reported by
//! return value and `errno` is left as it was.

use super::{errno, fd};
use core::ffi::{CStr, c_char, c_int};
use core::ptr;

unsafe extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
    static environ: *const *const c_char;
}

/// Calls `f` on each `NAME=value` entry of the process environment,
/// without allocating and without `getenv`: from the C library's `environ`
/// once it is set, else (early in process start, before the C runtime is
/// ready) from `/proc/self/environ` through a stack buffer (entries longer
/// than 1 KiB are cut).
pub fn for_each_env(mut f: impl FnMut(&[u8])) {
    // SAFETY: `environ` is the C library's pointer; reading the pointer
    // value itself is always allowed (it is NULL before libc sets it).
    let env = unsafe { ptr::read_volatile(&raw const environ) };
    if env.is_null() {
        let Some(fd) = fd::open_read(c"/proc/self/environ") else {
            return;
        };
        let mut buf = [0u8; 1024];
        fd::for_each_record(fd, 0, &mut buf, |entry| {
            f(entry);
            true
        });
        fd::close(fd);
        return;
    }
    let mut i = 0;
    loop {
        // SAFETY: environ is a NULL-terminated array of C strings.
        let entry = unsafe { *env.add(i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is a NUL-terminated string.
        f(unsafe { CStr::from_ptr(entry) }.to_bytes());
        i += 1;
    }
}

/// `PTHREAD_CANCEL_DISABLE` (glibc and musl).
const PTHREAD_CANCEL_DISABLE: c_int = 1;

/// Disables cancellation of the calling thread (so that the `write`s,
/// `open`s and `read`s of a report that must complete are no cancellation
/// points); returns the previous state, to hand to [`restore_cancel`].
pub fn disable_cancel() -> c_int {
    let mut old: c_int = 0;
    // SAFETY: `old` is a valid out pointer; the call does not allocate.
    errno::keep(|| unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) });
    old
}

/// Puts back the cancellation state [`disable_cancel`] returned. A pending
/// cancellation request then acts at the thread's next cancellation point
/// (not here: `pthread_setcancelstate` is none).
pub fn restore_cancel(old: c_int) {
    let mut prev: c_int = 0;
    // SAFETY: as in `disable_cancel`.
    errno::keep(|| unsafe { pthread_setcancelstate(old, &mut prev) });
}

/// Installs `handler` for signal `sig` (`SA_RESTART`, nothing blocked
/// beyond the signal itself); false when the signal cannot be caught.
pub fn on_signal(sig: c_int, handler: extern "C" fn(c_int)) -> bool {
    // SAFETY: a zeroed sigaction is valid; the handler is a plain function
    // and sigaction does not allocate.
    errno::keep(|| unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, ptr::null_mut()) == 0
    })
}

/// The calling process's id.
pub fn process_id() -> u32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u32 }
}

/// The calling thread's kernel id (no allocation, no libc state).
#[inline]
pub fn thread_id() -> usize {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as usize }
}

/// Ends the process with `SIGABRT` (no handlers of ours, no unwinding).
pub fn abort() -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { libc::abort() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_state_is_restored() {
        let old = disable_cancel();
        assert_eq!(disable_cancel(), PTHREAD_CANCEL_DISABLE);
        restore_cancel(old);
        assert_eq!(disable_cancel(), old);
        restore_cancel(old);
    }

    #[test]
    fn environment() {
        let mut path = false;
        for_each_env(|e| path |= e.starts_with(b"PATH="));
        assert!(path);
    }

    #[test]
    fn ids() {
        assert_eq!(process_id(), std::process::id());
        let main = thread_id();
        assert_ne!(std::thread::spawn(thread_id).join().unwrap(), main);
    }
}
