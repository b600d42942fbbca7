//! Pages: runs of blocks of one size class, and their three free lists.
//!
//! A page descriptor lives in its segment's header (see `segment.rs`). Its
//! blocks are carved lazily: `capacity` blocks have been carved so far out of
//! `reserved`, a bit at a time, so untouched parts of a page cost no memory.
//! Free blocks sit on one of three singly-linked lists threaded through the
//! blocks themselves:
//!
//! - `free`: what the owning thread allocates from and frees to, last in
//!   first out (pop = two loads and two stores): the block handed out next
//!   is the one freed last, still in cache;
//! - `local_free`: blocks collected from `thread_free` while `free` still
//!   had some, waiting for `free` to run dry;
//! - `thread_free`: an atomic stack other threads push to. Its head is one
//!   word holding the top block's offset in the segment (low 32 bits, 0 =
//!   empty) and the number of blocks on the stack (high 32 bits), so a push
//!   is one compare-and-swap and the owner learns how many blocks it took
//!   without walking them (a walk would chase pointers through lines other
//!   cores just wrote, one cache miss after another).
//!
//! When `free` runs dry the owner [`Page::collect`]s: it takes the whole
//! `thread_free` stack with one atomic swap and turns it and `local_free`
//! into the new `free` list. Blocks other threads freed thus wait until the
//! owner's own supply runs out (they stay counted in the page, which stays
//! in use); the owner's own frees are reused at once. `used` counts blocks
//! handed out and not yet back on an owner list (blocks on `thread_free`
//! still count as used).
//!
//! Every free block carries a tag in its second word, cleared when the
//! block is handed out: `free_tag(addr)` once it was freed, `fresh_tag(addr)`
//! while it was carved but never handed out. `check` uses them to recognise
//! a double free in O(1), and to tell it from a free of an address where no
//! block was ever handed out. Blocks are at least 16 bytes, so both words
//! exist.

use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};

use super::heap::Heap;
use super::segment::{PAGES_OFFSET, SEGMENT_MASK, Segment};
use super::size_class::NCLASSES;

/// A free block: the link and the free tag.
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
    pub tag: usize,
}

/// The tag a free block at `addr` carries in its second word: the address
/// plus a constant that makes it a non-canonical value, which no live
/// pointer and hardly any other data takes (one addition to make, one XOR
/// to test). Even, as the constant and every block address (a multiple of
/// 8) are: its lowest bit is free for [`fresh_tag`]. An addition, not a
/// XOR, so that the tags of blocks one block size apart are one block size
/// apart too, like their addresses: [`Page::extend`] writes a link and a
/// tag per block with one vector addition.
#[inline(always)]
pub(crate) const fn free_tag(addr: usize) -> usize {
    addr.wrapping_add(TAG_KEY)
}

/// What [`free_tag`] adds (even; any address below 2^47 plus it has the
/// top bits of no canonical address).
const TAG_KEY: usize = 0x5a17_c0de_f4ee_b10c;
const _: () = assert!(TAG_KEY.is_multiple_of(2));

/// The tag a block carved but never handed out carries: the free tag with
/// its lowest bit flipped, so that [`is_free`] recognises both kinds of
/// free block with one test.
#[inline(always)]
pub(crate) const fn fresh_tag(addr: usize) -> usize {
    free_tag(addr) ^ 1
}

/// Whether `tag`, the second word of the block at `addr`, marks the block
/// free: freed ([`free_tag`]) or never handed out ([`fresh_tag`]).
#[inline(always)]
pub(crate) const fn is_free(addr: usize, tag: usize) -> bool {
    (tag ^ free_tag(addr)) <= 1
}

/// The owner (`Page::heap`) of a page in use that its thread abandoned
/// when it exited (until another thread adopts its segment): never the
/// address of a heap, and not null, so that a page in use never has a null
/// owner and `page.heap == current heap` needs no test that the calling
/// thread has a heap.
pub(crate) const NO_OWNER: *mut Heap = ptr::without_provenance_mut(64);

/// Page flag: the page is on its heap's full list.
pub(crate) const FULL: u8 = 1;

/// Subtracted from `Page::busy` while the page has flags: a multiple of
/// 2^16 (the count reads back from the low bits) that makes the field
/// negative whatever the count.
const FLAGGED: i32 = 1 << 30;

/// `Page::hide_from` of a page that hides none of its blocks.
const NOT_HIDING: u32 = u32::MAX;

/// Bytes carved at most per extension (at least one block).
const EXTEND_BYTES: usize = 4 << 10;

/// Blocks carved per extension, per class: [`EXTEND_BYTES`] over the block
/// size, at least one (a table: no division when carving; 0 for class 0).
/// (Carving at least four blocks of the classes from 1 to 4 KiB, as
/// mimalloc does, took a tenth fewer instructions from waves of
/// short-lived threads, and a fifth more peak memory at four threads.)
static EXTEND_BLOCKS: [u16; NCLASSES] = {
    let sizes = super::size_class::build_sizes();
    let mut t = [0u16; NCLASSES];
    let mut c = 1;
    while c < NCLASSES {
        let n = EXTEND_BYTES / sizes[c];
        t[c] = if n == 0 { 1 } else { n as u16 };
        c += 1;
    }
    t
};

/// A page descriptor: three cache lines inside the segment header, one per
/// kind of access, so that threads touching the same page do not take
/// lines from each other:
///
/// - line 0, what every `free` reads (owner, class, bounds) and only slow
///   paths write: it stays shared between the cores that use the page;
/// - line 1, the owner's free lists and count, written by every owner
///   allocation and free (and by no other thread);
/// - line 2, the `thread_free` stack, written by other threads' frees and
///   swapped by the owner only when it collects.
///
/// A thread freeing another thread's blocks thus never takes the line the
/// owner allocates from, and the owner's allocations never take the line
/// those frees push to (a producer/consumer hand-off runs about 1.3x
/// faster than with one shared line).
#[repr(C, align(64))]
pub struct Page {
    // ---- line 0: read by every free; written on slow paths ----
    /// Owning heap: [`NO_OWNER`] when abandoned, null when the page is not
    /// in use.
    pub heap: AtomicPtr<Heap>,
    /// The class's divisibility constant (`classify::divisor_test`; 0,
    /// which accepts no offset, while the page is not in use): the free
    /// check's block-start test reads it beside the page's bounds.
    pub(crate) div_test: Cell<u64>,
    pub capacity: Cell<u16>,
    pub reserved: Cell<u16>,
    pub class: Cell<u8>,
    /// FULL, read by other threads.
    pub flags: AtomicU8,
    _pad_flags: [u8; 2],
    /// Bytes of carved blocks (`capacity * block_size`); 0 when the page is
    /// not in use. The free check compares a block's offset with it.
    pub(crate) carved_len: Cell<u32>,
    /// Offset of the first block from the segment's start (the free check
    /// measures block offsets from it).
    pub(crate) area_off: Cell<u32>,
    /// When the page was freed or first seen empty (ms, wrapping; 0 = not
    /// yet seen). Not cleared by `reset` (a free page keeps its time).
    pub retire_time: Cell<u32>,
    /// Live blocks of this page the heap profiler sampled (see
    /// [`Page::mark_sampled`]): raised by the owner, lowered by any thread.
    sampled: AtomicU32,
    /// While `sampled` is not 0: the lowest offset (from `area_off`) of a
    /// block sampled since it last was; `carved_len` stops there.
    /// [`NOT_HIDING`] once the owner has seen no sample left. Owner only.
    hide_from: Cell<u32>,
    /// While the page is the only one of its class queue and empty: the
    /// low bits of the class's allocation count when a purge pass last
    /// saw it so (see `heap::free_kept_pages`). Purge passes only.
    pub(crate) idle_allocs: Cell<u32>,
    /// The class the page last held (0: none since its segment was
    /// made). Not cleared by `reset`: a free page keeps it, so that
    /// `page_alloc` can give the class back the page whose committed
    /// extent it shaped.
    pub last_class: Cell<u8>,
    _pad0: [u8; 15],
    // ---- line 1: the owner's lists ----
    pub free: Cell<*mut Block>,
    pub local_free: Cell<*mut Block>,
    /// Links in the heap's class queue or full list (owner only).
    pub next: Cell<*mut Page>,
    pub prev: Cell<*mut Page>,
    /// One less than the blocks handed out and not back on an owner list
    /// (see [`Page::used`]), plus one while the page is the only one of its
    /// class queue (`sole`), less [`FLAGGED`] while `flags` is not 0: the
    /// owner's `free` learns that the page needs attention (now empty with
    /// other pages of its class to keep, or flagged) from the sign of the
    /// decrement. An only page that empties is kept, so its free stays on
    /// the fast path: a block allocated and freed again and again (a
    /// common pattern) empties the only page of its class every time.
    /// Owner only.
    busy: Cell<i32>,
    /// The page is the only one of its class queue (and `busy` counts one
    /// more block for it). Owner only.
    sole: Cell<bool>,
    _pad1: [u8; 27],
    // ---- line 2: other threads' frees ----
    /// Blocks freed by other threads: count << 32 | top block's offset in
    /// the segment (see [`Page::thread_free_head`]).
    thread_free: AtomicU64,
    _pad2: [u8; 56],
}

const _: () = assert!(core::mem::size_of::<Page>() == 192);
const _: () = assert!(core::mem::offset_of!(Page, area_off) < 64);
const _: () = assert!(core::mem::offset_of!(Page, div_test) < 64);
const _: () = assert!(core::mem::offset_of!(Page, free) == 64);
const _: () = assert!(core::mem::offset_of!(Page, busy) < 128);
const _: () = assert!(core::mem::offset_of!(Page, thread_free) == 128);

/// Writes the link to the next block and the fresh tag into every block
/// from `first` (included) to `last` (excluded), `bs` bytes apart. Both
/// words of a block are its address plus a constant (`bs`, and
/// [`fresh_tag`]'s), so one 16-byte vector, advanced by `bs` in both lanes,
/// gives every block's pair: a store and an addition per block.
///
/// # Safety
/// `[first, last)` is mapped, writable and unused; `first` and `bs` are
/// multiples of 8, `bs >= 16`.
#[inline]
unsafe fn carve(first: usize, last: usize, bs: usize) {
    debug_assert!(first.is_multiple_of(8) && bs.is_multiple_of(8) && bs >= 16);
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{__m128i, _mm_add_epi64, _mm_set_epi64x, _mm_storeu_si128};
        // SSE2 is part of x86-64. Lane 0 is the link (first word), lane 1
        // the tag.
        // SAFETY: SSE2 is always there on x86-64; each store writes one
        // block's two words, inside the range (caller's promise).
        unsafe {
            let step = _mm_set_epi64x(bs as i64, bs as i64);
            let mut v = _mm_set_epi64x(fresh_tag(first) as i64, (first + bs) as i64);
            let mut b = first;
            while b < last {
                _mm_storeu_si128(b as *mut __m128i, v);
                v = _mm_add_epi64(v, step);
                b += bs;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut b = first;
        while b < last {
            let next = b + bs;
            // SAFETY: block b lies inside the range (caller's promise).
            unsafe {
                (*(b as *mut Block)).next = next as *mut Block;
                (*(b as *mut Block)).tag = fresh_tag(b);
            }
            b = next;
        }
    }
}

impl Page {
    /// Clears the descriptor of a page that is not in use.
    pub fn reset(&self) {
        self.free.set(ptr::null_mut());
        self.local_free.set(ptr::null_mut());
        self.busy.set(-1);
        self.sole.set(false);
        self.capacity.set(0);
        self.reserved.set(0);
        self.class.set(0);
        self.div_test.set(0);
        self.flags.store(0, Ordering::Relaxed);
        self.carved_len.set(0);
        self.area_off.set(0);
        self.sampled.store(0, Ordering::Relaxed);
        self.hide_from.set(NOT_HIDING);
        self.heap.store(ptr::null_mut(), Ordering::Relaxed);
        self.next.set(ptr::null_mut());
        self.prev.set(ptr::null_mut());
        self.thread_free.store(0, Ordering::Relaxed);
    }

    /// The segment's base address.
    #[inline(always)]
    fn seg_base(&self) -> usize {
        self as *const Self as usize & !SEGMENT_MASK
    }

    /// The top block of a `thread_free` word (null for 0).
    #[inline(always)]
    fn decode(&self, w: u64) -> *mut Block {
        let off = w as u32 as usize;
        if off == 0 {
            ptr::null_mut()
        } else {
            (self.seg_base() + off) as *mut Block
        }
    }

    /// Whether other threads freed blocks that were not collected yet
    /// (`order` as for an atomic load).
    #[inline]
    pub fn has_thread_free(&self, order: Ordering) -> bool {
        self.thread_free.load(order) != 0
    }

    /// The top block of `thread_free` (for the consistency checker).
    pub fn thread_free_head(&self) -> *mut Block {
        self.decode(self.thread_free.load(Ordering::Acquire))
    }

    /// Sets a free page up for `class` blocks of `block_size` in
    /// `[area, end)`, owned by `heap`.
    pub fn init(
        &self,
        index: usize,
        class: usize,
        block_size: usize,
        area: usize,
        end: usize,
        heap: *mut Heap,
    ) {
        self.reset();
        debug_assert_eq!(index, self.index());
        debug_assert_eq!(block_size, super::size_class::class_size(class));
        self.class.set(class as u8);
        self.div_test.set(super::classify::divisor_test(class));
        self.last_class.set(class as u8);
        self.area_off.set((area - self.seg_base()) as u32);
        self.carved_len.set(0);
        debug_assert_eq!(area, self.segment().page_area(index).0);
        self.reserved.set(((end - area) / block_size) as u16);
        self.heap.store(heap, Ordering::Release);
    }

    /// Block size in bytes.
    #[inline(always)]
    pub fn block_size(&self) -> usize {
        super::size_class::class_size(self.class.get() as usize)
    }

    /// Whether the page is in use (holds blocks of a class).
    #[inline]
    pub fn in_use(&self) -> bool {
        self.class.get() != 0
    }

    /// Index of the page in its segment.
    #[inline]
    pub fn index(&self) -> usize {
        let a = self as *const Self as usize;
        ((a & SEGMENT_MASK) - PAGES_OFFSET) / core::mem::size_of::<Page>()
    }

    /// Start of the block area (of a page in use).
    #[inline]
    pub fn area(&self) -> usize {
        self.seg_base() + self.area_off()
    }

    /// Offset of the block area from the segment's start (of a page in use).
    #[inline(always)]
    pub fn area_off(&self) -> usize {
        self.area_off.get() as usize
    }

    /// The segment holding this descriptor.
    #[inline]
    pub fn segment(&self) -> &Segment {
        // SAFETY: descriptors live in their segment's header, so masking
        // gives the (mapped) segment.
        unsafe { &*((self as *const Self as usize & !SEGMENT_MASK) as *const Segment) }
    }

    /// Pops a block from `free`, or null.
    #[inline]
    pub fn pop(&self) -> *mut u8 {
        let b = self.free.get();
        if !b.is_null() {
            // SAFETY: blocks on `free` are carved, unused blocks of this page.
            unsafe {
                self.free.set((*b).next);
                (*b).tag = 0;
            }
            self.busy.set(self.busy.get() + 1);
        }
        b as *mut u8
    }

    /// Blocks handed out and not yet back on an owner list (blocks on
    /// `thread_free` and in other threads' pending chains count). Owner
    /// only.
    #[inline(always)]
    pub fn used(&self) -> u16 {
        self.busy
            .get()
            .wrapping_add(1)
            .wrapping_sub(i32::from(self.sole.get())) as u16
    }

    /// Whether the page is marked as the only one of its class queue.
    #[inline]
    pub fn sole(&self) -> bool {
        self.sole.get()
    }

    /// Marks the page as the only one of its class queue or not, with the
    /// bias of `busy` that goes with it. Owner only (the heap's queue
    /// operations).
    #[inline]
    pub fn set_sole(&self, on: bool) {
        if self.sole.get() != on {
            self.sole.set(on);
            self.busy.set(self.busy.get() + if on { 1 } else { -1 });
        }
    }

    /// Whether `busy` carries the bias its flags call for (for the
    /// consistency checker).
    pub(crate) fn busy_agrees(&self) -> bool {
        (self.flags.load(Ordering::Relaxed) != 0) == (self.busy.get() < -1)
    }

    /// Sets the flags (`FULL`; 0 for none) with `order`, and
    /// the bias of `busy` that goes with them. Owner only.
    #[inline]
    pub fn set_flags(&self, flags: u8, order: Ordering) {
        let was = self.flags.load(Ordering::Relaxed) != 0;
        self.flags.store(flags, order);
        let bias = match (was, flags != 0) {
            (false, true) => -FLAGGED,
            (true, false) => FLAGGED,
            _ => 0,
        };
        self.busy.set(self.busy.get() + bias);
        debug_assert!(flags == 0 || self.busy.get() < -1);
    }

    /// Pushes a block freed by the owner onto `free` (so that it is the next
    /// one handed out); true when the page needs attention (now empty and
    /// not the only page of its class, or flagged).
    ///
    /// # Safety
    /// `b` is a block of this page handed out and not yet freed; the caller
    /// owns the page.
    #[inline]
    pub unsafe fn push_local(&self, b: *mut Block) -> bool {
        // SAFETY: caller's promise: b is a dead block of ours.
        unsafe {
            (*b).next = self.free.get();
            (*b).tag = free_tag(b as usize);
        }
        self.free.set(b);
        // Negative: the count reached 0 on a page that is not the only one
        // of its class, or the page has flags.
        let busy = self.busy.get() - 1;
        self.busy.set(busy);
        debug_assert_eq!(
            busy < 0,
            (self.used() == 0 && !self.sole.get()) || self.flags.load(Ordering::Relaxed) != 0
        );
        busy < 0
    }

    /// Pushes a block freed by another thread onto `thread_free`; returns
    /// whether the page was on its heap's full list.
    ///
    /// # Safety
    /// `b` is a block of this page handed out and not yet freed.
    pub unsafe fn push_thread(&self, b: *mut Block) -> bool {
        // SAFETY: caller's promise: b is a dead block of ours.
        unsafe {
            (*b).tag = free_tag(b as usize);
            self.push_thread_chain(b, b, 1)
        }
    }

    /// Pushes a chain of `n` blocks freed by another thread onto
    /// `thread_free` with one compare-exchange: `head` links through `next`
    /// to `tail`, every block already tagged free. Returns whether the page
    /// was on its heap's full list (as [`Page::push_thread`]).
    ///
    /// # Safety
    /// The chain's blocks are blocks of this page that were handed out,
    /// then freed by the caller's thread and linked by it; nothing else
    /// uses them.
    pub unsafe fn push_thread_chain(&self, head: *mut Block, tail: *mut Block, n: u32) -> bool {
        debug_assert!(n >= 1 && !head.is_null() && !tail.is_null());
        debug_assert!(head as usize & !SEGMENT_MASK == self.seg_base());
        let off = (head as usize - self.seg_base()) as u64;
        let mut old = self.thread_free.load(Ordering::Relaxed);
        loop {
            // SAFETY: caller's promise: tail is a dead block of ours.
            unsafe { (*tail).next = self.decode(old) };
            let new = ((old >> 32) + u64::from(n)) << 32 | off;
            match self.thread_free.compare_exchange_weak(
                old,
                new,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        self.flags.load(Ordering::SeqCst) & FULL != 0
    }

    /// Carves more blocks onto the empty `free` list.
    pub fn extend(&self) {
        debug_assert!(self.free.get().is_null());
        let (cap, res) = (self.capacity.get() as usize, self.reserved.get() as usize);
        if cap >= res {
            return;
        }
        let bs = self.block_size();
        let cls = self.class.get() as usize;
        debug_assert!(cls > 0 && cls < NCLASSES);
        // SAFETY: the class of a page in use is below NCLASSES.
        let n = (unsafe { *EXTEND_BLOCKS.get_unchecked(cls) } as usize).min(res - cap);
        debug_assert_eq!(n, (EXTEND_BYTES / bs).clamp(1, res - cap));
        let first = self.area() + cap * bs;
        let last = first + (n - 1) * bs;
        debug_assert!(cap + n <= res && n >= 1);
        // Each block links to the next by one step of the address (no index
        // arithmetic, no test for the last block inside the loop): a page
        // of 16-byte blocks carves 256 of them per call.
        // SAFETY: the blocks from `first` below `last` lie inside the page's
        // reserved area, which is mapped and unused.
        unsafe { carve(first, last, bs) };
        // SAFETY: as above, for the last block carved.
        unsafe {
            (*(last as *mut Block)).next = ptr::null_mut();
            (*(last as *mut Block)).tag = fresh_tag(last);
        }
        self.free.set(first as *mut Block);
        self.capacity.set((cap + n) as u16);
        self.refresh_carved_len();
        super::segment::note_carved(self.segment(), self.index(), first + n * bs);
    }

    /// The bytes of carved blocks, as the free check reads them: while a
    /// block of the page is sampled, only those below the lowest sampled
    /// block (see [`Page::mark_sampled`]). Owner only.
    pub fn refresh_carved_len(&self) {
        let carved = self.capacity.get() as u32 * self.block_size() as u32;
        let len = if self.sampled.load(Ordering::Acquire) != 0 {
            carved.min(self.hide_from.get())
        } else {
            self.hide_from.set(NOT_HIDING);
            carved
        };
        self.carved_len.set(len);
    }

    /// Notes that the heap profiler sampled one more live block of this
    /// page, the one at offset `off` from the first block. The page then
    /// hides its carved blocks from that offset on from the free check
    /// (`carved_len` stops at the lowest sampled block, see `classify.rs`),
    /// so that every `free` of those blocks leaves the fast path for one
    /// that tells the profiler: blocks below it, and pages without a
    /// sample, pay nothing for profiling. Owner only (the owner alone
    /// writes `carved_len`); the block was just handed out by the owner,
    /// so any thread that frees it later sees the shorter length.
    pub fn mark_sampled(&self, off: u32) {
        let before = self.sampled.fetch_add(1, Ordering::AcqRel);
        let from = if before == 0 {
            off
        } else {
            self.hide_from.get().min(off)
        };
        debug_assert!(from != NOT_HIDING);
        self.hide_from.set(from);
        self.carved_len.set(self.carved_len.get().min(from));
    }

    /// Undoes one [`Page::mark_sampled`], for a sampled block about to be
    /// freed (any thread; `owner`: the calling thread owns the page). Once
    /// no sample is left the carved blocks show again: at once when the
    /// owner unmarks, else on the owner's next collection of the page.
    pub fn unmark_sampled(&self, owner: bool) {
        let before = self.sampled.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "unmark of a page without samples");
        if owner && before == 1 {
            self.refresh_carved_len();
        }
    }

    /// Takes the blocks other threads freed, and refills `free` from
    /// `local_free` when it is empty. Owner only.
    pub fn collect(&self) {
        if self.thread_free.load(Ordering::Relaxed) != 0 {
            let w = self.thread_free.swap(0, Ordering::AcqRel);
            let head = self.decode(w);
            if !head.is_null() {
                // The count came with the list in one word: no walk.
                debug_assert!((w >> 32) as u16 <= self.used());
                self.busy.set(self.busy.get() - (w >> 32) as i32);
                if self.local_free.get().is_null() {
                    self.local_free.set(head);
                } else if self.free.get().is_null() {
                    self.free.set(self.local_free.get());
                    self.local_free.set(head);
                } else {
                    // Both owner lists hold blocks (collections off the
                    // allocation path): splice in front of local_free.
                    let mut tail = head;
                    // SAFETY: blocks on thread_free are dead blocks of this
                    // page, immutable once pushed.
                    unsafe {
                        while !(*tail).next.is_null() {
                            tail = (*tail).next;
                        }
                        (*tail).next = self.local_free.get();
                    }
                    self.local_free.set(head);
                }
            }
        }
        if self.free.get().is_null() {
            self.free.set(self.local_free.get());
            self.local_free.set(ptr::null_mut());
        }
        // Blocks hidden for samples that other threads have freed since
        // show again (the owner alone writes `carved_len`).
        if self.hide_from.get() != NOT_HIDING && self.capacity.get() != 0 {
            self.refresh_carved_len();
        }
    }

    /// Whether the page has a block ready or can carve one.
    #[inline]
    pub fn has_free(&self) -> bool {
        !self.free.get().is_null() || self.capacity.get() < self.reserved.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_free_says_when_a_page_is_empty_or_flagged() {
        // A descriptor outside any segment: only the owner's lists and
        // count are used here.
        // SAFETY: all-zero is a valid Page (null pointers, zero counts).
        let page: Box<Page> = Box::new(unsafe { core::mem::zeroed() });
        page.reset();
        assert_eq!(page.used(), 0);
        assert!(page.busy_agrees());
        let mut blocks = [const {
            Block {
                next: ptr::null_mut(),
                tag: 0,
            }
        }; 4];
        let b: [*mut Block; 4] = core::array::from_fn(|i| &raw mut blocks[i]);
        for i in 0..3 {
            // SAFETY: b[i] and b[i + 1] are valid blocks.
            unsafe { (*b[i]).next = b[i + 1] };
        }
        page.free.set(b[0]);
        for _ in 0..4 {
            assert!(!page.pop().is_null());
        }
        assert!(page.pop().is_null());
        assert_eq!(page.used(), 4);
        // SAFETY: each block pushed was handed out by pop and not freed.
        let push = |x: *mut Block| unsafe { page.push_local(x) };
        assert!(!push(b[0]));
        assert_eq!(page.used(), 3);
        page.set_flags(FULL, Ordering::Relaxed);
        assert!(page.busy_agrees());
        assert_eq!(page.used(), 3);
        // Flagged: every free needs attention, and the count still reads.
        assert!(push(b[1]));
        assert_eq!(page.used(), 2);
        page.set_flags(0, Ordering::Relaxed);
        assert!(page.busy_agrees());
        assert_eq!(page.used(), 2);
        assert!(!push(b[2]));
        // The last block out: empty.
        assert!(push(b[3]));
        assert_eq!(page.used(), 0);
        assert!(page.pop() == b[3] as *mut u8);
        assert_eq!(page.used(), 1);
        page.set_flags(FULL, Ordering::Relaxed);
        assert!(push(b[3]));
        assert_eq!(page.used(), 0);
        page.set_flags(0, Ordering::Relaxed);
        assert_eq!(page.used(), 0);
        assert!(page.busy_agrees());
    }
}
