//! Fast access to the calling thread's `errno`.
//!
//! `free` must leave `errno` as it found it, so it saves and restores it on
//! every call; going through `__errno_location()` each time is a call into
//! libc. glibc's `errno` lives in the static TLS block of libc.so, at the
//! same offset from the thread pointer in every thread, so on x86-64 the
//! shim learns that offset once (from `__errno_location()` minus `%fs:0`)
//! and afterwards reaches `errno` with one load relative to `%fs`. Other
//! targets call `__errno_location()`.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod imp {
    use core::sync::atomic::{AtomicIsize, Ordering};

    /// `errno`'s offset from the thread pointer; 0 = not learned yet.
    static OFFSET: AtomicIsize = AtomicIsize::new(0);

    #[inline]
    fn thread_pointer() -> isize {
        let tp: isize;
        // SAFETY: on x86-64 Linux %fs:0 holds the thread pointer (the TCB
        // points to itself); reading it has no side effects.
        unsafe {
            core::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly, preserves_flags, pure));
        }
        tp
    }

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
}
