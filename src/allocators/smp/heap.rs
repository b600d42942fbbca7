//! Thread-local heaps: the owner of pages and segments.
//!
//! Each thread allocates from its own [`Heap`] (found through `thread.rs`)
//! without locks. Per size class the heap keeps a queue of pages; the fast
//! path pops the first page's `free` list. When that list is empty the slow
//! path ([`alloc_slow`]) walks the queue: it collects each page (taking
//! blocks freed locally and by other threads), carves more blocks, and moves
//! pages that have nothing left to the heap's full list, where they cost
//! nothing on later walks. A thread freeing into a page on a full list sets
//! the heap's `delayed` flag (a Dekker pair of sequentially consistent
//! accesses on the page's flag and its `thread_free` makes sure either the
//! freeing thread sees the flag or the owner sees the block), and the owner
//! rescans its full list on its next slow path. A thread frees another
//! heap's blocks in chains: it links the blocks of one page per class and
//! pushes each chain onto the page's `thread_free` with one
//! compare-exchange, at most [`PEND_MAX`] blocks later ([`free_remote`]).
//!
//! A page that becomes empty is returned to its segment unless it is the
//! only page of its class (kept to avoid thrashing, released after the purge
//! delay); a segment left with no page in use goes to the shared reserve
//! (`reserve.rs`) at once, still resident, for any thread to reuse. Free
//! pages of segments still in use stay committed for [`PURGE_DELAY_MS`] (or
//! what [`set_purge_delay_ms`] set) and are then decommitted by a purge pass
//! that runs from slow paths at most once per delay; the same pass runs the
//! reserve's decay when it is due. `la_smp_collect` does all of this at
//! once.
//!
//! When a thread exits ([`abandon`]) nothing is decommitted: its empty pages
//! are freed, its empty segments go to the reserve resident (the next
//! thread takes them without a system call or a page fault), and the
//! segments that still hold live blocks are pushed on the abandoned stack;
//! other threads reclaim them ([`adopt`]) when they need a page.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::page::{Block, FULL, Page};
use super::segment::{self, ABANDONED, Segment};
use super::size_class::{NCLASSES, class_size, kind_of};
use super::stats;
use crate::sys;

/// Free pages stay committed this long before they are decommitted (by
/// default; see [`set_purge_delay_ms`]).
pub(crate) const PURGE_DELAY_MS: u64 = 50;

/// The purge delay in force, in milliseconds.
static PURGE_DELAY: AtomicU64 = AtomicU64::new(PURGE_DELAY_MS);

/// Sets how long free pages stay committed before a purge pass decommits
/// them (process-wide; read by slow paths only). The shim's debug mode
/// stretches it: its operations take several times longer, and a delay
/// counted in time would otherwise decommit, mid-phase, pages the program
/// is about to use again.
pub fn set_purge_delay_ms(ms: u64) {
    PURGE_DELAY.store(ms, Ordering::Relaxed);
}

/// The purge delay in force, in milliseconds.
pub(crate) fn purge_delay() -> u64 {
    PURGE_DELAY.load(Ordering::Relaxed)
}

/// A thread's heap. Lives in the heap pool (`thread.rs`), never unmapped;
/// a zeroed `Heap` is a valid empty heap.
#[repr(C)]
pub struct Heap {
    /// Page queue and counters of each class (one cache line holds two).
    pub q: [ClassQueue; NCLASSES],
    /// Per class, blocks this heap's threads freed (written by the owner
    /// only, read by statistics): apart from the queues, so that the
    /// owner's free indexes it by the class as it is.
    pub frees: [AtomicU64; NCLASSES],
    /// Pages with no free block (doubly linked through the page links).
    pub full: Cell<*mut Page>,
    /// Owned segments per page kind.
    pub segs: [Cell<*mut Segment>; 3],
    /// Set by other threads freeing into a page on the full list.
    pub delayed: AtomicBool,
    /// Time of the next purge pass.
    pub next_purge: Cell<u64>,
    /// Live bytes and blocks not yet flushed to the global counters, as of
    /// the last [`Heap::sync_class`] of each class.
    pub live_bytes: Cell<isize>,
    pub live_count: Cell<isize>,
    /// Live blocks of each class (`allocs - frees`) at its last sync.
    pub synced: [Cell<isize>; NCLASSES],
    /// Link in the heap pool's free stack (index + 1).
    pub pool_next: core::sync::atomic::AtomicU32,
    /// Bytes this thread may still allocate before a sampler above (the
    /// shim's heap profiler) wants to see an allocation; counted down by
    /// [`super::alloc_counted`] only, so it costs nothing unless asked.
    pub sample_left: Cell<i64>,
    /// Per class, blocks this thread freed into one page of another heap
    /// and has not pushed yet (see [`free_remote`]).
    pub pend: [Pending; NCLASSES],
    /// Huge blocks this heap's threads allocated and freed (see
    /// `stats.rs`).
    pub huge: HugeCounters,
}

/// Counters of the huge blocks a heap's threads allocated and freed,
/// written by the owner only (plain thread-local increments, as the class
/// counters), summed over all heaps by statistics: process-wide atomics
/// here made threads that allocate and free huge blocks take each other's
/// cache lines on every operation (two threads churning 256 KiB-4 MiB
/// blocks ran 21% slower than with no counting).
#[repr(C)]
pub struct HugeCounters {
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
    /// Bytes of all huge blocks allocated (their mappings).
    pub total_bytes: AtomicU64,
    /// Bytes of live huge blocks allocated minus those freed, wrapping: a
    /// block allocated by one thread and freed by another leaves the
    /// first heap's count up and the second's down; the sum is exact.
    pub live_bytes: AtomicU64,
}

impl HugeCounters {
    /// Counts `allocs` allocations and `frees` frees of huge blocks that
    /// add `total` bytes allocated and change the live bytes by `live`.
    /// Owner only.
    pub fn add(&self, allocs: u64, frees: u64, total: u64, live: isize) {
        add_to(&self.allocs, allocs);
        add_to(&self.frees, frees);
        add_to(&self.total_bytes, total);
        add_to(&self.live_bytes, live as u64);
    }
}

/// A chain of blocks of one page, freed by the heap's thread into a page
/// that another heap owns, waiting to be pushed onto the page's
/// `thread_free` with one compare-exchange. Every block is tagged free and
/// still counted in the page's `used`, so the page stays in use; a second
/// free of one is caught as a double free. The blocks are not counted in
/// the class's `frees` until the chain is pushed.
#[repr(C)]
pub struct Pending {
    /// The page (null: nothing pending).
    pub page: Cell<*const Page>,
    pub head: Cell<*mut Block>,
    pub tail: Cell<*mut Block>,
    pub count: Cell<u32>,
    /// How many more blocks may join the chain; a free that finds it 0
    /// (and leaves it negative) pushes the chain instead.
    pub room: Cell<i32>,
}

/// The pages of one class, and how many blocks of it this heap's threads
/// allocated (written by the owner only, read by statistics; the frees are
/// `Heap::frees`).
#[repr(C, align(32))]
pub struct ClassQueue {
    pub first: Cell<*mut Page>,
    pub last: Cell<*mut Page>,
    pub allocs: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64) {
    add_to(c, 1);
}

/// Adds `v` (wrapping) to a counter only the owner writes: a plain load and
/// store, no read-modify-write.
#[inline]
fn add_to(c: &AtomicU64, v: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed);
}

impl Heap {
    /// Counts an allocation of class `cls` (the fast path's only
    /// bookkeeping: one thread-local increment).
    #[inline(always)]
    pub fn count_alloc(&self, cls: usize) {
        debug_assert!(cls < NCLASSES);
        // SAFETY: cls < NCLASSES.
        bump(&unsafe { self.q.get_unchecked(cls) }.allocs);
    }

    /// Counts a free of class `cls` (one thread-local increment).
    #[inline(always)]
    pub fn count_free(&self, cls: usize) {
        debug_assert!(cls < NCLASSES);
        // SAFETY: cls < NCLASSES (page classes are).
        bump(unsafe { self.frees.get_unchecked(cls) });
    }

    /// Brings the live deltas up to date with class `cls`'s counters, and
    /// flushes them to the global counters (where the peak is taken) once
    /// they pass `stats::FLUSH_BYTES`. Called from slow paths only.
    pub fn sync_class(&self, cls: usize) {
        debug_assert!(cls < NCLASSES);
        let q = &self.q[cls];
        let live = q
            .allocs
            .load(Ordering::Relaxed)
            .wrapping_sub(self.frees[cls].load(Ordering::Relaxed)) as isize;
        let d = live.wrapping_sub(self.synced[cls].get());
        if d == 0 {
            return;
        }
        self.synced[cls].set(live);
        let bytes = self.live_bytes.get() + d * class_size(cls) as isize;
        self.live_bytes.set(bytes);
        self.live_count.set(self.live_count.get() + d);
        if bytes.unsigned_abs() > stats::FLUSH_BYTES as usize {
            self.flush();
        }
    }

    /// [`Heap::sync_class`] for every class, then [`Heap::flush`].
    pub fn sync_all(&self) {
        for cls in 1..NCLASSES {
            self.sync_class(cls);
        }
        self.flush();
    }

    /// Moves the unflushed live deltas to the global counters.
    #[inline(never)]
    pub fn flush(&self) {
        stats::flush_live(self.live_bytes.get(), self.live_count.get());
        self.live_bytes.set(0);
        self.live_count.set(0);
    }

    /// Pops a block of class `cls` from the first page of its queue.
    #[inline]
    pub fn pop(&self, cls: usize) -> *mut u8 {
        debug_assert!(cls < NCLASSES);
        // SAFETY: cls < NCLASSES.
        let page = unsafe { self.q.get_unchecked(cls) }.first.get();
        if page.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: pages in our queues are in-use pages we own.
        let p = unsafe { &*page };
        let b = p.pop();
        if !b.is_null() {
            self.count_alloc(cls);
        }
        b
    }

    // ---- queues ----
    //
    // The only page of a class queue is marked (`Page::set_sole`): it is
    // kept when it empties, so its owner's frees need not tell (see
    // `Page::busy`). The queue operations keep the mark.

    fn queue_push_front(&self, cls: usize, page: &Page) {
        let p = page as *const Page as *mut Page;
        let first = self.q[cls].first.get();
        page.prev.set(ptr::null_mut());
        page.next.set(first);
        if first.is_null() {
            self.q[cls].last.set(p);
            page.set_sole(true);
        } else {
            // SAFETY: queue members are our pages.
            unsafe {
                (*first).prev.set(p);
                (*first).set_sole(false);
            }
            page.set_sole(false);
        }
        self.q[cls].first.set(p);
    }

    fn queue_push_back(&self, cls: usize, page: &Page) {
        let p = page as *const Page as *mut Page;
        let last = self.q[cls].last.get();
        page.next.set(ptr::null_mut());
        page.prev.set(last);
        if last.is_null() {
            self.q[cls].first.set(p);
            page.set_sole(true);
        } else {
            // SAFETY: queue members are our pages.
            unsafe {
                (*last).next.set(p);
                (*last).set_sole(false);
            }
            page.set_sole(false);
        }
        self.q[cls].last.set(p);
    }

    /// Moves queue page `page` (not the first) to the front of its queue:
    /// the queue keeps its pages, so no mark changes.
    fn queue_move_front(&self, cls: usize, page: &Page) {
        let p = page as *const Page as *mut Page;
        let (prev, next) = (page.prev.get(), page.next.get());
        debug_assert!(!prev.is_null() && !page.sole());
        // SAFETY: queue members are our pages; `prev` is one (page is not
        // the first).
        unsafe { (*prev).next.set(next) };
        if next.is_null() {
            self.q[cls].last.set(prev);
        } else {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        let first = self.q[cls].first.get();
        page.prev.set(ptr::null_mut());
        page.next.set(first);
        // SAFETY: the queue is not empty (it holds `prev`).
        unsafe { (*first).prev.set(p) };
        self.q[cls].first.set(p);
    }

    fn queue_remove(&self, cls: usize, page: &Page) {
        let (prev, next) = (page.prev.get(), page.next.get());
        if prev.is_null() {
            self.q[cls].first.set(next);
        } else {
            // SAFETY: queue members are our pages.
            unsafe { (*prev).next.set(next) };
        }
        if next.is_null() {
            self.q[cls].last.set(prev);
        } else {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        page.next.set(ptr::null_mut());
        page.prev.set(ptr::null_mut());
        page.set_sole(false);
        let (first, last) = (self.q[cls].first.get(), self.q[cls].last.get());
        if !first.is_null() && first == last {
            // SAFETY: the queue's remaining page, ours.
            unsafe { (*first).set_sole(true) };
        }
    }

    fn full_push(&self, page: &Page) {
        list_push(&self.full, page);
    }

    fn full_remove(&self, page: &Page) {
        list_remove(&self.full, page);
    }

    /// Moves a page from its class queue to the full list.
    fn make_full(&self, page: &Page) {
        self.queue_remove(page.class.get() as usize, page);
        page.set_flags(FULL, Ordering::SeqCst);
        self.full_push(page);
        if page.has_thread_free(Ordering::SeqCst) {
            self.delayed.store(true, Ordering::Relaxed);
        }
    }

    /// Moves a page from the full list back to the end of its queue (the
    /// pages in front have more free blocks).
    fn unfull(&self, page: &Page) {
        self.full_remove(page);
        page.set_flags(0, Ordering::Relaxed);
        self.queue_push_back(page.class.get() as usize, page);
    }

    fn seg_push(&self, seg: &Segment) {
        let kind = seg.kind.get() as usize;
        let s = seg as *const Segment as *mut Segment;
        let first = self.segs[kind].get();
        seg.prev.set(ptr::null_mut());
        seg.next.set(first);
        if !first.is_null() {
            // SAFETY: listed segments are ours.
            unsafe { (*first).prev.set(s) };
        }
        self.segs[kind].set(s);
    }

    fn seg_remove(&self, seg: &Segment) {
        let kind = seg.kind.get() as usize;
        let (prev, next) = (seg.prev.get(), seg.next.get());
        if prev.is_null() {
            self.segs[kind].set(next);
        } else {
            // SAFETY: listed segments are ours.
            unsafe { (*prev).next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
    }
}

/// Pushes `page` on the front of the list headed by `head` (the full list
/// or the sample list: doubly linked through the page links, no tail).
fn list_push(head: &Cell<*mut Page>, page: &Page) {
    let p = page as *const Page as *mut Page;
    let first = head.get();
    page.prev.set(ptr::null_mut());
    page.next.set(first);
    if !first.is_null() {
        // SAFETY: list members are our pages.
        unsafe { (*first).prev.set(p) };
    }
    head.set(p);
}

/// Unlinks `page` from the list headed by `head` (see [`list_push`]).
fn list_remove(head: &Cell<*mut Page>, page: &Page) {
    let (prev, next) = (page.prev.get(), page.next.get());
    if prev.is_null() {
        head.set(next);
    } else {
        // SAFETY: list members are our pages.
        unsafe { (*prev).next.set(next) };
    }
    if !next.is_null() {
        // SAFETY: as above.
        unsafe { (*next).prev.set(prev) };
    }
    page.next.set(ptr::null_mut());
    page.prev.set(ptr::null_mut());
}

#[cfg(test)]
std::thread_local! {
    /// The calling thread's slow-path searches and the queue pages they
    /// visited (tests only).
    pub(crate) static SEARCHES: core::cell::Cell<(u64, u64)> =
        const { core::cell::Cell::new((0, 0)) };
    /// The calling thread's owner frees that left the fast path (tests
    /// only).
    pub(crate) static LOCAL_SLOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// The slow path of allocation: finds or makes a page of class `cls` with a
/// free block and pops it; null when out of memory.
pub fn alloc_slow(heap: &Heap, cls: usize) -> *mut u8 {
    if heap.delayed.load(Ordering::Relaxed) {
        heap.delayed.store(false, Ordering::Relaxed);
        scan_full(heap);
    }
    // Blocks already freed come first: carving touches fresh memory. A
    // page with no block free and none left to carve goes to the full
    // list, so that later searches do not walk past it again; the next
    // free of one of its blocks puts it back at the end of the queue
    // (`unfull`), where it gathers more frees before a search reaches it.
    // (Left in the queue, such pages were walked past again and again by a
    // program freeing at random over a large heap: mimalloc-bench's
    // alloc-test searched at 29% of its allocations, 192 instructions a
    // search; now at 3%.)
    let b = search(heap, cls);
    if !b.is_null() {
        return b;
    }
    // Before a fresh page: the segments of exited threads, whose pages of
    // this class may have blocks free. Adopted, those pages join our
    // queues; a fresh page would leave them waiting. (A program whose
    // short-lived threads each keep a block alive -- mimalloc-bench's
    // mleak -- otherwise opened a page per thread: one block in each, and
    // a purge of each once its block was freed.)
    if find_segment(heap, kind_of(cls)).is_null() && adopt_some(heap) {
        let b = search(heap, cls);
        if !b.is_null() {
            return b;
        }
    }
    let page = page_alloc(heap, cls);
    if page.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: a fresh page of ours.
    let p = unsafe { &*page };
    heap.queue_push_front(cls, p);
    p.extend();
    let b = p.pop();
    heap.count_alloc(cls);
    heap.sync_class(cls);
    b
}

/// Looks through class `cls`'s queue for a page with a free block (see
/// [`alloc_slow`]) and pops it; null when no page of the queue has one.
fn search(heap: &Heap, cls: usize) -> *mut u8 {
    #[cfg(test)]
    SEARCHES.with(|c| c.set((c.get().0 + 1, c.get().1)));
    let mut page = heap.q[cls].first.get();
    while !page.is_null() {
        // SAFETY: queue members are our in-use pages.
        let p = unsafe { &*page };
        let next = p.next.get();
        #[cfg(test)]
        SEARCHES.with(|c| c.set((c.get().0, c.get().1 + 1)));
        p.collect();
        if !p.free.get().is_null() {
            return take_from(heap, cls, p);
        }
        if p.capacity.get() >= p.reserved.get() {
            heap.make_full(p);
        }
        page = next;
    }
    let mut page = heap.q[cls].first.get();
    while !page.is_null() {
        // SAFETY: as above.
        let p = unsafe { &*page };
        let next = p.next.get();
        p.extend();
        if !p.free.get().is_null() {
            return take_from(heap, cls, p);
        }
        heap.make_full(p);
        page = next;
    }
    ptr::null_mut()
}

/// Moves queue page `p` (with a block on `free`) to the front of its queue
/// and pops a block from it.
fn take_from(heap: &Heap, cls: usize, p: &Page) -> *mut u8 {
    if !p.prev.get().is_null() {
        heap.queue_move_front(cls, p);
    }
    let b = p.pop();
    heap.count_alloc(cls);
    heap.sync_class(cls);
    b
}

/// Frees a block of a page owned by `heap` (the owning thread's path).
///
/// # Safety
/// `b` is a live block of `page`, which `heap` owns.
#[inline]
pub unsafe fn free_local(heap: &Heap, page: &Page, b: *mut Block) {
    debug_assert!(super::classify::is_live(b as *const u8));
    heap.count_free(page.class.get() as usize);
    // SAFETY: caller's promise.
    if unsafe { page.push_local(b) } {
        free_local_slow(heap, page);
    }
}

/// The owner's free found the page needing attention: now empty with other
/// pages of its class queued (the only page of a class does not come here
/// when it empties, see `Page::busy`), or flagged. The first case is kept
/// short.
#[inline(never)]
fn free_local_slow(heap: &Heap, page: &Page) {
    #[cfg(test)]
    LOCAL_SLOW.with(|c| c.set(c.get() + 1));
    if page.flags.load(Ordering::Relaxed) == 0 {
        debug_assert_eq!(page.used(), 0);
        page_retire(heap, page);
        return super::purger::poll();
    }
    free_flagged(heap, page);
}

/// [`free_local_slow`] of a page with flags (empty or not).
#[cold]
#[inline(never)]
fn free_flagged(heap: &Heap, page: &Page) {
    if page.flags.load(Ordering::Relaxed) & FULL != 0 {
        heap.unfull(page);
        heap.sync_class(page.class.get() as usize);
    }
    if page.used() == 0 {
        page_retire(heap, page);
    }
    super::purger::poll();
}

/// Per class `c`, one less than the most frees of other threads' blocks
/// of `c` a thread may hold back from its counters (it may never take a
/// slow path of its own to sync them): a power of two, at most 64, and
/// small enough that the deltas held back stay below 16 KiB per class.
const fn build_sync_masks() -> [u16; NCLASSES] {
    let sizes = super::size_class::build_sizes();
    let mut t = [0u16; NCLASSES];
    let mut c = 1;
    while c < NCLASSES {
        let mut n = 64;
        while n > 1 && n * sizes[c] > 16 << 10 {
            n /= 2;
        }
        t[c] = (n - 1) as u16;
        c += 1;
    }
    t
}

/// Frees a block of a page another heap (or none) owns.
///
/// A thread with a heap does not push each block at once: it links it to
/// the chain of its class's [`Pending`] entry when that holds blocks of the
/// same page, which costs no atomic operation and keeps the page's
/// `thread_free` line where it is. The chain goes to the page with one
/// compare-exchange when it holds its class's [`PEND_LIMIT`] blocks (at
/// most 16 KiB held back per class), when a block of another page of the
/// class comes, and when the thread collects or exits ([`flush_pending`]).
/// A thread that frees a producer's blocks in bulk thus pays one atomic
/// operation per run of blocks of one page, not one per block.
///
/// # Safety
/// `b` is a live block of `page`; `h` is the calling thread's heap.
#[inline(always)]
pub unsafe fn free_remote(h: &Heap, page: &Page, b: *mut Block) {
    debug_assert!(super::classify::is_live(b as *const u8));
    let cls = page.class.get() as usize;
    debug_assert!(cls < NCLASSES);
    // SAFETY: cls < NCLASSES (page classes are).
    let pd = unsafe { h.pend.get_unchecked(cls) };
    if ptr::eq(pd.page.get(), page) {
        let room = pd.room.get() - 1;
        pd.room.set(room);
        if room >= 0 {
            // SAFETY: caller's promise: b is a dead block of page, now ours.
            unsafe {
                (*b).next = pd.head.get();
                (*b).tag = super::page::free_tag(b as usize);
            }
            pd.head.set(b);
            pd.count.set(pd.count.get() + 1);
            return;
        }
    }
    // SAFETY: caller's promise.
    unsafe { free_remote_slow(h, page, b) }
}

/// Frees a block of a page another heap (or none) owns, by a thread that
/// has no heap and cannot get one (no memory): pushed at once, counted in
/// the process-wide orphan counters.
///
/// # Safety
/// `b` is a live block of `page`.
#[cold]
#[inline(never)]
pub unsafe fn free_orphan(page: &Page, b: *mut Block) {
    debug_assert!(super::classify::is_live(b as *const u8));
    stats::orphan_free(page.class.get() as usize);
    // SAFETY: caller's promise.
    if unsafe { page.push_thread(b) } {
        wake_owner(page);
    }
}

/// [`free_remote`] when `b` does not join its class's chain: the chain
/// holds another page's blocks, or is full. It is pushed now, and `b`
/// starts a new one.
///
/// # Safety
/// As for [`free_remote`].
#[inline(never)]
unsafe fn free_remote_slow(h: &Heap, page: &Page, b: *mut Block) {
    let cls = page.class.get() as usize;
    debug_assert!(cls > 0 && cls < NCLASSES);
    // SAFETY: the classes of pages in use are below NCLASSES.
    let (pd, limit) = unsafe { (h.pend.get_unchecked(cls), *PEND_LIMIT.get_unchecked(cls)) };
    // SAFETY: caller's promise: b is a dead block of page, now ours.
    unsafe { (*b).tag = super::page::free_tag(b as usize) };
    push_pending(h, pd);
    pd.page.set(page);
    pd.head.set(b);
    pd.tail.set(b);
    pd.count.set(1);
    pd.room.set(i32::from(limit) - 1);
}

/// The most blocks a [`Pending`] chain holds. Longer chains save few
/// atomic operations more, and hold the owner's blocks back longer: with
/// 64, four threads passing blocks round a ring peaked 13% higher (the
/// owners carved new pages while their blocks waited), with 16 as low as
/// pushing every block at once.
pub(super) const PEND_MAX: u32 = 16;

/// Per class, the most blocks a [`Pending`] chain of it holds:
/// [`PEND_MAX`], or fewer for large classes, so that the frees a chain
/// holds back from the class's counters (a push counts them and syncs the
/// class) stay below 16 KiB (see `build_sync_masks`).
pub(super) static PEND_LIMIT: [u8; NCLASSES] = build_pend_limits();

const fn build_pend_limits() -> [u8; NCLASSES] {
    let masks = build_sync_masks();
    let mut t = [0u8; NCLASSES];
    let mut c = 1;
    while c < NCLASSES {
        let every = masks[c] as u32 + 1;
        t[c] = if every < PEND_MAX { every } else { PEND_MAX } as u8;
        c += 1;
    }
    t
}

/// Pushes the chain of `pd` (if any) onto its page and empties `pd`; its
/// blocks join the class's `frees`, and the class's live deltas are
/// synced.
fn push_pending(h: &Heap, pd: &Pending) {
    let page = pd.page.get();
    if page.is_null() {
        return;
    }
    pd.page.set(ptr::null());
    // SAFETY: a pending page stays in use (and keeps its class, below
    // NCLASSES) while its chain's blocks count as used; the chain links
    // head to tail, every block tagged free.
    unsafe {
        let p = &*page;
        let cls = p.class.get() as usize;
        debug_assert!(cls > 0 && cls < NCLASSES);
        add_to(h.frees.get_unchecked(cls), u64::from(pd.count.get()));
        if p.push_thread_chain(pd.head.get(), pd.tail.get(), pd.count.get()) {
            wake_owner(p);
        }
        h.sync_class(cls);
    }
}

/// Pushes every pending chain of `heap` onto its page (see
/// [`free_remote`]): when the thread collects, and before it exits.
pub fn flush_pending(heap: &Heap) {
    for pd in heap.pend.iter() {
        push_pending(heap, pd);
    }
}

/// Tells the owner of `page`, which is on its full list, to rescan that
/// list (a block came back to it).
#[inline(never)]
fn wake_owner(page: &Page) {
    let owner = page.heap.load(Ordering::Acquire);
    if !owner.is_null() && owner != super::page::NO_OWNER {
        // SAFETY: heaps are never unmapped; a stale owner only gets a
        // spurious rescan.
        unsafe { (*owner).delayed.store(true, Ordering::Release) };
    }
}

/// Rescans the full list for pages that got blocks back.
fn scan_full(heap: &Heap) {
    let mut page = heap.full.get();
    while !page.is_null() {
        // SAFETY: full-list members are our pages.
        let p = unsafe { &*page };
        let next = p.next.get();
        if p.has_thread_free(Ordering::Relaxed) || !p.local_free.get().is_null() {
            p.collect();
            if p.has_free() {
                heap.unfull(p);
                if p.used() == 0 {
                    page_retire(heap, p);
                }
            }
        }
        page = next;
    }
}

/// A page that just became empty: keep it if it is the only one of its
/// class, else give it back to its segment. (An only page without flags
/// that empties does not come here: its owner's free stays on the fast
/// path, see `Page::busy`. It comes from the slow paths: a flagged page,
/// or one whose blocks came back from other threads.)
#[inline]
fn page_retire(heap: &Heap, page: &Page) {
    let cls = page.class.get() as usize;
    debug_assert!(cls > 0 && cls < NCLASSES);
    // SAFETY: the classes of pages in use are below NCLASSES.
    let q = unsafe { heap.q.get_unchecked(cls) };
    if q.first.get() == q.last.get() {
        // Kept; the purge pass stamps the time it first sees it empty.
        page.retire_time.set(0);
        return;
    }
    page_retire_shared(heap, page, cls);
}

/// [`page_retire`] of a page with others in its class queue.
#[inline(never)]
fn page_retire_shared(heap: &Heap, page: &Page, cls: usize) {
    heap.sync_class(cls);
    heap.queue_remove(cls, page);
    page_free(heap, page);
}

/// Returns a page (not in any list) to its segment.
fn page_free(heap: &Heap, page: &Page) {
    let seg = page.segment();
    let i = page.index();
    let bit = 1u64 << i;
    if seg.touched[i].get() > 0 {
        seg.dirty_mask.set(seg.dirty_mask.get() | bit);
    }
    page.reset();
    page.retire_time.set(sys::now_ms() as u32);
    seg.free_mask.set(seg.free_mask.get() | bit);
    seg.used_pages.set(seg.used_pages.get() - 1);
    if seg.used_pages.get() == 0 {
        // An empty segment goes to the shared reserve at once, resident:
        // any thread may reuse it before the purge delay runs out.
        heap.seg_remove(seg);
        segment::segment_release(seg as *const Segment as *mut Segment);
    }
    maybe_purge(heap);
}

/// Takes a free page for class `cls` from one of our segments, an abandoned
/// one, the cache or a fresh mapping.
fn page_alloc(heap: &Heap, cls: usize) -> *mut Page {
    let kind = kind_of(cls);
    maybe_purge(heap);
    let mut seg = find_segment(heap, kind);
    if seg.is_null() && adopt_some(heap) {
        seg = find_segment(heap, kind);
    }
    if seg.is_null() {
        seg = segment::segment_acquire(kind as u8, heap as *const Heap as *mut u8);
        if seg.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a fresh segment of ours.
        heap.seg_push(unsafe { &*seg });
    }
    // SAFETY: a segment of ours with a free page.
    let s = unsafe { &*seg };
    let free = s.free_mask.get();
    let dirty = free & s.dirty_mask.get();
    let i = if dirty != 0 {
        page_of_class(s, dirty, cls)
    } else {
        free.trailing_zeros() as usize
    };
    let bit = 1u64 << i;
    s.free_mask.set(free & !bit);
    s.dirty_mask.set(s.dirty_mask.get() & !bit);
    s.used_pages.set(s.used_pages.get() + 1);
    let (start, end) = s.page_area(i);
    // SAFETY: i < page_count.
    let page = unsafe { s.page(i) };
    page.init(
        i,
        cls,
        class_size(cls),
        start,
        end,
        heap as *const Heap as *mut Heap,
    );
    page as *const Page as *mut Page
}

/// Adopts up to 8 segments of exited threads ([`adopt`]); whether it
/// adopted any.
fn adopt_some(heap: &Heap) -> bool {
    let mut tries = 0;
    while tries < 8 && !ABANDONED.is_empty() {
        let s = ABANDONED.pop();
        if s.is_null() {
            break;
        }
        adopt(heap, s);
        tries += 1;
    }
    tries != 0
}

/// Of the free pages in `mask` (not 0), one that last held class `cls`,
/// else the lowest. A page carves its blocks a little at a time, so its
/// committed extent is what its last class needed: given back to that
/// class, it likely covers the new need. Given to any class (the lowest
/// page first), a program whose threads come and go would, over time,
/// commit every page as far as the greediest class ever went.
pub(super) fn page_of_class(s: &Segment, mask: u64, cls: usize) -> usize {
    debug_assert!(mask != 0);
    let mut m = mask;
    while m != 0 {
        let i = m.trailing_zeros() as usize;
        m &= m - 1;
        // SAFETY: i < page_count (a free-mask bit).
        if unsafe { s.page(i) }.last_class.get() as usize == cls {
            return i;
        }
    }
    mask.trailing_zeros() as usize
}

/// A segment of `kind` with a free page (preferring committed ones).
fn find_segment(heap: &Heap, kind: usize) -> *mut Segment {
    let mut any: *mut Segment = ptr::null_mut();
    let mut seg = heap.segs[kind].get();
    while !seg.is_null() {
        // SAFETY: listed segments are ours.
        let s = unsafe { &*seg };
        let free = s.free_mask.get();
        if free & s.dirty_mask.get() != 0 {
            return seg;
        }
        if free != 0 && any.is_null() {
            any = seg;
        }
        seg = s.next.get();
    }
    any
}

/// Takes over an abandoned segment: its pages join our queues, empty ones
/// are freed.
pub fn adopt(heap: &Heap, seg: *mut Segment) {
    // SAFETY: popped from the abandoned stack, so now ours alone.
    let s = unsafe { &*seg };
    s.heap.set(heap as *const Heap as *mut u8);
    heap.seg_push(s);
    let hp = heap as *const Heap as *mut Heap;
    for i in 0..s.page_count.get() as usize {
        // SAFETY: i < page_count.
        let p = unsafe { s.page(i) };
        if !p.in_use() {
            continue;
        }
        p.heap.store(hp, Ordering::Release);
        p.collect();
        if p.used() == 0 {
            page_free_quiet(p, sys::now_ms() as u32);
        } else if p.has_free() {
            heap.queue_push_back(p.class.get() as usize, p);
        } else {
            p.set_flags(FULL, Ordering::SeqCst);
            heap.full_push(p);
            if p.has_thread_free(Ordering::SeqCst) {
                heap.delayed.store(true, Ordering::Relaxed);
            }
        }
    }
    if s.used_pages.get() == 0 {
        heap.seg_remove(s);
        segment::segment_release(seg);
    }
}

fn maybe_purge(heap: &Heap) {
    let now = sys::now_ms();
    if now >= heap.next_purge.get() {
        heap.next_purge.set(now + purge_delay());
        purge(heap, now, false);
    }
}

/// The heap's part of the decay, then the shared part: frees empty kept
/// pages and decommits free pages whose delay expired (all of them when
/// `force`), gives empty segments to the reserve, and purges the reserve
/// (when a pass is due, or at once when `force`).
pub fn purge(heap: &Heap, now: u64, force: bool) {
    let delay = purge_delay();
    free_kept_pages(heap, now, force);
    let now32 = now as u32;
    let expired = |t: u32| force || now32.wrapping_sub(t) as u64 >= delay;
    for kind in 0..3 {
        let mut seg = heap.segs[kind].get();
        while !seg.is_null() {
            // SAFETY: listed segments are ours.
            let s = unsafe { &*seg };
            let next = s.next.get();
            let mut m = s.free_mask.get() & s.dirty_mask.get();
            let mut sel = 0u64;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: i < page_count.
                if expired(unsafe { s.page(i) }.retire_time.get()) {
                    sel |= 1 << i;
                }
            }
            segment::decommit_pages(s, sel);
            seg = next;
        }
    }
    release_empty_segments(heap);
    if force {
        segment::purge_shared(now, delay, true);
    } else {
        segment::maybe_purge_shared(now, delay);
    }
}

/// Frees the empty pages kept as the only page of their class once they
/// stayed idle for the purge delay (all of them when `force`). Idle: empty
/// at each pass and no allocation of the class between (its allocation
/// count unchanged). A page used by alloc/free pairs is empty between them
/// and its frees never leave the fast path to say so, so emptiness seen at
/// two passes alone would not show that it was unused in between.
fn free_kept_pages(heap: &Heap, now: u64, force: bool) {
    let now32 = now as u32;
    let delay = purge_delay();
    for cls in 1..NCLASSES {
        let page = heap.q[cls].first.get();
        if page.is_null() {
            continue;
        }
        // SAFETY: queue members are our pages.
        let p = unsafe { &*page };
        if p.next.get().is_null() && p.used() == 0 {
            let allocs = heap.q[cls].allocs.load(Ordering::Relaxed) as u32;
            if force {
                heap.queue_remove(cls, p);
                // Forced (collect, thread exit): its delay starts now.
                page_free_quiet(p, now32);
            } else if p.retire_time.get() == 0 || p.idle_allocs.get() != allocs {
                // First seen idle (or used since): its delay starts now.
                p.retire_time.set(now32);
                p.idle_allocs.set(allocs);
            } else if now32.wrapping_sub(p.retire_time.get()) as u64 >= delay {
                heap.queue_remove(cls, p);
                // Its delay is already over.
                page_free_quiet(p, p.retire_time.get());
            }
        }
    }
}

/// Gives the heap's segments that have no page in use to the reserve.
fn release_empty_segments(heap: &Heap) {
    for kind in 0..3 {
        let mut seg = heap.segs[kind].get();
        while !seg.is_null() {
            // SAFETY: listed segments are ours.
            let s = unsafe { &*seg };
            let next = s.next.get();
            if s.used_pages.get() == 0 {
                heap.seg_remove(s);
                segment::segment_release(seg);
            }
            seg = next;
        }
    }
}

/// `page_free` without triggering a purge (used inside the purge pass and
/// when pages change hands); `t`: when the page counts as freed (ms,
/// wrapping), from which its purge delay runs.
fn page_free_quiet(page: &Page, t: u32) {
    let seg = page.segment();
    let i = page.index();
    let bit = 1u64 << i;
    if seg.touched[i].get() > 0 {
        seg.dirty_mask.set(seg.dirty_mask.get() | bit);
    }
    page.reset();
    page.retire_time.set(t);
    seg.free_mask.set(seg.free_mask.get() | bit);
    seg.used_pages.set(seg.used_pages.get() - 1);
}

/// The background purger's pass over the segments of exited threads, which
/// no heap owns until one adopts them: while the whole abandoned stack is
/// taken off, the caller is their only owner, so it collects their pages
/// (taking blocks other threads freed), gives segments left empty to the
/// reserve, decommits free pages idle for `delay` ms (all when `force`) and
/// puts the rest back. Returns whether free pages still wait for the delay.
pub fn purge_abandoned(now: u64, delay: u64, force: bool) -> bool {
    let mut taken: *mut Segment = ptr::null_mut();
    loop {
        let s = ABANDONED.pop();
        if s.is_null() {
            break;
        }
        // SAFETY: popped, so ours alone; the list link is free while the
        // segment is off every list.
        unsafe { (*s).next.set(taken) };
        taken = s;
    }
    let now32 = now as u32;
    let mut left = false;
    while !taken.is_null() {
        // SAFETY: a segment we took off the abandoned stack.
        let s = unsafe { &*taken };
        let next = s.next.get();
        s.next.set(ptr::null_mut());
        for i in 0..s.page_count.get() as usize {
            // SAFETY: i < page_count.
            let p = unsafe { s.page(i) };
            if p.in_use() {
                p.collect();
                if p.used() == 0 {
                    page_free_quiet(p, now32);
                }
            }
        }
        if s.used_pages.get() == 0 {
            segment::segment_release(taken);
        } else {
            let mut m = s.free_mask.get() & s.dirty_mask.get();
            let mut sel = 0u64;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                // SAFETY: i < page_count.
                let t = unsafe { s.page(i) }.retire_time.get();
                if force || now32.wrapping_sub(t) as u64 >= delay {
                    sel |= 1 << i;
                } else {
                    left = true;
                }
            }
            segment::decommit_pages(s, sel);
            ABANDONED.push(taken);
        }
        taken = next;
    }
    left
}

/// Collects everything: blocks freed by other threads, empty pages,
/// abandoned segments; then decommits all free pages.
pub fn collect(heap: &Heap) {
    flush_pending(heap);
    scan_full(heap);
    for cls in 1..NCLASSES {
        let mut page = heap.q[cls].first.get();
        while !page.is_null() {
            // SAFETY: queue members are our pages.
            let p = unsafe { &*page };
            let next = p.next.get();
            p.collect();
            if p.used() == 0 {
                heap.queue_remove(cls, p);
                page_free_quiet(p, sys::now_ms() as u32);
            }
            page = next;
        }
    }
    loop {
        let s = ABANDONED.pop();
        if s.is_null() {
            break;
        }
        adopt(heap, s);
    }
    purge(heap, sys::now_ms(), true);
}

/// Gives up a heap whose thread is exiting: frees empty pages, releases
/// empty segments and abandons the rest. The heap is empty afterwards.
pub fn abandon(heap: &Heap) {
    flush_pending(heap);
    scan_full(heap);
    for cls in 1..NCLASSES {
        let mut page = heap.q[cls].first.get();
        while !page.is_null() {
            // SAFETY: queue members are our pages.
            let p = unsafe { &*page };
            let next = p.next.get();
            p.collect();
            if p.used() == 0 {
                heap.queue_remove(cls, p);
                page_free_quiet(p, sys::now_ms() as u32);
            }
            page = next;
        }
    }
    // Nothing is decommitted here: empty segments go to the reserve still
    // resident, so the next thread reuses them without a system call.
    free_kept_pages(heap, sys::now_ms(), true);
    release_empty_segments(heap);
    for kind in 0..3 {
        let mut seg = heap.segs[kind].get();
        while !seg.is_null() {
            // SAFETY: listed segments are ours.
            let s = unsafe { &*seg };
            let next = s.next.get();
            for i in 0..s.page_count.get() as usize {
                // SAFETY: i < page_count.
                let p = unsafe { s.page(i) };
                if p.in_use() {
                    p.set_flags(0, Ordering::Relaxed);
                    p.set_sole(false);
                    p.next.set(ptr::null_mut());
                    p.prev.set(ptr::null_mut());
                    p.heap.store(super::page::NO_OWNER, Ordering::Release);
                }
            }
            s.heap.set(ptr::null_mut());
            let mut idle = s.free_mask.get() & s.dirty_mask.get();
            let mut bytes = 0usize;
            while idle != 0 {
                let i = idle.trailing_zeros() as usize;
                idle &= idle - 1;
                bytes += s.touched[i].get() as usize;
            }
            ABANDONED.push(seg);
            if bytes > 0 {
                // Its free pages wait for the purger (no heap owns them).
                super::purger::notify(bytes);
            }
            seg = next;
        }
        heap.segs[kind].set(ptr::null_mut());
    }
    for cls in 0..NCLASSES {
        heap.q[cls].first.set(ptr::null_mut());
        heap.q[cls].last.set(ptr::null_mut());
    }
    heap.full.set(ptr::null_mut());
    heap.delayed.store(false, Ordering::Relaxed);
    heap.sync_all();
}
