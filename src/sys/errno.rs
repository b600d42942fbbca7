//! The calling thread's `errno`: read, set, and kept unchanged across a
//! system call.
//!
//! `free` must leave `errno` as it found it, and every wrapper in `sys`
//! promises the same ([`keep`]); going through `__errno_location()` each
//! time is a call into libc. glibc's `errno` lives in the static TLS block
//! of libc.so, at the same offset from the thread pointer in every thread,
//! so on x86-64 the offset is learned once (from `__errno_location()` minus
//! the thread pointer) and afterwards `errno` is one load relative to
//! `%fs`. Other targets call `__errno_location()`. This is the one place
//! that reaches `errno`.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use crate::sys::tls::thread_pointer;
    use core::sync::atomic::{AtomicIsize, Ordering};

    /// `errno`'s offset from the thread pointer; 0 = not learned yet.
    static OFFSET: AtomicIsize = AtomicIsize::new(0);

    #[cold]
    fn learn() -> *mut i32 {
        // SAFETY: __errno_location returns this thread's errno slot.
        let p = unsafe { libc::__errno_location() };
        let off = p as isize - thread_pointer();
        if off != 0 {
            OFFSET.store(off, Ordering::Relaxed);
        }
        p
    }

    /// The calling thread's `errno` slot.
    #[inline]
    pub fn location() -> *mut i32 {
        let off = OFFSET.load(Ordering::Relaxed);
        if off == 0 {
            return learn();
        }
        (thread_pointer() + off) as *mut i32
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod imp {
    /// The calling thread's `errno` slot.
    #[inline]
    pub fn location() -> *mut i32 {
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { libc::__errno_location() }
    }
}

pub use imp::location;

/// The calling thread's `errno`.
#[inline]
pub fn get() -> i32 {
    // SAFETY: location() is this thread's errno slot, valid while the
    // thread lives.
    unsafe { *location() }
}

/// Sets the calling thread's `errno`.
#[inline]
pub fn set(v: i32) {
    // SAFETY: as in `get`.
    unsafe { *location() = v }
}

/// Runs `call` (one system call) and puts the thread's `errno` back as it
/// was: the wrappers in `sys` report failures by return values only.
#[inline]
pub fn keep<T>(call: impl FnOnce() -> T) -> T {
    let saved = get();
    let r = call();
    set(saved);
    r
}

/// Runs `call` (one system call) and returns its result with the `errno`
/// it left, putting the thread's `errno` back as it was.
#[inline]
pub fn keep_with<T>(call: impl FnOnce() -> T) -> (T, i32) {
    let saved = get();
    let r = call();
    let err = get();
    set(saved);
    (r, err)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_libc_in_every_thread() {
        let check = || {
            // SAFETY: __errno_location has no preconditions.
            let libc_slot = unsafe { libc::__errno_location() };
            assert_eq!(super::location(), libc_slot);
            super::set(1234);
            assert_eq!(super::get(), 1234);
            // SAFETY: the thread's own errno slot.
            assert_eq!(unsafe { *libc_slot }, 1234);
        };
        check();
        std::thread::spawn(check).join().unwrap();
        check();
    }

    #[test]
    fn keep_puts_errno_back() {
        super::set(4321);
        let (r, err) = super::keep_with(|| {
            super::set(libc::EINTR);
            7
        });
        assert_eq!((r, err), (7, libc::EINTR));
        assert_eq!(super::get(), 4321);
        assert_eq!(super::keep(|| super::set(1)), ());
        assert_eq!(super::get(), 4321);
    }
}
