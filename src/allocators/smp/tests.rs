//! Unit tests of the smp allocator: classes through the public functions,
//! alignment, segment masking, pointer classification, huge blocks,
//! cross-thread frees, thread exit and the heap checker.

use super::*;
use crate::allocators::smp::segment::{
    CHUNK_NORMAL, PAGE_SHIFT, SEGMENT_SIZE, Segment, chunk_entry, segment_of,
};

fn fill(p: *mut u8, len: usize, v: u8) {
    // SAFETY: p is a live block of at least len bytes.
    unsafe { core::ptr::write_bytes(p, v, len) };
}

#[test]
fn every_size_allocates_frees_and_classifies() {
    let mut blocks = [ptr::null_mut::<u8>(); 64];
    let mut size = 1usize;
    while size <= 600 << 10 {
        for b in blocks.iter_mut() {
            *b = alloc(size, 3);
            assert!(!b.is_null());
            assert_eq!(*b as usize % 8, 0);
            assert_eq!(check(*b), PtrCheck::Live);
            // SAFETY: live block.
            assert!(unsafe { usable_size(*b) } >= size);
            fill(*b, size, 0xa5);
        }
        for b in blocks.iter() {
            // SAFETY: live block.
            unsafe { free(*b) };
        }
        for b in blocks.iter() {
            // Free, unless the memory was given back already (then no
            // block can be seen there).
            let c = check(*b);
            assert!(
                c == PtrCheck::Free || c == PtrCheck::NotOurs || c == PtrCheck::Unallocated,
                "size {size}: {c:?}"
            );
        }
        size = size * 5 / 4 + 1;
    }
    assert_eq!(la_smp_check_heap(), 0);
}

#[test]
fn alignments_up_to_8_mib() {
    for align_log2 in 0..=23u8 {
        for size in [1usize, 24, 100, 3000, 70_000, 300_000, 700_000] {
            let p = alloc(size, align_log2);
            assert!(!p.is_null());
            assert_eq!(
                p as usize % (1 << align_log2),
                0,
                "align {align_log2} size {size}"
            );
            assert_eq!(check(p), PtrCheck::Live);
            fill(p, size, 1);
            // SAFETY: live block.
            unsafe { free(p) };
        }
    }
    assert_eq!(la_smp_check_heap(), 0);
}

#[test]
fn segments_are_found_by_masking() {
    let mut ptrs = [ptr::null_mut::<u8>(); 200];
    for (i, p) in ptrs.iter_mut().enumerate() {
        *p = alloc(16 + i * 97, 4);
        let seg = segment_of(*p) as usize;
        assert_eq!(seg % SEGMENT_SIZE, 0);
        // A normal segment's entry carries its page shift.
        let shift = u32::from(chunk_entry(seg) - CHUNK_NORMAL);
        assert!(PAGE_SHIFT.contains(&shift), "{shift}");
        // SAFETY: a normal segment's header.
        assert_eq!(shift, unsafe {
            (*(seg as *const Segment)).page_shift.get()
        });
        assert!((*p as usize) > seg && (*p as usize) < seg + SEGMENT_SIZE);
    }
    for p in ptrs {
        // SAFETY: live block.
        unsafe { free(p) };
    }
}

#[test]
fn the_gated_free_frees_only_behind_an_open_gate() {
    let _g = chunk_map::tests::GATE_TEST
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    assert!(prepare());
    let other = core::cell::Cell::new(None);
    let hidden = core::cell::Cell::new(false);
    let p = alloc(100, 4);
    let h = alloc(5 << 20, 4);
    // Closed: every pointer goes to `other`, nothing is freed.
    set_free_gate(false);
    // SAFETY: p and h are live blocks of ours; the hooks free nothing.
    unsafe {
        classify::free_gated_or(p, |_| hidden.set(true), |q| other.set(Some(q)));
        assert_eq!(other.take(), Some(p));
        assert_eq!(check(p), PtrCheck::Live);
        classify::free_gated_or(
            ptr::null_mut(),
            |_| hidden.set(true),
            |q| other.set(Some(q)),
        );
        assert_eq!(other.take(), Some(ptr::null_mut()));
    }
    // Open: a live block is freed; NULL, an interior pointer and a huge
    // block still go to `other`.
    set_free_gate(true);
    // SAFETY: as above; p is freed once.
    unsafe {
        classify::free_gated_or(
            ptr::null_mut(),
            |_| hidden.set(true),
            |q| other.set(Some(q)),
        );
        assert_eq!(other.take(), Some(ptr::null_mut()));
        classify::free_gated_or(
            p.wrapping_add(16),
            |_| hidden.set(true),
            |q| other.set(Some(q)),
        );
        assert_eq!(other.take(), Some(p.wrapping_add(16)));
        classify::free_gated_or(h, |_| hidden.set(true), |q| other.set(Some(q)));
        assert_eq!(other.take(), Some(h));
        classify::free_gated_or(p, |_| hidden.set(true), |q| other.set(Some(q)));
        assert_eq!(other.take(), None);
    }
    assert_eq!(check(p), PtrCheck::Free);
    assert!(!hidden.get());
    set_free_gate(false);
    // SAFETY: live block.
    unsafe { free(h) };
}

#[test]
fn interior_foreign_and_double_frees_are_classified() {
    let p = alloc(100, 4);
    assert_eq!(check(p.wrapping_add(8)), PtrCheck::Interior);
    let seg = segment_of(p) as *const u8;
    assert_eq!(check(seg.wrapping_add(64)), PtrCheck::Interior);
    let local = 5u64;
    assert_eq!(check(&local as *const u64 as *const u8), PtrCheck::NotOurs);
    assert_eq!(check(ptr::null()), PtrCheck::NotOurs);
    // SAFETY: live block.
    unsafe { free(p) };
    assert_eq!(check(p), PtrCheck::Free);
    let h = alloc(5 << 20, 4);
    assert_eq!(check(h), PtrCheck::Live);
    assert_eq!(check(h.wrapping_add(4096)), PtrCheck::Interior);
    // SAFETY: live block.
    unsafe { free(h) };
    // Freed huge mappings are cached (reads as Free) or unmapped.
    let c = check(h);
    assert!(c == PtrCheck::Free || c == PtrCheck::NotOurs, "{c:?}");
}

#[test]
fn addresses_where_no_block_was_handed_out_are_unallocated() {
    use super::heap_check::reference::check as reference;
    // The first block of a fresh page of 300-byte blocks; the next one is
    // carved (4 KiB at a time) but not handed out.
    let p = alloc(300, 4);
    // SAFETY: live block.
    let bs = unsafe { usable_size(p) };
    let next = p.wrapping_add(bs);
    assert_eq!(check(next), PtrCheck::Unallocated);
    assert_eq!(reference(next), PtrCheck::Unallocated);
    assert_eq!(check(next.wrapping_add(16)), PtrCheck::Interior);
    // Handed out and freed, it is a double free.
    let q = alloc(300, 4);
    assert_eq!(q, next);
    // SAFETY: live block.
    unsafe { free(q) };
    assert_eq!(check(next), PtrCheck::Free);
    assert_eq!(reference(next), PtrCheck::Free);
    // Blocks of 40000 bytes are carved one at a time: the one after the
    // first is not carved yet, nor is anything further in the page.
    let big = alloc(40000, 4);
    // SAFETY: live block.
    let big_bs = unsafe { usable_size(big) };
    for probe in [big.wrapping_add(big_bs), big.wrapping_add(big_bs + 48)] {
        assert_eq!(check(probe), PtrCheck::Unallocated);
        assert_eq!(reference(probe), PtrCheck::Unallocated);
    }
    // Inside a freed huge block's mapping (cached, or unmapped).
    let h = alloc(5 << 20, 4);
    // SAFETY: live blocks.
    unsafe {
        free(h);
        free(p);
        free(big);
    }
    let c = check(h.wrapping_add(64 << 10));
    assert!(
        c == PtrCheck::Unallocated || c == PtrCheck::NotOurs,
        "{c:?}"
    );
    assert_eq!(check(p), PtrCheck::Free);
    assert_eq!(la_smp_check_heap(), 0);
}

#[test]
fn blocks_of_pages_given_back_are_still_double_frees() {
    use super::heap_check::reference::check as reference;
    let mut blocks = [ptr::null_mut::<u8>(); 64];
    for b in blocks.iter_mut() {
        *b = alloc(40000, 4);
        assert!(!b.is_null());
    }
    for &b in &blocks {
        // SAFETY: live block.
        unsafe { free(b) };
    }
    // Every page but the last one of the class went back to its segment
    // (and stays committed for the purge delay, which only this thread's
    // slow paths act on).
    let mut given_back = 0;
    for &b in &blocks {
        // SAFETY: the segment of a block of ours, still mapped.
        let s = unsafe { &*segment_of(b) };
        let i = (b as usize - s.addr()) >> s.page_shift.get();
        // SAFETY: i < page_count.
        if !unsafe { s.page(i) }.in_use() {
            given_back += 1;
        }
        assert_eq!(check(b), PtrCheck::Free);
        assert_eq!(reference(b), PtrCheck::Free);
    }
    assert!(given_back > 0);
}

#[test]
fn huge_blocks_grow_and_shrink_with_mremap() {
    let mut len = 1 << 20;
    let mut p = alloc(len, 4);
    fill(p, len, 7);
    while len < 64 << 20 {
        let new_len = len * 2;
        // SAFETY: live block.
        let q = unsafe { remap(p, new_len, 4, len) };
        assert!(!q.is_null());
        assert_eq!(q as usize % 16, 0);
        // SAFETY: the first len bytes moved with the mapping.
        assert_eq!(unsafe { *q.add(len - 1) }, 7);
        fill(q, new_len, 7);
        p = q;
        len = new_len;
        assert_eq!(check(p), PtrCheck::Live);
    }
    // SAFETY: live block.
    unsafe {
        assert!(resize(p, 100));
        free(p);
    }
}

#[test]
fn small_blocks_resize_within_their_class() {
    let p = alloc(100, 4);
    // SAFETY: live block.
    unsafe {
        assert!(resize(p, usable_size(p)));
        assert!(!resize(p, usable_size(p) + 1));
        fill(p, 100, 9);
        // Growing far moves the block into a huge mapping (once).
        let q = remap(p, 1 << 20, 4, 100);
        assert!(!q.is_null());
        assert_eq!(*q.add(99), 9);
        assert_eq!(check(q), PtrCheck::Live);
        assert!(resize(q, (1 << 20) + 1000)); // within the page rounding
        free(q);
    }
}

#[test]
fn growing_blocks_move_with_headroom() {
    // Grown by small steps, a block moves with room for more: most steps
    // are in place, and the contents always come along.
    let mut len = 16;
    let mut p = alloc(len, 4);
    fill(p, len, 3);
    let mut moves = 0;
    while len < 60_000 {
        let new_len = len + 24;
        // SAFETY: p is live with len bytes, 16-aligned.
        let q = unsafe { remap(p, new_len, 4, len) };
        assert!(!q.is_null());
        assert_eq!(q as usize % 16, 0);
        // SAFETY: the first len bytes came along.
        assert!((0..len).all(|i| unsafe { *q.add(i) } == 3));
        if q != p {
            moves += 1;
            // SAFETY: q is live.
            let usable = unsafe { usable_size(q) };
            assert!(usable >= new_len + new_len / 2, "{usable} for {new_len}");
        }
        fill(q, new_len, 3);
        p = q;
        len = new_len;
    }
    // 16 B to 60 KB by 24-byte steps: 13 moves with headroom, where
    // moving to the next 12.5% class each time would take 73.
    assert!(moves <= 16, "{moves} moves");
    // A single large jump gets at most the old size as headroom.
    let q = alloc(100, 4);
    // SAFETY: live blocks.
    unsafe {
        let r = remap(q, 4000, 4, 100);
        // 4000 + 112 (the old class) rounds up to the 4608 class, where
        // half of 4000 as headroom would have taken 6144.
        assert!(usable_size(r) < 5000, "{}", usable_size(r));
        free(r);
        // Alignment is kept across a move.
        let a = alloc(200, 8);
        assert_eq!(a as usize % 256, 0);
        let b = remap(a, 3000, 8, 200);
        assert_eq!(b as usize % 256, 0);
        free(b);
        free(p);
    }
}

#[test]
fn cross_thread_frees_come_back_to_the_owner() {
    const N: usize = 20_000;
    let addrs: Vec<usize> = (0..N).map(|i| alloc(16 + i % 200, 4) as usize).collect();
    std::thread::spawn(move || {
        for a in addrs {
            // SAFETY: live blocks of the parent thread.
            unsafe { free(a as *mut u8) };
        }
        assert_eq!(la_smp_check_heap(), 0);
    })
    .join()
    .unwrap();
    // The owner reuses the blocks freed remotely.
    for _ in 0..3 {
        let v: Vec<usize> = (0..N).map(|i| alloc(16 + i % 200, 4) as usize).collect();
        for a in v {
            // SAFETY: live blocks.
            unsafe { free(a as *mut u8) };
        }
    }
    assert_eq!(la_smp_check_heap(), 0);
}

/// Blocks on `page`'s `thread_free` list.
fn thread_free_len(page: &page::Page) -> usize {
    let mut n = 0;
    let mut b = page.thread_free_head();
    while !b.is_null() {
        n += 1;
        // SAFETY: blocks on thread_free are dead blocks of the page, not
        // written again until the owner collects them (it allocates nothing
        // meanwhile).
        b = unsafe { (*b).next };
    }
    n
}

#[test]
fn remote_frees_go_back_in_chains() {
    use super::heap::PEND_MAX;
    const N: usize = 40;
    let addrs: Vec<usize> = (0..N).map(|_| alloc(176, 4) as usize).collect();
    // SAFETY: live blocks.
    let page = unsafe { page_of(addrs[0] as *const u8) }.unwrap();
    for &a in &addrs {
        // SAFETY: live blocks.
        let p = unsafe { page_of(a as *const u8) }.unwrap();
        assert!(core::ptr::eq(p, page), "the blocks share one page");
    }
    // A block of the same class on another page.
    let mut filler = Vec::new();
    let other = loop {
        let a = alloc(176, 4) as usize;
        // SAFETY: a live block.
        if !core::ptr::eq(unsafe { page_of(a as *const u8) }.unwrap(), page) {
            break a;
        }
        filler.push(a);
    };
    assert_eq!(thread_free_len(page), 0);
    let pa = page as *const page::Page as usize;
    let (a2, pending) = (addrs.clone(), PEND_MAX as usize);
    std::thread::spawn(move || {
        // SAFETY: the parent's page, in use while its blocks are.
        let page = unsafe { &*(pa as *const page::Page) };
        for (i, &a) in a2[..pending].iter().enumerate() {
            // SAFETY: live blocks of the parent thread.
            unsafe { free(a as *mut u8) };
            // Held back, yet already free: a second free is caught.
            assert_eq!(check(a as *const u8), PtrCheck::Free, "block {i}");
            assert_eq!(thread_free_len(page), 0, "after {} frees", i + 1);
        }
        // The chain is full: the next block pushes it with one exchange.
        // SAFETY: a live block of the parent thread.
        unsafe { free(a2[pending] as *mut u8) };
        assert_eq!(thread_free_len(page), pending);
        // SAFETY: a live block of the parent thread.
        unsafe { free(a2[pending + 1] as *mut u8) };
        // A block of another page pushes the chain before it.
        // SAFETY: a live block of the parent thread.
        unsafe { free(other as *mut u8) };
        assert_eq!(thread_free_len(page), pending + 2);
        // Collecting pushes every chain.
        // SAFETY: a live block of the parent thread.
        unsafe { free(a2[pending + 2] as *mut u8) };
        collect();
        assert_eq!(thread_free_len(page), pending + 3);
        // Exiting pushes them too.
        for &a in &a2[pending + 3..] {
            // SAFETY: live blocks of the parent thread.
            unsafe { free(a as *mut u8) };
        }
        assert!(thread_free_len(page) < N);
        assert_eq!(la_smp_check_heap(), 0);
    })
    .join()
    .unwrap();
    assert_eq!(thread_free_len(page), N);
    assert_eq!(la_smp_check_heap(), 0);
    // The owner takes them all back.
    let again: Vec<usize> = (0..N).map(|_| alloc(176, 4) as usize).collect();
    for a in again.into_iter().chain(filler) {
        // SAFETY: live blocks.
        unsafe { free(a as *mut u8) };
    }
    assert_eq!(la_smp_check_heap(), 0);
}

#[test]
fn blocks_outlive_their_thread() {
    let addrs = std::thread::spawn(|| {
        let v: Vec<usize> = (0..5000).map(|i| alloc(8 + i % 3000, 3) as usize).collect();
        assert_eq!(la_smp_check_heap(), 0);
        v
    })
    .join()
    .unwrap();
    for a in addrs {
        assert_eq!(check(a as *const u8), PtrCheck::Live);
        // SAFETY: live blocks of an exited thread.
        unsafe { free(a as *mut u8) };
    }
    collect();
    assert_eq!(la_smp_check_heap(), 0);
}

#[test]
fn stats_count_blocks() {
    let mut before = core::mem::MaybeUninit::<la_smp_stats>::uninit();
    // SAFETY: out pointer to writable storage.
    unsafe { la_smp_get_stats(before.as_mut_ptr()) };
    // SAFETY: filled above.
    let before = unsafe { before.assume_init() };
    let p = alloc(1000, 3);
    let mut after = core::mem::MaybeUninit::<la_smp_stats>::uninit();
    // SAFETY: as above.
    unsafe { la_smp_get_stats(after.as_mut_ptr()) };
    // SAFETY: filled above.
    let after = unsafe { after.assume_init() };
    assert!(after.total_count > before.total_count);
    let c = size_class::class_of(1000);
    assert!(after.classes[c].allocs > before.classes[c].allocs);
    assert_eq!(after.classes[c].block_size, size_class::CLASS_SIZE[c]);
    // SAFETY: live block.
    unsafe { free(p) };
    // SAFETY: NULL is accepted.
    unsafe { la_smp_get_stats(ptr::null_mut()) };
}

/// The calling thread's huge-block counters: allocations, frees, bytes
/// allocated, live bytes (wrapping).
fn my_huge_counters() -> (u64, u64, u64, u64) {
    use core::sync::atomic::Ordering::Relaxed;
    let h = thread::current_or_init();
    // SAFETY: the calling thread's own heap.
    let c = &unsafe { &*h }.huge;
    (
        c.allocs.load(Relaxed),
        c.frees.load(Relaxed),
        c.total_bytes.load(Relaxed),
        c.live_bytes.load(Relaxed),
    )
}

/// The mapping length a huge block is counted with.
fn huge_map_len(p: *mut u8) -> u64 {
    // SAFETY: a live huge block: its header is mapped.
    unsafe { &*segment_of(p) }.map_len.get() as u64
}

#[test]
fn huge_blocks_are_counted_in_the_heap_of_the_thread() {
    let (a0, f0, t0, l0) = my_huge_counters();
    let (p, q) = (alloc(3 << 20, 4), alloc(9 << 20, 4));
    let (lp, lq) = (huge_map_len(p), huge_map_len(q));
    assert!(lp >= 3 << 20 && lq >= 9 << 20);
    // SAFETY: a live block.
    unsafe { free(p) };
    let (a1, f1, t1, l1) = my_huge_counters();
    assert_eq!((a1 - a0, f1 - f0, t1 - t0), (2, 1, lp + lq));
    assert_eq!(l1.wrapping_sub(l0), lq);
    // Freed by another thread: that thread's count goes down, this one's
    // stays up; their sum is the truth.
    let qa = q as usize;
    let other = std::thread::spawn(move || {
        let before = my_huge_counters();
        // SAFETY: a live block of the parent thread, handed over.
        unsafe { free(qa as *mut u8) };
        let after = my_huge_counters();
        (after.1 - before.1, before.3.wrapping_sub(after.3))
    })
    .join()
    .unwrap();
    assert_eq!(other, (1, lq));
    assert_eq!(my_huge_counters().3, l1);
}

#[test]
fn huge_blocks_give_their_tail_back_only_when_shrinking() {
    let p = alloc(16 << 20, 4);
    fill(p, 16 << 20, 3);
    // SAFETY: live block.
    unsafe {
        let before = usable_size(p);
        // Not known to shrink: keeps its mapping.
        assert!(resize(p, 1 << 20));
        assert_eq!(usable_size(p), before);
        // A real shrink gives most of it back.
        assert!(resize_ex(p, 1 << 20, true));
        assert!(usable_size(p) < before / 4);
        assert_eq!(*p.add((1 << 20) - 1), 3);
        free(p);
    }
}

#[test]
fn freed_huge_blocks_stay_recognised_after_collect() {
    let p = alloc(3 << 20, 4);
    // SAFETY: live block.
    unsafe { free(p) };
    collect();
    // Its slot went back to the reserve, decommitted, and still reads as
    // freed (another test may have taken the slot again: then it is live,
    // inside a block or in a page not handed out; a mapping of its own
    // would be gone).
    let c = check(p);
    assert!(
        matches!(
            c,
            PtrCheck::Free | PtrCheck::Live | PtrCheck::Interior | PtrCheck::Unallocated
        ),
        "{c:?}"
    );
    let big = alloc(64 << 20, 4);
    // SAFETY: live block.
    unsafe { free(big) };
    collect();
    // A block too big for the reserve had a mapping of its own: unmapped.
    let c = check(big);
    assert!(c == PtrCheck::NotOurs || c == PtrCheck::Live, "{c:?}");
}

#[test]
fn zeroed_huge_blocks_read_as_zeros_over_dirty_and_clean_slots() {
    // Blocks of 1 to 3 slots, written and freed, then zeroed blocks of
    // other slot counts over them: runs of dirty slots, of clean ones and
    // of both (each cleared slot by slot), some after a collect (clean
    // slots that kept a header page).
    let sizes = [
        SEGMENT_SIZE - (64 << 10),
        2 * SEGMENT_SIZE - (64 << 10),
        3 * SEGMENT_SIZE - (64 << 10),
        SEGMENT_SIZE + (1 << 20),
    ];
    for round in 0..6 {
        let mut held = [core::ptr::null_mut::<u8>(); 4];
        for (h, &n) in held.iter_mut().zip(&sizes) {
            *h = alloc(n, 4);
            assert!(!h.is_null());
            fill(*h, n, 0xa5);
        }
        for &h in held.iter().rev() {
            // SAFETY: live blocks.
            unsafe { free(h) };
        }
        if round % 3 == 2 {
            collect();
        }
        for k in 0..sizes.len() {
            let n = sizes[(k + round) % sizes.len()];
            let p = alloc_zeroed(n, 4);
            assert!(!p.is_null());
            // SAFETY: a live block of n bytes.
            let b = unsafe { core::slice::from_raw_parts(p, n) };
            assert!(b.iter().all(|&x| x == 0), "round {round}, {n} bytes");
            fill(p, n, 0x5a);
            // SAFETY: live block.
            unsafe { free(p) };
        }
    }
}

#[test]
fn vtable_alloc_rejects_what_the_contract_rejects() {
    let a = la_smp_allocator();
    // SAFETY: a static vtable with every entry set.
    let f = unsafe { (*a.vtable).alloc }.unwrap();
    for align in 0..=255u8 {
        // SAFETY: the entry checks every argument.
        let p = unsafe { f(a.ptr, 0, align, 0) };
        assert!(p.is_null(), "len 0 align {align}");
        if align >= 64 {
            // SAFETY: as above.
            assert!(unsafe { f(a.ptr, 16, align, 0) }.is_null(), "align {align}");
        }
    }
    // SAFETY: as above.
    let free = unsafe { (*a.vtable).free }.unwrap();
    for len in [1, 15, 16, 17, 8191, 8192, 8193, 600_000] {
        for align in [0u8, 3, 4, 5, 12] {
            // SAFETY: as above.
            let p = unsafe { f(a.ptr, len, align, 0) } as *mut u8;
            assert!(!p.is_null());
            assert_eq!(p as usize % (1 << align), 0);
            // SAFETY: p is live (just allocated).
            assert!(unsafe { usable_size(p) } >= len);
            fill(p, len, 9);
            // SAFETY: p is live with this len and alignment.
            unsafe { free(a.ptr, p.cast(), len, align, 0) };
        }
    }
}

#[test]
#[cfg_attr(
    feature = "preload",
    ignore = "smp is the test process's own malloc here"
)]
fn the_only_page_of_a_class_empties_on_the_fast_path_and_is_kept_while_used() {
    let h = thread::current_or_init();
    assert!(!h.is_null());
    // SAFETY: the calling thread's own heap.
    let heap = unsafe { &*h };
    let cls = size_class::class_malloc(700);
    let slow = || heap::LOCAL_SLOW.with(|c| c.get());
    let queue = || {
        let q = &heap.q[cls];
        (q.first.get(), q.last.get())
    };
    // A block allocated and freed again and again: the only page of its
    // class empties every time, and no free leaves the fast path.
    let first = alloc(700, 4);
    assert!(!first.is_null());
    // SAFETY: live block, freed once.
    unsafe { free(first) };
    let (page, last) = queue();
    assert!(!page.is_null() && page == last);
    // SAFETY: the queue's page, ours.
    let p = unsafe { &*page };
    assert!(p.sole() && p.used() == 0);
    let before = slow();
    for _ in 0..1000 {
        let b = alloc(700, 4);
        assert_eq!(b, first);
        // SAFETY: live block, freed once.
        unsafe { free(b) };
    }
    assert_eq!(slow(), before);
    assert_eq!(heap_check::check_heap(), 0);
    // Blocks filling more than one page: the pages that empty while
    // another of the class is queued go back to their segment (the free
    // says so), and one is kept, marked as the only one.
    // Full pages leave the queue; a free of the first block brings its page
    // back behind the one being filled.
    let blocks: Vec<*mut u8> = (0..300).map(|_| alloc(700, 4)).collect();
    assert!(blocks.iter().all(|b| !b.is_null()));
    // SAFETY: live block, freed once.
    unsafe { free(blocks[0]) };
    let (f, l) = queue();
    assert!(f != l);
    // SAFETY: queue members, ours.
    assert!(unsafe { !(*f).sole() && !(*l).sole() });
    assert_eq!(heap_check::check_heap(), 0);
    let before = slow();
    for &b in &blocks[1..] {
        // SAFETY: live blocks, freed once.
        unsafe { free(b) };
    }
    assert!(slow() > before);
    let (f, l) = queue();
    assert!(!f.is_null() && f == l);
    // SAFETY: the queue's page, ours.
    let p = unsafe { &*f };
    assert!(p.sole() && p.used() == 0);
    assert_eq!(heap_check::check_heap(), 0);
    // A purge pass frees the kept page once it stayed idle for the delay,
    // not when it was used between two passes (empty at each: its frees
    // never said so). Passes far apart: longer than any delay a test sets.
    let t0 = crate::sys::now_ms() + 1;
    let pair = || {
        let b = alloc(700, 4);
        // SAFETY: live block, freed once.
        unsafe { free(b) };
    };
    pair();
    heap::purge(heap, t0, false);
    assert_eq!(queue().0, f);
    pair();
    heap::purge(heap, t0 + 200_000, false);
    assert_eq!(queue().0, f, "freed while in use");
    heap::purge(heap, t0 + 400_000, false);
    assert!(queue().0.is_null(), "kept while idle");
    assert_eq!(heap_check::check_heap(), 0);
}

#[test]
#[cfg_attr(
    feature = "preload",
    ignore = "smp is the test process's own malloc here"
)]
fn free_pages_stay_committed_for_the_purge_delay() {
    // A long delay first, so that no purge pass run by the frees below
    // decommits anything on its own.
    set_purge_delay_ms(60_000);
    let h = thread::current_or_init();
    assert!(!h.is_null());
    // Blocks filling several 64 KiB pages of one class, written, then freed
    // but for the last: the pages emptied go back to their segment, free
    // and dirty. The last block keeps that segment in use, so it is not
    // released (and taken by another thread) when its free pages are
    // decommitted.
    let blocks: Vec<*mut u8> = (0..160).map(|_| alloc(2000, 3)).collect();
    let (&keep, rest) = blocks.split_last().unwrap();
    assert!(blocks.iter().all(|p| !p.is_null()));
    for &p in &blocks {
        fill(p, 2000, 0x5a);
    }
    let seg = segment_of(keep) as usize;
    let page_of = |p: *mut u8| {
        // SAFETY: a block of ours: its segment header is mapped.
        let s = unsafe { &*segment_of(p) };
        (p as usize - s.addr()) >> s.page_shift.get()
    };
    let mut pages: Vec<usize> = rest
        .iter()
        .filter(|&&p| segment_of(p) as usize == seg && page_of(p) != page_of(keep))
        .map(|&p| page_of(p))
        .collect();
    pages.dedup();
    for &p in rest {
        // SAFETY: live blocks, freed once.
        unsafe { free(p) };
    }
    let dirty = |i: &usize| {
        // SAFETY: the segment holds `keep`, live: mapped and ours.
        let s = unsafe { &*(seg as *const Segment) };
        s.free_mask.get() & s.dirty_mask.get() & (1 << i) != 0
    };
    assert!(
        pages.len() >= 2 && pages.iter().all(dirty),
        "pages {pages:?}"
    );
    // SAFETY: the calling thread's own heap.
    let heap = unsafe { &*h };
    let now = crate::sys::now_ms();
    // Within the delay (here 500 ms): still committed.
    set_purge_delay_ms(500);
    heap::purge(heap, now + 400, false);
    assert!(pages.iter().all(dirty), "decommitted before the delay");
    // Past it: decommitted.
    heap::purge(heap, now + 600, false);
    assert!(!pages.iter().any(dirty), "still committed after the delay");
    set_purge_delay_ms(heap::PURGE_DELAY_MS);
    // SAFETY: live block, freed once.
    unsafe { free(keep) };
}

#[test]
fn pointers_into_slots_being_purged_classify_safely() {
    // One thread frees blocks into the reserve and purges it again and
    // again; another classifies addresses inside those slots meanwhile. A
    // header read half-purged would give a page index past the segment
    // (caught by `Segment::page`'s assertion) or read unmapped memory.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (s2, l2, d2) = (stop.clone(), last.clone(), done.clone());
    let checker = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            let base = l2.load(Ordering::Relaxed);
            if base != 0 {
                for off in [0usize, 16, 4096, 65536, 1 << 20] {
                    let _ = check((base + off) as *const u8);
                }
                d2.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    for i in 0..300 {
        let p = alloc((1 + i % 5) << 20, 4);
        assert!(!p.is_null());
        fill(p, 4096, 1);
        last.store(p as usize & !(SEGMENT_SIZE - 1), Ordering::Relaxed);
        // SAFETY: live block.
        unsafe { free(p) };
        collect();
    }
    // The checker ran at least once (on a loaded machine it may start late).
    while done.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    checker.join().unwrap();
}

#[test]
fn a_sampled_page_sends_frees_to_the_checked_path_until_unmarked() {
    prepare();
    let a = alloc(48, 4);
    let b = alloc(48, 4);
    let c = alloc(48, 4);
    assert!(!a.is_null() && !b.is_null() && !c.is_null());
    // SAFETY: live blocks of this thread's own pages.
    unsafe {
        assert_eq!(classify::live_block_size(b), Some(48));
        assert!(mark_sampled(b));
        // The sampled block, and every block of its page above it, leave
        // the fast path; blocks below it stay. The full classifier still
        // knows them all live.
        assert_eq!(classify::live_block_size(b), None);
        for x in [a, c] {
            let fast =
                (x as usize) < b as usize || segment::segment_of(x) != segment::segment_of(b);
            assert_eq!(classify::live_block_size(x).is_some(), fast);
            assert_eq!(check(x), PtrCheck::Live);
        }
        let above = if (a as usize) > (b as usize) { a } else { c };
        // The checked free still frees them.
        assert!(!classify::free_fast(above));
        assert_eq!(classify::free_checked(above), PtrCheck::Live);
        assert_eq!(check(above), PtrCheck::Free);
        // The hidden path frees them too, telling the hook first; what is
        // not a live block goes to `other`.
        let seen = core::cell::Cell::new(core::ptr::null_mut());
        let other = core::cell::Cell::new(core::ptr::null_mut());
        classify::free_fast_or(above, |p| seen.set(p), |p| other.set(p));
        assert_eq!((seen.get(), other.get()), (core::ptr::null_mut(), above));
        // A fresh block above the sample (the page carves upwards).
        let mut spare = [core::ptr::null_mut(); 64];
        let mut again = None;
        for slot in spare.iter_mut() {
            let x = alloc(48, 4);
            if segment::segment_of(x) == segment::segment_of(b)
                && x as usize > b as usize
                && classify::live_block_size(x).is_none()
            {
                again = Some(x);
                break;
            }
            *slot = x;
        }
        let again = again.expect("a block above the sample in its page");
        classify::free_fast_or(again, |p| seen.set(p), |p| other.set(p));
        assert_eq!(seen.get(), again);
        assert_eq!(check(again), PtrCheck::Free);
        for x in spare.into_iter().filter(|x| !x.is_null()) {
            free(x);
        }
        // The owner's unmark shows the page's blocks again at once.
        unmark_sampled(b);
        let below = if above == a { c } else { a };
        assert_eq!(classify::live_block_size(below), Some(48));
        assert!(classify::free_fast(b));
        assert!(classify::free_fast(below));
    }
    // A huge block needs no mark (its free is never on the fast path).
    let h = alloc(64 << 20, 4);
    // SAFETY: a live huge block.
    unsafe {
        assert!(mark_sampled(h));
        assert_eq!(classify::live_block_size(h), None);
        free(h);
    }
}

/// Frees at random over a large heap with room in many pages: a search for
/// a page with a free block walks past few pages, and few allocations need
/// one (pages left with nothing free wait on the full list until a free
/// puts them back at the end of the queue). With exhausted pages left in
/// the queue, this loop searched at one allocation in four and visited
/// about eight pages per search (22,572 searches, 174,143 visits; now 187
/// and 374).
#[test]
fn random_frees_keep_searches_short() {
    prepare();
    const N: usize = 60_000;
    const OPS: u64 = 200_000;
    let mut live = std::vec![core::ptr::null_mut::<u8>(); N];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    for p in live.iter_mut() {
        *p = alloc(48, 4);
    }
    // Half the blocks freed at random: room spread over every page.
    for _ in 0..N / 2 {
        let k = next() % N;
        if !live[k].is_null() {
            // SAFETY: a live block of ours.
            unsafe { free(live[k]) };
            live[k] = core::ptr::null_mut();
        }
    }
    let (s0, v0) = heap::SEARCHES.with(|c| c.get());
    for _ in 0..OPS {
        let k = next() % N;
        if live[k].is_null() {
            live[k] = alloc(48, 4);
        } else {
            // SAFETY: a live block of ours.
            unsafe { free(live[k]) };
            live[k] = core::ptr::null_mut();
        }
    }
    let (s1, v1) = heap::SEARCHES.with(|c| c.get());
    let (searches, visits) = (s1 - s0, v1 - v0);
    assert!(
        searches * 50 < OPS,
        "{searches} searches for about {} allocations",
        OPS / 2
    );
    assert!(
        visits <= 4 * searches.max(1),
        "{visits} pages visited in {searches} searches"
    );
    for p in live {
        if !p.is_null() {
            // SAFETY: a live block of ours.
            unsafe { free(p) };
        }
    }
    assert_eq!(heap_check::check_heap(), 0);
}

/// The heap profiler hands some samples out 16 bytes past their block's
/// start (`profile::SHIFT`), counting on every fast path to take such an
/// address for no block, in every class, while its page's other blocks
/// stay fast (no mark).
#[test]
fn an_address_16_bytes_into_a_block_is_no_block() {
    prepare();
    for cls in 1..size_class::NCLASSES {
        if size_class::class_size(cls) < 32 {
            continue;
        }
        let b = alloc_in(cls);
        let n = alloc_in(cls);
        assert!(!b.is_null() && !n.is_null());
        let q = b.wrapping_add(16);
        let other = core::cell::Cell::new(None);
        // SAFETY: b and n are live blocks of ours; the hooks free nothing.
        unsafe {
            assert_eq!(check(q), PtrCheck::Interior, "class {cls}");
            assert_eq!(classify::live_block_size(q), None, "class {cls}");
            classify::free_fast_or(q, |_| panic!("hidden"), |p| other.set(Some(p)));
            assert_eq!(other.take(), Some(q), "class {cls}");
            assert_eq!(
                classify::live_block_size(n),
                Some(size_class::class_size(cls))
            );
            free(b);
            free(n);
        }
    }
    assert_eq!(heap_check::check_heap(), 0);
}

/// Marked samples through their whole life under threads: samples made by
/// threads that exit (their pages abandoned with samples in them, adopted
/// by others), freed by other threads (through the hidden path, as the
/// shim frees them), alongside ordinary blocks of the same pages; the heap
/// checker runs in every thread.
#[test]
fn marked_samples_outlive_their_thread_and_cross_threads() {
    prepare();
    const ROUNDS: usize = 4;
    const THREADS: usize = 3;
    const PER: usize = 400;
    for _ in 0..ROUNDS {
        let made: Vec<Vec<(usize, bool)>> = (0..THREADS)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut v = Vec::with_capacity(PER);
                    for i in 0..PER {
                        let len = 16 + (i * 37 + t * 11) % 1000;
                        let p = alloc(len, 4);
                        assert!(!p.is_null());
                        if i % 3 == 0 {
                            // SAFETY: p is live and ours.
                            let marked = unsafe { mark_sampled(p) };
                            assert!(marked);
                            // SAFETY: p holds len bytes.
                            unsafe { core::ptr::write_bytes(p, 0xa5, len) };
                            v.push((p as usize, true));
                        } else {
                            v.push((p as usize, false));
                        }
                        // Free some at once, so pages empty and refill.
                        if i % 5 == 4 {
                            let (q, sampled) = v.swap_remove(i % v.len());
                            // SAFETY: a live block of ours, freed once.
                            unsafe { free_as_the_shim(q as *mut u8, sampled) };
                        }
                    }
                    assert_eq!(la_smp_check_heap(), 0);
                    v
                })
                .join()
                .unwrap()
            })
            .collect();
        // Another thread frees what the exited threads left, samples and
        // ordinary blocks alike, then allocates from what it adopted.
        std::thread::spawn(move || {
            for v in made {
                for (q, sampled) in v {
                    assert_eq!(check(q as *const u8), PtrCheck::Live);
                    // SAFETY: live blocks of exited threads, freed once.
                    unsafe { free_as_the_shim(q as *mut u8, sampled) };
                }
            }
            let again: Vec<usize> = (0..2000)
                .map(|i| alloc(16 + i % 1000, 4) as usize)
                .collect();
            assert_eq!(la_smp_check_heap(), 0);
            for q in again {
                // SAFETY: live blocks of this thread.
                unsafe { free_as_the_shim(q as *mut u8, false) };
            }
            collect();
            assert_eq!(la_smp_check_heap(), 0);
        })
        .join()
        .unwrap();
    }
}

/// Frees `p` as the shim does with the profiler on: the fast path, whose
/// hidden way out unmarks a sample before the block is freed.
///
/// # Safety
/// `p` is a live block of this allocator that the caller owns; `sampled`:
/// it was marked with [`mark_sampled`] and not unmarked since.
unsafe fn free_as_the_shim(p: *mut u8, sampled: bool) {
    let heard = core::cell::Cell::new(false);
    let hook = |q: *mut u8| {
        heard.set(true);
        if sampled {
            // SAFETY: q is the marked block, about to be freed.
            unsafe { unmark_sampled(q) };
        }
    };
    // SAFETY: caller's promise; the map exists (prepare ran).
    unsafe {
        classify::free_fast_or(p, hook, |q| {
            heard.set(true);
            if sampled {
                unmark_sampled(q);
            }
            assert_eq!(free_checked(q), PtrCheck::Live);
        })
    };
    // A sample never leaves by the fast path: its page hides it.
    assert!(heard.get() || !sampled, "a sample freed on the fast path");
}

#[test]
fn only_the_owner_marks_a_page() {
    prepare();
    let p = alloc(48, 4) as usize;
    // SAFETY: the block is live, owned by this thread's heap.
    let marked = std::thread::spawn(move || unsafe { mark_sampled(p as *const u8) })
        .join()
        .unwrap();
    assert!(!marked);
    // SAFETY: p is live and unmarked.
    unsafe {
        assert_eq!(classify::live_block_size(p as *const u8), Some(48));
        free(p as *mut u8);
    }
}

#[test]
fn remote_frees_sync_their_counters_within_16_kib_per_class() {
    use super::heap::{PEND_LIMIT, PEND_MAX};
    use super::size_class::class_size;
    for (cls, &limit) in PEND_LIMIT.iter().enumerate().skip(1) {
        let limit = limit as usize;
        assert!(
            limit.is_power_of_two() && limit <= PEND_MAX as usize,
            "class {cls}: {limit}"
        );
        // Held back at most: a chain's blocks, counted when it is pushed.
        assert!(
            limit == 1 || limit * class_size(cls) <= 16 << 10,
            "class {cls} ({} B) holds back {limit} frees",
            class_size(cls)
        );
        // Small classes still chain PEND_MAX blocks.
        if class_size(cls) <= 1024 {
            assert_eq!(limit, PEND_MAX as usize, "class {cls}");
        }
    }
}

#[test]
fn a_free_page_goes_back_to_the_class_it_last_held() {
    use super::heap::page_of_class;
    use super::segment::{segment_acquire, segment_release};
    let seg = segment_acquire(0, ptr::null_mut());
    assert!(!seg.is_null());
    // SAFETY: a fresh segment of ours, no page in use.
    let s = unsafe { &*seg };
    let (a, b, c) = (2usize, 17usize, 30usize);
    for (i, cls) in [(1usize, a), (2, b), (3, c), (4, b)] {
        // SAFETY: i < page count.
        unsafe { s.page(i) }.last_class.set(cls as u8);
    }
    let mask = 0b11110u64;
    // The lowest page that last held the class.
    assert_eq!(page_of_class(s, mask, b), 2);
    assert_eq!(page_of_class(s, mask & !0b100, b), 4);
    assert_eq!(page_of_class(s, mask, c), 3);
    // A class no free page held: the lowest free page.
    assert_eq!(page_of_class(s, mask, 40), 1);
    assert_eq!(page_of_class(s, 0b1000, a), 3);
    for i in 1..5 {
        // SAFETY: as above.
        unsafe { s.page(i) }.last_class.set(0);
    }
    segment_release(seg);
}

#[test]
#[cfg_attr(
    feature = "preload",
    ignore = "smp is the test process's own malloc here"
)]
fn a_thread_without_a_heap_sees_the_empty_heap_and_never_writes_it() {
    fn empty_heap_is_zero() -> bool {
        let p = thread::empty() as *const u8;
        // SAFETY: the empty heap is a static of this many bytes.
        let bytes = unsafe { core::slice::from_raw_parts(p, core::mem::size_of::<heap::Heap>()) };
        bytes.iter().all(|&b| b == 0)
    }
    let other = alloc(48, 4) as usize;
    std::thread::spawn(move || {
        // A new thread starts with the empty heap in its slot, not null,
        // and the null-giving lookups still say it has no heap.
        assert_eq!(thread::current_raw(), thread::empty());
        assert!(thread::current_fast().is_null());
        assert!(thread::current().is_null());
        // Its first free (of another thread's block) and its first
        // allocation both go through the empty heap to slow paths.
        // SAFETY: a live block of the parent thread, freed once.
        unsafe { free(other as *mut u8) };
        assert!(!thread::current_fast().is_null());
        let p = alloc(100, 4);
        assert!(!p.is_null());
        // SAFETY: live block.
        unsafe { free(p) };
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        assert_eq!(thread::current_raw(), thread::empty());
        let p = alloc(24, 4);
        assert!(!p.is_null() && thread::current_raw() != thread::empty());
        // SAFETY: live block.
        unsafe { free(p) };
    })
    .join()
    .unwrap();
    assert!(empty_heap_is_zero(), "the empty heap was written");
    assert_eq!(la_smp_check_heap(), 0);
}
