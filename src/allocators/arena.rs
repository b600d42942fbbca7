//! The arena allocator: allocate many blocks, free them all at once
//! (Zig 0.17's `std.heap.ArenaAllocator`).
//!
//! The arena takes buffers ("nodes") from a child allocator and bump-allocates
//! inside the newest one. Each node starts with a small header: its size (bit
//! 0 marks "being grown"), `end_index` (the bump offset in the bytes after the
//! header) and the next older node. Freeing or resizing affects only the most
//! recent block of the newest node: it can shrink, grow in place while the
//! node has room, or be given back; any other block can only shrink in place.
//! `la_arena_reset` frees every node, or keeps (and resizes) one per list so
//! the next round of allocations needs the child less often.
//!
//! Thread safety, as in Zig 0.17: alloc, resize, remap and free may be called
//! from several threads at once when the child is thread-safe. It is
//! lock-free, so a `fork()` in the middle cannot leave anything held:
//! - the bump is one atomic add on `end_index`, reserving `n + align - 1`
//!   bytes so that an aligned block always fits in the reservation; a single
//!   compare-and-swap then gives the alignment slack back if nobody bumped
//!   since. `end_index` may pass the node's size after a failed bump; the
//!   node is then full for everyone. (A request whose `n + align - 1`
//!   exceeds the node is placed with a compare-and-swap loop instead, so
//!   huge requests never carry `end_index` around.)
//! - when the newest node is full, one thread at a time (the "being grown"
//!   bit in `size`) asks the child to grow it in place; otherwise a node is
//!   taken from the free list (stolen whole with one atomic swap, so no ABA)
//!   or allocated from the child, and pushed onto the used list with a
//!   compare-and-swap; a thread that loses that race retries on the winner's
//!   node and parks its own fresh node on the free list.
//! - resize/free of the most recent block move `end_index` back or forward
//!   with a compare-and-swap from the value they checked.
//!
//! Nodes only ever grow while the arena is shared, so a block handed out is
//! never outside its node. `la_arena_reset`, `la_arena_query_capacity` and
//! `la_arena_destroy` are not thread-safe (as in Zig).

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::alignment;
use libc::size_t;

use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};

/// Header at the start of every buffer taken from the child.
#[repr(C)]
struct Node {
    /// Bytes taken from the child, header included; always even. Bit 0 is
    /// set while one thread is growing the node.
    size: AtomicUsize,
    /// Bump offset into the bytes after the header. Increases use acquire
    /// ordering, decreases that give blocks back use release ordering.
    end_index: AtomicUsize,
    /// The next (older) node in its list; touched only by the thread that
    /// owns the node (before publishing it, or while the arena is not shared).
    next: *mut Node,
}

const NODE_SIZE: usize = size_of::<Node>();
const NODE_ALIGN: u8 = align_of::<Node>().trailing_zeros() as u8;
const RESIZING: usize = 1;

/// The bytes after a node's header.
#[inline]
fn buf_of(node: *mut Node) -> *mut u8 {
    node.cast::<u8>().wrapping_add(NODE_SIZE)
}

/// Offset of the first address at or after `buf + end` aligned to `align`,
/// measured from `buf`. Wrapping arithmetic: `end` is not bounded by the
/// node's size, and the wrapped result is still correctly aligned.
#[inline]
fn aligned_index(buf: *mut u8, end: usize, align: usize) -> usize {
    let addr = (buf as usize).wrapping_add(end);
    let aligned = addr.wrapping_add(align - 1) & !(align - 1);
    aligned.wrapping_sub(buf as usize)
}

/// Node size (header included, even) needed for a block ending at
/// `aligned + n` in its buffer, or `None` on overflow.
#[inline]
fn size_for(aligned: usize, n: usize) -> Option<usize> {
    let raw = NODE_SIZE.checked_add(aligned)?.checked_add(n)?;
    alignment::forward(raw, 2)
}

/// Places `n` bytes aligned to `align` at the current end of a node's
/// buffer `buf[..len]` with a compare-and-swap loop, never moving
/// `end_index` past `len`. `None` when the block does not fit.
#[inline]
fn bump_exact(
    buf: *mut u8,
    end_index: &AtomicUsize,
    len: usize,
    n: usize,
    align: usize,
) -> Option<*mut u8> {
    let mut cur = end_index.load(Ordering::Relaxed);
    loop {
        let aligned = aligned_index(buf, cur, align);
        if aligned > len || n > len - aligned {
            return None;
        }
        // Acquire: memory given back by other threads is ours now.
        match end_index.compare_exchange_weak(
            cur,
            aligned + n,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Some(buf.wrapping_add(aligned)),
            Err(now) => cur = now,
        }
    }
}

impl Node {
    /// The node's current buffer length. Sizes only grow while the arena is
    /// shared, so this many bytes after the header are always valid.
    ///
    /// # Safety
    /// `node` is a live node.
    #[inline]
    unsafe fn buf_len(node: *mut Node) -> usize {
        // SAFETY: live node (caller's promise).
        let size = unsafe { &(*node).size }.load(Ordering::Relaxed) & !RESIZING;
        size - NODE_SIZE
    }

    /// Claims the right to grow the node; returns its size, or `None` when
    /// another thread is growing it.
    ///
    /// # Safety
    /// `node` is a live node.
    #[inline]
    unsafe fn begin_resize(node: *mut Node) -> Option<usize> {
        // SAFETY: live node (caller's promise).
        let prev = unsafe { &(*node).size }.fetch_or(RESIZING, Ordering::Acquire);
        (prev & RESIZING == 0).then_some(prev)
    }

    /// Publishes the node's (possibly grown) size and ends the claim.
    ///
    /// # Safety
    /// The caller holds the claim from [`Node::begin_resize`].
    #[inline]
    unsafe fn end_resize(node: *mut Node, size: usize) {
        debug_assert!(size.is_multiple_of(2) && size >= NODE_SIZE);
        // SAFETY: live node (caller's promise).
        unsafe { &(*node).size }.store(size, Ordering::Release);
    }

    /// The node's size, for a node owned by this thread.
    ///
    /// # Safety
    /// `node` is live and not being grown.
    #[inline]
    unsafe fn size_unshared(node: *mut Node) -> usize {
        // SAFETY: live node (caller's promise).
        let size = unsafe { &(*node).size }.load(Ordering::Relaxed);
        debug_assert!(size & RESIZING == 0);
        size & !RESIZING
    }
}

/// An arena (Zig's `ArenaAllocator`); opaque, made by `la_arena_create`.
#[allow(non_camel_case_types)]
pub struct la_arena {
    child: ChildAllocator,
    /// Nodes in use, newest first; the newest is the one bumped.
    used_list: AtomicPtr<Node>,
    /// Spare nodes: kept by a reset, or made by a thread that lost a race.
    free_list: AtomicPtr<Node>,
}

static VTABLE: la_vtable = vtable_of::<la_arena>();

/// How `la_arena_reset` treats the memory the arena holds (Zig's
/// `ArenaAllocator.ResetMode`): one of `LA_ARENA_FREE_ALL`,
/// `LA_ARENA_RETAIN_CAPACITY`, `LA_ARENA_RETAIN_WITH_LIMIT`.
///
/// The header declares it as the C `typedef enum` of the API contract
/// (written in cbindgen.toml, since an enum parameter on the Rust side would
/// make an out-of-range value from C undefined behaviour); Rust receives the
/// same 32-bit value as this integer, and an unknown one makes
/// `la_arena_reset` return false.
#[allow(non_camel_case_types)]
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct la_arena_reset_mode(pub u32);

/// Reset mode: return every buffer to the child.
pub const LA_ARENA_FREE_ALL: la_arena_reset_mode = la_arena_reset_mode(0);
/// Reset mode: keep one buffer as large as everything allocated so far.
pub const LA_ARENA_RETAIN_CAPACITY: la_arena_reset_mode = la_arena_reset_mode(1);
/// Reset mode: as `LA_ARENA_RETAIN_CAPACITY`, keeping at most `limit` bytes.
pub const LA_ARENA_RETAIN_WITH_LIMIT: la_arena_reset_mode = la_arena_reset_mode(2);

impl la_arena_reset_mode {
    /// What the mode keeps, as Zig's `reset` takes it: `Some(None)` to
    /// retain all capacity, `Some(Some(n))` to keep at most `n` bytes
    /// (`LA_ARENA_FREE_ALL` keeps 0), `None` for an unknown mode. The
    /// arena and the memory pool read their modes through this.
    pub(crate) fn retain_limit(self, limit: usize) -> Option<Option<usize>> {
        match self {
            LA_ARENA_FREE_ALL => Some(Some(0)),
            LA_ARENA_RETAIN_CAPACITY => Some(None),
            LA_ARENA_RETAIN_WITH_LIMIT => Some(Some(limit)),
            _ => None,
        }
    }
}

impl la_arena {
    #[inline]
    fn first_node(&self) -> *mut Node {
        // Acquire: pairs with the release of a successful push, so the
        // node's header is initialised.
        self.used_list.load(Ordering::Acquire)
    }

    /// Makes `node` the newest node if the newest is still `node.next`;
    /// otherwise returns the actual newest node.
    ///
    /// # Safety
    /// `node` is a live node owned by this thread.
    unsafe fn try_push_node(&self, node: *mut Node) -> Result<(), *mut Node> {
        // SAFETY: owned live node.
        let next = unsafe { (*node).next };
        debug_assert!(next != node);
        self.used_list
            .compare_exchange(next, node, Ordering::Release, Ordering::Acquire)
            .map(|_| ())
    }

    /// Takes the whole free list.
    fn steal_free_list(&self) -> *mut Node {
        self.free_list.swap(ptr::null_mut(), Ordering::Acquire)
    }

    /// Puts the chain `first ..= last` (linked by `next`) onto the free list.
    ///
    /// # Safety
    /// The chain is owned by this thread; `last.next` is the value to link
    /// after it (overwritten here).
    unsafe fn push_free_list(&self, first: *mut Node, last: *mut Node) {
        loop {
            // SAFETY: owned live node.
            let expected = unsafe { (*last).next };
            match self.free_list.compare_exchange_weak(
                expected,
                first,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                // SAFETY: owned live node.
                Err(now) => unsafe { (*last).next = now },
            }
        }
    }

    /// Returns a node to the child.
    ///
    /// # Safety
    /// `node` is a live node that no one uses any more.
    unsafe fn free_node(&self, node: *mut Node) {
        // SAFETY: the node came from the child with this size and alignment.
        unsafe {
            let size = Node::size_unshared(node);
            self.child.free(node.cast(), size, NODE_ALIGN, 0);
        }
    }

    /// Frees every node of a list.
    ///
    /// # Safety
    /// Not thread-safe: the arena is not in use.
    unsafe fn free_list_nodes(&self, mut it: *mut Node) {
        while !it.is_null() {
            // SAFETY: nodes in the arena's lists are live; `next` is read
            // before the node is freed.
            unsafe {
                let next = (*it).next;
                self.free_node(it);
                it = next;
            }
        }
    }

    /// Frees every node (Zig's `deinit`).
    ///
    /// # Safety
    /// Not thread-safe: the arena is not in use.
    unsafe fn deinit(&self) {
        let used = self.used_list.swap(ptr::null_mut(), Ordering::Acquire);
        let free = self.free_list.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: forwarded promise; the lists were detached above.
        unsafe {
            self.free_list_nodes(used);
            self.free_list_nodes(free);
        }
    }

    /// Sum of buffer lengths (headers excluded) in a list.
    ///
    /// # Safety
    /// Not thread-safe: the arena is not in use.
    unsafe fn list_capacity(mut it: *mut Node) -> usize {
        let mut total = 0usize;
        while !it.is_null() {
            // SAFETY: nodes in the arena's lists are live.
            unsafe {
                total = total.saturating_add(Node::size_unshared(it) - NODE_SIZE);
                it = (*it).next;
            }
        }
        total
    }

    /// Capacity held in both lists.
    ///
    /// # Safety
    /// Not thread-safe: the arena is not in use.
    unsafe fn query_capacity(&self) -> usize {
        // SAFETY: forwarded promise.
        unsafe {
            Self::list_capacity(self.used_list.load(Ordering::Acquire))
                .saturating_add(Self::list_capacity(self.free_list.load(Ordering::Acquire)))
        }
    }

    /// Zig's `reset`: `limit` is `None` to retain all capacity.
    ///
    /// # Safety
    /// Not thread-safe: the arena is not in use; its blocks are dead.
    unsafe fn reset(&self, limit: Option<usize>) -> bool {
        if limit == Some(0) {
            // SAFETY: forwarded promise.
            unsafe { self.deinit() };
            return true;
        }
        // SAFETY: forwarded promise.
        let (used_cap, free_cap) = unsafe {
            (
                Self::list_capacity(self.used_list.load(Ordering::Acquire)),
                Self::list_capacity(self.free_list.load(Ordering::Acquire)),
            )
        };
        let new_used = limit.map_or(used_cap, |lim| lim.min(used_cap));
        let new_free = limit.map_or(free_cap, |lim| (lim - new_used).min(free_cap));

        let mut ok = true;
        for (list, new_capacity) in [(&self.used_list, new_used), (&self.free_list, new_free)] {
            // Free every node but the last (the oldest).
            let mut node = list.load(Ordering::Acquire);
            if node.is_null() {
                continue;
            }
            // SAFETY: nodes in the lists are live and unshared (promise).
            unsafe {
                while !(*node).next.is_null() {
                    let next = (*node).next;
                    self.free_node(node);
                    node = next;
                }
            }
            // SAFETY: `node` is the live, unshared last node.
            let allocated = unsafe { Node::size_unshared(node) };
            // Round down to stay within the limit.
            let new_size = alignment::backward(NODE_SIZE.saturating_add(new_capacity), 2);
            if new_size == NODE_SIZE {
                // SAFETY: as above; the list no longer refers to it.
                unsafe { self.free_node(node) };
                list.store(ptr::null_mut(), Ordering::Release);
                continue;
            }
            // SAFETY: as above.
            unsafe { (*node).end_index.store(0, Ordering::Relaxed) };
            list.store(node, Ordering::Release);
            if allocated == new_size {
                continue;
            }
            // SAFETY: the node is a live child block of `allocated` bytes.
            if unsafe {
                self.child
                    .resize(node.cast(), allocated, NODE_ALIGN, new_size, 0)
            } {
                // SAFETY: as above.
                unsafe { (*node).size.store(new_size, Ordering::Relaxed) };
                continue;
            }
            // SAFETY: the child is valid (checked at create).
            let Some(fresh) = (unsafe { self.child.alloc(new_size, NODE_ALIGN, 0) }) else {
                // Could not preheat: keep the old node, report it.
                ok = false;
                continue;
            };
            // SAFETY: the old node is unshared; the fresh block has room for
            // a header and is suitably aligned.
            unsafe {
                self.free_node(node);
                let fresh = fresh.as_ptr().cast::<Node>();
                fresh.write(Node {
                    size: AtomicUsize::new(new_size),
                    end_index: AtomicUsize::new(0),
                    next: ptr::null_mut(),
                });
                list.store(fresh, Ordering::Release);
            }
        }
        ok
    }

    /// The newest node's bump state when `[memory, memory + len)` is the
    /// most recent block of the newest node, else `None`.
    ///
    /// Besides the end address (all Zig checks), the block must lie inside
    /// the node's buffer: after a failed bump `end_index` can point past the
    /// node, where a block of another node may happen to end, and that block
    /// is not this node's to give back or grow.
    fn last_block(&self, memory: *mut u8, len: usize) -> Option<LastBlock<'_>> {
        let node = self.first_node();
        if node.is_null() {
            return None;
        }
        // SAFETY: nodes in the used list are live while the arena is.
        let end_index = unsafe { &(*node).end_index };
        let end = end_index.load(Ordering::Relaxed);
        // Read after `end`: the size only grows while the arena is shared,
        // so `end <= buf_len` means `end` lies inside the node.
        // SAFETY: live node.
        let buf_len = unsafe { Node::buf_len(node) };
        let inside = end <= buf_len && len <= end;
        (inside && buf_of(node) as usize + end == memory as usize + len).then(|| LastBlock {
            end_index,
            end,
            room: buf_len - end,
        })
    }

    /// The body of `alloc`. `spare` holds a fresh node this call allocated
    /// but could not publish; the caller parks it on the free list.
    ///
    /// # Safety
    /// `n > 0`; the child is usable from this thread.
    unsafe fn alloc_inner(&self, n: usize, log2: u8, spare: &mut *mut Node) -> *mut u8 {
        let Some(align) = alignment::to_bytes(log2) else {
            return ptr::null_mut();
        };
        // Bytes reserved by one bump: always room for an aligned block.
        let Some(alignable) = n.checked_add(align - 1) else {
            return ptr::null_mut();
        };
        let mut cur_first = self.first_node();
        'retry: loop {
            let first = cur_first;
            let mut prev_len = 0;
            if !first.is_null() {
                // SAFETY: nodes in the used list are live while the arena is.
                let len = unsafe { Node::buf_len(first) };
                prev_len = len;
                let buf = buf_of(first);
                // SAFETY: live node.
                let end_index = unsafe { &(*first).end_index };
                if alignable <= len {
                    // Acquire: memory given back by other threads is ours now.
                    let end = end_index.fetch_add(alignable, Ordering::Acquire);
                    let aligned = aligned_index(buf, end, align);
                    let reserved = end.wrapping_add(alignable);
                    let used = aligned.wrapping_add(n);
                    if reserved != used {
                        // Give the alignment slack back if nobody bumped since.
                        let _ = end_index.compare_exchange(
                            reserved,
                            used,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    if aligned <= len && n <= len - aligned {
                        return buf.wrapping_add(aligned);
                    }
                } else if let Some(p) = bump_exact(buf, end_index, len, n, align) {
                    // `n + align - 1` exceeds the node: an unconditional add
                    // of that much could carry end_index around, so place the
                    // block exactly instead (it may fit without all the slack).
                    return p;
                }

                // Try to grow the newest node in place (one thread at a time).
                // SAFETY: live node.
                match unsafe { self.grow_first(first, n, align) } {
                    Grow::Done(p) => return p,
                    Grow::Retry => continue 'retry,
                    Grow::Failed => {}
                }
            }

            // A node from the free list, if one fits (or can grow to fit).
            let stolen = self.steal_free_list();
            if !stolen.is_null() {
                // SAFETY: the stolen chain is owned by this thread now.
                match unsafe { self.take_from_free_list(stolen, first, n, align) } {
                    Take::Done(p) => return p,
                    Take::Lost(now) => {
                        cur_first = now;
                        continue 'retry;
                    }
                    Take::NoFit => {}
                }
            }

            // A fresh node from the child (once per call).
            if spare.is_null() {
                let Some(size) = NODE_SIZE
                    .checked_add(align)
                    .and_then(|s| s.checked_add(n))
                    .and_then(|min| prev_len.checked_add(min))
                    .and_then(|s| s.checked_add(16))
                    .and_then(|big| big.checked_add(big / 2))
                    .and_then(|s| alignment::forward(s, 2))
                else {
                    return ptr::null_mut();
                };
                // SAFETY: the child is valid (checked at create).
                let Some(mem) = (unsafe { self.child.alloc(size, NODE_ALIGN, 0) }) else {
                    return ptr::null_mut();
                };
                let node = mem.as_ptr().cast::<Node>();
                // SAFETY: fresh, aligned block with room for the header.
                unsafe {
                    node.write(Node {
                        size: AtomicUsize::new(size),
                        end_index: AtomicUsize::new(0),
                        next: ptr::null_mut(),
                    })
                };
                *spare = node;
            }
            let node = *spare;
            let buf = buf_of(node);
            let aligned = aligned_index(buf, 0, align);
            // SAFETY: the spare node is owned by this thread.
            unsafe {
                debug_assert!(Node::size_unshared(node) >= NODE_SIZE + aligned + n);
                (*node).end_index.store(aligned + n, Ordering::Relaxed);
                (*node).next = first;
                match self.try_push_node(node) {
                    Ok(()) => {
                        *spare = ptr::null_mut();
                        return buf.wrapping_add(aligned);
                    }
                    Err(now) => cur_first = now,
                }
            }
        }
    }

    /// Tries to grow the newest node in place through the child so that a
    /// block of `n` bytes aligned to `align` fits after its end.
    ///
    /// # Safety
    /// `first` is a live node of the used list.
    unsafe fn grow_first(&self, first: *mut Node, n: usize, align: usize) -> Grow {
        // SAFETY: live node (caller's promise).
        let Some(allocated) = (unsafe { Node::begin_resize(first) }) else {
            return Grow::Failed; // another thread is growing it
        };
        let mut size = allocated;
        let buf = buf_of(first);
        // SAFETY: live node.
        let end_index = unsafe { &(*first).end_index };
        let end = end_index.load(Ordering::Relaxed);
        let aligned = aligned_index(buf, end, align);
        let outcome = match size_for(aligned, n) {
            // A resize or free made room meanwhile; the node must never
            // shrink, so bump again.
            Some(new_size) if new_size <= allocated => Grow::Retry,
            Some(new_size)
                // SAFETY: the node is a live child block of `allocated` bytes
                // and this thread holds its grow claim.
                if unsafe {
                    self.child
                        .resize(first.cast(), allocated, NODE_ALIGN, new_size, 0)
                } =>
            {
                size = new_size;
                match end_index.compare_exchange(
                    end,
                    aligned + n,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => Grow::Done(buf.wrapping_add(aligned)),
                    Err(_) => Grow::Failed,
                }
            }
            _ => Grow::Failed,
        };
        // SAFETY: this thread holds the claim; the size never decreased.
        unsafe { Node::end_resize(first, size) };
        outcome
    }

    /// Looks for a node in a stolen free list: the best fit, grown through
    /// the child if none fits. Publishes it on top of `first`.
    ///
    /// # Safety
    /// `stolen` is a non-empty chain owned by this thread.
    unsafe fn take_from_free_list(
        &self,
        stolen: *mut Node,
        first: *mut Node,
        n: usize,
        align: usize,
    ) -> Take {
        let mut best_prev: *mut Node = ptr::null_mut();
        let mut best: *mut Node = ptr::null_mut();
        let mut best_diff = usize::MAX;
        let mut prev: *mut Node = ptr::null_mut();
        let mut it = stolen;
        // SAFETY: the chain is owned and its nodes live.
        unsafe {
            while !it.is_null() {
                let len = Node::size_unshared(it) - NODE_SIZE;
                let aligned = aligned_index(buf_of(it), 0, align);
                let diff = aligned.saturating_add(n).saturating_sub(len);
                if diff < best_diff {
                    best_prev = prev;
                    best = it;
                    best_diff = diff;
                }
                prev = it;
                it = (*it).next;
            }
        }
        let last = prev;
        let node = best;
        debug_assert!(!node.is_null() && !last.is_null());

        let buf = buf_of(node);
        let aligned = aligned_index(buf, 0, align);
        // SAFETY: owned node.
        let allocated = unsafe { Node::size_unshared(node) };
        if aligned.saturating_add(n) > allocated - NODE_SIZE {
            // Grow the closest fit so the free nodes get used eventually.
            let grown = size_for(aligned, n).is_some_and(|new_size| {
                // SAFETY: the node is a live child block of `allocated` bytes.
                let ok = unsafe {
                    self.child
                        .resize(node.cast(), allocated, NODE_ALIGN, new_size, 0)
                };
                if ok {
                    // SAFETY: owned node.
                    unsafe { (*node).size.store(new_size, Ordering::Relaxed) };
                }
                ok
            });
            if !grown {
                // SAFETY: the chain is still intact and owned.
                unsafe { self.push_free_list(stolen, last) };
                return Take::NoFit;
            }
        }

        // SAFETY: owned nodes throughout; after a successful push `node` is
        // shared, and only the remaining chain is touched.
        unsafe {
            let old_next = (*node).next;
            (*node).end_index.store(aligned + n, Ordering::Relaxed);
            (*node).next = first;
            match self.try_push_node(node) {
                Ok(()) => {
                    if !best_prev.is_null() {
                        (*best_prev).next = old_next;
                    }
                    let new_first = if node == stolen { old_next } else { stolen };
                    let new_last = if node == last { best_prev } else { last };
                    if !new_first.is_null() {
                        self.push_free_list(new_first, new_last);
                    }
                    Take::Done(buf.wrapping_add(aligned))
                }
                Err(now) => {
                    (*node).next = old_next;
                    self.push_free_list(stolen, last);
                    Take::Lost(now)
                }
            }
        }
    }
}

/// The most recent block's node state, from [`la_arena::last_block`].
struct LastBlock<'a> {
    /// The newest node's bump offset.
    end_index: &'a AtomicUsize,
    /// Its value when the block was found to end there.
    end: usize,
    /// Bytes of the node's buffer after `end`.
    room: usize,
}

/// Outcome of [`la_arena::grow_first`].
enum Grow {
    /// The block.
    Done(*mut u8),
    /// Room appeared in the node: bump again.
    Retry,
    /// The node could not grow (or lost the race to use the growth).
    Failed,
}

/// Outcome of [`la_arena::take_from_free_list`].
enum Take {
    /// The block.
    Done(*mut u8),
    /// Another node was published first: retry with it.
    Lost(*mut Node),
    /// No free node fits.
    NoFit,
}

// SAFETY: blocks lie inside nodes at aligned offsets below the node's size,
// and end_index only moves back over the most recent block, so live blocks
// never overlap; resize reports success only after end_index moved (or for a
// shrink, which needs nothing).
unsafe impl RawAllocator for la_arena {
    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        debug_assert!(len > 0);
        let mut spare = ptr::null_mut();
        // SAFETY: len > 0 (trampoline); the child's thread safety is the
        // caller's concern, as documented.
        let p = unsafe { self.alloc_inner(len, alignment, &mut spare) };
        if !spare.is_null() {
            // SAFETY: the spare node was never published and is owned here.
            unsafe {
                (*spare).next = ptr::null_mut();
                self.push_free_list(spare, spare);
            }
        }
        p
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        _alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> bool {
        let Some(last) = self.last_block(memory, len) else {
            // Not the most recent block: it can only shrink (in place).
            return new_len <= len;
        };
        if new_len <= len {
            // Release: the tail given back may be handed out again. If
            // another thread moved end_index meanwhile, the tail is simply
            // not reused; shrinking always succeeds.
            let _ = last.end_index.compare_exchange(
                last.end,
                last.end - (len - new_len),
                Ordering::Release,
                Ordering::Relaxed,
            );
            return true;
        }
        if new_len - len > last.room {
            return false;
        }
        last.end_index
            .compare_exchange(
                last.end,
                last.end + (new_len - len),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, _alignment: u8, _ret_addr: usize) {
        // Only the most recent block is given back; others stay until reset.
        if let Some(last) = self.last_block(memory, len) {
            let _ = last.end_index.compare_exchange(
                last.end,
                last.end - len,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
    }
}

const ARENA_ALIGN: u8 = align_of::<la_arena>().trailing_zeros() as u8;

/// Creates an arena over `child` (Zig's `ArenaAllocator.init`). The arena's
/// own state is allocated from `child`; buffers are taken from it as needed.
///
/// Parameters: `child` the allocator buffers come from; it must outlive the
/// arena.
///
/// Returns: the handle, or NULL when `child` has a NULL vtable or is out of
/// memory.
///
/// Thread safety: the arena's allocator may be used from several threads at
/// once when `child` is thread-safe (lock-free; see the arena's design
/// notes); reset, capacity and destroy may not run concurrently with it.
///
/// # Safety
/// `child` is a valid allocator (or has a NULL vtable).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_arena_create(child: la_allocator) -> *mut la_arena {
    let child = ChildAllocator(child);
    if !child.is_valid() {
        return ptr::null_mut();
    }
    // SAFETY: valid child (caller's promise); positive size.
    let Some(mem) = (unsafe { child.alloc(size_of::<la_arena>(), ARENA_ALIGN, 0) }) else {
        return ptr::null_mut();
    };
    let arena = mem.as_ptr().cast::<la_arena>();
    // SAFETY: fresh, suitably aligned storage of the arena's size.
    unsafe {
        arena.write(la_arena {
            child,
            used_list: AtomicPtr::new(ptr::null_mut()),
            free_list: AtomicPtr::new(ptr::null_mut()),
        })
    };
    arena
}

/// The allocator face of an arena: bump allocation; free and resize act on
/// the most recent block only (any block can shrink in place).
///
/// Parameters: `arena` a handle from `la_arena_create`.
///
/// Returns: the allocator, valid until the arena is destroyed. NULL: a NULL
/// `arena` gives an allocator with a NULL vtable, whose every call fails.
///
/// Thread safety: safe from several threads at once when the child is
/// thread-safe; otherwise one thread at a time.
#[unsafe(no_mangle)]
pub extern "C" fn la_arena_allocator(arena: *mut la_arena) -> la_allocator {
    la_allocator::of_handle(arena, &VTABLE)
}

/// Frees every block of the arena at once (Zig's `ArenaAllocator.reset`).
///
/// Parameters: `arena` a handle; `mode` what to do with the buffers:
/// `LA_ARENA_FREE_ALL` returns them all to the child;
/// `LA_ARENA_RETAIN_CAPACITY` keeps one buffer as large as all of them, so a
/// loop of allocate-then-reset soon stops calling the child;
/// `LA_ARENA_RETAIN_WITH_LIMIT` does the same but keeps at most `limit`
/// bytes (a limit of 0 is `LA_ARENA_FREE_ALL`). `limit` is ignored by the
/// other modes.
///
/// Returns: true on success; false when a retained buffer could not be
/// resized (the arena still works, every block is freed) or when `mode` is
/// not one of the three. `LA_ARENA_FREE_ALL` always returns true. NULL: a
/// NULL `arena` returns false.
///
/// Thread safety: not thread-safe; the arena must not be in use.
///
/// # Safety
/// `arena` is NULL or a live handle; blocks from it are dead afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_arena_reset(
    arena: *mut la_arena,
    mode: la_arena_reset_mode,
    limit: size_t,
) -> bool {
    // SAFETY: NULL or live (caller's promise).
    let Some(arena) = (unsafe { arena.as_ref() }) else {
        return false;
    };
    let Some(limit) = mode.retain_limit(limit) else {
        return false;
    };
    // SAFETY: not shared (caller's promise).
    unsafe { arena.reset(limit) }
}

/// Bytes of buffer the arena holds (Zig's `queryCapacity`), its own
/// bookkeeping excluded.
///
/// Parameters: `arena` a handle. NULL: returns 0.
///
/// Thread safety: not thread-safe; the arena must not be in use.
///
/// # Safety
/// `arena` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_arena_query_capacity(arena: *const la_arena) -> size_t {
    // SAFETY: NULL or live, not shared (caller's promise).
    match unsafe { arena.as_ref() } {
        // SAFETY: as above.
        Some(a) => unsafe { a.query_capacity() },
        None => 0,
    }
}

/// Destroys an arena: every buffer and the arena's state go back to the
/// child.
///
/// Parameters: `arena` a handle. NULL: does nothing.
///
/// Thread safety: not thread-safe; the arena must not be in use.
///
/// # Safety
/// `arena` is NULL or a live handle; neither it nor its blocks are used
/// afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_arena_destroy(arena: *mut la_arena) {
    if arena.is_null() {
        return;
    }
    // SAFETY: live, unshared handle; the child is copied out before the
    // state's memory is returned to it.
    unsafe {
        (*arena).deinit();
        let child = (*arena).child;
        child.free(arena.cast(), size_of::<la_arena>(), ARENA_ALIGN, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::c::la_c_allocator;
    use crate::allocators::failing::{
        la_failing, la_failing_allocator, la_failing_create, la_failing_destroy,
        la_failing_get_stats, la_failing_stats,
    };
    use crate::allocators::page::la_page_allocator;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

    /// A counting child, so that every test also checks for leaks.
    struct Counted(*mut la_failing);

    impl Counted {
        fn new() -> Self {
            // SAFETY: the C allocator is valid.
            Counted(unsafe { la_failing_create(la_c_allocator(), usize::MAX, usize::MAX) })
        }
        fn child(&self) -> la_allocator {
            la_failing_allocator(self.0)
        }
        fn stats(&self) -> la_failing_stats {
            let mut s = la_failing_stats::default();
            // SAFETY: live handle, writable out.
            unsafe { la_failing_get_stats(self.0, &mut s) };
            s
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            let s = self.stats();
            assert_eq!(s.allocations, s.deallocations, "arena leaked a buffer");
            assert_eq!(s.allocated_bytes, s.freed_bytes, "arena leaked bytes");
            // SAFETY: live handle, not used afterwards.
            unsafe { la_failing_destroy(self.0) };
        }
    }

    fn used_nodes(arena: *mut la_arena) -> usize {
        // SAFETY: live arena, not shared.
        let mut it = unsafe { (*arena).used_list.load(Ordering::Acquire) };
        let mut n = 0;
        while !it.is_null() {
            n += 1;
            // SAFETY: live node.
            it = unsafe { (*it).next };
        }
        n
    }

    #[test]
    fn reset_with_preheating() {
        // Zig's `test "reset with preheating"`, with a fixed pseudo-random
        // sequence.
        let counted = Counted::new();
        // SAFETY: blocks are written within their lengths; the arena is
        // destroyed before its child.
        unsafe {
            let arena = la_arena_create(counted.child());
            assert!(!arena.is_null());
            let a = la_arena_allocator(arena);
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = |lo: usize, hi: usize| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                lo + (seed as usize) % (hi - lo + 1)
            };
            for _ in 0..25 {
                let _ = la_arena_reset(arena, LA_ARENA_RETAIN_CAPACITY, 0);
                let total = next(256, 16384);
                let mut done = 0;
                while done < total {
                    let size = next(16, 256);
                    let p = la_raw_alloc(a, size, 5, 0) as *mut u8;
                    assert!(!p.is_null());
                    assert_eq!(p as usize % 32, 0);
                    p.write_bytes(0x5a, size);
                    done += size;
                }
            }
            // After the first rounds a retained buffer serves everything.
            let before = counted.stats().allocations;
            assert!(la_arena_reset(arena, LA_ARENA_RETAIN_CAPACITY, 0));
            let cap = la_arena_query_capacity(arena);
            assert!(cap > 0);
            for _ in 0..10 {
                assert!(!la_raw_alloc(a, 100, 3, 0).is_null());
            }
            assert_eq!(counted.stats().allocations, before);
            la_arena_destroy(arena);
        }
    }

    #[test]
    fn reset_while_retaining_a_buffer() {
        // Zig's `test "reset while retaining a buffer"`.
        let counted = Counted::new();
        // SAFETY: as above.
        unsafe {
            let arena = la_arena_create(counted.child());
            let a = la_arena_allocator(arena);
            assert!(!la_raw_alloc(a, 1, 0, 0).is_null());
            assert_eq!(used_nodes(arena), 1);
            while used_nodes(arena) < 2 {
                assert!(!la_raw_alloc(a, 1000, 0, 0).is_null());
            }
            assert!(la_arena_reset(arena, LA_ARENA_RETAIN_WITH_LIMIT, 2));
            assert_eq!(used_nodes(arena), 1);
            assert_eq!(la_arena_query_capacity(arena), 2);
            // The retained node is grown on demand.
            assert!(!la_raw_alloc(a, 64, 3, 0).is_null());
            assert!(la_arena_reset(arena, LA_ARENA_FREE_ALL, 123));
            assert_eq!(la_arena_query_capacity(arena), 0);
            assert_eq!(used_nodes(arena), 0);
            la_arena_destroy(arena);
        }
    }

    #[test]
    fn last_block_resize_and_free() {
        let counted = Counted::new();
        // SAFETY: as above.
        unsafe {
            let arena = la_arena_create(counted.child());
            let a = la_arena_allocator(arena);
            let p = la_raw_alloc(a, 16, 4, 0) as *mut u8;
            let q = la_raw_alloc(a, 16, 0, 0) as *mut u8;
            assert!(!p.is_null() && !q.is_null());
            // q is the last block: it grows in place and can be given back.
            assert!(la_raw_resize(a, q.cast(), 16, 0, 40, 0));
            assert_eq!(la_raw_remap(a, q.cast(), 40, 0, 50, 0), q.cast());
            la_raw_free(a, q.cast(), 50, 0, 0);
            let r = la_raw_alloc(a, 8, 0, 0) as *mut u8;
            assert_eq!(r, q);
            // p is not the last block: shrink only.
            assert!(!la_raw_resize(a, p.cast(), 16, 4, 17, 0));
            assert!(la_raw_remap(a, p.cast(), 16, 4, 17, 0).is_null());
            assert!(la_raw_resize(a, p.cast(), 16, 4, 8, 0));
            // A huge growth fails cleanly.
            assert!(!la_raw_resize(a, r.cast(), 8, 0, usize::MAX, 0));
            la_arena_destroy(arena);
        }
    }

    #[test]
    fn bad_input() {
        let counted = Counted::new();
        // SAFETY: calls that must fail without touching memory.
        unsafe {
            let arena = la_arena_create(counted.child());
            let a = la_arena_allocator(arena);
            assert!(la_raw_alloc(a, 0, 0, 0).is_null());
            assert!(la_raw_alloc(a, 1, 64, 0).is_null());
            assert!(la_raw_alloc(a, 1, 63, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX, 0, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX - 100, 4, 0).is_null());
            assert!(la_raw_alloc(a, usize::MAX / 2, 0, 0).is_null());
            assert!(la_raw_alloc(a, 1 << 50, 0, 0).is_null());
            // The arena still works afterwards.
            assert!(!la_raw_alloc(a, 10, 0, 0).is_null());
            assert!(!la_arena_reset(arena, la_arena_reset_mode(7), 0));
            la_arena_destroy(arena);

            assert!(la_arena_create(la_allocator::NULL).is_null());
            let failing = crate::allocators::failing::la_always_failing_allocator();
            assert!(la_arena_create(failing).is_null());
            assert!(!la_arena_reset(ptr::null_mut(), LA_ARENA_FREE_ALL, 0));
            assert_eq!(la_arena_query_capacity(ptr::null()), 0);
            la_arena_destroy(ptr::null_mut());
            assert!(la_raw_alloc(la_arena_allocator(ptr::null_mut()), 1, 0, 0).is_null());
        }
    }

    #[test]
    fn large_alignment_over_page() {
        // SAFETY: blocks are written within their lengths.
        unsafe {
            let arena = la_arena_create(la_page_allocator());
            let a = la_arena_allocator(arena);
            for log2 in [0u8, 3, 12, 16, 21] {
                let p = la_raw_alloc(a, 100, log2, 0) as *mut u8;
                assert!(!p.is_null());
                assert_eq!(p as usize % (1usize << log2), 0);
                p.write_bytes(1, 100);
            }
            la_arena_destroy(arena);
        }
    }

    #[test]
    fn threads_share_an_arena() {
        const THREADS: usize = 4;
        const PER: usize = 2000;
        struct Shared(la_allocator);
        // SAFETY: the arena over the C allocator is thread-safe.
        unsafe impl Send for Shared {}
        // SAFETY: as above.
        unsafe impl Sync for Shared {}
        // SAFETY: the C allocator is valid.
        let arena = unsafe { la_arena_create(la_c_allocator()) };
        let shared = Shared(la_arena_allocator(arena));
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let shared = &shared;
                s.spawn(move || {
                    let a = shared.0;
                    let mut blocks = Vec::new();
                    for i in 0..PER {
                        let len = 1 + (i * 13 + t * 7) % 300;
                        let log2 = (i % 7) as u8;
                        // SAFETY: blocks written within their lengths only.
                        unsafe {
                            let p = la_raw_alloc(a, len, log2, 0) as *mut u8;
                            assert!(!p.is_null());
                            assert_eq!(p as usize % (1 << log2), 0);
                            p.write_bytes(t as u8 + 1, len);
                            if i % 5 == 0 {
                                // Exercise resize/free of possibly-last blocks.
                                if la_raw_resize(a, p.cast(), len, log2, len + 8, 0) {
                                    p.add(len).write_bytes(t as u8 + 1, 8);
                                    blocks.push((p, len + 8));
                                } else {
                                    la_raw_free(a, p.cast(), len, log2, 0);
                                }
                                continue;
                            }
                            blocks.push((p, len));
                        }
                    }
                    for (p, len) in blocks {
                        // SAFETY: live blocks of this thread.
                        unsafe { assert!((0..len).all(|i| *p.add(i) == t as u8 + 1)) }
                    }
                });
            }
        });
        // SAFETY: no thread uses the arena any more.
        unsafe {
            assert!(la_arena_query_capacity(arena) > 0);
            la_arena_destroy(arena);
        }
    }
}
