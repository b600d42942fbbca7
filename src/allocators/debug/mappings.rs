//! The guarded reservations a debug allocator keeps for reuse.
//!
//! A block with guard pages is a reservation of its own: `[guard | body |
//! guard]`. By the time the quarantine lets go of one, its body has been
//! given back to the OS and made inaccessible (its free did both), so the
//! reservation is exactly what a fresh `mmap(PROT_NONE)` would return.
//! Instead of unmapping it, the instance keeps up to [`SLOTS`] of them, at
//! most [`MAX_BYTES`] of address space in all (no memory: nothing in them
//! is committed), and the next guarded block that fits in one -- the
//! smallest kept that is large enough, at most twice what it needs --
//! takes it whole: the block ends at the upper guard page and the pages
//! below it stay inaccessible, a wider lower guard (address space only). A block then costs one `mprotect` to obtain instead of
//! `mmap` and `mprotect` (or an `munmap` to cut a kept one to size), and
//! nothing to give back instead of `munmap`: fewer changes to the
//! process's mappings, which every thread's `mmap`, `munmap` and
//! `mprotect` serialize on (two threads churning 256 KiB-4 MiB blocks
//! made 59,000 `munmap` calls in 60,000 operations when kept reservations
//! were cut to size; 26,000 when the first kept one up to a quarter
//! larger was taken; 12,000 with the best fit up to twice the size).
//!
//! Lock-free: a slot is one word, the reservation's page number and page
//! count, claimed and filled by compare-and-swap, so neither `fork()` nor a
//! signal can leave anything held.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sys;

/// Reservations kept at most.
pub(super) const SLOTS: usize = 16;
/// Address space kept at most, in bytes.
pub(super) const MAX_BYTES: usize = 64 << 20;
/// Bits of a slot word that hold the page count.
const COUNT_BITS: u32 = 24;

/// The kept reservations of one instance.
pub(super) struct Mappings {
    /// Each: the reservation's first page number << [`COUNT_BITS`] | its
    /// page count; 0 when empty.
    slots: [AtomicU64; SLOTS],
    /// Bytes of the reservations kept.
    bytes: AtomicUsize,
}

impl Mappings {
    /// No reservation kept.
    pub(super) const fn new() -> Self {
        Mappings {
            slots: [const { AtomicU64::new(0) }; SLOTS],
            bytes: AtomicUsize::new(0),
        }
    }

    /// The smallest kept reservation of at least `len` bytes and at most
    /// twice that, now the caller's (decommitted and inaccessible): its
    /// start and length. `None` when none fits.
    pub(super) fn take(&self, len: usize) -> Option<(usize, usize)> {
        if self.bytes.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let page = sys::page_size();
        let (lo, hi) = (len, len.saturating_mul(2));
        // The best fit: the smallest kept reservation in range.
        loop {
            let mut best: Option<(&AtomicU64, u64, usize)> = None;
            for s in &self.slots {
                let v = s.load(Ordering::Relaxed);
                if v == 0 {
                    continue;
                }
                let have = (v & ((1 << COUNT_BITS) - 1)) as usize * page;
                if have < lo || have > hi || best.is_some_and(|b| b.2 <= have) {
                    continue;
                }
                best = Some((s, v, have));
            }
            let (s, v, have) = best?;
            if s.compare_exchange(v, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                self.bytes.fetch_sub(have, Ordering::Relaxed);
                return Some(((v >> COUNT_BITS) as usize * page, have));
            }
        }
    }

    /// Keeps reservation `[base, base + len)` (page-aligned, decommitted
    /// and inaccessible) for a later [`Mappings::take`]; false, nothing
    /// done, when there is no room: the caller then unmaps it.
    pub(super) fn put(&self, base: usize, len: usize) -> bool {
        let page = sys::page_size();
        debug_assert!(base.is_multiple_of(page) && len.is_multiple_of(page) && len > 0);
        let pages = len / page;
        let first = base / page;
        if pages >= 1 << COUNT_BITS || first >= 1 << (64 - COUNT_BITS) {
            return false;
        }
        if self.bytes.fetch_add(len, Ordering::Relaxed) + len > MAX_BYTES {
            self.bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        let word = ((first as u64) << COUNT_BITS) | pages as u64;
        for s in &self.slots {
            if s.compare_exchange(0, word, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        self.bytes.fetch_sub(len, Ordering::Relaxed);
        false
    }

    /// Unmaps every kept reservation (the instance is going away).
    pub(super) fn release(&self) {
        let page = sys::page_size();
        for s in &self.slots {
            let v = s.swap(0, Ordering::Acquire);
            if v != 0 {
                let (base, pages) = (
                    (v >> COUNT_BITS) as usize * page,
                    (v & ((1 << COUNT_BITS) - 1)) as usize,
                );
                // SAFETY: a reservation this instance made and kept; no
                // block lives in it.
                unsafe { sys::unmap(base as *mut u8, pages * page) };
                self.bytes.fetch_sub(pages * page, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_reservations_that_fit_and_no_more() {
        let m = Mappings::new();
        let page = sys::page_size();
        let a = sys::reserve(8 * page).unwrap().as_ptr() as usize;
        let b = sys::reserve(40 * page).unwrap().as_ptr() as usize;
        let c = sys::reserve(12 * page).unwrap().as_ptr() as usize;
        assert!(m.put(b, 40 * page));
        assert!(m.put(a, 8 * page));
        // Too small, or more than twice too large: not taken.
        assert_eq!(m.take(41 * page), None);
        assert_eq!(m.take(19 * page), None);
        assert_eq!(m.take(3 * page), None);
        // The smallest that fits, wherever it is kept.
        assert!(m.put(c, 12 * page));
        assert_eq!(m.take(6 * page), Some((a, 8 * page)));
        assert_eq!(m.take(6 * page), Some((c, 12 * page)));
        assert_eq!(m.take(6 * page), None);
        assert_eq!(m.take(20 * page), Some((b, 40 * page)));
        // Bounded in bytes: a reservation beyond MAX_BYTES is refused.
        let big = MAX_BYTES + page;
        assert!(!m.put(a, big));
        assert!(m.put(a, 8 * page));
        m.release();
        assert_eq!(m.bytes.load(Ordering::Relaxed), 0);
        assert_eq!(m.take(8 * page), None);
        // SAFETY: our reservations, not kept any more.
        unsafe {
            sys::unmap(b as *mut u8, 40 * page);
            sys::unmap(c as *mut u8, 12 * page);
        }
    }

    #[test]
    fn bounded_in_slots() {
        let m = Mappings::new();
        let page = sys::page_size();
        let base = sys::reserve((SLOTS + 1) * page).unwrap().as_ptr() as usize;
        for i in 0..SLOTS {
            assert!(m.put(base + i * page, page));
        }
        assert!(!m.put(base + SLOTS * page, page));
        assert_eq!(m.bytes.load(Ordering::Relaxed), SLOTS * page);
        for _ in 0..SLOTS {
            assert!(m.take(page).is_some());
        }
        assert_eq!(m.bytes.load(Ordering::Relaxed), 0);
        // SAFETY: the whole reservation, no slot keeps any of it now.
        unsafe { sys::unmap(base as *mut u8, (SLOTS + 1) * page) };
    }
}
