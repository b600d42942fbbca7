//! The process and its threads as the OS sees them: ids, the environment,
//! signal handlers (fault handlers included), cancellation, exit handlers,
//! and ending the process.
//!
//! Nothing here allocates or takes a lock; failures are reported by
//! return value and `errno` is left as it was.

use super::{errno, fd};
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char, c_int, c_void};
use core::mem::MaybeUninit;
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

/// The value of environment variable `name` (`getenv`, which neither
/// allocates nor locks); `None` when unset. For use once the C runtime is
/// running (report and exit time); early in process start use
/// [`for_each_env`].
pub fn env(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: a NUL-terminated name; getenv only reads the environment.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: a NUL-terminated string in the environment, which the
    // library never changes.
    (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) })
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

/// The signal of an invalid memory access.
pub const SIGSEGV: c_int = libc::SIGSEGV;

/// A handler for a fault signal (`SA_SIGINFO`): the signal, its
/// `siginfo_t` and the interrupted `ucontext_t`.
pub type FaultHandler = extern "C" fn(c_int, *mut c_void, *mut c_void);

/// Room for a signal's previous action, saved by [`on_fault_signal`] and
/// put back by [`restore_action`].
pub struct SavedAction(UnsafeCell<MaybeUninit<libc::sigaction>>);

// SAFETY: written only by `on_fault_signal`, whose caller promises no
// concurrent use; afterwards only read.
unsafe impl Sync for SavedAction {}

impl SavedAction {
    /// Empty room (the default action until [`on_fault_signal`] fills it).
    pub const fn new() -> Self {
        SavedAction(UnsafeCell::new(MaybeUninit::zeroed()))
    }
}

impl Default for SavedAction {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs `handler` for the fault signal `sig` (`SA_SIGINFO`, on the
/// alternate stack when the thread has one), saving the previous action
/// in `old`; false when the signal cannot be caught.
///
/// # Safety
/// No other thread uses `old` during the call (install it once, from a
/// constructor).
pub unsafe fn on_fault_signal(sig: c_int, handler: FaultHandler, old: &SavedAction) -> bool {
    // SAFETY: a zeroed sigaction is valid; the handler is a plain function,
    // `old` is writable room for a sigaction (the caller's promise on
    // exclusivity), and sigaction does not allocate.
    errno::keep(|| unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, old.0.get().cast()) == 0
    })
}

/// Puts back the action [`on_fault_signal`] saved for `sig` (from inside
/// the handler, for a fault that is not the handler's: the faulting
/// instruction then runs again and gets the old action).
pub fn restore_action(sig: c_int, old: &SavedAction) {
    // SAFETY: `old` holds a sigaction (zeroed: the default action) that is
    // no longer written; sigaction is async-signal-safe.
    errno::keep(|| unsafe { libc::sigaction(sig, old.0.get().cast(), ptr::null_mut()) });
}

/// The faulting address of a fault signal (`si_addr`).
///
/// # Safety
/// `info` is the `siginfo_t` the kernel passed a [`FaultHandler`].
pub unsafe fn fault_address(info: *mut c_void) -> usize {
    // SAFETY: the caller's promise.
    unsafe { (*info.cast::<libc::siginfo_t>()).si_addr() as usize }
}

/// The interrupted code's instruction and frame pointers `(pc, fp)`, from
/// a [`FaultHandler`]'s context; `None` where they are not known (a NULL
/// context, or a target other than x86-64).
///
/// # Safety
/// `ctx` is NULL or the `ucontext_t` the kernel passed a [`FaultHandler`].
pub unsafe fn interrupted_frame(ctx: *mut c_void) -> Option<(usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    if !ctx.is_null() {
        // SAFETY: the caller's promise.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let fp = uc.uc_mcontext.gregs[libc::REG_RBP as usize] as usize;
        return Some((pc, fp));
    }
    let _ = ctx;
    None
}

/// Registers `f` to run at normal process exit (`atexit`); false when it
/// could not be registered.
pub fn at_exit(f: extern "C" fn()) -> bool {
    // SAFETY: registering a plain function.
    errno::keep(|| unsafe { libc::atexit(f) == 0 })
}

/// Ends the process now with status `code`: stdio's buffers are flushed,
/// exit handlers do not run (`fflush(NULL)`, then `_exit`).
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: flushing every stdio stream, then ending the process.
    unsafe {
        libc::fflush(ptr::null_mut());
        libc::_exit(code)
    }
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
        assert!(env(c"PATH").is_some_and(|v| !v.is_empty()));
        assert!(env(c"LIBALLOC_NO_SUCH_VARIABLE").is_none());
    }

    #[test]
    fn ids() {
        assert_eq!(process_id(), std::process::id());
        let main = thread_id();
        assert_ne!(std::thread::spawn(thread_id).join().unwrap(), main);
    }
}
