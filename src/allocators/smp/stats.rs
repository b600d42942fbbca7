//! Statistics of the smp allocator, cheap enough to leave on.
//!
//! Per size class each heap counts the blocks its thread allocated and freed
//! (one plain thread-local increment of a relaxed atomic per operation, the
//! only bookkeeping on the fast paths); current, total and per-class figures
//! are these counters summed over all heaps on demand, so they are exact. The
//! peak needs a running total: on slow paths (a page refill, a page being
//! freed or leaving the full list, every remote free of a class above 256
//! bytes, every 64th of a smaller one) a heap turns the change of that
//! class's counters into live-byte and block deltas, flushed into
//! process-wide atomics once they pass [`FLUSH_BYTES`]; the peak is taken at
//! those flushes and at each snapshot. It is therefore approximate: off by at
//! most `FLUSH_BYTES` per thread plus the blocks a thread allocated or freed
//! in a class since its last slow path there (at most a page's worth of
//! allocations, and the frees into pages that have not emptied since). Huge
//! blocks are counted per heap too (`heap::HugeCounters`), their live bytes
//! flushed at once; memory committed from the OS (the high-water mark of
//! carved blocks of each page, see `segment::note_carved`) is counted with
//! process-wide atomics on its (slow) paths. A peak is written only when it
//! rises.

use core::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};

use super::size_class::{CLASS_SIZE, NCLASSES};
use super::thread;

/// Live-byte deltas are flushed to the global counters past this size.
pub(crate) const FLUSH_BYTES: isize = 256 << 10;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_COUNT: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);
static PEAK_COUNT: AtomicIsize = AtomicIsize::new(0);
static COMMITTED: AtomicIsize = AtomicIsize::new(0);
static PEAK_COMMITTED: AtomicIsize = AtomicIsize::new(0);
static HUGE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static HUGE_FREES: AtomicU64 = AtomicU64::new(0);
static HUGE_TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static HUGE_LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static ORPHAN_FREES: [AtomicU64; NCLASSES] = [const { AtomicU64::new(0) }; NCLASSES];

/// Raises `peak` to `v`. Only a new peak writes: a `fetch_max` that
/// changes nothing still takes the cache line for writing, from every
/// thread that counts.
#[inline]
fn raise(peak: &AtomicIsize, v: isize) {
    if v > peak.load(Ordering::Relaxed) {
        peak.fetch_max(v, Ordering::Relaxed);
    }
}

/// Adds a heap's live delta to the global counters.
pub fn flush_live(bytes: isize, count: isize) {
    let b = LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    let c = LIVE_COUNT.fetch_add(count, Ordering::Relaxed) + count;
    raise(&PEAK_BYTES, b);
    raise(&PEAK_COUNT, c);
}

/// A free by a thread that has no heap.
pub fn orphan_free(cls: usize) {
    ORPHAN_FREES[cls].fetch_add(1, Ordering::Relaxed);
    flush_live(-(CLASS_SIZE[cls] as isize), -1);
}

pub fn add_committed(bytes: usize) {
    let v = COMMITTED.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
    raise(&PEAK_COMMITTED, v);
}

pub fn sub_committed(bytes: usize) {
    let before = COMMITTED.fetch_sub(bytes as isize, Ordering::Relaxed);
    // Every subtraction undoes an earlier addition of the same memory.
    debug_assert!(before >= bytes as isize, "committed bytes went negative");
}

/// Counts huge-block operations in the calling thread's heap (see
/// [`HugeCounters`](super::heap::HugeCounters)), or in the process-wide
/// counters for a thread without one.
fn count_huge(allocs: u64, frees: u64, total: u64, live: isize) {
    let h = thread::current_fast();
    if h.is_null() {
        HUGE_ALLOCS.fetch_add(allocs, Ordering::Relaxed);
        HUGE_FREES.fetch_add(frees, Ordering::Relaxed);
        HUGE_TOTAL_BYTES.fetch_add(total, Ordering::Relaxed);
        HUGE_LIVE_BYTES.fetch_add(live as usize, Ordering::Relaxed);
        return;
    }
    // SAFETY: the calling thread's own heap.
    unsafe { &*h }.huge.add(allocs, frees, total, live);
}

/// A huge block of a fresh mapping of `map_len` bytes.
pub fn huge_alloc(map_len: usize) {
    huge_alloc_claimed(map_len, 0);
}

/// A huge block of `map_len` bytes over reserve slots whose resident
/// pages, `counted` bytes of them, were counted as committed already.
pub fn huge_alloc_claimed(map_len: usize, counted: usize) {
    count_huge(1, 0, map_len as u64, map_len as isize);
    if map_len > counted {
        add_committed(map_len - counted);
    } else if counted > map_len {
        sub_committed(counted - map_len);
    }
    flush_live(map_len as isize, 1);
}

/// A huge block served from the cache of freed mappings (already counted
/// as committed while cached, and still committed).
pub fn huge_reuse(map_len: usize) {
    count_huge(1, 0, map_len as u64, map_len as isize);
    flush_live(map_len as isize, 1);
}

/// A huge block of `map_len` bytes freed; `kept`: its memory stays
/// committed (cached or back in the reserve, still resident), so the
/// committed bytes do not change.
pub fn huge_free(map_len: usize, kept: bool) {
    count_huge(0, 1, 0, -(map_len as isize));
    if !kept {
        sub_committed(map_len);
    }
    flush_live(-(map_len as isize), -1);
}

pub fn huge_resized(old_len: usize, new_len: usize) {
    let d = new_len as isize - old_len as isize;
    count_huge(0, 0, d.max(0) as u64, d);
    if d > 0 {
        add_committed(d as usize);
    } else {
        sub_committed((-d) as usize);
    }
    flush_live(d, 0);
}

/// Bytes in live huge blocks now: their whole mappings, each made for its
/// block alone (glibc's `mallinfo` calls these `hblkhd`).
pub fn huge_live_bytes() -> usize {
    let mut live = HUGE_LIVE_BYTES.load(Ordering::Relaxed) as u64;
    thread::for_each_heap(|h| {
        live = live.wrapping_add(h.huge.live_bytes.load(Ordering::Relaxed));
    });
    live as usize
}

/// Number of entries of `la_smp_stats::classes` (entry 0 is huge blocks).
pub const LA_SMP_CLASSES: usize = 109;
const _: () = assert!(LA_SMP_CLASSES == NCLASSES);

/// Counters of one size class.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct la_smp_class_stats {
    /// Block size of the class in bytes (0 for entry 0, huge blocks).
    pub block_size: usize,
    /// Blocks allocated so far.
    pub allocs: u64,
    /// Blocks freed so far (`allocs - frees` are live).
    pub frees: u64,
}

/// A snapshot of the smp allocator's statistics (see `la_smp_get_stats`).
///
/// Byte counts of small blocks are in block sizes (requests rounded up to
/// their class); huge blocks count their whole mapping.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct la_smp_stats {
    /// Bytes in live blocks now.
    pub current_bytes: usize,
    /// Live blocks now.
    pub current_count: usize,
    /// Highest `current_bytes` seen (approximate: sampled on slow paths,
    /// to within 256 KiB per thread plus about a page per size class).
    pub peak_bytes: usize,
    /// Highest `current_count` seen (same precision).
    pub peak_count: usize,
    /// Bytes of all blocks ever allocated.
    pub total_bytes: u64,
    /// Blocks ever allocated.
    pub total_count: u64,
    /// Blocks ever freed.
    pub total_frees: u64,
    /// Memory the allocator holds committed from the OS now: the parts of
    /// its pages that blocks were carved from and that were not decommitted
    /// since, plus whole huge mappings (live or cached). An estimate of the
    /// resident memory the allocator is responsible for.
    pub committed_bytes: usize,
    /// Highest `committed_bytes` seen.
    pub peak_committed_bytes: usize,
    /// Heaps (threads) that ever existed at once.
    pub heaps: usize,
    /// Per class counters; entry 0 counts huge blocks.
    pub classes: [la_smp_class_stats; LA_SMP_CLASSES],
    /// `mmap` calls made so far (segments, huge blocks, the allocator's
    /// tables), failed ones included. Process-wide: every allocator of
    /// this library that maps memory counts here.
    pub mmap_calls: u64,
    /// `munmap` calls made so far (huge blocks freed or trimmed, the
    /// excess of aligned mappings). Process-wide.
    pub munmap_calls: u64,
    /// `madvise` calls made so far (decommitting free pages, huge-page
    /// advice). Process-wide.
    pub madvise_calls: u64,
    /// `mremap` calls made so far (huge blocks growing or shrinking).
    /// Process-wide.
    pub mremap_calls: u64,
    /// Bytes given back to the OS so far by decommitting free memory that
    /// stays mapped (`madvise(MADV_DONTNEED)`); unmapped memory is not
    /// counted here. Process-wide.
    pub purged_bytes: u64,
}

/// Fills `out` with a summary over all heaps.
pub fn snapshot(out: &mut la_smp_stats) {
    let mut classes = [la_smp_class_stats::default(); LA_SMP_CLASSES];
    for (c, e) in classes.iter_mut().enumerate() {
        e.block_size = CLASS_SIZE[c];
        e.frees = ORPHAN_FREES[c].load(Ordering::Relaxed);
    }
    classes[0].allocs = HUGE_ALLOCS.load(Ordering::Relaxed);
    classes[0].frees = HUGE_FREES.load(Ordering::Relaxed);
    let mut huge_live = HUGE_LIVE_BYTES.load(Ordering::Relaxed) as u64;
    let mut total_bytes = HUGE_TOTAL_BYTES.load(Ordering::Relaxed);
    thread::for_each_heap(|h| {
        for (c, e) in classes.iter_mut().enumerate().skip(1) {
            e.allocs += h.q[c].allocs.load(Ordering::Relaxed);
            e.frees += h.frees[c].load(Ordering::Relaxed);
        }
        classes[0].allocs += h.huge.allocs.load(Ordering::Relaxed);
        classes[0].frees += h.huge.frees.load(Ordering::Relaxed);
        huge_live = huge_live.wrapping_add(h.huge.live_bytes.load(Ordering::Relaxed));
        total_bytes = total_bytes.wrapping_add(h.huge.total_bytes.load(Ordering::Relaxed));
    });
    let mut cur_bytes = huge_live;
    let mut cur_count = 0u64;
    let (mut total_count, mut total_frees) = (0u64, 0u64);
    for e in classes.iter() {
        let live = e.allocs.saturating_sub(e.frees);
        cur_count += live;
        cur_bytes += live * e.block_size as u64;
        total_bytes += e.allocs * e.block_size as u64;
        total_count += e.allocs;
        total_frees += e.frees;
    }
    let peak_b = (PEAK_BYTES.load(Ordering::Relaxed).max(0) as u64).max(cur_bytes);
    let peak_c = (PEAK_COUNT.load(Ordering::Relaxed).max(0) as u64).max(cur_count);
    PEAK_BYTES.fetch_max(peak_b as isize, Ordering::Relaxed);
    PEAK_COUNT.fetch_max(peak_c as isize, Ordering::Relaxed);
    let sys = crate::sys::counters();
    *out = la_smp_stats {
        current_bytes: cur_bytes as usize,
        current_count: cur_count as usize,
        peak_bytes: peak_b as usize,
        peak_count: peak_c as usize,
        total_bytes,
        total_count,
        total_frees,
        committed_bytes: COMMITTED.load(Ordering::Relaxed).max(0) as usize,
        peak_committed_bytes: PEAK_COMMITTED.load(Ordering::Relaxed).max(0) as usize,
        heaps: thread::heap_count(),
        classes,
        mmap_calls: sys.mmap_calls,
        munmap_calls: sys.munmap_calls,
        madvise_calls: sys.madvise_calls,
        mremap_calls: sys.mremap_calls,
        purged_bytes: sys.purged_bytes,
    };
}
