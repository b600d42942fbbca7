//! The general-purpose allocator behind `la_smp_allocator()` and the malloc
//! shim: a thread-caching, size-segregated segment allocator.
//!
//! How it works (one concept per file):
//! - `size_class.rs`: requests are rounded to 108 classes (at most 12.5%
//!   waste above 64 bytes);
//! - `reserve.rs`: the process-wide reserve: arenas of 4 MiB slots shared by
//!   all threads, from which segments and huge blocks up to 32 MiB are
//!   carved, and to which they return resident; its decay gives memory back
//!   to the OS after the purge delay; `purger.rs`: the background thread
//!   that runs that decay while the program makes no allocation call;
//! - `segment.rs`: 4 MiB-aligned segments split into pages of one kind;
//!   `free` finds a block's page by masking its address; huge blocks (from
//!   the reserve, or a mapping of their own above 32 MiB, grown and shrunk
//!   with `mremap`); `chunk_map.rs`: which address ranges are ours;
//! - `page.rs`: a page's blocks and its free lists (owner's `free` and
//!   `local_free`, other threads' atomic `thread_free`);
//! - `heap.rs`: per-thread heaps, page queues, the slow paths, the
//!   heap's part of the decay, thread-exit abandonment and reclaim;
//! - `thread.rs`: TLS, the exit key, the heap pool, fork safety;
//! - `stats.rs`: statistics; `classify.rs`: pointer classification and
//!   the shim's checked entry points (division-free classification,
//!   checked free, zeroed alloc); `heap_check.rs`: the heap-consistency
//!   checker.
//!
//! The interface used by the vtable below and by the preload shim:
//!
//! - [`alloc`]`(len, align_log2)`: `len > 0` bytes, aligned; NULL when out
//!   of memory or the alignment cannot be met;
//! - [`free`]`(ptr)`: frees a live block without being told its size;
//! - [`usable_size`]`(ptr)`: bytes usable in a live block (>= requested);
//! - [`resize`]`(ptr, new_len)`: in place, true when the block now holds
//!   `new_len` bytes;
//! - [`remap`]`(ptr, new_len, align_log2, copy_len)`: may move (a growing
//!   block moves with headroom for further growth); NULL when out of
//!   memory;
//! - [`check`]`(ptr)`: classifies a pointer before it is freed, so the shim
//!   can report foreign, interior and double frees instead of corrupting;
//! - [`collect`]: returns free memory to the OS now;
//! - [`free_checked`]`(ptr)`: [`check`] and [`free`] with one lookup (the
//!   shim's `free`), and [`free_fast`]`(ptr)`, its common case alone (a
//!   live block of a normal segment, else nothing done), and
//!   [`live_block_size`] (the same test, for `realloc` in place);
//!   [`alloc_zeroed`]`(len, align_log2)`: `calloc` without clearing fresh
//!   huge mappings (all three in `classify.rs`).
//!
//! `free` and `free_checked` never change `errno` (see `classify.rs`).
//!
//! None of these allocate through the global allocator, panic or take a
//! lock (so `fork()` can never leave one held).

mod chunk_map;
mod classify;
mod heap;
mod heap_check;
mod page;
mod purger;
mod reserve;
mod segment;
pub mod size_class;
mod stats;
mod thread;

pub use chunk_map::set_gate as set_free_gate;
pub use classify::{
    PtrCheck, alloc_zeroed, free_checked, free_fast, free_fast_marked, free_fast_or,
    free_fast_sized, free_gated_or, live_block_size,
};
#[cfg(feature = "preload")]
pub(crate) use heap::PURGE_DELAY_MS;
pub use heap::set_purge_delay_ms;
pub use purger::set_enabled as set_purge_thread;
pub use stats::{LA_SMP_CLASSES, huge_live_bytes, la_smp_class_stats, la_smp_stats};

use core::ffi::c_void;
use core::ptr;

use crate::vtable::{RawAllocator, la_allocator, la_vtable, vtable_of};

/// Allocates a block of class `cls` (from [`size_class`]); NULL when out of
/// memory (or for class 0).
#[inline]
pub fn alloc_in(cls: usize) -> *mut u8 {
    let h = thread::current_raw();
    // SAFETY: the calling thread's own heap, or the empty heap, from which
    // `pop` finds nothing (and writes nothing): no test of its own.
    let b = unsafe { (*h).pop(cls) };
    if !b.is_null() {
        return b;
    }
    alloc_slow(cls)
}

/// [`alloc_in`] that also counts `size` requested bytes down against the
/// calling thread's sampling countdown (`Heap::sample_left`): the block,
/// unless the countdown ran out with it (then `due(block)`, which samples
/// it and sets a new countdown with [`set_sample_left`]) or the fast path
/// found no block (then `slow()`, which allocates and counts down itself,
/// see [`count_down`]). One subtraction more than [`alloc_in`] on the fast
/// path; `due` and `slow` are tail calls, so nothing stays live across them.
#[inline(always)]
pub fn alloc_counted(
    cls: usize,
    size: usize,
    due: impl FnOnce(*mut u8) -> *mut u8,
    slow: impl FnOnce() -> *mut u8,
) -> *mut u8 {
    // SAFETY: the calling thread's own heap, or the empty heap, from which
    // `pop` finds nothing (and writes nothing): no test of its own.
    let heap = unsafe { &*thread::current_raw() };
    let b = heap.pop(cls);
    if !b.is_null() {
        // A real heap: the empty one hands nothing out.
        let left = heap.sample_left.get() - size as i64;
        heap.sample_left.set(left);
        if left >= 0 {
            return b;
        }
        return due(b);
    }
    slow()
}

/// Counts `size` requested bytes down against the calling thread's
/// sampling countdown (see [`alloc_counted`]); true when it ran out. False
/// when the thread has no heap and cannot get one.
pub fn count_down(size: usize) -> bool {
    let mut h = thread::current_fast();
    if h.is_null() {
        h = thread::current_or_init();
        if h.is_null() {
            return false;
        }
    }
    // SAFETY: the calling thread's own heap.
    let heap = unsafe { &*h };
    let left = heap.sample_left.get() - size as i64;
    heap.sample_left.set(left);
    left < 0
}

/// Sets the calling thread's sampling countdown to `bytes` (see
/// [`alloc_counted`]).
pub fn set_sample_left(bytes: i64) {
    // The fast lookup first (no call): a sampling thread has its heap.
    let mut h = thread::current_fast();
    if h.is_null() {
        h = thread::current_or_init();
    }
    if !h.is_null() {
        // SAFETY: the calling thread's own heap.
        unsafe { &*h }.sample_left.set(bytes);
    }
}

#[inline(never)]
fn alloc_slow(cls: usize) -> *mut u8 {
    if cls == 0 {
        // Class 0 (a zero-length request, see `size_class::class_small`).
        return ptr::null_mut();
    }
    // The thread's heap by the fast lookup (no call); made on its first use.
    let mut h = thread::current_fast();
    if h.is_null() {
        h = thread::current_or_init();
        if h.is_null() {
            return ptr::null_mut();
        }
    }
    // SAFETY: the calling thread's own heap.
    let b = heap::alloc_slow(unsafe { &*h }, cls);
    purger::poll();
    #[cfg(test)]
    heap_check::check_now_and_then();
    b
}

/// Allocates `len > 0` bytes aligned to `1 << align_log2`.
#[inline]
pub fn alloc(len: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(len > 0);
    match size_class::class_for(len, align_log2) {
        Some(cls) => alloc_in(cls),
        None => segment::huge_alloc(len, align_log2),
    }
}

/// Frees a block from [`alloc`] or [`remap`].
///
/// # Safety
/// `ptr` is a live block of this allocator.
#[inline(always)]
pub unsafe fn free(ptr: *mut u8) {
    debug_assert!(classify::is_live(ptr), "free of a block that is not live");
    let seg = segment::segment_of(ptr);
    // SAFETY: caller's promise: ptr is ours, so its segment header is mapped.
    let s = unsafe { &*seg };
    if s.kind.get() == segment::HUGE {
        // SAFETY: a live huge block, now dead.
        unsafe { segment::huge_free(seg) };
        return;
    }
    let i = (ptr as usize - seg as usize) >> s.page_shift.get();
    // SAFETY: i is below the page count of this normal segment.
    let page = unsafe { s.page(i) };
    // SAFETY: caller's promise.
    unsafe { free_in_page(page, ptr as *mut page::Block) }
}

/// Frees live block `b` of `page`, by the owner's path when the calling
/// thread owns the page, else by the remote path.
///
/// # Safety
/// `b` is a live block of `page` that the caller owns.
#[inline(always)]
pub(crate) unsafe fn free_in_page(page: &page::Page, b: *mut page::Block) {
    let h = thread::current_raw();
    // A page in use never has a null owner (see `page::NO_OWNER`) nor the
    // empty heap, so a thread without a heap takes the remote path.
    debug_assert!(
        !page
            .heap
            .load(core::sync::atomic::Ordering::Relaxed)
            .is_null()
    );
    if page.heap.load(core::sync::atomic::Ordering::Relaxed) == h {
        // SAFETY: our own page and heap; b is a live block of it (caller's
        // promise), now owned by us.
        unsafe { heap::free_local(&*h, page, b) };
    } else {
        free_remote(page, b, h);
    }
}

/// A free into a page another heap owns; a thread that only frees gets a
/// heap too, so that its counters stay thread-local.
#[inline(always)]
fn free_remote(page: &page::Page, b: *mut page::Block, h: *mut heap::Heap) {
    if thread::is_empty(h) {
        return free_remote_first(page, b);
    }
    // SAFETY: the caller's block b is a live block of page; h is the
    // calling thread's own heap (from current_raw, not the empty one).
    unsafe { heap::free_remote(&*h, page, b) };
}

/// [`free_remote`] by a thread without a heap yet.
#[cold]
#[inline(never)]
fn free_remote_first(page: &page::Page, b: *mut page::Block) {
    let h = thread::current_or_init();
    if h.is_null() {
        // SAFETY: the caller's block b is a live block of page.
        return unsafe { heap::free_orphan(page, b) };
    }
    // SAFETY: as in `free_remote`; h is the calling thread's new heap.
    unsafe { heap::free_remote(&*h, page, b) };
}

/// Usable bytes of a live block.
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn usable_size(ptr: *const u8) -> usize {
    debug_assert!(classify::is_live(ptr), "size of a block that is not live");
    let seg = segment::segment_of(ptr);
    // SAFETY: caller's promise: the segment header is mapped.
    let s = unsafe { &*seg };
    if s.kind.get() == segment::HUGE {
        return segment::huge_usable(s);
    }
    let i = (ptr as usize - seg as usize) >> s.page_shift.get();
    // SAFETY: i is below the page count.
    unsafe { s.page(i) }.block_size()
}

/// The page of live block `ptr`, or `None` for a huge block.
///
/// # Safety
/// `ptr` is a live block of this allocator.
unsafe fn page_of(ptr: *const u8) -> Option<&'static page::Page> {
    debug_assert!(classify::is_live(ptr), "page of a block that is not live");
    let seg = segment::segment_of(ptr);
    // SAFETY: caller's promise: the segment header is mapped.
    let s = unsafe { &*seg };
    if s.kind.get() == segment::HUGE {
        return None;
    }
    let i = (ptr as usize - seg as usize) >> s.page_shift.get();
    // SAFETY: i is below the page count.
    Some(unsafe { s.page(i) })
}

/// Marks live block `ptr`, just sampled by the heap profiler, so that its
/// `free` leaves the fast path where its test fails (for
/// [`free_fast_or`]'s hidden path or the shim's checked slow path, where
/// the profiler hears of it); the fast path then needs no test of its own
/// for sampled blocks (see `Page::mark_sampled`: the page's blocks from
/// this one on leave with it). Huge blocks always take
/// that path and need no mark. False, nothing done, when the block's page
/// belongs to another thread's heap (a `realloc` in place of another
/// thread's block): only the owner may hide a page's blocks.
///
/// # Safety
/// `ptr` is a live block of this allocator that the caller owns.
pub unsafe fn mark_sampled(ptr: *const u8) -> bool {
    // SAFETY: caller's promise.
    let Some(page) = (unsafe { page_of(ptr) }) else {
        return true;
    };
    let h = thread::current_fast();
    if h.is_null() || page.heap.load(core::sync::atomic::Ordering::Relaxed) != h {
        return false;
    }
    let off = (ptr as usize & segment::SEGMENT_MASK) - page.area_off.get() as usize;
    debug_assert!(off < page.capacity.get() as usize * page.block_size());
    page.mark_sampled(off as u32);
    true
}

/// Undoes [`mark_sampled`] for a sampled block about to be freed or moved
/// (before it is: its page may be reused once it is freed).
///
/// # Safety
/// `ptr` is a live block of this allocator that [`mark_sampled`] marked
/// (returned true for), not unmarked since.
pub unsafe fn unmark_sampled(ptr: *const u8) {
    // SAFETY: caller's promise.
    if let Some(page) = unsafe { page_of(ptr) } {
        let h = thread::current_fast();
        let owner = !h.is_null() && page.heap.load(core::sync::atomic::Ordering::Relaxed) == h;
        page.unmark_sampled(owner);
    }
}

/// Grows or shrinks a block in place.
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn resize(ptr: *mut u8, new_len: usize) -> bool {
    // SAFETY: caller's promise.
    unsafe { resize_ex(ptr, new_len, false) }
}

/// [`resize`], told whether the block shrinks (then a huge block much
/// larger than `new_len` gives its tail back to the OS).
///
/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn resize_ex(ptr: *mut u8, new_len: usize, shrinking: bool) -> bool {
    debug_assert!(classify::is_live(ptr), "resize of a block that is not live");
    let seg = segment::segment_of(ptr);
    // SAFETY: caller's promise: the segment header is mapped.
    let s = unsafe { &*seg };
    if s.kind.get() == segment::HUGE {
        // SAFETY: a live huge block of the caller.
        return unsafe { segment::huge_resize(seg, new_len, shrinking) };
    }
    // SAFETY: as in usable_size.
    new_len <= unsafe { usable_size(ptr) }
}

/// Resizes a block, possibly moving it: in place when it fits, by `mremap`
/// for huge blocks, and otherwise a growing block moves (copying
/// `copy_len` bytes) to a block with headroom for further growth (see
/// [`grow_move`]). NULL when out of memory; the block is then untouched.
///
/// # Safety
/// `ptr` is a live block of this allocator, aligned to `1 << align_log2`;
/// `copy_len` is at most its usable size.
pub unsafe fn remap(ptr: *mut u8, new_len: usize, align_log2: u8, copy_len: usize) -> *mut u8 {
    // SAFETY: caller's promise.
    unsafe { remap_ex(ptr, new_len, align_log2, copy_len, false) }
}

/// [`remap`], told whether the block shrinks (see [`resize_ex`]).
///
/// # Safety
/// As for [`remap`].
#[inline]
pub unsafe fn remap_ex(
    ptr: *mut u8,
    new_len: usize,
    align_log2: u8,
    copy_len: usize,
    shrinking: bool,
) -> *mut u8 {
    debug_assert!(classify::is_live(ptr), "remap of a block that is not live");
    let seg = segment::segment_of(ptr);
    // SAFETY: caller's promise: the segment header is mapped.
    let s = unsafe { &*seg };
    if s.kind.get() == segment::HUGE {
        // SAFETY: a live huge block of the caller.
        return unsafe { remap_huge(ptr, new_len, align_log2, copy_len, shrinking) };
    }
    let i = (ptr as usize - seg as usize) >> s.page_shift.get();
    // SAFETY: i is below the page count of this normal segment.
    if new_len <= unsafe { s.page(i) }.block_size() {
        return ptr;
    }
    // The block grows past its class: copy.
    // SAFETY: caller's promise.
    unsafe { grow_move(ptr, new_len, align_log2, copy_len) }
}

/// [`remap_ex`] of a huge block: in place, else by `mremap` to a new
/// place, else by copying.
///
/// # Safety
/// As for [`remap`]; `ptr` is a huge block.
#[inline(never)]
unsafe fn remap_huge(
    ptr: *mut u8,
    new_len: usize,
    align_log2: u8,
    copy_len: usize,
    shrinking: bool,
) -> *mut u8 {
    let seg = segment::segment_of(ptr);
    // SAFETY: a live huge block of the caller.
    if unsafe { segment::huge_resize(seg, new_len, shrinking) } {
        return ptr;
    }
    // SAFETY: as above.
    let moved = unsafe { segment::huge_move(seg, new_len) };
    if !moved.is_null() {
        return moved;
    }
    // SAFETY: caller's promise.
    unsafe { grow_move(ptr, new_len, align_log2, copy_len) }
}

/// Above this size a growing block moves into a huge mapping of its own,
/// whose later growth is `mremap` instead of copies.
const REMAP_TO_HUGE: usize = 64 << 10;

/// Moves a growing block to a new one of at least `new_len` bytes and
/// frees the old one; NULL (old block untouched) when out of memory.
///
/// A block that grew is likely to grow again (appends, `realloc` in a
/// loop), so the new block gets headroom: `5/8` of `new_len` more, but
/// never more than the old block's size, so that a single large jump is
/// not inflated. Later growth within the headroom is in place: a buffer
/// grown in small steps moves about a fifth as often as class rounding
/// alone would make it, and a vector that grows by half its size plus a
/// little (Zig's `ArrayList`, most dynamic arrays) moves on every second
/// step only (`5/8` rather than `1/2` leaves room for the "little").
/// Above [`REMAP_TO_HUGE`] the new block is a huge mapping (grown later by
/// `mremap`).
///
/// # Safety
/// `ptr` is a live block of this allocator aligned to `1 << align_log2`,
/// with fewer than `new_len` usable bytes; `copy_len` is at most its
/// usable size.
#[inline(never)]
unsafe fn grow_move(ptr: *mut u8, new_len: usize, align_log2: u8, copy_len: usize) -> *mut u8 {
    // SAFETY: caller's promise: ptr is live.
    let old = unsafe { usable_size(ptr) };
    debug_assert!(copy_len <= old && old < new_len);
    let want = new_len.saturating_add((new_len / 8 * 5).min(old));
    let q = if want > REMAP_TO_HUGE {
        segment::huge_alloc_growing(want, align_log2)
    } else {
        alloc(want, align_log2)
    };
    // Without room for the headroom, the exact length may still fit.
    let q = if q.is_null() && want > new_len {
        alloc(new_len, align_log2)
    } else {
        q
    };
    if q.is_null() {
        return q;
    }
    // SAFETY: ptr is live with at least copy_len bytes; q is a fresh block
    // of at least new_len > old >= copy_len bytes; they do not overlap.
    unsafe {
        ptr::copy_nonoverlapping(ptr, q, copy_len);
        free(ptr);
    }
    q
}

/// Classifies a pointer before it is freed: exact, never reads memory that
/// is not mapped, no division (see `classify.rs`).
#[inline]
pub fn check(ptr: *const u8) -> PtrCheck {
    classify::check(ptr)
}

/// Bytes of the address-space chunks [`owns_chunk`] answers for.
pub const CHUNK_SIZE: usize = segment::SEGMENT_SIZE;

/// Whether the [`CHUNK_SIZE`]-aligned chunk holding `addr` is this
/// allocator's (a segment, a huge block, a cached slot of the reserve):
/// the debug allocator's leak scan does not take its memory as roots.
/// Reads the chunk map only.
pub fn owns_chunk(addr: usize) -> bool {
    chunk_map::chunk_entry(addr) != chunk_map::CHUNK_NONE
}

/// Sets up what [`free_fast`] relies on (the chunk map, otherwise made
/// with the first segment); false when that memory cannot be mapped.
pub fn prepare() -> bool {
    segment::prepare_map()
}

/// Returns free memory to the OS now: collects the calling thread's heap
/// (blocks freed by other threads, empty pages), reclaims abandoned
/// segments and decommits every free page.
pub fn collect() {
    let h = thread::current_or_init();
    if !h.is_null() {
        // SAFETY: the calling thread's own heap.
        heap::collect(unsafe { &*h });
    }
}

/// The vtable face of the smp allocator.
pub struct SmpAllocator;

static INSTANCE: SmpAllocator = SmpAllocator;
/// The shared trampolines of [`vtable_of`], except `alloc`: see [`vt_alloc`].
static VTABLE: la_vtable = la_vtable {
    alloc: Some(vt_alloc),
    ..vtable_of::<SmpAllocator>()
};

/// The vtable's `alloc` entry. Gives what the shared trampoline gives (NULL
/// for `len == 0` and alignments of 64 or more; the context is ignored),
/// but the common case, a table-sized request aligned to at most 16 bytes,
/// needs no test of its own: `len == 0` maps to class 0, which has no
/// pages, so it ends on the slow path, which returns NULL.
///
/// # Safety
/// None beyond the vtable contract: every argument is checked.
unsafe extern "C" fn vt_alloc(
    _ctx: *mut c_void,
    len: usize,
    alignment: u8,
    _ret_addr: usize,
) -> *mut c_void {
    if len <= size_class::TABLE_MAX && alignment <= 4 {
        return alloc_in(size_class::class_small(len, alignment)).cast();
    }
    alloc_checked(len, alignment).cast()
}

/// [`alloc`] behind the contract's checks (the rest of [`vt_alloc`]).
#[inline(never)]
fn alloc_checked(len: usize, alignment: u8) -> *mut u8 {
    if len == 0 || alignment > crate::alignment::MAX_LOG2 {
        return ptr::null_mut();
    }
    alloc(len, alignment)
}

// SAFETY: blocks are at least `len` bytes and aligned by `alloc`; resize
// reports success only when the block holds the new length.
unsafe impl RawAllocator for SmpAllocator {
    #[inline]
    unsafe fn from_ctx<'a>(_ctx: *mut c_void) -> Option<&'a Self> {
        Some(&INSTANCE)
    }
    #[inline]
    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        alloc(len, alignment)
    }
    unsafe fn resize(&self, m: *mut u8, len: usize, _a: u8, new_len: usize, _r: usize) -> bool {
        // SAFETY: vtable promise: m is a live block.
        unsafe { resize_ex(m, new_len, new_len < len) }
    }
    unsafe fn remap(&self, m: *mut u8, len: usize, a: u8, new_len: usize, _r: usize) -> *mut u8 {
        // SAFETY: vtable promise: m is a live block of len bytes aligned to
        // 1 << a (len is at most its usable size).
        unsafe { remap_ex(m, new_len, a, len, new_len < len) }
    }
    #[inline]
    unsafe fn free(&self, m: *mut u8, _len: usize, _a: u8, _r: usize) {
        // SAFETY: vtable promise: m is a live block.
        unsafe { free(m) }
    }
}

/// The process-wide general-purpose allocator (thread-caching; backs the
/// malloc shim).
///
/// `remap` of a block that outgrows its size class moves it to a block
/// with headroom for further growth (up to 5/8 of the new length, never
/// more than the old size), so a buffer that keeps growing is mostly
/// resized in place; `resize` never moves.
///
/// Returns: the allocator (stateless handle; may be copied freely).
///
/// Thread safety: safe from any thread; a block may be freed by a thread
/// other than the one that allocated it.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_allocator() -> la_allocator {
    la_allocator {
        ptr: ptr::null_mut(),
        vtable: &VTABLE,
    }
}

/// Returns free memory held by the smp allocator to the OS now.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_collect() {
    collect()
}

/// Sets how long free memory stays committed before the smp allocator
/// gives it back to the OS (`MADV_DONTNEED`), in milliseconds; the default
/// is 50. Memory freed and reused within the delay costs no system call;
/// 0 gives memory back at the next purge pass. `la_smp_collect` gives
/// everything back at once, whatever the delay.
///
/// Thread safety: safe from any thread; takes effect at the next purge
/// pass.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_set_purge_delay_ms(ms: u64) {
    set_purge_delay_ms(ms)
}

/// Switches the smp allocator's background purger on (the default) or off.
/// The purger is a thread that exists only while freed memory waits for
/// its purge delay, so that a program that stops allocating still gets its
/// memory back; it exits when nothing is left to purge, and never keeps a
/// process alive. Off, free memory is given back only from allocation
/// calls, `la_smp_collect` and `malloc_trim`.
///
/// Thread safety: safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_set_purge_thread(enabled: bool) {
    purger::set_enabled(enabled)
}

/// Fills `out` with the smp allocator's statistics: live, peak and total
/// bytes and blocks, memory committed from the OS, and per size class
/// counters (see `la_smp_stats`).
///
/// Parameters: `out` the struct to fill; NULL does nothing.
///
/// Thread safety: safe from any thread; counters of other threads are read
/// without stopping them, so a snapshot taken while they run is approximate.
///
/// # Safety
/// `out` is NULL or points to writable storage for an `la_smp_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_smp_get_stats(out: *mut la_smp_stats) {
    if out.is_null() {
        return;
    }
    // SAFETY: caller's promise: out is writable.
    stats::snapshot(unsafe { &mut *out });
}

/// Diagnostic: checks the consistency of the calling thread's smp heap
/// (page lists, free lists, block bounds and tags, segment bookkeeping).
///
/// Returns: the number of problems found (0 = consistent); each is also
/// described on stderr (at most 8).
///
/// Thread safety: checks only the calling thread's heap; safe while other
/// threads allocate and free.
#[unsafe(no_mangle)]
pub extern "C" fn la_smp_check_heap() -> usize {
    heap_check::check_heap()
}

#[cfg(test)]
mod tests;
