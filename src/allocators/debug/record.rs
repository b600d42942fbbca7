//! The debug allocator's records: one [`Record`] per block (live, or freed
//! and still remembered), and the slabs they live in.
//!
//! Records live out of band, in slabs mapped from the OS, so a buffer
//! overflow in user memory cannot corrupt them. A record names its
//! allocation and free traces by their ids in the instance's stack depot
//! (`diag::depot`), so it takes one cache line whatever the trace depth.
//! Freed records go on a free list threaded through their `addr` field.
//! Slabs are linked through their first word; or, for an in-band table
//! (`inband.rs`), they are committed one after another in a single
//! reserved region, so that an address decoded from a block's header can
//! be checked to be a record slot ([`Records::in_region`]) and the records
//! can be walked without an index ([`Records::for_each_in_region`]).
//! Nothing here allocates through `malloc`; all memory comes from `sys`.

use core::ptr;

use crate::sys;

/// The block is live.
pub(crate) const LIVE: u8 = 1;
/// The block was freed; its record is kept to explain later misuse.
pub(crate) const FREED: u8 = 2;

/// The block came from the backing allocator.
pub(crate) const KIND_BACKING: u8 = 0;
/// The block is its own mapping between two guard pages.
pub(crate) const KIND_GUARDED: u8 = 1;

/// What the allocator knows about one block.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    /// The address handed to the user.
    pub addr: usize,
    /// The length the user asked for (as last resized).
    pub len: usize,
    /// The backing block (or mapping) holding it, with redzones.
    pub base: usize,
    pub base_len: usize,
    /// Depot ids of the allocation and free traces (0: none).
    pub alloc_stack: u32,
    pub free_stack: u32,
    /// Kernel thread ids of the allocating and freeing threads.
    pub alloc_tid: u32,
    pub free_tid: u32,
    /// log2 alignments of the user block and of the backing block.
    pub align: u8,
    pub base_align: u8,
    /// [`LIVE`] or [`FREED`].
    pub state: u8,
    /// [`KIND_BACKING`] or [`KIND_GUARDED`].
    pub kind: u8,
    /// Not reported as a leak (made before the program's `main`, say).
    pub suppressed: u8,
    /// Freed, and its free fill is being written outside the lock: not in
    /// the quarantine yet, not to be verified.
    pub filling: u8,
    /// Scratch mark (reachability during a leak scan).
    pub _pad: u8,
    /// The block carries an in-band header naming this record (at
    /// `base - HDR`) and is not in the index.
    pub inband: u8,
}

impl Record {
    /// A record with every field zero (filled in by its user).
    pub const EMPTY: Record = Record {
        addr: 0,
        len: 0,
        base: 0,
        base_len: 0,
        alloc_stack: 0,
        free_stack: 0,
        alloc_tid: 0,
        free_tid: 0,
        align: 0,
        base_align: 0,
        state: 0,
        kind: 0,
        suppressed: 0,
        _pad: 0,
        filling: 0,
        inband: 0,
    };
}

const SLAB: usize = 1 << 20;
/// Address space for the records of an in-band table (committed a slab at
/// a time): 64 M records at most. Reserved whole when the process has no
/// address-space limit; under one (`RLIMIT_AS`, `ulimit -v`), see
/// [`first_region_len`].
const REGION: usize = 1 << 32;
/// The smallest first reservation of a record region under an
/// address-space limit: 64 K records.
const REGION_MIN: usize = 4 * SLAB;

/// The first reservation of an in-band record region: [`REGION`] without
/// an address-space limit, else a 64th of the limit (at least
/// [`REGION_MIN`]), so that the regions of all shards together take an
/// eighth of it at most; [`Records::grow_region`] then extends the
/// reservation in place when it fills up.
fn first_region_len(limit: Option<usize>) -> usize {
    match limit {
        None => REGION,
        Some(l) => (l / 64 / SLAB * SLAB).clamp(REGION_MIN, REGION),
    }
}
/// Bytes per record in a slab: a cache line, so a record is one miss.
pub(super) const STRIDE: usize = 64;

/// Records above this address cannot be tagged in an index slot.
pub(super) const ADDR_LIMIT: usize = (1 << 48) - 1;

const _: () = assert!(core::mem::size_of::<Record>() <= STRIDE);

/// Asks the CPU to start loading the cache line holding `addr` (a hint:
/// never faults, even for an address no longer mapped).
#[inline(always)]
pub fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching has no architectural effect and cannot fault.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// The slabs of one table's records and their free list.
pub struct Records {
    free_list: *mut Record,
    slabs: *mut usize,
    slab_next: usize,
    slab_end: usize,
    /// Records are committed in one reserved region (in-band tables)
    /// starting at `region` (0 until the first record), `region_len` bytes
    /// reserved (see [`first_region_len`]).
    regional: bool,
    region: usize,
    region_len: usize,
}

impl Records {
    /// No records yet.
    pub const fn new() -> Self {
        Records {
            free_list: ptr::null_mut(),
            slabs: ptr::null_mut(),
            slab_next: 0,
            slab_end: 0,
            regional: false,
            region: 0,
            region_len: 0,
        }
    }

    /// Makes unused storage keep its records in one region.
    pub fn use_region(&mut self) {
        debug_assert!(self.slab_end == 0);
        self.regional = true;
    }

    /// A fresh record (not yet looked up), or NULL when out of memory.
    pub fn new_record(&mut self) -> *mut Record {
        if !self.free_list.is_null() {
            let r = self.free_list;
            // SAFETY: free records store the next free record in `addr`.
            self.free_list = unsafe { (*r).addr } as *mut Record;
            // The next call's record starts loading.
            prefetch(self.free_list as usize);
            return r;
        }
        if self.slab_next + STRIDE > self.slab_end && self.regional {
            if !self.grow_region() {
                return ptr::null_mut();
            }
        } else if self.slab_next + STRIDE > self.slab_end {
            let Some(m) = sys::map(SLAB) else {
                return ptr::null_mut();
            };
            let base = m.as_ptr() as usize;
            if base + SLAB > ADDR_LIMIT {
                // SAFETY: just mapped with this size.
                unsafe { sys::unmap(m.as_ptr(), SLAB) };
                return ptr::null_mut();
            }
            // The first word of each slab links the slabs together.
            // SAFETY: fresh writable mapping.
            unsafe { *(base as *mut usize) = self.slabs as usize };
            self.slabs = base as *mut usize;
            self.slab_next = base + STRIDE;
            self.slab_end = base + SLAB;
        }
        let r = self.slab_next as *mut Record;
        self.slab_next += STRIDE;
        r
    }

    /// Returns a record (no longer looked up) to the free list.
    ///
    /// # Safety
    /// `r` came from [`Records::new_record`] and is not looked up any more.
    pub unsafe fn drop_record(&mut self, r: *mut Record) {
        // SAFETY: caller's promise: the record is ours and unused.
        unsafe {
            (*r).addr = self.free_list as usize;
            (*r).state = 0;
        }
        self.free_list = r;
    }

    /// Commits the next slab of the in-band record region (reserving the
    /// region first); false when out of memory or address space.
    #[cold]
    fn grow_region(&mut self) -> bool {
        if self.region == 0 {
            let len = first_region_len(sys::address_space_limit());
            let Some(m) = sys::reserve(len) else {
                return false;
            };
            let base = m.as_ptr() as usize;
            if base + REGION > ADDR_LIMIT {
                // SAFETY: just reserved with this size.
                unsafe { sys::unmap(m.as_ptr(), len) };
                return false;
            }
            self.region = base;
            self.region_len = len;
            self.slab_next = base;
            self.slab_end = base;
        }
        if self.slab_end + SLAB > self.region + self.region_len {
            // Full: extend the reservation in place (doubling it, up to
            // REGION), as records are found by their address in it.
            let more = self.region_len.min(REGION - self.region_len);
            if more == 0 || !sys::reserve_at(self.region + self.region_len, more) {
                return false;
            }
            self.region_len += more;
        }
        // SAFETY: the next slab of our own reservation.
        if !unsafe { sys::protect_rw(self.slab_end as *mut u8, SLAB) } {
            return false;
        }
        self.slab_end += SLAB;
        true
    }

    /// Whether `w` is the address of a record slot of the region
    /// (committed: below `slab_next`), whatever its contents.
    #[inline]
    pub fn in_region(&self, w: usize) -> bool {
        w.wrapping_sub(self.region) < self.slab_next.wrapping_sub(self.region)
            && w.is_multiple_of(STRIDE)
    }

    /// Calls `f` on every record in use of a regional store (free ones
    /// read as state 0).
    pub fn for_each_in_region(&self, mut f: impl FnMut(*mut Record)) {
        debug_assert!(self.regional);
        let mut at = self.region;
        while at < self.slab_next {
            let r = at as *mut Record;
            // SAFETY: a committed record slot; free ones have state 0.
            if unsafe { (*r).state } != 0 {
                f(r);
            }
            at += STRIDE;
        }
    }

    /// Calls `f(lo, hi)` for each mapping holding records.
    pub fn for_each_slab(&self, mut f: impl FnMut(usize, usize)) {
        if self.regional {
            if self.region != 0 {
                f(self.region, self.slab_end);
            }
            return;
        }
        let mut s = self.slabs;
        while !s.is_null() {
            f(s as usize, s as usize + SLAB);
            // SAFETY: each slab's first word links to the previous slab.
            s = unsafe { *s } as *mut usize;
        }
    }

    /// Unmaps every slab (the records are gone after); the store stays
    /// regional if it was.
    pub fn release(&mut self) {
        if self.region != 0 {
            // SAFETY: reserved by `grow_region` with this size (its
            // extensions adjoin it).
            unsafe { sys::unmap(self.region as *mut u8, self.region_len) };
        }
        let mut s = self.slabs;
        while !s.is_null() {
            // SAFETY: each slab's first word links to the previous slab.
            unsafe {
                let prev = *s as *mut usize;
                sys::unmap(s.cast(), SLAB);
                s = prev;
            }
        }
        let regional = self.regional;
        *self = Records::new();
        self.regional = regional;
    }
}

impl Default for Records {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_region_fits_the_address_space_limit() {
        assert_eq!(first_region_len(None), REGION);
        assert_eq!(first_region_len(Some(usize::MAX)), REGION);
        // `ulimit -v 1000000` (KiB): 8 shards' regions take an eighth.
        let l = 1_000_000 * 1024;
        let r = first_region_len(Some(l));
        assert!(r.is_multiple_of(SLAB) && r * 8 <= l / 8 + 8 * SLAB && r >= REGION_MIN);
        assert_eq!(first_region_len(Some(1 << 20)), REGION_MIN);
    }

    #[test]
    fn record_region_grows_in_place() {
        let mut t = Records::new();
        t.use_region();
        // Simulate a small first reservation: take the first slab, then
        // shrink the reservation to it and grow past it.
        let r0 = t.new_record();
        assert!(!r0.is_null());
        let base = t.region;
        // SAFETY: the tail of our own reservation, unused.
        unsafe { sys::unmap((base + SLAB) as *mut u8, t.region_len - SLAB) };
        t.region_len = SLAB;
        let mut last = r0;
        for _ in 0..(2 * SLAB / STRIDE) {
            last = t.new_record();
            assert!(!last.is_null());
        }
        assert_eq!(t.region, base);
        assert!(t.region_len >= 3 * SLAB);
        assert!((last as usize) < base + t.region_len);
        // SAFETY: a record of the committed region.
        unsafe { (*last).addr = 1 };
        t.release();
    }
}
