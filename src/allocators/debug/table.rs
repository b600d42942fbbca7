//! The debug allocator's bookkeeping: the records of one shard's blocks,
//! found by the block's address.
//!
//! A [`Table`] puts together the record store (`record.rs`), the address
//! index (`index.rs`) and, when the table is in-band (over the smp
//! allocator), the blocks' in-band headers (`inband.rs`): a lookup reads
//! the header first, then the index (which then holds only the blocks
//! without a header), so callers need not know where a record is kept.
//! The quarantine is `quarantine.rs`.
//! Nothing here allocates through `malloc`; all memory comes from `sys`.

pub(crate) use super::inband::{HDR, INBAND_FRONT, header_len_hint, header_word_sized};
use super::index::Index;
pub(crate) use super::index::{OutOfMemory, slot_hint};
pub(crate) use super::quarantine::Quarantine;
use super::record::Records;
pub(crate) use super::record::{FREED, KIND_BACKING, KIND_GUARDED, LIVE, Record, prefetch};

/// All records of one shard and the lookup over them.
pub struct Table {
    pub(super) records: Records,
    index: Index,
    /// In-band mode (see `inband.rs`) and the header key.
    pub(super) inband: bool,
    pub(super) key: usize,
}

impl Table {
    /// An empty table.
    pub const fn new() -> Self {
        Table {
            records: Records::new(),
            index: Index::new(),
            inband: false,
            key: 0,
        }
    }

    /// Switches an unused table to in-band mode, headers masked with `key`.
    /// Only for a table whose in-band blocks come from the smp allocator,
    /// with its chunk map prepared (`smp::prepare`).
    pub fn set_inband(&mut self, key: usize) {
        debug_assert!(self.index.is_empty());
        self.records.use_region();
        self.inband = true;
        self.key = key;
    }

    /// The header key of an in-band table.
    #[inline]
    pub fn key(&self) -> usize {
        self.key
    }

    /// Whether the table is in-band (see `inband.rs`).
    #[inline]
    pub fn is_inband(&self) -> bool {
        self.inband
    }

    /// Records in the index.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// A fresh record (not yet looked up), or NULL when out of memory.
    #[inline]
    pub fn new_record(&mut self) -> *mut Record {
        self.records.new_record()
    }

    /// Returns a record (already taken out of the lookup) to the free list.
    ///
    /// # Safety
    /// `r` came from [`Table::new_record`] and is not looked up any more.
    #[inline]
    pub unsafe fn drop_record(&mut self, r: *mut Record) {
        // SAFETY: caller's promise.
        unsafe { self.records.drop_record(r) }
    }

    /// The record of the block at `addr`.
    pub fn find(&self, addr: usize) -> Option<*mut Record> {
        if let Some(r) = self.find_inband(addr) {
            return Some(r);
        }
        if let Some(r) = self.index.find(addr) {
            return Some(r);
        }
        self.find_scan(addr)
    }

    /// See [`Index::candidate`].
    #[inline]
    pub fn candidate(&self, addr: usize) -> Option<(usize, *mut Record)> {
        self.index.candidate(addr)
    }

    /// See [`Index::find_from`].
    #[inline]
    pub fn find_from(&self, addr: usize, i: usize) -> Option<*mut Record> {
        self.index.find_from(addr, i)
    }

    /// The index's slot array and its mask (for [`slot_hint`]).
    pub fn hint(&self) -> (usize, usize) {
        self.index.hint()
    }

    /// Makes record `r` (its `addr` set) found by address in one probe: an
    /// in-band block's header is written; otherwise it enters the index,
    /// where a record already there for the same address is replaced and
    /// returned (no longer indexed).
    ///
    /// # Safety
    /// `r` came from [`Table::new_record`] and is not looked up yet; an
    /// in-band block's memory is held.
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
        // SAFETY: caller's promise.
        unsafe { self.index.insert_replacing(r) }
    }

    /// Takes record `r` out of the lookup: clears an in-band block's
    /// header, or removes it from the index.
    ///
    /// # Safety
    /// `r` is a record of this table; an in-band block's memory is still
    /// held.
    #[inline]
    pub unsafe fn remove_record(&mut self, r: *mut Record) {
        // SAFETY: caller's promise.
        let rec = unsafe { &*r };
        if rec.inband != 0 {
            // SAFETY: the header of a block we still hold.
            unsafe { self.clear_header(rec) };
        } else {
            self.index.remove(rec.addr);
        }
    }

    /// Calls `f` on every record in use (indexed, or with an in-band
    /// header).
    pub fn for_each(&self, f: impl FnMut(*mut Record)) {
        if self.inband {
            self.records.for_each_in_region(f);
        } else {
            self.index.for_each(f);
        }
    }

    /// The record of the block (live or freed) whose user range contains
    /// `addr`, for explaining interior pointers. Linear: error paths only.
    pub fn find_containing(&self, addr: usize) -> Option<*mut Record> {
        let mut found = None;
        self.for_each(|r| {
            // SAFETY: records in use are valid.
            let (a, l) = unsafe { ((*r).addr, (*r).len) };
            if a <= addr && addr < a + l.max(1) && found.is_none() {
                found = Some(r);
            }
        });
        found
    }

    /// Calls `f(lo, hi)` for each mapping holding records.
    pub fn for_each_slab(&self, f: impl FnMut(usize, usize)) {
        self.records.for_each_slab(f);
    }

    /// Unmaps the index and every slab (records and traces are gone after);
    /// the table stays in-band if it was.
    pub fn release(&mut self) {
        self.index.release();
        self.records.release();
    }
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}
