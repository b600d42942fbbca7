//! Threads: finding the calling thread's heap, thread exit and fork.
//!
//! The heap pointer lives in static TLS without any destructor registration
//! (registration would go through `__cxa_thread_atexit_impl`, which calls
//! malloc). On x86-64 it is an initial-exec slot defined in
//! `src/sys/c/smp_tls.c`: the fast paths read it with two loads (its offset
//! from the GOT, then `%fs`-relative), other paths through an offset learnt
//! once; neither calls `__tls_get_addr`. Elsewhere it is a `thread_local!` `Cell` with a `const`
//! initialiser and no `Drop`. A thread without a heap of its own (before
//! its first allocation, after its exit) holds the address of a static
//! [`EMPTY_HEAP`] there, not null: a heap whose class queues are empty, so
//! the allocation fast path finds no page in it and takes its slow path
//! with no test of its own, and no page ever names it as its owner.
//! [`current_raw`] gives the slot as it is; [`current`] and
//! [`current_fast`] give null for the empty heap. Thread exit is noticed
//! through a pthread key created once, as early as possible (a library
//! constructor), so that its index is low and `pthread_setspecific` never
//! allocates; its destructor abandons the heap (`heap::abandon`) and returns
//! it to the pool. The TLS slot is set before `pthread_setspecific` is called,
//! so even an allocating `pthread_setspecific` would re-enter safely.
//!
//! Heaps come from a pool of up to [`MAX_HEAPS`] heaps in two levels: a
//! static directory of atomic pointers to blocks of [`BLOCK_HEAPS`] heaps,
//! each block mapped when the first of its heaps is handed out (so a
//! process with few threads maps one block of about 300 KiB, not room for
//! every heap) and never unmapped; plus a lock-free stack (index + ABA
//! counter in one word) of heaps whose threads exited. Nothing here takes a lock, so
//! a child of `fork()` finds every structure consistent: it keeps its own
//! heap, and the heaps of the parent's other threads simply stay in use.

#[cfg(not(target_arch = "x86_64"))]
use core::cell::Cell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use super::heap::{self, Heap};
use crate::sys;
use crate::sys::tls::Key;

/// Most heaps alive at once.
pub(crate) const MAX_HEAPS: usize = 1 << 16;
const HEAP_STRIDE: usize = core::mem::size_of::<Heap>().next_multiple_of(64);
/// Heaps in one block of the pool.
const BLOCK_HEAPS: usize = 64;
/// Bytes of one block (whole OS pages, so blocks never share a page).
const BLOCK_BYTES: usize = (BLOCK_HEAPS * HEAP_STRIDE).next_multiple_of(4096);
/// Blocks in the directory.
const BLOCKS: usize = MAX_HEAPS / BLOCK_HEAPS;
const _: () = assert!(BLOCKS * BLOCK_HEAPS == MAX_HEAPS);

#[cfg(not(target_arch = "x86_64"))]
std::thread_local! {
    /// Null stands for the empty heap here (see [`current_raw`]).
    static HEAP: Cell<*mut Heap> = const { Cell::new(ptr::null_mut()) };
}

/// A heap that is never written: see the module comment. Zeroed memory is
/// an empty heap (no page in any class queue).
#[repr(C, align(64))]
pub(crate) struct EmptyHeap(Heap);

// SAFETY: nothing writes the empty heap: its queues are empty, so the only
// path that reaches it (`Heap::pop`, from `current_raw`) reads one queue
// head and returns; every other path gets null for it.
unsafe impl Sync for EmptyHeap {}

/// The empty heap: the initial value of the x86-64 TLS slot
/// (`src/sys/c/smp_tls.c` names it).
///
/// cbindgen:ignore
#[unsafe(export_name = "liballoc_smp_empty_heap")]
pub(crate) static EMPTY_HEAP: EmptyHeap =
    // SAFETY: zeroed memory is a valid, empty heap (null pointers, zero
    // counters), as the heap pool's zeroed blocks are.
    EmptyHeap(unsafe { core::mem::zeroed() });

/// The address of [`EMPTY_HEAP`].
#[inline(always)]
pub fn empty() -> *mut Heap {
    &raw const EMPTY_HEAP.0 as *mut Heap
}

/// The initial-exec TLS slot (x86-64).
///
/// cbindgen:ignore
#[cfg(target_arch = "x86_64")]
mod tls {
    use super::Heap;
    use crate::sys::tls::StaticSlot;

    unsafe extern "C" {
        fn liballoc_smp_tls_slot() -> *mut core::ffi::c_void;
    }

    static SLOT: StaticSlot = StaticSlot::new(liballoc_smp_tls_slot);

    /// The calling thread's heap pointer (null before its first
    /// allocation): the slot's offset from the GOT, then one load relative
    /// to %fs.
    #[inline(always)]
    pub fn get_fast() -> *mut Heap {
        let h: *mut Heap;
        // SAFETY: `liballoc_smp_heap_slot` is the initial-exec TLS slot of
        // src/sys/c/smp_tls.c (a pointer); its GOTTPOFF entry holds its offset
        // from the thread pointer, so the second load reads the calling
        // thread's slot. Only memory is read.
        unsafe {
            core::arch::asm!(
                "mov {h}, qword ptr [rip + liballoc_smp_heap_slot@GOTTPOFF]",
                "mov {h}, qword ptr fs:[{h}]",
                h = out(reg) h,
                options(nostack, readonly, preserves_flags),
            );
        }
        h
    }

    /// The calling thread's slot.
    #[inline(always)]
    pub fn slot() -> *mut *mut Heap {
        SLOT.get().cast()
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn get_heap() -> *mut Heap {
    // SAFETY: the slot is the calling thread's initial-exec TLS variable.
    unsafe { *tls::slot() }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn set_heap(h: *mut Heap) {
    // SAFETY: as above.
    unsafe { *tls::slot() = h }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn get_heap() -> *mut Heap {
    let h = HEAP.with(|h| h.get());
    if h.is_null() { empty() } else { h }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn set_heap(h: *mut Heap) {
    HEAP.with(|c| c.set(h))
}

/// The pool's directory: block `b` holds heaps `[b * BLOCK_HEAPS,
/// (b + 1) * BLOCK_HEAPS)`; null until its first heap is handed out.
static POOL: [AtomicPtr<u8>; BLOCKS] = [const { AtomicPtr::new(ptr::null_mut()) }; BLOCKS];
/// Heaps handed out so far (their blocks are mapped).
static POOL_COUNT: AtomicU32 = AtomicU32::new(0);
/// Free heaps: low 32 bits index + 1 (0 = empty), high 32 bits ABA counter.
static POOL_FREE: AtomicU64 = AtomicU64::new(0);

const KEY_NONE: u64 = u64::MAX;
static KEY: AtomicU64 = AtomicU64::new(KEY_NONE);

/// Null for the empty heap, else `h`.
#[inline(always)]
fn or_null(h: *mut Heap) -> *mut Heap {
    if h == empty() { ptr::null_mut() } else { h }
}

/// The calling thread's heap, or null before its first allocation.
#[inline(always)]
pub fn current() -> *mut Heap {
    or_null(get_heap())
}

/// The calling thread's TLS slot as it is, without any call on the path:
/// its heap, or [`EMPTY_HEAP`] (never null). For the fast paths: the empty
/// heap's queues are empty, so `Heap::pop` from it finds nothing, and no
/// page is owned by it.
#[inline(always)]
pub fn current_raw() -> *mut Heap {
    #[cfg(target_arch = "x86_64")]
    let h = tls::get_fast();
    #[cfg(not(target_arch = "x86_64"))]
    let h = get_heap();
    debug_assert!(!h.is_null());
    h
}

/// Whether `h` (from [`current_raw`]) is the empty heap: the thread has no
/// heap of its own.
#[inline(always)]
pub fn is_empty(h: *mut Heap) -> bool {
    h == empty()
}

/// [`current`] without any call on the path: null when the thread has no
/// heap yet (callers then take a slow path that uses [`current_or_init`]).
#[inline(always)]
pub fn current_fast() -> *mut Heap {
    or_null(current_raw())
}

/// Block `b` of the pool, mapped now when absent; null when it cannot be
/// mapped.
fn block_or_map(b: usize) -> *mut u8 {
    debug_assert!(b < BLOCKS);
    let slot = &POOL[b];
    let p = slot.load(Ordering::Acquire);
    if !p.is_null() {
        return p;
    }
    let Some(fresh) = sys::map_lazy(BLOCK_BYTES) else {
        return ptr::null_mut();
    };
    let fresh = fresh.as_ptr();
    match slot.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: our mapping lost the race and nobody saw it.
            unsafe { sys::unmap(fresh, BLOCK_BYTES) };
            winner
        }
    }
}

/// Heap `i` of the pool.
///
/// # Safety
/// `i` is below the pool count read with Acquire ordering (so its block is
/// mapped, and stays so forever).
unsafe fn heap_at(i: usize) -> *mut Heap {
    debug_assert!(i < MAX_HEAPS);
    let base = POOL[i / BLOCK_HEAPS].load(Ordering::Acquire);
    debug_assert!(!base.is_null());
    base.wrapping_add((i % BLOCK_HEAPS) * HEAP_STRIDE) as *mut Heap
}

/// The pool index of heap `h` (a search of the directory: thread exit
/// only); `None` for a heap that is not in the pool.
fn index_of(h: *mut Heap) -> Option<usize> {
    let a = h as usize;
    let n = (POOL_COUNT.load(Ordering::Acquire) as usize).min(MAX_HEAPS);
    POOL[..n.div_ceil(BLOCK_HEAPS)]
        .iter()
        .enumerate()
        .find_map(|(b, slot)| {
            let base = slot.load(Ordering::Acquire) as usize;
            let off = a.wrapping_sub(base);
            (off < BLOCK_HEAPS * HEAP_STRIDE).then_some(b * BLOCK_HEAPS + off / HEAP_STRIDE)
        })
}

fn pool_acquire() -> *mut Heap {
    let mut old = POOL_FREE.load(Ordering::Acquire);
    loop {
        let idx = (old & 0xffff_ffff) as usize;
        if idx == 0 {
            break;
        }
        // SAFETY: indices on the free stack are below the pool count, and
        // the Acquire load of POOL_FREE saw the push made after the count
        // covered them.
        let h = unsafe { heap_at(idx - 1) };
        // SAFETY: heaps in the pool stay mapped forever.
        let next = unsafe { (*h).pool_next.load(Ordering::Relaxed) } as u64;
        let new = ((old >> 32).wrapping_add(1) << 32) | next;
        match POOL_FREE.compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return h,
            Err(cur) => old = cur,
        }
    }
    // A new heap: its block is mapped before the count covers it, so
    // nothing is consumed when the mapping fails.
    let mut i = POOL_COUNT.load(Ordering::Acquire) as usize;
    loop {
        if i >= MAX_HEAPS {
            return ptr::null_mut();
        }
        let base = block_or_map(i / BLOCK_HEAPS);
        if base.is_null() {
            return ptr::null_mut();
        }
        match POOL_COUNT.compare_exchange_weak(
            i as u32,
            i as u32 + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return base.wrapping_add((i % BLOCK_HEAPS) * HEAP_STRIDE) as *mut Heap,
            Err(cur) => i = cur as usize,
        }
    }
}

fn pool_release(h: *mut Heap) {
    let found = index_of(h);
    // Every heap comes from the pool.
    debug_assert!(found.is_some());
    let Some(i) = found else {
        return;
    };
    let idx = i + 1;
    let mut old = POOL_FREE.load(Ordering::Relaxed);
    loop {
        // SAFETY: h is a pool heap no thread uses any more.
        unsafe {
            (*h).pool_next
                .store((old & 0xffff_ffff) as u32, Ordering::Relaxed)
        };
        let new = ((old >> 32).wrapping_add(1) << 32) | idx as u64;
        match POOL_FREE.compare_exchange_weak(old, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(cur) => old = cur,
        }
    }
}

/// Calls `f` on every heap that ever existed (for statistics).
pub fn for_each_heap(mut f: impl FnMut(&Heap)) {
    let n = (POOL_COUNT.load(Ordering::Acquire) as usize).min(MAX_HEAPS);
    for i in 0..n {
        // SAFETY: heaps below the count (read with Acquire) are in mapped
        // blocks and are valid heaps (zeroed memory is an empty heap); only
        // their atomic counters are read.
        f(unsafe { &*heap_at(i) });
    }
}

/// Number of heaps ever created.
pub fn heap_count() -> usize {
    (POOL_COUNT.load(Ordering::Relaxed) as usize).min(MAX_HEAPS)
}

unsafe extern "C" fn thread_done(value: *mut c_void) {
    let h = value as *mut Heap;
    if h.is_null() {
        return;
    }
    if get_heap() == h {
        set_heap(empty());
    }
    // SAFETY: the exiting thread's own heap, which nobody else uses.
    heap::abandon(unsafe { &*h });
    pool_release(h);
    // The heap's empty segments went to the reserve: start the purger if it
    // is wanted and no other thread would.
    super::purger::poll();
}

/// Creates the thread-exit key once.
pub fn ensure_key() -> Option<Key> {
    let k = KEY.load(Ordering::Acquire);
    if k != KEY_NONE {
        return Some(Key::from_raw(k as u32));
    }
    let key = Key::create(thread_done)?;
    match KEY.compare_exchange(
        KEY_NONE,
        u64::from(key.to_raw()),
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Some(key),
        Err(winner) => {
            // SAFETY: our key lost the race and was never used.
            unsafe { key.delete() };
            Some(Key::from_raw(winner as u32))
        }
    }
}

/// Creates the key while the process starts, so its index is low.
extern "C" fn smp_init() {
    let _ = ensure_key();
    super::purger::init();
}

#[used]
#[unsafe(link_section = ".init_array")]
static SMP_INIT: extern "C" fn() = smp_init;

/// The calling thread's heap, creating it on first use; null when out of
/// memory.
#[inline(never)]
pub fn current_or_init() -> *mut Heap {
    let h = current();
    if !h.is_null() {
        return h;
    }
    let key = ensure_key();
    let h = pool_acquire();
    if h.is_null() {
        return h;
    }
    // A heap from the pool still holds its last thread's sampling
    // countdown. The sampler starts each thread's count at its first
    // allocation (a count of 0 sends it there), and a count carried over
    // would have that start skip the sample it was due: exited threads'
    // successors then lost about one sample each.
    // SAFETY: a heap just taken from the pool: no other thread uses it.
    unsafe { (*h).sample_left.set(0) };
    set_heap(h);
    // Without a key (all taken) the heap still works; it is just not
    // abandoned when the thread exits.
    if let Some(key) = key {
        key.set(h as *const c_void);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn heaps_span_pool_blocks_and_are_found_again() {
        // More live threads than one block holds: their heaps come from at
        // least three blocks, each mapped on demand.
        const THREADS: usize = 2 * BLOCK_HEAPS + 8;
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let b = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let h = current_or_init();
                    assert!(!h.is_null());
                    b.wait(); // all heaps taken
                    b.wait(); // counted
                    h as usize
                })
            })
            .collect();
        barrier.wait();
        assert!(heap_count() >= THREADS);
        let mut seen = 0;
        for_each_heap(|_| seen += 1);
        assert!(seen >= THREADS);
        barrier.wait();
        let heaps: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for &h in &heaps {
            let i = index_of(h as *mut Heap).expect("a pool heap");
            // SAFETY: i is below the pool count (it was handed out).
            assert_eq!(unsafe { heap_at(i) } as usize, h);
        }
        let mut blocks: Vec<usize> = heaps
            .iter()
            .map(|&h| index_of(h as *mut Heap).unwrap() / BLOCK_HEAPS)
            .collect();
        blocks.sort_unstable();
        blocks.dedup();
        assert!(blocks.len() >= 3);
        assert!(index_of(ptr::null_mut()).is_none());
    }

    #[test]
    #[cfg_attr(
        feature = "preload",
        ignore = "smp is the test process's own malloc here"
    )]
    fn a_reused_heap_starts_a_new_sampling_count() {
        // A thread leaves a count in its heap and exits; the next thread
        // usually gets that heap back (the pool is a stack; other tests'
        // threads may take it first, so several rounds are tried). No one
        // else counts, so every heap handed out must hold 0.
        let mut reused = 0;
        let mut last = 0usize;
        for round in 0..16i64 {
            let h = std::thread::spawn(move || {
                let h = current_or_init();
                assert!(!h.is_null());
                // SAFETY: the calling thread's own heap.
                let left = unsafe { (*h).sample_left.get() };
                // SAFETY: as above.
                unsafe { (*h).sample_left.set(-1000 - round) };
                (h as usize, left)
            })
            .join()
            .unwrap();
            assert_eq!(h.1, 0, "round {round}: a heap kept its last thread's count");
            reused += usize::from(h.0 == last);
            last = h.0;
        }
        assert!(reused > 0, "no heap was handed out twice");
    }
}
