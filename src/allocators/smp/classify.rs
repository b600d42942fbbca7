//! Pointer classification, and the checked entry points the malloc shim
//! uses: a division-free classifier, a free that classifies and frees with
//! one lookup, and a zeroed allocation.
//!
//! [`check`] tells what a pointer about to be freed is ([`PtrCheck`]). It
//! first consults the chunk map (`chunk_map.rs`), so it never reads memory
//! that is not ours; then the segment header and page descriptor locate the
//! block exactly (interior pointers are those not at a block start inside
//! the carved blocks), and the tags every free block carries (`page.rs`)
//! tell a double free (a block freed before) from a block never handed out
//! in O(1). Everything else inside our memory where no block was handed out
//! is `Unallocated`: blocks beyond a page's carved capacity, free slots of
//! the reserve and freed huge blocks except at the freed block's start (a
//! double free), and pages not in use -- unless the memory the page still
//! holds carries a free tag at the address (a block freed before the page
//! was given back: a double free).
//!
//! [`classify`] turns the offset into a block index with a multiply by a
//! per-class reciprocal ([`MAGIC`]) instead of a division, and hands back
//! the page it found. [`free_checked`] uses that page to free a live block
//! at once, so a checked `free` costs one lookup, not a check followed by a
//! free; its common case, [`free_fast`], confirms a live block of a normal
//! segment with the same exact tests in fewer instructions (a
//! division-free divisibility test, [`DIVISOR_TEST`], instead of computing
//! the index). The same classifier backs the `debug_assert!`s that every
//! block handed to `free`, `usable_size`, `resize` and `remap` is live.
//!
//! `errno`: neither [`free_checked`] nor [`super::free`] ever changes it.
//! Their fast paths make no calls; their slow paths call only the OS layer
//! (`sys`, whose wrappers put `errno` back when a call fails),
//! `clock_gettime` on a valid clock (no failure) and, once per thread,
//! `pthread_setspecific` on the exit key created while the process starts
//! (an index below 32, so glibc never allocates for it) — so the shim need
//! not save and restore `errno` around `free`.

use core::ptr;

use super::page::{Block, Page, free_tag, is_free};
use super::segment::{
    self, CACHED, CHUNK_CONT, CHUNK_NONE, CHUNK_NORMAL, HUGE, SEGMENT_MASK, SEGMENT_SHIFT,
    SEGMENT_SIZE, SMALL_PAGE_SHIFT, Segment,
};
use super::size_class::{self, NCLASSES};

/// What [`check`] knows about a pointer about to be freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtrCheck {
    /// The start of a live block of this allocator.
    Live,
    /// Not inside memory this allocator manages.
    NotOurs,
    /// Inside a block of this allocator, but not at its start.
    Interior,
    /// The start of a block that was handed out and is already free.
    Free,
    /// Inside memory this allocator manages, but where no block was handed
    /// out: a block carved but never allocated, the uncarved part of a
    /// page, a page or segment not in use (unless its memory still shows a
    /// freed block there), the inside of a freed huge mapping.
    Unallocated,
}

/// What the tag `tag` of the carved block at `a` says it is.
#[inline(always)]
pub(crate) fn tagged(a: usize, tag: usize) -> PtrCheck {
    if tag == free_tag(a) {
        PtrCheck::Free
    } else if is_free(a, tag) {
        PtrCheck::Unallocated
    } else {
        PtrCheck::Live
    }
}

/// `a` inside a cached segment: a double free at the start of a freed huge
/// block (a cached huge mapping keeps its header), else `Unallocated`.
pub(crate) fn cached(s: &Segment, a: usize) -> PtrCheck {
    // SAFETY: reading a field of the mapped header.
    if a == unsafe { ptr::read_volatile(s.block.as_ptr()) } {
        PtrCheck::Free
    } else {
        PtrCheck::Unallocated
    }
}

/// `a`, at or after `area` (the start of page `i`'s block area), in page
/// `i` of `s`, a page not in use: a double free when the part of the page
/// still committed from its last use (`touched`) shows a freed block at
/// `a`, else `Unallocated` (the page's blocks, if any, are gone).
pub(crate) fn unused_page(s: &Segment, i: usize, area: usize, a: usize) -> PtrCheck {
    // SAFETY: reading a field of the mapped header; i < page_count.
    let touched = unsafe { ptr::read_volatile(s.touched[i].as_ptr()) } as usize;
    if a - area + 16 > touched || !a.is_multiple_of(8) {
        return PtrCheck::Unallocated;
    }
    // SAFETY: [area, area + touched) was carved since the page's memory was
    // last decommitted: committed, mapped, and the aligned word at a + 8
    // lies inside it.
    let tag = unsafe { ptr::read_volatile((a + 8) as *const usize) };
    if tag == free_tag(a) {
        PtrCheck::Free
    } else {
        PtrCheck::Unallocated
    }
}

/// `q = (off * MAGIC[class]) >> MAGIC_SHIFT` is `off / CLASS_SIZE[class]`
/// for every offset inside a page (`off < SEGMENT_SIZE`).
///
/// With `m = ceil(2^S / d) = (2^S + e) / d`, `0 <= e < d`, the product is
/// `off / d + off * e / (d * 2^S)`: exact after flooring when
/// `off * e < 2^S`, which holds for `off < 2^22` and `d <= 2^22` at
/// `S = 44`; and `off * m < 2^22 * (2^40 + 1)` cannot overflow.
const MAGIC_SHIFT: u32 = 44;

const _: () = assert!(SEGMENT_SHIFT + SEGMENT_SHIFT <= MAGIC_SHIFT);

/// A per-class table of the two block-start tests' constants, indexed by
/// any `u8` so a lookup needs no bounds check (0 for class 0 and beyond the
/// last class): [`MAGIC`] (`reciprocal`) or [`DIVISOR_TEST`].
const fn per_class(reciprocal: bool) -> [u64; 256] {
    let sizes = size_class::build_sizes();
    let mut m = [0u64; 256];
    let mut c = 1;
    while c < NCLASSES {
        let d = sizes[c] as u64;
        assert!(d >= 16 && d <= 1 << SEGMENT_SHIFT);
        m[c] = if reciprocal {
            (1u64 << MAGIC_SHIFT).div_ceil(d)
        } else {
            // ceil(2^64 / d), d > 1.
            u64::MAX / d + 1
        };
        c += 1;
    }
    m
}

/// Per-class reciprocals (see [`MAGIC_SHIFT`]), indexed by any `u8` so the
/// lookup needs no bounds check; 0 for class 0 and beyond the last class.
static MAGIC: [u64; 256] = per_class(true);

/// `DIVISOR_TEST[class] = ceil(2^64 / CLASS_SIZE[class])` (0 for class 0
/// and beyond the last class): an offset `off < 2^32` is a multiple of the
/// class size exactly when `off * m mod 2^64 < m`.
///
/// With `d * m = 2^64 + e`, `0 <= e < d`: for `off = q * d` the product is
/// `q * e < off < m`; for `off = q * d + r`, `0 < r < d`, it is
/// `q * e + r * m`, at least `m` and (as `q * e + e < m` for `off`, `d`
/// below `2^22`, `m >= 2^42`) below `2^64`. A zero entry accepts nothing.
static DIVISOR_TEST: [u64; 256] = per_class(false);

/// [`DIVISOR_TEST`] of `class` (0 for class 0), which a page in use keeps
/// in its descriptor (`Page::div_test`).
#[inline]
pub(crate) fn divisor_test(class: usize) -> u64 {
    DIVISOR_TEST[class as u8 as usize]
}

/// What [`classify`] found.
#[derive(Clone, Copy)]
pub enum Found {
    /// The start of a live block of this page.
    Block(&'static Page),
    /// The start of a live huge block with this header.
    Huge(*mut Segment),
    /// Anything else.
    Not(PtrCheck),
}

/// Classifies `a` (see the module comment); never reads memory that is not
/// ours, never divides.
#[inline(always)]
pub fn classify(a: usize) -> Found {
    let entry = segment::chunk_entry(a);
    if !segment::is_head(entry) {
        return classify_far(a, entry);
    }
    // SAFETY: the chunk map says a segment header lives at the start of
    // a's chunk, and it stays mapped while the map says so.
    let s = unsafe { &*((a & !SEGMENT_MASK) as *const Segment) };
    classify_in(s, a)
}

/// A pointer outside a segment's first chunk: not ours, or inside a huge
/// mapping spanning several chunks.
#[cold]
#[inline(never)]
fn classify_far(a: usize, entry: u8) -> Found {
    if a == 0 || entry == CHUNK_NONE {
        return Found::Not(PtrCheck::NotOurs);
    }
    let mut head = a & !SEGMENT_MASK;
    while head >= SEGMENT_SIZE && segment::chunk_entry(head) == CHUNK_CONT {
        head -= SEGMENT_SIZE;
    }
    if !segment::is_head(segment::chunk_entry(head)) {
        return Found::Not(PtrCheck::NotOurs);
    }
    // SAFETY: as in `classify`.
    classify_in(unsafe { &*(head as *const Segment) }, a)
}

#[inline(always)]
fn classify_in(s: &'static Segment, a: usize) -> Found {
    let head = s as *const Segment as usize;
    // SAFETY: reading a field of the mapped header.
    let kind = unsafe { ptr::read_volatile(s.kind.as_ptr()) };
    if kind == HUGE {
        return if a >= s.map_start.get() + s.map_len.get() {
            Found::Not(PtrCheck::NotOurs)
        } else if a == s.block.get() {
            Found::Huge(head as *mut Segment)
        } else {
            Found::Not(PtrCheck::Interior)
        };
    }
    if kind == CACHED {
        return Found::Not(cached(s, a));
    }
    // SAFETY: as above.
    let shift = unsafe { ptr::read_volatile(s.page_shift.as_ptr()) };
    let i = (a - head) >> shift;
    // SAFETY: i < SEGMENT_SIZE >> shift = page count <= MAX_PAGES.
    let p: &'static Page = unsafe { s.page(i) };
    let area = s.page_area(i).0;
    if a < area {
        // Segment metadata, before page 0's blocks.
        return Found::Not(PtrCheck::Interior);
    }
    // SAFETY: reading fields of the mapped descriptor.
    let (bs, cls, cap, res) = unsafe {
        (
            p.block_size(),
            ptr::read_volatile(p.class.as_ptr()),
            ptr::read_volatile(p.capacity.as_ptr()) as usize,
            ptr::read_volatile(p.reserved.as_ptr()) as usize,
        )
    };
    if bs == 0 {
        return Found::Not(unused_page(s, i, area, a));
    }
    let off = a - area;
    // off < page size <= SEGMENT_SIZE. A class read while the page is
    // being reused by another thread may not match bs (its magic may even
    // be 0): the exact test below still only accepts a true block start.
    let magic = MAGIC[cls as usize];
    let idx = ((off as u64 * magic) >> MAGIC_SHIFT) as usize;
    if idx >= cap || idx >= res {
        return Found::Not(PtrCheck::Unallocated);
    }
    if idx * bs != off {
        return Found::Not(PtrCheck::Interior);
    }
    // SAFETY: a carved block of a page in use: mapped and at least 16
    // bytes long.
    let tag = unsafe { ptr::read_volatile((a + 8) as *const usize) };
    match tagged(a, tag) {
        PtrCheck::Live => Found::Block(p),
        c => Found::Not(c),
    }
}

/// Whether `ptr` is the start of a live block: the precondition of
/// `free`, `usable_size`, `resize` and `remap`, which repeat it as a
/// `debug_assert!`.
#[inline]
pub fn is_live(ptr: *const u8) -> bool {
    check(ptr) == PtrCheck::Live
}

/// Classifies a pointer before it is freed (the division-free version of
/// `heap_check.rs`'s reference classifier).
#[inline]
pub fn check(ptr: *const u8) -> PtrCheck {
    match classify(ptr as usize) {
        Found::Block(_) | Found::Huge(_) => PtrCheck::Live,
        Found::Not(c) => c,
    }
}

/// Frees `ptr` when it is the start of a live block and says what it was;
/// anything else is left alone and classified (`NotOurs`, `Interior`,
/// `Free`), for the caller to report.
///
/// The common case -- a live block of a normal segment -- is confirmed by
/// [`live_block`] with the same exact tests as [`classify`] in fewer
/// instructions; anything it does not confirm (huge blocks, misuse) goes
/// through the full classification. [`free_fast`] is the common case
/// alone, for callers that made sure the chunk map exists.
///
/// # Safety
/// When `ptr` is a live block, the caller owns it: nothing uses it after
/// this call, and no other thread frees it at the same time.
#[inline]
pub unsafe fn free_checked(ptr: *mut u8) -> PtrCheck {
    if super::segment::prepare_map() {
        // SAFETY: the map exists; the rest is the caller's promise.
        if let Some(page) = unsafe { live_block::<false>(ptr as usize) } {
            // SAFETY: a live block of page (confirmed), now owned by us.
            return unsafe { free_in(page, ptr) };
        }
    }
    // SAFETY: caller's promise.
    unsafe { free_classified(ptr) }
}

/// The fast half of [`free_checked`]: frees `ptr` and returns true when
/// [`live_block`] confirms it is a live block; false (nothing done) for
/// anything else, which [`free_checked`] then classifies.
///
/// # Safety
/// As for [`free_checked`]; and [`super::prepare`] returned true in a way
/// that happens-before this call.
#[inline(always)]
pub unsafe fn free_fast(ptr: *mut u8) -> bool {
    // SAFETY: caller's promise.
    unsafe { free_confirmed::<false>(ptr) }
}

/// [`free_fast`] for a block of a page that may hold a sample of the heap
/// profiler (which hides the page from [`free_fast`]): the same exact
/// tests, bounded by the page's capacity. For the shim's slow path, once
/// the profiler has seen the block.
///
/// # Safety
/// As for [`free_fast`].
#[inline]
pub unsafe fn free_fast_marked(ptr: *mut u8) -> bool {
    // SAFETY: caller's promise.
    unsafe { free_confirmed::<true>(ptr) }
}

/// [`free_fast`] that also frees a live block of a page hiding its blocks
/// for the heap profiler (see `Page::mark_sampled`), calling `on_hidden`
/// with the block first: the block may be a sample, and the profiler must
/// hear of its free before it happens. Anything else it does not confirm
/// goes to `other` (nothing done), for the caller to classify. A block of
/// a hiding page leaves the fast path where its test fails, with the page
/// already found, so its free costs a few tests and `on_hidden` more than
/// any other, not a second lookup. The fast path is [`free_fast`]'s
/// instruction for instruction; `other` is a tail call, and the hidden way
/// out a call in a block of its own, so a caller that returns what this
/// returns sets up no frame on its fast path.
///
/// # Safety
/// As for [`free_fast`]; `on_hidden` accepts any live block of a normal
/// segment that is about to be freed, and `other` any pointer.
#[inline(always)]
pub unsafe fn free_fast_or(
    ptr: *mut u8,
    on_hidden: impl FnOnce(*mut u8),
    other: impl FnOnce(*mut u8),
) {
    // SAFETY: caller's promise: the chunk map exists.
    let entry = unsafe { segment::chunk_entry_ready(ptr as usize) };
    // SAFETY: the entry of ptr's chunk; the rest is the caller's promise.
    unsafe { free_entry_or(ptr, entry, on_hidden, other) }
}

/// [`free_fast_or`] behind the chunk map's gate (see
/// `chunk_map::set_gate`): while the gate is closed every pointer goes to
/// `other`, NULL too. The shim's `free`, whose mode and NULL tests are
/// thus the map's bound test.
///
/// # Safety
/// As for [`free_fast_or`], except that the chunk map need not exist
/// (the gate is opened only once it does); `other` also accepts NULL.
#[inline(always)]
pub unsafe fn free_gated_or(
    ptr: *mut u8,
    on_hidden: impl FnOnce(*mut u8),
    other: impl FnOnce(*mut u8),
) {
    let entry = super::chunk_map::chunk_entry_gated(ptr as usize);
    // SAFETY: the entry of ptr's chunk (CHUNK_NONE while the gate is
    // closed, and for NULL: nothing is ever mapped at address 0); the rest
    // is the caller's promise.
    unsafe { free_entry_or(ptr, entry, on_hidden, other) }
}

/// [`free_gated_or`] and [`free_fast_or`] given `ptr`'s chunk-map entry.
///
/// The common case is tested alone, first: a block of a small page (the
/// entry of a normal segment in use is `CHUNK_NORMAL` plus its page
/// shift). The page's shift is then a constant, not the loaded entry, so
/// the page's address, which the owner's free writes through and the next
/// allocation from the page reads through, does not wait for the chunk
/// map's loads: the processor predicts the test instead (a free and an
/// allocation of one block, again and again, take a third less time).
/// Anything else takes the same path with the entry's shift, inline too
/// (a call cost the frees of medium and large blocks more).
/// Both probes end in one [`free_probed`], so that its hidden path, the
/// one block with a call, is one block (see there).
///
/// # Safety
/// `entry` is the chunk-map entry of `ptr`'s chunk (or `CHUNK_NONE`); the
/// rest as for [`free_fast_or`].
#[inline(always)]
unsafe fn free_entry_or(
    ptr: *mut u8,
    entry: u8,
    on_hidden: impl FnOnce(*mut u8),
    other: impl FnOnce(*mut u8),
) {
    let probe = if entry == CHUNK_NORMAL + SMALL_PAGE_SHIFT as u8 {
        // SAFETY: a small page's segment: `probe_in` with the entry's
        // shift, as a constant.
        unsafe { probe_page::<false>(ptr as usize, SMALL_PAGE_SHIFT) }
    } else {
        // Not ours, or a block of a medium or large page.
        // SAFETY: caller's promise: the entry of ptr's chunk.
        unsafe { probe_in::<false>(ptr as usize, entry) }
    };
    // SAFETY: what probe_page or probe_in found at ptr; the rest is the
    // caller's promise.
    unsafe { free_probed(ptr, probe, on_hidden, other) }
}

/// The common end of [`free_fast_or`] and [`free_gated_or`]: frees a live
/// block, passes one of a hiding page through `free_hidden`, and anything
/// else to `other`.
///
/// # Safety
/// `probe` is what [`probe_in`] (without `MARKED`) found at `ptr`; the
/// rest as for [`free_fast_or`].
#[inline(always)]
unsafe fn free_probed(
    ptr: *mut u8,
    probe: Probe,
    on_hidden: impl FnOnce(*mut u8),
    other: impl FnOnce(*mut u8),
) {
    match probe {
        Probe::Live(page) => {
            // SAFETY: a live block of page (confirmed), now owned by us
            // (caller's promise).
            unsafe { free_in(page, ptr) };
        }
        Probe::Hidden(page) => {
            // SAFETY: caller's promise; page is the descriptor of ptr's
            // page.
            unsafe { free_hidden(ptr, page, on_hidden, other) };
            // Not a tail call: the frame the forced frame pointers call
            // for is then set up in this (cold) block alone. With tail
            // calls only, the compiler set it up on entry, on the fast
            // path too: 3 of its instructions per `free`.
            core::hint::black_box(());
        }
        Probe::Not => other(ptr),
    }
}

/// [`free_fast_or`] for an address its fast test put beyond the page's
/// `carved_len`: frees it (after `on_hidden`) when it is a live block below
/// the page's capacity, which only a page hiding its blocks has there; any
/// other address goes to `other`.
///
/// # Safety
/// As for [`free_fast_or`]; `page` is the descriptor of the page of
/// `ptr`'s normal segment (the chunk map says it is in use).
#[cold]
#[inline(never)]
unsafe fn free_hidden(
    ptr: *mut u8,
    page: &'static Page,
    on_hidden: impl FnOnce(*mut u8),
    other: impl FnOnce(*mut u8),
) {
    let a = ptr as usize;
    // SAFETY: reading fields of the mapped descriptor.
    let (cls, area_off, cap) = unsafe {
        (
            ptr::read_volatile(page.class.as_ptr()) as usize,
            ptr::read_volatile(page.area_off.as_ptr()) as usize,
            ptr::read_volatile(page.capacity.as_ptr()) as usize,
        )
    };
    debug_assert!(cls < NCLASSES);
    let off = (a & SEGMENT_MASK).wrapping_sub(area_off);
    let m = DIVISOR_TEST[cls];
    if off >= cap * size_class::CLASS_SIZE[cls] || (off as u64).wrapping_mul(m) >= m {
        return other(ptr);
    }
    // SAFETY: a carved block of a page in use: mapped and at least 16
    // bytes long.
    let tag = unsafe { ptr::read_volatile((a + 8) as *const usize) };
    if is_free(a, tag) {
        return other(ptr);
    }
    on_hidden(ptr);
    // SAFETY: a live block of page (confirmed), now owned by us (caller's
    // promise).
    unsafe { free_in(page, ptr) };
}

/// Frees `ptr` when [`live_block`] (with `MARKED`) confirms it.
///
/// # Safety
/// As for [`free_fast`].
#[inline(always)]
unsafe fn free_confirmed<const MARKED: bool>(ptr: *mut u8) -> bool {
    // SAFETY: caller's promise: the chunk map exists.
    match unsafe { live_block::<MARKED>(ptr as usize) } {
        Some(page) => {
            // SAFETY: a live block of page (confirmed), now owned by us
            // (caller's promise).
            unsafe { free_in(page, ptr) };
            true
        }
        None => false,
    }
}

/// [`free_fast`] for a free given the block's size (C++ sized `operator
/// delete`): `Ok(true)` when freed; `Ok(false)` as for `free_fast`'s false
/// (nothing done); `Err(block_size)`, nothing done, when the block is live
/// but `size` exceeds its block size (a wrong size: one comparison more).
///
/// # Safety
/// As for [`free_fast`].
#[inline(always)]
pub unsafe fn free_fast_sized(ptr: *mut u8, size: usize) -> Result<bool, usize> {
    // SAFETY: caller's promise: the chunk map exists.
    match unsafe { live_block::<false>(ptr as usize) } {
        Some(page) => {
            let bs = page.block_size();
            if size > bs {
                return Err(bs);
            }
            // SAFETY: a live block of page (confirmed), now owned by us
            // (caller's promise).
            unsafe { free_in(page, ptr) };
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The usable size of `ptr` when [`live_block`] confirms it is a live
/// block of a normal segment; `None` for anything else (a huge block, or
/// misuse), which the caller then classifies in full.
///
/// # Safety
/// [`super::prepare`] returned true in a way that happens-before this call.
#[inline(always)]
pub unsafe fn live_block_size(ptr: *const u8) -> Option<usize> {
    // SAFETY: caller's promise: the chunk map exists.
    unsafe { live_block::<false>(ptr as usize) }.map(Page::block_size)
}

/// Frees live block `ptr` of `page`.
///
/// # Safety
/// `ptr` is a live block of `page` that the caller owns.
#[inline(always)]
unsafe fn free_in(page: &'static Page, ptr: *mut u8) -> PtrCheck {
    // SAFETY: caller's promise.
    unsafe { super::free_in_page(page, ptr as *mut Block) };
    PtrCheck::Live
}

/// [`free_checked`] for what [`live_block`] did not confirm.
///
/// # Safety
/// As for [`free_checked`].
#[cold]
#[inline(never)]
unsafe fn free_classified(ptr: *mut u8) -> PtrCheck {
    match classify(ptr as usize) {
        // SAFETY: classified live; the caller owns it.
        Found::Block(page) => unsafe { free_in(page, ptr) },
        Found::Huge(seg) => {
            // SAFETY: the header of a live huge block the caller owns.
            unsafe { segment::huge_free(seg) };
            PtrCheck::Live
        }
        Found::Not(c) => c,
    }
}

/// The page of `a` when `a` is the start of a live block of a normal
/// segment; `None` when it is anything else -- or a huge block: `None`
/// only means "classify in full".
///
/// The tests are those of [`classify_in`], arranged for the common case:
/// the chunk map (so nothing unmapped is read), the segment kind, then two
/// independent tests of the offset from the page's first block: below the
/// carved bytes (an address before the first block wraps to a huge offset
/// and fails it, as does any address of an unused page) and a multiple of
/// the block size ([`DIVISOR_TEST`]); last the free tag in the (mapped,
/// carved) block.
///
/// With `MARKED`, the bound is the page's capacity in bytes instead of
/// `carved_len`, which a page holding a sampled block shows as 0 (see
/// `Page::mark_sampled`): [`free_fast_marked`]'s test.
///
/// # Safety
/// The chunk map exists (see [`free_fast`]).
#[inline(always)]
unsafe fn live_block<const MARKED: bool>(a: usize) -> Option<&'static Page> {
    // SAFETY: caller's promise.
    match unsafe { probe::<MARKED>(a) } {
        Probe::Live(p) => Some(p),
        Probe::Hidden(_) | Probe::Not => None,
    }
}

/// What [`probe`] found at an address.
enum Probe {
    /// The start of a live block of this page.
    Live(&'static Page),
    /// An address of this page beyond its `carved_len` (without `MARKED`):
    /// beyond the carved blocks, or in a page hiding its blocks for the
    /// heap profiler (see [`free_fast_or`]).
    Hidden(&'static Page),
    /// Anything else (see [`live_block`]).
    Not,
}

/// [`live_block`]'s tests, telling an address past `carved_len` apart.
///
/// # Safety
/// As for [`live_block`].
#[inline(always)]
unsafe fn probe<const MARKED: bool>(a: usize) -> Probe {
    // SAFETY: caller's promise.
    let entry = unsafe { segment::chunk_entry_ready(a) };
    // SAFETY: the entry of `a`'s chunk.
    unsafe { probe_in::<MARKED>(a, entry) }
}

/// [`probe`] given `a`'s chunk-map entry.
///
/// # Safety
/// `entry` is the chunk-map entry of `a`'s chunk (or [`CHUNK_NONE`]).
#[inline(always)]
unsafe fn probe_in<const MARKED: bool>(a: usize, entry: u8) -> Probe {
    if entry < CHUNK_NORMAL {
        return Probe::Not;
    }
    // A normal segment in use: its entry is CHUNK_NORMAL (a multiple of
    // 64) plus the page shift, which `wrapping_shr` takes modulo 64.
    debug_assert!(u32::from(entry) % 64 == u32::from(entry - CHUNK_NORMAL));
    // SAFETY: as for the caller.
    unsafe { probe_page::<MARKED>(a, u32::from(entry)) }
}

/// [`probe_in`] once the chunk map said that `a` lies in a normal segment
/// in use, whose pages are `1 << (shift % 64)` bytes.
///
/// # Safety
/// As for [`probe_in`], with `shift` from `a`'s chunk-map entry.
#[inline(always)]
unsafe fn probe_page<const MARKED: bool>(a: usize, shift: u32) -> Probe {
    let head = a & !SEGMENT_MASK;
    // SAFETY: the chunk map says a normal segment's header lives at
    // `head`; it stays mapped while the map says so.
    let s = unsafe { &*(head as *const Segment) };
    let rel = a & SEGMENT_MASK;
    // SAFETY: i < SEGMENT_SIZE >> shift = page count <= MAX_PAGES.
    let p: &'static Page = unsafe { s.page(rel.wrapping_shr(shift)) };
    // SAFETY: reading fields of the mapped descriptor.
    let (m, area_off, carved_len) = unsafe {
        (
            ptr::read_volatile(p.div_test.as_ptr()),
            ptr::read_volatile(p.area_off.as_ptr()) as usize,
            if MARKED {
                ptr::read_volatile(p.capacity.as_ptr()) as usize
                    * size_class::CLASS_SIZE[ptr::read_volatile(p.class.as_ptr()) as usize]
            } else {
                ptr::read_volatile(p.carved_len.as_ptr()) as usize
            },
        )
    };
    // Two independent tests (one multiply): a multiple of the block size
    // (the page's copy of DIVISOR_TEST; exact below 2^32) and inside the
    // carved blocks -- which also
    // rejects an address before the first block (the offset wraps to a
    // huge value) and any address of an unused page (nothing carved).
    let off = rel.wrapping_sub(area_off);
    if off >= carved_len {
        return if MARKED { Probe::Not } else { Probe::Hidden(p) };
    }
    if (off as u64).wrapping_mul(m) >= m {
        return Probe::Not;
    }
    // SAFETY: a carved block of a page in use: mapped and at least 16
    // bytes long.
    let tag = unsafe { ptr::read_volatile((a + 8) as *const usize) };
    if is_free(a, tag) {
        Probe::Not
    } else {
        Probe::Live(p)
    }
}

/// Allocates `len > 0` zeroed bytes aligned to `1 << align_log2`; NULL as
/// for [`super::alloc`]. Fresh huge mappings are zero already and are not
/// written; a recycled one, and blocks of classes, are cleared (`len`
/// bytes).
pub fn alloc_zeroed(len: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(len > 0);
    let p = match size_class::class_for(len, align_log2) {
        Some(cls) => super::alloc_in(cls),
        None => return segment::huge_alloc_zeroed(len, align_log2),
    };
    if !p.is_null() {
        // SAFETY: p is a fresh block of at least len bytes.
        unsafe { ptr::write_bytes(p, 0, len) };
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::heap_check::reference::check as reference;
    use super::super::size_class::CLASS_SIZE;
    use super::*;

    #[test]
    fn magic_divides_every_offset_of_every_class() {
        for c in 1..NCLASSES {
            let d = CLASS_SIZE[c];
            let mut off = 0;
            while off < SEGMENT_SIZE {
                for o in [off, off + 1, off + d - 1] {
                    if o < SEGMENT_SIZE {
                        let q = ((o as u64 * MAGIC[c]) >> MAGIC_SHIFT) as usize;
                        assert_eq!(q, o / d, "class {c} size {d} offset {o}");
                    }
                }
                off += d;
            }
        }
    }

    #[test]
    fn divisor_test_accepts_exactly_the_multiples() {
        for c in 1..NCLASSES {
            let d = CLASS_SIZE[c];
            let m = DIVISOR_TEST[c];
            let mut off = 0;
            while off < SEGMENT_SIZE {
                for o in [off, off + 1, off + 8, off + d / 2, off + d - 1] {
                    if o < SEGMENT_SIZE {
                        let accepted = (o as u64).wrapping_mul(m) < m;
                        assert_eq!(accepted, o % d == 0, "class {c} size {d} offset {o}");
                    }
                }
                off += d;
            }
        }
        // Class 0 (an unused page) accepts nothing, not even offset 0.
        assert_eq!(DIVISOR_TEST[0], 0);
    }

    #[test]
    fn agrees_with_the_reference_classifier() {
        let mut live = [ptr::null_mut::<u8>(); 64];
        let sizes = [
            1usize,
            16,
            24,
            100,
            1000,
            5000,
            40 << 10,
            300 << 10,
            3 << 20,
        ];
        for (k, p) in live.iter_mut().enumerate() {
            *p = super::super::alloc(sizes[k % sizes.len()], 4);
            assert!(!p.is_null());
        }
        let freed = live[1];
        // SAFETY: a live block of ours.
        unsafe { super::super::free(freed) };
        let stack = 0u64;
        let mut probes: Vec<*const u8> = Vec::new();
        for &p in &live {
            for d in [0usize, 1, 8, 15, 16, 24, 4096] {
                probes.push(p.wrapping_add(d) as *const u8);
                probes.push(p.wrapping_sub(d) as *const u8);
            }
        }
        probes.push(&stack as *const u64 as *const u8);
        probes.push(ptr::null());
        probes.push(16 as *const u8);
        for &q in &probes {
            assert_eq!(check(q), reference(q), "pointer {q:p}");
        }
        assert_eq!(check(freed), PtrCheck::Free);
        for &p in &live[2..] {
            assert_eq!(check(p), PtrCheck::Live);
            // SAFETY: a live block of ours, freed once.
            assert_eq!(unsafe { free_checked(p) }, PtrCheck::Live);
            assert_eq!(check(p), PtrCheck::Free);
            // SAFETY: a double free is classified and not performed.
            assert_eq!(unsafe { free_checked(p) }, PtrCheck::Free);
        }
        // SAFETY: interior and foreign pointers are classified only.
        unsafe {
            assert_eq!(free_checked(live[0].wrapping_add(8)), PtrCheck::Interior);
            assert_eq!(
                free_checked(&stack as *const u64 as *mut u8),
                PtrCheck::NotOurs
            );
            assert_eq!(free_checked(live[0]), PtrCheck::Live);
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_recycled() {
        for &len in &[16usize, 200, 5000, 100 << 10, 5 << 20] {
            for _ in 0..3 {
                let p = super::super::alloc(len, 4);
                // SAFETY: p is a fresh block of len bytes.
                unsafe {
                    ptr::write_bytes(p, 0xa5, len);
                    super::super::free(p);
                }
                let z = alloc_zeroed(len, 4);
                assert!(!z.is_null());
                // SAFETY: z is a fresh block of len bytes.
                let s = unsafe { core::slice::from_raw_parts(z, len) };
                assert!(s.iter().all(|&b| b == 0), "len {len}");
                // SAFETY: live block of ours.
                unsafe { super::super::free(z) };
            }
        }
    }

    #[test]
    fn free_keeps_errno() {
        for &len in &[16usize, 100 << 10, 8 << 20] {
            let p = super::super::alloc(len, 4);
            crate::sys::errno::set(4321);
            // SAFETY: a live block of ours.
            assert_eq!(unsafe { free_checked(p) }, PtrCheck::Live);
            super::super::collect();
            assert_eq!(crate::sys::errno::get(), 4321);
        }
    }
}
