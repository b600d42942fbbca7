//! A small futex mutex that never allocates and can be reset after `fork()`.
//!
//! The lock word is 0 (unlocked), 1 (locked) or 2 (locked, waiters may
//! sleep). `lock` tries a compare-and-swap, spins briefly, then marks the
//! word contended and sleeps in `FUTEX_WAIT`; `unlock` stores 0 and wakes one
//! sleeper only when the word said there might be one. Process-private
//! futexes; no heap, no panics, so it may be used on allocation paths.
//! [`RawLock::reset_in_child`] forces the word back to 0: after `fork()` only
//! the forking thread exists in the child, so a lock the parent's other
//! threads held is unusable unless reset (see `thread_safe.rs`).
//! [`RawLock::guard`] takes it for a scope.
//!
//! This is the crate's one lock for allocation paths, the debug
//! allocator's included (a sleeping waiter costs nothing, where a spinning
//! one takes a core from the holder on a small machine).
//! [`RawLock::try_guard`] waits a bounded number of spins and never sleeps,
//! for fault handlers.

use core::sync::atomic::{AtomicU32, Ordering};

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// The lock word. Zero-initialised memory is an unlocked lock.
#[repr(transparent)]
pub struct RawLock(AtomicU32);

impl Default for RawLock {
    fn default() -> Self {
        Self::new()
    }
}

impl RawLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        RawLock(AtomicU32::new(UNLOCKED))
    }

    /// Takes the lock, sleeping while another thread holds it.
    #[inline]
    pub fn lock(&self) {
        if self
            .0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..100 {
            core::hint::spin_loop();
            if self.0.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .0
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // Mark contended; whoever unlocks will wake us.
        while self.0.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex_wait(&self.0, CONTENDED);
        }
    }

    /// Takes the lock if it is free; true when taken.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The calling thread holds the lock (or, in a `fork` handler, the
    /// forking thread took it in the prepare handler).
    #[inline]
    pub unsafe fn unlock(&self) {
        debug_assert!(self.0.load(Ordering::Relaxed) != UNLOCKED);
        if self.0.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex_wake(&self.0);
        }
    }

    /// Forces the lock to unlocked, whoever held it.
    ///
    /// # Safety
    /// Only in a freshly forked child (no other thread can be using it), or
    /// when the caller otherwise knows no thread holds or waits for it.
    pub unsafe fn reset_in_child(&self) {
        self.0.store(UNLOCKED, Ordering::Relaxed);
    }

    /// Takes the lock until the returned guard is dropped, if that takes
    /// no more than `spins` retries (spinning between them, never
    /// sleeping): for a thread that must not wait long, or at all for
    /// itself, such as a fault handler that may have interrupted the
    /// holder.
    pub fn try_guard(&self, spins: u32) -> Option<Guard<'_>> {
        for _ in 0..spins {
            if self.try_lock() {
                return Some(Guard(self));
            }
            core::hint::spin_loop();
        }
        if self.try_lock() {
            Some(Guard(self))
        } else {
            None
        }
    }

    /// Takes the lock until the returned guard is dropped.
    #[inline]
    pub fn guard(&self) -> Guard<'_> {
        self.lock();
        Guard(self)
    }

    /// Whether the lock is currently held by someone (for tests).
    pub fn is_locked(&self) -> bool {
        self.0.load(Ordering::Relaxed) != UNLOCKED
    }
}

/// Holds a [`RawLock`] until dropped.
pub struct Guard<'a>(&'a RawLock);

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard was made by `guard`, which took the lock.
        unsafe { self.0.unlock() };
    }
}

/// Sleeps while `word` holds `expected` (`FUTEX_WAIT_PRIVATE`; a spurious
/// or signal wake-up just returns).
pub fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: FUTEX_WAIT_PRIVATE reads the word at a valid address and
    // sleeps only while it equals `expected`; a NULL timeout waits forever.
    super::errno::keep(|| unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
        )
    });
}

/// Wakes one thread sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE_PRIVATE on a valid address wakes at most one waiter.
    super::errno::keep(|| unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn excludes() {
        struct Shared {
            lock: RawLock,
            counter: AtomicUsize,
        }
        let s = Arc::new(Shared {
            lock: RawLock::new(),
            counter: AtomicUsize::new(0),
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.lock.lock();
                        // A non-atomic read-modify-write made safe by the lock.
                        let v = s.counter.load(Ordering::Relaxed);
                        s.counter.store(v + 1, Ordering::Relaxed);
                        // SAFETY: this thread holds the lock.
                        unsafe { s.lock.unlock() };
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.counter.load(Ordering::Relaxed), 40_000);
    }

    #[test]
    fn try_guard_gives_up_on_a_held_lock_and_leaves_it_held() {
        let l = RawLock::new();
        let g = l.try_guard(10).unwrap();
        assert!(l.try_guard(10).is_none());
        assert!(l.is_locked());
        drop(g);
        assert!(!l.is_locked());
        assert!(l.try_guard(0).is_some());
        assert!(!l.is_locked());
    }

    #[test]
    fn try_lock_and_reset() {
        let l = RawLock::new();
        assert!(l.try_lock());
        assert!(!l.try_lock());
        assert!(l.is_locked());
        // SAFETY: no other thread knows this lock.
        unsafe { l.reset_in_child() };
        assert!(!l.is_locked());
        assert!(l.try_lock());
        // SAFETY: held by this thread.
        unsafe { l.unlock() };
        {
            let _g = l.guard();
            assert!(l.is_locked());
        }
        assert!(!l.is_locked());
    }
}
