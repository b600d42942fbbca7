//! The chunk map: which 4 MiB chunks of the address space are ours.
//!
//! One byte per chunk ([`SEGMENT_SIZE`]) of the 47-bit user address space
//! says what the chunk holds (the `CHUNK_*` values below), so that `check`
//! and the shim's checked `free` can classify any pointer without touching
//! unmapped memory.
//!
//! The map has two levels, like mimalloc's segment map: a static top level
//! of [`TOP_ENTRIES`] atomic pointers (4 KiB) to leaves of [`LEAF_ENTRIES`]
//! bytes (64 KiB, covering 256 GiB of address space each). A leaf is mapped
//! the first time an entry in it is set (a compare-exchange installs it; a
//! thread that loses the race unmaps its own) and is never unmapped, so a
//! reader that found a leaf may use it forever. Until then the top level
//! points at [`ZERO_LEAF`], a static leaf that is never written and reads
//! [`CHUNK_NONE`] everywhere: nothing in it was ever ours. A lookup is thus
//! two loads (the leaf pointer, then the entry) with no test between them,
//! and costs nothing to set up; a process that keeps its segments within
//! one 256 GiB window (the usual case) maps a single leaf.
//!
//! The shim's `free` reads the map through a gate ([`chunk_entry_gated`]):
//! a pointer to the top level that points at [`CLOSED`], a top level whose
//! every entry is [`ZERO_LEAF`], while the mode is not a fast one.
//!
//! Writes ([`set_chunks`], [`set_head`]) map the leaves they need first and
//! fail, changing nothing, when one cannot be mapped; clearing entries never
//! needs a leaf (an absent one already reads as [`CHUNK_NONE`]).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use super::segment::{SEGMENT_SHIFT, SEGMENT_SIZE, Segment};
use crate::sys;

/// Chunks in the 47-bit address space.
const MAP_ENTRIES: usize = 1 << (47 - SEGMENT_SHIFT);
/// Log2 of the entries in one leaf.
const LEAF_SHIFT: u32 = 16;
/// Entries (bytes) in one leaf: 64 KiB covering 256 GiB.
const LEAF_ENTRIES: usize = 1 << LEAF_SHIFT;
/// Leaves in the whole map.
const TOP_ENTRIES: usize = MAP_ENTRIES / LEAF_ENTRIES;

const _: () = assert!(TOP_ENTRIES * LEAF_ENTRIES == MAP_ENTRIES);
const _: () = assert!(TOP_ENTRIES * core::mem::size_of::<usize>() <= 4096);

/// One leaf of the map.
#[repr(C, align(4096))]
struct Leaf([AtomicU8; LEAF_ENTRIES]);

/// The leaf of every part of the map that was never written: all
/// [`CHUNK_NONE`], and never written (writes go to mapped leaves only).
/// 64 KiB of `.bss` that is read but never touched by a write, so it costs
/// no memory beyond the pages a stray lookup reads (the kernel's zero page).
static ZERO_LEAF: Leaf = Leaf([const { AtomicU8::new(CHUNK_NONE) }; LEAF_ENTRIES]);

/// [`ZERO_LEAF`] as a top-level entry.
const ZERO: *mut AtomicU8 = &raw const ZERO_LEAF as *mut AtomicU8;

/// A top level: entry `t` is the leaf of chunks
/// `[t * LEAF_ENTRIES, (t + 1) * LEAF_ENTRIES)`, [`ZERO_LEAF`] until one
/// is mapped.
type Top = [AtomicPtr<AtomicU8>; TOP_ENTRIES];

/// The map's top level.
static TOP: Top = [const { AtomicPtr::new(ZERO) }; TOP_ENTRIES];

/// A top level that stays all [`ZERO_LEAF`]: what [`chunk_entry_gated`]
/// reads while the gate is closed.
static CLOSED: Top = [const { AtomicPtr::new(ZERO) }; TOP_ENTRIES];

/// Whether a top-level entry is a mapped leaf (not [`ZERO_LEAF`]).
#[inline(always)]
fn is_mapped(l: *mut AtomicU8) -> bool {
    !ptr::eq(l, ZERO)
}

/// Chunk-map entry values: not ours; the header of a huge mapping or of a
/// cached segment; the continuation of a huge mapping; and, from
/// [`CHUNK_NORMAL`] up, the header of a normal segment in use, whose entry
/// is `CHUNK_NORMAL + page_shift` (so the checked `free` learns the page
/// size without reading the header). [`is_head`] tells any header.
///
/// `CHUNK_NORMAL` is a multiple of 64, so a normal segment's entry is
/// itself a shift count by the page shift for `wrapping_shr` (which takes
/// the count modulo 64): the checked `free` shifts by the entry as it is.
pub(crate) const CHUNK_NONE: u8 = 0;
pub(crate) const CHUNK_HEAD: u8 = 1;
pub(crate) const CHUNK_CONT: u8 = 2;
pub(crate) const CHUNK_NORMAL: u8 = 64;

const _: () = assert!(CHUNK_NORMAL.is_multiple_of(64) && CHUNK_NORMAL as u32 + SEGMENT_SHIFT < 256);

/// Whether a chunk-map entry marks a segment header (of any kind).
#[inline(always)]
pub fn is_head(entry: u8) -> bool {
    entry == CHUNK_HEAD || entry >= CHUNK_NORMAL
}

/// The leaf holding chunk `i`'s entry, [`ZERO_LEAF`] when it was never
/// mapped.
#[inline(always)]
fn leaf(i: usize) -> *mut AtomicU8 {
    debug_assert!(i < MAP_ENTRIES);
    // Acquire: pairs with the Release of `leaf_or_map`'s install.
    TOP[i >> LEAF_SHIFT].load(Ordering::Acquire)
}

/// The leaf holding chunk `i`'s entry, mapped now when absent; null when
/// it cannot be mapped.
fn leaf_or_map(i: usize) -> *mut AtomicU8 {
    debug_assert!(i < MAP_ENTRIES);
    let slot = &TOP[i >> LEAF_SHIFT];
    let l = slot.load(Ordering::Acquire);
    if is_mapped(l) {
        return l;
    }
    let Some(fresh) = sys::map(LEAF_ENTRIES) else {
        return ptr::null_mut();
    };
    let fresh = fresh.as_ptr() as *mut AtomicU8;
    match slot.compare_exchange(ZERO, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: our leaf lost the race and nobody saw it.
            unsafe { sys::unmap(fresh as *mut u8, LEAF_ENTRIES) };
            winner
        }
    }
}

/// The entry of chunk `i` (CHUNK_NONE when its leaf is absent).
#[inline(always)]
fn entry_at(i: usize) -> u8 {
    let l = leaf(i);
    // SAFETY: a leaf (mapped, or ZERO_LEAF) holds LEAF_ENTRIES entries and
    // is never unmapped; `i % LEAF_ENTRIES` is inside it.
    unsafe { (*l.add(i & (LEAF_ENTRIES - 1))).load(Ordering::Acquire) }
}

/// The map entry of the chunk holding `addr` (CHUNK_NONE when outside the
/// map or when nothing of ours was ever near it).
pub fn chunk_entry(addr: usize) -> u8 {
    let i = addr >> SEGMENT_SHIFT;
    if i >= MAP_ENTRIES {
        return CHUNK_NONE;
    }
    entry_at(i)
}

/// Sets up what [`chunk_entry_ready`] needs. The map has no global part to
/// make (leaves are mapped by the writes that need them), so this always
/// succeeds; it stays so that callers need not know.
#[inline(always)]
pub fn prepare_map() -> bool {
    true
}

/// [`chunk_entry`] on the checked `free`'s fast path: the leaf pointer and
/// the entry, two loads.
///
/// # Safety
/// [`prepare_map`] returned true before, in a way that happens-before this
/// call (kept for callers written against a map that had to be made first;
/// the two-level map needs nothing).
#[inline(always)]
pub unsafe fn chunk_entry_ready(addr: usize) -> u8 {
    let i = addr >> SEGMENT_SHIFT;
    if i >= MAP_ENTRIES {
        return CHUNK_NONE;
    }
    entry_at(i)
}

/// The top level [`chunk_entry_gated`] reads: [`TOP`] while the gate is
/// open, [`CLOSED`] while it is closed.
static GATE: AtomicPtr<AtomicPtr<AtomicU8>> =
    AtomicPtr::new(&raw const CLOSED as *mut AtomicPtr<AtomicU8>);

/// Opens or closes the gate of [`chunk_entry_gated`]. The shim opens it
/// when its `free` may take the fast path (its mode allows it and the map
/// is ready) and closes it otherwise, so that test is also the mode test.
/// Release: a thread that reads the gate open with [`chunk_entry_gated`]
/// (Acquire) also sees what the caller did before opening it.
pub fn set_gate(open: bool) {
    let top: &'static Top = if open { &TOP } else { &CLOSED };
    GATE.store(top.as_ptr() as *mut AtomicPtr<AtomicU8>, Ordering::Release);
}

/// [`chunk_entry`] behind a gate: [`CHUNK_NONE`] for every address while
/// the gate is closed (see [`set_gate`]). The gate costs no test of its
/// own: it is the top level the lookup reads, all [`ZERO_LEAF`] while
/// closed. The shim's `free` thus tests its mode, NULL (chunk 0 is never
/// ours: nothing is mapped at address 0) and the map's bound (which also
/// rejects addresses above 47 bits) with one comparison, and reads two
/// pointers and the entry.
#[inline(always)]
pub fn chunk_entry_gated(addr: usize) -> u8 {
    let i = addr >> SEGMENT_SHIFT;
    if i >= MAP_ENTRIES {
        return CHUNK_NONE;
    }
    // Acquire: pairs with set_gate's Release.
    let top = GATE.load(Ordering::Acquire);
    // SAFETY: GATE points at TOP or CLOSED, both TOP_ENTRIES long, and
    // i >> LEAF_SHIFT is below that. Acquire: pairs with the Release of
    // `leaf_or_map`'s install.
    let l = unsafe { (*top.add(i >> LEAF_SHIFT)).load(Ordering::Acquire) };
    // SAFETY: a leaf (mapped, or ZERO_LEAF) holds LEAF_ENTRIES entries and
    // is never unmapped; the index is inside it.
    unsafe { (*l.add(i & (LEAF_ENTRIES - 1))).load(Ordering::Acquire) }
}

/// Maps the leaves holding the entries of `[start, start + len)` (the part
/// inside the map); false when one cannot be mapped. Leaves mapped before
/// a failure stay (they are never unmapped).
pub fn prepare_range(start: usize, len: usize) -> bool {
    debug_assert!(len > 0);
    let first = start >> SEGMENT_SHIFT;
    let last = (start.saturating_add(len - 1) >> SEGMENT_SHIFT).min(MAP_ENTRIES - 1);
    if first >= MAP_ENTRIES {
        return true;
    }
    let mut i = first;
    while i <= last {
        if leaf_or_map(i).is_null() {
            return false;
        }
        i = (i | (LEAF_ENTRIES - 1)) + 1;
    }
    true
}

/// Marks `seg`'s chunk as the header of a segment in use with pages of
/// `1 << shift` bytes (`normal`), or as a cached one. False (nothing
/// changed) when the chunk's leaf cannot be mapped.
pub fn set_head(seg: *mut Segment, normal: Option<u32>) -> bool {
    let i = seg as usize >> SEGMENT_SHIFT;
    if i >= MAP_ENTRIES {
        return true;
    }
    let l = leaf_or_map(i);
    if l.is_null() {
        return false;
    }
    let v = match normal {
        Some(shift) => CHUNK_NORMAL + shift as u8,
        None => CHUNK_HEAD,
    };
    // SAFETY: the leaf is mapped forever and the index is inside it.
    unsafe { (*l.add(i & (LEAF_ENTRIES - 1))).store(v, Ordering::Release) };
    true
}

/// Marks the chunks of `[start, start + len)` as one huge mapping (`head`:
/// a header, then continuations) or as not ours. Chunks beyond the map are
/// skipped. False, with nothing changed, when marking needs a leaf that
/// cannot be mapped; clearing always succeeds.
pub fn set_chunks(start: usize, len: usize, head: bool) -> bool {
    debug_assert!(len > 0);
    debug_assert!(start.is_multiple_of(SEGMENT_SIZE) || !head);
    if head && !prepare_range(start, len) {
        return false;
    }
    let first = start >> SEGMENT_SHIFT;
    let last = (start.saturating_add(len - 1) >> SEGMENT_SHIFT).min(MAP_ENTRIES - 1);
    let mut i = first;
    while i <= last {
        // The leaf of chunks [i, leaf_end].
        let leaf_end = (i | (LEAF_ENTRIES - 1)).min(last);
        let l = leaf(i);
        if !is_mapped(l) {
            // Only when clearing: an absent leaf already reads CHUNK_NONE
            // (and ZERO_LEAF is never written).
            debug_assert!(!head);
        } else {
            for j in i..=leaf_end {
                let v = if !head {
                    CHUNK_NONE
                } else if j == first {
                    CHUNK_HEAD
                } else {
                    CHUNK_CONT
                };
                // SAFETY: the leaf is mapped forever and j's index is
                // inside it (j is in the same leaf as i).
                unsafe { (*l.add(j & (LEAF_ENTRIES - 1))).store(v, Ordering::Release) };
            }
        }
        i = leaf_end + 1;
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Chunk index `i`'s address.
    fn addr(i: usize) -> usize {
        i << SEGMENT_SHIFT
    }

    #[test]
    fn absent_leaves_read_none() {
        // The last leaf covers the top 256 GiB below 2^47, where the
        // kernel puts the stack and mmap area, so pick a leaf further down
        // that no test writes to.
        let i = 3 * LEAF_ENTRIES + 5;
        assert!(!is_mapped(leaf(i)));
        assert_eq!(chunk_entry(addr(i)), CHUNK_NONE);
        // SAFETY: prepare_map always succeeds.
        assert_eq!(unsafe { chunk_entry_ready(addr(i)) }, CHUNK_NONE);
        // Beyond the map.
        assert_eq!(chunk_entry(1 << 47), CHUNK_NONE);
        assert_eq!(chunk_entry(usize::MAX), CHUNK_NONE);
        // Clearing needs no leaf and maps none.
        assert!(set_chunks(addr(i), 3 * SEGMENT_SIZE, false));
        assert!(!is_mapped(leaf(i)));
    }

    #[test]
    fn entries_across_a_leaf_boundary_read_back() {
        // Chunks 7 * LEAF_ENTRIES - 2 .. 7 * LEAF_ENTRIES + 2 span leaves 6
        // and 7 (addresses near 1.75 TiB, where nothing is mapped).
        let first = 7 * LEAF_ENTRIES - 2;
        assert!(!is_mapped(leaf(first)) && !is_mapped(leaf(first + 2)));
        assert!(set_chunks(addr(first), 4 * SEGMENT_SIZE, true));
        assert!(is_mapped(leaf(first)) && is_mapped(leaf(first + 2)));
        assert_eq!(chunk_entry(addr(first)), CHUNK_HEAD);
        for k in 1..4 {
            assert_eq!(chunk_entry(addr(first + k) + 12345), CHUNK_CONT);
        }
        // SAFETY: prepare_map always succeeds.
        assert_eq!(unsafe { chunk_entry_ready(addr(first + 3)) }, CHUNK_CONT);
        assert_eq!(chunk_entry(addr(first - 1)), CHUNK_NONE);
        assert_eq!(chunk_entry(addr(first + 4)), CHUNK_NONE);
        assert!(is_head(chunk_entry(addr(first))));

        // A normal segment's head in the second leaf, then cleared.
        let seg = addr(first + 2) as *mut Segment;
        assert!(set_head(seg, Some(16)));
        assert_eq!(chunk_entry(addr(first + 2)), CHUNK_NORMAL + 16);
        assert!(set_head(seg, None));
        assert_eq!(chunk_entry(addr(first + 2)), CHUNK_HEAD);
        assert!(set_chunks(addr(first), 4 * SEGMENT_SIZE, false));
        for k in 0..4 {
            assert_eq!(chunk_entry(addr(first + k)), CHUNK_NONE);
        }
    }

    /// Held by the tests that open or close the gate (it is global).
    pub(crate) static GATE_TEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn the_gate_hides_every_entry_while_closed() {
        let _g = GATE_TEST.lock().unwrap_or_else(|e| e.into_inner());
        let i = 11 * LEAF_ENTRIES + 3;
        assert!(set_head(addr(i) as *mut Segment, Some(16)));
        set_gate(false);
        assert_eq!(chunk_entry_gated(addr(i)), CHUNK_NONE);
        assert_eq!(chunk_entry_gated(addr(i) + 4096), CHUNK_NONE);
        set_gate(true);
        assert_eq!(chunk_entry_gated(addr(i)), CHUNK_NORMAL + 16);
        assert_eq!(
            chunk_entry_gated(addr(i) + SEGMENT_SIZE - 1),
            CHUNK_NORMAL + 16
        );
        assert_eq!(chunk_entry_gated(addr(i) + SEGMENT_SIZE), CHUNK_NONE);
        assert_eq!(chunk_entry_gated(addr(i) - 1), CHUNK_NONE);
        // NULL, and addresses beyond the map, whatever their low bits.
        assert_eq!(chunk_entry_gated(0), CHUNK_NONE);
        assert_eq!(chunk_entry_gated(addr(i) | 1 << 47), CHUNK_NONE);
        assert_eq!(chunk_entry_gated(addr(i) | 1 << 63), CHUNK_NONE);
        assert_eq!(chunk_entry_gated(usize::MAX), CHUNK_NONE);
        set_gate(false);
        assert_eq!(chunk_entry_gated(addr(i)), CHUNK_NONE);
        assert!(set_chunks(addr(i), SEGMENT_SIZE, false));
    }

    #[test]
    fn set_head_maps_its_leaf() {
        let i = 9 * LEAF_ENTRIES;
        assert!(!is_mapped(leaf(i)));
        assert!(set_head(addr(i) as *mut Segment, Some(19)));
        assert_eq!(chunk_entry(addr(i)), CHUNK_NORMAL + 19);
        assert_eq!(chunk_entry(addr(i) - 1), CHUNK_NONE);
        assert!(set_chunks(addr(i), SEGMENT_SIZE, false));
        assert_eq!(chunk_entry(addr(i)), CHUNK_NONE);
    }
}
