//! The record strategy of an instance, as a type: how a block's record is
//! found by the block's address.
//!
//! [`Indexed`] works over any backing: every block's record is found
//! through the address index (`index.rs`). [`InBand`] needs a backing that
//! offers one capability, LeakSanitizer's `PointsIntoChunk` in short: "is
//! this the start of a live block of yours, and how long is it?", answered
//! exactly and without reading memory that is not the backing's
//! (`live_blocks.rs`). The smp allocator offers it, and the thread-safe
//! wrapper forwards it from its child; blocks of smp's size classes
//! then carry an in-band header naming their record (`inband.rs`), so a
//! plain `free` reads the header only, and just the other blocks (guarded
//! mappings, alignments above 16, sizes beyond the classes) are indexed.
//!
//! An instance's strategy is fixed at creation ([`la_debug::in_band`]).
//! The allocation, free and resize paths are generic over [`Strategy`], so
//! each strategy has its own vtable (`mod.rs`: `INDEXED_VTABLE`,
//! `IN_BAND_VTABLE`, as `fixed_buffer.rs` keeps two vtables over one
//! state), and the indexed one's allocation, free and resize paths carry
//! no in-band step. Whether a given block has a header stays a fact of its
//! record (`Record::inband`): under [`InBand`], some blocks are still
//! indexed, and the paths shared by both strategies (eviction, reports,
//! teardown) ask the record.

use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::Ordering;

use super::fill::fill_bytes;
use super::instance::{Deferred, INLINE_FILL};
use super::table::{self, HDR, INBAND_FRONT, KIND_BACKING, LIVE, Record};
use super::{FREE_FILL, REDZONE, Shard, State, la_debug};
use crate::alignment;
use crate::allocators::{live_blocks, smp};
use crate::diag::trace::{self, MAX_FRAMES};
use crate::vtable::la_allocator;

/// How an instance finds a block's record (see the module doc).
pub(crate) trait Strategy {
    /// Whether blocks may carry in-band headers.
    const IN_BAND: bool;

    /// The backing size class of a block whose redzones and user bytes
    /// take `base_len` bytes at alignment `align_b`, when the block is to
    /// carry an in-band header; `None` when it is to be indexed.
    fn class(base_len: usize, align_b: usize) -> Option<usize>;

    /// Allocates a block the strategy serves whole (`Some`, NULL when out
    /// of memory), or `None` for the general path.
    fn alloc(d: &la_debug, len: usize, align: u8, ret_addr: usize) -> Option<*mut u8>;

    /// Before the lock of `p`'s shard `sh` is taken for a free: starts
    /// loading what the lookup will read, and gives the in-band header
    /// word and the backing block's size, or `(0, 0)`.
    fn probe(sh: &Shard, p: usize) -> (usize, usize);

    /// Does free `f` (a plain `free` of a block whose probe found a
    /// header word) when the header alone suffices; false, with nothing
    /// changed, for the general path.
    ///
    /// # Safety
    /// `f.w` and `f.size` came from [`Strategy::probe`] for `f.p` and
    /// `st`'s shard, whose lock the caller holds.
    unsafe fn free(d: &la_debug, st: &mut State, f: &Free<'_>, later: &mut Deferred) -> bool;
}

/// A free under way, as [`Strategy::free`] sees it.
pub(crate) struct Free<'a> {
    /// The block's user address.
    pub p: usize,
    /// What [`Strategy::probe`] gave for it.
    pub w: usize,
    pub size: usize,
    /// The free's trace, its depot hash and the freeing thread.
    pub here: &'a [usize],
    pub hash: u64,
    pub tid: u32,
}

/// Every record found through the address index.
pub(crate) struct Indexed;

impl Strategy for Indexed {
    const IN_BAND: bool = false;

    #[inline(always)]
    fn class(_: usize, _: usize) -> Option<usize> {
        None
    }

    #[inline(always)]
    fn alloc(_: &la_debug, _: usize, _: u8, _: usize) -> Option<*mut u8> {
        None
    }

    #[inline(always)]
    fn probe(sh: &Shard, p: usize) -> (usize, usize) {
        sh.prefetch_slot(p);
        (0, 0)
    }

    #[inline(always)]
    unsafe fn free(_: &la_debug, _: &mut State, _: &Free<'_>, _: &mut Deferred) -> bool {
        false
    }
}

/// Blocks of the backing's size classes found through their in-band
/// headers (over a backing offering live-block queries: smp).
pub(crate) struct InBand;

impl InBand {
    /// Whether `backing` offers the capability this strategy needs
    /// (`live_blocks.rs`), ready for use: its blocks are the smp
    /// allocator's (it is smp, or a wrapper forwarding smp's capability),
    /// and smp's chunk map is prepared (`smp::prepare`) so that
    /// `smp::live_block_size` answers for any address. In-band blocks are
    /// then taken from smp directly.
    ///
    /// # Safety
    /// `backing` is a valid allocator.
    pub(crate) unsafe fn offered_by(backing: &la_allocator) -> bool {
        // SAFETY: caller's promise.
        let owner = unsafe { live_blocks::owner(backing) };
        owner == Some(live_blocks::Owner::Smp) && smp::prepare()
    }

    /// A backing block of size class `cls` for an in-band block (0 when
    /// out of memory).
    #[inline(always)]
    pub(crate) fn take(cls: usize) -> usize {
        smp::alloc_in(cls) as usize
    }

    /// Gives back the backing block of an in-band block whose base (just
    /// after its header) is `base`.
    ///
    /// # Safety
    /// `base` is the base of an in-band block of ours, dead and no longer
    /// found by address.
    #[inline]
    pub(crate) unsafe fn release(base: usize) {
        // SAFETY: caller's promise: a backing block from `take`.
        unsafe { smp::free((base - HDR) as *mut u8) };
    }

    /// Grows or shrinks in place the backing block of a live in-band
    /// block (base `base`) to hold `new_base_len` bytes after its header.
    ///
    /// # Safety
    /// `base` is the base of a live in-band block of ours.
    #[inline]
    pub(crate) unsafe fn resize(base: usize, new_base_len: usize) -> bool {
        // SAFETY: caller's promise: a backing block from `take`.
        unsafe { smp::resize((base - HDR) as *mut u8, new_base_len + HDR) }
    }
}

impl Strategy for InBand {
    const IN_BAND: bool = true;

    #[inline]
    fn class(base_len: usize, align_b: usize) -> Option<usize> {
        if align_b > 16 {
            return None;
        }
        let total = base_len.checked_add(HDR)?;
        let cls = if total <= smp::size_class::TABLE_MAX {
            smp::size_class::class_small(total, 4)
        } else {
            smp::size_class::class_for(total, 4)?
        };
        (cls != 0).then_some(cls)
    }

    /// The common case over smp, in one pass: the backing block is taken
    /// and its redzones written before the trace is taken and the lock
    /// held. `None` when the block is not to be in-band (aligned above 16
    /// bytes, guarded, beyond the size classes).
    #[inline(always)]
    fn alloc(d: &la_debug, len: usize, align: u8, ret_addr: usize) -> Option<*mut u8> {
        if align > 4 || d.guarded(len) {
            return None;
        }
        let base_len = alignment::forward(len, REDZONE)?.checked_add(2 * REDZONE)?;
        let cls = Self::class(base_len, 16)?;
        let b = Self::take(cls);
        if b == 0 {
            return Some(ptr::null_mut());
        }
        let mut rec = Record {
            addr: b + INBAND_FRONT,
            len,
            base: b + HDR,
            base_len,
            alloc_stack: 0,
            free_stack: 0,
            alloc_tid: 0,
            free_tid: 0,
            align,
            base_align: 4,
            state: LIVE,
            kind: KIND_BACKING,
            suppressed: d.suppress_new.load(Ordering::Relaxed) as u8,
            filling: 0,
            _pad: 0,
            inband: 1,
        };
        // SAFETY: a fresh in-band block: [header | 16-byte front redzone |
        // len rounded to 16 | 16-byte back redzone], 16-aligned.
        unsafe { d.fill_compact_zones(&rec) };
        let mut tr = [MaybeUninit::<usize>::uninit(); MAX_FRAMES];
        let (n, tid, h) = d.capture(&mut tr, ret_addr);
        let sh = d.shard(rec.addr);
        let g = sh.lock.guard();
        // SAFETY: lock held.
        let st = unsafe { sh.state() };
        let r = if d.charge(st, len) {
            let r = st.table.new_record();
            if r.is_null() {
                d.discharge(st, len);
            }
            r
        } else {
            ptr::null_mut()
        };
        if r.is_null() {
            drop(g);
            // SAFETY: taken above, never handed out.
            unsafe { Self::release(rec.base) };
            return Some(ptr::null_mut());
        }
        // SAFETY: `capture` wrote the first n frames.
        rec.alloc_stack = st.depot.intern(unsafe { trace::frames(&tr, n) }, h);
        rec.alloc_tid = tid;
        // SAFETY: a fresh record of our table, for the in-band block we hold.
        unsafe {
            r.write(rec);
            st.table.write_header(r);
        }
        st.live_count += 1;
        st.total_allocs += 1;
        let mut later = Deferred::new();
        d.evict_for_alloc(st, &mut later);
        drop(g);
        d.finish_deferred(sh, &mut later);
        Some(rec.addr as *mut u8)
    }

    /// Also starts loading, to be written, the block's back redzone, which
    /// [`Self::free`] checks: the program has often not touched the
    /// block's end for a long time. Its place comes from the header's
    /// length, unchecked here (a prefetch never faults; `free` checks the
    /// header).
    #[inline(always)]
    fn probe(sh: &Shard, p: usize) -> (usize, usize) {
        let key = sh.inband_key.load(Ordering::Relaxed);
        let (w, size) = table::header_word_sized(p, key);
        table::prefetch(w);
        if w != 0 {
            // SAFETY: `header_word_sized` found the live smp block of
            // `size` bytes whose 16-byte header is just before `p`'s front
            // redzone; a volatile read, as for its first word.
            let w1 = unsafe { ptr::read_volatile((p - INBAND_FRONT + 8) as *const usize) };
            let len = table::header_len_hint(w ^ key, w1).min(size);
            let end = p + len.next_multiple_of(REDZONE) + REDZONE;
            table::prefetch(end - 2 * REDZONE);
            table::prefetch(end - 1);
        }
        (w, size)
    }

    /// A live in-band block with intact redzones and header, when its fill
    /// can be written under the lock: everything checked and done from the
    /// block's header, its record written and never read (it may not be in
    /// cache; the header is next to the bytes the program has just used).
    #[inline(always)]
    unsafe fn free(d: &la_debug, st: &mut State, f: &Free<'_>, later: &mut Deferred) -> bool {
        let Free {
            p,
            w,
            size,
            here,
            hash,
            tid,
        } = *f;
        debug_assert!(w != 0);
        // SAFETY: caller's promise.
        let Some((r, len)) = (unsafe { st.table.live_header(p, w, size) }) else {
            return false;
        };
        let fill = if d.check_waf { d.fill_len_of(len) } else { 0 };
        if fill > INLINE_FILL {
            return false;
        }
        // SAFETY: `live_header` checked that the block as its record
        // describes it (16-byte front redzone, length rounded up to 16,
        // 16-byte back redzone) lies inside the backing block we hold; an
        // in-band block's address is 16-aligned (`header_word_sized`).
        if !unsafe { d.compact_zones_intact(p, len) } {
            return false;
        }
        let base_len = len.next_multiple_of(REDZONE) + 2 * REDZONE;
        let free_stack = st.depot.intern(here, hash);
        // SAFETY: `live_header` passed: r is the live record of this block
        // (a record of our region, named by an intact header), exclusively
        // ours under the lock; its header lies inside the block we hold.
        unsafe {
            la_debug::mark_freed(r, free_stack, tid);
            st.table.set_header_freed(p, w, len);
        }
        d.count_free(st, len);
        // SAFETY: the start of the user range of a block we hold.
        unsafe { fill_bytes(p as *mut u8, FREE_FILL, fill) };
        d.enqueue(st, r, base_len, later);
        true
    }
}
