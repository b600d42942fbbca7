//! The debug allocator (`la_debug`): Zig's `DebugAllocator` and
//! `SafeAllocator` for C, over any backing allocator.
//!
//! Every block gets a record kept out of band (`record.rs`) with its length,
//! alignment, state and two stack traces (allocation and free, captured by a
//! frame-pointer walk, and stored once per distinct trace in a stack depot:
//! the diagnostics runtime, `src/diag/`). Records are found by block
//! address through an index (`index.rs`), or, over the smp allocator (the
//! shim's backing), through a small header in front of the block, checked
//! against the smp allocator's own exact block test (`inband.rs`); that
//! header also carries the block's length and state, so a plain `free` of
//! an intact block reads only the block and writes its record. The user
//! block sits between two redzones filled with this instance's canary
//! bytes; they are checked on free and resize (overflow past the requested
//! length, underflow before the block).
//! Blocks of at least `guard_page_min_len` bytes, and zero-size blocks, are
//! their own mapping with a guard page on each side, placed so the block
//! ends at the upper guard.
//! Freed blocks are filled with `0xdd` and held in a quarantine (or forever
//! with `never_reuse`); when they leave it the fill is verified (write after
//! free). Misuse -- double free, wrong length or alignment, interior,
//! foreign or other-instance pointers, overflows -- is reported with traces
//! (`misuse.rs`, laid out by `diag::report`), then aborts or, with
//! `LA_DEBUG_CONTINUE`, is counted and the call does the safest thing.
//! Leaks are reported grouped by allocation site (`leaks.rs`). Locks make
//! it thread-safe: one per instance, or, over a backing that may be called
//! from any thread (the shim's), one per shard of the address space.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the C API: config, stats, result codes, `la_debug_*`, the vtable |
//! | `instance.rs` | the allocator core: create, alloc, resize, free, quarantine, destroy |
//! | `strategy.rs` | the record strategy as a type: `Indexed` or `InBand`, one vtable each |
//! | `table.rs` | a shard's records and the lookup by address over them |
//! | `record.rs` | records and the slabs (or region) they live in |
//! | `index.rs` | the address index: open addressing over tagged record pointers |
//! | `inband.rs` | in-band headers in front of blocks (over smp) |
//! | `quarantine.rs` | the quarantine ring and its eviction policy |
//! | `redzone.rs` | canary redzones |
//! | `fill.rs` | the free fill and its check (write after free) |
//! | `mappings.rs` | guarded reservations kept for reuse |
//! | `misuse.rs` | misuse checks and their reports, guard-page faults |
//! | `leaks.rs`, `roots.rs` | leak reports grouped by site; reachability from roots |
//!
//! Stack capture, the stack depot, symbolization, output, report layout,
//! the scratch arena and the lock are the diagnostics runtime's
//! (`src/diag/`).
//!
//! No crates beyond `libc`: reporting needs no allocator at all (a private
//! arena over `mmap`), so nothing can re-enter `malloc` under the shim.

mod fill;
mod inband;
mod index;
mod instance;
pub mod leaks;
mod mappings;
mod misuse;
mod quarantine;
mod record;
mod redzone;
pub mod roots;
mod strategy;
pub mod table;

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize};

use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};

use crate::diag::depot::Depot;
use crate::diag::trace;
use crate::sys::lock::RawLock;
use strategy::{InBand, Indexed, Strategy};
use table::{Quarantine, Record, Table};

/// What `la_debug` does when it detects misuse.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum la_debug_on_error {
    /// Print the report, then abort the process (the default).
    LA_DEBUG_ABORT = 0,
    /// Print the report, count it (`la_debug_get_stats`) and carry on.
    LA_DEBUG_CONTINUE = 1,
}

/// The kinds of misuse `la_debug` reports.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum la_debug_error {
    /// No misuse reported yet.
    LA_DEBUG_NO_ERROR = 0,
    /// A block freed twice.
    LA_DEBUG_DOUBLE_FREE = 1,
    /// Free/resize/remap of an address no allocator here gave out.
    LA_DEBUG_FOREIGN_POINTER = 2,
    /// Free/resize/remap of an address inside a block, not at its start.
    LA_DEBUG_INTERIOR_POINTER = 3,
    /// Free/resize/remap of a block of another `la_debug` instance.
    LA_DEBUG_OTHER_INSTANCE = 4,
    /// Free/resize/remap with a length other than the block's.
    LA_DEBUG_WRONG_SIZE = 5,
    /// Free/resize/remap with an alignment other than the block's.
    LA_DEBUG_WRONG_ALIGNMENT = 6,
    /// Bytes past the requested length were overwritten.
    LA_DEBUG_OVERFLOW = 7,
    /// Bytes before the block were overwritten.
    LA_DEBUG_UNDERFLOW = 8,
    /// A freed block was written to.
    LA_DEBUG_WRITE_AFTER_FREE = 9,
    /// realloc/resize/usable-size of a block already freed.
    LA_DEBUG_USE_AFTER_FREE = 10,
}

impl la_debug_error {
    fn from_u32(v: u32) -> Self {
        use la_debug_error::*;
        match v {
            1 => LA_DEBUG_DOUBLE_FREE,
            2 => LA_DEBUG_FOREIGN_POINTER,
            3 => LA_DEBUG_INTERIOR_POINTER,
            4 => LA_DEBUG_OTHER_INSTANCE,
            5 => LA_DEBUG_WRONG_SIZE,
            6 => LA_DEBUG_WRONG_ALIGNMENT,
            7 => LA_DEBUG_OVERFLOW,
            8 => LA_DEBUG_UNDERFLOW,
            9 => LA_DEBUG_WRITE_AFTER_FREE,
            10 => LA_DEBUG_USE_AFTER_FREE,
            _ => LA_DEBUG_NO_ERROR,
        }
    }
}

/// Result codes of `la_debug_destroy` and `la_check_all_allocation_failures`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum la_check {
    /// No leak, no error.
    LA_CHECK_OK = 0,
    /// Memory was leaked (reported on stderr / the report fd).
    LA_CHECK_LEAK = 1,
    /// An induced allocation failure was not reported by the test function
    /// (it returned 0).
    LA_CHECK_SWALLOWED_FAILURE = 2,
    /// The allocation pattern changed between runs: the failing index was
    /// never reached.
    LA_CHECK_NONDETERMINISTIC = 3,
    /// The test function failed (non-zero) with no failure induced.
    LA_CHECK_TEST_FAILED = 4,
    /// The checker itself ran out of memory, or bad arguments (NULL test).
    LA_CHECK_OUT_OF_MEMORY = 5,
    /// Misuse (double free, overflow, ...) was reported during the run.
    LA_CHECK_MISUSE = 6,
}

/// Configuration of a debug allocator. Fill with `la_debug_config_init`,
/// then change fields; a NULL config means the defaults.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct la_debug_config {
    /// Frames captured per trace (allocation and free); default 8, at most
    /// 32; 0 captures none.
    pub stack_trace_frames: libc::size_t,
    /// Abort on misuse (default) or report and continue.
    pub on_error: la_debug_on_error,
    /// File descriptor reports are written to; default 2 (stderr).
    pub report_fd: i32,
    /// Never give memory back to the backing allocator until destroy, so
    /// addresses are never reused and every double free is caught; default
    /// false.
    pub never_reuse: bool,
    /// Fill freed blocks with 0xdd and verify the fill when they leave the
    /// quarantine (write-after-free detection); default true. How much of
    /// each block is filled: `free_fill_max_len`.
    pub check_write_after_free: bool,
    /// Bytes of freed blocks held back before reuse, over the whole
    /// instance; default 4 MiB. Once they pass it, the next allocations let
    /// the oldest blocks leave in batches, until 15/16 of it are held
    /// (frees alone let it grow to twice this). Over a backing callable
    /// from any thread (the shim's) the instance has 8 shards, each with
    /// its own quarantine; one holding more than 1/8 of the budget gives
    /// up its oldest blocks while the total is over, so a single thread
    /// keeps the whole budget and several threads about a share each. A
    /// block with guard pages gives its memory back when freed and counts
    /// 16 KiB here.
    pub quarantine_bytes: libc::size_t,
    /// Allocation fails (NULL) when live requested bytes would exceed this;
    /// default SIZE_MAX (no limit).
    pub memory_limit: libc::size_t,
    /// Blocks of at least this many bytes, and zero-size blocks, get guard
    /// pages and are mapped from the OS directly (not from the backing
    /// allocator); default 128 KiB; 0 disables guard pages.
    pub guard_page_min_len: libc::size_t,
    /// The per-instance canary written in redzones (byte `a % 8` of it at
    /// address `a`); 0 (default) derives one from the instance's address
    /// whose every byte lies in 0x80..0xfe and is not the free fill 0xdd, so
    /// that an overflow writing NUL, a small integer, 0xff or ASCII text is
    /// always caught. A canary given here is used as is.
    pub canary: u64,
    /// Freed blocks are filled (and verified) from their start up to this
    /// many bytes; default 4096, so a long freed buffer costs no more than
    /// a page of filling and checking. Writes after free beyond it are not
    /// found. SIZE_MAX fills every byte.
    pub free_fill_max_len: libc::size_t,
}

impl Default for la_debug_config {
    fn default() -> Self {
        la_debug_config {
            stack_trace_frames: 8,
            on_error: la_debug_on_error::LA_DEBUG_ABORT,
            report_fd: 2,
            never_reuse: false,
            check_write_after_free: true,
            quarantine_bytes: 4 << 20,
            memory_limit: usize::MAX,
            guard_page_min_len: 128 << 10,
            canary: 0,
            free_fill_max_len: 4096,
        }
    }
}

/// Counters of a debug allocator (`la_debug_get_stats`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct la_debug_stats {
    /// Requested bytes in live blocks (what the memory limit counts).
    pub live_bytes: libc::size_t,
    /// Live blocks.
    pub live_allocations: libc::size_t,
    /// Highest `live_bytes` seen.
    pub peak_bytes: libc::size_t,
    /// Successful allocations so far.
    pub total_allocations: libc::size_t,
    /// Frees so far.
    pub total_frees: libc::size_t,
    /// Misuse reports so far.
    pub errors: libc::size_t,
    /// The kind of the latest report (`la_debug_error` value).
    pub last_error: la_debug_error,
}

/// A length given to a sized free that stands for "the block's length":
/// only the alignment is checked (C++ aligned `operator delete` without a
/// size). No block is this long.
pub(crate) const ANY_LEN: usize = usize::MAX;
/// Fill byte of freed blocks.
pub(crate) const FREE_FILL: u8 = 0xdd;
/// Minimum redzone on each side of a backing block.
pub(crate) const REDZONE: usize = 16;
/// Quarantine ring capacity per shard (blocks): the whole budget of small
/// blocks fits in one shard, which is where a single thread's blocks go.
const QUARANTINE_BLOCKS: usize = 1 << 17;
/// A shard reports its quarantine bytes to the instance's total when they
/// moved by this much since its last report: a shared counter touched once
/// per many frees, not at each.
pub(crate) const QUARANTINE_STEP: usize = 64 << 10;

/// [`la_debug`]'s shared quarantine total, alone in its cache lines (the
/// shards write it now and then; the instance's other fields are read at
/// every call).
#[repr(align(128))]
struct QuarantineHeld(AtomicUsize);

/// Instances alive, so a free given to the wrong one can name the owner.
static REGISTRY: [AtomicPtr<la_debug>; 64] = [const { AtomicPtr::new(ptr::null_mut()) }; 64];
/// Held while an instance is looked at through [`REGISTRY`] and while one
/// leaves it, so no instance is unmapped while another peeks at it.
static REGISTRY_LOCK: RawLock = RawLock::new();

/// Shards of an instance over a shared backing (see [`Shard`]).
pub(crate) const MAX_SHARDS: usize = 8;

/// The bookkeeping of one shard.
struct State {
    table: Table,
    depot: Depot,
    quarantine: Quarantine,
    live_count: usize,
    /// Requested bytes in this shard's live blocks, and their peak.
    live_bytes: usize,
    peak_bytes: usize,
    total_allocs: usize,
    total_frees: usize,
    /// This shard's quarantine bytes as last added to the instance's
    /// `quarantine_held` (see `la_debug::quarantine_sync`).
    q_reported: usize,
}

impl State {
    /// The allocation and free traces of record `r`.
    ///
    /// # Safety
    /// `r` is a record of this state's table.
    unsafe fn traces(&self, r: *const Record) -> (&[usize], &[usize]) {
        // SAFETY: caller's promise: a valid record.
        let (a, f) = unsafe { ((*r).alloc_stack, (*r).free_stack) };
        (self.depot.get(a), self.depot.get(f))
    }
}

/// One lock and the records, stack depot and quarantine it guards. A block
/// belongs to the shard its address picks (`la_debug::shard`): blocks of one
/// 4 MiB span of addresses share a shard, so a thread whose blocks come from
/// segments of its own (the smp allocator's) mostly takes locks, and
/// touches state, that other threads do not. An instance over a backing
/// only callable under a lock has a single shard.
#[repr(align(128))]
struct Shard {
    lock: RawLock,
    /// The index's slot array and mask, mirrored for lock-free prefetch
    /// hints (`table::slot_hint`); possibly stale, never dereferenced.
    index_slots: AtomicUsize,
    index_mask: AtomicUsize,
    /// The table's in-band header key (0: not in-band), for reading
    /// headers before the lock is taken.
    inband_key: AtomicUsize,
    st: UnsafeCell<State>,
}

/// A debug allocator instance (opaque in C).
#[allow(non_camel_case_types)]
pub struct la_debug {
    backing: ChildAllocator,
    /// The backing may be called from any thread at once, so blocks are
    /// obtained from and given back to it without a lock held, and the
    /// instance has [`MAX_SHARDS`] shards.
    backing_shared: bool,
    frames: usize,
    abort: bool,
    report_fd: i32,
    never_reuse: bool,
    check_waf: bool,
    /// Bytes filled from the start of a freed block (`free_fill_max_len`).
    fill_max: usize,
    /// Quarantine bytes over all shards (the budget).
    quarantine_bytes: usize,
    /// A shard holding no more than this (the budget over the shards) is
    /// never made to give blocks up for the others' sake.
    quarantine_fair: usize,
    /// The shards' quarantine bytes, each as last reported (within
    /// [`QUARANTINE_STEP`] of the truth per shard).
    quarantine_held: QuarantineHeld,
    guard_min: usize,
    canary: u64,
    limit: AtomicUsize,
    /// Requested bytes in live blocks over all shards, kept only while a
    /// memory limit is set (see `charge`).
    live_bytes: AtomicUsize,
    /// New records are marked suppressed (allocations before `main`).
    suppress_new: AtomicBool,
    /// The record strategy is [`strategy::InBand`] (the backing offers
    /// live-block queries: smp): blocks of its size classes get an in-band
    /// header instead of an index entry (`inband.rs`), and they are taken
    /// from it directly, not through its vtable. Else
    /// [`strategy::Indexed`].
    in_band: bool,
    nshards: usize,
    shards: [Shard; MAX_SHARDS],
    /// Guarded reservations the quarantine let go of, kept for the next
    /// guarded blocks (`mappings.rs`).
    mappings: mappings::Mappings,
    errors: AtomicUsize,
    last_error: AtomicU32,
}

// SAFETY: all mutable state is in the shards' `st`, each touched only with
// its shard's `lock` held; the rest is immutable after creation or atomic.
unsafe impl Sync for la_debug {}
// SAFETY: as above.
unsafe impl Send for la_debug {}

/// The instance seen through the vtable of record strategy `S`: each
/// strategy has its own vtable (see `strategy.rs`), whose entry points are
/// compiled for it alone.
#[repr(transparent)]
struct Via<S>(la_debug, PhantomData<S>);

/// The vtable of instances with the [`strategy::Indexed`] strategy.
pub(crate) static INDEXED_VTABLE: la_vtable = vtable_of::<Via<Indexed>>();
/// The vtable of instances with the [`strategy::InBand`] strategy.
pub(crate) static IN_BAND_VTABLE: la_vtable = vtable_of::<Via<InBand>>();

// SAFETY: blocks come from `obtain`, which gives at least `len` bytes at the
// requested alignment (front redzone ≥ alignment, backing block aligned at
// least that much; guarded blocks aligned down inside the mapping); resize
// reports success only when the block's capacity covers `new_len`. A
// `Via<S>` is only ever made from an instance whose strategy is `S`
// (`la_debug::allocator`).
unsafe impl<S: Strategy> RawAllocator for Via<S> {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        self.0.alloc_with::<S>(len, alignment, ret_addr)
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        self.0
            .resize_with::<S>(memory, Some((len, alignment)), new_len, ret_addr)
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        if self
            .0
            .resize_with::<S>(memory, Some((len, alignment)), new_len, ret_addr)
        {
            memory
        } else {
            ptr::null_mut()
        }
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        self.0
            .free_with::<S>(memory, Some((len, alignment)), ret_addr)
    }
}

/// Fills `out` with the default configuration: 8 frames, abort on misuse,
/// reports to fd 2, no never-reuse, write-after-free checks on, 4 MiB
/// quarantine, no memory limit, guard pages from 128 KiB, derived canary.
///
/// Parameters: `out` the config to fill; NULL does nothing.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `out` is NULL or points to writable storage for an `la_debug_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_config_init(out: *mut la_debug_config) {
    if !out.is_null() {
        // SAFETY: caller's promise: writable storage.
        unsafe { out.write(la_debug_config::default()) };
    }
}

/// Creates a debug allocator over `backing` (Zig's DebugAllocator and
/// SafeAllocator): traces on every allocation and free, leak reports,
/// double-free / wrong-size / interior / foreign / other-instance pointer
/// reports, redzone and guard-page overflow checks, write-after-free checks,
/// optional never-reuse and memory limit.
///
/// Parameters: `backing` the allocator blocks come from (it must outlive the
/// debug allocator); `cfg` the configuration, NULL for the defaults
/// (`la_debug_config_init`).
///
/// Returns: the allocator handle, or NULL when out of memory or `backing`
/// has a NULL vtable. Misuse reports start with `liballoc: error:` and go to
/// `cfg->report_fd`; with `LA_DEBUG_ABORT` the process aborts after the
/// report, with `LA_DEBUG_CONTINUE` the report is counted (see
/// `la_debug_get_stats`) and the call does nothing harmful (a bad free is
/// ignored, a mismatched free frees the block as recorded, a bad resize
/// returns false).
///
/// Thread safety: the debug allocator may be used from any thread at once
/// (one lock per instance), if `backing` may be used from the thread that
/// calls it.
///
/// # Safety
/// `backing` is a valid allocator; `cfg` is NULL or points to a config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_create(
    backing: la_allocator,
    cfg: *const la_debug_config,
) -> *mut la_debug {
    if backing.vtable.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: caller's promise: NULL or a valid config.
    let cfg = match unsafe { cfg.as_ref() } {
        Some(c) => *c,
        None => la_debug_config::default(),
    };
    trace::init();
    la_debug::create(backing, &cfg)
}

/// The allocator interface of a debug allocator.
///
/// Parameters: `d` the debug allocator; NULL gives an allocator whose every
/// call fails.
///
/// Returns: the allocator (valid until `la_debug_destroy`).
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `d` is NULL or a live debug allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_allocator(d: *mut la_debug) -> la_allocator {
    // SAFETY: caller's promise.
    match unsafe { d.as_ref() } {
        Some(d) => d.allocator(),
        None => la_allocator::NULL,
    }
}

/// Prints a leak report for the blocks still live (grouped by allocation
/// site, with traces; "Direct leak" groups first, then "Indirect leak"
/// groups, the blocks other leaked blocks point to; closing with `SUMMARY:
/// liballoc: X byte(s) leaked in Y allocation(s).`), and nothing when
/// there are none.
///
/// Parameters: `d` the debug allocator; NULL returns false.
///
/// Returns: true when there were leaks.
///
/// Thread safety: safe from any thread (blocks being allocated meanwhile
/// may or may not be listed).
///
/// # Safety
/// `d` is NULL or a live debug allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_detect_leaks(d: *mut la_debug) -> bool {
    // SAFETY: caller's promise.
    match unsafe { d.as_ref() } {
        Some(d) => d.report_leaks(&leaks::Options::default()).1 > 0,
        None => false,
    }
}

/// Reads the counters of a debug allocator.
///
/// Parameters: `d` the debug allocator; `out` where to store them. NULL for
/// either does nothing.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `d` is NULL or a live debug allocator; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_get_stats(d: *const la_debug, out: *mut la_debug_stats) {
    // SAFETY: caller's promise.
    if let (Some(d), false) = (unsafe { d.as_ref() }, out.is_null()) {
        // SAFETY: caller's promise: writable.
        unsafe { out.write(d.stats()) };
    }
}

/// Changes the memory limit: allocations and growing resizes fail when the
/// live requested bytes would exceed `limit` (SIZE_MAX: no limit).
///
/// Parameters: `d` the debug allocator (NULL does nothing); `limit` bytes.
///
/// Thread safety: safe from any thread.
///
/// # Safety
/// `d` is NULL or a live debug allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_set_memory_limit(d: *mut la_debug, limit: libc::size_t) {
    // SAFETY: caller's promise.
    if let Some(d) = unsafe { d.as_ref() } {
        d.set_memory_limit(limit);
    }
}

/// Destroys a debug allocator: reports writes after free and leaks (as
/// `la_debug_detect_leaks`), then gives every block, leaked ones included,
/// back to the backing allocator.
///
/// Parameters: `d` the debug allocator; NULL returns `LA_CHECK_OK`.
///
/// Returns: `LA_CHECK_OK`, or `LA_CHECK_LEAK` when blocks were still live.
///
/// Thread safety: no other thread may use `d` during or after the call.
///
/// # Safety
/// `d` is NULL or a live debug allocator, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_debug_destroy(d: *mut la_debug) -> la_check {
    if d.is_null() {
        return la_check::LA_CHECK_OK;
    }
    // SAFETY: caller's promise.
    unsafe { la_debug::destroy(d) }
}

#[cfg(test)]
mod tests;
