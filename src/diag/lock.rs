//! The diagnostics runtime's lock: a spin lock that yields the CPU while it
//! waits.
//!
//! It never allocates and has no waiter queue, so it may be taken inside
//! `malloc`. A process that forks while another thread holds it would inherit
//! it held: the malloc shim takes it around `fork()` (see `lock_for_fork` in
//! `mod.rs`), and the child resets it with [`SpinLock::reset`].

use core::sync::atomic::{AtomicBool, Ordering};

/// A mutual-exclusion flag; [`SpinLock::lock`] returns a guard that releases it.
pub struct SpinLock(AtomicBool);

/// Holds a [`SpinLock`] until dropped.
pub struct Guard<'a>(&'a SpinLock);

impl SpinLock {
    /// A free lock.
    pub const fn new() -> Self {
        SpinLock(AtomicBool::new(false))
    }

    /// Takes the lock, yielding the CPU between attempts.
    pub fn lock(&self) -> Guard<'_> {
        let mut spins = 0u32;
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            // Wait with plain loads (the cache line stays shared instead of
            // bouncing between the waiters' failed exchanges).
            while self.0.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 256 {
                    core::hint::spin_loop();
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
                }
            }
        }
        Guard(self)
    }

    /// Takes the lock if it can within a bounded number of attempts (for
    /// signal handlers, which must not wait for their own thread).
    pub fn try_lock(&self) -> Option<Guard<'_>> {
        for _ in 0..1000 {
            if self
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(Guard(self));
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Takes the lock without a guard (for `fork()` handlers); release it with
    /// [`SpinLock::reset`].
    pub fn acquire_raw(&self) {
        core::mem::forget(self.lock());
    }

    /// Marks the lock free, whoever held it: for the parent after `fork()`
    /// and for the child, where the holder no longer exists.
    pub fn reset(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        (self.0).0.store(false, Ordering::Release);
    }
}
