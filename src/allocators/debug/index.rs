//! The address index of the debug allocator's records: an
//! open-addressing hash table (linear probing, backward-shift deletion)
//! from a block's user address to its [`Record`], doubled when half full.
//!
//! A slot holds the record's address (below 2^48), an 8-bit tag of the
//! block address and the slot's distance from its home slot (capped at
//! 255), so neither a probe passing other blocks' slots nor a deletion
//! shifting them back loads their records. The slot hash keeps the blocks
//! of one page in one run of slots (see [`hash`]). Large slot arrays are
//! mapped in huge pages. Nothing here allocates through `malloc`.

use super::record::{ADDR_LIMIT, Record};
use crate::sys;

/// The index could not grow.
#[derive(Debug)]
pub struct OutOfMemory;

/// The slot of `addr`'s probe start, as an address for [`prefetch`], given
/// a slot array and its mask (possibly stale: only a hint).
#[inline]
pub fn slot_hint(slots: usize, mask: usize, addr: usize) -> usize {
    slots + (hash(addr) & mask) * core::mem::size_of::<usize>()
}

/// Bits of a slot holding the record's address.
const PTR_MASK: usize = ADDR_LIMIT;
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

/// Tagged record pointers over blocks' user addresses.
pub struct Index {
    /// Tagged record pointers ([`tag`]); 0 = empty.
    slots: *mut usize,
    cap: usize,
    count: usize,
}

impl Index {
    /// An empty index (mapped on the first insertion).
    pub const fn new() -> Self {
        Index {
            slots: core::ptr::null_mut(),
            cap: 0,
            count: 0,
        }
    }

    /// Records in the index.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The record of the block at `addr`.
    #[inline]
    pub fn find(&self, addr: usize) -> Option<*mut Record> {
        if self.cap == 0 {
            return None;
        }
        self.find_from(addr, hash(addr) & (self.cap - 1))
    }

    /// The first slot on `addr`'s probe path whose tag matches, and its
    /// record, without reading any record: most likely the record of
    /// `addr`, to prefetch before [`Index::find_from`] reads it from there.
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

    /// [`Index::find`] from slot `i` of `addr`'s probe path (its home slot,
    /// or a [`Index::candidate`] with the table unchanged since).
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
            // SAFETY: non-empty slots point to valid records.
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
        // SAFETY: r is a valid record (caller's promise).
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
    #[cfg(test)]
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
    /// `r` is a valid record (its `addr` set), not in the index.
    pub unsafe fn insert_replacing(
        &mut self,
        r: *mut Record,
    ) -> Result<Option<*mut Record>, OutOfMemory> {
        if (self.count + 1) * 2 > self.cap && !self.grow() {
            return Err(OutOfMemory);
        }
        let mask = self.cap - 1;
        // SAFETY: r is a valid record (caller's promise).
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

    /// Calls `f` on every indexed record.
    pub fn for_each(&self, mut f: impl FnMut(*mut Record)) {
        for i in 0..self.cap {
            // SAFETY: i < cap.
            let s = unsafe { *self.slots.add(i) };
            if s != 0 {
                f(record_of(s));
            }
        }
    }

    /// Unmaps the slot array (the records are not the index's).
    pub fn release(&mut self) {
        if self.cap > 0 {
            // SAFETY: the slot array was mapped by `grow` with this size.
            unsafe { sys::unmap(self.slots.cast(), self.cap * core::mem::size_of::<usize>()) };
        }
        *self = Index::new();
    }
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::Records;
    use super::*;

    #[test]
    fn insert_find_remove() {
        let mut t = Index::new();
        let mut store = Records::new();
        let mut recs = [core::ptr::null_mut(); 3000];
        for (i, slot) in recs.iter_mut().enumerate() {
            let r = store.new_record();
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
        store.release();
    }

    #[test]
    fn random_inserts_and_removes_match_a_model() {
        // Blocks packed into few pages make long probe runs, so deletions
        // shift entries back across many slots.
        let mut t = Index::new();
        let mut store = Records::new();
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
                let r = store.new_record();
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
        store.release();
    }
}
