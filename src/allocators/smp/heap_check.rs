//! The heap-consistency checker, and the reference pointer classifier.
//!
//! [`check_heap`] walks the calling thread's heap: its class queues, full
//! list and sample list, every page's free lists (bounds, alignment, tags,
//! no block twice, `used + free == capacity`) and every owned segment
//! (kind, owner, chunk map, free masks, page counts). It is exported as `la_smp_check_heap`, a
//! diagnostic the tests run after each stress phase; test builds also run
//! it from allocation slow paths (see `heap.rs`).
//!
//! [`reference::check`] (tests only) classifies a pointer the plain way,
//! with divisions: the oracle the division-free classifier of
//! `classify.rs` is tested against.

use core::ptr;
use core::sync::atomic::Ordering;

use super::heap::Heap;
use super::page::{Block, FULL, Page, is_free};
use super::segment;
use super::size_class::{CLASS_SIZE, NCLASSES};
use super::thread;
use crate::sys::write::Writer;

fn report(errors: &mut usize, msg: &str) {
    *errors += 1;
    if *errors <= 8 {
        Writer::fd(2).str("la_smp_check_heap: ").str(msg).str("\n");
    }
}

const MAX_BLOCKS: usize = 4096;

/// Walks one list of a page, marking blocks in `seen`; returns its length.
fn walk(
    p: &Page,
    mut b: *mut Block,
    seen: &mut [u64; MAX_BLOCKS / 64],
    errors: &mut usize,
) -> usize {
    let (area, bs, cap) = (p.area(), p.block_size(), p.capacity.get() as usize);
    let mut n = 0;
    while !b.is_null() {
        let a = b as usize;
        if a < area || !(a - area).is_multiple_of(bs) || (a - area) / bs >= cap {
            report(errors, "free list points outside the page's blocks");
            return n;
        }
        let i = (a - area) / bs;
        if i >= MAX_BLOCKS || seen[i / 64] & (1 << (i % 64)) != 0 {
            report(
                errors,
                "block twice on the free lists (cycle or double free)",
            );
            return n;
        }
        seen[i / 64] |= 1 << (i % 64);
        // SAFETY: a carved block of the page, mapped.
        let (next, tag) = unsafe { ((*b).next, (*b).tag) };
        if !is_free(a, tag) {
            report(
                errors,
                "free block without its free tag (written after free?)",
            );
        }
        n += 1;
        b = next;
    }
    n
}

/// Checks page `p` found in a list of `heap`: its class queue for `cls`,
/// or the full list (`full`).
fn check_page(heap: *mut Heap, p: &Page, cls: usize, full: bool, errors: &mut usize) {
    if !p.in_use() {
        report(errors, "page in a list is not in use");
        return;
    }
    if p.heap.load(Ordering::Relaxed) != heap {
        report(errors, "page in a list belongs to another heap");
    }
    if p.class.get() as usize != cls && !full {
        report(errors, "page in the wrong class queue");
    }
    let cls = p.class.get() as usize;
    if cls == 0 || cls >= NCLASSES || p.block_size() != CLASS_SIZE[cls] {
        report(errors, "page block size does not match its class");
        return;
    }
    if (p.flags.load(Ordering::Relaxed) & FULL != 0) != full {
        report(errors, "page FULL flag does not match its list");
    }
    let (cap, res) = (p.capacity.get() as usize, p.reserved.get() as usize);
    if cap > res || cap > MAX_BLOCKS {
        report(errors, "page capacity above its reserve");
        return;
    }
    let seg = p.segment();
    let (start, end) = seg.page_area(p.index());
    if p.area() != start || start + res * p.block_size() > end {
        report(errors, "page area does not match its segment slot");
    }
    let mut seen = [0u64; MAX_BLOCKS / 64];
    let nf = walk(p, p.free.get(), &mut seen, errors);
    let nl = walk(p, p.local_free.get(), &mut seen, errors);
    let nt = walk(p, p.thread_free_head(), &mut seen, errors);
    if p.div_test.get() != super::classify::divisor_test(cls) {
        report(
            errors,
            "page divisibility constant does not match its class",
        );
    }
    if !p.busy_agrees() {
        report(errors, "page count not biased as its flags say");
    }
    if p.used() as usize + nf + nl != cap {
        report(errors, "page used + free blocks != capacity");
    }
    if nt > p.used() as usize {
        report(errors, "more blocks freed by other threads than used");
    }
}

/// Checks the pages of the full list starting at `first` (pages with no
/// free block, flag `FULL`: doubly linked through the page links, no
/// tail) and counts them into `listed`.
fn check_full_list(heap: *mut Heap, first: *mut Page, listed: &mut usize, errors: &mut usize) {
    let mut prev: *mut Page = ptr::null_mut();
    let mut page = first;
    while !page.is_null() {
        // SAFETY: list members are pages of our segments.
        let p = unsafe { &*page };
        if p.prev.get() != prev {
            report(errors, "full list back link broken");
        }
        if p.sole() {
            report(
                errors,
                "page outside the class queues marked as a queue's only page",
            );
        }
        check_page(heap, p, 0, true, errors);
        *listed += 1;
        if *listed > 1 << 22 {
            report(errors, "full list cycle");
            break;
        }
        prev = page;
        page = p.next.get();
    }
}

/// Checks the calling thread's heap; returns the number of problems found
/// (each is also written to stderr, up to 8).
pub fn check_heap() -> usize {
    let heap = thread::current();
    let mut errors = 0;
    if heap.is_null() {
        return 0;
    }
    // SAFETY: the calling thread's own heap.
    let h = unsafe { &*heap };
    let mut listed = 0usize;
    for cls in 1..NCLASSES {
        let mut prev: *mut Page = ptr::null_mut();
        let mut page = h.q[cls].first.get();
        let mut n = 0;
        while !page.is_null() {
            // SAFETY: queue members are pages of our segments.
            let p = unsafe { &*page };
            if p.prev.get() != prev {
                report(&mut errors, "class queue back link broken");
            }
            if p.sole() != (prev.is_null() && p.next.get().is_null()) {
                report(
                    &mut errors,
                    "page not marked as its queue's only page, or marked wrongly",
                );
            }
            check_page(heap, p, cls, false, &mut errors);
            listed += 1;
            n += 1;
            if n > 1 << 20 {
                report(&mut errors, "class queue cycle");
                break;
            }
            prev = page;
            page = p.next.get();
        }
        if h.q[cls].last.get() != prev {
            report(&mut errors, "class queue last pointer wrong");
        }
    }
    check_full_list(heap, h.full.get(), &mut listed, &mut errors);
    let mut in_use = 0usize;
    for kind in 0..3u8 {
        let mut seg = h.segs[kind as usize].get();
        let mut n = 0;
        while !seg.is_null() {
            // SAFETY: listed segments are ours.
            let s = unsafe { &*seg };
            n += 1;
            if n > 1 << 20 {
                report(&mut errors, "segment list cycle");
                break;
            }
            if s.kind.get() != kind || s.heap.get() != heap as *mut u8 {
                report(&mut errors, "segment kind or owner wrong");
            }
            if !segment::is_head(segment::chunk_entry(seg as usize)) {
                report(&mut errors, "segment missing from the chunk map");
            }
            let count = s.page_count.get() as usize;
            let mut used = 0;
            for i in 0..count {
                // SAFETY: i < page_count.
                let p = unsafe { s.page(i) };
                let free_bit = s.free_mask.get() & (1 << i) != 0;
                if (p.in_use()) == free_bit {
                    report(&mut errors, "segment free mask disagrees with a page");
                }
                if p.in_use() {
                    used += 1;
                    if p.heap.load(Ordering::Relaxed) != heap {
                        report(&mut errors, "page of our segment owned by another heap");
                    }
                }
            }
            if s.dirty_mask.get() & !s.free_mask.get() != 0 {
                report(&mut errors, "dirty bit on a page in use");
            }
            if used != s.used_pages.get() as usize {
                report(&mut errors, "segment used-page count wrong");
            }
            in_use += used;
            seg = s.next.get();
        }
    }
    if in_use != listed {
        report(&mut errors, "pages in use are not all on exactly one list");
    }
    errors
}

/// Test builds: runs [`check_heap`] on every 64th allocation slow path of
/// the process, and fails the test on any inconsistency.
#[cfg(test)]
pub fn check_now_and_then() {
    use core::sync::atomic::AtomicU64;
    static CALLS: AtomicU64 = AtomicU64::new(0);
    if CALLS.fetch_add(1, Ordering::Relaxed).is_multiple_of(64) {
        assert_eq!(check_heap(), 0, "smp heap inconsistent after a slow path");
    }
}

/// The reference classifier, for tests.
#[cfg(test)]
pub mod reference {
    use core::ptr;

    use super::super::classify::{PtrCheck, cached, tagged, unused_page};
    use super::super::segment::{
        self, CACHED, CHUNK_CONT, CHUNK_NONE, HUGE, SEGMENT_MASK, SEGMENT_SIZE, Segment,
    };

    /// Classifies `ptr` (see the module comment). The reference classifier,
    /// for tests: the allocator uses the division-free one in `classify.rs`,
    /// which is tested against it.
    pub fn check(ptr: *const u8) -> PtrCheck {
        let a = ptr as usize;
        if a == 0 || segment::chunk_entry(a) == CHUNK_NONE {
            return PtrCheck::NotOurs;
        }
        let mut head = a & !SEGMENT_MASK;
        while head >= SEGMENT_SIZE && segment::chunk_entry(head) == CHUNK_CONT {
            head -= SEGMENT_SIZE;
        }
        if !segment::is_head(segment::chunk_entry(head)) {
            return PtrCheck::NotOurs;
        }
        // SAFETY: the chunk map says a segment header lives at `head` and stays
        // mapped while the map says so.
        let s = unsafe { &*(head as *const Segment) };
        // SAFETY: reading a field of the mapped header.
        let kind = unsafe { ptr::read_volatile(s.kind.as_ptr()) };
        match kind {
            HUGE => {
                if a >= s.map_start.get() + s.map_len.get() {
                    PtrCheck::NotOurs
                } else if a == s.block.get() {
                    PtrCheck::Live
                } else {
                    PtrCheck::Interior
                }
            }
            CACHED => cached(s, a),
            _ => {
                // SAFETY: as above.
                let shift = unsafe { ptr::read_volatile(s.page_shift.as_ptr()) };
                let i = (a - head) >> shift;
                // SAFETY: i < SEGMENT_SIZE >> shift = page count <= MAX_PAGES.
                let p = unsafe { s.page(i) };
                // SAFETY: reading fields of the mapped descriptor.
                let (bs, cap, res) = unsafe {
                    (
                        p.block_size(),
                        ptr::read_volatile(p.capacity.as_ptr()) as usize,
                        ptr::read_volatile(p.reserved.as_ptr()) as usize,
                    )
                };
                let area = s.page_area(i).0;
                if a < area {
                    // Segment metadata, before page 0's blocks.
                    return PtrCheck::Interior;
                }
                if bs == 0 {
                    return unused_page(s, i, area, a);
                }
                let off = a - area;
                let idx = off / bs;
                if idx >= cap || idx >= res {
                    return PtrCheck::Unallocated;
                }
                if !off.is_multiple_of(bs) {
                    return PtrCheck::Interior;
                }
                // SAFETY: a carved block of a page in use: mapped and at least
                // 16 bytes long.
                let tag = unsafe { ptr::read_volatile((a + 8) as *const usize) };
                tagged(a, tag)
            }
        }
    }
}
