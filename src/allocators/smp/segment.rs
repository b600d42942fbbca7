//! Segments: 4 MiB, 4 MiB-aligned chunks of address space holding pages.
//!
//! A segment starts with a [`Segment`] header followed by its page
//! descriptors ([`Page`]); the rest is split into equal pages of one kind:
//! 64 small pages of 64 KiB, 8 medium pages of 512 KiB or one large page of
//! 4 MiB. Page 0's block area starts after the metadata, at an offset
//! (16 KiB, 128 KiB, 512 KiB) that keeps it aligned to the page kind's largest
//! power-of-two class. Because segments are aligned, `free` finds the page
//! descriptor of any block by masking its address: no lookup, no header.
//!
//! Segments are slots of the shared reserve (`reserve.rs`). Huge blocks
//! (above `LARGE_MAX`, or aligned beyond what pages offer) also start with
//! a [`Segment`] header (kind [`HUGE`]); the block starts at
//! `max(page, align)` past it. Those whose mapping fits in
//! `RESERVE_HUGE_MAX` (32 MiB) are a run of reserve slots: they grow and
//! shrink in place within their slots, and go back to the reserve when
//! freed, so churning large blocks costs no system call. Larger ones, and
//! alignments of a segment or more, get a mapping of their own: for the
//! latter the block itself is segment-aligned and the header sits one
//! segment before it; that is why the header of a block is always found at
//! `(ptr - 1) & !SEGMENT_MASK` (no block starts at offset 0 of a normal
//! segment). Such mappings grow and shrink with `mremap`; growth takes
//! headroom (twice the request: untouched pages cost no memory) so a block
//! that keeps growing needs a system call only now and then, and a move
//! goes to a fresh segment-aligned reservation (`MREMAP_FIXED`). Freed ones
//! wait in a small cache for reuse (unmapped after 250 ms).
//!
//! A process-wide byte map (one byte per 4 MiB of the 47-bit address space,
//! in two levels; see `chunk_map.rs`) records which chunks are ours, so
//! that `check` can classify any pointer without touching unmapped memory:
//! 0 = not ours, 1 = the header of a huge block or of a free slot lives
//! at this chunk, 2 = the chunk continues a huge mapping, 16 + page shift =
//! a normal segment in use (so the shim's checked `free` needs nothing from
//! the header itself).
//!
//! A segment whose pages are all free goes back to the reserve at once,
//! still resident, keeping a header of kind [`CACHED`]; the reserve's decay
//! decommits it later. Segments of exited threads that still hold live
//! blocks go onto a lock-free "abandoned" stack, from which other threads
//! reclaim them; the stack keeps an ABA counter in the low 22 bits of the
//! (segment-aligned) head, and since reserve memory is never unmapped a
//! pointer read from it is always to mapped memory.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::page::Page;
use super::{chunk_map, reserve, stats};
use crate::alignment;
use crate::sys;

/// Log2 of the segment size.
pub(crate) const SEGMENT_SHIFT: u32 = 22;
/// Size and alignment of a segment.
pub(crate) const SEGMENT_SIZE: usize = 1 << SEGMENT_SHIFT;
/// Mask of the offset within a segment.
pub(crate) const SEGMENT_MASK: usize = SEGMENT_SIZE - 1;

// Page kinds (also the segment's `kind`): 0 small, 1 medium, 2 large
// (indices into PAGE_SHIFT and AREA_OFFSET), then:
/// A mapping holding one huge block.
pub(crate) const HUGE: u8 = 3;
/// A free segment in the cache.
pub(crate) const CACHED: u8 = 4;

// Tables indexed at run time are statics, not constants: a constant array
// indexed by a variable becomes an anonymous constant, which the linker
// script `src/preload/hot.ld` cannot name to place it with the shim's
// other hot read-only data (see there).
/// The small kind's page shift, as a constant.
pub(crate) const SMALL_PAGE_SHIFT: u32 = 16;
/// Page shift of each normal kind.
pub(crate) static PAGE_SHIFT: [u32; 3] = [SMALL_PAGE_SHIFT, 19, 22];
/// Offset of page 0's block area for each normal kind.
pub(crate) static AREA_OFFSET: [usize; 3] = [16 << 10, 128 << 10, 512 << 10];
/// Most pages in a segment.
pub(crate) const MAX_PAGES: usize = 64;
/// Offset of the page descriptors from the segment start.
pub(crate) const PAGES_OFFSET: usize = 1024;

/// The header at the start of every segment and huge mapping.
#[repr(C)]
pub struct Segment {
    /// SMALL, MEDIUM, LARGE, HUGE or CACHED.
    pub kind: Cell<u8>,
    /// Log2 of the page size.
    pub page_shift: Cell<u32>,
    /// Number of pages.
    pub page_count: Cell<u32>,
    /// Pages in use.
    pub used_pages: Cell<u32>,
    /// Bit i: page i is free.
    pub free_mask: Cell<u64>,
    /// Bit i: free page i may hold touched memory (not yet decommitted).
    pub dirty_mask: Cell<u64>,
    /// Owning heap (owner-only), null when abandoned or cached.
    pub heap: Cell<*mut u8>,
    /// Links in the owner's segment list.
    pub next: Cell<*mut Segment>,
    pub prev: Cell<*mut Segment>,
    /// Link in the cache or abandoned stack.
    pub stack_next: AtomicUsize,
    /// Where the segment or huge block lies in the reserve: arena index,
    /// first slot and number of slots (0 slots: a huge block mapped on its
    /// own).
    pub arena: Cell<u32>,
    pub slot: Cell<u32>,
    pub slots: Cell<u32>,
    /// Huge: start and length of the whole mapping, and the block.
    pub map_start: Cell<usize>,
    pub map_len: Cell<usize>,
    pub block: Cell<usize>,
    /// Bytes of each page's area touched since it was last decommitted
    /// (the high-water mark of carved blocks, in OS pages); the source of
    /// the `committed_bytes` statistic.
    pub touched: [Cell<u32>; MAX_PAGES],
}

const _: () = assert!(core::mem::size_of::<Segment>() <= PAGES_OFFSET);
const _: () = assert!(PAGES_OFFSET + MAX_PAGES * core::mem::size_of::<Page>() <= AREA_OFFSET[0]);

impl Segment {
    /// The descriptor of page `i`.
    ///
    /// # Safety
    /// `self` is a normal segment and `i < MAX_PAGES`.
    #[inline]
    pub unsafe fn page(&self, i: usize) -> &Page {
        debug_assert!(i < MAX_PAGES);
        // SAFETY: the descriptors follow the header inside the segment's
        // first 16 KiB, which is always mapped and committed.
        unsafe { &*((self as *const Self as *const u8).add(PAGES_OFFSET) as *const Page).add(i) }
    }

    /// Start address of the segment.
    #[inline]
    pub fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// The block area `[start, end)` of page `i`.
    #[inline]
    pub fn page_area(&self, i: usize) -> (usize, usize) {
        let kind = self.kind.get() as usize;
        let shift = self.page_shift.get();
        let start = self.addr() + (i << shift);
        let first = if i == 0 {
            start + AREA_OFFSET[kind]
        } else {
            start
        };
        (first, start + (1 << shift))
    }
}

/// The segment header of a block (or of any address handed out by us).
#[inline]
pub fn segment_of(ptr: *const u8) -> *mut Segment {
    ((ptr as usize).wrapping_sub(1) & !SEGMENT_MASK) as *mut Segment
}

// ---- the chunk map (in chunk_map.rs) ----

pub(crate) use super::chunk_map::{
    CHUNK_CONT, CHUNK_NONE, CHUNK_NORMAL, chunk_entry, chunk_entry_ready, is_head, prepare_map,
    prepare_range, set_chunks, set_head,
};

// ---- lock-free stacks of segments ----

/// A Treiber stack of segments with an ABA counter in the low bits.
pub struct SegmentStack {
    head: AtomicUsize,
}

impl SegmentStack {
    pub const fn new() -> Self {
        SegmentStack {
            head: AtomicUsize::new(0),
        }
    }

    /// Pushes a segment nobody else references.
    pub fn push(&self, seg: *mut Segment) {
        let mut old = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: seg is a mapped segment we own.
            unsafe {
                (*seg)
                    .stack_next
                    .store(old & !SEGMENT_MASK, Ordering::Relaxed)
            };
            let new = seg as usize | (old.wrapping_add(1) & SEGMENT_MASK);
            match self
                .head
                .compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => old = cur,
            }
        }
    }

    /// Pops a segment, or null.
    pub fn pop(&self) -> *mut Segment {
        let mut old = self.head.load(Ordering::Acquire);
        loop {
            let seg = (old & !SEGMENT_MASK) as *mut Segment;
            if seg.is_null() {
                return seg;
            }
            // SAFETY: segments on stacks are never unmapped, so the read is of
            // mapped memory even if another thread popped `seg` meanwhile (the
            // counter then makes the exchange fail).
            let next = unsafe { (*seg).stack_next.load(Ordering::Relaxed) };
            let new = next | (old.wrapping_add(1) & SEGMENT_MASK);
            match self
                .head
                .compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return seg,
                Err(cur) => old = cur,
            }
        }
    }

    /// Whether the stack looks empty (racy hint).
    pub fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed) & !SEGMENT_MASK == 0
    }
}

/// Segments of exited threads that still hold live blocks.
pub static ABANDONED: SegmentStack = SegmentStack::new();

/// A segment from the reserve set up for pages of `kind`, owned by `heap`;
/// null when out of memory. Slots that are still resident come first; their
/// pages are marked dirty (so the heap reuses them before untouched ones,
/// and decommits them after the purge delay if it does not), except that a
/// segment of one page decommits a slot another kind left resident.
pub fn segment_acquire(kind: u8, heap: *mut u8) -> *mut Segment {
    let shift = PAGE_SHIFT[kind as usize];
    let count = (SEGMENT_SIZE >> shift) as u32;
    // A dirty slot whose header says it last held a segment of this kind
    // (a released segment keeps its page shift and count; see
    // `segment_release`). A huge block's header has the large kind's shift
    // but no pages.
    let last_held_kind = |addr: usize| {
        // SAFETY: a dirty free slot held a segment or a huge block, whose
        // header page stays mapped and resident (see `reserve.rs`); the
        // reads are racy by design (a preference only).
        unsafe {
            let h = addr as *const Segment;
            ptr::read_volatile((*h).kind.as_ptr()) == CACHED
                && ptr::read_volatile((*h).page_shift.as_ptr()) == shift
                && ptr::read_volatile((*h).page_count.as_ptr()) == count
        }
    };
    let Some(c) = reserve::claim_like(last_held_kind, count == 1) else {
        return ptr::null_mut();
    };
    c.uncount();
    if !chunk_map::prepare_range(c.addr, SEGMENT_SIZE) {
        reserve::release(c.arena, c.slot, 1, c.dirty != 0, 0);
        return ptr::null_mut();
    }
    let mut dirty = c.dirty != 0;
    if dirty && count == 1 && !last_held_kind(c.addr) {
        // A segment of one page over memory that another user left
        // resident (a huge block, most often one that `calloc` cleared
        // whole), when no clean slot was free: a page in use is never
        // purged, so the page would keep all of it resident for as long as
        // one block lives there, where its own blocks touch a few hundred
        // KiB. It starts clean instead; the first page (the header) stays.
        let page = sys::page_size();
        // SAFETY: the slot is ours, and nothing in it past its header page
        // is in use.
        unsafe { sys::decommit((c.addr + page) as *mut u8, SEGMENT_SIZE - page) };
        dirty = false;
    }
    let seg = c.addr as *mut Segment;
    // SAFETY: seg is a slot of ours that only we reference now.
    let s = unsafe { &*seg };
    let all = if count == 64 {
        u64::MAX
    } else {
        (1u64 << count) - 1
    };
    s.kind.set(kind);
    s.page_shift.set(shift);
    s.page_count.set(count);
    s.used_pages.set(0);
    s.free_mask.set(all);
    s.dirty_mask.set(if dirty { all } else { 0 });
    s.arena.set(c.arena);
    s.slot.set(c.slot);
    s.slots.set(1);
    s.block.set(0);
    for t in s.touched.iter() {
        t.set(0);
    }
    s.heap.set(heap);
    s.next.set(ptr::null_mut());
    s.prev.set(ptr::null_mut());
    let now = sys::now_ms() as u32;
    for i in 0..count as usize {
        // SAFETY: i < count <= MAX_PAGES.
        let p = unsafe { s.page(i) };
        p.reset();
        p.retire_time.set(now);
    }
    // Last: a checked free that reads the entry finds the pages set up.
    // (`prepare_range` above mapped the chunk's leaf.)
    let marked = set_head(seg, Some(shift));
    debug_assert!(marked);
    seg
}

/// Decommits the dirty free pages of `seg` selected by `mask`.
pub fn decommit_pages(seg: &Segment, mask: u64) {
    let mut m = mask & seg.dirty_mask.get();
    if m == 0 {
        return;
    }
    seg.dirty_mask.set(seg.dirty_mask.get() & !m);
    let page = sys::page_size();
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        let (start, end) = seg.page_area(i);
        let start = alignment::forward(start, page).unwrap_or(end);
        if end > start {
            // SAFETY: a free page's area holds no live block and lies inside
            // the segment mapping.
            unsafe { sys::decommit(start as *mut u8, end - start) };
        }
        stats::sub_committed(seg.touched[i].replace(0) as usize);
    }
}

/// Returns an empty segment to the reserve as it is: its touched pages stay
/// resident until the reserve's purge delay runs out, for any thread to
/// reuse.
pub fn segment_release(seg: *mut Segment) {
    // SAFETY: seg is a mapped segment we own, with no page in use.
    let s = unsafe { &*seg };
    debug_assert_eq!(s.used_pages.get(), 0);
    debug_assert_eq!(s.slots.get(), 1);
    let counted: usize = s.touched.iter().map(|t| t.replace(0) as usize).sum();
    // The chunk's leaf exists (the segment was marked in use).
    let marked = set_head(seg, None);
    debug_assert!(marked);
    s.kind.set(CACHED);
    s.heap.set(ptr::null_mut());
    reserve::release(s.arena.get(), s.slot.get(), 1, true, counted);
}

/// Whether a segment header is recorded at `addr` (a slot start).
pub fn chunk_head_at(addr: usize) -> bool {
    is_head(chunk_entry(addr))
}

/// Runs the purge of what all threads share (the reserve and the cache of
/// huge mappings) if one is due.
pub fn maybe_purge_shared(now: u64, delay: u64) {
    super::purger::guarded(|| {
        reserve::maybe_purge(now, delay);
        huge_cache_purge(now, false);
    });
}

/// Purges what all threads share: the reserve's slots free for `delay` ms
/// and cached huge mappings unused for long (everything when `force`).
/// Returns whether something is left for a later pass.
/// Skipped (with `true`) while a `fork()` is under way.
pub fn purge_shared(now: u64, delay: u64, force: bool) -> bool {
    super::purger::guarded(|| {
        let left = reserve::purge(now, delay, force);
        huge_cache_purge(if force { 0 } else { now }, force);
        left || huge_cache_used()
    })
    .unwrap_or(true)
}

/// Records that page `i`'s blocks up to `carved_end` (an address) are now
/// in use, counting newly touched memory as committed.
pub fn note_carved(seg: &Segment, i: usize, carved_end: usize) {
    let (start, end) = seg.page_area(i);
    let os_page = sys::page_size();
    let upto = alignment::forward(carved_end, os_page)
        .unwrap_or(end)
        .min(end);
    let upto = (upto - start) as u32;
    let t = &seg.touched[i];
    if upto > t.get() {
        stats::add_committed((upto - t.get()) as usize);
        t.set(upto);
    }
}

// ---- huge blocks ----

/// Freed huge mappings kept for reuse (mapping start | length in pages;
/// 0 = empty). Reusing one saves the mmap/munmap pair and the page faults.
/// Bounded: [`HUGE_CACHE_SLOTS`] mappings of at most [`HUGE_CACHE_MAX`]
/// bytes and [`HUGE_CACHE_TOTAL`] in all, each unmapped after
/// [`HUGE_CACHE_MS`] unused (by the purge pass
/// of whichever thread runs one); `la_smp_collect` empties it.
static HUGE_CACHE: [AtomicUsize; HUGE_CACHE_SLOTS] =
    [const { AtomicUsize::new(0) }; HUGE_CACHE_SLOTS];
const HUGE_CACHE_SLOTS: usize = 32;
const HUGE_CACHE_MS: u32 = 250;
/// When each slot was filled (ms, wrapping).
static HUGE_CACHE_TIME: [AtomicU32; HUGE_CACHE_SLOTS] =
    [const { AtomicU32::new(0) }; HUGE_CACHE_SLOTS];
const HUGE_CACHE_MAX: usize = 1 << 30;
/// At most this many bytes of mappings wait in the cache at once.
const HUGE_CACHE_TOTAL: usize = 256 << 20;
/// Cached mappings this big are dropped before a new big mapping is made,
/// so the cache never adds to the peak of resident memory.
const HUGE_CACHE_BIG: usize = 16 << 20;

/// Takes a cached mapping of between `total` and `2 * total` bytes (the
/// unused tail was either never touched or is already counted); for a
/// block that is growing, any mapping of at least `total` bytes (its
/// resident pages are reused instead of faulted in again).
fn huge_cache_take(total: usize, growing: bool) -> Option<(usize, usize)> {
    let page = sys::page_size();
    for slot in HUGE_CACHE.iter() {
        let v = slot.load(Ordering::Relaxed);
        if v == 0 {
            continue;
        }
        let len = (v & SEGMENT_MASK) * page;
        if len >= total
            && (growing || len - total <= total)
            && slot
                .compare_exchange(v, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Some((v & !SEGMENT_MASK, len));
        }
    }
    None
}

/// Offers a dead huge mapping to the cache; false when it must be unmapped.
fn huge_cache_put(start: usize, len: usize) -> bool {
    let page = sys::page_size();
    if len > HUGE_CACHE_MAX || len / page > SEGMENT_MASK {
        return false;
    }
    let cached: usize = HUGE_CACHE
        .iter()
        .map(|slot| (slot.load(Ordering::Relaxed) & SEGMENT_MASK) * page)
        .sum();
    if cached + len > HUGE_CACHE_TOTAL {
        return false;
    }
    let v = start | (len / page);
    let now = sys::now_ms() as u32;
    for (slot, time) in HUGE_CACHE.iter().zip(HUGE_CACHE_TIME.iter()) {
        if slot.load(Ordering::Relaxed) == 0
            && slot
                .compare_exchange(0, v, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            time.store(now, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Unmaps cached huge mappings unused for [`HUGE_CACHE_MS`] (all when
/// `force`).
pub fn huge_cache_purge(now: u64, force: bool) {
    huge_cache_purge_if(now, force, 0);
}

/// Whether the cache of huge mappings holds any.
fn huge_cache_used() -> bool {
    HUGE_CACHE.iter().any(|v| v.load(Ordering::Relaxed) != 0)
}

/// Unmaps cached mappings of at least `min_len` bytes that are unused for
/// [`HUGE_CACHE_MS`] (all of them when `force`).
fn huge_cache_purge_if(now: u64, force: bool, min_len: usize) {
    let page = sys::page_size();
    for (slot, time) in HUGE_CACHE.iter().zip(HUGE_CACHE_TIME.iter()) {
        let v = slot.load(Ordering::Relaxed);
        if v == 0 {
            continue;
        }
        let age = (now as u32).wrapping_sub(time.load(Ordering::Relaxed));
        if (v & SEGMENT_MASK) * page >= min_len
            && (force || age >= HUGE_CACHE_MS)
            && slot
                .compare_exchange(v, 0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            let (start, len) = (v & !SEGMENT_MASK, (v & SEGMENT_MASK) * page);
            set_chunks(start, len, false);
            stats::sub_committed(len);
            // SAFETY: a dead mapping of ours that only we now know of.
            unsafe { sys::unmap(start as *mut u8, len) };
        }
    }
}

/// Maps a huge block of `len` bytes aligned to `1 << align_log2`.
pub fn huge_alloc(len: usize, align_log2: u8) -> *mut u8 {
    huge_alloc_ex(len, align_log2, false, false)
}

/// [`huge_alloc`] of zeroed memory: only a recycled mapping is cleared.
pub fn huge_alloc_zeroed(len: usize, align_log2: u8) -> *mut u8 {
    huge_alloc_ex(len, align_log2, false, true)
}

/// [`huge_alloc`] for a block that is growing (see `huge_cache_take`).
pub fn huge_alloc_growing(len: usize, align_log2: u8) -> *mut u8 {
    huge_alloc_ex(len, align_log2, true, false)
}

fn huge_alloc_ex(len: usize, align_log2: u8, growing: bool, zero: bool) -> *mut u8 {
    let page = sys::page_size();
    let Some(align) = alignment::to_bytes(align_log2) else {
        return ptr::null_mut();
    };
    if align >= 1 << 46 {
        return ptr::null_mut();
    }
    let offset = if align >= SEGMENT_SIZE {
        SEGMENT_SIZE
    } else {
        align.max(page)
    };
    let Some(body) = alignment::forward(len, page) else {
        return ptr::null_mut();
    };
    let Some(total) = body.checked_add(offset) else {
        return ptr::null_mut();
    };
    // A block that is growing gets a mapping of its own: its later growth
    // is then `mremap`, which moves page tables instead of copying.
    if offset < SEGMENT_SIZE && total <= reserve::RESERVE_HUGE_MAX && !growing {
        let p = huge_from_reserve(total, offset, body, zero);
        if !p.is_null() {
            return p;
        }
    }
    if offset < SEGMENT_SIZE
        && let Some((start, len)) = huge_cache_take(total, growing)
    {
        // The cached mapping kept its chunk-map entries (and leaves).
        let marked = huge_init(start, len, start + offset);
        debug_assert!(marked);
        stats::huge_reuse(len);
        if zero {
            // SAFETY: the block's body (the request rounded to pages) lies
            // inside the mapping (`total <= len`).
            unsafe { ptr::write_bytes((start + offset) as *mut u8, 0, body) };
        }
        return (start + offset) as *mut u8;
    }
    if total >= HUGE_CACHE_BIG {
        huge_cache_purge_if(0, true, HUGE_CACHE_BIG);
    }
    let slack = align.max(SEGMENT_SIZE);
    let Some(over) = total.checked_add(slack) else {
        return ptr::null_mut();
    };
    let Some(base) = sys::map(over) else {
        return ptr::null_mut();
    };
    let base = base.as_ptr() as usize;
    let start = if align >= SEGMENT_SIZE {
        match alignment::forward(base + SEGMENT_SIZE, align) {
            Some(p) => p - SEGMENT_SIZE,
            None => base,
        }
    } else {
        alignment::forward(base, SEGMENT_SIZE).unwrap_or(base)
    };
    // SAFETY: [base, start) and [start+total, base+over) are unused parts of
    // the fresh mapping.
    unsafe {
        if start > base {
            sys::unmap(base as *mut u8, start - base);
        }
        if base + over > start + total {
            sys::unmap((start + total) as *mut u8, base + over - start - total);
        }
    }
    if !huge_init(start, total, start + offset) {
        // SAFETY: our fresh mapping, which nobody else knows of.
        unsafe { sys::unmap(start as *mut u8, total) };
        return ptr::null_mut();
    }
    stats::huge_alloc(total);
    (start + offset) as *mut u8
}

/// A huge block of `total` bytes (header offset included) carved from a
/// run of reserve slots; null when the reserve has no room.
fn huge_from_reserve(total: usize, offset: usize, body: usize, zero: bool) -> *mut u8 {
    let Some(c) = reserve::claim(reserve::slots_for(total)) else {
        return ptr::null_mut();
    };
    let start = c.addr;
    if !chunk_map::prepare_range(start, c.count as usize * SEGMENT_SIZE) {
        c.uncount();
        reserve::release(c.arena, c.slot, c.count, c.dirty != 0, 0);
        return ptr::null_mut();
    }
    if zero {
        // Slot by slot: a dirty slot's part of the body is cleared; a
        // clean slot reads as zeros, except the first page of a slot that
        // kept a header (see `reserve.rs`), inside the body from slot 1 on.
        // (Clearing the whole body when any slot was dirty made every
        // clean slot it spans resident.)
        let page = sys::page_size();
        let (lo, hi) = (start + offset, start + offset + body);
        for i in 0..c.count as usize {
            let slot = start + i * SEGMENT_SIZE;
            let from = slot.max(lo);
            let to = if c.dirty & (1 << i) != 0 {
                (slot + SEGMENT_SIZE).min(hi)
            } else if i > 0 && chunk_head_at(slot) {
                (slot + page).min(hi)
            } else {
                continue;
            };
            if to > from {
                // SAFETY: [from, to) lies inside the body, in the claimed
                // slots.
                unsafe { ptr::write_bytes(from as *mut u8, 0, to - from) };
            }
        }
    }
    let marked = huge_init(start, total, start + offset);
    debug_assert!(marked);
    // SAFETY: the header was just written at start.
    let s = unsafe { &*(start as *const Segment) };
    s.arena.set(c.arena);
    s.slot.set(c.slot);
    s.slots.set(c.count);
    let marked = set_chunks(start, c.count as usize * SEGMENT_SIZE, true);
    debug_assert!(marked);
    // The slots' resident pages, counted as the reserve's, are now part of
    // the block's mapping: one change of the committed bytes, not two.
    stats::huge_alloc_claimed(total, c.counted);
    (start + offset) as *mut u8
}

/// Sets up the header of a huge mapping and marks its chunks; false (the
/// chunks unmarked) when the chunk map cannot take them.
fn huge_init(start: usize, map_len: usize, block: usize) -> bool {
    // SAFETY: start is the segment-aligned start of a fresh mapping of ours.
    let s = unsafe { &*(start as *const Segment) };
    s.slots.set(0);
    s.kind.set(HUGE);
    s.page_shift.set(SEGMENT_SHIFT);
    s.page_count.set(0);
    s.used_pages.set(1);
    s.map_start.set(start);
    s.map_len.set(map_len);
    s.block.set(block);
    s.heap.set(ptr::null_mut());
    set_chunks(start, map_len, true)
}

/// Usable bytes of a huge block.
pub fn huge_usable(seg: &Segment) -> usize {
    seg.map_start.get() + seg.map_len.get() - seg.block.get()
}

/// Unmaps a huge block.
///
/// # Safety
/// `seg` is the header of a live huge block that nobody uses any more.
pub unsafe fn huge_free(seg: *mut Segment) {
    // SAFETY: caller's promise.
    let s = unsafe { &*seg };
    let (start, len) = (s.map_start.get(), s.map_len.get());
    let offset = s.block.get() - start;
    let slots = s.slots.get();
    if slots > 0 {
        // Back to the reserve, resident: the first slot keeps a header that
        // reads as freed, the others read as not ours.
        s.kind.set(CACHED);
        if slots > 1 {
            set_chunks(
                start + SEGMENT_SIZE,
                (slots as usize - 1) * SEGMENT_SIZE,
                false,
            );
        }
        // Still resident: still counted, now as the reserve's.
        stats::huge_free(len, true);
        reserve::release(s.arena.get(), s.slot.get(), slots, true, len);
        super::purger::poll();
        return;
    }
    if offset < SEGMENT_SIZE {
        // Cached mappings keep their chunk-map entries and read as freed.
        s.kind.set(CACHED);
        if huge_cache_put(start, len) {
            stats::huge_free(len, true);
            return;
        }
    }
    stats::huge_free(len, false);
    set_chunks(start, len, false);
    // SAFETY: the whole mapping is ours and dead.
    unsafe { sys::unmap(start as *mut u8, len) };
}

/// Grows or shrinks a huge block in place; true when it now holds
/// `new_len`. `shrinking`: the caller knows the block shrinks, so a much
/// smaller block may give its tail back.
///
/// # Safety
/// `seg` is the header of a live huge block owned by the caller.
pub unsafe fn huge_resize(seg: *mut Segment, new_len: usize, shrinking: bool) -> bool {
    // SAFETY: caller's promise.
    let s = unsafe { &*seg };
    let page = sys::page_size();
    let usable = huge_usable(s);
    let offset = s.block.get() - s.map_start.get();
    let Some(body) = alignment::forward(new_len, page) else {
        return false;
    };
    let new_total = body + offset;
    let old_total = s.map_len.get();
    if s.slots.get() > 0 {
        return huge_resize_in_reserve(s, new_total, shrinking);
    }
    if new_len <= usable {
        // Give back the tail when the block shrinks by a lot (not when it
        // grows within its headroom or a roomy cached mapping).
        if shrinking && old_total - new_total >= (1 << 20) && new_total < old_total / 4 {
            // Chunk-map entries of the tail are cleared while the tail is
            // still ours: once unmapped, another mapping may land there.
            let start = s.map_start.get();
            let keep = alignment::forward(start + new_total, SEGMENT_SIZE).unwrap_or(usize::MAX);
            if start + old_total > keep {
                set_chunks(keep, start + old_total - keep, false);
            }
            // SAFETY: the tail beyond the new length is dead.
            if unsafe { sys::remap(start as *mut u8, old_total, new_total, false) }.is_some() {
                s.map_len.set(new_total);
                stats::huge_resized(old_total, new_total);
            } else {
                set_chunks(start, old_total, true);
            }
        }
        return true;
    }
    // Grow with headroom (untouched pages cost no memory), so that a block
    // that keeps growing needs a system call only every few steps.
    let roomy = new_len
        .checked_mul(2)
        .and_then(|l| alignment::forward(l, page))
        .and_then(|l| l.checked_add(offset))
        .unwrap_or(new_total);
    // The chunk map must be able to take the grown range before it grows.
    if !prepare_range(s.map_start.get(), roomy) {
        return false;
    }
    // SAFETY: growing in place never moves the block.
    if unsafe { sys::remap(s.map_start.get() as *mut u8, old_total, roomy, false) }.is_some() {
        s.map_len.set(roomy);
        set_chunks(s.map_start.get(), roomy, true);
        stats::huge_resized(old_total, roomy);
        return true;
    }
    false
}

/// [`huge_resize`] of a block carved from reserve slots: it grows in place
/// up to the end of its slots; when it shrinks by a lot, the slots past its
/// new end go back to the reserve.
fn huge_resize_in_reserve(s: &Segment, new_total: usize, shrinking: bool) -> bool {
    let slots = s.slots.get() as usize;
    let cur = s.map_len.get();
    if new_total > slots * SEGMENT_SIZE {
        return false;
    }
    if new_total > cur {
        stats::huge_resized(cur, new_total);
        s.map_len.set(new_total);
        return true;
    }
    let keep = new_total.div_ceil(SEGMENT_SIZE);
    if shrinking && keep < slots && new_total < cur / 4 {
        let tail = s.map_start.get() + keep * SEGMENT_SIZE;
        set_chunks(tail, (slots - keep) * SEGMENT_SIZE, false);
        s.slots.set(keep as u32);
        s.map_len.set(new_total);
        // The tail's committed bytes move to the reserve with it.
        let counted = cur.saturating_sub(keep * SEGMENT_SIZE);
        stats::huge_resized(cur, new_total);
        stats::add_committed(counted);
        reserve::release(
            s.arena.get(),
            s.slot.get() + keep as u32,
            (slots - keep) as u32,
            true,
            counted,
        );
    }
    true
}

/// Moves a huge block to a new segment-aligned place of at least `new_len`
/// bytes (plus headroom for further growth) without copying; null on
/// failure (the block is then untouched).
///
/// # Safety
/// `seg` is the header of a live huge block owned by the caller.
pub unsafe fn huge_move(seg: *mut Segment, new_len: usize) -> *mut u8 {
    // SAFETY: caller's promise.
    let s = unsafe { &*seg };
    let page = sys::page_size();
    let offset = s.block.get() - s.map_start.get();
    if offset >= SEGMENT_SIZE || s.slots.get() > 0 {
        return ptr::null_mut();
    }
    // Headroom: untouched pages cost no memory, and later growth then
    // succeeds in place without a system call.
    let want = new_len.saturating_mul(2);
    let Some(body) = alignment::forward(want, page) else {
        return ptr::null_mut();
    };
    let Some(new_total) = body.checked_add(offset) else {
        return ptr::null_mut();
    };
    let Some(over) = new_total.checked_add(SEGMENT_SIZE) else {
        return ptr::null_mut();
    };
    let Some(base) = sys::reserve(over) else {
        return ptr::null_mut();
    };
    let base = base.as_ptr() as usize;
    let target = alignment::forward(base, SEGMENT_SIZE).unwrap_or(base);
    let (old_start, old_total) = (s.map_start.get(), s.map_len.get());
    // The chunk map must be able to take the new range before the move.
    if !prepare_range(target, new_total) {
        // SAFETY: the fresh reservation is ours and unused.
        unsafe { sys::unmap(base as *mut u8, over) };
        return ptr::null_mut();
    }
    // The old range's chunk-map entries go while it is still ours (see
    // huge_resize); they come back if the move fails.
    set_chunks(old_start, old_total, false);
    // SAFETY: target..target+new_total lies in our fresh reservation; the
    // old mapping is the live block's, which moves as a whole.
    let ok = unsafe {
        sys::remap_fixed(
            old_start as *mut u8,
            old_total,
            new_total,
            target as *mut u8,
        )
    };
    // SAFETY: the unused head and tail of the reservation are ours.
    unsafe {
        if target > base {
            sys::unmap(base as *mut u8, target - base);
        }
        let (end, rend) = (target + new_total, base + over);
        if ok && rend > end {
            sys::unmap(end as *mut u8, rend - end);
        }
        if !ok {
            sys::unmap(target as *mut u8, rend - target);
        }
    }
    if !ok {
        set_chunks(old_start, old_total, true);
        return ptr::null_mut();
    }
    let marked = huge_init(target, new_total, target + offset);
    debug_assert!(marked);
    stats::huge_resized(old_total, new_total);
    (target + offset) as *mut u8
}
