//! Threads: finding the calling thread's heap, thread exit and fork.
//!
//! The heap pointer lives in static TLS without any destructor registration
//! (registration would go through `__cxa_thread_atexit_impl`, which calls
//! malloc). On x86-64 it is an initial-exec slot defined in
//! `src/c/smp_tls.c`: the fast paths read it with two loads (its offset
//! from the GOT, then `%fs`-relative), other paths through an offset learnt
//! once; neither calls `__tls_get_addr`. Elsewhere it is a `thread_local!` `Cell` with a `const`
//! initialiser and no `Drop`. Thread exit is noticed
//! through a pthread key created once, as early as possible (a library
//! constructor), so that its index is low and `pthread_setspecific` never
//! allocates; its destructor abandons the heap (`heap::abandon`) and returns
//! it to the pool. The TLS slot is set before `pthread_setspecific` is called,
//! so even an allocating `pthread_setspecific` would re-enter safely.
//!
//! Heaps come from a pool: one lazily-mapped array of up to [`MAX_HEAPS`]
//! heaps that is never unmapped, plus a lock-free stack (index + ABA counter
//! in one word) of heaps whose threads exited. Nothing here takes a lock, so
//! a child of `fork()` finds every structure consistent: it keeps its own
//! heap, and the heaps of the parent's other threads simply stay in use.

#[cfg(not(target_arch = "x86_64"))]
use core::cell::Cell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

use super::heap::{self, Heap};
use crate::sys;

/// Most heaps alive at once.
pub(crate) const MAX_HEAPS: usize = 1 << 16;
const HEAP_STRIDE: usize = core::mem::size_of::<Heap>().next_multiple_of(64);

#[cfg(not(target_arch = "x86_64"))]
std::thread_local! {
    static HEAP: Cell<*mut Heap> = const { Cell::new(ptr::null_mut()) };
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
        // src/c/smp_tls.c (a pointer); its GOTTPOFF entry holds its offset
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
    HEAP.with(|h| h.get())
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn set_heap(h: *mut Heap) {
    HEAP.with(|c| c.set(h))
}

static POOL: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
static POOL_COUNT: AtomicU32 = AtomicU32::new(0);
/// Free heaps: low 32 bits index + 1 (0 = empty), high 32 bits ABA counter.
static POOL_FREE: AtomicU64 = AtomicU64::new(0);

const KEY_NONE: u64 = u64::MAX;
static KEY: AtomicU64 = AtomicU64::new(KEY_NONE);

/// The calling thread's heap, or null before its first allocation.
#[inline(always)]
pub fn current() -> *mut Heap {
    get_heap()
}

/// [`current`] without any call on the path: may also return null before
/// the first allocation of the process (callers then take a slow path that
/// uses [`current_or_init`]).
#[inline(always)]
pub fn current_fast() -> *mut Heap {
    #[cfg(target_arch = "x86_64")]
    {
        tls::get_fast()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        get_heap()
    }
}

fn pool() -> *mut u8 {
    let p = POOL.load(Ordering::Acquire);
    if !p.is_null() {
        return p;
    }
    let Some(fresh) = sys::map_lazy(MAX_HEAPS * HEAP_STRIDE) else {
        return ptr::null_mut();
    };
    let fresh = fresh.as_ptr();
    match POOL.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: our mapping lost the race and nobody saw it.
            unsafe { sys::unmap(fresh, MAX_HEAPS * HEAP_STRIDE) };
            winner
        }
    }
}

fn heap_at(base: *mut u8, i: usize) -> *mut Heap {
    base.wrapping_add(i * HEAP_STRIDE) as *mut Heap
}

fn pool_acquire() -> *mut Heap {
    let base = pool();
    if base.is_null() {
        return ptr::null_mut();
    }
    let mut old = POOL_FREE.load(Ordering::Acquire);
    loop {
        let idx = (old & 0xffff_ffff) as usize;
        if idx == 0 {
            break;
        }
        let h = heap_at(base, idx - 1);
        // SAFETY: heaps in the pool array stay mapped forever.
        let next = unsafe { (*h).pool_next.load(Ordering::Relaxed) } as u64;
        let new = ((old >> 32).wrapping_add(1) << 32) | next;
        match POOL_FREE.compare_exchange_weak(old, new, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return h,
            Err(cur) => old = cur,
        }
    }
    let i = POOL_COUNT.fetch_add(1, Ordering::Relaxed) as usize;
    if i >= MAX_HEAPS {
        POOL_COUNT.fetch_sub(1, Ordering::Relaxed);
        return ptr::null_mut();
    }
    heap_at(base, i)
}

fn pool_release(h: *mut Heap) {
    let base = POOL.load(Ordering::Acquire);
    let idx = (h as usize - base as usize) / HEAP_STRIDE + 1;
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
    let base = POOL.load(Ordering::Acquire);
    if base.is_null() {
        return;
    }
    let n = (POOL_COUNT.load(Ordering::Acquire) as usize).min(MAX_HEAPS);
    for i in 0..n {
        // SAFETY: heaps below the count are initialised pool entries; only
        // their atomic counters are read.
        f(unsafe { &*heap_at(base, i) });
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
        set_heap(ptr::null_mut());
    }
    // SAFETY: the exiting thread's own heap, which nobody else uses.
    heap::abandon(unsafe { &*h });
    pool_release(h);
    // The heap's empty segments went to the reserve: start the purger if it
    // is wanted and no other thread would.
    super::purger::poll();
}

/// Creates the thread-exit key once.
pub fn ensure_key() -> Option<libc::pthread_key_t> {
    let k = KEY.load(Ordering::Acquire);
    if k != KEY_NONE {
        return Some(k as libc::pthread_key_t);
    }
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: key is a valid out pointer; the destructor is a plain function.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_done)) } != 0 {
        return None;
    }
    match KEY.compare_exchange(KEY_NONE, key as u64, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Some(key),
        Err(winner) => {
            // SAFETY: our key lost the race and was never used.
            unsafe { libc::pthread_key_delete(key) };
            Some(winner as libc::pthread_key_t)
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
    set_heap(h);
    // Without a key (all taken) the heap still works; it is just not
    // abandoned when the thread exits.
    if let Some(key) = key {
        // SAFETY: key is a live key; the value is our heap.
        unsafe { libc::pthread_setspecific(key, h as *const c_void) };
    }
    h
}
