//! The memory pool: fixed-size, fixed-alignment items carved from chunks of a
//! child allocator, recycled through a free list (Zig's `MemoryPool`).
//!
//! Every item slot is `item_size` bytes (at least a pointer, a multiple of
//! the alignment) aligned to `item_align` (at least a pointer's). Chunks come
//! from the child, each a small header followed by its slots, and are kept
//! in a list in allocation order. `create_item` pops the free list (a freed
//! slot holds the link to the next), else takes the next unused slot of the
//! current chunk, else moves to the next retained chunk, else allocates a
//! new chunk (sizes double, from about a page up to about 1 MiB).
//! `destroy_item` pushes the slot. Each operation is O(1) (amortised over
//! chunk allocation). `reset` takes the arena's modes, read by the arena's
//! own code (`la_arena_reset_mode::retain_limit`, Zig's `reset` argument):
//! keep every chunk, or the first chunks up to a byte limit (0: give every
//! chunk back); kept chunks are reused from the start. Not thread-safe (wrap a pool user in
//! a lock, as with any single-threaded allocator).

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use crate::alignment;
use crate::allocators::arena::la_arena_reset_mode;
use crate::allocators::handle;
use crate::vtable::{ChildAllocator, la_allocator};
use libc::size_t;

/// Chunk sizes grow up to about this many bytes.
const MAX_CHUNK_BYTES: usize = 1 << 20;
/// The first chunk holds about this many bytes.
const FIRST_CHUNK_BYTES: usize = 4096;

/// The header at the start of every chunk; the slots follow at
/// `slots_offset`.
#[repr(C)]
struct Chunk {
    next: *mut Chunk,
    /// Slots in this chunk.
    items: usize,
    /// Bytes of the child allocation (header included).
    bytes: usize,
}

/// A memory pool (opaque): fixed-size items from a child allocator.
#[allow(non_camel_case_types)]
pub struct la_pool {
    child: ChildAllocator,
    item_size: usize,
    item_align_log2: u8,
    /// Where the slots start inside a chunk.
    slots_offset: usize,
    first: *mut Chunk,
    last: *mut Chunk,
    /// The chunk slots are carved from, and how many it has handed out.
    cur: *mut Chunk,
    cur_used: usize,
    /// Freed slots, each holding a pointer to the next.
    free: *mut u8,
    next_items: usize,
    capacity: usize,
}

impl la_pool {
    fn chunk_align(&self) -> u8 {
        self.item_align_log2
            .max(core::mem::align_of::<Chunk>().trailing_zeros() as u8)
    }

    /// Allocates a chunk of `items` slots and appends it to the list.
    fn add_chunk(&mut self, items: usize) -> bool {
        let Some(bytes) = items
            .checked_mul(self.item_size)
            .and_then(|b| b.checked_add(self.slots_offset))
            .filter(|&b| b <= isize::MAX as usize)
        else {
            return false;
        };
        // SAFETY: the child is valid while the pool lives (la_pool_create).
        let Some(mem) = (unsafe { self.child.alloc(bytes, self.chunk_align(), 0) }) else {
            return false;
        };
        let chunk = mem.as_ptr().cast::<Chunk>();
        // SAFETY: `mem` is a fresh block of `bytes` >= size_of::<Chunk>()
        // bytes aligned for Chunk; `last`, when set, is a live chunk.
        unsafe {
            chunk.write(Chunk {
                next: ptr::null_mut(),
                items,
                bytes,
            });
            match self.last.as_mut() {
                Some(l) => l.next = chunk,
                None => self.first = chunk,
            }
        }
        self.last = chunk;
        if self.cur.is_null() {
            self.cur = chunk;
            self.cur_used = 0;
        }
        self.capacity += items;
        true
    }

    /// Gives the chunks from `from` onwards back to the child.
    fn free_chunks(&mut self, mut from: *mut Chunk) {
        while !from.is_null() {
            // SAFETY: `from` is a live chunk of this pool, allocated with
            // `bytes` and `chunk_align()`; nothing refers to it afterwards.
            unsafe {
                let next = (*from).next;
                let (items, bytes) = ((*from).items, (*from).bytes);
                self.capacity -= items;
                self.child.free(from.cast(), bytes, self.chunk_align(), 0);
                from = next;
            }
        }
    }

    fn create_item(&mut self) -> *mut u8 {
        if !self.free.is_null() {
            let slot = self.free;
            // SAFETY: a free slot holds the (possibly NULL) next free slot,
            // written by destroy_item; slots are pointer-aligned.
            self.free = unsafe { slot.cast::<*mut u8>().read() };
            return slot;
        }
        loop {
            // SAFETY: `cur` is NULL or a live chunk.
            if let Some(c) = unsafe { self.cur.as_ref() } {
                if self.cur_used < c.items {
                    let off = self.slots_offset + self.cur_used * self.item_size;
                    self.cur_used += 1;
                    // SAFETY: slot `cur_used - 1` lies inside the chunk.
                    return unsafe { self.cur.cast::<u8>().add(off) };
                }
                if !c.next.is_null() {
                    self.cur = c.next;
                    self.cur_used = 0;
                    continue;
                }
            }
            let items = self.next_items;
            if !self.add_chunk(items) {
                return ptr::null_mut();
            }
            // SAFETY: add_chunk just appended a chunk after `cur` (or made it
            // `cur`), so moving on reaches it.
            if let Some(c) = unsafe { self.cur.as_ref() }
                && self.cur_used >= c.items
            {
                self.cur = c.next;
                self.cur_used = 0;
            }
            let max_items = (MAX_CHUNK_BYTES / self.item_size).max(1);
            self.next_items = items.saturating_mul(2).min(max_items).max(items);
        }
    }

    /// Zig's `reset`: `limit` is `None` to retain every chunk, else the
    /// bytes of chunks kept (the longest prefix that fits).
    fn reset(&mut self, limit: Option<usize>) {
        self.free = ptr::null_mut();
        if let Some(limit) = limit {
            let mut kept: *mut Chunk = ptr::null_mut();
            let mut total = 0usize;
            let mut c = self.first;
            // SAFETY: walking live chunks of this pool.
            while let Some(ch) = unsafe { c.as_ref() } {
                match total.checked_add(ch.bytes) {
                    Some(t) if t <= limit => total = t,
                    _ => break,
                }
                kept = c;
                c = ch.next;
            }
            // SAFETY: `kept` is NULL or a live chunk; the chunks after it
            // are unlinked before they go back.
            match unsafe { kept.as_mut() } {
                Some(k) => {
                    let rest = core::mem::replace(&mut k.next, ptr::null_mut());
                    self.free_chunks(rest);
                }
                None => {
                    self.free_chunks(self.first);
                    self.first = ptr::null_mut();
                    self.next_items = (FIRST_CHUNK_BYTES / self.item_size).max(1);
                }
            }
            self.last = kept;
        }
        self.cur = self.first;
        self.cur_used = 0;
    }
}

/// Creates a memory pool of items of `item_size` bytes aligned to
/// `item_align` bytes, whose memory comes from `child` in growing chunks.
///
/// Parameters: `child` the backing allocator (must outlive the pool);
/// `item_size` bytes per item (0 is allowed; slots are at least a pointer);
/// `item_align` a power of two in bytes (below 2^63).
///
/// Returns: the pool, or NULL when `child` has a NULL vtable, `item_align`
/// is not a power of two, the slot size overflows, or out of memory. No
/// memory is taken from `child` until the first item or `la_pool_preheat`.
///
/// Thread safety: a pool is for one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn la_pool_create(
    child: la_allocator,
    item_size: size_t,
    item_align: size_t,
) -> *mut la_pool {
    let child = ChildAllocator(child);
    let Some(align_log2) = alignment::from_bytes(item_align) else {
        return ptr::null_mut();
    };
    if !child.is_valid() || align_log2 > alignment::MAX_LOG2 - 1 {
        return ptr::null_mut();
    }
    let ptr_align = core::mem::align_of::<*mut u8>();
    let align = item_align.max(ptr_align);
    let Some(size) = alignment::forward(item_size.max(core::mem::size_of::<*mut u8>()), align)
        .filter(|&s| s <= isize::MAX as usize)
    else {
        return ptr::null_mut();
    };
    let Some(slots_offset) = alignment::forward(core::mem::size_of::<Chunk>(), align) else {
        return ptr::null_mut();
    };
    let pool = la_pool {
        child,
        item_size: size,
        item_align_log2: align.trailing_zeros() as u8,
        slots_offset,
        first: ptr::null_mut(),
        last: ptr::null_mut(),
        cur: ptr::null_mut(),
        cur_used: 0,
        free: ptr::null_mut(),
        next_items: (FIRST_CHUNK_BYTES / size).max(1),
        capacity: 0,
    };
    match handle::create(pool) {
        Some(p) => p.as_ptr(),
        None => ptr::null_mut(),
    }
}

/// Takes one item from the pool (its contents are undefined).
///
/// Returns: an item of the pool's size and alignment, or NULL when out of
/// memory or `pool` is NULL. O(1): a recycled item, else a fresh slot, else
/// a new chunk from the child.
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_create_item(pool: *mut la_pool) -> *mut c_void {
    // SAFETY: NULL or live, used by one thread (caller's promise).
    match unsafe { pool.as_mut() } {
        Some(p) => p.create_item().cast(),
        None => ptr::null_mut(),
    }
}

/// Gives an item back to the pool for reuse (the next `la_pool_create_item`
/// returns it). O(1).
///
/// Parameters: `item` from `la_pool_create_item` of this pool; NULL (or a
/// NULL `pool`) does nothing.
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool; `item` is NULL or a live item of it, not
/// used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_destroy_item(pool: *mut la_pool, item: *mut c_void) {
    // SAFETY: NULL or live (caller's promise).
    let Some(p) = (unsafe { pool.as_mut() }) else {
        return;
    };
    if item.is_null() {
        return;
    }
    debug_assert!(alignment::is_aligned(item as usize, 1 << p.item_align_log2));
    // SAFETY: `item` is a slot of at least pointer size and alignment.
    unsafe { item.cast::<*mut u8>().write(p.free) };
    p.free = item.cast();
}

/// Adds room for `n` more items in one chunk from the child, so that the
/// next `n` item creations need no further child allocation (Zig's
/// `addCapacity`).
///
/// Returns: true on success (and for `n` 0); false when out of memory, on
/// overflow or for a NULL `pool`.
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_preheat(pool: *mut la_pool, n: size_t) -> bool {
    // SAFETY: NULL or live (caller's promise).
    match unsafe { pool.as_mut() } {
        Some(p) => n == 0 || p.add_chunk(n),
        None => false,
    }
}

/// Destroys every item at once, keeping the pool usable. `mode` is the
/// arena's: `LA_ARENA_FREE_ALL` gives every chunk back to the child,
/// `LA_ARENA_RETAIN_CAPACITY` keeps them all for reuse,
/// `LA_ARENA_RETAIN_WITH_LIMIT` keeps chunks totalling at most `limit` bytes.
///
/// Returns: true (the pool's chunks never need reallocating); false for a
/// NULL `pool` or an unknown `mode` (then nothing changes).
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool; its items are dead afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_reset(
    pool: *mut la_pool,
    mode: la_arena_reset_mode,
    limit: size_t,
) -> bool {
    // SAFETY: NULL or live (caller's promise).
    let (Some(p), Some(limit)) = (unsafe { pool.as_mut() }, mode.retain_limit(limit)) else {
        return false;
    };
    p.reset(limit);
    true
}

/// The number of items the pool's chunks hold (free, used or not yet
/// handed out).
///
/// Returns: 0 for a NULL `pool`.
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_query_capacity(pool: *const la_pool) -> size_t {
    // SAFETY: NULL or live (caller's promise).
    unsafe { pool.as_ref() }.map_or(0, |p| p.capacity)
}

/// Destroys the pool and gives all its memory back to the child.
///
/// Parameters: `pool` the pool; NULL does nothing.
///
/// Thread safety: a pool is for one thread at a time.
///
/// # Safety
/// `pool` is NULL or a live pool; it and its items are dead afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_pool_destroy(pool: *mut la_pool) {
    let Some(p) = NonNull::new(pool) else {
        return;
    };
    // SAFETY: a live pool (caller's promise); its chunks go back first.
    unsafe {
        let first = (*p.as_ptr()).first;
        (*p.as_ptr()).free_chunks(first);
        handle::destroy(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::arena::{
        LA_ARENA_FREE_ALL, LA_ARENA_RETAIN_CAPACITY, LA_ARENA_RETAIN_WITH_LIMIT,
    };
    use crate::allocators::c::la_c_allocator;

    #[test]
    fn reuse_is_lifo_and_aligned() {
        let pool = la_pool_create(la_c_allocator(), 24, 32);
        assert!(!pool.is_null());
        // SAFETY: live pool; items used within 24 bytes.
        unsafe {
            let mut items = Vec::new();
            for i in 0..1000 {
                let p = la_pool_create_item(pool);
                assert!(!p.is_null());
                assert_eq!(p as usize % 32, 0);
                p.cast::<u8>().write_bytes(i as u8, 24);
                items.push(p);
            }
            let mut sorted = items.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 1000);
            let cap = la_pool_query_capacity(pool);
            la_pool_destroy_item(pool, items[10]);
            la_pool_destroy_item(pool, items[20]);
            assert_eq!(la_pool_create_item(pool), items[20]);
            assert_eq!(la_pool_create_item(pool), items[10]);
            assert_eq!(la_pool_query_capacity(pool), cap);
            la_pool_destroy(pool);
        }
    }

    #[test]
    fn reset_modes() {
        let pool = la_pool_create(la_c_allocator(), 100, 8);
        // SAFETY: live pool.
        unsafe {
            let first = la_pool_create_item(pool);
            for _ in 0..500 {
                assert!(!la_pool_create_item(pool).is_null());
            }
            let cap = la_pool_query_capacity(pool);
            assert!(cap >= 501);
            assert!(la_pool_reset(pool, LA_ARENA_RETAIN_CAPACITY, 0));
            assert_eq!(la_pool_query_capacity(pool), cap);
            // Kept chunks are reused from the start.
            assert_eq!(la_pool_create_item(pool), first);
            for _ in 0..500 {
                assert!(!la_pool_create_item(pool).is_null());
            }
            assert_eq!(la_pool_query_capacity(pool), cap);
            // Keep only the first chunk (about a page of items).
            assert!(la_pool_reset(pool, LA_ARENA_RETAIN_WITH_LIMIT, 8192));
            let kept = la_pool_query_capacity(pool);
            assert!(kept > 0 && kept < cap);
            assert_eq!(la_pool_create_item(pool), first);
            assert!(la_pool_reset(pool, LA_ARENA_RETAIN_WITH_LIMIT, 0));
            assert_eq!(la_pool_query_capacity(pool), 0);
            assert!(!la_pool_create_item(pool).is_null());
            assert!(!la_pool_reset(pool, la_arena_reset_mode(7), 0));
            assert!(la_pool_reset(pool, LA_ARENA_FREE_ALL, 0));
            assert_eq!(la_pool_query_capacity(pool), 0);
            assert!(!la_pool_create_item(pool).is_null());
            la_pool_destroy(pool);
        }
    }

    #[test]
    fn preheat_adds_capacity() {
        let pool = la_pool_create(la_c_allocator(), 8, 8);
        // SAFETY: live pool.
        unsafe {
            assert!(la_pool_preheat(pool, 1000));
            assert_eq!(la_pool_query_capacity(pool), 1000);
            for _ in 0..1000 {
                assert!(!la_pool_create_item(pool).is_null());
            }
            assert_eq!(la_pool_query_capacity(pool), 1000);
            assert!(!la_pool_preheat(pool, usize::MAX / 4));
            la_pool_destroy(pool);
        }
    }

    #[test]
    fn bad_input() {
        assert!(la_pool_create(la_allocator::NULL, 8, 8).is_null());
        assert!(la_pool_create(la_c_allocator(), 8, 0).is_null());
        assert!(la_pool_create(la_c_allocator(), 8, 12).is_null());
        assert!(la_pool_create(la_c_allocator(), usize::MAX, 8).is_null());
        let tiny = la_pool_create(la_c_allocator(), 0, 1);
        // SAFETY: NULL handles must be refused; `tiny` is live.
        unsafe {
            assert!(la_pool_create_item(ptr::null_mut()).is_null());
            la_pool_destroy_item(ptr::null_mut(), ptr::null_mut());
            assert!(!la_pool_preheat(ptr::null_mut(), 1));
            assert!(!la_pool_reset(ptr::null_mut(), LA_ARENA_FREE_ALL, 0));
            assert_eq!(la_pool_query_capacity(ptr::null()), 0);
            la_pool_destroy(ptr::null_mut());
            let p = la_pool_create_item(tiny);
            assert!(!p.is_null());
            la_pool_destroy_item(tiny, p);
            la_pool_destroy_item(tiny, ptr::null_mut());
            la_pool_destroy(tiny);
        }
    }
}
