//! Allocation statistics of the shim and their output (`LA_STATS=1` table,
//! `LA_STATS=json` object, `malloc_stats`, the figures behind `mallinfo`).
//!
//! Counting costs shared atomic updates on every call, so it only runs when
//! `LA_STATS` asks for it; the malloc fast path then tests one flag. Blocks
//! are counted by their usable size in power-of-two size classes (`<= 16`,
//! `<= 32`, ... bytes): per class the live blocks and bytes, the peak of the
//! live bytes, and the total number and bytes of allocations. All counters
//! are relaxed atomics: exact when the process is quiet (at exit), a close
//! approximation while threads run. Process figures (RSS, peak RSS, CPU and
//! wall time) come from `/proc/self/statm` and `getrusage`.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::fmt::Writer;

/// Number of power-of-two size classes (class `i` holds usable sizes in
/// `(2^(i+3), 2^(i+4)]`, class 0 everything up to 16 bytes).
pub const CLASSES: usize = 44;

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

/// The size class of a block of `usable` bytes.
#[inline]
pub fn class_of(usable: usize) -> usize {
    if usable <= 16 {
        0
    } else {
        let bits = usize::BITS - (usable - 1).leading_zeros();
        ((bits - 4) as usize).min(CLASSES - 1)
    }
}

/// The largest usable size of class `i`.
fn class_limit(i: usize) -> u64 {
    1u64 << (i + 4)
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
    /// The largest usable size in the class.
    pub max_size: u64,
    /// Live blocks.
    pub live_blocks: u64,
    /// Bytes in live blocks.
    pub live_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_bytes: u64,
    /// Allocations so far.
    pub allocs: u64,
    /// Bytes allocated so far.
    pub alloc_bytes: u64,
}

/// The counters of class `i`, or `None` when nothing was allocated in it.
pub fn class_row(i: usize) -> Option<ClassRow> {
    let c = CLASS.get(i)?;
    let allocs = c.allocs.load(Relaxed);
    (allocs > 0).then(|| ClassRow {
        max_size: class_limit(i),
        live_blocks: c.live_blocks.load(Relaxed),
        live_bytes: c.live_bytes.load(Relaxed),
        peak_bytes: c.peak_bytes.load(Relaxed),
        allocs,
        alloc_bytes: c.alloc_bytes.load(Relaxed),
    })
}

/// Remembers the start time (called once at initialisation).
pub fn start_clock() {
    START_NS.store(now_ns(), Relaxed);
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Heap figures for `mallinfo`, `malloc_stats` and the tables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Bytes in live blocks (usable sizes).
    pub live_bytes: u64,
    /// Highest `live_bytes` seen.
    pub peak_bytes: u64,
    /// Live blocks.
    pub live_blocks: u64,
    /// Memory the process holds (resident set), bytes.
    pub rss_bytes: u64,
    /// Highest resident set, bytes.
    pub peak_rss_bytes: u64,
}

/// Heap figures: the counters when statistics are on, otherwise the
/// process's resident memory stands in for the heap figures.
pub fn summary(counting: bool) -> Summary {
    let rss = rss_bytes();
    let peak_rss = peak_rss_bytes().max(rss);
    if counting {
        let live_blocks = CLASS.iter().map(|c| c.live_blocks.load(Relaxed)).sum();
        Summary {
            live_bytes: LIVE_BYTES.load(Relaxed),
            peak_bytes: PEAK_BYTES.load(Relaxed),
            live_blocks,
            rss_bytes: rss,
            peak_rss_bytes: peak_rss,
        }
    } else {
        Summary {
            live_bytes: rss,
            peak_bytes: peak_rss,
            live_blocks: 0,
            rss_bytes: rss,
            peak_rss_bytes: peak_rss,
        }
    }
}

/// Current resident set size from `/proc/self/statm` (0 if unreadable).
pub fn rss_bytes() -> u64 {
    let mut buf = [0u8; 128];
    // SAFETY: constant path; the fd is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/statm".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: fd is open.
    unsafe { libc::close(fd) };
    if n <= 0 {
        return 0;
    }
    // Fields: size resident shared ...; we want the second.
    let mut fields = buf[..n as usize].split(|&b| b == b' ');
    let _ = fields.next();
    let pages = fields.next().map_or(0, |f| {
        f.iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'))
    });
    pages * crate::sys::page_size() as u64
}

fn rusage() -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
    // SAFETY: ru is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru
}

/// Peak resident set size (`ru_maxrss`), bytes.
pub fn peak_rss_bytes() -> u64 {
    rusage().ru_maxrss.max(0) as u64 * 1024
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

fn pid() -> u64 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() as u64 }
}

struct Times {
    wall: f64,
    user: f64,
    sys: f64,
}

fn times() -> Times {
    let ru = rusage();
    let start = START_NS.load(Relaxed);
    Times {
        wall: now_ns().saturating_sub(start) as f64 / 1e9,
        user: seconds(ru.ru_utime),
        sys: seconds(ru.ru_stime),
    }
}

/// Prints the statistics table to `w` (LA_STATS=1, malloc_stats).
pub fn print_table(w: &mut Writer, counting: bool) {
    let s = summary(counting);
    let t = times();
    w.str("liballoc statistics (pid ").u64(pid()).str(")\n");
    if counting {
        w.str("  size class    live blocks      live bytes      peak bytes     allocations  bytes allocated\n");
        for (i, c) in CLASS.iter().enumerate() {
            let allocs = c.allocs.load(Relaxed);
            if allocs == 0 {
                continue;
            }
            w.str("  <= ");
            if i + 1 == CLASSES {
                w.str("  max");
            } else {
                w.u64_w(class_limit(i), 9);
            }
            w.u64_w(c.live_blocks.load(Relaxed), 15)
                .u64_w(c.live_bytes.load(Relaxed), 16)
                .u64_w(c.peak_bytes.load(Relaxed), 16)
                .u64_w(allocs, 16)
                .u64_w(c.alloc_bytes.load(Relaxed), 17)
                .str("\n");
        }
        let allocs: u64 = CLASS.iter().map(|c| c.allocs.load(Relaxed)).sum();
        let bytes: u64 = CLASS.iter().map(|c| c.alloc_bytes.load(Relaxed)).sum();
        w.str("  total        ")
            .u64_w(s.live_blocks, 15)
            .u64_w(s.live_bytes, 16)
            .u64_w(s.peak_bytes, 16)
            .u64_w(allocs, 16)
            .u64_w(bytes, 17)
            .str("\n");
        w.str("  calls: alloc ")
            .u64(CALLS_ALLOC.load(Relaxed))
            .str(", free ")
            .u64(CALLS_FREE.load(Relaxed))
            .str(", realloc ")
            .u64(CALLS_REALLOC.load(Relaxed))
            .str(", failed ")
            .u64(CALLS_FAILED.load(Relaxed))
            .str("\n");
    } else {
        w.str("  (per-class counters are kept only with LA_STATS set)\n");
    }
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
    let s = summary(true);
    let t = times();
    w.str("{\"liballoc_stats\":1,\"pid\":").u64(pid());
    w.str(",\"classes\":[");
    let mut first = true;
    let (mut allocs, mut bytes) = (0u64, 0u64);
    for (i, c) in CLASS.iter().enumerate() {
        let n = c.allocs.load(Relaxed);
        if n == 0 {
            continue;
        }
        let b = c.alloc_bytes.load(Relaxed);
        allocs += n;
        bytes += b;
        if !first {
            w.str(",");
        }
        first = false;
        w.str("{\"max_size\":")
            .u64(class_limit(i))
            .str(",\"live_blocks\":")
            .u64(c.live_blocks.load(Relaxed))
            .str(",\"live_bytes\":")
            .u64(c.live_bytes.load(Relaxed))
            .str(",\"peak_bytes\":")
            .u64(c.peak_bytes.load(Relaxed))
            .str(",\"allocs\":")
            .u64(n)
            .str(",\"alloc_bytes\":")
            .u64(b)
            .str("}");
    }
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
    fn classes_are_powers_of_two() {
        assert_eq!(class_of(1), 0);
        assert_eq!(class_of(16), 0);
        assert_eq!(class_of(17), 1);
        assert_eq!(class_of(32), 1);
        assert_eq!(class_of(33), 2);
        assert_eq!(class_of(4096), 8);
        assert_eq!(class_limit(8), 4096);
        assert_eq!(class_of(usize::MAX), CLASSES - 1);
    }
}
