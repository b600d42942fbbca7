//! The reserve: process-wide arenas of segment-sized slots, shared by all
//! threads, from which segments and huge blocks are carved and to which
//! they return.
//!
//! An arena is one mapping of up to 64 slots of [`SLOT`] bytes (a segment),
//! aligned to a slot. Its state is two words: `free` (bit i: slot i is
//! free) and `dirty` (bit i: free slot i may still hold resident pages), so
//! taking and giving back slots are single atomic operations and no lock is
//! ever held (a `fork()` can interrupt any of them and leave the child
//! consistent). A segment takes one slot; a huge block of up to
//! [`RESERVE_HUGE_MAX`] bytes takes a run of consecutive slots. Claims
//! prefer dirty slots: memory that is still resident is reused without a
//! page fault, and a thread that exits hands its empty segments here still
//! committed, so the next thread takes them for free. A segment prefers a
//! dirty slot that last held a segment of its own kind ([`claim_like`]), so
//! that its pages fall where the resident ones are.
//!
//! Nothing is given back to the OS on free. Each slot remembers when it was
//! freed; a purge pass ([`purge`]) decommits (`MADV_DONTNEED`) the dirty
//! slots that stayed free longer than the purge delay, in one pass over
//! every arena. It runs from allocation slow paths at most once per delay,
//! from the background purger (`purger.rs`) while the program is idle, and
//! at once from `la_smp_collect` / `malloc_trim`.
//!
//! A free slot that held a segment or a huge block keeps a segment header of
//! kind `CACHED` in its first bytes and its chunk-map entry (see
//! `segment.rs`), so that a late `free` of a pointer into it is recognised
//! as a free of freed memory; a purge leaves that first page resident, so
//! the header stays valid for a `free` that reads it at any moment.
//!
//! Arenas are made on demand, small first (4 slots, 16 MiB of address
//! space, so a small program reserves little), doubling up to 64 slots; when
//! a reservation fails (an address-space limit) smaller ones are tried down
//! to the slots needed. Arenas are never unmapped, so a pointer read from a
//! racing structure always points to mapped memory.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::segment::SEGMENT_SIZE;
use super::stats;
use crate::sys;

/// Bytes of a slot: one segment.
pub(crate) const SLOT: usize = SEGMENT_SIZE;
/// Slots of the largest arena (one bit each in a word).
const MAX_SLOTS: usize = 64;
/// Arenas at most (address space beyond them is mapped directly).
const MAX_ARENAS: usize = 1024;
/// Slots of the first arena; each later one doubles, up to [`MAX_SLOTS`].
const FIRST_SLOTS: usize = 4;
/// Huge blocks whose mapping (header offset included) fits in this many
/// bytes are carved from the reserve; larger ones are mapped directly.
pub(crate) const RESERVE_HUGE_MAX: usize = 32 << 20;
/// `start` of an arena whose reservation failed.
const DEAD: usize = 1;

/// One arena. A zeroed `Arena` is an arena not made yet.
struct Arena {
    /// Address of slot 0 (0: not made yet, [`DEAD`]: failed).
    start: AtomicUsize,
    /// Number of slots.
    slots: AtomicU32,
    /// Bit i: slot i is free.
    free: AtomicU64,
    /// Bit i: free slot i may hold resident pages (never set for a slot
    /// in use: a claim clears the bits it takes).
    dirty: AtomicU64,
    /// When each slot was last freed (ms, wrapping).
    freed_at: [AtomicU32; MAX_SLOTS],
    /// OS pages of each free slot counted as committed (see `stats.rs`).
    resident: [AtomicU32; MAX_SLOTS],
}

#[allow(clippy::declare_interior_mutable_const)]
const NEW_ARENA: Arena = Arena {
    start: AtomicUsize::new(0),
    slots: AtomicU32::new(0),
    free: AtomicU64::new(0),
    dirty: AtomicU64::new(0),
    freed_at: [const { AtomicU32::new(0) }; MAX_SLOTS],
    resident: [const { AtomicU32::new(0) }; MAX_SLOTS],
};

static ARENAS: [Arena; MAX_ARENAS] = [NEW_ARENA; MAX_ARENAS];
/// Arena indices handed out (some may still be being made, or dead).
static ARENA_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Time of the next purge pass run from a slow path (ms).
static NEXT_PURGE: AtomicU64 = AtomicU64::new(0);

/// Slots taken from the reserve: where, how many, and whether any of them
/// may hold resident memory.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    /// Address of the first slot.
    pub addr: usize,
    /// Arena index.
    pub arena: u32,
    /// Index of the first slot in its arena.
    pub slot: u32,
    /// Slots taken.
    pub count: u32,
    /// Bit i: slot `slot + i` was dirty (may hold nonzero, resident pages).
    pub dirty: u64,
    /// Bytes of the slots' resident pages that were counted as committed
    /// (the reserve's): the claimer takes them off the count
    /// ([`Claim::uncount`]), or folds them into what it counts itself.
    pub counted: usize,
}

impl Claim {
    /// Takes the slots' resident pages off the committed bytes: their new
    /// user counts what it touches again.
    pub fn uncount(&self) {
        if self.counted > 0 {
            stats::sub_committed(self.counted);
        }
    }
}

/// Mask of `n` bits from bit `i`.
#[inline]
fn run_mask(i: u32, n: u32) -> u64 {
    debug_assert!(n >= 1 && i + n <= 64);
    if n >= 64 {
        u64::MAX
    } else {
        ((1u64 << n) - 1) << i
    }
}

/// First bit index where `n` consecutive bits of `x` are set.
#[inline]
fn find_run(x: u64, n: u32) -> Option<u32> {
    debug_assert!((1..=64).contains(&n));
    let mut m = x;
    let mut k = 1;
    while k < n && m != 0 {
        m &= x >> k;
        k += 1;
    }
    if m == 0 {
        None
    } else {
        Some(m.trailing_zeros())
    }
}

/// Slots needed for `bytes`.
#[inline]
pub fn slots_for(bytes: usize) -> usize {
    bytes.div_ceil(SLOT)
}

/// Takes `n` consecutive slots (`1 <= n <= 64`), preferring dirty ones,
/// making a new arena when none has room; `None` when out of address space.
pub fn claim(n: usize) -> Option<Claim> {
    debug_assert!((1..=MAX_SLOTS).contains(&n));
    let n = n as u32;
    let count = ARENA_COUNT.load(Ordering::Acquire).min(MAX_ARENAS);
    for want in [Want::Dirty, Want::Any] {
        for (idx, a) in ARENAS.iter().enumerate().take(count) {
            if a.start.load(Ordering::Acquire) <= DEAD {
                continue;
            }
            if let Some(c) = claim_in(idx, a, n, want) {
                return Some(c);
            }
        }
    }
    grow(n)
}

/// [`claim`] of one slot, preferring a dirty slot for which `like(addr)`
/// holds (`addr`: the slot's start, whose first bytes hold the header its
/// last user left; see the module comment). A segment of a kind takes back
/// a slot that last held a segment of that kind, so its pages fall where
/// the last user's did and touch the memory that user made resident: a
/// program whose threads come and go keeps the footprint of one thread
/// instead of the union of every layout its threads ever made. `like`
/// reads memory another thread may claim and write at any moment; it is a
/// preference only.
///
/// Without such a slot: with `clean_next`, a clean slot comes before a
/// dirty one that held something else (for a segment whose layout would
/// keep another user's resident pages for as long as it lives, see
/// `segment_acquire`), a new arena's when no arena has one free; then
/// [`claim`].
pub fn claim_like(like: impl Fn(usize) -> bool, clean_next: bool) -> Option<Claim> {
    let count = ARENA_COUNT.load(Ordering::Acquire).min(MAX_ARENAS);
    for (idx, a) in ARENAS.iter().enumerate().take(count) {
        let start = a.start.load(Ordering::Acquire);
        if start <= DEAD {
            continue;
        }
        let mut cand = a.free.load(Ordering::Relaxed) & a.dirty.load(Ordering::Relaxed);
        while cand != 0 {
            let i = cand.trailing_zeros();
            cand &= cand - 1;
            if !like(start + i as usize * SLOT) {
                continue;
            }
            let bit = 1u64 << i;
            let mut free = a.free.load(Ordering::Relaxed);
            while free & bit != 0 {
                match a.free.compare_exchange_weak(
                    free,
                    free & !bit,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(taken(idx, a, i, 1)),
                    Err(cur) => free = cur,
                }
            }
        }
    }
    if clean_next {
        for (idx, a) in ARENAS.iter().enumerate().take(count) {
            if a.start.load(Ordering::Acquire) <= DEAD {
                continue;
            }
            if let Some(c) = claim_in(idx, a, 1, Want::Clean) {
                return Some(c);
            }
        }
        // No clean slot free: a new arena's, rather than one of the dirty
        // slots that huge blocks come back to (most often a run of them:
        // a segment in one of its slots splits it, and the next huge block
        // that needed the whole run takes fresh slots elsewhere, faulted in
        // anew). Under an address-space limit that refuses a new arena, a
        // dirty slot after all.
        if let Some(c) = grow(1) {
            return Some(c);
        }
    }
    claim(1)
}

/// Which free slots a claim in one arena ([`claim_in`]) may take.
#[derive(Clone, Copy)]
enum Want {
    Dirty,
    Clean,
    Any,
}

/// The first run of `n` free slots of one arena of the kind `want` asks.
fn claim_in(idx: usize, a: &Arena, n: u32, want: Want) -> Option<Claim> {
    let mut free = a.free.load(Ordering::Relaxed);
    loop {
        let cand = match want {
            Want::Dirty => free & a.dirty.load(Ordering::Relaxed),
            Want::Clean => free & !a.dirty.load(Ordering::Relaxed),
            Want::Any => free,
        };
        let i = find_run(cand, n)?;
        let mask = run_mask(i, n);
        match a
            .free
            .compare_exchange_weak(free, free & !mask, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return Some(taken(idx, a, i, n)),
            Err(cur) => free = cur,
        }
    }
}

/// Completes a claim of slots `[i, i + n)` of arena `idx`, now ours.
fn taken(idx: usize, a: &Arena, i: u32, n: u32) -> Claim {
    let mask = run_mask(i, n);
    let dirty = (a.dirty.fetch_and(!mask, Ordering::Relaxed) & mask) >> i;
    let mut pages = 0usize;
    for s in i..i + n {
        pages += a.resident[s as usize].swap(0, Ordering::Relaxed) as usize;
    }
    Claim {
        addr: a.start.load(Ordering::Relaxed) + i as usize * SLOT,
        arena: idx as u32,
        slot: i,
        count: n,
        dirty,
        counted: pages * sys::page_size(),
    }
}

/// Makes a new arena and takes `n` slots from it.
#[inline(never)]
fn grow(n: u32) -> Option<Claim> {
    let idx = ARENA_COUNT.fetch_add(1, Ordering::AcqRel);
    if idx >= MAX_ARENAS {
        ARENA_COUNT.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    let a = &ARENAS[idx];
    let mut slots = (FIRST_SLOTS << idx.min(4)).clamp(n as usize, MAX_SLOTS);
    let base = loop {
        if let Some(p) = sys::map_aligned_lazy(slots * SLOT, SLOT) {
            break p.as_ptr() as usize;
        }
        if slots == n as usize {
            // Give the index back if nobody took one since; else it stays
            // dead (skipped by every scan).
            if ARENA_COUNT
                .compare_exchange(idx + 1, idx, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                a.start.store(DEAD, Ordering::Release);
            }
            return None;
        }
        slots = (slots / 2).max(n as usize);
    };
    let all = run_mask(0, slots as u32);
    let mine = run_mask(0, n);
    a.slots.store(slots as u32, Ordering::Relaxed);
    a.dirty.store(0, Ordering::Relaxed);
    a.free.store(all & !mine, Ordering::Relaxed);
    a.start.store(base, Ordering::Release);
    Some(Claim {
        addr: base,
        arena: idx as u32,
        slot: 0,
        count: n,
        dirty: 0,
        counted: 0,
    })
}

/// Gives slots `[slot, slot + count)` of arena `arena` back. `dirty`: they
/// may hold resident pages (they then wait for the purge delay);
/// `counted`: bytes of them still counted as committed (see `stats.rs`),
/// which stay counted until the slots are purged or claimed again. A slot
/// that held a header keeps one of kind `CACHED` (the caller wrote it).
pub fn release(arena: u32, slot: u32, count: u32, dirty: bool, counted: usize) {
    let a = &ARENAS[arena as usize];
    debug_assert!(slot + count <= a.slots.load(Ordering::Relaxed));
    let mask = run_mask(slot, count);
    debug_assert_eq!(a.free.load(Ordering::Relaxed) & mask, 0);
    let page = sys::page_size();
    let mut left = counted.div_ceil(page);
    if left * page > counted {
        // The caller counted whole pages: round the byte count like them.
        stats::add_committed(left * page - counted);
    }
    let now = sys::now_ms() as u32;
    for s in slot..slot + count {
        let share = left.min(SLOT / page);
        left -= share;
        a.resident[s as usize].store(share as u32, Ordering::Relaxed);
        a.freed_at[s as usize].store(now, Ordering::Relaxed);
    }
    debug_assert_eq!(left, 0);
    if dirty {
        a.dirty.fetch_or(mask, Ordering::Relaxed);
    }
    a.free.fetch_or(mask, Ordering::Release);
    if dirty {
        super::purger::notify(counted.max(sys::page_size()));
    }
}

/// Runs [`purge`] if a pass is due (at most one per purge delay, from any
/// thread's slow path).
pub fn maybe_purge(now: u64, delay: u64) {
    let next = NEXT_PURGE.load(Ordering::Relaxed);
    if now >= next
        && NEXT_PURGE
            .compare_exchange(next, now + delay, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        purge(now, delay, false);
    }
}

/// Decommits the dirty free slots that stayed free for `delay` ms or more
/// (all of them when `force`). Returns whether dirty slots remain.
pub fn purge(now: u64, delay: u64, force: bool) -> bool {
    let now32 = now as u32;
    let count = ARENA_COUNT.load(Ordering::Acquire).min(MAX_ARENAS);
    let mut left = false;
    for a in ARENAS.iter().take(count) {
        let start = a.start.load(Ordering::Acquire);
        if start <= DEAD {
            continue;
        }
        let mut m = a.free.load(Ordering::Relaxed) & a.dirty.load(Ordering::Relaxed);
        let mut sel = 0u64;
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let age = now32.wrapping_sub(a.freed_at[i].load(Ordering::Relaxed));
            if force || age as u64 >= delay {
                sel |= 1 << i;
            } else {
                left = true;
            }
        }
        if sel != 0 {
            purge_slots(a, start, sel);
        }
    }
    left
}

/// Takes the free slots of `sel` that are still free, decommits them and
/// gives them back clean.
fn purge_slots(a: &Arena, start: usize, sel: u64) {
    let mut free = a.free.load(Ordering::Relaxed);
    let take = loop {
        let take = free & sel;
        if take == 0 {
            return;
        }
        match a
            .free
            .compare_exchange_weak(free, free & !take, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => break take,
            Err(cur) => free = cur,
        }
    };
    // The slots are ours now: nobody else reads or writes their memory.
    let was_dirty = a.dirty.fetch_and(!take, Ordering::Relaxed) & take;
    let mut m = take;
    let mut pages = 0usize;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        pages += a.resident[i].swap(0, Ordering::Relaxed) as usize;
        if was_dirty & (1 << i) == 0 {
            continue;
        }
        let addr = start + i * SLOT;
        // A slot that holds a header keeps its first page (the header, so
        // that a racing `free` reads a valid `CACHED` one); the rest reads
        // back as zeros.
        let keep = if super::segment::chunk_head_at(addr) {
            sys::page_size()
        } else {
            0
        };
        // SAFETY: a free slot we claimed: inside our arena mapping, holding
        // no live data past its header.
        unsafe { sys::decommit((addr + keep) as *mut u8, SLOT - keep) };
    }
    if pages > 0 {
        stats::sub_committed(pages * sys::page_size());
    }
    a.free.fetch_or(take, Ordering::Release);
}

/// Whether any free slot may still hold resident memory (a racy hint for
/// the purger).
pub fn has_dirty() -> bool {
    let count = ARENA_COUNT.load(Ordering::Acquire).min(MAX_ARENAS);
    ARENAS
        .iter()
        .take(count)
        .any(|a| a.free.load(Ordering::Relaxed) & a.dirty.load(Ordering::Relaxed) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_found_where_they_fit() {
        assert_eq!(find_run(0b1011_1000, 3), Some(3));
        assert_eq!(find_run(0b1011_1000, 4), None);
        assert_eq!(find_run(0b1, 1), Some(0));
        assert_eq!(find_run(0, 1), None);
        assert_eq!(find_run(u64::MAX, 64), Some(0));
        assert_eq!(find_run(u64::MAX << 1, 64), None);
        assert_eq!(find_run(0xff00_0000_0000_0000, 8), Some(56));
        assert_eq!(run_mask(56, 8), 0xff00_0000_0000_0000);
        assert_eq!(run_mask(0, 64), u64::MAX);
    }

    #[test]
    fn claimed_slots_are_aligned_distinct_and_come_back() {
        let a = claim(1).unwrap();
        let b = claim(3).unwrap();
        a.uncount();
        b.uncount();
        assert_eq!(a.addr % SLOT, 0);
        assert_eq!(b.addr % SLOT, 0);
        assert!(a.addr + SLOT <= b.addr || b.addr + 3 * SLOT <= a.addr);
        // SAFETY: the slots are ours: write to every one of them.
        unsafe {
            *(a.addr as *mut u8).add(SLOT - 1) = 1;
            *(b.addr as *mut u8).add(3 * SLOT - 1) = 1;
        }
        release(b.arena, b.slot, b.count, false, 0);
        release(a.arena, a.slot, a.count, false, 0);
    }
}
