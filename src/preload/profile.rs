//! The sampled heap profiler of the shim's normal mode (`LA_PROFILE`,
//! `LA_PROFILE_RATE`, `LA_PROFILE_INTERVAL`, `LA_PROFILE_SIGNAL`,
//! `la_profile_dump`).
//!
//! Sampling. Each thread counts down the bytes it allocates (requested
//! sizes) in its smp heap (`Heap::sample_left`, counted by `malloc`'s one
//! fast path in every mode, `smp::alloc_counted`, and by `smp::count_down`
//! elsewhere). When the count goes below zero the allocation is sampled
//! and a new count is drawn from an exponential distribution with mean
//! `rate` (from a per-thread xorshift generator, kept with the thread's
//! recording flag in a static-TLS slot, `src/sys/c/prof_tls.c`). The
//! sample points therefore form a Poisson process over the allocated
//! bytes: an allocation of `s` bytes is sampled with probability
//! `1 - exp(-s / rate)`, and `s / (1 - exp(-s / rate))` is the unbiased
//! weight of one of its samples (the bytes it stands for). With profiling
//! off, a count that runs out is set out of reach (once per heap) and
//! nothing here runs.
//!
//! A `realloc` that keeps an unsampled block where it is (the block still
//! holds the new size) is no new allocation and is not counted; one that
//! moves the block, or changes a sampled one kept at its start, counts as
//! a free and an allocation of the new size. So a buffer grown step by
//! step is counted once per move, not once per step. A shifted sample
//! (see [`SHIFT`]) that stays keeps its sample, with the new size
//! ([`resize_shifted`]).
//!
//! Samples. A sample records the block's usable size, the requested size,
//! its stack trace (up to [`MAX_FRAMES`] return addresses, see `unwind.rs`,
//! kept once per distinct trace in `depot.rs`), its allocation time and,
//! later, its free time. Records live in a
//! fixed table of [`RECORDS`] entries, mapped (with the index and the
//! trace store) by the process's first sample and touched as it fills (no
//! malloc), claimed in turn by a cursor; once the cursor has gone round,
//! a new sample takes the oldest freed record it meets, and that dropped
//! record is counted. Every field is an atomic, and a per-record sequence
//! number (a seqlock) lets a dump skip a record rewritten under it.
//!
//! Finding a sample on `free`. A sampled `malloc` (or `calloc`, or
//! `aligned_alloc` of malloc's alignment) is handed out [`SHIFT`] bytes
//! past its block's start ([`shift`]): in place when the block has 16
//! bytes to spare (most blocks above 1 KiB do), else in a block of the
//! class above, taken for it. `free`'s fast test confirms a block by its
//! start, so that address fails it by itself and goes to the shim's checked
//! path, which asks the profiler ([`free_sampled`], [`on_free`]) and frees
//! the block from its start; its neighbours are not touched. A sample that
//! cannot move (`realloc`'s result, `memalign`, a block that is the
//! caller's already) stays at its start, and its page is marked
//! (`smp::mark_sampled`): the page hides its blocks from the sampled one
//! on from the fast free check, whose test then fails at its bound with
//! the page found (`smp::free_fast_or`), and only that way out asks the
//! profiler before it frees the block. Huge blocks are checked on every
//! `free` and need neither. (Marking every sample's page cost `workloads
//! mixed` about two other blocks' frees through the slower path per
//! sample, and two atomic operations.) Live samples are indexed by the
//! address handed out in open-addressing tables (each word the address
//! and the record's index packed, probed over a bounded window so a lookup is short
//! whatever the history): a primary table of [`PRIMARY`] words, small
//! enough to stay in the caches, and an overflow table of [`SLOTS`] words
//! for samples whose primary window is full of live ones. They sit behind
//! a counting filter: a static array
//! of 4-bit counters indexed by a hash of the address, one more for each
//! live sample; only a non-zero counter (a sampled block, or a rare
//! collision) probes the table. Only the page's owner may mark it, so a
//! `realloc` that keeps another thread's block in place and draws a sample
//! loses that sample (counted as lost). Nothing takes a lock of its own, so
//! `fork()` cannot leave one held and a signal handler may dump; the
//! unwinder and the dump's list of modules go through the loader
//! (`dl_iterate_phdr`), whose lock is recursive and reset in a child of
//! `fork()`.
//!
//! Dumps. The raw format, version 3: a text header, then the traces and
//! samples as binary items (little-endian, unaligned, back to back), so
//! that a sample costs a dump a copy of its fields and no formatting; a
//! trace is written once per dump, before the first sample that refers to
//! it, so a dump costs a few words per sample whatever the depth of its
//! stack:
//!
//! ```text
//! la-profile 3
//! pid <pid>
//! rate <bytes>
//! time <ms since start>
//! dropped <freed samples dropped for room>
//! lost <samples not recorded: no free record, index word or trace room>
//! map <start>-<end> <perms> <offset> <path>       executable mappings with a path
//! data
//! 't' u32 id, u32 n, n x u64 pc                  a trace (9 + 8n bytes)
//! 's' u64 size, u64 requested, u64 alloc_ms,     a sample (37 bytes);
//!     u64 free_ms, u32 trace id                   free_ms u64::MAX: live
//! end
//! ```
//!
//! written with the shim's non-allocating writer, at exit (`LA_PROFILE`),
//! every `LA_PROFILE_INTERVAL` seconds, on SIGUSR2 (`LA_PROFILE_SIGNAL=1`)
//! and by `la_profile_dump(fd)`. Interval dumps are taken from the sampling
//! slow path when the interval has passed (not from a thread of their own:
//! no thread to start from inside `malloc`, nothing to restart after
//! `fork()`, and a program that allocates nothing has nothing new to show).
//! `%p` in the path is the process id. A path without `%p` belongs to the
//! first process that claims it when it starts (an exclusive `flock`, see
//! `claim_shared`); a child of `fork()`, and a process that starts while
//! another holds the claim (a program the profiled one runs), write to the
//! path with `.<pid>` appended, so that no two processes write into one
//! file. The first dump of a process empties its file; later ones append.
//! A process that took no sample writes no file of its own (see
//! [`at_exit`]).

use core::ffi::{c_int, c_void};
use core::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
    fence,
};

use super::options::Options;
use crate::allocators::smp;
use crate::diag::{maps, trace};
use crate::sys;
use crate::sys::tls::StaticSlot;
use crate::sys::write::Writer;

/// Most frames a sample's trace holds.
pub const MAX_FRAMES: usize = 64;
/// Records in the sample table (a power of two).
const RECORDS: usize = 1 << 16;
/// Words of the address index's overflow table (a power of two, twice
/// [`RECORDS`], so every record could be live in it).
const SLOTS: usize = 2 * RECORDS;
/// Words of the index's primary table (a power of two): 64 KiB, where a
/// program with up to a few thousand live samples keeps them all. A
/// sample goes to the overflow table only when its window here is full
/// of live ones. (One table of [`SLOTS`] words, 1 MiB hashed at random,
/// took a cache miss and, early on, a page fault for most samples.)
const PRIMARY: usize = 1 << 13;
/// Slots a key may lie beyond its home slot.
const WINDOW: usize = 32;
/// Buckets of the filter (a power of two), 4-bit counters packed 16 to a
/// word: 16 KiB, small enough to stay in the caches that `free` uses.
const FILTER: usize = 1 << 15;
/// A filter counter that reached this value stays there (a bucket that
/// once held 15 live samples always sends `free` to the index: slower,
/// never wrong).
const STUCK: u64 = 15;
/// The default sampling rate, in bytes.
pub const DEFAULT_RATE: u64 = 512 << 10;
/// The largest sampling rate accepted (1 TiB).
pub const MAX_RATE: u64 = 1 << 40;
/// Longest profile path kept (bytes, without the NUL).
pub const PATH_MAX: usize = 480;

/// Record states.
const EMPTY: u32 = 0;
const WRITING: u32 = 1;
const LIVE: u32 = 2;
const FREED: u32 = 3;

/// An index word that holds nothing, and one whose key was removed.
const SLOT_EMPTY: u64 = 0;
const SLOT_GONE: u64 = u64::MAX;
/// Bits of an index word that hold the record's index plus one.
const INDEX_BITS: u32 = 20;

/// `free_t` of a live sample.
const NOT_FREED: u64 = u64::MAX;

/// One sample.
struct Record {
    seq: AtomicU32,
    state: AtomicU32,
    size: AtomicUsize,
    requested: AtomicUsize,
    /// When it was allocated and freed ([`stamp`]s).
    alloc_t: AtomicU64,
    free_t: AtomicU64,
    /// The trace's id in the depot.
    trace: AtomicU32,
    /// Bytes between the block's start and the address handed out: 0, or
    /// [`SHIFT`] for a block that holds its sample past its start (see
    /// [`shift`]).
    shift: AtomicU32,
}

/// The sampler's per-thread state: the layout of `struct
/// liballoc_prof_thread` in `src/sys/c/prof_tls.c`.
#[repr(C, align(16))]
struct Thread {
    /// The xorshift state (0: not seeded yet).
    rng: u64,
    /// Non-zero while this thread records a sample or dumps.
    busy: u32,
}

unsafe extern "C" {
    fn liballoc_prof_thread_slot() -> *mut c_void;
}

static SLOT: StaticSlot = StaticSlot::new(liballoc_prof_thread_slot);

/// The calling thread's sampler state.
#[inline(always)]
fn thread() -> *mut Thread {
    SLOT.get().cast()
}

/// The sampler's read-mostly state, on one cache line. A sample, and the
/// free of one, read most of it; as statics of their own these were six
/// lines to fetch, and between samples the program evicts them (callgrind's
/// cache model, `workloads mixed`: about 4 of a sample's 12 first-level
/// misses were these).
#[repr(C, align(64))]
struct Hot {
    /// Whether profiling is on.
    on: AtomicBool,
    /// The state of the tables ([`tables_ready`]).
    tables: AtomicU8,
    /// Set once a sample was indexed in the overflow table; until then a
    /// lookup that misses the primary table stops there.
    spilled: AtomicBool,
    /// Whether the records' times are the time-stamp counter's ticks
    /// (`sys::time::ticks_steady`), else the coarse clock's nanoseconds
    /// (see [`stamp`]).
    steady: AtomicBool,
    /// The sampling rate in bytes.
    rate: AtomicU64,
    /// The record table and the address index (mapped by the first
    /// sample, see [`tables_ready`]).
    records: AtomicUsize,
    slots: AtomicUsize,
    /// `LA_PROFILE_INTERVAL` in ms (0: none).
    interval_ms: AtomicU64,
    /// The start of the process, for interval dumps (see [`now_ms`]).
    start_ms: AtomicU64,
    /// The stamp and the fine clock when profiling started (for
    /// [`Scale`]).
    start_stamp: AtomicU64,
    start_ns: AtomicU64,
}

// One line: the flags, then six words.
const _: () = assert!(core::mem::size_of::<Hot>() == 64);

static HOT: Hot = Hot {
    on: AtomicBool::new(false),
    tables: AtomicU8::new(TABLES_NONE),
    spilled: AtomicBool::new(false),
    steady: AtomicBool::new(false),
    rate: AtomicU64::new(DEFAULT_RATE),
    records: AtomicUsize::new(0),
    slots: AtomicUsize::new(0),
    interval_ms: AtomicU64::new(0),
    start_ms: AtomicU64::new(0),
    start_stamp: AtomicU64::new(0),
    start_ns: AtomicU64::new(0),
};

/// Records handed out so far (the claim cursor): every sampling thread
/// writes it, so it has a line of its own, apart from [`HOT`].
#[repr(C, align(64))]
struct Cursor(AtomicUsize);
static CURSOR: Cursor = Cursor(AtomicUsize::new(0));
/// Freed samples dropped for room, and samples lost (no record or no
/// index slot free).
static DROPPED: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);
/// The counting filter of live samples' addresses.
static COUNTS: [AtomicU64; FILTER / 16] = [const { AtomicU64::new(0) }; FILTER / 16];
/// When the next interval dump is due.
static NEXT_DUMP_MS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Set while a dump runs (dumps are skipped, not waited for, meanwhile).
static DUMPING: AtomicBool = AtomicBool::new(false);
/// The profile path (`LA_PROFILE`), NUL-terminated, and whether one is set.
static PATH: [AtomicU64; PATH_MAX / 8 + 1] = [const { AtomicU64::new(0) }; PATH_MAX / 8 + 1];
static PATH_LEN: AtomicUsize = AtomicUsize::new(0);
/// The process whose file has been emptied (0: none yet).
static FILE_PID: AtomicU32 = AtomicU32::new(0);
/// The process that read the options.
static START_PID: AtomicU32 = AtomicU32::new(0);
/// Whether the path could not be opened (warned once per process).
static WARNED_PID: AtomicU32 = AtomicU32::new(0);
/// Whether the signal is wanted.
static SIGNAL: AtomicBool = AtomicBool::new(false);
/// Whether the profile path names a file of its own per process (`%p`).
static PER_PROCESS: AtomicBool = AtomicBool::new(false);
/// Whether another process held the claim on the path (no `%p`) when this
/// one started: this one then writes `path.<pid>` (see `claim_shared`).
static CLAIMED_ELSEWHERE: AtomicBool = AtomicBool::new(false);

/// Milliseconds since the start of the process, by the coarse clock (for
/// the interval dumps' schedule).
fn now_ms() -> u64 {
    sys::now_ms().saturating_sub(HOT.start_ms.load(Relaxed))
}

/// A record's time stamp: the time-stamp counter where it is steady, else
/// the coarse clock (ns). The counter is one instruction: the coarse clock
/// reads the vDSO's data, a cache line the kernel's timer writes, so a
/// sample and its free each fetched it anew. A dump turns stamps into
/// milliseconds since the start ([`Scale`]).
#[inline(always)]
fn stamp() -> u64 {
    if HOT.steady.load(Relaxed) {
        sys::time::ticks()
    } else {
        sys::time::now_coarse_ns()
    }
}

/// Turns [`stamp`]s into milliseconds since profiling started: the
/// counter's rate is what it counted against the fine clock from the start
/// to the dump. A fixed-point factor (milliseconds per stamp times 2^64),
/// so that each conversion is one multiplication.
struct Scale {
    start: u64,
    factor: u64,
}

impl Scale {
    /// The scale as of now (a dump's).
    fn now() -> Scale {
        let start = HOT.start_stamp.load(Relaxed);
        let ms_per_stamp = if HOT.steady.load(Relaxed) {
            let stamps = sys::time::ticks().saturating_sub(start);
            let ns = sys::time::now_ns().saturating_sub(HOT.start_ns.load(Relaxed));
            if stamps == 0 {
                0.0
            } else {
                ns as f64 / stamps as f64 / 1e6
            }
        } else {
            1e-6
        };
        // A stamp is far less than a millisecond (a counter at 1 kHz would
        // be no clock); the cast saturates all the same.
        let factor = (ms_per_stamp * 18_446_744_073_709_551_616.0) as u64;
        Scale { start, factor }
    }

    /// Stamp `t` in milliseconds since the start.
    #[inline(always)]
    fn ms(&self, t: u64) -> u64 {
        ((u128::from(t.saturating_sub(self.start)) * u128::from(self.factor)) >> 64) as u64
    }
}

/// Turns profiling on as `opts` ask; false when it is not asked for or its
/// tables cannot be mapped (then a warning is printed when `report`).
pub fn init(opts: &Options, report: bool) -> bool {
    if !opts.profile_requested() {
        return false;
    }
    if HOT.on.load(Acquire) {
        return true;
    }
    HOT.start_ms.store(sys::now_ms(), Relaxed);
    let steady = sys::time::ticks_steady();
    HOT.steady.store(steady, Relaxed);
    HOT.start_ns.store(sys::time::now_ns(), Relaxed);
    HOT.start_stamp.store(stamp(), Relaxed);
    START_PID.store(sys::process_id(), Relaxed);
    HOT.rate
        .store(opts.profile_rate.unwrap_or(DEFAULT_RATE), Relaxed);
    let path = &opts.profile_path[..opts.profile_path_len];
    for (i, chunk) in path.chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        PATH[i].store(u64::from_ne_bytes(word), Relaxed);
    }
    PATH_LEN.store(path.len(), Relaxed);
    PER_PROCESS.store(path.windows(2).any(|w| w == b"%p"), Relaxed);
    if let Some(s) = opts.profile_interval_s {
        let ms = s.saturating_mul(1000);
        HOT.interval_ms.store(ms, Relaxed);
        NEXT_DUMP_MS.store(ms, Relaxed);
    }
    SIGNAL.store(opts.profile_signal, Relaxed);
    // The tables are mapped by the first sample (`tables_ready`).
    HOT.on.store(true, Release);
    if report && !path.is_empty() {
        // A path that cannot be written is reported when the program
        // starts, not when it ends. A file of its own is only made when
        // there is something to write in it (see `at_exit`): its directory
        // is checked. A path without `%p` is claimed (see `claim_shared`).
        let mut buf = [0u8; PATH_MAX + 32];
        let n = file_path(&mut buf);
        if PER_PROCESS.load(Relaxed) {
            if let Err(e) = sys::fd::dir_writable(&buf[..n]) {
                warn_unwritable(&buf[..n], e);
            }
        } else {
            claim_shared(&buf[..=n]);
        }
    }
    true
}

/// A path without `%p` at start-up, NUL-terminated in `path`: the first
/// process to claim it (an exclusive `flock`, held until it exits) empties
/// the file, so that what it leaves there is never an earlier run's, and
/// writes its dumps there. A process that starts while another holds the
/// claim (a program that the profiled one runs, as a shell script or
/// `make` does, or a second run at the same time) writes `path.<pid>`
/// instead, as a child of `fork()` does, and only when it took a sample.
/// Before, every process emptied the file when it started: of a script's
/// processes, only the last ones' dumps were left.
fn claim_shared(path: &[u8]) {
    let Ok(c) = core::ffi::CStr::from_bytes_with_nul(path) else {
        return;
    };
    match sys::fd::claim_file(c) {
        // The descriptor stays open: it holds the claim until the process
        // exits.
        Ok(Some(_fd)) => FILE_PID.store(sys::process_id(), Relaxed),
        Ok(None) => CLAIMED_ELSEWHERE.store(true, Relaxed),
        Err(e) => warn_unwritable(&path[..path.len() - 1], e),
    }
}

/// What the shim's constructor does when profiling is on: learn the
/// shim's own code range (for the traces), reset the dump flag in children
/// of `fork()`, install the signal handler when asked.
pub fn on_load() {
    trace::init();
    sys::thread::on_fork_child(fork_child);
    if SIGNAL.load(Relaxed) && !sys::on_signal(libc::SIGUSR2, on_signal) {
        Writer::fd(2).str("liballoc: warning: cannot catch SIGUSR2; LA_PROFILE_SIGNAL ignored\n");
    }
}

/// In the child of `fork()`: a dump the parent was writing is not the
/// child's.
extern "C" fn fork_child() {
    DUMPING.store(false, Relaxed);
    // A thread of the parent that was mapping the tables is not in the
    // child: the child's next sample maps them again (what the parent had
    // mapped so far stays unused), rather than wait for it forever.
    let _ = HOT
        .tables
        .compare_exchange(TABLES_MAPPING, TABLES_NONE, Relaxed, Relaxed);
    super::depot::fork_child();
    // The child's thread holds the parent's generator, and would draw the
    // same gaps: sample the same allocations as the parent, whatever they
    // both do next. It gets a generator of its own (the process id mixed
    // in: the seed's other inputs can be the parent's too). The count in
    // progress stays: it is as good as a fresh one.
    // SAFETY: the calling thread's own slot.
    let t = unsafe { &mut *thread() };
    if t.rng != 0 {
        t.rng = mix(seed() ^ u64::from(sys::process_id())) | 1;
    }
}

extern "C" fn on_signal(_sig: c_int) {
    let errno = crate::sys::errno::get();
    dump_to_file();
    crate::sys::errno::set(errno);
}

/// At exit: the final dump, when `LA_PROFILE` names a file. A process
/// that took no sample (and lost none) writes nothing to a file of its own
/// (`%p` in the path, or the `.<pid>` file of a child of `fork()` or of a
/// process that found the path claimed, see `claim_shared`): a
/// script's short processes mostly allocate too little to be sampled, and
/// creating a file for each of them can cost more than the processes
/// themselves (half a millisecond a file on the ext4 disk of the machine
/// this was measured on, where 65 of the 119 processes of profile-bench's
/// git script wrote an empty profile).
pub fn at_exit() {
    if !HOT.on.load(Acquire) || PATH_LEN.load(Relaxed) == 0 {
        return;
    }
    let pid = sys::process_id();
    let own_file = PER_PROCESS.load(Relaxed) || pid_suffixed(pid);
    let nothing = CURSOR.0.load(Relaxed) == 0 && LOST.load(Relaxed) == 0;
    if own_file && nothing && FILE_PID.load(Relaxed) != pid {
        return;
    }
    dump_to_file();
}

/// Bytes a shifted sample lies past its block's start (see [`shift`]):
/// malloc's alignment.
pub const SHIFT: usize = 16;

/// Samples block `p` of `size` requested bytes (`usable` bytes long), for
/// which the calling thread's countdown (`smp::alloc_counted`,
/// `smp::count_down`) just ran out; the block to hand out instead of `p`
/// (see [`on_alloc`] with `movable`; NULL when no memory is left).
///
/// # Safety
/// As for [`on_alloc`]; `usable` is `p`'s usable size.
#[cold]
#[inline(never)]
pub unsafe fn on_due(p: *mut u8, size: usize, usable: usize, movable: bool) -> *mut u8 {
    // SAFETY: caller's promise: a live block of ours.
    debug_assert!(usable == unsafe { smp::usable_size(p) });
    // SAFETY: the calling thread's own slot; the caller's promise on p.
    unsafe { sample(thread(), p, size, usable, movable) }
}

/// Counts an allocation of `size` requested bytes at `p` (live, just
/// made) against the calling thread's countdown; samples it when the count
/// runs out. Returns the address to hand out: `p`, or, when `movable` and
/// the allocation is sampled, usually an address [`SHIFT`] bytes into `p`
/// or into another block (see [`shift`]; `p` is then freed). NULL, with
/// `errno` ENOMEM, only when a block had to be traded and no memory was
/// left (`p` is freed then too).
///
/// # Safety
/// - `p` is a live block of the smp allocator of at least `size` bytes,
///   just returned by it and not yet handed to the caller;
/// - `movable`: nothing was written to `p`, and any address at least
///   `size` bytes long with `malloc`'s alignment does (no alignment was
///   asked beyond `malloc`'s), and the shim's mode frees the result
///   through [`on_free`]'s (a fast mode);
/// - profiling is on ([`init`] returned true).
#[inline(always)]
pub unsafe fn on_alloc(p: *mut u8, size: usize, movable: bool) -> *mut u8 {
    if smp::count_down(size) {
        // SAFETY: the caller's promise: a live block of ours.
        let usable = unsafe { smp::usable_size(p) };
        // SAFETY: the caller's promise.
        return unsafe { on_due(p, size, usable, movable) };
    }
    p
}

/// Where sampled block `p` (`size` requested bytes, `usable` bytes long)
/// is handed out: the address, its shift and the bytes usable from it;
/// [`SHIFT`] bytes into `p` when it has room, else into a block of `size +
/// SHIFT` bytes (then `p` is freed), else `p` itself with shift 0 (a block
/// the sampler must mark, see [`record`]).
///
/// Why: `free`'s fast test confirms a block by its start (an offset that
/// is a multiple of the class size), so an address past the start fails it
/// by itself, and the checked path asks the profiler ([`on_free`]), which
/// gives the start back. A sample at its block's start has to be hidden by
/// a mark on its page instead, and that mark hides every block above it
/// too (`smp::mark_sampled`): `workloads mixed` freed about two other
/// blocks per sample through the slower path, and the mark and its undoing
/// cost the sample two atomic operations. Large classes have room to
/// spare in most blocks (a class is up to 12.5% larger than its requests),
/// so most samples shift in place; the others take one block of the next
/// class. Not for a block aligned beyond `malloc`'s, one whose contents
/// are the caller's (`realloc`), or a huge one (huge blocks are checked on
/// every `free`, and need no mark).
///
/// # Safety
/// As for [`on_alloc`]; `usable` is `p`'s usable size.
unsafe fn shift(p: *mut u8, size: usize, usable: usize, movable: bool) -> (*mut u8, usize, usize) {
    if !movable || size > smp::size_class::LARGE_MAX - SHIFT {
        return (p, 0, usable);
    }
    if usable >= size + SHIFT {
        // SAFETY: p holds `size + SHIFT` bytes.
        return (unsafe { p.add(SHIFT) }, SHIFT, usable - SHIFT);
    }
    let Some(cls) = smp::size_class::class_for(size + SHIFT, SHIFT.trailing_zeros() as u8) else {
        return (p, 0, usable);
    };
    let q = smp::alloc_in(cls);
    if q.is_null() {
        return (p, 0, usable);
    }
    // SAFETY: the caller's promise: p is ours and unused.
    unsafe { smp::free(p) };
    let usable = smp::size_class::CLASS_SIZE[cls] - SHIFT;
    debug_assert!(usable >= size);
    // SAFETY: q holds `size + SHIFT` bytes.
    (unsafe { q.add(SHIFT) }, SHIFT, usable)
}

/// The countdown ran out: draw the next one, and record `p` (or where
/// [`shift`] moves it) unless this thread is already recording (an
/// allocation made by the unwinder). Returns the address to hand out.
///
/// Inlined into [`on_due`], its one caller: one call, not two, per
/// sample.
///
/// # Safety
/// `t` is the calling thread's slot; `usable` is `p`'s usable size; as
/// for [`on_alloc`] on the rest.
#[inline(always)]
unsafe fn sample(t: *mut Thread, p: *mut u8, size: usize, usable: usize, movable: bool) -> *mut u8 {
    // SAFETY: caller's promise: the calling thread's own slot.
    let t = unsafe { &mut *t };
    if t.rng == 0 {
        // The thread's first allocation: seed, then count it against the
        // first gap (the same law as any later allocation).
        t.rng = seed();
        let left = gap(&mut t.rng).saturating_sub(size as i64);
        if left >= 0 {
            smp::set_sample_left(left);
            return p;
        }
    }
    // The countdown lives in the thread's smp heap, where `malloc`'s fast
    // path counts it down (`smp::alloc_counted`).
    smp::set_sample_left(gap(&mut t.rng));
    if t.busy != 0 || !HOT.on.load(Acquire) {
        return p;
    }
    t.busy = 1;
    // SAFETY: caller's promise.
    let (mut q, shift, usable) = unsafe { shift(p, size, usable, movable) };
    // SAFETY: q lies `shift` bytes into a live block of ours, with
    // `usable` bytes from q.
    if !unsafe { record(q, size, shift, usable) } && shift != 0 {
        // Not recorded, so `free` could not find its block: hand out an
        // ordinary block instead (NULL and ENOMEM when no memory is left,
        // as for any allocation: this mode counts no failures).
        let b = smp::alloc(size.max(1), SHIFT.trailing_zeros() as u8);
        // SAFETY: q's block is ours and unused.
        unsafe { smp::free(q.sub(shift)) };
        if b.is_null() {
            sys::errno::set(libc::ENOMEM);
        }
        q = b;
    }
    maybe_interval_dump();
    t.busy = 0;
    q
}

/// A seed for a thread's generator: its thread pointer, the time and a
/// global counter, mixed.
fn seed() -> u64 {
    static SEEDS: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let s = SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed)
        ^ (sys::tls::thread_pointer() as u64).rotate_left(17)
        ^ sys::now_ms().wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mix(s) | 1
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The constants of [`neg_ln`] and [`gap`], on one cache line: as
/// literals the compiler spread them over five, and samples are rare
/// enough that the program evicts each of them in between (callgrind's
/// cache model, `workloads mixed`: five first-level misses a sample).
#[repr(C, align(64))]
struct LnConsts([f64; 8]);

static LN: LnConsts = LnConsts([
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    core::f64::consts::LN_2,
    core::f64::consts::SQRT_2,
    1.0 / (1u64 << 53) as f64,
]);

/// `r`, through an empty `asm!` block, so that the compiler cannot see
/// what it points to (and copy constants into literals): no instruction
/// of its own, where `black_box` stores the pointer and loads it back.
#[inline(always)]
fn opaque<T>(r: &'static T) -> &'static T {
    let mut p = r as *const T;
    // SAFETY: an empty block that leaves the pointer as it is.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) p, options(pure, readonly, nostack, preserves_flags))
    };
    // SAFETY: p is still `r`.
    unsafe { &*p }
}

/// `-ln(u)` for `u` in (0, 1], without libm (the shim does not load it
/// for one function: every library loaded costs each process resident
/// memory). `u = m * 2^e` with `m` in [1/sqrt(2), sqrt(2)); `ln(m) = 2
/// atanh(s)`, `s = (m - 1) / (m + 1)` in (-0.172, 0.172), by its series to
/// `s^9` (error below 1e-9, far inside the sampler's own randomness).
fn neg_ln(u: f64) -> f64 {
    debug_assert!(u > 0.0 && u <= 1.0);
    // Read through an opaque reference, so that the constants stay where
    // they are (one line), not copied into literals.
    let c = &opaque(&LN).0;
    let bits = u.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut mbits = (bits & ((1u64 << 52) - 1)) | (1023u64 << 52);
    if f64::from_bits(mbits) > c[6] {
        // Halve m (one less in its exponent), and count it in e.
        mbits -= 1u64 << 52;
        e += 1;
    }
    let m = f64::from_bits(mbits);
    let s = (m - c[0]) / (m + c[0]);
    let s2 = s * s;
    let t = (((c[4] * s2 + c[3]) * s2 + c[2]) * s2 + c[1]) * s2 + c[0];
    // Negated by its terms (a negation is a sign mask, one more constant).
    (-e) as f64 * c[5] - (s + s) * t
}

/// The next gap between samples: exponential with mean `rate`, from
/// xorshift64* (53 random bits give a uniform in (0, 1]).
fn gap(rng: &mut u64) -> i64 {
    let mut x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
    let c = &opaque(&LN).0;
    // Both conversions from i64: exact (below 2^53 and 2^40), and one
    // instruction each, with no constants of their own.
    let u = ((r >> 11) + 1) as i64 as f64 * c[7];
    let rate = HOT.rate.load(Relaxed).min(MAX_RATE) as i64 as f64;
    let g = neg_ln(u) * rate;
    debug_assert!((0.0..(1u64 << 47) as f64).contains(&g));
    // SAFETY: u >= 2^-53 gives -ln(u) <= 36.8, and rate <= 2^40: g is
    // finite, not negative and below 2^46, well within i64.
    let g = unsafe { g.to_int_unchecked::<i64>() };
    // At least one byte.
    g.max(1)
}

/// The record table.
#[inline(always)]
fn records() -> *const Record {
    HOT.records.load(Acquire) as *const Record
}

/// The address index: the primary table's words, then the overflow
/// table's.
#[inline(always)]
fn slots() -> *const AtomicU64 {
    HOT.slots.load(Acquire) as *const AtomicU64
}

/// Record `i`.
fn rec(i: usize) -> &'static Record {
    debug_assert!(i < RECORDS);
    // SAFETY: the table is mapped (ON implies it) and never unmapped; all
    // zero bytes are a valid Record (atomics); i < RECORDS.
    unsafe { &*records().add(i) }
}

/// One open-addressing table of index words: `1 << bits` words at `base`,
/// each a block's address (`p >> 4`, above [`INDEX_BITS`]) and its
/// record's index plus one, or [`SLOT_EMPTY`] or [`SLOT_GONE`].
#[derive(Clone, Copy)]
struct Table {
    base: *const AtomicU64,
    bits: u32,
}

impl Table {
    /// Word `i` (modulo the size).
    fn slot(self, i: usize) -> &'static AtomicU64 {
        // SAFETY: `base` holds `1 << bits` words, mapped for good (the
        // profile's tables are never unmapped; tests keep theirs alive).
        unsafe { &*self.base.add(i & ((1 << self.bits) - 1)) }
    }

    /// The word where the search for block `p` starts: the top bits of
    /// its hash, as the filter takes them. (The low bits of a
    /// multiplicative hash depend only on the low bits of the address:
    /// every block 2 MiB apart, such as the huge blocks at the start of
    /// 4 MiB slots, had the same home, and past the window's 32 words
    /// their samples were lost.)
    fn home(self, p: usize) -> usize {
        hash(p) >> (usize::BITS - self.bits)
    }

    /// Stores `word` for block `p` in its window; false when the window
    /// holds only live words.
    #[inline(always)]
    fn insert(self, p: usize, word: u64) -> bool {
        let home = self.home(p);
        for k in 0..WINDOW {
            let s = self.slot(home.wrapping_add(k));
            // Try the empty word first, with no read before (one fault on
            // a fresh page, see `claim`).
            let v = match s.compare_exchange(SLOT_EMPTY, word, Release, Relaxed) {
                Ok(_) => return true,
                Err(v) => v,
            };
            if v == SLOT_GONE && s.compare_exchange(v, word, Release, Relaxed).is_ok() {
                return true;
            }
        }
        false
    }

    /// Block `p`'s word, when it is there: removed with `TAKE`, else left
    /// in place.
    fn lookup<const TAKE: bool>(self, p: usize) -> Option<u64> {
        let key = (p >> 4) as u64;
        let home = self.home(p);
        for k in 0..WINDOW {
            let s = self.slot(home.wrapping_add(k));
            let v = s.load(Acquire);
            if v == SLOT_EMPTY {
                return None;
            }
            if v != SLOT_GONE
                && v >> INDEX_BITS == key
                && (!TAKE || s.compare_exchange(v, SLOT_GONE, AcqRel, Relaxed).is_ok())
            {
                return Some(v);
            }
        }
        None
    }
}

/// The index: a small primary table and the overflow table behind it,
/// used once `spilled` is set.
#[derive(Clone, Copy)]
struct Index {
    primary: Table,
    overflow: Table,
    spilled: &'static AtomicBool,
}

impl Index {
    /// Indexes live sample `i` of block `p`; false when both its windows
    /// are full.
    fn insert(self, p: usize, i: usize) -> bool {
        let word = (((p >> 4) as u64) << INDEX_BITS) | (i as u64 + 1);
        if self.primary.insert(p, word) {
            return true;
        }
        // Before the word is there: a lookup that may find it (the block's
        // free, which this allocation happens-before) sees the flag.
        self.spilled.store(true, Release);
        self.overflow.insert(p, word)
    }

    /// Block `p`'s record index when it is a live sample: removed from the
    /// index with `TAKE`, else left in it.
    fn lookup<const TAKE: bool>(self, p: usize) -> Option<usize> {
        let v = match self.primary.lookup::<TAKE>(p) {
            Some(v) => v,
            None if self.spilled.load(Acquire) => self.overflow.lookup::<TAKE>(p)?,
            None => return None,
        };
        Some((v & ((1 << INDEX_BITS) - 1)) as usize - 1)
    }
}

/// Indexes live sample `i` of block `p`; false when its windows are full.
fn insert(p: usize, i: usize) -> bool {
    index().insert(p, i)
}

/// Removes block `p` from the index (and its count from the filter); its
/// record's index when it was a live sample.
#[inline(always)]
fn take(p: usize) -> Option<usize> {
    let i = index().lookup::<true>(p)?;
    count(p, false);
    Some(i)
}

/// The profile's index (its tables are mapped: ON implies it).
#[inline(always)]
fn index() -> Index {
    let base = slots();
    Index {
        primary: Table {
            base,
            bits: PRIMARY.trailing_zeros(),
        },
        overflow: Table {
            // SAFETY: the mapping holds PRIMARY + SLOTS words.
            base: unsafe { base.add(PRIMARY) },
            bits: SLOTS.trailing_zeros(),
        },
        spilled: &HOT.spilled,
    }
}

/// The address hash (addresses are 16-byte aligned).
#[inline(always)]
fn hash(p: usize) -> usize {
    ((p >> 4) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize
}

/// The filter word of address `p`, and the shift of its counter there.
#[inline(always)]
fn bucket(p: usize) -> (&'static AtomicU64, u32) {
    let b = hash(p) >> (usize::BITS - FILTER.trailing_zeros());
    (&COUNTS[b / 16], (b % 16) as u32 * 4)
}

/// Whether block `p` may be a live sample (no false negatives): the
/// filter's test, which [`on_free`] makes first (and the shim's checked
/// `free` before [`free_sampled`]); profiling is on when it is true.
#[inline(always)]
pub fn maybe_sampled(p: usize) -> bool {
    let (w, shift) = bucket(p);
    (w.load(Relaxed) >> shift) & 15 != 0
}

/// Counts one live sample more (`up`) or less at `p` in the filter, unless
/// its counter is
/// [`STUCK`].
fn count(p: usize, up: bool) {
    let (w, shift) = bucket(p);
    let _ = w.fetch_update(Relaxed, Relaxed, |v| {
        let c = (v >> shift) & 15;
        if c == STUCK {
            None
        } else if up {
            Some(v + (1 << shift))
        } else {
            Some(v - (1 << shift))
        }
    });
}

/// States of the tables (`TABLES`).
const TABLES_NONE: u8 = 0;
const TABLES_MAPPING: u8 = 1;
const TABLES_READY: u8 = 2;
const TABLES_FAILED: u8 = 3;

/// Whether the tables are mapped, mapping them on the first call. They are
/// mapped by the first sample, not when the program starts: most processes
/// of a script take no sample (they allocate less than the rate), and each
/// would pay five mappings for nothing. A sample taken while another
/// thread maps them waits for it (the threads a program starts at once
/// take their first samples together: when they went on without the
/// tables, a thread preempted while it mapped them cost the others
/// hundreds of samples). After the mapping failed (warned once), samples
/// are lost.
#[inline(always)]
fn tables_ready() -> bool {
    // Mapped: the one test on a sample's path (the rest out of line).
    if HOT.tables.load(Acquire) == TABLES_READY {
        return true;
    }
    tables_ready_slow()
}

/// [`tables_ready`] before the tables are mapped: waits for, or makes,
/// the mapping.
#[cold]
#[inline(never)]
fn tables_ready_slow() -> bool {
    loop {
        match HOT.tables.load(Acquire) {
            TABLES_READY => return true,
            TABLES_FAILED => return false,
            // Another thread maps them: a few system calls. A child of
            // `fork()` taken meanwhile starts over (see `fork_child`).
            TABLES_MAPPING => sys::thread::yield_now(),
            _ => {
                if HOT
                    .tables
                    .compare_exchange(TABLES_NONE, TABLES_MAPPING, Acquire, Relaxed)
                    .is_ok()
                {
                    break;
                }
            }
        }
    }
    let records = sys::map_lazy(RECORDS * core::mem::size_of::<Record>());
    let slots = sys::map_lazy((PRIMARY + SLOTS) * 8);
    let ok = match (records, slots, super::depot::init()) {
        (Some(r), Some(s), true) => {
            HOT.slots.store(s.as_ptr() as usize, Release);
            HOT.records.store(r.as_ptr() as usize, Release);
            // Without the cache every sample unwinds: slower, still right.
            super::unwind::init();
            true
        }
        (r, s, _) => {
            // SAFETY: whichever mapping was made is ours and unused.
            unsafe {
                if let Some(r) = r {
                    sys::unmap(r.as_ptr(), RECORDS * core::mem::size_of::<Record>());
                }
                if let Some(s) = s {
                    sys::unmap(s.as_ptr(), (PRIMARY + SLOTS) * 8);
                }
            }
            Writer::fd(2)
                .str("liballoc: warning: cannot map the heap profile's tables; samples are lost\n");
            false
        }
    };
    HOT.tables
        .store(if ok { TABLES_READY } else { TABLES_FAILED }, Release);
    ok
}

/// Records a sample at `p` (`size` requested bytes, `usable` bytes usable
/// from `p`), handed out `shift` bytes past its block's start (see
/// [`shift`]); false when it could not be recorded (counted as lost).
///
/// # Safety
/// `p - shift` is a live block of the smp allocator, `usable + shift`
/// bytes long, and `usable >= size`.
unsafe fn record(p: *mut u8, size: usize, shift: usize, usable: usize) -> bool {
    debug_assert!(shift == 0 || shift == SHIFT);
    if !tables_ready() {
        LOST.fetch_add(1, Relaxed);
        return false;
    }
    let Some(trace) = super::unwind::capture_id(super::depot::intern) else {
        LOST.fetch_add(1, Relaxed);
        return false;
    };
    let Some(i) = claim() else {
        LOST.fetch_add(1, Relaxed);
        return false;
    };
    let r = rec(i);
    let s = r.seq.load(Relaxed);
    r.seq.store(s.wrapping_add(1), Relaxed);
    fence(Release);
    r.size.store(usable, Relaxed);
    r.requested.store(size, Relaxed);
    r.alloc_t.store(stamp(), Relaxed);
    r.free_t.store(NOT_FREED, Relaxed);
    r.trace.store(trace, Relaxed);
    r.shift.store(shift as u32, Relaxed);
    r.seq.store(s.wrapping_add(2), Release);
    // A shifted block leaves `free`'s fast path by itself; any other needs
    // the mark, which sends its `free` to the shim's slow path, where
    // `on_free` finds it (the fast path has no test for samples).
    // SAFETY: caller's promise: a live block of ours.
    if shift != 0 || unsafe { smp::mark_sampled(p) } {
        if insert(p as usize, i) {
            count(p as usize, true);
            r.state.store(LIVE, Release);
            return true;
        }
        if shift == 0 {
            // SAFETY: marked just above.
            unsafe { smp::unmark_sampled(p) };
        }
    }
    r.state.store(EMPTY, Release);
    LOST.fetch_add(1, Relaxed);
    false
}

/// Claims a record for writing: an unused one, or else the oldest freed
/// one the cursor meets (counted as dropped). `None` when the next records
/// are all live.
fn claim() -> Option<usize> {
    for _ in 0..256 {
        let c = CURSOR.0.fetch_add(1, Relaxed);
        let i = c & (RECORDS - 1);
        let r = rec(i);
        if c < RECORDS {
            // The first pass: the record is unused, and the cursor hands
            // it to this thread alone, so a store claims it (no atomic
            // read-modify-write, and no read before the write, so that a
            // fresh page faults once: a read would map the zero page, and
            // the write fault again to replace it).
            r.state.store(WRITING, Relaxed);
            return Some(i);
        }
        let st = r.state.load(Relaxed);
        if (st == EMPTY || st == FREED)
            && r.state
                .compare_exchange(st, WRITING, Acquire, Relaxed)
                .is_ok()
        {
            if st == FREED {
                DROPPED.fetch_add(1, Relaxed);
            }
            return Some(i);
        }
    }
    None
}

/// Notes the free of block `p` (called before the block is freed, so that
/// its address cannot be sampled again first); returns the start of the
/// block to free: `p`, or for a sample made by [`shift`] the block
/// it lies in.
///
/// # Safety
/// `p` is a live block of the smp allocator that the caller owns (or such
/// a block's shifted sample), or a pointer that is not a block of it at
/// all (a misuse about to be reported): only an indexed sample's page is
/// touched.
#[inline(always)]
pub unsafe fn on_free(p: *mut u8) -> *mut u8 {
    if maybe_sampled(p as usize) {
        // SAFETY: caller's promise.
        return unsafe { on_free_slow(p) };
    }
    p
}

/// # Safety
/// As for [`on_free`].
#[cold]
#[inline(never)]
unsafe fn on_free_slow(p: *mut u8) -> *mut u8 {
    // SAFETY: caller's promise.
    let Some((i, shift)) = (unsafe { take_for_free(p) }) else {
        return p;
    };
    finish_free_inline(i);
    // SAFETY: a shifted sample lies `shift` bytes into its block.
    unsafe { p.sub(shift) }
}

/// [`on_free`] once [`maybe_sampled`] said true, for the shim's checked
/// `free`, into which it is inlined: a shifted sample's block is freed
/// here (true), before its record is finished, so that the interval dump
/// the record may call for comes last, with nothing left to do after it
/// (a tail call, and no register to save on the way). False when `p` is
/// for the caller to free (a sample at its block's start, now unmarked,
/// or no sample).
///
/// # Safety
/// As for [`on_free`].
#[inline(always)]
pub unsafe fn free_sampled(p: *mut u8) -> bool {
    // SAFETY: caller's promise.
    let Some((i, shift)) = (unsafe { take_for_free(p) }) else {
        return false;
    };
    if shift == 0 {
        finish_free_inline(i);
        return false;
    }
    // The index no longer has p, so a new sample at its address can be
    // indexed at once; the record still says live for a moment, which a
    // concurrent dump may show.
    // SAFETY: the caller's live block, `shift` bytes before p.
    unsafe { smp::free(p.sub(shift)) };
    finish_free_inline(i);
    true
}

/// Whether `p` may be in the index, for a caller that has not tested
/// anything yet: profiling is on, the filter counts a sample there, and
/// the index exists (a filter counter is only raised after the first
/// sample mapped it, but read without ordering).
#[inline(always)]
fn may_be_indexed(p: *mut u8) -> bool {
    HOT.on.load(Acquire) && maybe_sampled(p as usize) && !slots().is_null()
}

/// The free of `p`, once the filter said it may be a sample: takes it out
/// of the index (unmarking its page when it is not shifted); its record's
/// index and its shift, or `None` when `p` is no sample.
///
/// # Safety
/// As for [`on_free`].
#[inline(always)]
unsafe fn take_for_free(p: *mut u8) -> Option<(usize, usize)> {
    // `take_sample` without the tests `on_free` made (the filter counter
    // is non-zero, so profiling is on); the index is tested, as there.
    if slots().is_null() {
        return None;
    }
    let i = take(p as usize)?;
    let shift = rec(i).shift.load(Relaxed) as usize;
    if shift == 0 {
        // SAFETY: caller's promise; a block in the index at its start was
        // marked by `record` (or `put_back`) when it went in.
        unsafe { smp::unmark_sampled(p) };
    }
    Some((i, shift))
}

/// The usable size of `p` when it is a live sample made by
/// [`shift`] (which `smp` sees as no block's start), else `None`.
///
/// # Safety
/// `p` is any pointer: only the index is read.
pub unsafe fn shifted_size(p: *mut u8) -> Option<usize> {
    if !may_be_indexed(p) {
        return None;
    }
    let r = rec(index().lookup::<false>(p as usize)?);
    (r.shift.load(Relaxed) != 0).then(|| r.size.load(Relaxed))
}

/// Records that shifted sample `p` (see [`shifted_size`]) now holds
/// `size` requested bytes: a `realloc` that keeps it where it is. The
/// sample goes on (a block that stays is no new allocation, as for an
/// unsampled one), with its new size; it could not end here, since only
/// the index lets `free` find the block's start.
///
/// # Safety
/// `p` is a live shifted sample the caller owns, holding `size` bytes.
pub unsafe fn resize_shifted(p: *mut u8, size: usize) {
    let Some(i) = index().lookup::<false>(p as usize) else {
        debug_assert!(false, "resize of a shifted sample not in the index");
        return;
    };
    let r = rec(i);
    debug_assert!(r.shift.load(Relaxed) != 0 && size <= r.size.load(Relaxed));
    // The seqlock, as `record` writes: a dump skips the record meanwhile.
    let s = r.seq.load(Relaxed);
    r.seq.store(s.wrapping_add(1), Relaxed);
    fence(Release);
    r.requested.store(size, Relaxed);
    r.seq.store(s.wrapping_add(2), Release);
}

/// A sampled block about to be moved (`realloc`): removed from the index;
/// hand the result to [`finish_free`] or [`put_back`]. Not for a shifted
/// sample ([`shifted_size`]), which `realloc` frees through [`on_free`]
/// once its new block is made.
///
/// # Safety
/// `p` is a live block of the smp allocator that the caller owns, not a
/// shifted sample, or not a block at all (only an indexed sample's page is
/// touched).
pub unsafe fn take_sample(p: *mut u8) -> Option<usize> {
    if !may_be_indexed(p) {
        return None;
    }
    let i = take(p as usize)?;
    debug_assert!(rec(i).shift.load(Relaxed) == 0);
    // SAFETY: caller's promise; a block in the index was marked by
    // `record` (or `put_back`) when it went in.
    unsafe { smp::unmark_sampled(p) };
    Some(i)
}

/// Marks sample `i` (from [`take_sample`]) freed now.
pub fn finish_free(i: usize) {
    finish_free_inline(i);
}

/// [`finish_free`], inlined into the sampled `free` ([`on_free_slow`]).
#[inline(always)]
fn finish_free_inline(i: usize) {
    let r = rec(i);
    r.free_t.store(stamp(), Relaxed);
    r.state.store(FREED, Release);
    maybe_interval_dump();
}

/// Puts sample `i` of block `p` back (a `realloc` that failed).
///
/// # Safety
/// `p` is a live block of the smp allocator that the caller owns, and `i`
/// came from [`take_sample`] of it.
pub unsafe fn put_back(p: *mut u8, i: Option<usize>) {
    let Some(i) = i else { return };
    // SAFETY: caller's promise.
    if unsafe { smp::mark_sampled(p) } {
        if insert(p as usize, i) {
            count(p as usize, true);
            return;
        }
        // SAFETY: marked just above.
        unsafe { smp::unmark_sampled(p) };
    }
    // Another thread's page (no mark possible), or no room: the sample
    // ends here, as if freed.
    finish_free(i);
}

/// Dumps to the profile file when the interval has passed (a load and a
/// test when no interval is set).
#[inline(always)]
fn maybe_interval_dump() {
    let interval = HOT.interval_ms.load(Relaxed);
    if interval != 0 {
        interval_dump(interval);
    }
}

/// [`maybe_interval_dump`] with an interval of `interval` ms set.
#[cold]
#[inline(never)]
fn interval_dump(interval: u64) {
    let now = now_ms();
    let due = NEXT_DUMP_MS.load(Relaxed);
    if now >= due
        && NEXT_DUMP_MS
            .compare_exchange(due, now + interval, Relaxed, Relaxed)
            .is_ok()
    {
        dump_to_file();
    }
}

/// Whether process `pid` writes a path without `%p` with `.<pid>`
/// appended: a child of `fork()`, or a process that found the path claimed
/// (see `claim_shared`).
fn pid_suffixed(pid: u32) -> bool {
    pid != START_PID.load(Relaxed) || CLAIMED_ELSEWHERE.load(Relaxed)
}

/// Writes the path of this process's profile file (NUL-terminated) into
/// `out`; its length without the NUL.
fn file_path(out: &mut [u8; PATH_MAX + 32]) -> usize {
    let len = PATH_LEN.load(Relaxed);
    let mut raw = [0u8; (PATH_MAX / 8 + 1) * 8];
    // The words that hold the path, not the whole (4 KiB) array.
    for (i, w) in PATH.iter().take(len.div_ceil(8)).enumerate() {
        raw[i * 8..i * 8 + 8].copy_from_slice(&w.load(Relaxed).to_ne_bytes());
    }
    let raw = &raw[..len];
    let pid = sys::process_id();
    let mut digits = [0u8; 10];
    let mut nd = 0;
    let mut v = pid;
    loop {
        digits[9 - nd] = b'0' + (v % 10) as u8;
        nd += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = &digits[10 - nd..];
    // Runs of the path copied whole, `%p` replaced by the digits (one copy
    // per run: every process formats its path when it starts).
    let mut n = 0;
    let mut push = |out: &mut [u8; PATH_MAX + 32], b: &[u8]| {
        let k = b.len().min(PATH_MAX + 31 - n);
        out[n..n + k].copy_from_slice(&b[..k]);
        n += k;
    };
    let mut has_pid = false;
    let mut rest = raw;
    while let Some(i) = rest.windows(2).position(|w| w == b"%p") {
        push(out, &rest[..i]);
        push(out, digits);
        has_pid = true;
        rest = &rest[i + 2..];
    }
    push(out, rest);
    if !has_pid && pid_suffixed(pid) {
        push(out, b".");
        push(out, digits);
    }
    out[n] = 0;
    n
}

/// Opens this process's profile file: emptied on the process's first
/// open, appended to afterwards. A one-line warning (once per process) when
/// it cannot be opened.
fn open_profile() -> Option<c_int> {
    let mut buf = [0u8; PATH_MAX + 32];
    let n = file_path(&mut buf);
    let Ok(path) = core::ffi::CStr::from_bytes_with_nul(&buf[..=n]) else {
        return None;
    };
    let pid = sys::process_id();
    let r = if FILE_PID.load(Relaxed) == pid {
        sys::open_append(path).ok_or(0)
    } else {
        sys::open_truncate(path)
    };
    match r {
        Ok(fd) => {
            FILE_PID.store(pid, Relaxed);
            Some(fd)
        }
        Err(e) => {
            warn_unwritable(&buf[..n], e);
            None
        }
    }
}

/// Warns (once per process) that profile file `path` cannot be written,
/// for `errno` `e` (0: unknown).
fn warn_unwritable(path: &[u8], e: c_int) {
    let pid = sys::process_id();
    if WARNED_PID.swap(pid, Relaxed) == pid {
        return;
    }
    let mut w = Writer::fd(2);
    w.str("liballoc: warning: cannot open the heap profile file ")
        .bytes(path);
    // Not strerror, which may allocate for its translation.
    match e {
        0 => {}
        libc::EACCES | libc::EPERM => {
            w.str(": permission denied");
        }
        libc::ENOENT => {
            w.str(": no such directory");
        }
        libc::EISDIR => {
            w.str(": is a directory");
        }
        libc::EROFS => {
            w.str(": read-only file system");
        }
        _ => {
            w.str(": errno ").u64(e as u64);
        }
    }
    w.str("; no profile is written\n");
}

/// Writes a dump's `map` lines: the mappings of executable code from a
/// file, as `/proc/self/maps` shows them (`la-prof` finds each frame's file
/// and offset there). They come from the loader's list of modules, each
/// executable segment mapped from its page down in the file as the loader
/// maps it: reading and parsing the maps file cost every process that
/// dumps a profile some 40,000 instructions and a dozen system calls.
/// When a module's name is not an absolute path (the vDSO's aside, which
/// has no file) or the program's own cannot be read, the maps file is read
/// instead, whose paths the kernel resolves.
fn write_maps<const N: usize>(w: &mut Writer<N>) {
    let mut exe = [0u8; PATH_MAX];
    let exe_len = sys::fd::read_link(c"/proc/self/exe", &mut exe).unwrap_or(0);
    let exe = &exe[..exe_len];
    fn path_of<'a>(m: &sys::loader::Module<'_>, exe: &'a [u8]) -> Option<&'a [u8]> {
        let name = if m.is_main_program() { exe } else { m.name() };
        // No slash at all: the vDSO (`linux-vdso.so.1`), from no file.
        name.contains(&b'/').then_some(name)
    }
    let named = |m: &sys::loader::Module<'_>| path_of(m, exe);
    let mut absolute = exe.first() == Some(&b'/') && exe_len < PATH_MAX;
    sys::loader::for_each_module(|m| {
        absolute &= named(m).is_none_or(|n| n.first() == Some(&b'/'));
        absolute
    });
    fn line<const N: usize>(
        w: &mut Writer<N>,
        lo: usize,
        hi: usize,
        perms: &[u8],
        off: usize,
        name: &[u8],
    ) {
        w.str("map ")
            .hex(lo)
            .str("-")
            .hex(hi)
            .str(" ")
            .bytes(perms)
            .str(" ")
            .hex(off)
            .str(" ")
            .bytes(name)
            .str("\n");
    }
    if !absolute {
        maps::for_each(|m| {
            if m.executable && m.name.first() == Some(&b'/') {
                line(w, m.lo, m.hi, m.perms, m.offset, m.name);
            }
            true
        });
        return;
    }
    let page = sys::page_size();
    sys::loader::for_each_module(|m| {
        let Some(name) = named(m) else {
            return true;
        };
        for seg in m.segments().filter(|seg| seg.executable) {
            let perms: &[u8] = if seg.writable { b"rwxp" } else { b"r-xp" };
            let (lo, hi) = (seg.lo & !(page - 1), seg.hi.next_multiple_of(page));
            line(w, lo, hi, perms, seg.offset & !(page - 1), name);
        }
        true
    });
}

/// Appends a dump to the profile file (`LA_PROFILE`, or
/// `la-profile.%p.raw` when only the signal is set).
fn dump_to_file() {
    if !HOT.on.load(Acquire) {
        return;
    }
    if PATH_LEN.load(Relaxed) == 0 {
        const DEFAULT: &[u8] = b"la-profile.%p.raw";
        for (i, chunk) in DEFAULT.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            PATH[i].store(u64::from_ne_bytes(word), Relaxed);
        }
        PATH_LEN.store(DEFAULT.len(), Relaxed);
    }
    let Some(fd) = open_profile() else {
        return;
    };
    dump(fd);
    sys::close(fd);
}

/// Bytes of a dump's trace item: the tag `t`, the trace's id and its frame
/// count (the `n` return addresses follow, 8 bytes each).
fn trace_item(trace: u32, n: usize) -> [u8; 9] {
    debug_assert!(n <= MAX_FRAMES);
    let mut b = [0u8; 9];
    b[0] = b't';
    b[1..5].copy_from_slice(&trace.to_le_bytes());
    b[5..9].copy_from_slice(&(n as u32).to_le_bytes());
    b
}

/// Bytes of a dump's sample item: the tag `s`, the usable and requested
/// sizes, the allocation and free times in ms (`u64::MAX`: live), and the
/// trace's id, little-endian.
#[inline(always)]
fn sample_item(size: u64, requested: u64, alloc_ms: u64, free_ms: u64, trace: u32) -> [u8; 37] {
    let mut b = [0u8; 37];
    b[0] = b's';
    b[1..9].copy_from_slice(&size.to_le_bytes());
    b[9..17].copy_from_slice(&requested.to_le_bytes());
    b[17..25].copy_from_slice(&alloc_ms.to_le_bytes());
    b[25..33].copy_from_slice(&free_ms.to_le_bytes());
    b[33..37].copy_from_slice(&trace.to_le_bytes());
    b
}

/// Writes one dump to `fd`; false when profiling is off or another dump is
/// being written.
pub fn dump(fd: c_int) -> bool {
    if !HOT.on.load(Acquire) || DUMPING.swap(true, Acquire) {
        return false;
    }
    let old = sys::disable_cancel();
    // A larger buffer than the shim's messages use: a dump is long, and
    // each buffer is one `write`.
    let mut w = Writer::<4096>::fd_sized(fd);
    let scale = Scale::now();
    w.str("la-profile 3\npid ")
        .u64(u64::from(sys::process_id()))
        .str("\nrate ")
        .u64(HOT.rate.load(Relaxed))
        .str("\ntime ")
        .u64(scale.ms(stamp()))
        .str("\ndropped ")
        .u64(DROPPED.load(Relaxed))
        .str("\nlost ")
        .u64(LOST.load(Relaxed))
        .str("\n");
    write_maps(&mut w);
    w.str("data\n");
    // No record before the tables were mapped.
    let used = if records().is_null() {
        0
    } else {
        CURSOR.0.load(Relaxed).min(RECORDS)
    };
    super::depot::start_dump();
    let mut frames = [0usize; MAX_FRAMES];
    for i in 0..used {
        let r = rec(i);
        let st = r.state.load(Acquire);
        if st != LIVE && st != FREED {
            continue;
        }
        let s1 = r.seq.load(Acquire);
        if s1 & 1 != 0 {
            continue;
        }
        let size = r.size.load(Relaxed);
        let requested = r.requested.load(Relaxed);
        let alloc_t = r.alloc_t.load(Relaxed);
        let free_t = if st == FREED {
            r.free_t.load(Relaxed)
        } else {
            NOT_FREED
        };
        let trace = r.trace.load(Relaxed);
        fence(Acquire);
        if r.seq.load(Relaxed) != s1 {
            continue;
        }
        // Each trace is written once per dump, before the first sample
        // that refers to it (depot entries never change once published).
        if super::depot::first_write(trace) {
            let n = super::depot::frames(trace, &mut frames);
            w.bytes(&trace_item(trace, n));
            for &pc in &frames[..n] {
                w.bytes(&(pc as u64).to_le_bytes());
            }
        }
        let free_ms = if free_t == NOT_FREED {
            u64::MAX
        } else {
            scale.ms(free_t)
        };
        w.bytes(&sample_item(
            size as u64,
            requested as u64,
            scale.ms(alloc_t),
            free_ms,
            trace,
        ));
    }
    w.str("end\n");
    w.flush();
    sys::restore_cancel(old);
    DUMPING.store(false, Release);
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn neg_ln_matches_the_library_logarithm() {
        let mut u = 1.0f64;
        while u > 1e-300 {
            for v in [u, u * 0.7, u * 0.5000001] {
                let (got, want) = (super::neg_ln(v), -v.ln());
                assert!(
                    (got - want).abs() <= 1e-8 * want.abs().max(1.0),
                    "{v}: {got} vs {want}"
                );
            }
            u *= 0.37;
        }
        assert_eq!(super::neg_ln(1.0), 0.0);
        let tiny = 1.0 / (1u64 << 53) as f64;
        assert!((super::neg_ln(tiny) - 53.0 * core::f64::consts::LN_2).abs() < 1e-9);
    }

    use super::*;

    #[test]
    fn stamps_scale_to_milliseconds_since_the_start() {
        // Half a millisecond a stamp.
        let s = Scale {
            start: 1000,
            factor: 1 << 63,
        };
        assert_eq!(s.ms(1000), 0);
        assert_eq!(s.ms(1010), 5);
        assert_eq!(s.ms(1011), 5);
        // A stamp from before the start (another core's counter a little
        // behind) is the start, not a wrapped number.
        assert_eq!(s.ms(990), 0);
        assert_eq!(s.ms(u64::MAX), (u64::MAX - 1000) / 2);
    }

    #[test]
    fn gaps_have_the_rate_as_mean() {
        HOT.rate.store(1000, Relaxed);
        let mut rng = seed();
        let n = 200_000;
        let sum: i64 = (0..n).map(|_| gap(&mut rng)).sum();
        let mean = sum as f64 / n as f64;
        // Standard error 1000 / sqrt(200000) ~ 2.2: 5 of them.
        assert!((mean - 1000.0).abs() < 12.0, "mean gap {mean}");
        HOT.rate.store(DEFAULT_RATE, Relaxed);
    }

    #[test]
    fn blocks_2_mib_apart_have_different_homes() {
        // Huge blocks one page into 4 MiB slots, and 100 KiB blocks.
        for (base, step) in [
            (0x7f00_0000_1000usize, 4usize << 20),
            (0x7f10_0000_0400, 100 << 10),
        ] {
            // 256 keys in 131072 words, and in 8192: a few collisions at
            // most (about 4 expected in the primary table).
            for (bits, min) in [
                (SLOTS.trailing_zeros(), 250),
                (PRIMARY.trailing_zeros(), 240),
            ] {
                let t = Table {
                    base: core::ptr::null(),
                    bits,
                };
                let mut homes: std::vec::Vec<usize> =
                    (0..256).map(|i| t.home(base + i * step)).collect();
                assert!(homes.iter().all(|&h| h < 1 << bits));
                homes.sort_unstable();
                homes.dedup();
                assert!(homes.len() >= min, "{} distinct homes of 256", homes.len());
            }
        }
    }

    #[test]
    fn samples_past_a_full_primary_window_go_to_the_overflow_table() {
        // A primary table of 16 words (every window wraps all of it) and
        // an overflow table of 1024.
        let primary: std::vec::Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(0)).collect();
        let overflow: std::vec::Vec<AtomicU64> = (0..1024).map(|_| AtomicU64::new(0)).collect();
        static FLAG: AtomicBool = AtomicBool::new(false);
        let ix = Index {
            primary: Table {
                base: primary.as_ptr(),
                bits: 4,
            },
            overflow: Table {
                base: overflow.as_ptr(),
                bits: 10,
            },
            spilled: &FLAG,
        };
        let block = |k: usize| 0x7f00_0010_0000usize + k * 48;
        // A lookup before anything spilled stops at the primary table.
        assert_eq!(ix.lookup::<true>(block(0)), None);
        for k in 0..16 {
            assert!(ix.insert(block(k), k));
        }
        assert!(!FLAG.load(Relaxed), "16 keys fit the primary table");
        for k in 16..40 {
            assert!(ix.insert(block(k), k));
        }
        assert!(FLAG.load(Relaxed));
        assert_eq!(primary.iter().filter(|w| w.load(Relaxed) != 0).count(), 16);
        assert_eq!(overflow.iter().filter(|w| w.load(Relaxed) != 0).count(), 24);
        // Every key is found, in either table, with its record: left in
        // place by a find, and taken once.
        for k in (0..40).rev() {
            assert_eq!(ix.lookup::<false>(block(k)), Some(k), "block {k}");
            assert_eq!(ix.lookup::<true>(block(k)), Some(k), "block {k}");
            assert_eq!(ix.lookup::<true>(block(k)), None, "block {k} again");
            assert_eq!(ix.lookup::<false>(block(k)), None, "block {k} taken");
        }
        // Freed primary words are used again before the overflow table.
        assert!(ix.insert(block(99), 99));
        assert_eq!(
            overflow
                .iter()
                .filter(|w| w.load(Relaxed) == SLOT_GONE)
                .count(),
            24
        );
        assert_eq!(ix.lookup::<true>(block(99)), Some(99));
    }

    #[test]
    fn hash_words_round_trip() {
        let p = 0x7fff_1234_5670usize;
        let word = (((p >> 4) as u64) << INDEX_BITS) | 65536;
        assert_eq!(word >> INDEX_BITS, (p >> 4) as u64);
        assert_eq!((word & ((1 << INDEX_BITS) - 1)) - 1, 65535);
        assert_ne!(word, SLOT_GONE);
    }
}
