//! In-band headers: over the smp allocator (the shim's backing) most
//! blocks need no index entry at all, and such a table is *in-band*.
//!
//! Its records live in one reserved region (`record.rs`), and a block of a
//! size class the smp allocator serves carries a 16-byte header just
//! before its front redzone holding its record's address (masked with a
//! per-table key) and, checked against it, the block's length and state
//! (live or freed). A free reads the header only ([`Table::live_header`]):
//! its record is written, never read, unless the header does not pass
//! (then the full lookup explains why). A lookup asks the smp allocator
//! whether the header's block is live -- an exact test that never reads
//! memory that is not ours -- then checks that the decoded address is a
//! record of the region naming this very block. Only the other blocks
//! (guarded mappings, alignments above 16, sizes beyond the size classes)
//! go into the index. A damaged header (an underflow reaching it) is then
//! not found by address: the free is explained through the region as for
//! an interior pointer ([`Table::find_scan`]).

use core::ptr;

use super::record::{FREED, LIVE, Record};
use super::table::Table;

/// Bytes of the in-band header in front of a block's front redzone: the
/// masked record address, then the block's length and state with their
/// check ([`header_meta`]) XOR the first word's complement (a second word
/// the smp allocator's free tag check reads, never its tag value for a
/// live block).
pub(crate) const HDR: usize = 16;
/// Front redzone plus header of an in-band block: its backing block starts
/// this many bytes before the user address.
pub(crate) const INBAND_FRONT: usize = HDR + 16;

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

/// The length the second header word `w1` gives, with `w0` the first
/// (both as read from memory), unchecked: a hint, for prefetching.
#[inline(always)]
pub fn header_len_hint(w0: usize, w1: usize) -> usize {
    ((w1 ^ !w0) & ((1 << 48) - 1)) >> 8
}

impl Table {
    /// The in-band record of block `addr` whose header was damaged (an
    /// underflow reaching it), by a walk of the region: only for addresses
    /// neither the header nor the index knows, which are misuse anyway.
    #[cold]
    pub fn find_scan(&self, addr: usize) -> Option<*mut Record> {
        let mut found = None;
        if self.inband {
            self.records.for_each_in_region(|r| {
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
        if !self.records.in_region(w) {
            return None;
        }
        let r = w as *mut Record;
        // SAFETY: a record slot of our region below `slab_next`: committed,
        // and records are plain data (a free one reads as state 0).
        let ok = unsafe { (*r).addr == addr && (*r).inband != 0 && (*r).state != 0 };
        ok.then_some(r)
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
        if !self.records.in_region(w) {
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
        let len = header_len_hint(w0, w1);
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

    /// Clears the header of in-band record `r`, so its block is no longer
    /// found by address.
    ///
    /// # Safety
    /// As for [`Table::write_header`].
    pub(super) unsafe fn clear_header(&self, r: &Record) {
        debug_assert!(r.inband != 0);
        // SAFETY: caller's promise: the header of a block we still hold.
        unsafe { *((r.base - HDR) as *mut usize) = 0 };
    }
}
