//! Allocation statistics of the shim and their output (`LA_STATS=1` table,
//! `LA_STATS=json` object, `malloc_stats`, `malloc_info`, the figures
//! behind `mallinfo`).
//!
//! Two sources. The smp allocator's own statistics (`la_smp_get_stats`:
//! live, peak and committed bytes, per size class allocations and frees)
//! are always on and cheap; they answer `mallinfo`, `malloc_info` and
//! `malloc_stats`. The peak per size class is not among them, so with
//! `LA_STATS` set the shim also counts every call itself, per smp size
//! class (class 0 = huge blocks): live blocks and bytes, the peak of the
//! live bytes, and total allocations and bytes. That costs shared atomic
//! updates, hence only on request; the malloc fast path then tests one
//! flag. All counters are relaxed atomics: exact when the process is quiet
//! (at exit), a close approximation while threads run. Process figures
//! (RSS, peak RSS, CPU and wall time) come from `/proc/self/statm` and
//! `getrusage`; the system calls the allocator made (`mmap`, `munmap`,
//! `madvise`, `mremap`, bytes decommitted) from the smp statistics.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::allocators::smp::{self, la_smp_stats, size_class};
use crate::sys;
use crate::sys::write::Writer;

/// Number of size classes: the smp allocator's (index 0: huge blocks).
pub const CLASSES: usize = smp::LA_SMP_CLASSES;

struct Class {
    live_blocks: AtomicU64,
    live_bytes: AtomicU64,
    peak_bytes: AtomicU64,
    allocs: AtomicU64,
    alloc_bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const CLASS_INIT: Class = Class {
    live_blocks: AtomicU64::new(0),
    live_bytes: AtomicU64::new(0),
    peak_bytes: AtomicU64::new(0),
    allocs: AtomicU64::new(0),
    alloc_bytes: AtomicU64::new(0),
};

static CLASS: [Class; CLASSES] = [CLASS_INIT; CLASSES];
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static PEAK_BYTES: AtomicU64 = AtomicU64::new(0);

/// Calls of the allocation entry points, counted while statistics are on.
pub static CALLS_ALLOC: AtomicU64 = AtomicU64::new(0);
/// Calls of `free` and the `operator delete` family with a non-NULL block.
pub static CALLS_FREE: AtomicU64 = AtomicU64::new(0);
/// Calls of `realloc`/`reallocarray` with a block and a non-zero size.
pub static CALLS_REALLOC: AtomicU64 = AtomicU64::new(0);
/// Allocations that returned NULL (including injected failures).
pub static CALLS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Monotonic time when the shim initialised (nanoseconds).
static START_NS: AtomicU64 = AtomicU64::new(0);

/// The smp size class of a block of `usable` bytes (0 for huge blocks).
#[inline]
pub fn class_of(usable: usize) -> usize {
    if usable == 0 || usable > size_class::LARGE_MAX {
        0
    } else {
        size_class::class_of(usable)
    }
}

/// The block size of class `i` (0 for huge blocks).
fn class_size(i: usize) -> u64 {
    size_class::CLASS_SIZE[i] as u64
}

/// Records a new block of `usable` bytes.
pub fn on_alloc(usable: usize) {
    let c = &CLASS[class_of(usable)];
    let n = usable as u64;
    c.live_blocks.fetch_add(1, Relaxed);
    let live = c.live_bytes.fetch_add(n, Relaxed) + n;
    c.peak_bytes.fetch_max(live, Relaxed);
    c.allocs.fetch_add(1, Relaxed);
    c.alloc_bytes.fetch_add(n, Relaxed);
    let all = LIVE_BYTES.fetch_add(n, Relaxed) + n;
    PEAK_BYTES.fetch_max(all, Relaxed);
}

/// Records that a block of `usable` bytes was freed.
pub fn on_free(usable: usize) {
    let c = &CLASS[class_of(usable)];
    let n = usable as u64;
    // Blocks allocated before counting started are not subtracted below
    // zero.
    let _ = c
        .live_blocks
        .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
    let _ = c
        .live_bytes
        .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
    let _ = LIVE_BYTES.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(n)));
}

/// One size class's counters, for output.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClassRow {
    /// Block size of the class (0: huge blocks, each its own mapping).
    pub block_size: u64,
    /// Live blocks.
    pub live_blocks: u64,
    /// Bytes in live blocks.
    pub live_bytes: u64,
    /// Highest `live_bytes` seen (only counted with `LA_STATS`).
    pub peak_bytes: Option<u64>,
    /// Allocations so far.
    pub allocs: u64,
    /// Bytes allocated so far.
    pub alloc_bytes: u64,
}

/// The counters of class `i`, or `None` when nothing was allocated in it:
/// the shim's own when `counting`, else the smp allocator's (`smp`, a
/// snapshot; no peak, and huge blocks without their sizes).
pub fn class_row(i: usize, counting: bool, smp: &la_smp_stats) -> Option<ClassRow> {
    if counting {
        let c = CLASS.get(i)?;
        let allocs = c.allocs.load(Relaxed);
        (allocs > 0).then(|| ClassRow {
            block_size: class_size(i),
            live_blocks: c.live_blocks.load(Relaxed),
            live_bytes: c.live_bytes.load(Relaxed),
            peak_bytes: Some(c.peak_bytes.load(Relaxed)),
            allocs,
            alloc_bytes: c.alloc_bytes.load(Relaxed),
        })
    } else {
        let c = smp.classes.get(i)?;
        let live = c.allocs.saturating_sub(c.frees);
        let size = c.block_size as u64;
        (c.allocs > 0).then_some(ClassRow {
            block_size: size,
            live_blocks: live,
            live_bytes: live * size,
            peak_bytes: None,
            allocs: c.allocs,
            alloc_bytes: c.allocs * size,
        })
    }
}

/// A snapshot of the smp allocator's statistics.
pub fn smp_stats() -> la_smp_stats {
    // SAFETY: la_smp_stats is plain integers, for which zero is valid.
    let mut out: la_smp_stats = unsafe { core::mem::zeroed() };
    // SAFETY: out is writable storage for an la_smp_stats.
    unsafe { smp::la_smp_get_stats(&mut out) };
    out
}

/// Remembers the start time (called once at initialisation).
pub fn start_clock() {
    START_NS.store(sys::time::now_ns(), Relaxed);
}

/// Heap figures for `mallinfo`, `malloc_stats` and the tables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Bytes in live blocks (block sizes).
    pub live_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_bytes: u64,
    /// Live blocks.
    pub live_blocks: u64,
    /// Memory the smp allocator holds committed from the OS.
    pub committed_bytes: u64,
    /// Highest `committed_bytes` seen.
    pub peak_committed_bytes: u64,
    /// Thread heaps that existed.
    pub heaps: u64,
    /// Memory the process holds (resident set), bytes.
    pub rss_bytes: u64,
    /// Highest resident set, bytes.
    pub peak_rss_bytes: u64,
}

/// Heap figures: live and peak from the shim's counters when `counting`
/// (exact), else from the smp snapshot `smp`; committed memory from smp.
pub fn summary(counting: bool, smp: &la_smp_stats) -> Summary {
    let rss = rss_bytes();
    let mut s = Summary {
        live_bytes: smp.current_bytes as u64,
        peak_bytes: smp.peak_bytes as u64,
        live_blocks: smp.current_count as u64,
        committed_bytes: smp.committed_bytes as u64,
        peak_committed_bytes: smp.peak_committed_bytes as u64,
        heaps: smp.heaps as u64,
        rss_bytes: rss,
        peak_rss_bytes: peak_rss_bytes().max(rss),
    };
    if counting {
        s.live_bytes = LIVE_BYTES.load(Relaxed);
        s.peak_bytes = PEAK_BYTES.load(Relaxed);
        s.live_blocks = CLASS.iter().map(|c| c.live_blocks.load(Relaxed)).sum();
    }
    s
}

/// Current resident set size from `/proc/self/statm` (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let mut buf = [0u8; 128];
    let n = sys::fd::read_file(c"/proc/self/statm", &mut buf).unwrap_or(0);
    // Fields: size resident shared ...; we want the second.
    let mut fields = buf[..n].split(|&b| b == b' ');
    let _ = fields.next();
    let pages = fields.next().map_or(0, |f| {
        f.iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'))
    });
    pages * sys::page_size() as u64
}

/// Peak resident set size (`ru_maxrss`), bytes.
pub fn peak_rss_bytes() -> u64 {
    sys::time::usage().max_rss
}

fn pid() -> u64 {
    u64::from(sys::process_id())
}

struct Times {
    wall: f64,
    user: f64,
    sys: f64,
}

fn times() -> Times {
    let usage = sys::time::usage();
    let start = START_NS.load(Relaxed);
    Times {
        wall: sys::time::now_ns().saturating_sub(start) as f64 / 1e9,
        user: usage.user_s,
        sys: usage.sys_s,
    }
}

/// Totals over the class rows: (allocations, bytes allocated).
fn row_totals(counting: bool, smp: &la_smp_stats) -> (u64, u64) {
    (0..CLASSES)
        .filter_map(|i| class_row(i, counting, smp))
        .fold((0, 0), |(n, b), r| (n + r.allocs, b + r.alloc_bytes))
}

/// Prints the statistics table to `w` (LA_STATS=1, malloc_stats): the shim's
/// per-class counters when `counting`, else the smp allocator's.
pub fn print_table(w: &mut Writer, counting: bool) {
    let smp = smp_stats();
    let s = summary(counting, &smp);
    let t = times();
    w.str("liballoc statistics (pid ").u64(pid()).str(")\n");
    w.str("  block size    live blocks      live bytes      peak bytes     allocations  bytes allocated\n");
    for row in (0..CLASSES).filter_map(|i| class_row(i, counting, &smp)) {
        if row.block_size == 0 {
            w.str("       huge");
        } else {
            w.u64_w(row.block_size, 11);
        }
        w.u64_w(row.live_blocks, 15).u64_w(row.live_bytes, 16);
        match row.peak_bytes {
            Some(p) => w.u64_w(p, 16),
            None => w.repeat(b' ', 15).str("-"),
        };
        w.u64_w(row.allocs, 16).u64_w(row.alloc_bytes, 17).str("\n");
    }
    let (allocs, bytes) = row_totals(counting, &smp);
    w.str("      total")
        .u64_w(s.live_blocks, 15)
        .u64_w(s.live_bytes, 16)
        .u64_w(s.peak_bytes, 16)
        .u64_w(allocs, 16)
        .u64_w(bytes, 17)
        .str("\n");
    if counting {
        w.str("  calls: alloc ")
            .u64(CALLS_ALLOC.load(Relaxed))
            .str(", free ")
            .u64(CALLS_FREE.load(Relaxed))
            .str(", realloc ")
            .u64(CALLS_REALLOC.load(Relaxed))
            .str(", failed ")
            .u64(CALLS_FAILED.load(Relaxed))
            .str("\n");
    }
    w.str("  heap: committed ")
        .size(s.committed_bytes)
        .str(", peak committed ")
        .size(s.peak_committed_bytes)
        .str(", thread heaps ")
        .u64(s.heaps)
        .str("\n");
    w.str("  system calls: mmap ")
        .u64(smp.mmap_calls)
        .str(", munmap ")
        .u64(smp.munmap_calls)
        .str(", madvise ")
        .u64(smp.madvise_calls)
        .str(", mremap ")
        .u64(smp.mremap_calls)
        .str(", purged ")
        .size(smp.purged_bytes)
        .str("\n");
    w.str("  process: rss ")
        .size(s.rss_bytes)
        .str(", peak rss ")
        .size(s.peak_rss_bytes)
        .str(", wall ")
        .fixed(t.wall, 3)
        .str(" s, user ")
        .fixed(t.user, 3)
        .str(" s, sys ")
        .fixed(t.sys, 3)
        .str(" s\n");
    w.flush();
}

/// Prints the statistics as one JSON object on one line (LA_STATS=json).
pub fn print_json(w: &mut Writer) {
    let smp = smp_stats();
    let s = summary(true, &smp);
    let t = times();
    w.str("{\"liballoc_stats\":1,\"pid\":").u64(pid());
    w.str(",\"classes\":[");
    for (k, row) in (0..CLASSES)
        .filter_map(|i| class_row(i, true, &smp))
        .enumerate()
    {
        if k > 0 {
            w.str(",");
        }
        w.str("{\"block_size\":")
            .u64(row.block_size)
            .str(",\"huge\":")
            .str(if row.block_size == 0 { "true" } else { "false" })
            .str(",\"live_blocks\":")
            .u64(row.live_blocks)
            .str(",\"live_bytes\":")
            .u64(row.live_bytes)
            .str(",\"peak_bytes\":")
            .u64(row.peak_bytes.unwrap_or(0))
            .str(",\"allocs\":")
            .u64(row.allocs)
            .str(",\"alloc_bytes\":")
            .u64(row.alloc_bytes)
            .str("}");
    }
    let (allocs, bytes) = row_totals(true, &smp);
    w.str("],\"total\":{\"live_blocks\":")
        .u64(s.live_blocks)
        .str(",\"live_bytes\":")
        .u64(s.live_bytes)
        .str(",\"peak_bytes\":")
        .u64(s.peak_bytes)
        .str(",\"allocs\":")
        .u64(allocs)
        .str(",\"alloc_bytes\":")
        .u64(bytes)
        .str("},\"calls\":{\"alloc\":")
        .u64(CALLS_ALLOC.load(Relaxed))
        .str(",\"free\":")
        .u64(CALLS_FREE.load(Relaxed))
        .str(",\"realloc\":")
        .u64(CALLS_REALLOC.load(Relaxed))
        .str(",\"failed\":")
        .u64(CALLS_FAILED.load(Relaxed))
        .str("},\"heap\":{\"committed_bytes\":")
        .u64(s.committed_bytes)
        .str(",\"peak_committed_bytes\":")
        .u64(s.peak_committed_bytes)
        .str(",\"smp_live_bytes\":")
        .u64(smp.current_bytes as u64)
        .str(",\"smp_peak_bytes\":")
        .u64(smp.peak_bytes as u64)
        .str(",\"thread_heaps\":")
        .u64(s.heaps)
        .str("},\"syscalls\":{\"mmap\":")
        .u64(smp.mmap_calls)
        .str(",\"munmap\":")
        .u64(smp.munmap_calls)
        .str(",\"madvise\":")
        .u64(smp.madvise_calls)
        .str(",\"mremap\":")
        .u64(smp.mremap_calls)
        .str(",\"purged_bytes\":")
        .u64(smp.purged_bytes)
        .str("},\"process\":{\"rss_bytes\":")
        .u64(s.rss_bytes)
        .str(",\"peak_rss_bytes\":")
        .u64(s.peak_rss_bytes)
        .str(",\"wall_s\":")
        .fixed(t.wall, 6)
        .str(",\"user_s\":")
        .fixed(t.user, 6)
        .str(",\"sys_s\":")
        .fixed(t.sys, 6)
        .str("}}\n");
    w.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_smp() {
        assert_eq!(class_of(16), 1);
        assert_eq!(class_size(class_of(16)), 16);
        for i in 1..CLASSES {
            assert_eq!(class_of(class_size(i) as usize), i);
        }
        assert_eq!(class_of(size_class::LARGE_MAX + 1), 0);
        assert_eq!(class_size(0), 0);
    }

    #[test]
    fn counters_track_live_and_peak() {
        let c = class_of(48);
        on_alloc(48);
        on_alloc(48);
        on_free(48);
        let row = class_row(c, true, &smp_stats()).unwrap();
        assert!(row.allocs >= 2 && row.live_blocks >= 1);
        assert!(row.peak_bytes.unwrap() >= 96);
    }
}
