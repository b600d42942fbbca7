//! The debug allocator (`la_debug`): Zig's `DebugAllocator` and
//! `SafeAllocator` for C, over any backing allocator.
//!
//! Every block gets a record kept out of band (`table.rs`) with its length,
//! alignment, state and two stack traces (allocation and free, captured by a
//! frame-pointer walk, `trace.rs`). The user block sits between two redzones
//! filled with this instance's canary bytes; they are checked on free and
//! resize (overflow past the requested length, underflow before the block).
//! Blocks of at least `guard_page_min_len` bytes are their own mapping with
//! a guard page on each side, placed so the block ends at the upper guard.
//! Freed blocks are filled with `0xdd` and held in a quarantine (or forever
//! with `never_reuse`); when they leave it the fill is verified (write after
//! free). Misuse -- double free, wrong length or alignment, interior,
//! foreign or other-instance pointers, overflows -- is reported with traces
//! (`report.rs`), then aborts or, with `LA_DEBUG_CONTINUE`, is counted and
//! the call does the safest thing. Leaks are reported grouped by allocation
//! site (`leaks.rs`). One lock per instance makes it thread-safe.

pub mod check_all;
pub mod leaks;
pub mod lock;
pub mod maps;
pub mod out;
pub mod report;
pub mod roots;
pub mod scratch;
pub mod symbolize;
pub mod table;
pub mod trace;

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use crate::alignment;
use crate::sys;
use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};

use lock::SpinLock;
use report::TraceRef;
use table::{FREED, KIND_BACKING, KIND_GUARDED, LIVE, Quarantine, Record, Table};
use trace::MAX_FRAMES;

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
    /// quarantine (write-after-free detection); default true.
    pub check_write_after_free: bool,
    /// Bytes of freed blocks held back before reuse; default 4 MiB.
    pub quarantine_bytes: libc::size_t,
    /// Allocation fails (NULL) when live requested bytes would exceed this;
    /// default SIZE_MAX (no limit).
    pub memory_limit: libc::size_t,
    /// Blocks of at least this many bytes get guard pages and are mapped
    /// from the OS directly (not from the backing allocator); default
    /// 128 KiB; 0 disables guard pages.
    pub guard_page_min_len: libc::size_t,
    /// The per-instance canary written in redzones; 0 (default) derives one
    /// from the instance's address.
    pub canary: u64,
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

/// Fill byte of freed blocks.
pub const FREE_FILL: u8 = 0xdd;
/// Minimum redzone on each side of a backing block.
const REDZONE: usize = 16;
/// Quarantine ring capacity (blocks).
const QUARANTINE_BLOCKS: usize = 1 << 16;

/// Instances alive, so a free given to the wrong one can name the owner.
static REGISTRY: [AtomicPtr<la_debug>; 64] = [const { AtomicPtr::new(ptr::null_mut()) }; 64];

struct State {
    table: Table,
    quarantine: Quarantine,
    live_bytes: usize,
    live_count: usize,
    peak: usize,
    total_allocs: usize,
    total_frees: usize,
    /// New records are marked suppressed (allocations before `main`).
    suppress_new: bool,
}

/// A debug allocator instance (opaque in C).
#[allow(non_camel_case_types)]
pub struct la_debug {
    backing: ChildAllocator,
    frames: usize,
    abort: bool,
    report_fd: i32,
    never_reuse: bool,
    check_waf: bool,
    quarantine_bytes: usize,
    guard_min: usize,
    canary: u64,
    limit: AtomicUsize,
    lock: SpinLock,
    st: UnsafeCell<State>,
    errors: AtomicUsize,
    last_error: AtomicU32,
}

// SAFETY: all mutable state is in `st`, touched only with `lock` held; the
// rest is immutable after creation or atomic.
unsafe impl Sync for la_debug {}
// SAFETY: as above.
unsafe impl Send for la_debug {}

/// What a lookup of a pointer that is no block's start found.
enum Unknown {
    Interior(*mut Record),
    OtherInstance,
    Foreign,
}

#[inline]
fn canary_byte(canary: u64, addr: usize) -> u8 {
    (canary >> ((addr & 7) * 8)) as u8
}

fn fill_canary(canary: u64, lo: usize, hi: usize) {
    let mut a = lo;
    while a < hi && !a.is_multiple_of(8) {
        // SAFETY: callers pass redzone ranges inside a block we own.
        unsafe { *(a as *mut u8) = canary_byte(canary, a) };
        a += 1;
    }
    // An aligned word holds the canary's bytes in address order.
    while a + 8 <= hi {
        // SAFETY: as above; `a` is 8-aligned.
        unsafe { *(a as *mut u64) = canary.to_le() };
        a += 8;
    }
    while a < hi {
        // SAFETY: as above.
        unsafe { *(a as *mut u8) = canary_byte(canary, a) };
        a += 1;
    }
}

/// The first address in `[lo, hi)` not holding the canary.
fn check_canary(canary: u64, lo: usize, hi: usize) -> Option<usize> {
    let mut a = lo;
    while a < hi {
        if a.is_multiple_of(8) && a + 8 <= hi {
            // SAFETY: callers pass redzone ranges inside a block we own.
            if unsafe { *(a as *const u64) } == canary.to_le() {
                a += 8;
                continue;
            }
        }
        // SAFETY: as above.
        if unsafe { *(a as *const u8) } != canary_byte(canary, a) {
            return Some(a);
        }
        a += 1;
    }
    None
}

/// The offset of the first byte of `bytes` that is not `FREE_FILL`.
fn first_unfilled(bytes: &[u8]) -> Option<usize> {
    const WORD: u64 = u64::from_ne_bytes([FREE_FILL; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut off = 0;
    for c in &mut chunks {
        let w = u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if w != WORD {
            return c.iter().position(|&b| b != FREE_FILL).map(|i| off + i);
        }
        off += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b != FREE_FILL)
        .map(|i| off + i)
}

impl la_debug {
    /// Creates an instance in its own mapping; NULL when out of memory.
    /// Call [`trace::init`] first, outside any allocator (the C entry point
    /// does).
    pub fn create(backing: la_allocator, cfg: &la_debug_config) -> *mut la_debug {
        let Some(mem) = sys::map(core::mem::size_of::<la_debug>()) else {
            return ptr::null_mut();
        };
        let p = mem.as_ptr().cast::<la_debug>();
        let frames = cfg.stack_trace_frames.min(MAX_FRAMES);
        let canary = if cfg.canary != 0 {
            cfg.canary
        } else {
            (p as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x85df_f10f_9232_a6ff
        };
        let d = la_debug {
            backing: ChildAllocator(backing),
            frames,
            abort: cfg.on_error != la_debug_on_error::LA_DEBUG_CONTINUE,
            report_fd: cfg.report_fd,
            never_reuse: cfg.never_reuse,
            check_waf: cfg.check_write_after_free,
            quarantine_bytes: cfg.quarantine_bytes,
            guard_min: cfg.guard_page_min_len,
            canary,
            limit: AtomicUsize::new(cfg.memory_limit),
            lock: SpinLock::new(),
            st: UnsafeCell::new(State {
                table: Table::new(frames),
                quarantine: Quarantine::new(QUARANTINE_BLOCKS),
                live_bytes: 0,
                live_count: 0,
                peak: 0,
                total_allocs: 0,
                total_frees: 0,
                suppress_new: false,
            }),
            errors: AtomicUsize::new(0),
            last_error: AtomicU32::new(0),
        };
        // SAFETY: fresh mapping, large and aligned enough for la_debug.
        unsafe { p.write(d) };
        for slot in &REGISTRY {
            if slot
                .compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        p
    }

    /// The allocator handle of this instance.
    pub fn allocator(&self) -> la_allocator {
        la_allocator {
            ptr: self as *const la_debug as *mut c_void,
            vtable: &VTABLE,
        }
    }

    /// The mutable state.
    ///
    /// # Safety
    /// `self.lock` is held by the caller, and no other reference to the state
    /// is live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn state(&self) -> &mut State {
        // SAFETY: caller's promise: exclusive under the lock.
        unsafe { &mut *self.st.get() }
    }

    /// Sets or clears marking new blocks as suppressed (never leaks).
    pub fn set_suppress_new(&self, on: bool) {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        unsafe { self.state() }.suppress_new = on;
    }

    /// Takes the lock for `fork()` (the child then calls [`Self::after_fork`]).
    pub fn lock_for_fork(&self) {
        self.lock.acquire_raw();
    }

    /// Releases the lock taken by [`Self::lock_for_fork`], in parent and child.
    pub fn after_fork(&self) {
        self.lock.reset();
    }

    /// Counters.
    pub fn stats(&self) -> la_debug_stats {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        la_debug_stats {
            live_bytes: st.live_bytes,
            live_allocations: st.live_count,
            peak_bytes: st.peak,
            total_allocations: st.total_allocs,
            total_frees: st.total_frees,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: la_debug_error::from_u32(self.last_error.load(Ordering::Relaxed)),
        }
    }

    /// Sets the memory limit (live requested bytes).
    pub fn set_memory_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    fn capture(&self, out: &mut [usize; MAX_FRAMES], ret_addr: usize) -> usize {
        trace::capture(&mut out[..self.frames], ret_addr)
    }

    /// Counts a report and aborts unless configured to continue.
    fn raise(&self, kind: la_debug_error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.last_error.store(kind as u32, Ordering::Relaxed);
        if self.abort {
            // SAFETY: abort has no preconditions.
            unsafe { libc::abort() };
        }
    }

    /// The redzones of a record: `[(front_lo, front_hi), (back_lo, back_hi)]`.
    fn zones(r: &Record) -> [(usize, usize); 2] {
        let (lo, hi) = if r.kind == KIND_GUARDED {
            let page = sys::page_size();
            (r.base + page, r.base + r.base_len - page)
        } else {
            (r.base, r.base + r.base_len)
        };
        [(lo, r.addr), (r.addr + r.len, hi)]
    }

    /// Bytes the block can grow to in place.
    fn capacity(r: &Record) -> usize {
        if r.kind == KIND_GUARDED {
            r.base + r.base_len - sys::page_size() - r.addr
        } else {
            r.base + r.base_len - REDZONE - r.addr
        }
    }

    /// Gets memory for a `len`-byte block into `r` (addr, base, ...).
    ///
    /// # Safety
    /// `r` is a fresh record; `len > 0`, `align < 64`.
    unsafe fn obtain(&self, r: &mut Record, len: usize, align: u8, ret_addr: usize) -> bool {
        let Some(align_b) = alignment::to_bytes(align) else {
            return false;
        };
        let page = sys::page_size();
        if self.guard_min != 0 && len >= self.guard_min {
            let Some(commit) = len
                .checked_add(align_b - 1)
                .and_then(|n| alignment::forward(n, page))
            else {
                return false;
            };
            let Some(total) = commit.checked_add(2 * page) else {
                return false;
            };
            let Some(base) = sys::reserve(total) else {
                return false;
            };
            let base = base.as_ptr() as usize;
            // SAFETY: the middle of the reservation we just made.
            if !unsafe { sys::protect_rw((base + page) as *mut u8, commit) } {
                // SAFETY: our reservation.
                unsafe { sys::unmap(base as *mut u8, total) };
                return false;
            }
            let top = base + page + commit;
            r.addr = alignment::backward(top - len, align_b);
            r.base = base;
            r.base_len = total;
            r.base_align = align;
            r.kind = KIND_GUARDED;
        } else {
            let front = REDZONE.max(align_b);
            let Some(base_len) =
                alignment::forward(len, REDZONE).and_then(|b| b.checked_add(front + REDZONE))
            else {
                return false;
            };
            let base_align = align.max(4);
            // SAFETY: base_len > 0; the backing is valid (create's contract).
            let Some(base) = (unsafe { self.backing.alloc(base_len, base_align, ret_addr) }) else {
                return false;
            };
            let base = base.as_ptr() as usize;
            r.addr = base + front;
            r.base = base;
            r.base_len = base_len;
            r.base_align = base_align;
            r.kind = KIND_BACKING;
        }
        r.len = len;
        r.align = align;
        for (lo, hi) in Self::zones(r) {
            fill_canary(self.canary, lo, hi);
        }
        true
    }

    /// Gives a block's memory back (backing free or unmap).
    ///
    /// # Safety
    /// The record's block is ours and dead.
    unsafe fn give_back(&self, r: &Record) {
        if r.kind == KIND_GUARDED {
            // SAFETY: the whole reservation was made by `obtain`.
            unsafe { sys::unmap(r.base as *mut u8, r.base_len) };
        } else {
            // SAFETY: the backing block as allocated.
            unsafe {
                self.backing
                    .free(r.base as *mut u8, r.base_len, r.base_align, 0)
            };
        }
    }

    /// Allocates `len > 0` bytes aligned to `1 << align`.
    pub fn alloc(&self, len: usize, align: u8, ret_addr: usize) -> *mut u8 {
        if len == 0 || align > alignment::MAX_LOG2 {
            return ptr::null_mut();
        }
        let mut tr = [0usize; MAX_FRAMES];
        let n = self.capture(&mut tr, ret_addr);
        let tid = trace::tid();
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        match st.live_bytes.checked_add(len) {
            Some(t) if t <= self.limit.load(Ordering::Relaxed) => {}
            _ => return ptr::null_mut(),
        }
        let r = st.table.new_record();
        if r.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: fresh record; len > 0 and align checked.
        if !unsafe { self.obtain(&mut *r, len, align, ret_addr) } {
            // SAFETY: not indexed.
            unsafe { st.table.drop_record(r) };
            return ptr::null_mut();
        }
        // SAFETY: r is a valid record we own exclusively under the lock.
        let rec = unsafe { &mut *r };
        if let Some(stale) = st.table.find(rec.addr) {
            // Only possible when the backing reused an address whose record
            // was kept (never happens for quarantined blocks, whose memory is
            // still held): forget the old record.
            st.table.remove(rec.addr);
            // SAFETY: removed from the index; not in the quarantine (see above).
            unsafe { st.table.drop_record(stale) };
        }
        if !st.table.insert(r) {
            // SAFETY: the block was just obtained and is unused.
            unsafe {
                self.give_back(rec);
                st.table.drop_record(r);
            }
            return ptr::null_mut();
        }
        rec.state = LIVE;
        rec.n_alloc = n as u8;
        rec.n_free = 0;
        rec.suppressed = st.suppress_new as u8;
        rec._pad = 0;
        rec.alloc_tid = tid;
        rec.free_tid = 0;
        // SAFETY: r is a record of this table.
        unsafe { st.table.alloc_trace(r)[..n].copy_from_slice(&tr[..n]) };
        st.live_bytes += len;
        st.live_count += 1;
        st.total_allocs += 1;
        st.peak = st.peak.max(st.live_bytes);
        rec.addr as *mut u8
    }

    /// Explains a pointer that is no block's start. Called with our lock
    /// held, on error paths only; it takes each other instance's lock in
    /// turn to look the pointer up there. (Two threads doing this at once
    /// across the same two instances could deadlock: misuse reports are
    /// expected to be rare and, by default, fatal.)
    fn classify(&self, st: &State, p: usize) -> Unknown {
        if let Some(r) = st.table.find_containing(p) {
            return Unknown::Interior(r);
        }
        for slot in &REGISTRY {
            let o = slot.load(Ordering::Acquire);
            if o.is_null() || ptr::eq(o, self) {
                continue;
            }
            // SAFETY: registered instances are alive until they unregister.
            let other = unsafe { &*o };
            let _g = other.lock.lock();
            // SAFETY: the other instance's lock is held.
            let ost = unsafe { other.state() };
            if ost.table.find(p).is_some() || ost.table.find_containing(p).is_some() {
                return Unknown::OtherInstance;
            }
        }
        Unknown::Foreign
    }

    /// Reports a bad pointer given to `op` ("free", "resize", ...).
    fn report_unknown(&self, st: &State, op: &str, p: usize, here: &[usize], tid: u32) {
        match self.classify(st, p) {
            Unknown::Interior(r) => {
                // SAFETY: an indexed record.
                let rec = unsafe { &*r };
                // SAFETY: r belongs to our table.
                let at = unsafe { st.table.alloc_trace(r) };
                let state = if rec.state == LIVE { "live" } else { "freed" };
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!(
                                "{op} of interior pointer 0x{p:x}: {} byte(s) into a {state} block of {} byte(s) at 0x{:x}",
                                p - rec.addr,
                                rec.len,
                                rec.addr
                            ),
                        );
                    },
                    &[
                        TraceRef {
                            label: op_label(op),
                            tid,
                            frames: here,
                        },
                        TraceRef {
                            label: "block allocated",
                            tid: rec.alloc_tid,
                            frames: &at[..rec.n_alloc as usize],
                        },
                    ],
                );
                self.raise(la_debug_error::LA_DEBUG_INTERIOR_POINTER);
            }
            Unknown::OtherInstance => {
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!("{op} of 0x{p:x}, a block of another la_debug instance"),
                        );
                    },
                    &[TraceRef {
                        label: op_label(op),
                        tid,
                        frames: here,
                    }],
                );
                self.raise(la_debug_error::LA_DEBUG_OTHER_INSTANCE);
            }
            Unknown::Foreign => {
                report::misuse(
                    self.report_fd,
                    |o| {
                        let _ = core::fmt::Write::write_fmt(
                            o,
                            format_args!(
                                "{op} of foreign pointer 0x{p:x} (not allocated by this allocator)"
                            ),
                        );
                    },
                    &[TraceRef {
                        label: op_label(op),
                        tid,
                        frames: here,
                    }],
                );
                self.raise(la_debug_error::LA_DEBUG_FOREIGN_POINTER);
            }
        }
    }

    /// Reports an operation on a freed block (double free, realloc after free).
    fn report_freed(&self, st: &State, op: &str, r: *mut Record, here: &[usize], tid: u32) {
        // SAFETY: an indexed record of our table.
        let rec = unsafe { &*r };
        // SAFETY: as above.
        let (at, ft) = unsafe { (st.table.alloc_trace(r), st.table.free_trace(r)) };
        let double = op == "free";
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if double {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!("double free of 0x{:x} ({} byte(s))", rec.addr, rec.len),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!("{op} of freed block 0x{:x} ({} byte(s))", rec.addr, rec.len),
                    )
                };
            },
            &[
                TraceRef {
                    label: if double { "freed again" } else { op_label(op) },
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "first freed",
                    tid: rec.free_tid,
                    frames: &ft[..rec.n_free as usize],
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: &at[..rec.n_alloc as usize],
                },
            ],
        );
        self.raise(if double {
            la_debug_error::LA_DEBUG_DOUBLE_FREE
        } else {
            la_debug_error::LA_DEBUG_USE_AFTER_FREE
        });
    }

    /// Reports a length/alignment mismatch; true when the call matched.
    #[allow(clippy::too_many_arguments)]
    fn check_shape(
        &self,
        st: &State,
        op: &str,
        r: *mut Record,
        len: usize,
        align: u8,
        here: &[usize],
        tid: u32,
    ) -> bool {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        if rec.len == len && rec.align == align {
            return true;
        }
        // SAFETY: our record.
        let at = unsafe { st.table.alloc_trace(r) };
        let size = rec.len != len;
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if size {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "{op} with wrong size: block 0x{:x} has {} byte(s), {op} was given {len}",
                            rec.addr, rec.len
                        ),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "{op} with wrong alignment: block 0x{:x} has alignment {}, {op} was given {}",
                            rec.addr,
                            1usize << rec.align,
                            1usize << align
                        ),
                    )
                };
            },
            &[
                TraceRef {
                    label: op_label(op),
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: &at[..rec.n_alloc as usize],
                },
            ],
        );
        self.raise(if size {
            la_debug_error::LA_DEBUG_WRONG_SIZE
        } else {
            la_debug_error::LA_DEBUG_WRONG_ALIGNMENT
        });
        false
    }

    /// Checks the redzones of a live block, reporting damage.
    fn check_zones(&self, st: &State, r: *mut Record, here: &[usize], tid: u32) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        let [front, back] = Self::zones(rec);
        let over = check_canary(self.canary, back.0, back.1);
        let under = if over.is_none() {
            check_canary(self.canary, front.0, front.1)
        } else {
            None
        };
        let Some(bad) = over.or(under) else {
            return;
        };
        // SAFETY: our record.
        let at = unsafe { st.table.alloc_trace(r) };
        let is_over = over.is_some();
        report::misuse(
            self.report_fd,
            |o| {
                let _ = if is_over {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "heap buffer overflow: byte {} past the end of the {}-byte block 0x{:x} was overwritten",
                            bad - back.0,
                            rec.len,
                            rec.addr
                        ),
                    )
                } else {
                    core::fmt::Write::write_fmt(
                        o,
                        format_args!(
                            "heap buffer underflow: byte {} before the {}-byte block 0x{:x} was overwritten",
                            rec.addr - bad,
                            rec.len,
                            rec.addr
                        ),
                    )
                };
            },
            &[
                TraceRef {
                    label: "detected on free",
                    tid,
                    frames: here,
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: &at[..rec.n_alloc as usize],
                },
            ],
        );
        self.raise(if is_over {
            la_debug_error::LA_DEBUG_OVERFLOW
        } else {
            la_debug_error::LA_DEBUG_UNDERFLOW
        });
        // Repair so the same damage is reported once.
        fill_canary(self.canary, front.0, front.1);
        fill_canary(self.canary, back.0, back.1);
    }

    /// Verifies the free fill of a quarantined block, reporting writes.
    fn check_fill(&self, st: &State, r: *mut Record) {
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        if !self.check_waf || rec.kind != KIND_BACKING {
            return;
        }
        // SAFETY: the freed block's memory is still held (quarantine).
        let bytes = unsafe { core::slice::from_raw_parts(rec.addr as *const u8, rec.len) };
        let Some(off) = first_unfilled(bytes) else {
            return;
        };
        // SAFETY: our record.
        let (at, ft) = unsafe { (st.table.alloc_trace(r), st.table.free_trace(r)) };
        report::misuse(
            self.report_fd,
            |o| {
                let _ = core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "write after free: byte {off} of the freed {}-byte block 0x{:x} was modified",
                        rec.len, rec.addr
                    ),
                );
            },
            &[
                TraceRef {
                    label: "freed",
                    tid: rec.free_tid,
                    frames: &ft[..rec.n_free as usize],
                },
                TraceRef {
                    label: "allocated",
                    tid: rec.alloc_tid,
                    frames: &at[..rec.n_alloc as usize],
                },
            ],
        );
        self.raise(la_debug_error::LA_DEBUG_WRITE_AFTER_FREE);
        // SAFETY: as above; refill so it is reported once.
        unsafe { ptr::write_bytes(rec.addr as *mut u8, FREE_FILL, rec.len) };
    }

    /// Removes a quarantined block for good: verify, give back, forget.
    fn evict(&self, st: &mut State, r: *mut Record) {
        self.check_fill(st, r);
        // SAFETY: a freed record whose memory we still hold.
        unsafe {
            self.give_back(&*r);
            st.table.remove((*r).addr);
            st.table.drop_record(r);
        }
    }

    /// Marks a live block freed (traces, fill, quarantine).
    fn retire(&self, st: &mut State, r: *mut Record, here: &[usize], tid: u32) {
        // SAFETY: an indexed live record.
        let rec = unsafe { &mut *r };
        rec.state = FREED;
        rec.n_free = here.len() as u8;
        rec.free_tid = tid;
        // SAFETY: our record.
        unsafe { st.table.free_trace(r)[..here.len()].copy_from_slice(here) };
        st.live_bytes -= rec.len;
        st.live_count -= 1;
        st.total_frees += 1;
        if rec.kind == KIND_GUARDED {
            let page = sys::page_size();
            // SAFETY: the committed middle of our own reservation.
            unsafe { sys::protect_none((rec.base + page) as *mut u8, rec.base_len - 2 * page) };
        } else if self.check_waf {
            // SAFETY: the user range of a block we hold.
            unsafe { ptr::write_bytes(rec.addr as *mut u8, FREE_FILL, rec.len) };
        }
        if self.never_reuse {
            return;
        }
        if st.quarantine.full()
            && let Some(old) = st.quarantine.pop()
        {
            self.evict(st, old);
        }
        // SAFETY: the record stays indexed (valid) until evicted.
        if !unsafe { st.quarantine.push(r) } {
            self.evict(st, r);
            return;
        }
        while st.quarantine.bytes > self.quarantine_bytes {
            let Some(old) = st.quarantine.pop() else {
                break;
            };
            self.evict(st, old);
        }
    }

    /// Frees a block; `shape` is `Some((len, align))` for sized frees (the
    /// vtable) and `None` for `free(p)`.
    pub fn free(&self, p: *mut u8, shape: Option<(usize, u8)>, ret_addr: usize) {
        if p.is_null() {
            return;
        }
        let mut tr = [0usize; MAX_FRAMES];
        let n = self.capture(&mut tr, ret_addr);
        let here = &tr[..n];
        let tid = trace::tid();
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        let Some(r) = st.table.find(p as usize) else {
            self.report_unknown(st, "free", p as usize, here, tid);
            return;
        };
        // SAFETY: an indexed record.
        if unsafe { (*r).state } == FREED {
            self.report_freed(st, "free", r, here, tid);
            return;
        }
        if let Some((len, align)) = shape {
            // A mismatch is reported; the block is still freed as recorded.
            self.check_shape(st, "free", r, len, align, here, tid);
        }
        self.check_zones(st, r, here, tid);
        self.retire(st, r, here, tid);
    }

    /// Finds the live record of `p` for a resize-like operation, reporting
    /// misuse. `shape` as for [`Self::free`].
    fn live_for(
        &self,
        st: &State,
        op: &str,
        p: usize,
        shape: Option<(usize, u8)>,
        here: &[usize],
        tid: u32,
    ) -> Option<*mut Record> {
        let Some(r) = st.table.find(p) else {
            self.report_unknown(st, op, p, here, tid);
            return None;
        };
        // SAFETY: an indexed record.
        if unsafe { (*r).state } == FREED {
            self.report_freed(st, op, r, here, tid);
            return None;
        }
        if let Some((len, align)) = shape
            && !self.check_shape(st, op, r, len, align, here, tid)
        {
            return None;
        }
        Some(r)
    }

    /// Resizes a live block in place; true when it now has `new_len` bytes.
    pub fn resize(
        &self,
        p: *mut u8,
        shape: Option<(usize, u8)>,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        if p.is_null() || new_len == 0 {
            return false;
        }
        let mut tr = [0usize; MAX_FRAMES];
        let n = self.capture(&mut tr, ret_addr);
        let here = &tr[..n];
        let tid = trace::tid();
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        let op = if shape.is_some() { "resize" } else { "realloc" };
        let Some(r) = self.live_for(st, op, p as usize, shape, here, tid) else {
            return false;
        };
        self.check_zones(st, r, here, tid);
        // SAFETY: an indexed live record, exclusively ours under the lock.
        let rec = unsafe { &mut *r };
        if new_len > rec.len {
            match (st.live_bytes - rec.len).checked_add(new_len) {
                Some(t) if t <= self.limit.load(Ordering::Relaxed) => {}
                _ => return false,
            }
        }
        if new_len > Self::capacity(rec) {
            if rec.kind != KIND_BACKING {
                return false;
            }
            let front = rec.addr - rec.base;
            let Some(new_base_len) =
                alignment::forward(new_len, REDZONE).and_then(|b| b.checked_add(front + REDZONE))
            else {
                return false;
            };
            // SAFETY: the backing block as last granted.
            if !unsafe {
                self.backing.resize(
                    rec.base as *mut u8,
                    rec.base_len,
                    rec.base_align,
                    new_base_len,
                    ret_addr,
                )
            } {
                return false;
            }
            rec.base_len = new_base_len;
        }
        st.live_bytes = st.live_bytes - rec.len + new_len;
        st.peak = st.peak.max(st.live_bytes);
        rec.len = new_len;
        let [_, back] = Self::zones(rec);
        fill_canary(self.canary, back.0, back.1);
        true
    }

    /// The requested length of a live block (malloc_usable_size), reporting
    /// freed, interior and foreign pointers (then 0).
    pub fn usable_size(&self, p: *const u8, ret_addr: usize) -> usize {
        if p.is_null() {
            return 0;
        }
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        if let Some(r) = st.table.find(p as usize) {
            // SAFETY: indexed record.
            if unsafe { (*r).state } == LIVE {
                // SAFETY: as above.
                return unsafe { (*r).len };
            }
        }
        let mut tr = [0usize; MAX_FRAMES];
        let n = self.capture(&mut tr, ret_addr);
        self.live_for(
            st,
            "malloc_usable_size",
            p as usize,
            None,
            &tr[..n],
            trace::tid(),
        );
        0
    }

    /// The requested length of live block `p`; reports misuse as done by
    /// `op` (freed, interior, foreign pointers) and then gives `None`.
    pub fn live_len(&self, p: *const u8, op: &str, ret_addr: usize) -> Option<usize> {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        if let Some(r) = st.table.find(p as usize) {
            // SAFETY: indexed record.
            if unsafe { (*r).state } == LIVE {
                // SAFETY: as above.
                return Some(unsafe { (*r).len });
            }
        }
        let mut tr = [0usize; MAX_FRAMES];
        let n = self.capture(&mut tr, ret_addr);
        self.live_for(st, op, p as usize, None, &tr[..n], trace::tid());
        None
    }

    /// Explains a memory fault at `addr` (from a SIGSEGV handler) when it
    /// hit a guard page or a freed guarded block: prints the report (with
    /// the faulting context's trace `here`) and returns true; false when
    /// the address is not ours or the lock cannot be taken.
    pub fn explain_fault(&self, addr: usize, here: &[usize]) -> bool {
        let Some(_g) = self.lock.try_lock() else {
            return false;
        };
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        let mut hit = None;
        st.table.for_each(|r| {
            // SAFETY: indexed records are valid.
            let rec = unsafe { &*r };
            if rec.kind == KIND_GUARDED && rec.base <= addr && addr < rec.base + rec.base_len {
                hit = Some(r);
            }
        });
        let Some(r) = hit else {
            return false;
        };
        // SAFETY: an indexed record.
        let rec = unsafe { &*r };
        // SAFETY: our record.
        let (at, ft) = unsafe { (st.table.alloc_trace(r), st.table.free_trace(r)) };
        let end = rec.addr + rec.len;
        let kind = if rec.state == FREED {
            la_debug_error::LA_DEBUG_USE_AFTER_FREE
        } else if addr >= end {
            la_debug_error::LA_DEBUG_OVERFLOW
        } else {
            la_debug_error::LA_DEBUG_UNDERFLOW
        };
        let freed = rec.state == FREED;
        let tid = trace::tid();
        let access = TraceRef {
            label: "faulting access",
            tid,
            frames: here,
        };
        let alloc = TraceRef {
            label: "allocated",
            tid: rec.alloc_tid,
            frames: &at[..rec.n_alloc as usize],
        };
        let free = TraceRef {
            label: "freed",
            tid: rec.free_tid,
            frames: &ft[..rec.n_free as usize],
        };
        let head = |o: &mut out::Out| {
            let _ = match kind {
                la_debug_error::LA_DEBUG_USE_AFTER_FREE => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "use after free: access at 0x{addr:x} in the freed {}-byte block 0x{:x}",
                        rec.len, rec.addr
                    ),
                ),
                la_debug_error::LA_DEBUG_OVERFLOW => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "heap buffer overflow (guard page): access at 0x{addr:x} is {} byte(s) past the end of the {}-byte block 0x{:x}",
                        addr - end,
                        rec.len,
                        rec.addr
                    ),
                ),
                _ => core::fmt::Write::write_fmt(
                    o,
                    format_args!(
                        "heap buffer underflow (guard page): access at 0x{addr:x} is {} byte(s) before the {}-byte block 0x{:x}",
                        rec.addr.saturating_sub(addr),
                        rec.len,
                        rec.addr
                    ),
                ),
            };
        };
        if freed {
            report::misuse(self.report_fd, head, &[access, free, alloc]);
        } else {
            report::misuse(self.report_fd, head, &[access, alloc]);
        }
        self.raise(kind);
        true
    }

    /// The requested length of live block `p`, without reporting anything.
    pub fn len_of(&self, p: *const u8) -> Option<usize> {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        // SAFETY: indexed records are valid.
        st.table
            .find(p as usize)
            .filter(|&r| unsafe { (*r).state } == LIVE)
            // SAFETY: as above.
            .map(|r| unsafe { (*r).len })
    }

    /// Whether `p` is the start of a live block of this instance.
    pub fn owns(&self, p: *const u8) -> bool {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        // SAFETY: indexed records are valid.
        st.table
            .find(p as usize)
            .is_some_and(|r| unsafe { (*r).state } == LIVE)
    }

    /// Reports write-after-free in every held block (quarantine and
    /// never-reuse), without releasing them.
    pub fn verify_freed(&self) {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        st.table.for_each(|r| {
            // SAFETY: indexed record.
            if unsafe { (*r).state } == FREED {
                self.check_fill(st, r);
            }
        });
    }

    /// Prints a leak report (see `leaks.rs`); returns (bytes, blocks) leaked.
    pub fn report_leaks(&self, opts: &leaks::Options<'_>) -> (usize, usize) {
        let _g = self.lock.lock();
        // SAFETY: lock held.
        let st = unsafe { self.state() };
        leaks::report(&st.table, self.report_fd, opts)
    }

    /// Gives every block back and unmaps the instance.
    ///
    /// # Safety
    /// `d` came from [`la_debug::create`]; nothing uses it afterwards.
    pub unsafe fn destroy(d: *mut la_debug) -> la_check {
        // SAFETY: caller's promise: d is a live instance.
        let this = unsafe { &*d };
        this.verify_freed();
        let (_, leaked) = this.report_leaks(&leaks::Options::default());
        for slot in &REGISTRY {
            let _ = slot.compare_exchange(d, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
        }
        {
            let _g = this.lock.lock();
            // SAFETY: lock held.
            let st = unsafe { this.state() };
            st.table.for_each(|r| {
                // SAFETY: every indexed record's block is ours to give back.
                unsafe { this.give_back(&*r) };
            });
            st.table.release();
            st.quarantine.release();
        }
        // SAFETY: mapped by `create` with this size; nothing uses it now.
        unsafe { sys::unmap(d.cast(), core::mem::size_of::<la_debug>()) };
        if leaked > 0 {
            la_check::LA_CHECK_LEAK
        } else {
            la_check::LA_CHECK_OK
        }
    }
}

fn op_label(op: &str) -> &'static str {
    match op {
        "free" => "freed",
        "resize" => "resized",
        "remap" => "remapped",
        "realloc" => "reallocated",
        "malloc_usable_size" => "asked for its size",
        _ => "called",
    }
}

static VTABLE: la_vtable = vtable_of::<la_debug>();

// SAFETY: blocks come from `obtain`, which gives at least `len` bytes at the
// requested alignment (front redzone ≥ alignment, backing block aligned at
// least that much; guarded blocks aligned down inside the mapping); resize
// reports success only when the block's capacity covers `new_len`.
unsafe impl RawAllocator for la_debug {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        la_debug::alloc(self, len, alignment, ret_addr)
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        la_debug::resize(self, memory, Some((len, alignment)), new_len, ret_addr)
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        if la_debug::resize(self, memory, Some((len, alignment)), new_len, ret_addr) {
            memory
        } else {
            ptr::null_mut()
        }
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        la_debug::free(self, memory, Some((len, alignment)), ret_addr)
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
/// site, with traces, closing with `SUMMARY: liballoc: X byte(s) leaked in
/// Y allocation(s).`), and nothing when there are none.
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
