//! The stack depot: every distinct stack trace stored once, named by a
//! 4-byte id, so a block's record holds two ids instead of two arrays of
//! frames (records shrink from ~170 bytes to one cache line; most
//! allocations of a program come from few call sites).
//!
//! Traces are appended to an arena of 1 MiB chunks mapped from the OS as
//! needed: a trace of `n` frames takes `n + 1` words, its length then its
//! frames, never straddling two chunks, and its id is the index of its
//! first word counted over all chunks (0 is the empty trace). An
//! open-addressing table of `hash << 32 | id` words (linear probing,
//! doubled when half full) finds a trace already stored. The hash is
//! computed by the caller before it takes the instance's lock ([`hash`]);
//! interning runs under it. When the arena is full (256 chunks) or memory
//! runs out, new traces get id 0 (no trace) rather than fail the
//! allocation. Nothing is ever removed: a depot lives as long as its
//! instance.
//!
//! In front of the table sits a direct-mapped cache of traces found
//! recently (by hash: the hash, where the trace is stored, its id; 1024
//! entries, mapped with the first trace stored): a program allocates from
//! few sites again and again, and a hit costs one hash compare and the
//! frames' compare, without the table's probe and the arena's chunk
//! lookup. A hit still compares every frame, so the depot stays exact: an
//! id always names exactly the trace interned.

use core::ptr;

use crate::sys;

/// Words per arena chunk (1 MiB).
const CHUNK_WORDS: usize = 1 << 17;
/// Most chunks (256 MiB of traces).
const MAX_CHUNKS: usize = 256;
/// Initial table slots.
const FIRST_CAP: usize = 1024;
/// Log2 of the entries of the recent-trace cache.
const RECENT_LOG2: u32 = 10;
/// Entries of the recent-trace cache.
const RECENT: usize = 1 << RECENT_LOG2;

/// A cache entry: a stored trace's hash, its length word in the arena, its
/// id (hash 0, which no trace has: empty).
#[derive(Clone, Copy)]
struct Recent {
    hash: u64,
    at: *const usize,
    id: u32,
}

impl Recent {
    const EMPTY: Recent = Recent {
        hash: 0,
        at: ptr::null(),
        id: 0,
    };
}

/// The cache of a depot that has stored no trace yet: all empty, never
/// written (so lookups need no test for a missing cache).
struct NoRecent([Recent; RECENT]);
// SAFETY: never written; its pointers are all null.
unsafe impl Sync for NoRecent {}
static NO_RECENT: NoRecent = NoRecent([Recent::EMPTY; RECENT]);

/// The hash of a trace (its frames), never 0 for a non-empty trace:
/// [`hash_step`] over the frames from [`HASH_SEED`], then [`hash_finish`]
/// (the stack walk computes it on the way, `trace::capture_tid`).
#[inline]
pub fn hash(frames: &[usize]) -> u64 {
    let h = frames.iter().fold(HASH_SEED, |h, &f| hash_step(h, f));
    hash_finish(h)
}

/// The start of [`hash`].
pub(crate) const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// Folds one frame into a trace hash: xor, then multiply by an odd
/// constant. Each step is a bijection of the running value, so two traces
/// of one length that differ in a single frame get different values; the
/// finish brings the high bits, where the frames' differences may lie,
/// down to the low ones.
#[inline(always)]
pub fn hash_step(h: u64, frame: usize) -> u64 {
    (h ^ frame as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Finishes a trace hash: the high bits folded into the low ones (the
/// table indexes by the low bits). The length needs no mixing in: every
/// frame took a step.
#[inline(always)]
pub fn hash_finish(h: u64) -> u64 {
    (h ^ (h >> 29)) | 1
}

/// Distinct traces of one instance.
pub struct Depot {
    /// The arena's chunks (null past `nchunks`).
    chunks: [*mut usize; MAX_CHUNKS],
    nchunks: usize,
    /// Next free word, counted over all chunks (word 0 is never used: id 0
    /// = none).
    top: usize,
    slots: *mut u64,
    cap: usize,
    count: usize,
    /// Traces found recently, indexed by the top bits of their hash
    /// ([`RECENT`] entries: [`NO_RECENT`] until mapped).
    recent: *mut Recent,
}

impl Depot {
    /// An empty depot (mapped on first use).
    pub const fn new() -> Self {
        Depot {
            chunks: [ptr::null_mut(); MAX_CHUNKS],
            nchunks: 0,
            top: 1,
            slots: ptr::null_mut(),
            cap: 0,
            count: 0,
            recent: &raw const NO_RECENT.0 as *mut Recent,
        }
    }

    /// The id of `frames` (hashed by [`hash`] into `h`), storing them if
    /// they are new; 0 for an empty trace or when out of memory. A trace
    /// already stored (the common case) is found inline; storing one is
    /// out of line.
    #[inline(always)]
    pub fn intern(&mut self, frames: &[usize], h: u64) -> u32 {
        debug_assert_eq!(h, hash(frames));
        let e = (h >> (64 - RECENT_LOG2)) as usize;
        // SAFETY: e < RECENT, the entries of the cache (mapped or empty).
        let r = unsafe { *self.recent.add(e) };
        // SAFETY: a cache entry with a non-zero hash points at a stored
        // trace (its length word, then its frames).
        if r.hash == h && unsafe { stored_is(r.at, frames) } {
            return r.id;
        }
        self.intern_uncached(frames, h, e)
    }

    /// [`Depot::intern`] past the cache: the table, then cache entry `e`
    /// names the trace found or stored.
    #[inline(never)]
    fn intern_uncached(&mut self, frames: &[usize], h: u64, e: usize) -> u32 {
        if frames.is_empty() {
            return 0;
        }
        let id = if self.cap == 0 {
            self.store(frames, h)
        } else {
            match self.probe(frames, h) {
                Ok(id) => id,
                Err(_) => self.store(frames, h),
            }
        };
        if id != 0 && self.recent_mapped() {
            // SAFETY: e < RECENT, the entries of the mapped cache.
            unsafe {
                *self.recent.add(e) = Recent {
                    hash: h,
                    at: self.word(id as usize),
                    id,
                }
            };
        }
        id
    }

    /// Whether the cache is mapped, mapping it if not (false when out of
    /// memory: the depot then works without it).
    fn recent_mapped(&mut self) -> bool {
        if !ptr::eq(self.recent, &NO_RECENT.0[0]) {
            return true;
        }
        // Zeroed memory: every entry empty (hash 0).
        let Some(m) = sys::map(RECENT * core::mem::size_of::<Recent>()) else {
            return false;
        };
        self.recent = m.as_ptr().cast();
        true
    }

    /// Looks `frames` (hashed into `h`) up: `Ok(id)` when stored, else
    /// `Err(i)` with the empty slot `i` that ends its probe path. The table
    /// has slots (`cap > 0`) and at least one empty.
    #[inline(always)]
    fn probe(&self, frames: &[usize], h: u64) -> Result<u32, usize> {
        debug_assert!(self.cap > 0);
        let mask = self.cap - 1;
        let tag = h >> 32;
        let mut i = h as usize & mask;
        loop {
            // SAFETY: i < cap, the slot array has cap entries.
            let s = unsafe { *self.slots.add(i) };
            if s == 0 {
                return Err(i);
            }
            if s >> 32 == tag && self.holds(s as u32, frames) {
                return Ok(s as u32);
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether stored trace `id` is `frames`.
    #[inline(always)]
    fn holds(&self, id: u32, frames: &[usize]) -> bool {
        if id == 0 || id as usize >= self.top {
            return false;
        }
        // SAFETY: ids below `top` name stored traces: a length word, then
        // that many frames, all in one mapped chunk.
        unsafe { stored_is(self.word(id as usize), frames) }
    }

    /// [`Depot::intern`] of a trace not found: grows the table when half
    /// full, then stores the trace (unless it is empty, or stored after
    /// all).
    #[cold]
    #[inline(never)]
    fn store(&mut self, frames: &[usize], h: u64) -> u32 {
        if frames.is_empty() {
            return 0;
        }
        if (self.count + 1) * 2 > self.cap && !self.grow() {
            return 0;
        }
        let tag = h >> 32;
        let i = match self.probe(frames, h) {
            Ok(id) => return id,
            Err(i) => i,
        };
        let Some(id) = self.room(frames.len() + 1) else {
            return 0;
        };
        let p = self.word(id);
        // SAFETY: `room` gave `frames.len() + 1` words at `p`, in one chunk.
        unsafe {
            *p = frames.len();
            ptr::copy_nonoverlapping(frames.as_ptr(), p.add(1), frames.len());
            *self.slots.add(i) = (tag << 32) | id as u64;
        }
        self.count += 1;
        id as u32
    }

    /// Reserves `words` words in one chunk; their id (first word's index).
    fn room(&mut self, words: usize) -> Option<usize> {
        debug_assert!(words <= CHUNK_WORDS);
        let mut id = self.top;
        if id % CHUNK_WORDS + words > CHUNK_WORDS {
            // Not in the rest of this chunk: start the next one.
            id = id.next_multiple_of(CHUNK_WORDS);
        }
        let end = id + words;
        let need = end.div_ceil(CHUNK_WORDS);
        if need > MAX_CHUNKS || end > u32::MAX as usize {
            return None;
        }
        while self.nchunks < need {
            let m = sys::map(CHUNK_WORDS * 8)?;
            self.chunks[self.nchunks] = m.as_ptr().cast();
            self.nchunks += 1;
        }
        self.top = end;
        Some(id)
    }

    /// The address of arena word `id` (in a mapped chunk).
    #[inline]
    fn word(&self, id: usize) -> *mut usize {
        // SAFETY (for callers): ids below `top` lie in mapped chunks.
        self.chunks[id / CHUNK_WORDS].wrapping_add(id % CHUNK_WORDS)
    }

    /// The frames of trace `id` (empty for 0).
    pub fn get(&self, id: u32) -> &[usize] {
        if id == 0 || id as usize >= self.top {
            return &[];
        }
        let p = self.word(id as usize);
        // SAFETY: ids below `top` name stored traces: a length word, then
        // that many frames, all in one mapped chunk.
        unsafe { core::slice::from_raw_parts(p.add(1), *p) }
    }

    /// Distinct traces stored.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no trace is stored.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn grow(&mut self) -> bool {
        let new_cap = if self.cap == 0 {
            FIRST_CAP
        } else {
            self.cap * 2
        };
        let Some(m) = sys::map(new_cap * 8) else {
            return false;
        };
        let slots: *mut u64 = m.as_ptr().cast();
        let mask = new_cap - 1;
        for j in 0..self.cap {
            // SAFETY: j < cap.
            let s = unsafe { *self.slots.add(j) };
            if s == 0 {
                continue;
            }
            let h = hash(self.get(s as u32));
            let mut i = h as usize & mask;
            // SAFETY: i < new_cap; the new table is at most half full.
            unsafe {
                while *slots.add(i) != 0 {
                    i = (i + 1) & mask;
                }
                *slots.add(i) = s;
            }
        }
        if self.cap > 0 {
            // SAFETY: the old slot array was mapped by us with this size.
            unsafe { sys::unmap(self.slots.cast(), self.cap * 8) };
        }
        self.slots = slots;
        self.cap = new_cap;
        true
    }

    /// Unmaps everything (every id becomes invalid).
    pub fn release(&mut self) {
        if !ptr::eq(self.recent, &NO_RECENT.0[0]) {
            // SAFETY: mapped by `recent_mapped` with this size.
            unsafe { sys::unmap(self.recent.cast(), RECENT * core::mem::size_of::<Recent>()) };
        }
        if self.cap > 0 {
            // SAFETY: mapped by `grow` with this size.
            unsafe { sys::unmap(self.slots.cast(), self.cap * 8) };
        }
        for &c in &self.chunks[..self.nchunks] {
            // SAFETY: mapped by `room` with this size.
            unsafe { sys::unmap(c.cast(), CHUNK_WORDS * 8) };
        }
        *self = Depot::new();
    }
}

/// Whether the trace stored at `at` (its length word) is `frames`.
///
/// # Safety
/// `at` points at a stored trace: a length word, then that many frames.
#[inline(always)]
unsafe fn stored_is(at: *const usize, frames: &[usize]) -> bool {
    let n = frames.len();
    let (s, f) = (at.wrapping_add(1), frames.as_ptr());
    // SAFETY: caller's promise; both are read only below the length,
    // checked equal first. Two frames per round (one branch for both).
    unsafe {
        if *at != n {
            return false;
        }
        let mut k = 0;
        while k + 2 <= n {
            if (*s.add(k) ^ *f.add(k)) | (*s.add(k + 1) ^ *f.add(k + 1)) != 0 {
                return false;
            }
            k += 2;
        }
        k == n || *s.add(k) == *f.add(k)
    }
}

impl Default for Depot {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once() {
        let mut d = Depot::new();
        assert_eq!(d.intern(&[], hash(&[])), 0);
        let mut ids = [0u32; 3000];
        for (i, id) in ids.iter_mut().enumerate() {
            let t = [0x1000 + i, 0x2000, i % 7];
            *id = d.intern(&t, hash(&t));
            assert_ne!(*id, 0);
        }
        for (i, &id) in ids.iter().enumerate() {
            let t = [0x1000 + i, 0x2000, i % 7];
            assert_eq!(d.intern(&t, hash(&t)), id);
            assert_eq!(d.get(id), &t);
        }
        assert_eq!(d.len(), 3000);
        d.release();
        assert!(d.is_empty());
    }

    #[test]
    fn recent_traces_stay_exact() {
        // Traces that share a prefix, or whose cache entry another trace
        // took over, keep their own ids.
        let mut d = Depot::new();
        let a = [0x1000usize, 0x2000, 0x3000];
        let b = [0x1000usize, 0x2000];
        let c = [0x1000usize, 0x2000, 0x3001];
        let ia = d.intern(&a, hash(&a));
        let ib = d.intern(&b, hash(&b));
        let ic = d.intern(&c, hash(&c));
        assert!(ia != ib && ib != ic && ia != ic);
        for round in 0..3 {
            assert_eq!(d.intern(&a, hash(&a)), ia, "round {round}");
            assert_eq!(d.intern(&c, hash(&c)), ic, "round {round}");
            assert_eq!(d.intern(&b, hash(&b)), ib, "round {round}");
        }
        assert_eq!(d.get(ia), &a);
        assert_eq!(d.get(ib), &b);
        assert_eq!(d.get(ic), &c);
        d.release();
    }

    #[test]
    fn traces_never_straddle_chunks() {
        // 40-frame traces fill a chunk to within a few words of its end;
        // the next one starts a new chunk and every trace reads back.
        let mut d = Depot::new();
        let n = 2 * CHUNK_WORDS / 41 + 5;
        let mut ids = std::vec::Vec::new();
        for i in 0..n {
            let t: [usize; 40] = core::array::from_fn(|k| i * 64 + k + 1);
            let id = d.intern(&t, hash(&t));
            assert_ne!(id, 0);
            ids.push(id);
        }
        assert!(d.nchunks >= 3);
        for (i, &id) in ids.iter().enumerate() {
            let t: [usize; 40] = core::array::from_fn(|k| i * 64 + k + 1);
            assert_eq!(d.get(id), &t);
        }
        d.release();
    }
}
