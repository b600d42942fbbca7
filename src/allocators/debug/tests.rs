//! Unit tests of the debug allocator, mirroring Zig's DebugAllocator tests
//! (allocation orders, large blocks, resize, memory cap) and adding the
//! misuse reports. Reports go to a memfd and are read back; every instance
//! runs in continue mode so misuse is counted instead of aborting.

use super::*;
use crate::allocators::debug::table::{FREED, LIVE};
use crate::allocators::page::la_page_allocator;
use crate::sys;

struct Fixture {
    d: *mut la_debug,
    fd: i32,
}

impl Fixture {
    fn with(f: impl FnOnce(&mut la_debug_config)) -> Fixture {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"report".as_ptr(), 0) };
        assert!(fd >= 0);
        let mut cfg = la_debug_config {
            on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
            report_fd: fd,
            ..la_debug_config::default()
        };
        f(&mut cfg);
        trace::init();
        let d = la_debug::create(la_page_allocator(), &cfg);
        assert!(!d.is_null());
        Fixture { d, fd }
    }

    fn new() -> Fixture {
        Self::with(|_| {})
    }

    /// An instance over a backing callable from any thread (the page
    /// allocator), so with several shards, as the shim's.
    fn sharded() -> Fixture {
        let f = Self::with(|_| {});
        // SAFETY: the instance is unused; replaced by a sharded one with the
        // same configuration and report fd.
        unsafe { la_debug::destroy(f.d) };
        let cfg = la_debug_config {
            on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
            report_fd: f.fd,
            ..la_debug_config::default()
        };
        let d = la_debug::create_with(la_page_allocator(), &cfg, true);
        assert!(!d.is_null());
        Fixture { d, fd: f.fd }
    }

    /// A sharded instance over the smp allocator, as the shim's: blocks of
    /// its size classes carry in-band headers instead of index entries.
    fn smp() -> Fixture {
        let f = Self::with(|_| {});
        // SAFETY: the instance is unused; replaced as in `sharded`.
        unsafe { la_debug::destroy(f.d) };
        let cfg = la_debug_config {
            on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
            report_fd: f.fd,
            ..la_debug_config::default()
        };
        let d = la_debug::create_with(crate::allocators::smp::la_smp_allocator(), &cfg, true);
        assert!(!d.is_null());
        Fixture { d, fd: f.fd }
    }

    /// The record of block `p` (live or freed), as the allocator finds it.
    fn record(&self, p: *mut u8) -> Option<Record> {
        let sh = self.d().shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state_ref() };
        // SAFETY: records in use are valid.
        st.table.find(p as usize).map(|r| unsafe { *r })
    }

    fn d(&self) -> &la_debug {
        // SAFETY: live until the fixture is finished.
        unsafe { &*self.d }
    }

    fn report(&self) -> String {
        let mut buf = vec![0u8; 1 << 16];
        // SAFETY: our memfd and buffer.
        let n = unsafe { libc::pread(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        buf.truncate(n.max(0) as usize);
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn errors(&self) -> (usize, la_debug_error) {
        let s = self.d().stats();
        (s.errors, s.last_error)
    }

    fn finish(self) -> la_check {
        // SAFETY: the instance is not used afterwards.
        let r = unsafe { la_debug::destroy(self.d) };
        // SAFETY: our fd.
        unsafe { libc::close(self.fd) };
        r
    }
}

fn alloc(d: &la_debug, len: usize, align: u8) -> *mut u8 {
    let p = d.alloc(len, align, 0);
    assert!(!p.is_null(), "alloc {len}");
    assert_eq!(p as usize % (1 << align), 0);
    p
}

#[test]
fn small_allocations_free_in_same_order() {
    let f = Fixture::new();
    let ptrs: Vec<_> = (0..513).map(|_| alloc(f.d(), 8, 3)).collect();
    for p in ptrs {
        f.d().free(p, Some((8, 3)), 0);
    }
    assert_eq!(f.errors().0, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn small_allocations_free_in_reverse_order() {
    let f = Fixture::new();
    let ptrs: Vec<_> = (0..513).map(|_| alloc(f.d(), 8, 3)).collect();
    for p in ptrs.into_iter().rev() {
        f.d().free(p, Some((8, 3)), 0);
    }
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn large_allocations() {
    let f = Fixture::new();
    let p1 = alloc(f.d(), 42768 * 8, 3);
    let p2 = alloc(f.d(), 52768 * 8, 3);
    f.d().free(p1, Some((42768 * 8, 3)), 0);
    let p3 = alloc(f.d(), 62768 * 8, 3);
    // SAFETY: a live block of that length.
    unsafe { p3.add(62768 * 8 - 1).write(1) };
    f.d().free(p3, Some((62768 * 8, 3)), 0);
    f.d().free(p2, Some((52768 * 8, 3)), 0);
    assert_eq!(f.errors().0, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn very_large_allocation_fails() {
    let f = Fixture::new();
    assert!(f.d().alloc(usize::MAX, 0, 0).is_null());
    assert!(f.d().alloc(usize::MAX - 4096, 0, 0).is_null());
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn guarded_block_ends_at_guard_page() {
    let f = Fixture::new();
    let len = 256 << 10;
    let p = alloc(f.d(), len, 4);
    assert_eq!((p as usize + len) % sys::page_size(), 0);
    f.d().free(p, Some((len, 4)), 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

/// The protection of the page holding `addr`, as /proc/self/maps shows it
/// ("rw-p", "---p"...).
fn protection_at(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (range, perms) = (it.next().unwrap(), it.next().unwrap());
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).unwrap(),
            usize::from_str_radix(hi, 16).unwrap(),
        );
        if lo <= addr && addr < hi {
            return perms.to_string();
        }
    }
    String::from("unmapped")
}

#[test]
fn guarded_reservations_are_reused_with_their_guards() {
    // No quarantine: a freed guarded block leaves at once.
    let f = Fixture::with(|c| c.quarantine_bytes = 0);
    let page = sys::page_size();
    let len = 300 << 10;
    let a = alloc(f.d(), len, 4);
    let ra = f.record(a).unwrap();
    let (base, ra_len) = (ra.base, ra.base_len);
    f.d().free(a, Some((len, 4)), 0);
    for _ in 0..4 {
        let q = alloc(f.d(), 100, 3);
        f.d().free(q, Some((100, 3)), 0);
    }
    assert!(f.record(a).is_none(), "evicted");
    // A block a little smaller takes the same reservation, whole (no
    // system call cuts it): the block ends at its upper guard page, and
    // every page below the block's first stays inaccessible.
    let small = len - 4 * page - 100;
    let b = alloc(f.d(), small, 4);
    let rb = f.record(b).unwrap();
    assert_eq!(
        (rb.base, rb.base_len),
        (base, ra_len),
        "the kept reservation is reused whole"
    );
    let body = b as usize & !(page - 1);
    assert!(
        body >= rb.base + 4 * page,
        "the pages it does not need lie below"
    );
    assert_eq!(protection_at(rb.base), "---p");
    assert_eq!(protection_at(body - page), "---p");
    assert_eq!(protection_at(body), "rw-p");
    assert_eq!(protection_at(b as usize), "rw-p");
    assert_eq!(protection_at(rb.base + rb.base_len - page - 1), "rw-p");
    assert_eq!(protection_at(rb.base + rb.base_len - page), "---p");
    // Its pages were given back to the OS: none is resident.
    let mut resident = vec![0u8; rb.base_len / page];
    // SAFETY: the reservation is mapped; the vector has a byte per page.
    let rc = unsafe {
        libc::mincore(
            rb.base as *mut libc::c_void,
            rb.base_len,
            resident.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    let touched = resident.iter().filter(|&&v| v & 1 != 0).count();
    assert!(
        touched <= 2,
        "{touched} pages resident in a reused reservation"
    );
    f.d().free(b, Some((small, 4)), 0);
    for _ in 0..4 {
        let q = alloc(f.d(), 100, 3);
        f.d().free(q, Some((100, 3)), 0);
    }
    // Twice the size does not fit a kept reservation: a new one.
    let c = alloc(f.d(), 2 * len, 4);
    assert_ne!(f.record(c).unwrap().base, base);
    f.d().free(c, Some((2 * len, 4)), 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn freed_guarded_blocks_stay_quarantined_like_small_ones() {
    // A 4 MiB block in a 64 KiB quarantine: it counts only its mapping, so
    // it neither leaves at once nor pushes the small blocks out.
    let f = Fixture::with(|c| c.quarantine_bytes = 64 << 10);
    let len = 4 << 20;
    let small: Vec<*mut u8> = (0..8).map(|_| alloc(f.d(), 100, 3)).collect();
    let big = alloc(f.d(), len, 4);
    for &q in &small {
        f.d().free(q, Some((100, 3)), 0);
    }
    f.d().free(big, Some((len, 4)), 0);
    for _ in 0..8 {
        let q = alloc(f.d(), 200, 3);
        f.d().free(q, Some((200, 3)), 0);
    }
    assert_eq!(f.record(big).map(|r| r.state), Some(FREED));
    assert!(
        small
            .iter()
            .all(|&q| f.record(q).map(|r| r.state) == Some(FREED))
    );
    // So a second free is still explained as a double free.
    f.d().free(big, None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    // It leaves once enough other blocks have followed it.
    for _ in 0..32 {
        let q = alloc(f.d(), 4000, 3);
        f.d().free(q, Some((4000, 3)), 0);
    }
    assert!(f.record(big).is_none());
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn realloc_keeps_address_within_capacity() {
    let f = Fixture::new();
    let p = alloc(f.d(), 1, 2);
    // SAFETY: live block.
    unsafe { *p = 0x12 };
    assert!(f.d().resize(p, Some((1, 2)), 2, 0));
    // SAFETY: live block, now 2 bytes.
    unsafe { assert_eq!(*p, 0x12) };
    // Past the block's capacity: only if the backing grows in place.
    let len = if f.d().resize(p, Some((2, 2)), 17, 0) {
        17
    } else {
        2
    };
    // SAFETY: live block.
    unsafe { assert_eq!(*p, 0x12) };
    f.d().free(p, Some((len, 2)), 0);
    assert_eq!(f.errors().0, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn shrink_keeps_contents_and_rearms_redzone() {
    let f = Fixture::new();
    let p = alloc(f.d(), 20, 0);
    // SAFETY: 20 live bytes.
    unsafe { ptr::write_bytes(p, 0x11, 20) };
    assert!(f.d().resize(p, Some((20, 0)), 17, 0));
    // SAFETY: 17 live bytes.
    assert!((0..17).all(|i| unsafe { *p.add(i) } == 0x11));
    // Byte 17 is now past the end: writing it is an overflow.
    // SAFETY: inside the backing block (redzone), deliberately.
    unsafe { *p.add(17) = 0 };
    f.d().free(p, Some((17, 0)), 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_OVERFLOW));
    f.finish();
}

#[test]
fn setting_a_memory_cap() {
    let f = Fixture::with(|c| c.memory_limit = 1010);
    let small = alloc(f.d(), 4, 2);
    assert_eq!(f.d().stats().live_bytes, 4);
    let big = alloc(f.d(), 1000, 0);
    assert_eq!(f.d().stats().live_bytes, 1004);
    assert!(f.d().alloc(8, 3, 0).is_null());
    f.d().free(small, Some((4, 2)), 0);
    assert_eq!(f.d().stats().live_bytes, 1000);
    f.d().free(big, Some((1000, 0)), 0);
    assert_eq!(f.d().stats().live_bytes, 0);
    let exact = alloc(f.d(), 1010, 0);
    assert_eq!(f.d().stats().live_bytes, 1010);
    assert!(!f.d().resize(exact, Some((1010, 0)), 1011, 0));
    f.d().free(exact, Some((1010, 0)), 0);
    f.d().set_memory_limit(usize::MAX);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn a_memory_cap_set_later_counts_every_shard() {
    // Bytes are counted per shard; a limit set later starts from the sum
    // of all shards and holds across them.
    let f = Fixture::sharded();
    let blocks: Vec<*mut u8> = (0..64).map(|_| alloc(f.d(), 100, 0)).collect();
    let s = f.d().stats();
    assert_eq!((s.live_bytes, s.peak_bytes), (6400, 6400));
    f.d().set_memory_limit(6400 + 250);
    let extra: Vec<*mut u8> = (0..2).map(|_| alloc(f.d(), 100, 0)).collect();
    assert!(f.d().alloc(100, 0, 0).is_null());
    let last = alloc(f.d(), 50, 0);
    assert_eq!(f.d().stats().live_bytes, 6650);
    f.d().set_memory_limit(usize::MAX);
    for p in blocks.into_iter().chain(extra) {
        f.d().free(p, Some((100, 0)), 0);
    }
    let s = f.d().stats();
    assert_eq!((s.live_bytes, s.live_allocations), (50, 1));
    assert!(s.peak_bytes >= 6650);
    f.d().free(last, Some((50, 0)), 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn large_allocations_count_requested_size() {
    let f = Fixture::with(|c| c.memory_limit = usize::MAX - 1);
    let page = sys::page_size();
    let p = alloc(f.d(), page + 1, 0);
    assert_eq!(f.d().stats().live_bytes, page + 1);
    assert!(f.d().resize(p, Some((page + 1, 0)), 1, 0));
    assert_eq!(f.d().stats().live_bytes, 1);
    f.d().free(p, Some((1, 0)), 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn leak_is_reported_with_summary() {
    let f = Fixture::new();
    let _a = alloc(f.d(), 24, 3);
    let _b = alloc(f.d(), 24, 3);
    let c = alloc(f.d(), 10, 0);
    f.d().free(c, Some((10, 0)), 0);
    finish_leaking(
        f,
        "SUMMARY: liballoc: 48 byte(s) leaked in 2 allocation(s).",
    );
}

#[test]
fn leaked_list_is_one_direct_and_indirect_nodes() {
    let f = Fixture::new();
    // A 48-byte head holding a chain of three 24-byte nodes (the last one
    // through an interior pointer), and a 40-byte pair pointing to each
    // other (a cycle: indirect both).
    let head = alloc(f.d(), 48, 3).cast::<usize>();
    let mut next = 0usize;
    for i in 0..3 {
        let n = alloc(f.d(), 24, 3).cast::<usize>();
        // SAFETY: fresh 24-byte blocks and a 48-byte head, 8-aligned.
        unsafe {
            *n = next;
            *n.add(1) = 0;
            *n.add(2) = 0;
        }
        next = n as usize + if i == 2 { 8 } else { 0 };
    }
    // SAFETY: as above.
    unsafe {
        for w in 0..6 {
            *head.add(w) = 0;
        }
        *head = next;
    }
    let (a, b) = (alloc(f.d(), 40, 3), alloc(f.d(), 40, 3));
    // SAFETY: fresh 40-byte blocks.
    unsafe {
        core::ptr::write_bytes(a, 0, 40);
        core::ptr::write_bytes(b, 0, 40);
        *a.cast::<usize>() = b as usize;
        *b.cast::<usize>() = a as usize;
    }
    // SAFETY: live instance.
    assert!(unsafe { la_debug_detect_leaks(f.d) });
    let r = f.report();
    // Totals per class (groups are per call site).
    let total = |kind: &str| {
        r.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|l| {
                let mut w = l.split(' ').filter_map(|w| w.parse::<usize>().ok());
                (w.next().unwrap(), w.next().unwrap())
            })
            .fold((0, 0), |(b, n), (b2, n2)| (b + b2, n + n2))
    };
    assert_eq!(total("Direct leak of "), (48, 1), "{r}");
    assert_eq!(total("Indirect leak of "), (152, 5), "{r}");
    assert!(
        r.contains("SUMMARY: liballoc: 200 byte(s) leaked in 6 allocation(s)."),
        "{r}"
    );
    assert!(r.find("Direct leak") < r.find("Indirect leak"), "{r}");
    assert_eq!(f.finish(), la_check::LA_CHECK_LEAK);
}

/// Checks that `f` finds leaks with traces and the `summary` line, and
/// that finishing it says so.
fn finish_leaking(f: Fixture, summary: &str) {
    // SAFETY: live instance.
    assert!(unsafe { la_debug_detect_leaks(f.d) });
    let r = f.report();
    assert!(r.contains("byte(s) in"), "{r}");
    assert!(r.contains("#0 0x"), "{r}");
    assert!(r.contains(summary), "{r}");
    assert_eq!(f.finish(), la_check::LA_CHECK_LEAK);
}

#[test]
fn sharded_instance_finds_misuse_and_leaks_across_shards() {
    let f = Fixture::sharded();
    let g = Fixture::sharded();
    // Blocks on many pages, so in every shard.
    let mut blocks = [ptr::null_mut(); 40];
    for b in blocks.iter_mut() {
        *b = alloc(f.d(), 5000, 4);
    }
    assert_eq!(f.d().stats().live_allocations, 40);
    // An interior pointer on another page than its block's start.
    let p = blocks[0];
    f.d().free(p.wrapping_add(4100), None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_INTERIOR_POINTER));
    assert!(f.report().contains("free of interior pointer"));
    f.d().free(p, Some((5000, 4)), 0);
    f.d().free(p, None, 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    let q = alloc(g.d(), 64, 3);
    f.d().free(q, None, 0);
    assert_eq!(f.errors(), (3, la_debug_error::LA_DEBUG_OTHER_INSTANCE));
    g.d().free(q, None, 0);
    // The 39 others leak from one site: one group, whatever their shards.
    // SAFETY: live instance.
    assert!(unsafe { la_debug_detect_leaks(f.d) });
    let r = f.report();
    assert!(
        r.contains("Direct leak of 195000 byte(s) in 39 object(s)"),
        "{r}"
    );
    assert!(
        r.contains("SUMMARY: liballoc: 195000 byte(s) leaked in 39 allocation(s)."),
        "{r}"
    );
    let s = f.d().stats();
    assert_eq!((s.live_allocations, s.live_bytes), (39, 195000));
    assert_eq!(g.finish(), la_check::LA_CHECK_OK);
    assert_eq!(f.finish(), la_check::LA_CHECK_LEAK);
}

#[test]
fn double_free_reports_three_traces() {
    let f = Fixture::new();
    let p = alloc(f.d(), 32, 3);
    f.d().free(p, Some((32, 3)), 0);
    f.d().free(p, Some((32, 3)), 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    let r = f.report();
    assert!(r.starts_with("liballoc: error: double free of 0x"), "{r}");
    assert!(r.contains("freed again by thread"), "{r}");
    assert!(r.contains("first freed by thread"), "{r}");
    assert!(r.contains("allocated by thread"), "{r}");
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn never_reuse_catches_late_double_free() {
    let f = Fixture::with(|c| c.never_reuse = true);
    let p = alloc(f.d(), 16, 3);
    f.d().free(p, Some((16, 3)), 0);
    let mut seen = Vec::new();
    for _ in 0..2000 {
        let q = alloc(f.d(), 16, 3);
        assert_ne!(q, p);
        seen.push(q);
        f.d().free(q, Some((16, 3)), 0);
    }
    f.d().free(p, Some((16, 3)), 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn wrong_size_and_alignment_free() {
    let f = Fixture::new();
    let p = alloc(f.d(), 40, 3);
    f.d().free(p, Some((41, 3)), 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRONG_SIZE));
    assert!(f.report().contains("free with wrong size"));
    let q = alloc(f.d(), 40, 4);
    f.d().free(q, Some((40, 3)), 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_WRONG_ALIGNMENT));
    // Both were still freed as recorded: no leak.
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn sized_delete_names_its_operator_and_any_len_checks_alignment_alone() {
    let f = Fixture::new();
    let p = alloc(f.d(), 40, 4);
    f.d().free_as(p, Some((36, 4)), "operator delete", 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRONG_SIZE));
    assert!(f.report().contains("operator delete with wrong size"));
    // The length not given: the alignment alone is checked.
    let q = alloc(f.d(), 40, 6);
    f.d().free_as(q, Some((ANY_LEN, 6)), "operator delete", 0);
    assert_eq!(f.errors().0, 1);
    let r = alloc(f.d(), 40, 6);
    f.d().free_as(r, Some((ANY_LEN, 5)), "operator delete", 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_WRONG_ALIGNMENT));
    assert!(f.report().contains("operator delete with wrong alignment"));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn zero_length_block_is_all_redzone() {
    // Without guard pages a zero-size block is redzone alone.
    let f = Fixture::with(|c| c.guard_page_min_len = 0);
    assert!(f.d().alloc(0, 4, 0).is_null());
    let p = f.d().alloc_any(0, 4, 0);
    assert!(!p.is_null());
    // SAFETY: byte 0 is redzone of our own block (the seeded overflow).
    unsafe { *p = b'x' };
    f.d().free(p, None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_OVERFLOW));
    assert!(
        f.report()
            .contains("byte 0 past the end of the 0-byte block")
    );
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn zero_length_block_sits_at_a_guard_page() {
    let f = Fixture::new();
    let p = f.d().alloc_any(0, 4, 0);
    assert!(!p.is_null());
    assert_eq!(p as usize % sys::page_size(), 0);
    // An access to byte 0 would fault there; the fault is explained as an
    // overflow of the 0-byte block.
    assert!(f.d().explain_fault(p as usize, &[]));
    assert!(f.report().contains("past the end of the 0-byte block"));
    // A second one is a block of its own; both free cleanly.
    let q = f.d().alloc_any(0, 4, 0);
    assert!(!q.is_null() && q != p);
    f.d().free(q, None, 0);
    f.d().free(p, None, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn resize_mismatch_is_reported_and_refused() {
    let f = Fixture::new();
    let p = alloc(f.d(), 40, 3);
    assert!(!f.d().resize(p, Some((39, 3)), 8, 0));
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRONG_SIZE));
    assert!(f.report().contains("resize with wrong size"));
    f.d().free(p, Some((40, 3)), 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn interior_foreign_and_other_instance_pointers() {
    let f = Fixture::new();
    let g = Fixture::new();
    let p = alloc(f.d(), 64, 3);
    // SAFETY: an address inside the block.
    f.d().free(unsafe { p.add(8) }, None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_INTERIOR_POINTER));
    assert!(f.report().contains("free of interior pointer"));
    let mut local = 0u64;
    f.d().free((&mut local as *mut u64).cast(), None, 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_FOREIGN_POINTER));
    let q = alloc(g.d(), 16, 3);
    f.d().free(q, Some((16, 3)), 0);
    assert_eq!(f.errors(), (3, la_debug_error::LA_DEBUG_OTHER_INSTANCE));
    assert!(f.report().contains("another la_debug instance"));
    g.d().free(q, Some((16, 3)), 0);
    f.d().free(p, Some((64, 3)), 0);
    assert_eq!(g.finish(), la_check::LA_CHECK_OK);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn overflow_and_underflow_by_one_byte() {
    let f = Fixture::new();
    let p = alloc(f.d(), 13, 0);
    // SAFETY: one byte past the block, inside its redzone (deliberately;
    // flipped, so it changes whatever the canary byte is).
    unsafe { *p.add(13) ^= 0xff };
    f.d().free(p, None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_OVERFLOW));
    assert!(
        f.report()
            .contains("heap buffer overflow: byte 0 past the end of the 13-byte block")
    );
    let q = alloc(f.d(), 13, 0);
    // SAFETY: one byte before the block, inside its redzone.
    unsafe { *q.sub(1) ^= 0xff };
    f.d().free(q, None, 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_UNDERFLOW));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn default_canary_never_matches_common_overflow_bytes() {
    let mut distinct = [false; 256];
    for seed in 0..100_000u64 {
        let c = super::redzone::default_canary(seed.wrapping_mul(4096) + (1 << 40));
        for b in c.to_le_bytes() {
            assert!((0x80..=0xfe).contains(&b) && b != FREE_FILL, "byte {b:#x}");
            distinct[b as usize] = true;
        }
    }
    // Still varies: every allowed byte value turns up.
    assert_eq!(distinct.iter().filter(|&&d| d).count(), 126);
}

#[test]
fn one_byte_overflows_of_common_values_are_always_caught() {
    // NUL (the string off-by-one), small integers, 0xff and text, on a few
    // instances (each with its own default canary; the test above covers
    // the canary's range for many seeds).
    for round in 0..3 {
        let f = Fixture::new();
        for (i, v) in [0u8, 1, 2, 0x7f, 0xff, b'a', b' '].into_iter().enumerate() {
            let n = 13 + i + round % 8;
            let p = alloc(f.d(), n, 0);
            // SAFETY: one byte past the block, inside its redzone.
            unsafe { *p.add(n) = v };
            f.d().free(p, None, 0);
            assert_eq!(f.errors(), (i + 1, la_debug_error::LA_DEBUG_OVERFLOW));
        }
        assert_eq!(f.finish(), la_check::LA_CHECK_OK);
    }
}

#[test]
fn every_redzone_byte_is_checked() {
    // Short blocks have the compact layout (16-byte front redzone, back
    // redzone of 16 to 31 bytes) checked by whole 16-byte compares: a
    // change to any one redzone byte is still found, on the right side.
    // (No traces: the reports then need no symbolizing.)
    let f = Fixture::with(|c| c.stack_trace_frames = 0);
    let mut errors = 0;
    for len in 1..=48usize {
        let back = len.next_multiple_of(16) + 16 - len;
        for off in (1..=16)
            .map(|k| -(k as isize))
            .chain((0..back).map(|k| (len + k) as isize))
        {
            let p = alloc(f.d(), len, 0);
            // SAFETY: a redzone byte of the block (deliberately changed).
            unsafe { *p.offset(off) ^= 0x5a };
            f.d().free(p, None, 0);
            errors += 1;
            let want = if off < 0 {
                la_debug_error::LA_DEBUG_UNDERFLOW
            } else {
                la_debug_error::LA_DEBUG_OVERFLOW
            };
            assert_eq!(f.errors(), (errors, want), "len {len} offset {off}");
        }
        // The user bytes themselves are not redzone.
        let p = alloc(f.d(), len, 0);
        // SAFETY: the block's own bytes.
        unsafe { ptr::write_bytes(p, 0x5a, len) };
        f.d().free(p, None, 0);
        assert_eq!(f.errors().0, errors, "len {len}");
    }
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn write_after_free_is_found() {
    let f = Fixture::new();
    let p = alloc(f.d(), 100, 3);
    f.d().free(p, Some((100, 3)), 0);
    // SAFETY: the freed block is held in quarantine (mapped), deliberately written.
    unsafe { *p.add(50) = 7 };
    f.d().verify_freed();
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRITE_AFTER_FREE));
    assert!(
        f.report()
            .contains("write after free: byte 50 of the freed 100-byte block")
    );
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn quarantine_eviction_verifies_fill() {
    let f = Fixture::with(|c| c.quarantine_bytes = 0);
    let p = alloc(f.d(), 100, 3);
    f.d().free(p, Some((100, 3)), 0);
    // Evicted at once: the memory went back to the page allocator.
    assert_eq!(f.errors().0, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn long_blocks_are_filled_and_verified_outside_the_lock() {
    // Blocks over 1 KiB are filled after the lock is released and verified
    // after eviction without it: writes after free are still found.
    let f = Fixture::with(|c| {
        c.quarantine_bytes = 16 << 10;
        c.free_fill_max_len = usize::MAX;
    });
    let p = alloc(f.d(), 5000, 4);
    f.d().free(p, Some((5000, 4)), 0);
    // SAFETY: the freed block is held in quarantine, deliberately written.
    unsafe { *p.add(4321) = 1 };
    for _ in 0..4 {
        let q = alloc(f.d(), 6000, 4);
        f.d().free(q, Some((6000, 4)), 0);
    }
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRITE_AFTER_FREE));
    assert!(
        f.report()
            .contains("write after free: byte 4321 of the freed 5000-byte block")
    );
    // A double free of a long block is still one.
    let q = alloc(f.d(), 3000, 4);
    f.d().free(q, None, 0);
    f.d().free(q, None, 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn usable_size_and_realloc_of_freed_block() {
    let f = Fixture::new();
    let p = alloc(f.d(), 10, 4);
    assert_eq!(f.d().usable_size(p, 0), 10);
    f.d().free(p, None, 0);
    assert_eq!(f.d().usable_size(p, 0), 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_USE_AFTER_FREE));
    assert!(!f.d().resize(p, None, 20, 0));
    assert_eq!(f.errors().0, 2);
    assert!(f.report().contains("realloc of freed block"));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn multi_threaded_use() {
    let f = Fixture::new();
    let d = f.d;
    let addr = d as usize;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                // SAFETY: the instance outlives the threads (joined below).
                let d = unsafe { &*(addr as *const la_debug) };
                let mut live: Vec<(usize, usize)> = Vec::new();
                let mut x = 12345u64 + t;
                for _ in 0..5000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(3) && !live.is_empty() {
                        let (p, len) = live.swap_remove((x as usize / 3) % live.len());
                        d.free(p as *mut u8, Some((len, 3)), 0);
                    } else {
                        let len = 1 + (x as usize % 300);
                        let p = d.alloc(len, 3, 0);
                        assert!(!p.is_null());
                        // SAFETY: len live bytes.
                        unsafe { ptr::write_bytes(p, 0x5a, len) };
                        live.push((p as usize, len));
                    }
                }
                for (p, len) in live {
                    d.free(p as *mut u8, Some((len, 3)), 0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.errors().0, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn null_handles_are_harmless() {
    // SAFETY: NULL handles are documented as accepted.
    unsafe {
        assert!(la_debug_allocator(ptr::null_mut()).vtable.is_null());
        assert!(!la_debug_detect_leaks(ptr::null_mut()));
        assert_eq!(la_debug_destroy(ptr::null_mut()), la_check::LA_CHECK_OK);
        la_debug_get_stats(ptr::null(), ptr::null_mut());
        assert!(la_debug_create(la_allocator::NULL, ptr::null()).is_null());
    }
}

#[test]
fn smp_blocks_of_every_kind_are_found() {
    let f = Fixture::smp();
    // (length, log2 alignment, expected in-band)
    let shapes = [
        (1, 0, true),
        (16, 4, true),
        (100, 3, true),
        (4000, 4, true),
        (8150, 4, true),
        (20_000, 4, true),
        (100, 6, false),
        (200_000, 4, false),
    ];
    let mut blocks = Vec::new();
    for round in 0..3 {
        for &(len, align, inband) in &shapes {
            let p = alloc(f.d(), len + round, align);
            let r = f.record(p).expect("record of a live block");
            assert_eq!((r.addr, r.len, r.state), (p as usize, len + round, LIVE));
            assert_eq!(r.inband != 0, inband, "len {len} align {align}");
            assert_eq!(f.d().len_of(p), Some(len + round));
            // SAFETY: the block's bytes.
            unsafe { ptr::write_bytes(p, 0x11, len + round) };
            blocks.push((p, len + round, align));
        }
    }
    for &(p, len, align) in &blocks {
        f.d().free(p, Some((len, align)), 0);
        assert_eq!(f.record(p).map(|r| r.state), Some(FREED));
        assert!(!f.d().owns(p));
    }
    assert_eq!(f.errors().0, 0, "{}", f.report());
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn smp_blocks_report_misuse() {
    let f = Fixture::smp();
    let p = alloc(f.d(), 64, 3);
    f.d().free(p.wrapping_add(16), None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_INTERIOR_POINTER));
    assert!(f.report().contains("free of interior pointer"));
    let mut local = 0u64;
    f.d().free((&mut local as *mut u64).cast(), None, 0);
    assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_FOREIGN_POINTER));
    f.d().free(p, None, 0);
    f.d().free(p, None, 0);
    assert_eq!(f.errors(), (3, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    assert!(f.report().contains("double free of 0x"));
    let q = alloc(f.d(), 40, 3);
    // SAFETY: one byte before the block, in its redzone.
    unsafe { *q.sub(1) ^= 0xff };
    f.d().free(q, None, 0);
    assert_eq!(f.errors(), (4, la_debug_error::LA_DEBUG_UNDERFLOW));
    assert!(f.report().contains("byte 1 before the 40-byte block"));
    let g = Fixture::smp();
    let o = alloc(g.d(), 24, 3);
    f.d().free(o, None, 0);
    assert_eq!(f.errors(), (5, la_debug_error::LA_DEBUG_OTHER_INSTANCE));
    g.d().free(o, None, 0);
    assert_eq!(g.finish(), la_check::LA_CHECK_OK);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn smp_damaged_header_is_an_underflow_not_a_lost_block() {
    // A byte of either header word -- the record's address (32 bytes
    // before the block) or the length and state (20 bytes before) -- past
    // the intact front redzone, as a stray write there would change it.
    for before in [32, 20] {
        let f = Fixture::smp();
        let p = alloc(f.d(), 48, 3);
        assert_eq!(f.record(p).map(|r| r.inband), Some(1));
        // SAFETY: inside the block's in-band header.
        unsafe { *p.sub(before) ^= 0x5a };
        // Still found (through the record region), its damage reported.
        assert_eq!(f.d().len_of(p), Some(48));
        f.d().free(p, None, 0);
        assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_UNDERFLOW));
        let want = format!("byte {before} before the 48-byte block");
        assert!(f.report().contains(&want), "{}", f.report());
        // Freed as recorded: a second free is a double free.
        f.d().free(p, None, 0);
        assert_eq!(f.errors(), (2, la_debug_error::LA_DEBUG_DOUBLE_FREE));
        assert_eq!(f.finish(), la_check::LA_CHECK_OK);
    }
}

#[test]
fn smp_double_free_after_a_sized_free_is_caught() {
    let f = Fixture::smp();
    let p = alloc(f.d(), 48, 3);
    // The sized free (the vtable's) takes the full lookup; the header must
    // say freed afterwards all the same, or the plain free() that follows
    // would pass for the free of a live block.
    f.d().free(p, Some((48, 3)), 0);
    assert_eq!(f.errors().0, 0, "{}", f.report());
    f.d().free(p, None, 0);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_DOUBLE_FREE));
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn smp_header_with_another_length_is_not_trusted() {
    let f = Fixture::smp();
    let p = alloc(f.d(), 48, 3);
    // The header rewritten to say 32 bytes (its length bits changed, the
    // rest kept), and the 16 bytes past that length made to look like a
    // back redzone: a free trusting the header would free 32 bytes and
    // later report the 16 it did not fill as written after free.
    // SAFETY: the header's second word and bytes 32..48 of the block.
    unsafe {
        *(p.sub(24) as *mut usize) ^= (48 ^ 32) << 8;
        core::ptr::copy_nonoverlapping(p.add(48), p.add(32), 16);
    }
    f.d().free(p, None, 0);
    assert_eq!(
        f.errors(),
        (1, la_debug_error::LA_DEBUG_UNDERFLOW),
        "{}",
        f.report()
    );
    assert!(
        f.report().contains("before the 48-byte block"),
        "{}",
        f.report()
    );
    f.d().verify_freed();
    assert_eq!(f.errors().0, 1, "{}", f.report());
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn smp_blocks_resize_in_place_cleanly() {
    let f = Fixture::smp();
    let p = alloc(f.d(), 100, 3);
    // Shrunk, grown back and grown into its capacity in place: redzones and
    // header stay right, so nothing is reported.
    for len in [20, 100, 1, 108] {
        assert!(f.d().resize(p, None, len, 0), "resize to {len}");
        assert_eq!(f.d().len_of(p), Some(len));
        assert_eq!(f.record(p).map(|r| r.len), Some(len));
    }
    // One byte past the new end is caught.
    // SAFETY: inside the block's back redzone.
    unsafe { *p.add(108) = 0 };
    f.d().free(p, None, 0);
    assert_eq!(
        f.errors(),
        (1, la_debug_error::LA_DEBUG_OVERFLOW),
        "{}",
        f.report()
    );
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn smp_leaks_are_reported() {
    let f = Fixture::smp();
    let _a = alloc(f.d(), 24, 3);
    let _b = alloc(f.d(), 24, 3);
    let _c = alloc(f.d(), 100, 6);
    let d = alloc(f.d(), 10, 0);
    f.d().free(d, None, 0);
    finish_leaking(
        f,
        "SUMMARY: liballoc: 148 byte(s) leaked in 3 allocation(s).",
    );
}

#[test]
fn smp_multi_threaded_cross_frees() {
    let f = Fixture::smp();
    let addr = f.d as usize;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let producer = std::thread::spawn(move || {
        // SAFETY: the instance outlives the thread (joined below).
        let d = unsafe { &*(addr as *const la_debug) };
        for i in 0..20_000usize {
            let len = 1 + i % 700;
            let p = d.alloc(len, 3, 0);
            assert!(!p.is_null());
            // SAFETY: len live bytes.
            unsafe { ptr::write_bytes(p, 0x5a, len) };
            tx.send((p as usize, len)).unwrap();
        }
    });
    for (p, len) in rx {
        f.d().free(p as *mut u8, Some((len, 3)), 0);
    }
    producer.join().unwrap();
    assert_eq!(f.errors().0, 0, "{}", f.report());
    assert_eq!(f.d().stats().live_allocations, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

#[test]
fn free_fill_stops_at_its_limit() {
    // Default: the first 4096 bytes of a freed block are filled and checked.
    let f = Fixture::new();
    let p = alloc(f.d(), 10_000, 4);
    // SAFETY: the block's bytes.
    unsafe { ptr::write_bytes(p, 0x33, 10_000) };
    f.d().free(p, None, 0);
    // SAFETY: the freed block is held in quarantine (mapped).
    unsafe {
        assert_eq!(*p.add(4095), FREE_FILL);
        assert_eq!(
            *p.add(4096),
            0x33,
            "bytes past the limit keep their contents"
        );
        *p.add(9000) = 1;
    }
    f.d().verify_freed();
    assert_eq!(f.errors().0, 0, "a write past the limit is not looked for");
    // SAFETY: as above, inside the filled part.
    unsafe { *p.add(4095) = 1 };
    f.d().verify_freed();
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRITE_AFTER_FREE));
    assert!(
        f.report()
            .contains("write after free: byte 4095 of the freed 10000-byte block")
    );
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
    // A limit of 0 fills nothing; SIZE_MAX fills everything.
    for (limit, found) in [(0, 0), (usize::MAX, 1)] {
        let f = Fixture::with(|c| c.free_fill_max_len = limit);
        let p = alloc(f.d(), 10_000, 4);
        f.d().free(p, None, 0);
        // SAFETY: as above.
        unsafe { *p.add(9999) ^= 0x5a };
        f.d().verify_freed();
        assert_eq!(f.errors().0, found, "limit {limit}");
        assert_eq!(f.finish(), la_check::LA_CHECK_OK);
    }
}

#[test]
fn allocations_let_quarantined_blocks_leave() {
    let f = Fixture::with(|c| c.quarantine_bytes = 16 << 10);
    let p = alloc(f.d(), 4000, 4);
    f.d().free(p, None, 0);
    // SAFETY: the freed block is held in quarantine, deliberately written.
    unsafe { *p.add(7) = 1 };
    // Frees alone keep up to twice the budget: nothing leaves yet.
    let blocks: Vec<_> = (0..6).map(|_| alloc(f.d(), 4000, 4)).collect();
    for &b in &blocks {
        f.d().free(b, None, 0);
    }
    assert_eq!(f.errors().0, 0);
    // The next allocation finds the quarantine over budget: the oldest
    // block leaves, its fill is verified.
    let q = alloc(f.d(), 16, 3);
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRITE_AFTER_FREE));
    assert!(
        f.report()
            .contains("write after free: byte 7 of the freed 4000-byte block")
    );
    f.d().free(q, None, 0);
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}

/// The record strategy follows the backing's live-block capability: smp
/// offers it and the thread-safe wrapper forwards it (in-band headers);
/// the C and page allocators lack it and the logging wrapper does not
/// forward it (address index). Each instance works under its strategy.
#[test]
fn strategy_follows_the_backing_capability() {
    use crate::allocators::c::la_c_allocator;
    use crate::allocators::logging::{la_logging_allocator, la_logging_create, la_logging_destroy};
    use crate::allocators::smp::la_smp_allocator;
    use crate::allocators::thread_safe::{
        la_thread_safe_allocator, la_thread_safe_create, la_thread_safe_destroy,
    };
    let ts = la_thread_safe_create(la_smp_allocator());
    let ts_c = la_thread_safe_create(la_c_allocator());
    // SAFETY: a static path; the descriptor is closed below.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY) };
    assert!(null >= 0);
    let lg = la_logging_create(la_smp_allocator(), null, 0);
    assert!(!ts.is_null() && !ts_c.is_null() && !lg.is_null());
    let cases = [
        (la_smp_allocator(), true),
        (la_thread_safe_allocator(ts), true),
        (la_logging_allocator(lg), false),
        (la_thread_safe_allocator(ts_c), false),
        (la_c_allocator(), false),
        (la_page_allocator(), false),
    ];
    let cfg = la_debug_config {
        on_error: la_debug_on_error::LA_DEBUG_CONTINUE,
        ..la_debug_config::default()
    };
    for (i, (backing, in_band)) in cases.into_iter().enumerate() {
        let d = la_debug::create(backing, &cfg);
        assert!(!d.is_null());
        // SAFETY: a live instance, destroyed below.
        let dr = unsafe { &*d };
        assert_eq!(dr.in_band(), in_band, "case {i}");
        let a = dr.allocator();
        // SAFETY: blocks used within their lengths and freed once.
        unsafe {
            let p = crate::vtable::la_raw_alloc(a, 40, 3, 0).cast::<u8>();
            assert!(!p.is_null());
            p.write_bytes(7, 40);
            assert!(crate::vtable::la_raw_resize(a, p.cast(), 40, 3, 24, 0));
            crate::vtable::la_raw_free(a, p.cast(), 24, 3, 0);
        }
        assert_eq!(dr.stats().errors, 0, "case {i}");
        // SAFETY: live, not used afterwards.
        assert_eq!(unsafe { la_debug::destroy(d) }, la_check::LA_CHECK_OK);
    }
    // SAFETY: live handles, no longer used.
    unsafe {
        la_logging_destroy(lg);
        la_thread_safe_destroy(ts);
        la_thread_safe_destroy(ts_c);
        libc::close(null);
    }
}

/// Over smp, a thread's blocks come from its own segments, and blocks of
/// one segment share a shard: one thread takes few locks, which other
/// threads churning their own blocks do not take. (Spread by 4 KiB pages,
/// a thread's blocks fell in every shard.) The quarantine budget is the
/// instance's over all shards: a thread whose frees all fall in one shard
/// still keeps the whole budget, not the shard's share, and the oldest
/// block leaves once the total passes it.
#[test]
fn a_threads_blocks_share_a_shard_and_the_whole_quarantine() {
    const BUDGET: usize = 1 << 20;
    let f = Fixture::smp();
    // SAFETY: the instance is unused; its budget is set before any call.
    unsafe {
        (*f.d).quarantine_bytes = BUDGET;
        (*f.d).quarantine_fair = BUDGET / MAX_SHARDS;
    }
    let d = f.d();
    let blocks: Vec<_> = (0..2000).map(|_| alloc(d, 48, 4)).collect();
    let mut shards: Vec<*const Shard> = blocks
        .iter()
        .map(|&p| d.shard(p as usize) as *const Shard)
        .collect();
    shards.sort();
    shards.dedup();
    assert!(
        shards.len() <= 2,
        "2,000 blocks of one thread in {} shards",
        shards.len()
    );
    for &p in &blocks {
        d.free(p, None, 0);
    }
    let first = alloc(d, 4000, 4);
    d.free(first, None, 0);
    // SAFETY: the freed block is held in quarantine, deliberately written.
    unsafe { *first.add(9) = 1 };
    // Three quarters of the budget, six times a shard's share: nothing
    // leaves.
    for _ in 0..(BUDGET * 3 / 4) / 4096 {
        let p = alloc(d, 4000, 4);
        d.free(p, None, 0);
    }
    assert_eq!(f.errors().0, 0);
    // Past the budget, the oldest leaves and its fill is verified.
    for _ in 0..BUDGET / 4096 {
        let p = alloc(d, 4000, 4);
        d.free(p, None, 0);
    }
    assert_eq!(f.errors(), (1, la_debug_error::LA_DEBUG_WRITE_AFTER_FREE));
    assert!(
        f.report()
            .contains("write after free: byte 9 of the freed 4000-byte block")
    );
    assert_eq!(f.finish(), la_check::LA_CHECK_OK);
}
