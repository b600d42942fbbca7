//! The debug allocator's bookkeeping: one [`Record`] per block (live, or
//! freed and still remembered), found by the block's address.
//!
//! Records live out of band, in slabs mapped from the OS, so a buffer
//! overflow in user memory cannot corrupt them. A record names its
//! allocation and free traces by their ids in the instance's stack depot
//! (`depot.rs`), so it takes one cache line whatever the trace depth. The
//! index is an open-addressing hash table (linear probing, backward-shift
//! deletion) from the block's user address to its record, doubled when half
//! full. A slot holds the record's address (below 2^48), an 8-bit tag of
//! the block address and the slot's distance from its home slot (capped at
//! 255), so neither a probe passing other blocks' slots nor a deletion
//! shifting them back loads their records.
//!
//! Over the smp allocator (the shim's backing) most blocks need no index
//! entry at all: such a table is *in-band*. Its records live in one
//! reserved region, and a block of a size class the smp allocator serves
//! carries a 16-byte header just before its front redzone holding its
//! record's address (masked with a per-table key) and, checked against
//! it, the block's length and state (live or freed). A free reads the
//! header only ([`Table::live_header`]): its record is written, never read,
//! unless the header does not pass (then the full lookup explains why).
//! A lookup asks the smp allocator whether the header's block is live --
//! an exact test that never reads memory that is not ours -- then checks
//! that the decoded address is a record of the region naming this very
//! block. Only the other blocks (guarded mappings, alignments above 16,
//! sizes beyond the size classes) go into the index. Leak reports and
//! interior-pointer explanations walk the region. A damaged header (an
//! underflow reaching it) is then not found by address: the free is
//! explained through the region as for an interior pointer.
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
/// eighth of it at most; [`Table::grow_region`] then extends the
/// reservation in place when it fills up.
fn first_region_len(limit: Option<usize>) -> usize {
    match limit {
        None => REGION,
        Some(l) => (l / 64 / SLAB * SLAB).clamp(REGION_MIN, REGION),
    }
}
/// Bytes of the in-band header in front of a block's front redzone: the
/// masked record address, then the block's length and state with their
/// check ([`header_meta`]) XOR the first word's complement (a second word
/// the smp allocator's free tag check reads, never its tag value for a
/// live block).
pub(crate) const HDR: usize = 16;
/// Front redzone plus header of an in-band block: its backing block starts
/// this many bytes before the user address.
pub(crate) const INBAND_FRONT: usize = HDR + 16;
/// Bytes per record in a slab: a cache line, so a record is one miss.
const STRIDE: usize = 64;

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

/// The record address named by the in-band header of block `addr` (with
/// header key `key`), or 0 when `addr` is not the start of a live block of
/// an smp size class. Only a candidate: [`Table::find_inband_from`]
/// checks it. Reads nothing but smp metadata and the header of a live smp
/// block, so it may run without the table's lock (a block freed meanwhile
/// by another thread yields a stale candidate, rejected by that check).
/// Only for in-band tables (the smp chunk map is then prepared).
#[inline]
pub fn header_word(addr: usize, key: usize) -> usize {
    header_word_sized(addr, key).0
}

/// [`header_word`], and the size of the smp block (0 with it).
#[inline]
pub fn header_word_sized(addr: usize, key: usize) -> (usize, usize) {
    if !addr.is_multiple_of(16) || addr < INBAND_FRONT {
        return (0, 0);
    }
    let b = addr - INBAND_FRONT;
    // SAFETY: in-band mode implies the smp chunk map is prepared
    // (`set_inband`'s contract); the check reads only smp metadata.
    let Some(size) = (unsafe { crate::allocators::smp::live_block_size(b as *const u8) }) else {
        return (0, 0);
    };
    // SAFETY: a live smp block is mapped and at least 16 bytes long; a
    // volatile read, as its owner may be rewriting it (see above).
    (unsafe { ptr::read_volatile(b as *const usize) ^ key }, size)
}

/// The second header word's payload for a block of `len` bytes (below
/// 2^40) in state `state` ([`LIVE`] or [`FREED`]), whose first header word
/// is `w0`: `len << 8 | state` in the low 48 bits, and in the high 16 a
/// check of those bits mixed with `w0`, so a header damaged in one word,
/// or given another length or state, is not taken for intact (but by one
/// chance in 65536).
#[inline]
const fn header_meta(len: usize, state: u8, w0: usize) -> usize {
    let m = len << 8 | state as usize;
    m | (m ^ w0).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48 << 48
}

/// The index could not grow.
#[derive(Debug)]
pub struct OutOfMemory;

/// All records of one allocator and the index over them.
pub struct Table {
    free_list: *mut Record,
    slabs: *mut usize,
    slab_next: usize,
    slab_end: usize,
    /// Tagged record pointers ([`tag`]); 0 = empty.
    slots: *mut usize,
    cap: usize,
    count: usize,
    /// In-band mode (see the module doc): the start of the reserved record
    /// region (0 until the first record) and the header key.
    inband: bool,
    region: usize,
    /// Bytes reserved at `region` (see [`first_region_len`]).
    region_len: usize,
    key: usize,
}

/// The slot of `addr`'s probe start, as an address for [`prefetch`], given
/// a slot array and its mask (possibly stale: only a hint).
#[inline]
pub fn slot_hint(slots: usize, mask: usize, addr: usize) -> usize {
    slots + (hash(addr) & mask) * core::mem::size_of::<usize>()
}

/// Bits of a slot holding the record's address.
const PTR_MASK: usize = (1 << 48) - 1;
/// Bits of a slot holding the tag.
const TAG_MASK: usize = 0xff << 48;
/// First bit of the distance from home; [`FAR`] means "at least that far".
const DIST_SHIFT: u32 = 56;
const FAR: usize = 255;

/// The tag bits of a slot for block address `addr`.
#[inline]
fn tag(addr: usize) -> usize {
    ((addr >> 4).wrapping_mul(0xd6e8_feb8_6659_fd93) >> 56) << 48
}

/// The slot value of record `r` at block address `addr`, `dist` slots past
/// its home.
#[inline]
fn slot_of(r: *mut Record, addr: usize, dist: usize) -> usize {
    r as usize | tag(addr) | (dist.min(FAR) << DIST_SHIFT)
}

/// The record of a non-empty slot.
#[inline]
fn record_of(slot: usize) -> *mut Record {
    (slot & PTR_MASK) as *mut Record
}

/// Whether a non-empty slot may be the one of block address tag `t`.
#[inline]
fn tag_matches(slot: usize, t: usize) -> bool {
    slot & TAG_MASK == t
}

/// Slot hash of a block address: each 4 KiB page of addresses gets its own
/// run of 256 slots, placed by a multiplicative hash of the page number,
/// and the blocks of a page take nearby slots in that run. Blocks
/// allocated or freed near each other in memory thus touch few cache lines
/// of the index, while pages spread evenly over it.
#[inline]
fn hash(addr: usize) -> usize {
    let h = (addr >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // Pages sharing a run place their blocks at different offsets (XOR with
    // a per-page byte keeps each aligned group of 8 slots together).
    let offset = ((addr >> 4) ^ (h >> 56)) & 0xff;
    ((h >> 16) << 8) | offset
}

impl Table {
    /// An empty table.
    pub const fn new() -> Self {
        Table {
            free_list: ptr::null_mut(),
            slabs: ptr::null_mut(),
            slab_next: 0,
            slab_end: 0,
            slots: ptr::null_mut(),
            cap: 0,
            count: 0,
            inband: false,
            region: 0,
            region_len: 0,
            key: 0,
        }
    }

    /// Switches an unused table to in-band mode, headers masked with `key`.
    /// Only for a table whose in-band blocks come from the smp allocator,
    /// with its chunk map prepared (`smp::prepare`).
    pub fn set_inband(&mut self, key: usize) {
        debug_assert!(self.slab_end == 0 && self.cap == 0);
        self.inband = true;
        self.key = key;
    }

    /// The header key of an in-band table.
    #[inline]
    pub fn key(&self) -> usize {
        self.key
    }

    /// Whether the table is in-band (see the module doc).
    #[inline]
    pub fn is_inband(&self) -> bool {
        self.inband
    }

    /// Records in the index.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A fresh record (not yet in the index), or NULL when out of memory.
    pub fn new_record(&mut self) -> *mut Record {
        if !self.free_list.is_null() {
            let r = self.free_list;
            // SAFETY: free records store the next free record in `addr`.
            self.free_list = unsafe { (*r).addr } as *mut Record;
            // The next call's record starts loading.
            prefetch(self.free_list as usize);
            return r;
        }
        if self.slab_next + STRIDE > self.slab_end && self.inband {
            if !self.grow_region() {
                return ptr::null_mut();
            }
        } else if self.slab_next + STRIDE > self.slab_end {
            let Some(m) = sys::map(SLAB) else {
                return ptr::null_mut();
            };
            let base = m.as_ptr() as usize;
            if base + SLAB > PTR_MASK {
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

    /// Returns a record (already removed from the index) to the free list.
    ///
    /// # Safety
    /// `r` came from [`Table::new_record`] and is not in the index.
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
            if base + REGION > PTR_MASK {
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

    /// The record of the block at `addr`.
    pub fn find(&self, addr: usize) -> Option<*mut Record> {
        if let Some(r) = self.find_inband(addr) {
            return Some(r);
        }
        if self.cap != 0
            && let Some(r) = self.find_from(addr, hash(addr) & (self.cap - 1))
        {
            return Some(r);
        }
        self.find_scan(addr)
    }

    /// The in-band record of block `addr` whose header was damaged (an
    /// underflow reaching it), by a walk of the region: only for addresses
    /// neither the header nor the index knows, which are misuse anyway.
    #[cold]
    pub fn find_scan(&self, addr: usize) -> Option<*mut Record> {
        let mut found = None;
        if self.inband {
            self.for_each(|r| {
                // SAFETY: a record in use.
                if unsafe { (*r).inband != 0 && (*r).addr == addr } {
                    found = Some(r);
                }
            });
        }
        found
    }

    /// The record of in-band block `addr`, through its header; `None` when
    /// the table is not in-band or `addr` is not such a block (it may still
    /// be indexed).
    #[inline]
    pub fn find_inband(&self, addr: usize) -> Option<*mut Record> {
        if !self.inband {
            return None;
        }
        self.find_inband_from(addr, header_word(addr, self.key))
    }

    /// [`Table::find_inband`] given `w`, what [`header_word`] read for
    /// `addr` (possibly before the lock was taken: it is checked again
    /// here).
    #[inline]
    pub fn find_inband_from(&self, addr: usize, w: usize) -> Option<*mut Record> {
        if !self.in_region(w) {
            return None;
        }
        let r = w as *mut Record;
        // SAFETY: a record slot of our region below `slab_next`: committed,
        // and records are plain data (a free one reads as state 0).
        let ok = unsafe { (*r).addr == addr && (*r).inband != 0 && (*r).state != 0 };
        ok.then_some(r)
    }

    /// The first slot on `addr`'s probe path whose tag matches, and its
    /// record, without reading any record: most likely the record of
    /// `addr`, to prefetch before [`Table::find_from`] reads it from there.
    /// `None` means `addr` is not indexed.
    #[inline]
    pub fn candidate(&self, addr: usize) -> Option<(usize, *mut Record)> {
        if self.cap == 0 {
            return None;
        }
        let mask = self.cap - 1;
        let t = tag(addr);
        let mut i = hash(addr) & mask;
        loop {
            // SAFETY: i < cap, the slot array has cap entries.
            let s = unsafe { *self.slots.add(i) };
            if s == 0 {
                return None;
            }
            if tag_matches(s, t) {
                return Some((i, record_of(s)));
            }
            i = (i + 1) & mask;
        }
    }

    /// [`Table::find`] from slot `i` of `addr`'s probe path (its home slot,
    /// or a [`Table::candidate`] with the table unchanged since).
    #[inline]
    pub fn find_from(&self, addr: usize, mut i: usize) -> Option<*mut Record> {
        debug_assert!(i < self.cap);
        let mask = self.cap - 1;
        let t = tag(addr);
        loop {
            // SAFETY: i < cap, the slot array has cap entries.
            let s = unsafe { *self.slots.add(i) };
            if s == 0 {
                return None;
            }
            let r = record_of(s);
            // SAFETY: non-empty slots point to records of this table.
            if tag_matches(s, t) && unsafe { (*r).addr } == addr {
                return Some(r);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) -> bool {
        let new_cap = if self.cap == 0 { 1024 } else { self.cap * 2 };
        let bytes = new_cap * core::mem::size_of::<usize>();
        // A large slot array (hundreds of thousands of blocks) in huge
        // pages: every lookup touches a random slot, and with small pages
        // most of them would also miss the TLB.
        let m = if bytes >= sys::HUGE_PAGE {
            sys::map_huge(bytes)
        } else {
            sys::map(bytes)
        };
        let Some(m) = m else {
            return false;
        };
        let old = self.slots;
        let old_cap = self.cap;
        self.slots = m.as_ptr().cast();
        self.cap = new_cap;
        for i in 0..old_cap {
            // SAFETY: i < old_cap.
            let s = unsafe { *old.add(i) };
            if s != 0 {
                self.place(record_of(s));
            }
        }
        if old_cap > 0 {
            // SAFETY: the old slot array was mapped by us with this size.
            unsafe { sys::unmap(old.cast(), old_cap * core::mem::size_of::<usize>()) };
        }
        true
    }

    fn place(&mut self, r: *mut Record) {
        let mask = self.cap - 1;
        // SAFETY: r is a record of this table.
        let addr = unsafe { (*r).addr };
        let home = hash(addr) & mask;
        let mut i = home;
        // SAFETY: i < cap throughout; the table is never full (load ≤ 1/2).
        unsafe {
            while *self.slots.add(i) != 0 {
                i = (i + 1) & mask;
            }
            *self.slots.add(i) = slot_of(r, addr, i.wrapping_sub(home) & mask);
        }
    }

    /// The slot array and its mask (for [`slot_hint`]); (0, 0) when empty.
    pub fn hint(&self) -> (usize, usize) {
        (self.slots as usize, self.cap.wrapping_sub(1))
    }

    /// Adds `r` (its `addr` set, not already present) to the index. False
    /// when out of memory.
    pub fn insert(&mut self, r: *mut Record) -> bool {
        if (self.count + 1) * 2 > self.cap && !self.grow() {
            return false;
        }
        self.place(r);
        self.count += 1;
        true
    }

    /// Adds `r` (its `addr` set) to the index in one probe; a record already
    /// there for the same address is replaced and returned (no longer
    /// indexed).
    ///
    /// # Safety
    /// `r` came from [`Table::new_record`] and is not in the index.
    pub unsafe fn insert_replacing(
        &mut self,
        r: *mut Record,
    ) -> Result<Option<*mut Record>, OutOfMemory> {
        // SAFETY: r is a record of this table.
        if unsafe { (*r).inband } != 0 {
            debug_assert!(self.inband);
            // SAFETY: as above; its block is ours.
            unsafe { self.write_header(r) };
            return Ok(None);
        }
        if (self.count + 1) * 2 > self.cap && !self.grow() {
            return Err(OutOfMemory);
        }
        let mask = self.cap - 1;
        // SAFETY: r is a record of this table.
        let addr = unsafe { (*r).addr };
        let t = tag(addr);
        let home = hash(addr) & mask;
        let mut i = home;
        // SAFETY: i < cap throughout; the table is never full (load ≤ 1/2);
        // non-empty slots point to records of this table.
        unsafe {
            loop {
                let s = *self.slots.add(i);
                if s == 0 {
                    break;
                }
                let old = record_of(s);
                if tag_matches(s, t) && (*old).addr == addr {
                    *self.slots.add(i) = slot_of(r, addr, i.wrapping_sub(home) & mask);
                    return Ok(Some(old));
                }
                i = (i + 1) & mask;
            }
            *self.slots.add(i) = slot_of(r, addr, i.wrapping_sub(home) & mask);
        }
        self.count += 1;
        Ok(None)
    }

    /// Whether `w` is the address of a record slot of the in-band region
    /// (committed: below `slab_next`), whatever its contents.
    #[inline]
    fn in_region(&self, w: usize) -> bool {
        w.wrapping_sub(self.region) < self.slab_next.wrapping_sub(self.region)
            && w.is_multiple_of(STRIDE)
    }

    /// The two words of in-band record `r`'s header.
    fn header_words(&self, r: *mut Record) -> [usize; 2] {
        let w = r as usize ^ self.key;
        // SAFETY: callers pass records of this table.
        let (len, state) = unsafe { ((*r).len, (*r).state) };
        [w, !w ^ header_meta(len, state, w)]
    }

    /// What the header of in-band block `addr` says when it is intact and
    /// the block live: its record and length. `w` and `size` are what
    /// [`header_word_sized`] gave (possibly before the lock was taken): the
    /// header is read again, and must still name record `w`, say the block
    /// is live, and give a length whose redzones fit the `size`-byte smp
    /// block. Reads no record: a header fails these tests when it was
    /// damaged (see [`header_meta`]), or the block is not live (a double
    /// free), or is not in-band -- cases for the full lookup
    /// ([`Table::find_inband_from`]), which explains them.
    ///
    /// # Safety
    /// `w != 0` came from [`header_word_sized`] for `addr` with this
    /// table's key, and the caller holds the table's lock.
    #[inline]
    pub unsafe fn live_header(
        &self,
        addr: usize,
        w: usize,
        size: usize,
    ) -> Option<(*mut Record, usize)> {
        debug_assert!(self.inband && w != 0 && addr >= INBAND_FRONT);
        if !self.in_region(w) {
            return None;
        }
        // SAFETY: caller's promise: `addr` is (or was, just before the lock)
        // the start of a live smp block of `size` bytes, header included;
        // the block's memory stays mapped while its record is live, and a
        // stale header fails the tests below.
        let [w0, w1] = unsafe { ptr::read_volatile((addr - INBAND_FRONT) as *const [usize; 2]) };
        if w0 ^ self.key != w {
            return None;
        }
        let meta = w1 ^ !w0;
        let len = (meta & ((1 << 48) - 1)) >> 8;
        // (`len <= size` first: the sum below cannot overflow.)
        let fits = len != 0 && len <= size && len.next_multiple_of(16) + INBAND_FRONT + 16 <= size;
        (fits && meta == header_meta(len, LIVE, w0)).then_some((w as *mut Record, len))
    }

    /// Marks the header of in-band block `addr` freed, as its record now
    /// is; `w` and `len` are what [`Table::live_header`] said of it.
    ///
    /// # Safety
    /// As for [`Table::live_header`], which passed for `addr`.
    #[inline]
    pub unsafe fn set_header_freed(&self, addr: usize, w: usize, len: usize) {
        let w0 = w ^ self.key;
        // SAFETY: caller's promise: the header of a block we hold.
        unsafe { *((addr - INBAND_FRONT + 8) as *mut usize) = !w0 ^ header_meta(len, FREED, w0) };
    }

    /// Writes (or repairs) the header of in-band record `r`.
    ///
    /// # Safety
    /// `r` is an in-band record of this table whose block is still held.
    pub unsafe fn write_header(&self, r: *mut Record) {
        // SAFETY: caller's promise: the header lies just below the block's
        // base, inside the backing block we own.
        unsafe {
            let h = ((*r).base - HDR) as *mut [usize; 2];
            *h = self.header_words(r);
        }
    }

    /// Whether in-band record `r`'s header is intact.
    ///
    /// # Safety
    /// As for [`Table::write_header`].
    #[inline]
    pub unsafe fn header_intact(&self, r: *mut Record) -> bool {
        // SAFETY: caller's promise.
        unsafe { *(((*r).base - HDR) as *const [usize; 2]) == self.header_words(r) }
    }

    /// The highest damaged byte of in-band record `r`'s header (the one
    /// nearest the block), or `None` when it is intact.
    ///
    /// # Safety
    /// As for [`Table::write_header`].
    pub unsafe fn header_damage(&self, r: *mut Record) -> Option<usize> {
        // SAFETY: caller's promise.
        let at = unsafe { (*r).base } - HDR;
        // SAFETY: as above.
        let got = unsafe { *(at as *const [usize; 2]) };
        let want = self.header_words(r);
        (0..HDR)
            .rev()
            .find(|&i| (got[i / 8] >> (i % 8 * 8)) as u8 != (want[i / 8] >> (i % 8 * 8)) as u8)
            .map(|i| at + i)
    }

    /// Takes record `r` out of the lookup: clears an in-band block's
    /// header, or removes it from the index.
    ///
    /// # Safety
    /// `r` is a record of this table; an in-band block's memory is still
    /// held.
    pub unsafe fn remove_record(&mut self, r: *mut Record) {
        // SAFETY: caller's promise.
        let rec = unsafe { &*r };
        if rec.inband != 0 {
            // SAFETY: the header of a block we still hold.
            unsafe { *((rec.base - HDR) as *mut usize) = 0 };
        } else {
            self.remove(rec.addr);
        }
    }

    /// Removes the record of `addr` from the index (backward-shift deletion).
    pub fn remove(&mut self, addr: usize) {
        if self.cap == 0 {
            return;
        }
        let mask = self.cap - 1;
        let t = tag(addr);
        let mut i = hash(addr) & mask;
        // SAFETY: every index is masked to < cap; slots point to records.
        unsafe {
            loop {
                let s = *self.slots.add(i);
                if s == 0 {
                    return;
                }
                if tag_matches(s, t) && (*record_of(s)).addr == addr {
                    break;
                }
                i = (i + 1) & mask;
            }
            let mut hole = i;
            let mut j = (i + 1) & mask;
            loop {
                let s = *self.slots.add(j);
                if s == 0 {
                    break;
                }
                let mut dist = s >> DIST_SHIFT;
                if dist == FAR {
                    let a = (*record_of(s)).addr;
                    dist = j.wrapping_sub(hash(a)) & mask;
                }
                // Move the entry into the hole unless its home lies
                // cyclically in (hole, j], i.e. unless it is nearer its home
                // than the hole is.
                let gap = j.wrapping_sub(hole) & mask;
                if dist >= gap {
                    let moved = (s & (PTR_MASK | TAG_MASK)) | ((dist - gap).min(FAR) << DIST_SHIFT);
                    *self.slots.add(hole) = moved;
                    hole = j;
                }
                j = (j + 1) & mask;
            }
            *self.slots.add(hole) = 0;
        }
        self.count -= 1;
    }

    /// Calls `f` on every record in use (indexed, or with an in-band
    /// header).
    pub fn for_each(&self, mut f: impl FnMut(*mut Record)) {
        if self.inband {
            let mut at = self.region;
            while at < self.slab_next {
                let r = at as *mut Record;
                // SAFETY: a committed record slot; free ones have state 0.
                if unsafe { (*r).state } != 0 {
                    f(r);
                }
                at += STRIDE;
            }
            return;
        }
        for i in 0..self.cap {
            // SAFETY: i < cap.
            let s = unsafe { *self.slots.add(i) };
            if s != 0 {
                f(record_of(s));
            }
        }
    }

    /// The record of the block (live or freed) whose user range contains
    /// `addr`, for explaining interior pointers. Linear: error paths only.
    pub fn find_containing(&self, addr: usize) -> Option<*mut Record> {
        let mut found = None;
        self.for_each(|r| {
            // SAFETY: indexed records are valid.
            let (a, l) = unsafe { ((*r).addr, (*r).len) };
            if a <= addr && addr < a + l.max(1) && found.is_none() {
                found = Some(r);
            }
        });
        found
    }

    /// Calls `f(lo, hi)` for each slab mapping holding records.
    pub fn for_each_slab(&self, mut f: impl FnMut(usize, usize)) {
        if self.inband {
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

    /// Unmaps the index and every slab (records and traces are gone after).
    pub fn release(&mut self) {
        if self.cap > 0 {
            // SAFETY: the slot array was mapped by `grow` with this size.
            unsafe { sys::unmap(self.slots.cast(), self.cap * core::mem::size_of::<usize>()) };
        }
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
        let (inband, key) = (self.inband, self.key);
        *self = Table::new();
        self.inband = inband;
        self.key = key;
    }
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

const _: () = assert!(core::mem::size_of::<Record>() <= STRIDE);

/// What a freed block with guard pages counts against the quarantine's
/// bytes: its pages go back to the OS when it is freed (`la_debug::free`),
/// only its inaccessible mapping stays. So a large block stays quarantined
/// about as long as small ones do, rather than push them all out at once
/// and leave at once itself (a later access would then fault with no
/// record to explain it); the budget still bounds how many mappings are
/// kept.
pub(crate) const GUARDED_QUARANTINE_COST: usize = 16 << 10;

impl Record {
    /// The bytes this freed block counts against the quarantine.
    #[inline]
    pub(crate) fn quarantine_cost(&self) -> usize {
        if self.kind == KIND_GUARDED {
            GUARDED_QUARANTINE_COST
        } else {
            self.base_len
        }
    }
}

/// Freed blocks held back from the backing allocator, oldest first, so
/// their addresses are not reused at once (double frees and writes after
/// free stay detectable). A ring of record pointers mapped from the OS.
pub struct Quarantine {
    ring: *mut *mut Record,
    cap: usize,
    head: usize,
    len: usize,
    /// Bytes of backing memory held.
    pub bytes: usize,
}

impl Quarantine {
    /// An empty quarantine of up to `cap` blocks (a power of two; mapped on
    /// first use).
    pub const fn new(cap: usize) -> Self {
        assert!(cap.is_power_of_two());
        Quarantine {
            ring: ptr::null_mut(),
            cap,
            head: 0,
            len: 0,
            bytes: 0,
        }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether another block fits without evicting one.
    pub fn full(&self) -> bool {
        self.len == self.cap
    }

    /// Appends `r`, counting `cost` bytes (its `quarantine_cost`, given by
    /// the caller, who may not want to read the record again); false when
    /// full or out of memory.
    ///
    /// # Safety
    /// `r` is a valid record that stays valid while in the quarantine.
    pub unsafe fn push(&mut self, r: *mut Record, cost: usize) -> bool {
        if self.ring.is_null() {
            match sys::map(self.cap * core::mem::size_of::<*mut Record>()) {
                Some(m) => self.ring = m.as_ptr().cast(),
                None => return false,
            }
        }
        if self.len == self.cap {
            return false;
        }
        // SAFETY: the slot index is < cap.
        unsafe { *self.ring.add((self.head + self.len) & (self.cap - 1)) = r };
        self.len += 1;
        // SAFETY: r is a valid record (caller's promise).
        debug_assert!(cost == unsafe { (*r).quarantine_cost() });
        self.bytes += cost;
        true
    }

    /// The `k`-th oldest block (0: the next one [`Quarantine::pop`] gives).
    pub fn peek(&self, k: usize) -> Option<*mut Record> {
        if k >= self.len {
            return None;
        }
        // SAFETY: the slot index is < cap and holds one of the len blocks.
        Some(unsafe { *self.ring.add((self.head + k) & (self.cap - 1)) })
    }

    /// Removes and returns the oldest block.
    pub fn pop(&mut self) -> Option<*mut Record> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: head < cap.
        let r = unsafe { *self.ring.add(self.head) };
        self.head = (self.head + 1) & (self.cap - 1);
        self.len -= 1;
        // SAFETY: records in the ring stay valid until popped.
        self.bytes -= unsafe { (*r).quarantine_cost() };
        Some(r)
    }

    /// Unmaps the ring (the records are the table's to release).
    pub fn release(&mut self) {
        if !self.ring.is_null() {
            // SAFETY: mapped by `push` with this size.
            unsafe {
                sys::unmap(
                    self.ring.cast(),
                    self.cap * core::mem::size_of::<*mut Record>(),
                )
            };
        }
        *self = Quarantine::new(self.cap);
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
        let mut t = Table::new();
        t.set_inband(1 << 63 | 1);
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

    #[test]
    fn insert_find_remove() {
        let mut t = Table::new();
        let mut recs = [ptr::null_mut(); 3000];
        for (i, slot) in recs.iter_mut().enumerate() {
            let r = t.new_record();
            assert!(!r.is_null());
            // SAFETY: fresh record.
            unsafe { (*r).addr = 0x1000 + i * 16 };
            assert!(t.insert(r));
            *slot = r;
        }
        assert_eq!(t.len(), 3000);
        for i in (0..3000).step_by(3) {
            t.remove(0x1000 + i * 16);
        }
        for i in 0..3000 {
            assert_eq!(t.find(0x1000 + i * 16).is_some(), i % 3 != 0, "{i}");
        }
        t.release();
    }

    #[test]
    fn random_inserts_and_removes_match_a_model() {
        // Blocks packed into few pages make long probe runs, so deletions
        // shift entries back across many slots.
        let mut t = Table::new();
        let mut live = std::collections::HashSet::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let addr = 0x10_0000 + (x as usize % 4096) * 16;
            if live.contains(&addr) {
                t.remove(addr);
                live.remove(&addr);
            } else {
                let r = t.new_record();
                // SAFETY: fresh record.
                unsafe { (*r).addr = addr };
                // SAFETY: fresh record, and addr is not indexed.
                assert!(matches!(unsafe { t.insert_replacing(r) }, Ok(None)));
                live.insert(addr);
            }
            assert_eq!(t.len(), live.len());
        }
        for k in 0..4096 {
            let addr = 0x10_0000 + k * 16;
            assert_eq!(t.find(addr).is_some(), live.contains(&addr), "{addr:x}");
        }
        t.release();
    }
}
