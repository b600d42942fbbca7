//! Thread-local storage: the thread pointer, static TLS slots, and
//! thread-exit keys.
//!
//! Static slots are C `_Thread_local` variables with the initial-exec model
//! (`src/sys/c/*_tls.c`), reached from Rust without `__tls_get_addr` (which
//! may allocate, and costs a call on every access). Such a variable lives
//! at the same offset from the thread pointer in every thread. A
//! [`StaticSlot`] learns that offset once, from a C function that returns
//! the variable's address in the calling thread, and from then on finds the
//! calling thread's copy with one load of `%fs:0` and one add. x86-64 Linux
//! only; elsewhere callers use `thread_local!`.
//!
//! A [`Key`] is a pthread key whose destructor runs when a thread that set
//! a value exits; created early (a library constructor) its index is low
//! and `pthread_setspecific` never allocates.

use super::errno;
use core::ffi::c_void;
#[cfg(target_arch = "x86_64")]
use core::sync::atomic::{AtomicIsize, Ordering};

/// The calling thread's pointer (the TCB, which on x86-64 Linux points to
/// itself at `%fs:0`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn thread_pointer() -> isize {
    let tp: isize;
    // SAFETY: on x86-64 Linux %fs:0 holds the thread pointer (the TCB
    // points to itself); reading it has no side effects.
    unsafe {
        core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags, pure));
    }
    tp
}

/// One initial-exec TLS variable defined in C.
#[cfg(target_arch = "x86_64")]
pub struct StaticSlot {
    /// Offset of the variable from the thread pointer (0 = not known yet:
    /// a static TLS variable is never at offset 0, where the TCB is).
    offset: AtomicIsize,
    /// Returns the variable's address in the calling thread.
    address: unsafe extern "C" fn() -> *mut c_void,
}

#[cfg(target_arch = "x86_64")]
impl StaticSlot {
    /// The slot of the variable whose address `address` returns (a C
    /// function with no side effects, callable from any thread).
    pub const fn new(address: unsafe extern "C" fn() -> *mut c_void) -> Self {
        StaticSlot {
            offset: AtomicIsize::new(0),
            address,
        }
    }

    /// The calling thread's copy of the variable.
    #[inline(always)]
    pub fn get(&self) -> *mut c_void {
        let mut off = self.offset.load(Ordering::Relaxed);
        if off == 0 {
            off = self.learn();
        }
        thread_pointer().wrapping_add(off) as *mut c_void
    }

    #[cold]
    fn learn(&self) -> isize {
        // SAFETY: the C function returns the calling thread's address of
        // the variable (see `new`).
        let slot = unsafe { (self.address)() } as isize;
        let off = slot - thread_pointer();
        self.offset.store(off, Ordering::Relaxed);
        off
    }
}

/// A thread-exit key: a per-thread value and a destructor run on it when
/// the thread exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(libc::pthread_key_t);

impl Key {
    /// Creates a key whose `destructor` runs, at thread exit, on each
    /// thread's non-null value; `None` when the process has no keys left.
    pub fn create(destructor: unsafe extern "C" fn(*mut c_void)) -> Option<Key> {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: key is a valid out pointer; the destructor is a plain
        // function.
        let rc = errno::keep(|| unsafe { libc::pthread_key_create(&mut key, Some(destructor)) });
        (rc == 0).then_some(Key(key))
    }

    /// The key's number (to store it in an atomic).
    pub fn to_raw(self) -> u32 {
        self.0
    }

    /// The key numbered `raw` ([`Key::to_raw`] of a created key).
    pub fn from_raw(raw: u32) -> Key {
        Key(raw)
    }

    /// Sets the calling thread's value; false when it could not be stored.
    // The value is stored, never dereferenced here.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn set(self, value: *const c_void) -> bool {
        // SAFETY: a key made by `create` (an unknown key is refused with
        // EINVAL); the value is stored, not dereferenced.
        errno::keep(|| unsafe { libc::pthread_setspecific(self.0, value) == 0 })
    }

    /// Deletes the key (no destructor runs).
    ///
    /// # Safety
    /// No thread uses the key afterwards.
    pub unsafe fn delete(self) {
        // SAFETY: the caller's promise.
        errno::keep(|| unsafe { libc::pthread_key_delete(self.0) });
    }
}
