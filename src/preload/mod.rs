//! The malloc shim: `liballoc_preload.so` puts the C `malloc` family and
//! the C++ `operator new`/`delete` family of any program on the smp
//! allocator (`LD_PRELOAD=liballoc_preload.so program`).
//!
//! Compiled only with the `preload` cargo feature, into its own static
//! library that `mk/preload.mk` links with a version script exporting only
//! the malloc family; `liballoc.so` never contains these symbols.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the core every symbol shares: alloc, free, realloc, pointer checks, start-up |
//! | `symbols.rs` | the exported C symbols and their POSIX/C17/glibc semantics |
//! | `cxx.rs`, `cxx_new.c` | `operator delete` (Rust) and `operator new` (C, so that `std::bad_alloc` can propagate) |
//! | `introspect.rs` | glibc introspection: `mallinfo`, `mallinfo2`, `malloc_stats`, `malloc_trim`, `malloc_info`, `mallopt` |
//! | `options.rs` | `LA_*` environment options, read without allocating |
//! | `stats.rs` | the smp allocator's statistics, the shim's per-class counters (`LA_STATS`), the table / JSON output |
//! | `fatal.rs` | `liballoc: fatal: ...` reports followed by `abort()` |
//! | `debug_mode.rs` | `LA_DEBUG=1`: the debug allocator behind every entry point, its leak check at exit |
//! | `profile.rs` | the sampled heap profiler (`LA_PROFILE`, `la_profile_dump`) |
//! | `depot.rs` | the profiler's store of distinct stack traces |
//! | `unwind.rs` | stack traces of profile samples through code without frame pointers |
//!
//! How it works. Every entry point tests one word, [`FLAGS`]: when it is
//! exactly [`READY`] (the shim is initialised, no statistics and no failure
//! injection are wanted) the call goes straight to the smp allocator; when
//! it is exactly `READY | DEBUG`, allocations and `free` go straight to
//! the debug allocator (`debug_mode.rs`; `malloc` and `free` get there by
//! jumps only, so the trace starts right at the caller's call). Any
//! other value takes the slow path, which initialises on first use (reading
//! the environment without allocating, so it works for the first
//! allocation of the process, from the dynamic loader or TLS set-up), and
//! then counts and injects failures as asked. With the heap profiler on
//! (`READY | PROFILE`) the fast paths are the same ([`FAST`]): `malloc`'s
//! counts the sampling countdown down in every mode (one subtraction in the
//! thread's heap; a countdown that runs out leaves through `alloc_due`), and
//! a page holding a sampled block fails `free`'s check, so the block's
//! `free` reaches `free_cold`, which tells the profiler (see `profile.rs`).
//! There is no lock anywhere, so `fork()` cannot leave one held;
//! initialisation is idempotent, so two threads racing through it agree.
//!
//! Every block is at least 16-byte aligned (`max_align_t`), so `free`
//! rejects a misaligned pointer with one test before asking the smp
//! allocator to confirm the pointer is a live block start and free it, in
//! one lookup ([`smp::free_fast`]; huge blocks and anything it does not
//! confirm go to [`smp::free_checked`]): a pointer that is not a live block
//! start is reported by [`fatal`] and the process aborts, instead of
//! corrupting the heap.
//!
//! Choices where the standards leave room (documented in `symbols.rs`):
//! `realloc(p, 0)` frees and returns NULL (glibc's behaviour);
//! `aligned_alloc` rejects a non-power-of-two alignment with EINVAL; a
//! failing `operator new` throws `std::bad_alloc` (see `cxx.rs` for why
//! that part is C); `realloc` that shrinks a block below half its size
//! moves it to a smaller one.

use core::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::allocators::smp::{self, PtrCheck};
use crate::sys::errno;
use crate::sys::write::Writer;

mod cxx;
mod debug_mode;
mod depot;
pub mod fatal;
mod introspect;
pub mod options;
pub mod profile;
pub mod stats;
mod symbols;
mod unwind;

use fatal::Misuse;
use options::StatsMode;

/// Log2 of the minimum alignment of every block (16 bytes, `max_align_t`).
pub const MIN_ALIGN_LOG2: u8 = 4;
/// The minimum alignment of every block, in bytes.
pub const MIN_ALIGN: usize = 1 << MIN_ALIGN_LOG2;
/// The largest size any allocation may have (`PTRDIFF_MAX`).
pub const MAX_SIZE: usize = isize::MAX as usize;
/// Blocks at least this large are shrunk in place by `realloc` (they are
/// separate mappings in the smp allocator, which unmaps the tail); smaller
/// ones move when more than half would be wasted.
const SHRINK_IN_PLACE_MIN: usize = 1 << 20;

/// Bit of [`FLAGS`]: the options have been read.
pub const READY: u8 = 1;
/// Bit of [`FLAGS`]: statistics are counted.
pub const COUNT: u8 = 2;
/// Bit of [`FLAGS`]: `LA_FAIL_AT` failure injection is armed.
pub const FAIL: u8 = 4;
/// Bit of [`FLAGS`]: `LA_DEBUG` is on (see `debug_mode.rs`).
pub const DEBUG: u8 = 8;
/// Bit of [`FLAGS`]: the fast paths are off, because the smp allocator
/// could not map its chunk map (which `free`'s fast path reads untested).
pub const NO_FAST: u8 = 16;
/// Bit of [`FLAGS`]: the heap profiler samples allocations (`profile.rs`).
pub const PROFILE: u8 = 32;

/// The shim's mode; see the module doc.
static FLAGS: AtomicU8 = AtomicU8::new(0);
/// What `malloc`'s and `free`'s fast paths test: [`FLAGS`] is `READY`,
/// alone or with `PROFILE` (the profiler's countdown runs in `malloc`'s
/// fast path in every mode, and its sampled blocks leave `free`'s fast path
/// by themselves; see `profile.rs`), so profiling adds no test to either.
static FAST: AtomicBool = AtomicBool::new(false);
/// `malloc`'s fast path in one comparison: sizes below this take it. It is
/// `TABLE_MAX + 1` when [`FAST`] holds and 0 otherwise, so the size test
/// also tests the mode.
static FAST_LIMIT: AtomicUsize = AtomicUsize::new(0);
/// `LA_STATS` output mode (a [`StatsMode`] as `u8`).
static STATS_MODE: AtomicU8 = AtomicU8::new(0);
/// `LA_FAIL_AT`.
static FAIL_AT: AtomicU64 = AtomicU64::new(0);
/// Allocations numbered so far (only while failure injection is armed).
static ALLOC_NUMBER: AtomicU64 = AtomicU64::new(0);
/// Set by the one initialisation that prints messages.
static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// Reads the options and sets [`FLAGS`]. Idempotent; never allocates.
#[cold]
#[inline(never)]
fn init() -> u8 {
    let first = !ANNOUNCED.swap(true, Relaxed);
    let opts = options::load(first);
    if first {
        stats::start_clock();
    }
    STATS_MODE.store(opts.stats as u8, Relaxed);
    FAIL_AT.store(opts.fail_at, Relaxed);
    let mut flags = READY;
    if opts.stats != StatsMode::Off {
        flags |= COUNT;
    }
    if opts.fail_at > 0 {
        flags |= FAIL;
    }
    if opts.debug_requested && debug_mode::init(&opts) {
        flags |= DEBUG;
        if opts.profile_requested() && first {
            Writer::fd(2).str(
                "liballoc: warning: LA_PROFILE* ignored in the debug mode (it records every allocation)\n",
            );
        }
    } else if profile::init(&opts, first) {
        flags |= PROFILE;
    }
    // After the debug mode, whose own purge delay they override.
    if let Some(ms) = opts.purge_delay_ms {
        smp::set_purge_delay_ms(ms);
    }
    if !opts.purge_thread {
        smp::set_purge_thread(false);
    }
    if !smp::prepare() {
        flags |= NO_FAST;
    }
    // Release: a thread that sees READY alone also sees the chunk map.
    FLAGS.store(flags, Release);
    FAST.store(flags & !PROFILE == READY, Release);
    // `free`'s fast path reads the chunk map behind this gate: open in the
    // fast modes only (READY alone means smp::prepare() succeeded).
    smp::set_free_gate(flags & !PROFILE == READY);
    let limit = if flags & !PROFILE == READY {
        smp::size_class::TABLE_MAX + 1
    } else {
        0
    };
    FAST_LIMIT.store(limit, Release);
    if first && opts.verbose {
        let mut w = Writer::fd(2);
        w.str("liballoc: preload shim active (liballoc ")
            .str(env!("CARGO_PKG_VERSION"))
            .str(", pid ")
            .u64(u64::from(crate::sys::process_id()))
            .str(", stats ")
            .str(match opts.stats {
                StatsMode::Off => "off",
                StatsMode::Table => "table",
                StatsMode::Json => "json",
            })
            .str(", fail-at ")
            .u64(opts.fail_at)
            .str(if flags & DEBUG != 0 {
                ", debug)\n"
            } else {
                ")\n"
            });
    }
    flags
}

/// The current flags, initialising on first use.
#[inline]
fn flags() -> u8 {
    let f = FLAGS.load(Relaxed);
    if f & READY != 0 { f } else { init() }
}

/// Whether statistics are being counted.
pub fn counting() -> bool {
    flags() & COUNT != 0
}

/// Sets `errno` to ENOMEM and returns NULL.
#[cold]
fn out_of_memory() -> *mut u8 {
    if FLAGS.load(Relaxed) & COUNT != 0 {
        stats::CALLS_FAILED.fetch_add(1, Relaxed);
    }
    errno::set(libc::ENOMEM);
    core::ptr::null_mut()
}

/// Whether this allocation is the one `LA_FAIL_AT` asks to fail.
#[inline]
fn injected_failure(f: u8) -> bool {
    f & FAIL != 0 && ALLOC_NUMBER.fetch_add(1, Relaxed) + 1 == FAIL_AT.load(Relaxed)
}

/// Allocates `size` bytes (0 gives a unique block) aligned to
/// `1 << align_log2` (at least 16). NULL with `errno = ENOMEM` on failure.
#[inline(always)]
pub fn alloc(size: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(align_log2 >= MIN_ALIGN_LOG2);
    // `malloc`'s common case: one table lookup gives the class, and the
    // profiler's countdown (kept in the thread's heap) runs whether it is
    // on or not: one subtraction, which spares the profiled `malloc` a
    // test and a path of its own.
    if align_log2 == MIN_ALIGN_LOG2 && size < FAST_LIMIT.load(Relaxed) {
        return alloc_table(size);
    }
    // Everything else out of line: the common case above stays as it is.
    alloc_general(size, align_log2)
}

/// [`alloc`]'s common case, once its test passed: a size of malloc's table
/// in a fast mode (`size < FAST_LIMIT`).
#[inline(always)]
fn alloc_table(size: usize) -> *mut u8 {
    debug_assert!(size <= smp::size_class::TABLE_MAX);
    let cls = smp::size_class::class_malloc(size);
    smp::alloc_counted(
        cls,
        size,
        // Not a tail call: that keeps `malloc` without a frame on its
        // fast path (the compiler sets one up in this block alone).
        |p| core::hint::black_box(alloc_due(p, size)),
        || alloc_small_slow(cls, size),
    )
}

/// [`alloc`]'s common case past its fast path: smp's slow path, then the
/// countdown.
#[cold]
#[inline(never)]
fn alloc_small_slow(cls: usize, size: usize) -> *mut u8 {
    let p = smp::alloc_in(cls);
    if p.is_null() {
        return out_of_memory();
    }
    if smp::count_down(size) {
        return alloc_due(p, size);
    }
    p
}

/// [`alloc`]'s common case when the countdown ran out with block `p`: the
/// profiler samples it, or, with profiling off, the countdown is put out
/// of reach (a thread's heap starts at 0, so this runs once per heap).
/// (Given `p`'s class too, `malloc`'s fast path kept the size in one more
/// register: an instruction more on every call.)
#[cold]
#[inline(never)]
fn alloc_due(p: *mut u8, size: usize) -> *mut u8 {
    if FLAGS.load(Relaxed) & PROFILE != 0 {
        // SAFETY: p is a live block just made by malloc's path.
        let usable = unsafe { smp::usable_size(p) };
        // SAFETY: p is a live block just made by malloc's path (unused,
        // default alignment, a fast mode), `usable` bytes long; PROFILE
        // means profile::init succeeded.
        return unsafe { profile::on_due(p, size, usable, true) };
    }
    smp::set_sample_left(i64::MAX);
    p
}

/// [`alloc`] for sizes above the table, other alignments, and the modes:
/// only tail calls, so that the debug mode's `malloc` passes through
/// without saving a register.
#[inline(never)]
fn alloc_general(size: usize, align_log2: u8) -> *mut u8 {
    let f = FLAGS.load(Relaxed);
    if f == READY | DEBUG {
        // The debug mode alone: straight to the debug allocator.
        return debug_mode::alloc_entry(size, align_log2);
    }
    if f & !PROFILE == READY && size <= MAX_SIZE {
        if f & PROFILE != 0 {
            return alloc_general_profiled(size, align_log2);
        }
        return alloc_general_fast(size, align_log2);
    }
    alloc_slow(size, align_log2)
}

/// [`alloc_general`] in the fast mode, for a size smp serves.
#[inline(never)]
fn alloc_general_fast(size: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(size <= MAX_SIZE);
    let p = if align_log2 == MIN_ALIGN_LOG2 && size <= smp::size_class::TABLE_MAX {
        smp::alloc_in(smp::size_class::class_malloc(size))
    } else {
        smp::alloc(size.max(1), align_log2)
    };
    if p.is_null() {
        return out_of_memory();
    }
    p
}

/// [`alloc_general_fast`] with the profiler on: the countdown as on
/// `malloc`'s fast path, one subtraction from the heap the allocation
/// found. (After the allocation, with a test of the flag and a second
/// look-up of the heap, it cost `workloads mixed` 81 instructions per
/// sample; now this path costs what [`alloc_general_fast`] does, to a few
/// instructions in a million.)
#[inline(never)]
fn alloc_general_profiled(size: usize, align_log2: u8) -> *mut u8 {
    debug_assert!(size <= MAX_SIZE);
    // A block aligned beyond malloc's must stay where it is.
    let movable = align_log2 == MIN_ALIGN_LOG2;
    let Some(cls) = smp::size_class::class_for(size.max(1), align_log2) else {
        // Huge: mapped for itself; the countdown is nothing beside that.
        let p = smp::alloc(size, align_log2);
        if p.is_null() {
            return out_of_memory();
        }
        // SAFETY: p is a live block just made and unused (a huge one
        // keeps its place); PROFILE means profile::init succeeded.
        return unsafe { profile::on_alloc(p, size, movable) };
    };
    smp::alloc_counted(
        cls,
        size,
        // SAFETY: a live block just made and unused, movable as above, in
        // a fast mode; PROFILE means profile::init succeeded.
        |p| unsafe { profile::on_due(p, size, smp::size_class::class_size(cls), movable) },
        || {
            let p = smp::alloc_in(cls);
            if p.is_null() {
                return out_of_memory();
            }
            // SAFETY: a live block just made and unused, movable as above;
            // PROFILE means profile::init succeeded.
            unsafe { profile::on_alloc(p, size, movable) }
        },
    )
}

/// [`alloc`] of zeroed memory (`calloc`): fresh huge mappings are not
/// cleared again (see [`smp::alloc_zeroed`]).
#[inline]
pub fn alloc_zeroed(size: usize) -> *mut u8 {
    if size < FAST_LIMIT.load(Relaxed) {
        // `malloc`'s fast path (a fast mode, a size of the table), then
        // the clearing: the class found by one table lookup, not by the
        // general search, and the profiler's countdown as in `malloc`.
        let p = alloc_table(size);
        if p.is_null() {
            return p;
        }
        // SAFETY: p is a fresh block of at least `size` bytes. `memset`
        // returns p: a tail call, so the fast path saves no registers.
        return unsafe { libc::memset(p.cast(), 0, size) }.cast();
    }
    alloc_zeroed_general(size)
}

/// [`alloc_zeroed`] past its fast path (out of line, so that the fast path
/// saves no registers).
#[inline(never)]
fn alloc_zeroed_general(size: usize) -> *mut u8 {
    let f = FLAGS.load(Relaxed);
    if f & !PROFILE == READY && size <= MAX_SIZE {
        let p = smp::alloc_zeroed(size.max(1), MIN_ALIGN_LOG2);
        if p.is_null() {
            return out_of_memory();
        }
        if f & PROFILE != 0 {
            // SAFETY: p is a live block just made (zeroed, but what it
            // moves to is zeroed below), in a fast mode; PROFILE means
            // profile::init succeeded.
            let q = unsafe { profile::on_alloc(p, size, true) };
            if q == p.wrapping_add(profile::SHIFT) {
                // Shifted in place (see `profile::SHIFT`): of q's `size`
                // bytes, those past p's first `size` are not zero yet.
                // SAFETY: the block holds `size + SHIFT` bytes from p.
                unsafe {
                    core::ptr::write_bytes(
                        p.add(size.max(profile::SHIFT)),
                        0,
                        size.min(profile::SHIFT),
                    );
                }
            } else if q != p && !q.is_null() {
                // SAFETY: q is a fresh block of at least `size` bytes.
                unsafe { core::ptr::write_bytes(q, 0, size) };
            }
            return q;
        }
        return p;
    }
    let p = alloc_slow(size, MIN_ALIGN_LOG2);
    if !p.is_null() {
        // SAFETY: p is a fresh block of at least `size` bytes.
        unsafe { core::ptr::write_bytes(p, 0, size) };
    }
    p
}

#[cold]
#[inline(never)]
fn alloc_slow(size: usize, align_log2: u8) -> *mut u8 {
    let f = flags();
    if f & COUNT != 0 {
        stats::CALLS_ALLOC.fetch_add(1, Relaxed);
    }
    if size > MAX_SIZE || injected_failure(f) {
        return out_of_memory();
    }
    if f & DEBUG != 0 {
        let p = debug_mode::alloc(size, align_log2);
        if p.is_null() {
            return out_of_memory();
        }
        if f & COUNT != 0 {
            stats::on_alloc(size.max(1));
        }
        return p;
    }
    let p = smp::alloc(size.max(1), align_log2);
    if p.is_null() {
        return out_of_memory();
    }
    if f & COUNT != 0 {
        // SAFETY: p is a live block just returned by smp.
        stats::on_alloc(unsafe { smp::usable_size(p) });
    }
    if f & PROFILE != 0 {
        // SAFETY: p is a live block just made; not movable: the modes that
        // come here free through `free_slow`, whose statistics count a
        // block's size as allocated. PROFILE means profile::init
        // succeeded.
        return unsafe { profile::on_alloc(p, size, false) };
    }
    p
}

/// Checks that `p` (non-NULL) is the start of a live block, else reports
/// the misuse as called from `func` and aborts.
#[inline]
pub fn validate(p: *mut u8, func: &str) {
    if (p as usize) & (MIN_ALIGN - 1) != 0 {
        fatal::misuse(func, Misuse::Misaligned, p);
    }
    match smp::check(p) {
        PtrCheck::Live => {}
        PtrCheck::Free => fatal::misuse(func, Misuse::DoubleFree, p),
        PtrCheck::Interior => fatal::misuse(func, Misuse::Interior, p),
        PtrCheck::Unallocated => fatal::misuse(func, Misuse::Unallocated, p),
        PtrCheck::NotOurs => fatal::misuse(func, Misuse::NotOurs, p),
    }
}

/// Frees `p` (NULL is ignored) after checking it; preserves `errno` (smp's
/// `free` never changes it, see `smp/classify.rs`; the debug mode saves it).
///
/// The default mode classifies and frees with one lookup
/// ([`smp::free_checked`]); anything but a live block is fatal.
///
/// # Safety
/// `p` is NULL or a block the caller obtained from this shim and still
/// owns; a pointer that is not is caught as far as [`smp::check`] can tell.
#[inline(always)]
pub unsafe fn free(p: *mut u8, func: &str) {
    #[cfg(feature = "bench-unchecked-free")]
    if FAST.load(Acquire) && !p.is_null() && (p as usize) & (MIN_ALIGN - 1) == 0 {
        // SAFETY: the benchmark build trusts the caller's promise (a live
        // block), to measure what the checks below cost.
        unsafe { smp::free(p) };
        return;
    }
    // One test covers the mode, NULL and the chunk map's bound: the fast
    // path reads the map behind a gate that only the fast modes open (see
    // `init`), and NULL lies in a chunk that is never ours; whatever the
    // fast test does not confirm goes to `free_cold`, which tells them
    // apart. The profiler alone takes the fast path too: a sampled block's
    // page sends its frees to `on_free` (see `profile.rs`).
    // No alignment test of its own: the fast test confirms the start of a
    // block exactly (offset divisible by the class size), so a pointer that
    // is not one, misaligned or not, goes to free_cold.
    // SAFETY: caller's promise: a live block is theirs to free; the gate
    // opens only once smp::prepare() succeeded (its Release store pairs
    // with the gated read's Acquire load). on_free takes any live block
    // about to be freed, free_cold any pointer (NULL too).
    unsafe {
        smp::free_gated_or(
            p,
            // A block of a hiding page is a block's start: never a shifted
            // sample, which `free_cold` gets (see `profile::SHIFT`).
            |p| {
                let _q = profile::on_free(p);
                debug_assert!(_q == p);
            },
            |p| free_cold(p, func),
        )
    }
}

/// C++ sized or aligned `operator delete` of `p` (NULL is ignored): `size`
/// is the size given (`None` when not), `align` the alignment given (0 when
/// not: the block came from an `operator new` without one). With neither,
/// it is [`free`].
///
/// The default mode checks a given size with one comparison more than
/// [`free`]: the block's size must hold it (a larger size is a wrong size,
/// reported by [`fatal::wrong_size`]). The debug mode checks size and
/// alignment against the block's request (`debug_mode.rs`).
///
/// # Safety
/// As for [`free`].
#[inline(always)]
pub unsafe fn free_shaped(p: *mut u8, size: Option<usize>, align: usize, func: &str) {
    if size.is_none() && align == 0 {
        // SAFETY: caller's promise.
        return unsafe { free(p, func) };
    }
    if p.is_null() {
        return;
    }
    if FAST.load(Acquire) {
        if let Some(size) = size
            && (p as usize) & (MIN_ALIGN - 1) == 0
        {
            // SAFETY: as in `free`: the caller's promise, and FAST means
            // smp::prepare() succeeded.
            return unsafe { free_sized_fast(p, size, func) };
        }
        // SAFETY: caller's promise.
        return unsafe { free(p, func) };
    }
    let f = FLAGS.load(Relaxed);
    if f & DEBUG != 0 {
        let align_log2 = if align == 0 {
            MIN_ALIGN_LOG2
        } else {
            (align.trailing_zeros() as u8).max(MIN_ALIGN_LOG2)
        };
        if f & COUNT != 0 {
            stats::CALLS_FREE.fetch_add(1, Relaxed);
            if let Some(n) = debug_mode::len_of(p) {
                stats::on_free(n.max(1));
            }
        }
        let size = size.unwrap_or(crate::allocators::debug::ANY_LEN);
        return debug_mode::free_shaped_entry(p, size, align_log2);
    }
    // SAFETY: caller's promise.
    unsafe { free(p, func) }
}

/// The sized free of the fast mode: the block's size must hold `size`.
///
/// # Safety
/// As for [`free`]; `p` is 16-byte aligned and not NULL, and
/// smp::prepare() succeeded (the mode is `READY`, alone or with `PROFILE`).
#[inline(always)]
unsafe fn free_sized_fast(p: *mut u8, size: usize, func: &str) {
    // SAFETY: caller's promise.
    match unsafe { smp::free_fast_sized(p, size) } {
        Ok(true) => {}
        // A huge block, or misuse.
        // SAFETY: caller's promise.
        Ok(false) => unsafe { free_other(p, func) },
        Err(bs) => fatal::wrong_size(func, p, size, bs),
    }
}

/// [`free`] of what its fast test did not confirm: NULL (ignored), any
/// pointer in a mode without the fast path (or before initialisation),
/// and in the fast modes a huge block or misuse ([`free_other`]).
///
/// # Safety
/// As for [`free`].
#[cold]
#[inline(never)]
unsafe fn free_cold(p: *mut u8, func: &str) {
    if p.is_null() {
        return;
    }
    if !FAST.load(Acquire) {
        // Not a fast mode (or not initialised yet): the gate was closed.
        if FLAGS.load(Relaxed) == READY | DEBUG {
            // The debug mode alone: straight to the debug allocator.
            return debug_mode::free_entry(p);
        }
        // SAFETY: caller's promise.
        return unsafe { free_slow(p, func) };
    }
    // SAFETY: caller's promise; a fast mode.
    unsafe { free_other(p, func) }
}

/// The checked free of a pointer (not NULL) that the fast test did not
/// confirm: a block of a page hiding its blocks for the profiler, a
/// shifted sample (see `profile::SHIFT`), a huge block, or misuse
/// (reported, fatal). Only tail calls, so that a sample's free, the common
/// case here with the profiler on, saves no register on its way.
///
/// # Safety
/// As for [`free`]; `p` is not NULL.
#[inline(never)]
unsafe fn free_other(p: *mut u8, func: &str) {
    debug_assert!(!p.is_null());
    let f = FLAGS.load(Relaxed);
    if f & PROFILE != 0 && profile::maybe_sampled(p as usize) {
        // SAFETY: caller's promise.
        return unsafe { free_sampled(p, func, f) };
    }
    // SAFETY: caller's promise.
    unsafe { free_unsampled(p, func, f) }
}

/// [`free_other`] of a pointer that the profiler's filter says may be a
/// sample: the profiler hears of it first, and a shifted sample's block is
/// freed from its start.
///
/// # Safety
/// As for [`free_other`]; the mode `f` has PROFILE.
#[cold]
#[inline(never)]
unsafe fn free_sampled(p: *mut u8, func: &str, f: u8) {
    // SAFETY: caller's promise: a live block (or a shifted sample), or
    // not a block at all.
    if unsafe { profile::free_sampled(p) } {
        return;
    }
    // SAFETY: caller's promise.
    unsafe { free_unsampled(p, func, f) }
}

/// [`free_other`] of anything but a shifted sample.
///
/// # Safety
/// As for [`free_other`]; with PROFILE in `f`, the profiler heard of `p`.
#[inline(never)]
unsafe fn free_unsampled(p: *mut u8, func: &str, f: u8) {
    if f & PROFILE != 0
        && f & NO_FAST == 0
        && (p as usize) & (MIN_ALIGN - 1) == 0
        // SAFETY: without NO_FAST, smp::prepare() succeeded (see `free`);
        // the caller's promise. A block of a page with a live sample.
        && unsafe { smp::free_fast_marked(p) }
    {
        return;
    }
    if (p as usize) & (MIN_ALIGN - 1) != 0 {
        fatal::misuse(func, Misuse::Misaligned, p);
    }
    // SAFETY: caller's promise: a live block is theirs to free.
    match unsafe { smp::free_checked(p) } {
        PtrCheck::Live => {}
        c => misuse_of(func, c, p),
    }
}

/// Reports a pointer [`smp::check`] did not find live.
#[cold]
#[inline(never)]
fn misuse_of(func: &str, c: PtrCheck, p: *mut u8) -> ! {
    match c {
        PtrCheck::Free => fatal::misuse(func, Misuse::DoubleFree, p),
        PtrCheck::Interior => fatal::misuse(func, Misuse::Interior, p),
        PtrCheck::Unallocated => fatal::misuse(func, Misuse::Unallocated, p),
        PtrCheck::NotOurs | PtrCheck::Live => fatal::misuse(func, Misuse::NotOurs, p),
    }
}

/// [`free`] with statistics or the debug mode on.
///
/// # Safety
/// As for [`free`].
#[cold]
#[inline(never)]
unsafe fn free_slow(p: *mut u8, func: &str) {
    let f = flags();
    if f & DEBUG != 0 {
        let saved = errno::get();
        if f & COUNT != 0 {
            stats::CALLS_FREE.fetch_add(1, Relaxed);
            if let Some(n) = debug_mode::len_of(p) {
                // A zero-size block counts as 1 byte (see `alloc_slow`).
                stats::on_free(n.max(1));
            }
        }
        debug_mode::free(p);
        errno::set(saved);
        return;
    }
    if f & COUNT == 0 {
        // Failure injection alone, or no fast path: the checked free.
        // SAFETY: caller's promise (p is not NULL: `free` and
        // `free_shaped` return early for NULL).
        return unsafe { free_other(p, func) };
    }
    let p = if f & PROFILE != 0 {
        // SAFETY: caller's promise: a live block, or not a block at all.
        // (These modes make no shifted sample: `p` comes back.)
        unsafe { profile::on_free(p) }
    } else {
        p
    };
    validate(p, func);
    stats::CALLS_FREE.fetch_add(1, Relaxed);
    // SAFETY: validate established that p is a live block.
    stats::on_free(unsafe { smp::usable_size(p) });
    // SAFETY: as above.
    unsafe { smp::free(p) };
}

/// Usable bytes of block `p` (0 for NULL), after checking it.
///
/// # Safety
/// As for [`free`].
pub unsafe fn usable_size(p: *mut u8, func: &str) -> usize {
    if p.is_null() {
        return 0;
    }
    let f = FLAGS.load(Relaxed);
    if f & DEBUG != 0 {
        return debug_mode::usable_size(p);
    }
    if f & PROFILE != 0
        // SAFETY: only the profiler's index is read.
        && let Some(n) = unsafe { profile::shifted_size(p) }
    {
        return n;
    }
    validate(p, func);
    // SAFETY: validate established that p is a live block.
    unsafe { smp::usable_size(p) }
}

/// `realloc` semantics (glibc): NULL block allocates, size 0 frees and
/// returns NULL, failure returns NULL with ENOMEM and leaves the block
/// untouched.
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: *mut u8, size: usize, func: &str) -> *mut u8 {
    if p.is_null() {
        return alloc(size, MIN_ALIGN_LOG2);
    }
    if size == 0 {
        // SAFETY: caller's promise.
        unsafe { free(p, func) };
        return core::ptr::null_mut();
    }
    let f = FLAGS.load(Acquire);
    // The common case, a block that already holds the new size without
    // wasting half of it, stays where it is after one lookup. With the
    // profiler on too: a block that stays is no new allocation, and a
    // sampled block is not found here (its page hides it from the lookup,
    // see `profile.rs`), so the profiler has nothing to hear of.
    let live = if f & !PROFILE == READY && (p as usize) & (MIN_ALIGN - 1) == 0 {
        // SAFETY: READY means smp::prepare() succeeded (see `free`).
        unsafe { smp::live_block_size(p) }
    } else {
        None
    };
    if let Some(bs) = live
        && size <= bs
        && size >= bs / 2
    {
        return p;
    }
    if f & PROFILE != 0 {
        // SAFETY: caller's promise.
        return unsafe { realloc_profiled(p, size, func, f, live) };
    }
    // SAFETY: caller's promise; `live` is what the lookup found at p.
    unsafe { realloc_in(p, size, func, f, live) }
}

/// [`realloc`] with the profiler on, for a block the in-place lookup did
/// not keep: a sampled block leaves the index first (so that its address,
/// once freed, cannot be sampled before it is forgotten) and is marked
/// freed when the call succeeds; the result is counted as a fresh
/// allocation of `size` bytes when the block moved or was sampled (a
/// `realloc` that moves a block, or changes a sampled one, is a free and an
/// allocation), and not when an unsampled block stayed. A shifted sample
/// (see `profile::SHIFT`) that stays keeps its sample.
///
/// # Safety
/// As for [`free`]; `p` is not NULL and `size` not 0; `live` as for
/// [`realloc_in`] (a block it names is in no hiding page, so no sample).
#[inline(never)]
unsafe fn realloc_profiled(
    p: *mut u8,
    size: usize,
    func: &str,
    f: u8,
    live: Option<usize>,
) -> *mut u8 {
    // A shifted sample (see `profile::SHIFT`): it stays where it is when
    // it holds the new size without wasting half of it (as `realloc`'s
    // common case, above, keeps any block), else it is moved by hand,
    // since smp sees no block at p; the sample ends once the new block is
    // made.
    if live.is_none()
        // SAFETY: only the profiler's index is read.
        && let Some(old) = unsafe { profile::shifted_size(p) }
    {
        if size <= old && size >= old / 2 {
            // SAFETY: the caller's live shifted sample, `old` bytes long.
            unsafe { profile::resize_shifted(p, size) };
            return p;
        }
        if size > MAX_SIZE {
            return out_of_memory();
        }
        let q = smp::alloc(size, MIN_ALIGN_LOG2);
        if q.is_null() {
            return out_of_memory();
        }
        // SAFETY: q is fresh, at least `size` bytes; p holds `old` bytes
        // of the caller's.
        unsafe { core::ptr::copy_nonoverlapping(p, q, old.min(size)) };
        // SAFETY: the caller's live block; on_free gives its start.
        unsafe { smp::free(profile::on_free(p)) };
        // SAFETY: q is the live block just made (its contents are the
        // caller's: not movable); PROFILE was set.
        return unsafe { profile::on_alloc(q, size, false) };
    }
    // A block the lookup found live is on no hiding page: no sample, and
    // nothing to look up.
    let taken = if live.is_some() {
        None
    } else {
        // SAFETY: caller's promise: a live block, or not a block at all.
        unsafe { profile::take_sample(p) }
    };
    // SAFETY: caller's promise.
    let q = unsafe { realloc_in(p, size, func, f & !PROFILE, live) };
    if q.is_null() {
        // SAFETY: realloc failed, so p is still the caller's live block
        // (a sample was taken only for a live block).
        unsafe { profile::put_back(p, taken) };
        return q;
    }
    let Some(i) = taken else {
        if q == p {
            // An unsampled block that stayed (a huge block grown by
            // `mremap`, or one beside a sample): no new allocation.
            return q;
        }
        // SAFETY: q is the live block realloc just returned (its contents
        // are the caller's: not movable); PROFILE was set.
        return unsafe { profile::on_alloc(q, size, false) };
    };
    profile::finish_free(i);
    // SAFETY: as above.
    unsafe { profile::on_alloc(q, size, false) }
}

/// [`realloc`] of a non-NULL `p` to a non-zero `size` in mode `f`; `live`
/// is `Some(block size)` when `smp::live_block_size` found `p` a live
/// block already (it is then neither checked nor looked up again).
///
/// Out of line, so that a block that stays where it is ([`realloc`]'s
/// common case) does not pay this path's frame.
///
/// # Safety
/// As for [`free`]; `live` is `None` or what `smp::live_block_size(p)`
/// returned in this call.
#[inline(never)]
unsafe fn realloc_in(p: *mut u8, size: usize, func: &str, f: u8, live: Option<usize>) -> *mut u8 {
    if f & DEBUG != 0 {
        if size > MAX_SIZE || injected_failure(f) {
            return out_of_memory();
        }
        let old = if f & COUNT != 0 {
            stats::CALLS_REALLOC.fetch_add(1, Relaxed);
            debug_mode::len_of(p)
        } else {
            None
        };
        let q = debug_mode::realloc(p, size);
        if q.is_null() {
            return out_of_memory();
        }
        if let Some(old) = old {
            stats::on_free(old.max(1));
            stats::on_alloc(size);
        }
        return q;
    }
    let old = match live {
        Some(bs) => {
            // SAFETY: the lookup found p a live block of ours.
            debug_assert_eq!(bs, unsafe { smp::usable_size(p) });
            bs
        }
        None => {
            validate(p, func);
            // SAFETY: validate established that p is a live block.
            unsafe { smp::usable_size(p) }
        }
    };
    if f & COUNT != 0 {
        stats::CALLS_REALLOC.fetch_add(1, Relaxed);
    }
    if size > MAX_SIZE || injected_failure(f) {
        return out_of_memory();
    }
    // Shrinking keeps the block when at most half of it is wasted; below
    // that, large (mapped) blocks shrink in place and others move to a
    // smaller block, so that a shrunk buffer does not pin its old size.
    // Growing is in place when the block has room, else `smp::remap`
    // moves it (by `mremap` when huge, else by copying into a block with
    // headroom for further growth; see `smp::remap`).
    let q = if size <= old {
        let in_place = size >= old / 2
            || (old >= SHRINK_IN_PLACE_MIN && {
                // SAFETY: p is a live block.
                unsafe { smp::resize(p, size) }
            });
        if in_place {
            p
        } else {
            // A shrink cannot fail: without memory for a smaller block the
            // block stays as it is.
            // SAFETY: p is a live block of `old` usable bytes.
            unsafe { move_block(p, old, size) }.unwrap_or(p)
        }
    } else {
        // SAFETY: p is a live block of `old` usable bytes, aligned to at
        // least MIN_ALIGN (malloc's alignment is all realloc keeps).
        let moved = unsafe { smp::remap(p, size, MIN_ALIGN_LOG2, old) };
        if moved.is_null() {
            return out_of_memory();
        }
        moved
    };
    if f & COUNT != 0 {
        stats::on_free(old);
        // SAFETY: q is a live block.
        stats::on_alloc(unsafe { smp::usable_size(q) });
    }
    q
}

/// Moves live block `p` (`old` usable bytes) to a new block of `size`
/// bytes: allocate, copy, free. `None` (and `p` untouched) without memory.
///
/// # Safety
/// `p` is a live block with `old` usable bytes.
unsafe fn move_block(p: *mut u8, old: usize, size: usize) -> Option<*mut u8> {
    let fresh = smp::alloc(size, MIN_ALIGN_LOG2);
    if fresh.is_null() {
        return None;
    }
    // SAFETY: both blocks are live and distinct; the copy stays within the
    // smaller of their sizes.
    unsafe {
        core::ptr::copy_nonoverlapping(p, fresh, old.min(size));
        smp::free(p);
    }
    Some(fresh)
}

/// Allocation with a caller-chosen alignment in bytes (a power of two);
/// alignments below 16 get 16.
#[inline]
pub fn alloc_aligned(size: usize, align: usize) -> *mut u8 {
    debug_assert!(align.is_power_of_two());
    let log2 = (align.trailing_zeros() as u8).max(MIN_ALIGN_LOG2);
    alloc(size, log2)
}

/// Prints the statistics selected by `LA_STATS` (at exit).
fn print_exit_stats() {
    let mode = STATS_MODE.load(Relaxed);
    let mut w = Writer::fd(2);
    if mode == StatsMode::Table as u8 {
        stats::print_table(&mut w, true);
    } else if mode == StatsMode::Json as u8 {
        stats::print_json(&mut w);
    }
}

extern "C" fn on_load() {
    let f = flags();
    if f & DEBUG != 0 {
        debug_mode::on_load();
    }
    if f & PROFILE != 0 {
        profile::on_load();
    }
}

extern "C" fn on_unload() {
    let f = FLAGS.load(Relaxed);
    if f & COUNT != 0 {
        print_exit_stats();
    }
    if f & PROFILE != 0 {
        profile::at_exit();
    }
}

/// Initialise when the library is loaded, even if nothing allocates.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// Print the statistics when the process exits normally.
#[used]
#[unsafe(link_section = ".fini_array")]
static ON_UNLOAD: extern "C" fn() = on_unload;
