//! The thread-safe wrapper: any allocator behind a mutex, usable across
//! `fork()` (Zig's former `ThreadSafeAllocator`).
//!
//! Each `la_thread_safe` holds a child allocator and a futex lock
//! ([`crate::sys::lock::RawLock`]); every vtable call takes the lock, calls the
//! child and releases it. The lock is safe across `fork()`: every live
//! wrapper is kept in a registry, and `pthread_atfork` handlers (registered
//! once, on the first create) take the registry lock and then every wrapper's
//! lock before the fork, so no wrapper is half-way through a child call when
//! the address space is copied; afterwards the parent unlocks them and the
//! child resets them to unlocked (its other threads are gone). Wrappers are
//! locked newest first, which is the order a wrapper nested over an older
//! one locks them, so nesting cannot deadlock with `fork`.
//!
//! The handle itself lives in its own mapping (`handle.rs`), not in the
//! child.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use crate::allocators::handle;
use crate::sys;
use crate::sys::lock::RawLock;
use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};

/// A thread-safe wrapper (opaque): an allocator behind a fork-safe lock.
#[allow(non_camel_case_types)]
pub struct la_thread_safe {
    lock: RawLock,
    child: ChildAllocator,
    /// Registry links, changed only under `REGISTRY`.
    prev: AtomicPtr<la_thread_safe>,
    next: AtomicPtr<la_thread_safe>,
}

static VTABLE: la_vtable = vtable_of::<la_thread_safe>();

/// The child of `a` when `a` is a thread-safe wrapper, for the live-block
/// capability (`live_blocks.rs`), which the wrapper forwards: its blocks
/// are its child's, and a call that reaches the child past its lock is
/// unobservable for a child that offers the capability (thread-safe
/// itself).
///
/// # Safety
/// `a` is a valid allocator: when it is a wrapper, its handle is live.
pub(crate) unsafe fn forwarded_child(a: &la_allocator) -> Option<la_allocator> {
    if !ptr::eq(a.vtable, &VTABLE) || a.ptr.is_null() {
        return None;
    }
    // SAFETY: caller's promise: a live wrapper handle.
    Some(unsafe { (*a.ptr.cast::<la_thread_safe>()).child.0 })
}

/// Every live wrapper, newest first, guarded by `REGISTRY`.
static HEAD: AtomicPtr<la_thread_safe> = AtomicPtr::new(ptr::null_mut());
static REGISTRY: RawLock = RawLock::new();

/// 0: fork handlers not registered; 1: being registered; 2: registered.
static HANDLERS: AtomicU8 = AtomicU8::new(0);

/// Calls `f` with every registered wrapper, newest first.
///
/// # Safety
/// The caller holds `REGISTRY` (or is the only thread, in a forked child).
unsafe fn for_each(mut f: impl FnMut(&la_thread_safe)) {
    let mut p = HEAD.load(Ordering::Relaxed);
    while !p.is_null() {
        // SAFETY: registered wrappers stay alive until removed, which needs
        // REGISTRY (held by the caller).
        let w = unsafe { &*p };
        f(w);
        p = w.next.load(Ordering::Relaxed);
    }
}

extern "C" fn before_fork() {
    REGISTRY.lock();
    // SAFETY: REGISTRY is held.
    unsafe { for_each(|w| w.lock.lock()) };
}

extern "C" fn after_fork_parent() {
    // SAFETY: REGISTRY and every wrapper lock were taken by this thread in
    // `before_fork`.
    unsafe {
        for_each(|w| w.lock.unlock());
        REGISTRY.unlock();
    }
}

extern "C" fn after_fork_child() {
    // SAFETY: in the child only this thread exists; the locks were taken by
    // it in `before_fork`, and nobody else can hold or wait for them.
    unsafe {
        for_each(|w| w.lock.reset_in_child());
        REGISTRY.reset_in_child();
    }
}

/// Registers the fork handlers once; false if the C library refused.
fn register_fork_handlers() -> bool {
    loop {
        match HANDLERS.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                // The handlers are plain functions that live as long as the
                // library; they allocate nothing.
                let ok = sys::thread::on_fork(before_fork, after_fork_parent, after_fork_child);
                HANDLERS.store(if ok { 2 } else { 0 }, Ordering::Release);
                return ok;
            }
            Err(2) => return true,
            Err(_) => sys::thread::yield_now(),
        }
    }
}

impl la_thread_safe {
    /// Runs `f` on the child with the lock held.
    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&ChildAllocator) -> R) -> R {
        self.lock.lock();
        let r = f(&self.child);
        // SAFETY: taken just above by this thread.
        unsafe { self.lock.unlock() };
        r
    }
}

// SAFETY: every call is forwarded unchanged to the child, which keeps the
// contract; the lock only serialises the calls.
unsafe impl RawAllocator for la_thread_safe {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        self.locked(|c| {
            // SAFETY: the child is valid while the wrapper lives; the lock
            // makes this the only call into it.
            match unsafe { c.alloc(len, alignment, ret_addr) } {
                Some(p) => p.as_ptr(),
                None => ptr::null_mut(),
            }
        })
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        // SAFETY: forwarded vtable promise, serialised by the lock.
        self.locked(|c| unsafe { c.resize(memory, len, alignment, new_len, ret_addr) })
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        self.locked(|c| {
            // SAFETY: forwarded vtable promise, serialised by the lock.
            match unsafe { c.remap(memory, len, alignment, new_len, ret_addr) } {
                Some(p) => p.as_ptr(),
                None => ptr::null_mut(),
            }
        })
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: forwarded vtable promise, serialised by the lock.
        self.locked(|c| unsafe { c.free(memory, len, alignment, ret_addr) })
    }
}

/// Creates a thread-safe wrapper: every call through it takes a lock and
/// forwards to `child`, so a single-threaded allocator (an arena, a
/// fixed buffer, a pool-backed allocator) can be shared between threads. The
/// lock survives `fork()`: the child process can keep using the wrapper.
///
/// Parameters: `child` the allocator to protect (it must outlive the
/// wrapper).
///
/// Returns: the wrapper, or NULL when `child` has a NULL vtable or the
/// system is out of memory. The handle does not come from `child`.
///
/// Thread safety: create/destroy from any thread; the allocator from
/// `la_thread_safe_allocator` is safe from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn la_thread_safe_create(child: la_allocator) -> *mut la_thread_safe {
    let child = ChildAllocator(child);
    if !child.is_valid() || !register_fork_handlers() {
        return ptr::null_mut();
    }
    let Some(w) = handle::create(la_thread_safe {
        lock: RawLock::new(),
        child,
        prev: AtomicPtr::new(ptr::null_mut()),
        next: AtomicPtr::new(ptr::null_mut()),
    }) else {
        return ptr::null_mut();
    };
    REGISTRY.lock();
    let head = HEAD.load(Ordering::Relaxed);
    // SAFETY: `w` is fresh; `head` is a registered wrapper; REGISTRY is held.
    unsafe {
        (*w.as_ptr()).next.store(head, Ordering::Relaxed);
        if let Some(h) = head.as_ref() {
            h.prev.store(w.as_ptr(), Ordering::Relaxed);
        }
    }
    HEAD.store(w.as_ptr(), Ordering::Relaxed);
    // SAFETY: taken above.
    unsafe { REGISTRY.unlock() };
    w.as_ptr()
}

/// The allocator interface of a thread-safe wrapper.
///
/// Returns: the allocator, valid until `la_thread_safe_destroy(ts)`; for a
/// NULL `ts` one whose every call fails.
///
/// Thread safety: the result may be used from any thread at once.
#[unsafe(no_mangle)]
pub extern "C" fn la_thread_safe_allocator(ts: *mut la_thread_safe) -> la_allocator {
    la_allocator::of_handle(ts, &VTABLE)
}

/// Destroys a thread-safe wrapper. Blocks still allocated through it belong
/// to the child (free them there, or with the child's own reset/destroy).
///
/// Parameters: `ts` the wrapper; NULL does nothing.
///
/// Thread safety: no thread may be using the wrapper's allocator.
///
/// # Safety
/// `ts` is NULL or a live wrapper not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_thread_safe_destroy(ts: *mut la_thread_safe) {
    let Some(w) = NonNull::new(ts) else {
        return;
    };
    REGISTRY.lock();
    // SAFETY: `w` is a registered wrapper (caller's promise); REGISTRY is held.
    unsafe {
        let prev = w.as_ref().prev.load(Ordering::Relaxed);
        let next = w.as_ref().next.load(Ordering::Relaxed);
        match prev.as_ref() {
            Some(p) => p.next.store(next, Ordering::Relaxed),
            None => HEAD.store(next, Ordering::Relaxed),
        }
        if let Some(n) = next.as_ref() {
            n.prev.store(prev, Ordering::Relaxed);
        }
        REGISTRY.unlock();
        handle::destroy(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::c::la_c_allocator;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_resize};

    #[test]
    fn forwards_and_serialises() {
        let ts = la_thread_safe_create(la_c_allocator());
        assert!(!ts.is_null());
        let a = la_thread_safe_allocator(ts);
        let addr = a.ptr as usize;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let a = la_allocator {
                        ptr: addr as *mut core::ffi::c_void,
                        vtable: &VTABLE,
                    };
                    for i in 1..2000usize {
                        // SAFETY: blocks used within their length, freed once.
                        unsafe {
                            let p = la_raw_alloc(a, i, 3, 0) as *mut u8;
                            assert!(!p.is_null());
                            p.write_bytes(1, i);
                            assert!(la_raw_resize(a, p.cast(), i, 3, 1, 0));
                            la_raw_free(a, p.cast(), 1, 3, 0);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: no thread uses it any more.
        unsafe { la_thread_safe_destroy(ts) };
    }

    #[test]
    fn registry_links() {
        let a = la_thread_safe_create(la_c_allocator());
        let b = la_thread_safe_create(la_c_allocator());
        let c = la_thread_safe_create(la_c_allocator());
        // SAFETY: live wrappers, destroyed once; the middle one first.
        unsafe {
            la_thread_safe_destroy(b);
            la_thread_safe_destroy(c);
            la_thread_safe_destroy(a);
        }
    }

    #[test]
    fn null_handles() {
        assert!(la_thread_safe_create(la_allocator::NULL).is_null());
        // SAFETY: NULL handles must be refused.
        unsafe {
            let a = la_thread_safe_allocator(ptr::null_mut());
            assert!(la_raw_alloc(a, 8, 0, 0).is_null());
            la_thread_safe_destroy(ptr::null_mut());
        }
    }
}
