//! The quarantine: freed blocks held back from the backing allocator,
//! oldest first, so their addresses are not reused at once (double frees
//! and writes after free stay detectable), and its policy.
//!
//! A ring of record pointers mapped from the OS per shard, with the bytes
//! of backing memory it holds. The budget is the instance's, over all its
//! shards; each shard reports its bytes to a shared total in steps
//! (`QUARANTINE_STEP`). The policy (see `la_debug::enqueue` and
//! `la_debug::evict_for_alloc`): allocations let a shard's oldest blocks
//! leave once the total passes the budget; frees alone let it grow to
//! twice the budget; either then takes blocks out in batches until the
//! total is down to [`low_water`], 15/16 of the budget -- but only from a
//! shard holding more than its share (the budget over the shards), so a
//! single thread, whose blocks mostly fall in one shard, gets the whole
//! budget, and no thread is left with less than a share. A block with
//! guard pages counts [`GUARDED_QUARANTINE_COST`].

use core::ptr;

use super::record::{KIND_GUARDED, Record};
use crate::sys;

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

/// Where an eviction stops: 15/16 of the budget `limit`, so blocks leave
/// in batches rather than one per call.
#[inline]
pub(crate) const fn low_water(limit: usize) -> usize {
    limit - limit / 16
}

/// Freed blocks, oldest first (see the module doc).
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
