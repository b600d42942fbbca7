//! The debug allocator's core: creating an instance, and allocation,
//! resize, free, quarantine and teardown on top of the records
//! (`table.rs`), the quarantine (`quarantine.rs`), redzones (`redzone.rs`)
//! and misuse checks (`misuse.rs`).
//!
//! Every operation captures its trace (and hashes it for the stack depot)
//! before taking the lock of the block's shard (one per instance, or, over
//! a backing that may be called from any thread, one per shard of the
//! address space: see `Shard`), then does its bookkeeping under it.
//! Blocks come from the backing allocator (or, when large, from guarded OS
//! mappings). Work that needs no lock is done without it, so threads wait
//! for each other less: the free fill of blocks over 1 KiB, the
//! verification of the fills of blocks leaving the quarantine (taken out in
//! batches, so the lock is taken again once per batch), mapping and
//! protecting guarded blocks, and, over a backing that may be called from
//! any thread (the shim's smp), getting and giving back blocks.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use super::fill::{fill_bytes, first_unfilled};
use super::mappings::Mappings;
use super::quarantine::low_water;
use super::redzone::{default_canary, fill_canary};
use super::strategy::{Free, InBand, Indexed, Strategy};
use super::table::{
    self, FREED, HDR, INBAND_FRONT, KIND_BACKING, KIND_GUARDED, LIVE, Quarantine, Record, Table,
};
use super::{
    FREE_FILL, IN_BAND_VTABLE, INDEXED_VTABLE, MAX_SHARDS, QUARANTINE_BLOCKS, QUARANTINE_STEP,
    QuarantineHeld, REDZONE, REGISTRY, REGISTRY_LOCK, Shard, State, la_check, la_debug,
    la_debug_config, la_debug_error, la_debug_on_error, la_debug_stats, leaks, roots,
};
use crate::alignment;
use crate::diag::depot::Depot;
use crate::diag::trace::{self, MAX_FRAMES};
use crate::sys;
use crate::sys::lock::RawLock;
use crate::vtable::{ChildAllocator, la_allocator};

/// The shape a sized call gives for a block, `Some((len, align))`, or
/// `None` for the C calls that give none (`free(p)`, `realloc`).
pub(super) type Shape = Option<(usize, u8)>;

/// Freed blocks up to this many bytes are filled with the lock held;
/// longer ones without it, so threads do not wait for each other's fills.
pub(super) const INLINE_FILL: usize = 1024;

/// Most blocks evicted from the quarantine at once (see `enqueue`).
const BATCH: usize = 32;

/// Blocks evicted from the quarantine under the lock, still indexed (as
/// freed) and their memory still held, for [`la_debug::finish_deferred`]
/// to verify without the lock, then drop under it, then give back.
pub(super) struct Deferred {
    n: usize,
    r: [MaybeUninit<*mut Record>; BATCH],
}

impl Deferred {
    pub(super) fn new() -> Self {
        Deferred {
            n: 0,
            r: [MaybeUninit::uninit(); BATCH],
        }
    }

    /// The evicted records.
    fn records(&self) -> &[*mut Record] {
        // SAFETY: the first `n` entries were written by `enqueue`;
        // MaybeUninit<T> has the layout of T.
        unsafe { core::slice::from_raw_parts(self.r.as_ptr().cast(), self.n) }
    }
}

/// The memory of a dropped block, to give back once its record is gone.
#[derive(Clone, Copy)]
pub(super) struct Held {
    base: usize,
    base_len: usize,
    base_align: u8,
    kind: u8,
    inband: bool,
    /// The block was freed: a guarded one's body is then decommitted and
    /// inaccessible (`free` did both before the block could leave).
    freed: bool,
}

impl Held {
    pub(super) fn of(r: &Record) -> Self {
        Held {
            base: r.base,
            base_len: r.base_len,
            base_align: r.base_align,
            kind: r.kind,
            inband: r.inband != 0,
            freed: r.state == FREED && r.filling == 0,
        }
    }
}

impl Shard {
    const fn new() -> Self {
        Shard {
            lock: RawLock::new(),
            index_slots: AtomicUsize::new(0),
            index_mask: AtomicUsize::new(0),
            inband_key: AtomicUsize::new(0),
            st: UnsafeCell::new(State {
                table: Table::new(),
                depot: Depot::new(),
                quarantine: Quarantine::new(QUARANTINE_BLOCKS),
                live_count: 0,
                live_bytes: 0,
                peak_bytes: 0,
                total_allocs: 0,
                total_frees: 0,
                q_reported: 0,
            }),
        }
    }

    /// The mutable state.
    ///
    /// # Safety
    /// `self.lock` is held by the caller, and no other reference to the state
    /// is live.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn state(&self) -> &mut State {
        // SAFETY: caller's promise: exclusive under the lock.
        unsafe { &mut *self.st.get() }
    }

    /// The state, for reading.
    ///
    /// # Safety
    /// `self.lock` is held by the caller (or the shard is unused), and no
    /// mutable reference to the state is live.
    pub(super) unsafe fn state_ref(&self) -> &State {
        // SAFETY: caller's promise.
        unsafe { &*self.st.get() }
    }

    /// Starts loading the index slot of block address `addr`.
    #[inline]
    pub(super) fn prefetch_slot(&self, addr: usize) {
        table::prefetch(table::slot_hint(
            self.index_slots.load(Ordering::Relaxed),
            self.index_mask.load(Ordering::Relaxed),
            addr,
        ));
    }
}

impl la_debug {
    /// Creates an instance in its own mapping; NULL when out of memory.
    /// Call [`trace::init`] first, outside any allocator (the C entry point
    /// does).
    pub fn create(backing: la_allocator, cfg: &la_debug_config) -> *mut la_debug {
        Self::create_with(backing, cfg, false)
    }

    /// [`Self::create`] over a backing that may be called from any thread
    /// at once (`backing_shared`: its calls are then made without the
    /// instance's lock held, so threads wait for each other less).
    pub fn create_with(
        backing: la_allocator,
        cfg: &la_debug_config,
        backing_shared: bool,
    ) -> *mut la_debug {
        let Some(mem) = sys::map(core::mem::size_of::<la_debug>()) else {
            return ptr::null_mut();
        };
        let p = mem.as_ptr().cast::<la_debug>();
        let frames = cfg.stack_trace_frames.min(MAX_FRAMES);
        let canary = if cfg.canary != 0 {
            cfg.canary
        } else {
            default_canary(p as u64)
        };
        let nshards = if backing_shared { MAX_SHARDS } else { 1 };
        // The record strategy: in-band headers when the backing can tell
        // its live blocks exactly (smp), else the address index.
        // SAFETY: `backing` is valid (this function's contract).
        let in_band = unsafe { InBand::offered_by(&backing) };
        let d = la_debug {
            backing: ChildAllocator(backing),
            backing_shared,
            frames,
            abort: cfg.on_error != la_debug_on_error::LA_DEBUG_CONTINUE,
            report_fd: cfg.report_fd,
            never_reuse: cfg.never_reuse,
            check_waf: cfg.check_write_after_free,
            fill_max: cfg.free_fill_max_len,
            quarantine_bytes: cfg.quarantine_bytes,
            quarantine_fair: cfg.quarantine_bytes / nshards,
            quarantine_held: QuarantineHeld(AtomicUsize::new(0)),
            guard_min: cfg.guard_page_min_len,
            canary,
            limit: AtomicUsize::new(cfg.memory_limit),
            live_bytes: AtomicUsize::new(0),
            suppress_new: AtomicBool::new(false),
            in_band,
            nshards,
            shards: [const { Shard::new() }; MAX_SHARDS],
            mappings: Mappings::new(),
            errors: AtomicUsize::new(0),
            last_error: AtomicU32::new(0),
        };
        // SAFETY: fresh mapping, large and aligned enough for la_debug.
        unsafe { p.write(d) };
        if in_band {
            for i in 0..nshards {
                // A key per table from the instance's (random) address, so
                // a header is no plain pointer and garbage decodes to an
                // address far outside the record region.
                let key = ((p as usize) ^ (i << 4)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1 << 63;
                // SAFETY: the instance is not shared yet.
                unsafe {
                    (*p).shards[i].state().table.set_inband(key);
                    (*p).shards[i].inband_key.store(key, Ordering::Relaxed);
                }
            }
        }
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

    /// The allocator handle of this instance: the vtable of its record
    /// strategy.
    pub fn allocator(&self) -> la_allocator {
        la_allocator {
            ptr: self as *const la_debug as *mut c_void,
            vtable: if self.in_band {
                &IN_BAND_VTABLE
            } else {
                &INDEXED_VTABLE
            },
        }
    }

    /// Whether the instance's record strategy is [`InBand`] (else
    /// [`Indexed`]): fixed at creation, by what the backing offers.
    #[inline(always)]
    pub fn in_band(&self) -> bool {
        self.in_band
    }

    /// The shards in use.
    pub(super) fn shards(&self) -> &[Shard] {
        &self.shards[..self.nshards]
    }

    /// The shard of the block at `addr`: blocks of one 4 MiB span (an smp
    /// segment, which one thread owns) share a shard; spans spread over
    /// all of them. (Spread by 4 KiB pages, every thread's blocks fell in
    /// every shard, and each call took a lock, and touched state, that the
    /// other threads had just used: two threads churning their own blocks
    /// spent 1.6 times the processor time per call that one did.)
    #[inline]
    pub(super) fn shard(&self, addr: usize) -> &Shard {
        debug_assert!(self.nshards.is_power_of_two() && self.nshards <= MAX_SHARDS);
        let i = ((addr >> 22).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) & (self.nshards - 1);
        // SAFETY: i < nshards <= MAX_SHARDS (a power of two, see `create`).
        unsafe { self.shards.get_unchecked(i) }
    }

    /// Sets or clears marking new blocks as suppressed (never leaks).
    pub fn set_suppress_new(&self, on: bool) {
        self.suppress_new.store(on, Ordering::Relaxed);
    }

    /// In the child of a `fork()`: frees the shards' locks and the
    /// registry's, which another thread of the parent (gone in the child)
    /// may have held.
    pub fn after_fork(&self) {
        for sh in self.shards() {
            // SAFETY: only the forking thread exists in the child, and it
            // holds no shard lock while forking (no lock is held across a
            // call out of the allocator).
            unsafe { sh.lock.reset_in_child() };
        }
        // SAFETY: as above: the registry's lock is held only inside a
        // lookup or a destroy, never across a call out of the allocator.
        unsafe { REGISTRY_LOCK.reset_in_child() };
    }

    /// Counters.
    pub fn stats(&self) -> la_debug_stats {
        let (mut live, mut allocs, mut frees) = (0, 0, 0);
        let (mut live_bytes, mut peak_bytes) = (0usize, 0usize);
        for sh in self.shards() {
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            live += st.live_count;
            allocs += st.total_allocs;
            frees += st.total_frees;
            live_bytes = live_bytes.wrapping_add(st.live_bytes);
            // With several shards, the sum of their peaks: an upper bound
            // of the instance's peak (exact with one shard, as every
            // instance made by `la_debug_create` has).
            peak_bytes = peak_bytes.saturating_add(st.peak_bytes);
        }
        la_debug_stats {
            live_bytes,
            live_allocations: live,
            peak_bytes,
            total_allocations: allocs,
            total_frees: frees,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: la_debug_error::from_u32(self.last_error.load(Ordering::Relaxed)),
        }
    }

    /// Counts `len` more live bytes in shard state `st` (locked) unless
    /// that passes the memory limit.
    ///
    /// Live and peak bytes are counted per shard, under its lock, so
    /// threads working in different shards share no counter. Only while a
    /// limit is set is the instance-wide count (`live_bytes`, an atomic)
    /// kept too, for an exact admission test across shards.
    pub(super) fn charge(&self, st: &mut State, len: usize) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit != usize::MAX {
            let mut cur = self.live_bytes.load(Ordering::Relaxed);
            loop {
                let Some(t) = cur.checked_add(len).filter(|&t| t <= limit) else {
                    return false;
                };
                match self.live_bytes.compare_exchange_weak(
                    cur,
                    t,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(c) => cur = c,
                }
            }
        }
        // Cannot wrap: the shard's live bytes are mapped (below 2^47), and
        // a request beyond that fails before it is charged again.
        st.live_bytes = st.live_bytes.wrapping_add(len);
        st.peak_bytes = st.peak_bytes.max(st.live_bytes);
        true
    }

    /// Counts `len` live bytes fewer in shard state `st` (locked).
    pub(super) fn discharge(&self, st: &mut State, len: usize) {
        st.live_bytes = st.live_bytes.wrapping_sub(len);
        if self.limit.load(Ordering::Relaxed) != usize::MAX {
            self.live_bytes.fetch_sub(len, Ordering::Relaxed);
        }
    }

    /// Sets the memory limit (live requested bytes). With every shard's
    /// lock held, so no charge runs meanwhile, the instance-wide count is
    /// set to the sum of the shards' before the limit takes effect.
    pub fn set_memory_limit(&self, limit: usize) {
        let shards = self.shards();
        for sh in shards {
            sh.lock.lock();
        }
        let mut live = 0usize;
        for sh in shards {
            // SAFETY: every shard's lock is held.
            live = live.wrapping_add(unsafe { sh.state_ref() }.live_bytes);
        }
        self.live_bytes.store(live, Ordering::Relaxed);
        self.limit.store(limit, Ordering::Relaxed);
        for sh in shards {
            // SAFETY: taken above by this thread.
            unsafe { sh.lock.unlock() };
        }
    }

    /// Captures the caller's trace into `out`; returns its length, the
    /// calling thread's id and the trace's hash (`depot::hash`).
    #[inline(always)]
    pub(super) fn capture(
        &self,
        out: &mut [MaybeUninit<usize>; MAX_FRAMES],
        ret_addr: usize,
    ) -> (usize, u32, u64) {
        trace::capture_tid(&mut out[..self.frames.min(MAX_FRAMES)], ret_addr)
    }

    /// Counts a report and aborts unless configured to continue.
    pub(super) fn raise(&self, kind: la_debug_error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.last_error.store(kind as u32, Ordering::Relaxed);
        if self.abort {
            sys::process::abort();
        }
    }

    /// Gets memory for a `len`-byte block into `r` (addr, base, ...).
    ///
    /// With `guard` the block is its own mapping between guard pages; a
    /// zero-size one then sits right at the upper guard page, so even a read
    /// of its byte 0 faults.
    ///
    /// # Safety
    /// `r` is a fresh record; `align < 64` (`len` may be 0: the block is
    /// then all redzone).
    pub(super) unsafe fn obtain<S: Strategy>(
        &self,
        r: &mut Record,
        len: usize,
        align: u8,
        ret_addr: usize,
        guard: bool,
    ) -> bool {
        let Some(align_b) = alignment::to_bytes(align) else {
            return false;
        };
        let page = sys::page_size();
        if guard {
            let Some(commit) = len
                .checked_add(align_b - 1)
                .and_then(|n| alignment::forward(n, page))
            else {
                return false;
            };
            let Some(total) = commit.checked_add(2 * page) else {
                return false;
            };
            // A kept reservation that fits (the smallest, up to twice the
            // size: the pages it has beyond need stay inaccessible below
            // the block, a wider lower guard, and it goes back whole), or
            // a new one.
            let (base, total) = match self.mappings.take(total) {
                Some(kept) => kept,
                None => match sys::reserve(total) {
                    Some(base) => (base.as_ptr() as usize, total),
                    None => return false,
                },
            };
            // The block ends at the upper guard page; the accessible body
            // is the pages it touches (see `Self::zones`).
            let top = base + total - page;
            r.addr = alignment::backward(top - len, align_b);
            let body = alignment::backward(r.addr, page);
            debug_assert!(body >= base + page);
            // SAFETY: the middle of our own reservation.
            if !unsafe { sys::protect_rw(body as *mut u8, top - body) } {
                // SAFETY: our reservation.
                unsafe { sys::unmap(base as *mut u8, total) };
                return false;
            }
            r.base = base;
            r.base_len = total;
            r.base_align = align;
            r.kind = KIND_GUARDED;
            r.inband = 0;
        } else {
            let front = REDZONE.max(align_b);
            let Some(base_len) =
                alignment::forward(len, REDZONE).and_then(|b| b.checked_add(front + REDZONE))
            else {
                return false;
            };
            let base_align = align.max(4);
            if let Some(cls) = S::class(base_len, align_b) {
                // An in-band block: [header | front redzone | block | back
                // redzone] in one block of a backing size class.
                let b = InBand::take(cls);
                if b == 0 {
                    return false;
                }
                r.addr = b + INBAND_FRONT;
                r.base = b + HDR;
                r.base_len = base_len;
                r.base_align = base_align;
                r.kind = KIND_BACKING;
                r.inband = 1;
            } else {
                // SAFETY: base_len > 0; the backing is valid (create's
                // contract).
                let Some(base) = (unsafe {
                    self.backing
                        .alloc(base_len, base_align, trace::return_address(ret_addr))
                }) else {
                    return false;
                };
                let base = base.as_ptr() as usize;
                // The index slot of the new block loads while its redzones
                // are written.
                self.shard(base + front).prefetch_slot(base + front);
                r.addr = base + front;
                r.base = base;
                r.base_len = base_len;
                r.base_align = base_align;
                r.kind = KIND_BACKING;
                r.inband = 0;
            }
        }
        r.len = len;
        r.align = align;
        self.fill_zones(r);
        true
    }

    /// Gives a block's memory back (backing free or unmap).
    ///
    /// # Safety
    /// The block is ours and dead, and its record is no longer indexed.
    pub(super) unsafe fn give_back(&self, h: Held) {
        if h.kind == KIND_GUARDED {
            // Kept for the next guarded block when there is room: a freed
            // guarded block's body is decommitted and inaccessible already
            // (see `free`). Blocks given back live (never handed out, or at
            // `destroy`) are unmapped.
            if !(h.freed && self.mappings.put(h.base, h.base_len)) {
                // SAFETY: the whole reservation was made by `obtain`.
                unsafe { sys::unmap(h.base as *mut u8, h.base_len) };
            }
        } else if h.inband {
            // SAFETY: an in-band block from `obtain`, dead and no longer
            // found by address.
            unsafe { InBand::release(h.base) };
        } else {
            // SAFETY: the backing block as allocated.
            unsafe {
                self.backing
                    .free(h.base as *mut u8, h.base_len, h.base_align, 0)
            };
        }
    }

    /// Allocates `len > 0` bytes aligned to `1 << align` (NULL for 0).
    pub fn alloc(&self, len: usize, align: u8, ret_addr: usize) -> *mut u8 {
        if self.in_band {
            self.alloc_with::<InBand>(len, align, ret_addr)
        } else {
            self.alloc_with::<Indexed>(len, align, ret_addr)
        }
    }

    /// [`Self::alloc`] under record strategy `S` (the instance's).
    #[inline(always)]
    pub(super) fn alloc_with<S: Strategy>(
        &self,
        len: usize,
        align: u8,
        ret_addr: usize,
    ) -> *mut u8 {
        debug_assert!(S::IN_BAND == self.in_band);
        if len == 0 {
            return ptr::null_mut();
        }
        self.alloc_any_with::<S>(len, align, ret_addr)
    }

    /// Whether a `len`-byte block gets guard pages: large ones, and
    /// zero-size ones (a read or write of byte 0 of `malloc(0)` then faults
    /// on the guard page, where a redzone would catch only a write, and
    /// only when the block is freed or the leak check runs).
    #[inline(always)]
    pub(super) fn guarded(&self, len: usize) -> bool {
        self.guard_min != 0 && (len >= self.guard_min || len == 0)
    }

    /// [`Self::alloc`] that also takes `len == 0` (`malloc(0)`): the block
    /// then has no user bytes and ends at a guard page (or, when no mapping
    /// can be had, its back redzone starts at the address handed out), so
    /// an access to byte 0 is reported as an overflow.
    #[inline(always)]
    pub fn alloc_any(&self, len: usize, align: u8, ret_addr: usize) -> *mut u8 {
        if self.in_band {
            self.alloc_any_with::<InBand>(len, align, ret_addr)
        } else {
            self.alloc_any_with::<Indexed>(len, align, ret_addr)
        }
    }

    /// [`Self::alloc_any`] under record strategy `S` (the instance's).
    #[inline(always)]
    fn alloc_any_with<S: Strategy>(&self, len: usize, align: u8, ret_addr: usize) -> *mut u8 {
        if align > alignment::MAX_LOG2 {
            return ptr::null_mut();
        }
        if let Some(p) = S::alloc(self, len, align, ret_addr) {
            return p;
        }
        let mut guard = self.guarded(len);
        // Memory that needs no lock (guarded mappings, a shared backing)
        // is obtained before taking it, and before the trace is taken, so
        // the block's index slot loads meanwhile (`obtain`).
        let mut early = self.backing_shared || guard;
        let mut got = Record::EMPTY;
        // SAFETY: align checked.
        if early && !unsafe { self.obtain::<S>(&mut got, len, align, ret_addr, guard) } {
            if len != 0 || !guard {
                return ptr::null_mut();
            }
            // No mapping for a zero-size block (address space or mapping
            // count exhausted): it gets redzones alone instead.
            guard = false;
            early = self.backing_shared;
            // SAFETY: align checked.
            if early && !unsafe { self.obtain::<S>(&mut got, len, align, ret_addr, false) } {
                return ptr::null_mut();
            }
        }
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, h) = self.capture(&mut tr, ret_addr);
        // Without early memory the instance has a single shard.
        let sh = self.shard(got.addr);
        let g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        let charged = self.charge(st, len);
        let r = if charged {
            st.table.new_record()
        } else {
            ptr::null_mut()
        };
        if r.is_null() {
            if charged {
                self.discharge(st, len);
            }
            drop(g);
            if early {
                // SAFETY: obtained above, never handed out.
                unsafe { self.give_back(Held::of(&got)) };
            }
            return ptr::null_mut();
        }
        if early {
            // SAFETY: a fresh record of our table.
            unsafe { r.write(got) };
        // SAFETY: fresh record; align checked.
        } else if !unsafe { self.obtain::<S>(&mut *r, len, align, ret_addr, guard) } {
            // SAFETY: not indexed.
            unsafe { st.table.drop_record(r) };
            self.discharge(st, len);
            return ptr::null_mut();
        }
        // SAFETY: r is a valid record we own exclusively under the lock.
        let rec = unsafe { &mut *r };
        // Live before it is indexed: an in-band block's header, written by
        // the insertion, carries the state.
        rec.state = LIVE;
        // SAFETY: a fresh record, not yet indexed.
        match unsafe { st.table.insert_replacing(r) } {
            Ok(None) => {}
            Ok(Some(stale)) => {
                // Only possible when the backing reused an address whose
                // record was kept (never happens for quarantined blocks,
                // whose memory is still held): forget the old record.
                // SAFETY: no longer indexed; not in the quarantine (see above).
                unsafe { st.table.drop_record(stale) };
            }
            Err(_) => {
                // SAFETY: the block was just obtained and is unused.
                unsafe {
                    self.give_back(Held::of(rec));
                    st.table.drop_record(r);
                }
                self.discharge(st, len);
                return ptr::null_mut();
            }
        }
        if rec.inband == 0 {
            let (slots, mask) = st.table.hint();
            if sh.index_slots.load(Ordering::Relaxed) != slots {
                sh.index_slots.store(slots, Ordering::Relaxed);
                sh.index_mask.store(mask, Ordering::Relaxed);
            }
        }
        // SAFETY: `capture` wrote the first n frames.
        rec.alloc_stack = st.depot.intern(unsafe { trace::frames(&tr, n) }, h);
        rec.free_stack = 0;
        rec.suppressed = self.suppress_new.load(Ordering::Relaxed) as u8;
        rec._pad = 0;
        rec.filling = 0;
        rec.alloc_tid = tid;
        rec.free_tid = 0;
        st.live_count += 1;
        st.total_allocs += 1;
        let addr = rec.addr;
        let mut later = Deferred::new();
        self.evict_for_alloc(st, &mut later);
        drop(g);
        self.finish_deferred(sh, &mut later);
        addr as *mut u8
    }

    /// Drops a freed block's record and gives its memory back at once
    /// (with the lock held).
    ///
    /// # Safety
    /// `r` is an indexed freed record whose memory we hold, in no list.
    unsafe fn forget_now(&self, st: &mut State, r: *mut Record) {
        // SAFETY: caller's promise.
        let h = Held::of(unsafe { &*r });
        // SAFETY: as above; the block's memory is still ours.
        unsafe { st.table.remove_record(r) };
        // SAFETY: removed from the index; in no list; the block is dead.
        unsafe {
            st.table.drop_record(r);
            self.give_back(h);
        }
    }

    /// Marks a live block freed (counters; `free_stack` is the depot id of
    /// the free trace). Returns true when the free fill (or, for a guarded
    /// block, taking its pages away) is left to the caller, to do outside
    /// the lock (`filling` is then set).
    pub(super) fn retire(&self, st: &mut State, r: *mut Record, free_stack: u32, tid: u32) -> bool {
        // SAFETY: an indexed live record.
        // SAFETY: as above.
        unsafe { Self::mark_freed(r, free_stack, tid) };
        // SAFETY: as above.
        let rec = unsafe { &mut *r };
        if rec.inband != 0 {
            // The header says freed too, so a second free does not pass
            // `Table::live_header`. SAFETY: an in-band record's block is
            // held until its record is dropped.
            unsafe { st.table.write_header(r) };
        }
        self.count_free(st, rec.len);
        if rec.kind == KIND_GUARDED {
            rec.filling = 1;
            return true;
        } else if self.check_waf {
            let n = self.fill_len(rec);
            if n > INLINE_FILL {
                rec.filling = 1;
                return true;
            }
            // SAFETY: the start of the user range of a block we hold.
            unsafe { fill_bytes(rec.addr as *mut u8, FREE_FILL, n) };
        }
        false
    }

    /// Records that live record `r` was freed, by trace `free_stack` (a
    /// depot id) on thread `tid`; writes the record without reading it.
    ///
    /// # Safety
    /// `r` is a live record of a locked shard, exclusively ours.
    #[inline(always)]
    pub(super) unsafe fn mark_freed(r: *mut Record, free_stack: u32, tid: u32) {
        // SAFETY: caller's promise.
        unsafe {
            (*r).state = FREED;
            (*r).free_stack = free_stack;
            (*r).free_tid = tid;
        }
    }

    /// Counts the free of a `len`-byte block in shard state `st` (locked).
    #[inline(always)]
    pub(super) fn count_free(&self, st: &mut State, len: usize) {
        self.discharge(st, len);
        st.live_count -= 1;
        st.total_frees += 1;
    }

    /// Bytes filled (and verified) from the start of freed block `rec`.
    #[inline]
    pub(super) fn fill_len(&self, rec: &Record) -> usize {
        self.fill_len_of(rec.len)
    }

    /// Bytes filled (and verified) from the start of a freed `len`-byte
    /// block.
    #[inline]
    pub(super) fn fill_len_of(&self, len: usize) -> usize {
        len.min(self.fill_max)
    }

    /// Puts a freed (and filled) block in the quarantine (counting `cost`,
    /// its [`Record::quarantine_cost`]). Blocks leave it
    /// when allocations need memory ([`Self::evict_for_alloc`]); a free
    /// takes the oldest out itself only when the quarantine holds twice its
    /// bytes (a program that frees without allocating) or is full (in
    /// blocks): into `later`, until it holds at most 15/16 of its bytes,
    /// [`BATCH`] blocks at most per call. The lock is then taken a second
    /// time once per batch, not once per block, and the fills of the batch
    /// are verified without it.
    pub(super) fn enqueue(
        &self,
        st: &mut State,
        r: *mut Record,
        cost: usize,
        later: &mut Deferred,
    ) {
        if self.never_reuse {
            return;
        }
        if st.quarantine.full() {
            self.take_oldest(st, later, false);
        }
        // SAFETY: the record stays indexed (valid) until evicted; `cost` is
        // its quarantine cost (callers').
        if !unsafe { st.quarantine.push(r, cost) } {
            // No room (full batch) or no memory for the ring: evict it now.
            self.check_fill(st, r);
            // SAFETY: an indexed freed record whose memory we hold, in no
            // list.
            unsafe { self.forget_now(st, r) };
            return;
        }
        self.quarantine_sync(st);
        if st.quarantine.bytes > self.quarantine_fair
            && self.quarantine_total(st) > self.quarantine_bytes.saturating_mul(2)
        {
            self.take_oldest(st, later, true);
        }
    }

    /// The quarantine's bytes over all shards as shard state `st` (locked)
    /// sees them: its own exactly, the others' as last reported.
    #[inline]
    fn quarantine_total(&self, st: &State) -> usize {
        self.quarantine_held
            .0
            .load(Ordering::Relaxed)
            .wrapping_sub(st.q_reported)
            .wrapping_add(st.quarantine.bytes)
    }

    /// Reports shard state `st`'s (locked) quarantine bytes to the
    /// instance's total once they moved by [`QUARANTINE_STEP`].
    #[inline]
    fn quarantine_sync(&self, st: &mut State) {
        let (b, r) = (st.quarantine.bytes, st.q_reported);
        if b.abs_diff(r) >= QUARANTINE_STEP {
            if b > r {
                self.quarantine_held.0.fetch_add(b - r, Ordering::Relaxed);
            } else {
                self.quarantine_held.0.fetch_sub(r - b, Ordering::Relaxed);
            }
            st.q_reported = b;
        }
    }

    /// Called by an allocation in shard state `st` (locked): when the
    /// quarantine holds more than its bytes, moves its oldest blocks into
    /// `later` (as [`Self::enqueue`]) for the caller to finish after
    /// releasing the lock. So the thread that needs memory pays for
    /// verifying and releasing quarantined blocks, not the thread that
    /// freed them: a thread freeing what another allocates (a consumer)
    /// does not carry the whole cost, and blocks return to the smp
    /// allocator from the thread that owns them.
    ///
    /// The budget is the instance's, over all shards: a shard holding more
    /// than its share gives up its oldest blocks while the total is over
    /// (a single thread, whose blocks mostly fall in one shard, gets the
    /// whole budget; threads that all free get about a share each).
    #[inline]
    pub(super) fn evict_for_alloc(&self, st: &mut State, later: &mut Deferred) {
        if st.quarantine.bytes > self.quarantine_fair
            && self.quarantine_total(st) > self.quarantine_bytes
        {
            self.take_oldest(st, later, true);
        }
    }

    /// Moves the oldest quarantined blocks into `later` while the
    /// quarantine of this shard is full or, when `to_low` (else only the
    /// fullness counts), while the total is above [`low_water`] of the
    /// budget and this shard above that of its share; at most until
    /// `later` is full.
    fn take_oldest(&self, st: &mut State, later: &mut Deferred, to_low: bool) {
        let low = low_water(self.quarantine_bytes);
        let low_fair = low_water(self.quarantine_fair);
        while later.n < BATCH
            && (st.quarantine.full()
                || (to_low && st.quarantine.bytes > low_fair && self.quarantine_total(st) > low))
        {
            // The records a few pops ahead start loading.
            if let Some(ahead) = st.quarantine.peek(8) {
                table::prefetch(ahead as usize);
            }
            let Some(old) = st.quarantine.pop() else {
                break;
            };
            later.r[later.n] = MaybeUninit::new(old);
            later.n += 1;
        }
        self.quarantine_sync(st);
    }

    /// Finishes the evictions of `later`, if any (most calls have none:
    /// blocks leave the quarantine in batches).
    #[inline(always)]
    pub(super) fn finish_deferred(&self, sh: &Shard, later: &mut Deferred) {
        if later.n != 0 {
            self.finish_batch(sh, later);
        }
    }

    /// Finishes the evictions of `later` (not empty): verifies their fills
    /// without the lock, then takes it to report damage and drop the
    /// records, and gives the memory back (without the lock when the
    /// backing allows).
    #[inline(never)]
    fn finish_batch(&self, sh: &Shard, later: &mut Deferred) {
        let evicted = later.records();
        // Bit i: block i's fill was damaged.
        let mut damaged = 0u32;
        if self.check_waf {
            // The first bytes of the blocks a few places ahead start loading
            // while a block is verified.
            const AHEAD: usize = 3;
            let prefetch_block = |r: *mut Record| {
                // SAFETY: evicted records stay valid until dropped below.
                let (a, l) = unsafe { ((*r).addr, self.fill_len(&*r)) };
                let mut at = a;
                while at < a + l.min(256) {
                    table::prefetch(at);
                    at += 64;
                }
            };
            for &r in evicted.iter().take(AHEAD) {
                prefetch_block(r);
            }
            for (i, &r) in evicted.iter().enumerate() {
                if let Some(&next) = evicted.get(i + AHEAD) {
                    prefetch_block(next);
                }
                // SAFETY: as above; no other path writes or releases an
                // evicted block's memory, held until given back below.
                let rec = unsafe { &*r };
                if rec.kind == KIND_BACKING {
                    // SAFETY: as above.
                    let bytes = unsafe {
                        core::slice::from_raw_parts(rec.addr as *const u8, self.fill_len(rec))
                    };
                    if first_unfilled(bytes).is_some() {
                        damaged |= 1 << i;
                    }
                }
            }
        }
        let mut back = [MaybeUninit::<Held>::uninit(); BATCH];
        let mut nb = 0;
        // The bases of the in-band blocks among them (the common case),
        // given back straight to smp.
        let mut inband = [MaybeUninit::<usize>::uninit(); BATCH];
        let mut ni = 0;
        {
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            let (slots, mask) = st.table.hint();
            for &r in evicted {
                // SAFETY: evicted records stay valid until dropped below.
                let (addr, inband) = unsafe { ((*r).addr, (*r).inband) };
                if inband == 0 {
                    table::prefetch(table::slot_hint(slots, mask, addr));
                }
            }
            for (i, &r) in evicted.iter().enumerate() {
                if damaged & (1 << i) != 0 {
                    self.check_fill(st, r);
                }
                // SAFETY: an indexed freed record, in no list.
                let rec = unsafe { &*r };
                if self.backing_shared && rec.inband != 0 {
                    inband[ni] = MaybeUninit::new(rec.base);
                    ni += 1;
                    // SAFETY: a record of this table; its memory still ours.
                    unsafe { st.table.remove_record(r) };
                    // SAFETY: removed from the index, in no list.
                    unsafe { st.table.drop_record(r) };
                } else if self.backing_shared || rec.kind == KIND_GUARDED {
                    back[nb] = MaybeUninit::new(Held::of(rec));
                    nb += 1;
                    // SAFETY: a record of this table; its memory still ours.
                    unsafe { st.table.remove_record(r) };
                    // SAFETY: removed from the index, in no list.
                    unsafe { st.table.drop_record(r) };
                } else {
                    // SAFETY: an indexed freed record whose memory we hold.
                    unsafe { self.forget_now(st, r) };
                }
            }
        }
        later.n = 0;
        for b in &inband[..ni] {
            // SAFETY: written above: the base of an in-band block, no
            // longer found by address (its header cleared), memory still
            // ours.
            unsafe { InBand::release(b.assume_init()) };
        }
        for h in &back[..nb] {
            // SAFETY: written above; dropped from the index (its address is
            // free to be reused only now), memory still ours.
            unsafe { self.give_back(h.assume_init()) };
        }
    }

    /// Frees a block; `shape` is `Some((len, align))` for sized frees (the
    /// vtable) and `None` for `free(p)`.
    pub fn free(&self, p: *mut u8, shape: Option<(usize, u8)>, ret_addr: usize) {
        self.free_as(p, shape, "free", ret_addr)
    }

    /// [`Self::free`] under record strategy `S` (the instance's).
    #[inline(always)]
    pub(super) fn free_with<S: Strategy>(
        &self,
        p: *mut u8,
        shape: Option<(usize, u8)>,
        ret_addr: usize,
    ) {
        self.free_as_with::<S>(p, shape, "free", ret_addr)
    }

    /// [`Self::free`] where a wrong size or alignment is reported as given
    /// to `op` (C++ sized and aligned `operator delete`); a `len` of
    /// [`ANY_LEN`](super::ANY_LEN) checks the alignment alone.
    #[inline(always)]
    pub fn free_as(&self, p: *mut u8, shape: Option<(usize, u8)>, op: &str, ret_addr: usize) {
        if self.in_band {
            self.free_as_with::<InBand>(p, shape, op, ret_addr)
        } else {
            self.free_as_with::<Indexed>(p, shape, op, ret_addr)
        }
    }

    /// [`Self::free_as`] under record strategy `S` (the instance's).
    #[inline(always)]
    fn free_as_with<S: Strategy>(
        &self,
        p: *mut u8,
        shape: Option<(usize, u8)>,
        op: &str,
        ret_addr: usize,
    ) {
        debug_assert!(S::IN_BAND == self.in_band);
        if p.is_null() {
            return;
        }
        // The block's record (named by its in-band header) or index slot
        // loads while the trace is taken.
        let sh = self.shard(p as usize);
        let (word, size) = S::probe(sh, p as usize);
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, h) = self.capture(&mut tr, ret_addr);
        // SAFETY: `capture` wrote the first n frames.
        let here = unsafe { trace::frames(&tr, n) };
        let mut later = Deferred::new();
        let fill_later = {
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            // The common case over the smp allocator: a plain free() of a
            // live in-band block, done from its header alone.
            let done = word != 0
                && shape.is_none()
                // SAFETY: `word` and `size` came from `S::probe` for this
                // shard; the lock is held.
                && unsafe {
                    let f = Free {
                        p: p as usize,
                        w: word,
                        size,
                        here,
                        hash: h,
                        tid,
                    };
                    S::free(self, st, &f, &mut later)
                };
            if done {
                drop(_g);
                self.finish_deferred(sh, &mut later);
                return;
            }
            // An in-band block's record is found through its header;
            // otherwise the record (found through its index slot, loaded
            // by now) starts loading while the free trace is interned.
            let direct = if word != 0 {
                st.table.find_inband_from(p as usize, word)
            } else {
                None
            };
            let cand = match direct {
                Some(_) => None,
                None => st.table.candidate(p as usize),
            };
            if let Some((_, c)) = cand {
                table::prefetch(c as usize);
            }
            let free_stack = st.depot.intern(here, h);
            let found = direct
                .or_else(|| cand.and_then(|(i, _)| st.table.find_from(p as usize, i)))
                .or_else(|| st.table.find_scan(p as usize));
            let Some(r) = found else {
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
                self.check_shape(st, op, r, len, align, here, tid);
            }
            self.check_zones(st, r, here, tid);
            if self.retire(st, r, free_stack, tid) {
                // SAFETY: an indexed record (freed: its range is fixed now).
                Some((r, unsafe { *r }))
            } else {
                // SAFETY: an indexed record.
                self.enqueue(st, r, unsafe { (*r).quarantine_cost() }, &mut later);
                None
            }
        };
        if let Some((r, rec)) = fill_later {
            // Long fills and guard changes run without the lock: the block
            // is freed (a second free is reported as such) and in no list
            // yet, so nothing else reads, writes or releases its bytes.
            if rec.kind == KIND_GUARDED {
                // The pages go back to the OS and become inaccessible (a
                // later access faults and is explained): only the mapping
                // stays in the quarantine. In that order: once the pages
                // are gone, changing the protection finds no page to
                // update, so other threads' TLBs are flushed once, not
                // twice.
                let [(body, _), (_, top)] = Self::zones(&rec);
                let (mid, len) = (body as *mut u8, top - body);
                // SAFETY: the committed body of our own reservation; the
                // block is dead.
                unsafe {
                    sys::decommit(mid, len);
                    sys::protect_none(mid, len);
                }
            } else {
                let n = self.fill_len(&rec);
                // SAFETY: the start of the user range of a block we still
                // hold.
                unsafe { fill_bytes(rec.addr as *mut u8, FREE_FILL, n) };
            }
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            // SAFETY: still indexed: only eviction drops freed records, and
            // this one is in no quarantine.
            unsafe { (*r).filling = 0 };
            self.enqueue(st, r, rec.quarantine_cost(), &mut later);
        }
        self.finish_deferred(sh, &mut later);
    }

    /// Finds the live record of `p` for a resize-like operation, reporting
    /// misuse. `shape` as for [`Self::free`].
    pub(super) fn live_for(
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
    pub fn resize(&self, p: *mut u8, shape: Shape, new_len: usize, ret_addr: usize) -> bool {
        if self.in_band {
            self.resize_with::<InBand>(p, shape, new_len, ret_addr)
        } else {
            self.resize_with::<Indexed>(p, shape, new_len, ret_addr)
        }
    }

    /// [`Self::resize`] under record strategy `S` (the instance's).
    pub(super) fn resize_with<S: Strategy>(
        &self,
        p: *mut u8,
        shape: Option<(usize, u8)>,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        debug_assert!(S::IN_BAND == self.in_band);
        if p.is_null() || new_len == 0 {
            return false;
        }
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, _) = self.capture(&mut tr, ret_addr);
        // SAFETY: `capture` wrote the first n frames.
        let here = unsafe { trace::frames(&tr, n) };
        let sh = self.shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        let op = if shape.is_some() { "resize" } else { "realloc" };
        let Some(r) = self.live_for(st, op, p as usize, shape, here, tid) else {
            return false;
        };
        self.check_zones(st, r, here, tid);
        // SAFETY: an indexed live record, exclusively ours under the lock.
        let rec = unsafe { &mut *r };
        let grow = new_len.saturating_sub(rec.len);
        if grow > 0 && !self.charge(st, grow) {
            return false;
        }
        if new_len > Self::capacity(rec) {
            let front = rec.addr - rec.base;
            let new_base_len = alignment::forward(new_len, REDZONE)
                .and_then(|b| b.checked_add(front + REDZONE))
                .filter(|_| rec.kind == KIND_BACKING);
            let Some(new_base_len) = new_base_len else {
                self.discharge(st, grow);
                return false;
            };
            let grown = if S::IN_BAND && rec.inband != 0 {
                // SAFETY: a live in-band block of ours.
                unsafe { InBand::resize(rec.base, new_base_len) }
            } else {
                // SAFETY: the backing block as last granted.
                unsafe {
                    self.backing.resize(
                        rec.base as *mut u8,
                        rec.base_len,
                        rec.base_align,
                        new_base_len,
                        trace::return_address(ret_addr),
                    )
                }
            };
            if !grown {
                self.discharge(st, grow);
                return false;
            }
            rec.base_len = new_base_len;
        }
        if new_len < rec.len {
            self.discharge(st, rec.len - new_len);
        }
        rec.len = new_len;
        if S::IN_BAND && rec.inband != 0 {
            // SAFETY: an in-band record's block is held while it is live.
            unsafe { st.table.write_header(r) };
        }
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
        let sh = self.shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        if let Some(r) = st.table.find(p as usize) {
            // SAFETY: indexed record.
            if unsafe { (*r).state } == LIVE {
                // SAFETY: as above.
                return unsafe { (*r).len };
            }
        }
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, _) = self.capture(&mut tr, ret_addr);
        // SAFETY: `capture` wrote the first n frames.
        let here = unsafe { trace::frames(&tr, n) };
        self.live_for(st, "malloc_usable_size", p as usize, None, here, tid);
        0
    }

    /// The requested length of live block `p`; reports misuse as done by
    /// `op` (freed, interior, foreign pointers) and then gives `None`.
    pub fn live_len(&self, p: *const u8, op: &str, ret_addr: usize) -> Option<usize> {
        let sh = self.shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        if let Some(r) = st.table.find(p as usize) {
            // SAFETY: indexed record.
            if unsafe { (*r).state } == LIVE {
                // SAFETY: as above.
                return Some(unsafe { (*r).len });
            }
        }
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, _) = self.capture(&mut tr, ret_addr);
        // SAFETY: `capture` wrote the first n frames.
        let here = unsafe { trace::frames(&tr, n) };
        self.live_for(st, op, p as usize, None, here, tid);
        None
    }

    /// The requested length of live block `p`, without reporting anything.
    pub fn len_of(&self, p: *const u8) -> Option<usize> {
        let sh = self.shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        // SAFETY: indexed records are valid.
        st.table
            .find(p as usize)
            .filter(|&r| unsafe { (*r).state } == LIVE)
            // SAFETY: as above.
            .map(|r| unsafe { (*r).len })
    }

    /// Whether `p` is the start of a live block of this instance.
    pub fn owns(&self, p: *const u8) -> bool {
        let sh = self.shard(p as usize);
        let _g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        // SAFETY: indexed records are valid.
        st.table
            .find(p as usize)
            .is_some_and(|r| unsafe { (*r).state } == LIVE)
    }

    /// Reports write-after-free in every held block (quarantine and
    /// never-reuse), without releasing them.
    pub fn verify_freed(&self) {
        for sh in self.shards() {
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            st.table.for_each(|r| {
                // SAFETY: indexed record.
                if unsafe { (*r).state == FREED && (*r).filling == 0 } {
                    self.check_fill(st, r);
                }
            });
        }
    }

    /// Prints a leak report (see `leaks.rs`); returns (bytes, blocks) leaked.
    pub fn report_leaks(&self, opts: &leaks::Options<'_>) -> (usize, usize) {
        // The loader is asked first: never with the shards' locks held (see
        // `roots::Segments`).
        let segments = if opts.scan_roots {
            roots::Segments::gather()
        } else {
            roots::Segments::empty()
        };
        // All shards at once, taken in order (other paths hold one at most).
        let shards = self.shards();
        for sh in shards {
            sh.lock.lock();
        }
        let parts: [(&Table, &Depot); MAX_SHARDS] = core::array::from_fn(|i| {
            // SAFETY: the locks of the shards in use are held; the others
            // are never touched (only the first `shards.len()` are read).
            let st = unsafe { self.shards[i].state_ref() };
            (&st.table, &st.depot)
        });
        let found = leaks::report(&parts[..shards.len()], self.report_fd, opts, &segments);
        for sh in shards {
            // SAFETY: taken above by this thread.
            unsafe { sh.lock.unlock() };
        }
        found
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
        {
            let _registry = REGISTRY_LOCK.guard();
            for slot in &REGISTRY {
                let _ =
                    slot.compare_exchange(d, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        for sh in this.shards() {
            let _g = sh.lock.guard();
            // SAFETY: lock held.
            let st = unsafe { sh.state() };
            st.table.for_each(|r| {
                // SAFETY: every indexed record's block is ours to give back.
                unsafe { this.give_back(Held::of(&*r)) };
            });
            st.table.release();
            st.depot.release();
            st.quarantine.release();
        }
        this.mappings.release();
        // SAFETY: mapped by `create` with this size; nothing uses it now.
        unsafe { sys::unmap(d.cast(), core::mem::size_of::<la_debug>()) };
        if leaked > 0 {
            la_check::LA_CHECK_LEAK
        } else {
            la_check::LA_CHECK_OK
        }
    }
}
