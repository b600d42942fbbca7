//! A private bump arena for report-time work (symbolization, leak grouping).
//!
//! Memory comes straight from the OS layer in chunks of at least 1 MiB and is
//! returned when the [`Scratch`] is dropped. It never touches `malloc` or the
//! allocator being debugged, so reports can be produced from inside `free`
//! (and under the malloc shim) without recursing.

use core::ptr::{self, NonNull};

use crate::alignment;
use crate::sys;

const CHUNK: usize = 1 << 20;

/// Chunk header, at the start of each mapping.
#[repr(C)]
struct Chunk {
    prev: *mut Chunk,
    len: usize,
}

/// A bump arena over OS mappings; everything is freed on drop.
pub struct Scratch {
    head: *mut Chunk,
    next: usize,
    end: usize,
}

impl Scratch {
    /// An empty arena (maps nothing until first used).
    pub const fn new() -> Self {
        Scratch {
            head: ptr::null_mut(),
            next: 0,
            end: 0,
        }
    }

    /// `len` zeroed bytes aligned to `align` (a power of two ≤ 4096), or
    /// `None` when the OS refuses memory.
    pub fn bytes(&mut self, len: usize, align: usize) -> Option<NonNull<u8>> {
        debug_assert!(align.is_power_of_two() && align <= 4096);
        if let Some(start) = alignment::forward(self.next, align)
            && start.checked_add(len)? <= self.end
            && self.next != 0
        {
            self.next = start + len;
            return NonNull::new(start as *mut u8);
        }
        let want = len
            .checked_add(core::mem::size_of::<Chunk>() + align)?
            .max(CHUNK);
        let want = alignment::forward(want, sys::page_size())?;
        let base = sys::map(want)?.as_ptr();
        // SAFETY: the mapping is fresh, writable and large enough for a Chunk.
        unsafe {
            base.cast::<Chunk>().write(Chunk {
                prev: self.head,
                len: want,
            })
        };
        self.head = base.cast();
        let first = base as usize + core::mem::size_of::<Chunk>();
        let start = alignment::forward(first, align)?;
        self.next = start + len;
        self.end = base as usize + want;
        NonNull::new(start as *mut u8)
    }

    /// A zeroed slice of `n` values of a plain-data type (all-zero bytes must
    /// be a valid `T`), or `None` when out of memory.
    pub fn slice<T: Copy>(&mut self, n: usize) -> Option<&'static mut [T]> {
        let len = n.checked_mul(core::mem::size_of::<T>())?;
        let p = self.bytes(len.max(1), core::mem::align_of::<T>())?;
        // SAFETY: p is fresh zeroed memory of len bytes aligned for T, which
        // lives until this arena is dropped (callers do not keep the slice
        // past that; 'static is the arena's lifetime by convention).
        Some(unsafe { core::slice::from_raw_parts_mut(p.as_ptr().cast::<T>(), n) })
    }

    /// A copy of `s` in the arena.
    pub fn copy(&mut self, s: &[u8]) -> Option<&'static [u8]> {
        let d = self.slice::<u8>(s.len())?;
        d.copy_from_slice(s);
        Some(d)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let mut c = self.head;
        while !c.is_null() {
            // SAFETY: every chunk was mapped by `bytes` with its length in
            // the header, and nothing borrowed from the arena outlives it.
            unsafe {
                let prev = (*c).prev;
                sys::unmap(c.cast(), (*c).len);
                c = prev;
            }
        }
    }
}
