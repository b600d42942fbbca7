//! Memory of where the call-frame unwinder went from the places where a
//! frame-pointer walk stops, so that a capture stopping there again takes
//! the same frames back without unwinding (`trace::set_unwind_tables`).
//!
//! How it works. A walk stops at a frame of code built without frame
//! pointers; the unwinder (`cfi::backtrace_from_noting`) goes on from the
//! return address into that frame, the stack pointer there and the
//! frame-pointer register. What it finds is a function of the first two,
//! of the stack words it reads (return addresses, saved frame pointers;
//! the rules it looks up for code addresses never change) and of the
//! third when a rule uses it (code without frame pointers keeps other
//! values there, which change from call to call, and its rules do not read
//! it). An entry keeps the return address, the stack pointer, the frame
//! pointer when it was used, the frames found and every stack word read
//! with its value. A later stop at the same place takes the frames when
//! every kept word still holds its value: a load and a compare per word,
//! about two a frame, where the unwinder looks a rule up for each frame. A
//! different call path that reaches the same stop differs in some word the
//! unwinder read (at the latest, the return address where the paths part),
//! so it never takes another path's frames. The typical hit is the bottom
//! of a thread (`main` and the C library's start under it) or a loop of a
//! program without frame pointers calling `malloc` from the same place.
//!
//! Entries are direct-mapped by a hash of the place (a newer stop
//! replaces an older one), each behind a sequence number as in
//! `seqcache.rs`: a writer that finds an entry being written gives up, a
//! reader takes an entry only when its number was even and unchanged, so
//! nothing waits, nothing allocates, and `fork()` leaves no lock held. The
//! table is mapped on first use and never unmapped.

use core::mem::MaybeUninit;
use core::sync::atomic::{
    AtomicU32, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
    fence,
};

use crate::sys;

/// Entries (a power of two).
const ENTRIES: usize = 512;

/// Most frames an entry keeps (beyond the stop's own).
pub(crate) const FRAMES: usize = 15;

/// Most stack words an entry keeps.
pub(crate) const READS: usize = 30;

/// `Entry::counts`'s bit for a walk that ended (the stack's end, or a frame
/// the unwinder cannot read), not one cut short by the room it was given.
const ENDED: u32 = 1 << 31;

/// `Entry::counts`'s bit for a walk whose rules used the frame pointer
/// given (`Entry::fp`).
const FP_USED: u32 = 1 << 30;

/// One stop (all-zero bytes: empty, as `ret` is never 0 in a used entry).
#[repr(C)]
struct Entry {
    seq: AtomicU32,
    /// Frames (bits 0-7), words (bits 8-15), [`ENDED`], [`FP_USED`].
    counts: AtomicU32,
    ret: AtomicUsize,
    sp: AtomicUsize,
    fp: AtomicUsize,
    frames: [AtomicUsize; FRAMES],
    /// Address, then value, of each word read.
    words: [AtomicUsize; 2 * READS],
}

/// The table (0 until [`init`] maps it).
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Maps the table (touched as entries fill); false when it cannot be
/// mapped. Later calls do nothing.
pub fn init() -> bool {
    if BASE.load(Acquire) != 0 {
        return true;
    }
    match sys::map_lazy(ENTRIES * core::mem::size_of::<Entry>()) {
        Some(p) => {
            // Two threads may map it at once: one mapping stays unused.
            let _ = BASE.compare_exchange(0, p.as_ptr() as usize, Release, Acquire);
            true
        }
        None => false,
    }
}

/// The entry of the stop at `(ret, sp)`, when the table is mapped.
#[inline(always)]
fn entry(ret: usize, sp: usize) -> Option<&'static Entry> {
    let base = BASE.load(Acquire);
    if base == 0 {
        return None;
    }
    let k = (ret ^ sp.rotate_left(21)) as u64;
    let i = (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - ENTRIES.trailing_zeros())) as usize;
    debug_assert!(i < ENTRIES);
    // SAFETY: the table is mapped for ENTRIES entries and never unmapped;
    // all-zero bytes are a valid Entry (atomics).
    Some(unsafe { &*(base as *const Entry).add(i) })
}

/// The frames the unwinder found beyond the stop at `(ret, sp)` with frame
/// pointer `fp`, written to `out` (at most `out.len()`), when an entry
/// holds the stop (and `fp`, if its walk used it), every word it kept
/// still holds its value in the current thread's stack `[lo, lo + span)`,
/// and it has as many frames as `out` holds or its walk ended; their
/// count. `None`: unwind.
#[inline]
pub fn lookup(
    ret: usize,
    sp: usize,
    fp: usize,
    lo: usize,
    span: usize,
    out: &mut [MaybeUninit<usize>],
) -> Option<usize> {
    let e = entry(ret, sp)?;
    let s1 = e.seq.load(Acquire);
    if s1 & 1 != 0 || e.ret.load(Relaxed) != ret || e.sp.load(Relaxed) != sp {
        return None;
    }
    let c = e.counts.load(Relaxed);
    if c & FP_USED != 0 && e.fp.load(Relaxed) != fp {
        return None;
    }
    let (nf, nw) = ((c & 0xff) as usize, ((c >> 8) & 0xff) as usize);
    if nf > FRAMES || nw > READS || (nf < out.len() && c & ENDED == 0) {
        return None;
    }
    for i in 0..nw {
        let (a, v) = (
            e.words[2 * i].load(Relaxed),
            e.words[2 * i + 1].load(Relaxed),
        );
        // Inside this thread's stack (the entry may be half written by
        // another thread: the address is checked before it is read).
        if a.wrapping_sub(lo) > span.wrapping_sub(8) || a & 7 != 0 {
            return None;
        }
        // SAFETY: an aligned word of the current thread's stack.
        if unsafe { *(a as *const usize) } != v {
            return None;
        }
    }
    let k = nf.min(out.len());
    for (o, f) in out.iter_mut().zip(&e.frames[..k]) {
        *o = MaybeUninit::new(f.load(Relaxed));
    }
    fence(Acquire);
    (e.seq.load(Relaxed) == s1).then_some(k)
}

/// Remembers that the unwinder found `frames` beyond the stop at `(ret,
/// sp)` reading stack `words` (address, value) and, when `fp` is given,
/// using that frame pointer, and whether its walk `ended` (else it stopped
/// for want of room); nothing when they do not fit an entry, or another
/// thread is writing the entry.
pub fn store(
    ret: usize,
    sp: usize,
    fp: Option<usize>,
    frames: &[usize],
    words: &[(usize, usize)],
    ended: bool,
) {
    debug_assert!(ret != 0);
    if frames.len() > FRAMES || words.len() > READS {
        return;
    }
    let Some(e) = entry(ret, sp) else {
        return;
    };
    let s = e.seq.load(Relaxed);
    if s & 1 != 0 || e.seq.compare_exchange(s, s + 1, Acquire, Relaxed).is_err() {
        return;
    }
    fence(Release);
    e.ret.store(ret, Relaxed);
    e.sp.store(sp, Relaxed);
    e.fp.store(fp.unwrap_or(0), Relaxed);
    for (slot, &f) in e.frames.iter().zip(frames) {
        slot.store(f, Relaxed);
    }
    for (i, &(a, v)) in words.iter().enumerate() {
        e.words[2 * i].store(a, Relaxed);
        e.words[2 * i + 1].store(v, Relaxed);
    }
    let c = frames.len() as u32
        | (words.len() as u32) << 8
        | if ended { ENDED } else { 0 }
        | if fp.is_some() { FP_USED } else { 0 };
    e.counts.store(c, Relaxed);
    e.seq.store(s + 2, Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(out: &[MaybeUninit<usize>], n: usize) -> std::vec::Vec<usize> {
        // SAFETY: lookup wrote the first n.
        out[..n]
            .iter()
            .map(|f| unsafe { f.assume_init() })
            .collect()
    }

    #[test]
    fn a_stop_is_taken_back_only_while_the_words_read_still_hold() {
        assert!(init() && init());
        // A "stack" of words the walk read.
        let mut stack = [0usize; 8];
        let (lo, span) = (stack.as_ptr() as usize, 8 * 8);
        let (ret, sp, fp) = (0x1111, lo + 16, 0x2222);
        let mut out = [MaybeUninit::<usize>::uninit(); 4];
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out), None);
        stack[2] = 0xaaaa;
        stack[5] = 0xbbbb;
        let words = [(lo + 16, 0xaaaa), (lo + 40, 0xbbbb)];
        store(ret, sp, Some(fp), &[0xaaaa, 0xbbbb], &words, true);
        let n = lookup(ret, sp, fp, lo, span, &mut out).expect("a hit");
        assert_eq!(frames_of(&out, n), [0xaaaa, 0xbbbb]);
        // Fewer wanted: a prefix.
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out[..1]), Some(1));
        // Another stop, another frame pointer when the walk used it, or a
        // word that changed: a miss.
        assert_eq!(lookup(ret, sp + 8, fp, lo, span, &mut out), None);
        assert_eq!(lookup(ret, sp, fp + 1, lo, span, &mut out), None);
        store(ret, sp, None, &[0xaaaa, 0xbbbb], &words, true);
        assert_eq!(lookup(ret, sp, fp + 1, lo, span, &mut out), Some(2));
        // SAFETY: a plain write to our own array (read through a raw
        // address by lookup).
        unsafe { core::ptr::write_volatile(&mut stack[5], 0xcccc) };
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out), None);
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&mut stack[5], 0xbbbb) };
        assert!(lookup(ret, sp, fp, lo, span, &mut out).is_some());
        // A word outside the stack given: a miss, never a read.
        assert_eq!(lookup(ret, sp, fp, lo + 48, span, &mut out), None);
        // A walk cut short by its room serves no longer request.
        store(ret, sp, None, &[0xaaaa], &words, false);
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out[..1]), Some(1));
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out), None);
        // Too many frames or words to keep: nothing kept.
        store(ret, sp, None, &[1; FRAMES + 1], &words, true);
        assert_eq!(lookup(ret, sp, fp, lo, span, &mut out[..1]), Some(1));
    }
}
