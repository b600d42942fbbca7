//! The heap profiler's store of stack traces: each distinct trace is kept
//! once, and a sample refers to it by a 32-bit id.
//!
//! Samples of one allocation site share their trace, so a record holds an
//! id instead of up to 64 frames (a record is 56 bytes instead of 570, and
//! a full sample table costs a few MiB, not tens).
//!
//! How it works, without locks or malloc: an arena of [`WORDS`] words
//! (mapped lazily) is handed out by a bump cursor; a trace is stored as its
//! length followed by its frames. An open-addressing index of [`SLOTS`]
//! words maps a trace's hash to its place: each word packs 32 bits of the
//! hash and the arena offset plus one, and is published by a
//! compare-and-swap after the frames are written (release), so a reader
//! that finds the word (acquire) reads complete frames. Entries are never
//! removed. Two threads storing one new trace at once may both write it
//! (the loser's copy is wasted space); when the arena or the index is full,
//! [`intern`] returns `None` and the sample is counted as lost.

use core::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

use crate::sys;

/// Words of the arena (8 MiB of address space).
const WORDS: usize = 1 << 20;
/// Words of the index (a power of two).
const SLOTS: usize = 1 << 16;
/// Index words probed before giving up.
const PROBES: usize = 64;

static ARENA: AtomicUsize = AtomicUsize::new(0);
static INDEX: AtomicUsize = AtomicUsize::new(0);
/// Words of the arena handed out.
static BUMP: AtomicUsize = AtomicUsize::new(0);

/// Maps the arena and the index; false when they cannot be mapped. Safe
/// to race: one caller's pair is published (the arena first, claimed by
/// compare-and-swap, then the index), the others unmap theirs and wait for
/// it.
pub fn init() -> bool {
    if INDEX.load(Acquire) != 0 {
        return true;
    }
    let (a, i) = (sys::map_lazy(WORDS * 8), sys::map_lazy(SLOTS * 8));
    let (Some(a), Some(i)) = (a, i) else {
        // SAFETY: whichever mapping was made is ours and unused.
        unsafe {
            if let Some(a) = a {
                sys::unmap(a.as_ptr(), WORDS * 8);
            }
            if let Some(i) = i {
                sys::unmap(i.as_ptr(), SLOTS * 8);
            }
        }
        return INDEX.load(Acquire) != 0;
    };
    if ARENA
        .compare_exchange(0, a.as_ptr() as usize, AcqRel, Acquire)
        .is_ok()
    {
        INDEX.store(i.as_ptr() as usize, Release);
        return true;
    }
    // Another caller won: its index follows its arena at once.
    // SAFETY: our own fresh mappings, never published.
    unsafe {
        sys::unmap(a.as_ptr(), WORDS * 8);
        sys::unmap(i.as_ptr(), SLOTS * 8);
    }
    while INDEX.load(Acquire) == 0 {
        core::hint::spin_loop();
    }
    true
}

/// In a child of `fork()`: a store that the parent's thread claimed (its
/// arena published) but had not finished (no index yet) is dropped, so that
/// the child's [`init`] maps its own instead of waiting for a thread that
/// is not there.
pub fn fork_child() {
    if INDEX.load(Relaxed) == 0 {
        ARENA.store(0, Relaxed);
    }
}

/// Arena word `i` (< [`WORDS`]).
fn word(i: usize) -> &'static AtomicUsize {
    debug_assert!(i < WORDS);
    // SAFETY: the arena is mapped (callers run after `init` succeeded) for
    // WORDS words and never unmapped; zero bytes are a valid atomic.
    unsafe { &*(ARENA.load(Relaxed) as *const AtomicUsize).add(i) }
}

/// Index word `i`.
fn slot(i: usize) -> &'static AtomicU64 {
    // SAFETY: as in `word`, for the SLOTS words of the index.
    unsafe { &*(INDEX.load(Relaxed) as *const AtomicU64).add(i & (SLOTS - 1)) }
}

/// A trace's hash (FNV-1a over the frames, then mixed).
fn hash(frames: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 31;
    h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Whether the trace stored at `off` is `frames`.
fn equals(off: usize, frames: &[usize]) -> bool {
    word(off).load(Relaxed) == frames.len()
        && frames
            .iter()
            .enumerate()
            .all(|(k, &f)| word(off + 1 + k).load(Relaxed) == f)
}

/// The id of trace `frames` (at most 64 frames), storing it when new;
/// `None` when the depot is full or not mapped.
pub fn intern(frames: &[usize]) -> Option<u32> {
    if INDEX.load(Acquire) == 0 {
        return None;
    }
    let h = hash(frames);
    let tag = h >> 32;
    let home = h as usize;
    let mut mine: Option<usize> = None;
    for k in 0..PROBES {
        let s = slot(home.wrapping_add(k));
        let mut v = s.load(Acquire);
        if v == 0 {
            // Store the frames (once), then try to publish them here.
            let off = match mine {
                Some(off) => off,
                None => {
                    let off = BUMP.fetch_add(frames.len() + 1, Relaxed);
                    if off + frames.len() + 1 > WORDS {
                        return None;
                    }
                    word(off).store(frames.len(), Relaxed);
                    for (j, &f) in frames.iter().enumerate() {
                        word(off + 1 + j).store(f, Relaxed);
                    }
                    mine = Some(off);
                    off
                }
            };
            let w = (tag << 32) | (off as u64 + 1);
            match s.compare_exchange(0, w, Release, Acquire) {
                Ok(_) => return Some(off as u32),
                Err(now) => v = now,
            }
        }
        if v >> 32 == tag && equals((v & 0xffff_ffff) as usize - 1, frames) {
            return Some(((v & 0xffff_ffff) - 1) as u32);
        }
    }
    None
}

/// One bit per arena word: the traces the dump being written has written
/// already (a trace's id is its arena offset). Only the dumper touches
/// them, and dumps never overlap (`profile::dump`).
static WRITTEN: [AtomicU64; WORDS / 64] = [const { AtomicU64::new(0) }; WORDS / 64];

/// Forgets which traces were written: a dump starts.
pub fn start_dump() {
    let used = BUMP.load(Relaxed).min(WORDS).div_ceil(64);
    for w in &WRITTEN[..used] {
        w.store(0, Relaxed);
    }
}

/// Whether this dump has yet to write trace `id`: true once per dump and
/// id (see [`start_dump`]), false for an id outside the arena.
pub fn first_write(id: u32) -> bool {
    let i = id as usize;
    if i >= WORDS {
        return false;
    }
    let bit = 1u64 << (i % 64);
    // A trace already written (most samples share their trace with
    // others) costs a load, not a locked read-modify-write.
    WRITTEN[i / 64].load(Relaxed) & bit == 0 && WRITTEN[i / 64].fetch_or(bit, Relaxed) & bit == 0
}

/// Copies trace `id` into `out`; its length.
pub fn frames(id: u32, out: &mut [usize; super::profile::MAX_FRAMES]) -> usize {
    let off = id as usize;
    if INDEX.load(Acquire) == 0 || off >= WORDS {
        return 0;
    }
    let n = word(off).load(Relaxed).min(out.len()).min(WORDS - off - 1);
    for (k, o) in out[..n].iter_mut().enumerate() {
        *o = word(off + 1 + k).load(Relaxed);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_stored_once() {
        assert!(init());
        let a = [0x1000usize, 0x2000, 0x3000];
        let b = [0x1000usize, 0x2000];
        let ia = intern(&a).unwrap();
        let ib = intern(&b).unwrap();
        assert_ne!(ia, ib);
        assert_eq!(intern(&a), Some(ia));
        let mut out = [0usize; super::super::profile::MAX_FRAMES];
        assert_eq!(frames(ia, &mut out), 3);
        assert_eq!(out[..3], a);
        assert_eq!(frames(ib, &mut out), 2);
        assert_eq!(intern(&[]).map(|i| frames(i, &mut out)), Some(0));
    }

    #[test]
    fn a_dump_writes_each_trace_once() {
        assert!(init());
        let id = intern(&[0x5000usize, 0x6000]).unwrap();
        start_dump();
        assert!(first_write(id));
        assert!(!first_write(id));
        start_dump();
        assert!(first_write(id));
        assert!(!first_write(WORDS as u32));
    }
}
