//! A fixed-size cache of word pairs (a key, never 0, and a value, never 0)
//! that any thread reads and writes without a lock, in memory mapped on
//! first use: the unwinders' memory of what they decoded (`cfi.rs`'s rows,
//! the profiler's traces by frame-pointer walk).
//!
//! How it works. An entry is chosen by a multiplicative hash of its key
//! (direct-mapped: a newer key replaces an older one in its entry). Each
//! entry is a seqlock: a writer makes its sequence number odd with one
//! compare-and-swap, writes the key and value, and makes it even again; a
//! reader takes the pair only when the number was even and unchanged
//! across its reads. A writer that finds the entry being written gives up
//! (it is a cache), so nothing ever waits, a signal handler may use it,
//! and `fork()` cannot leave a lock held (at worst one entry of the child
//! stays odd, and unused). Nothing allocates: the table comes from
//! `sys::map_lazy` and is never unmapped.

use core::sync::atomic::{
    AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
    fence,
};

use crate::sys;

/// One entry: its key (0: none) and value behind a sequence number (odd
/// while written). All-zero bytes are an empty entry.
struct Entry {
    seq: AtomicU32,
    key: AtomicU64,
    value: AtomicU64,
}

/// A cache of `N` entries (a power of two).
pub struct SeqCache<const N: usize> {
    /// The table (0 until [`SeqCache::init`] maps it).
    base: AtomicUsize,
}

impl<const N: usize> SeqCache<N> {
    /// Bits of a hash that pick an entry.
    const BITS: u32 = N.trailing_zeros();

    /// An unmapped cache: every lookup misses until [`SeqCache::init`].
    pub const fn new() -> Self {
        assert!(N.is_power_of_two() && N > 1);
        SeqCache {
            base: AtomicUsize::new(0),
        }
    }

    /// Maps the table (its pages are touched as entries fill); false when
    /// it cannot be mapped. Later calls do nothing.
    pub fn init(&self) -> bool {
        if self.base.load(Acquire) != 0 {
            return true;
        }
        match sys::map_lazy(N * core::mem::size_of::<Entry>()) {
            Some(p) => {
                // Two threads may map it at once: one mapping stays unused.
                let _ = self
                    .base
                    .compare_exchange(0, p.as_ptr() as usize, Release, Acquire);
                true
            }
            None => false,
        }
    }

    /// The entry of `key`, when the table is mapped.
    #[inline(always)]
    fn entry(&self, key: u64) -> Option<&Entry> {
        let base = self.base.load(Acquire);
        if base == 0 {
            return None;
        }
        let i = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::BITS)) as usize;
        debug_assert!(i < N);
        // SAFETY: the table is mapped for N entries and never unmapped;
        // all-zero bytes are a valid Entry (atomics).
        Some(unsafe { &*(base as *const Entry).add(i) })
    }

    /// The value cached for `key` (not 0), if any.
    #[inline(always)]
    pub fn lookup(&self, key: u64) -> Option<u64> {
        debug_assert!(key != 0);
        let e = self.entry(key)?;
        let s1 = e.seq.load(Acquire);
        if s1 & 1 == 0 && e.key.load(Relaxed) == key {
            let v = e.value.load(Relaxed);
            fence(Acquire);
            if e.seq.load(Relaxed) == s1 && v != 0 {
                return Some(v);
            }
        }
        None
    }

    /// Caches `value` (not 0) for `key` (not 0), unless the entry is being
    /// written by another thread.
    pub fn store(&self, key: u64, value: u64) {
        debug_assert!(key != 0 && value != 0);
        let Some(e) = self.entry(key) else {
            return;
        };
        let s = e.seq.load(Relaxed);
        if s & 1 == 0 && e.seq.compare_exchange(s, s + 1, Acquire, Relaxed).is_ok() {
            fence(Release);
            e.key.store(key, Relaxed);
            e.value.store(value, Relaxed);
            e.seq.store(s + 2, Release);
        }
    }
}

impl<const N: usize> Default for SeqCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_value_of_each_key_until_another_key_takes_its_entry() {
        static C: SeqCache<16> = SeqCache::new();
        assert_eq!(C.lookup(5), None);
        C.store(5, 1); // not mapped yet: dropped
        assert_eq!(C.lookup(5), None);
        assert!(C.init() && C.init());
        C.store(5, 50);
        C.store(7, 70);
        assert_eq!(C.lookup(5), Some(50));
        assert_eq!(C.lookup(7), Some(70));
        C.store(5, 51);
        assert_eq!(C.lookup(5), Some(51));
        // Keys that share an entry replace each other.
        let slot = |k: u64| k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60;
        let other = (8..10_000).find(|&k| slot(k) == slot(5)).unwrap();
        C.store(other, 9);
        assert_eq!(C.lookup(other), Some(9));
        assert_eq!(C.lookup(5), None);
    }

    #[test]
    fn threads_read_only_pairs_that_were_written_together() {
        static C: SeqCache<64> = SeqCache::new();
        assert!(C.init());
        // Every value is its key times 3: a torn pair would show.
        let ts: std::vec::Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..100_000u64 {
                        let k = (i * 7 + t) % 200 + 1;
                        if let Some(v) = C.lookup(k) {
                            assert_eq!(v, k * 3);
                        }
                        C.store(k, k * 3);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
    }
}
