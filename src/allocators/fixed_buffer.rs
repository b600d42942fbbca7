//! The fixed-buffer allocator: bump allocation inside one caller-provided
//! buffer (Zig's `std.heap.FixedBufferAllocator`).
//!
//! State is an `la_fixed_buffer` in caller storage: the buffer, its length
//! and `end_index`, the offset of the first unused byte. `alloc` aligns
//! `end_index` forward and bumps it. Only the most recent block (the one
//! ending at `end_index`) can grow in place or be freed; any block can shrink
//! in place (the bytes after it are simply not reused), as in Zig. `remap` is
//! `resize` or NULL. `la_fixed_buffer_reset` forgets every block at once.
//!
//! Two vtables share the state. The plain one reads and writes `end_index`
//! directly; the thread-safe one is lock-free, moving `end_index` only with
//! compare-and-swap (Zig's `threadSafe*` functions), so several threads may
//! allocate from one buffer. The two must not be used at the same time.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

use libc::size_t;

use crate::alignment;
use crate::vtable::{RawAllocator, la_allocator, la_vtable, vtable_of};

/// Fixed-buffer allocator state, kept in caller storage (Zig's
/// `FixedBufferAllocator`). Initialise it with `la_fixed_buffer_init`; the
/// fields are visible so that it can live on the stack or in a struct, but
/// only the `la_fixed_buffer_*` functions should change them.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct la_fixed_buffer {
    /// First byte of the buffer (NULL when the buffer is empty).
    pub buffer: *mut u8,
    /// Length of the buffer in bytes.
    pub len: size_t,
    /// Offset of the first byte not handed out yet (`<= len`).
    pub end_index: size_t,
}

/// The state seen through the vtable context: the caller's `la_fixed_buffer`,
/// whose `end_index` the allocator changes while callers hold only the
/// context pointer.
#[repr(transparent)]
struct Shared(UnsafeCell<la_fixed_buffer>);

impl Shared {
    #[inline]
    fn buffer(&self) -> usize {
        // SAFETY: `buffer` is written only by init, never while allocating.
        unsafe { (*self.0.get()).buffer as usize }
    }

    #[inline]
    fn len(&self) -> usize {
        // SAFETY: as for `buffer`.
        unsafe { (*self.0.get()).len }
    }

    /// `end_index` as an atomic, for the thread-safe vtable.
    #[inline]
    fn end_atomic(&self) -> &AtomicUsize {
        // SAFETY: `end_index` is a properly aligned usize inside live state;
        // while the thread-safe vtable is in use every access to it is atomic
        // (the plain vtable must not be used at the same time, documented).
        unsafe { AtomicUsize::from_ptr(&raw mut (*self.0.get()).end_index) }
    }

    #[inline]
    fn end(&self) -> usize {
        // SAFETY: the plain vtable is single-threaded by contract.
        unsafe { (*self.0.get()).end_index }
    }

    #[inline]
    fn set_end(&self, end: usize) {
        debug_assert!(end <= self.len());
        // SAFETY: the plain vtable is single-threaded by contract.
        unsafe { (*self.0.get()).end_index = end }
    }

    /// Where a block of `n` bytes aligned to `1 << log2` would start and end
    /// if allocated at `end`: `(start_index, new_end_index)`, or `None` when
    /// it does not fit.
    #[inline]
    fn place(&self, end: usize, n: usize, log2: u8) -> Option<(usize, usize)> {
        let align = alignment::to_bytes(log2)?;
        let base = self.buffer();
        let addr = base.checked_add(end)?;
        let start = alignment::forward(addr, align)? - base;
        let new_end = start.checked_add(n)?;
        (new_end <= self.len()).then_some((start, new_end))
    }

    /// Whether `[memory, memory + len)` ends exactly at offset `end`.
    #[inline]
    fn ends_at(&self, memory: *mut u8, len: usize, end: usize) -> bool {
        (memory as usize).wrapping_add(len) == self.buffer().wrapping_add(end)
    }
}

/// Vtable face of the single-threaded fixed-buffer allocator; also the
/// buffer half of the buffer-first allocator ([`Plain::over`]).
#[repr(transparent)]
pub(crate) struct Plain(Shared);

impl Plain {
    /// The single-threaded allocator over the state at `fb` (what
    /// `la_fixed_buffer_allocator` calls through), for allocators whose
    /// state begins with an `la_fixed_buffer`, as Zig's
    /// `BufferFirstAllocator` holds a `FixedBufferAllocator`.
    ///
    /// # Safety
    /// - `fb` points to an initialised `la_fixed_buffer` that outlives `'a`;
    /// - no thread uses it through the thread-safe vtable meanwhile.
    pub(crate) unsafe fn over<'a>(fb: *mut la_fixed_buffer) -> &'a Plain {
        // SAFETY: Plain and Shared are transparent over the UnsafeCell,
        // which is transparent over la_fixed_buffer; the caller's promises.
        unsafe { &*fb.cast::<Plain>() }
    }
}

/// Vtable face of the lock-free thread-safe fixed-buffer allocator.
#[repr(transparent)]
struct ThreadSafe(Shared);

static PLAIN_VTABLE: la_vtable = vtable_of::<Plain>();
static THREAD_SAFE_VTABLE: la_vtable = vtable_of::<ThreadSafe>();

// SAFETY: blocks are carved from the caller's buffer at aligned offsets and
// never overlap a live block (end_index only moves back over the most recent
// block); resize reports success only when the block now fits in place.
unsafe impl RawAllocator for Plain {
    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        debug_assert!(len > 0);
        let s = &self.0;
        match s.place(s.end(), len, alignment) {
            Some((start, new_end)) => {
                s.set_end(new_end);
                (s.buffer() + start) as *mut u8
            }
            None => ptr::null_mut(),
        }
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        _alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> bool {
        let s = &self.0;
        let end = s.end();
        if !s.ends_at(memory, len, end) {
            // Not the most recent block: only shrinking (in place) works.
            return new_len <= len;
        }
        if new_len <= len {
            s.set_end(end - (len - new_len));
            return true;
        }
        let add = new_len - len;
        if add > s.len() - end {
            return false;
        }
        s.set_end(end + add);
        true
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, _alignment: u8, _ret_addr: usize) {
        let s = &self.0;
        let end = s.end();
        if s.ends_at(memory, len, end) {
            s.set_end(end - len);
        }
    }
}

// SAFETY: as for `Plain`; every change of end_index is a compare-and-swap
// from the value the decision was based on, so two threads never get
// overlapping blocks.
unsafe impl RawAllocator for ThreadSafe {
    unsafe fn alloc(&self, len: usize, alignment: u8, _ret_addr: usize) -> *mut u8 {
        debug_assert!(len > 0);
        let s = &self.0;
        let end_index = s.end_atomic();
        let mut cur = end_index.load(Ordering::Relaxed);
        loop {
            let Some((start, new_end)) = s.place(cur, len, alignment) else {
                return ptr::null_mut();
            };
            // Acquire: memory freed by another thread (release) is ours now.
            match end_index.compare_exchange_weak(
                cur,
                new_end,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (s.buffer() + start) as *mut u8,
                Err(now) => cur = now,
            }
        }
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        _alignment: u8,
        new_len: usize,
        _ret_addr: usize,
    ) -> bool {
        let s = &self.0;
        let end_index = s.end_atomic();
        let cur = end_index.load(Ordering::Relaxed);
        if !s.ends_at(memory, len, cur) {
            return new_len <= len;
        }
        if new_len <= len {
            // Release the tail; if another thread moved end_index meanwhile
            // the tail is simply not reused. Shrinking always succeeds.
            let _ = end_index.compare_exchange(
                cur,
                cur - (len - new_len),
                Ordering::Release,
                Ordering::Relaxed,
            );
            return true;
        }
        let add = new_len - len;
        if s.len() - cur < add {
            return false;
        }
        end_index
            .compare_exchange(cur, cur + add, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, _alignment: u8, _ret_addr: usize) {
        let s = &self.0;
        let end_index = s.end_atomic();
        let cur = end_index.load(Ordering::Relaxed);
        if s.ends_at(memory, len, cur) {
            let _ =
                end_index.compare_exchange(cur, cur - len, Ordering::Release, Ordering::Relaxed);
        }
    }
}

/// Initialises `fb` to hand out the bytes of `buf[0..len]`.
///
/// Parameters: `fb` caller storage for the state; `buf` the buffer (NULL is
/// taken as an empty buffer); `len` its length in bytes.
///
/// NULL: a NULL `fb` does nothing.
///
/// Thread safety: not thread-safe; initialise before sharing `fb`.
///
/// # Safety
/// `fb` is NULL or writable storage for an `la_fixed_buffer`; `buf[0..len]`
/// is writable memory that outlives every block handed out from it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_fixed_buffer_init(
    fb: *mut la_fixed_buffer,
    buf: *mut c_void,
    len: size_t,
) {
    if fb.is_null() {
        return;
    }
    let (buffer, len) = if buf.is_null() {
        (ptr::null_mut(), 0)
    } else {
        (buf.cast(), len)
    };
    // SAFETY: fb is non-null and writable (caller's promise).
    unsafe {
        fb.write(la_fixed_buffer {
            buffer,
            len,
            end_index: 0,
        })
    }
}

/// The single-threaded allocator over `fb`: bump allocation; only the most
/// recent block can grow in place or be freed, any block can shrink in place.
///
/// Parameters: `fb` an initialised state, which must outlive the allocator.
///
/// Returns: the allocator. NULL: a NULL `fb` gives an allocator with a NULL
/// vtable, whose every call fails.
///
/// Thread safety: the allocator may be used by one thread at a time, and not
/// together with `la_fixed_buffer_thread_safe_allocator` on the same `fb`.
#[unsafe(no_mangle)]
pub extern "C" fn la_fixed_buffer_allocator(fb: *mut la_fixed_buffer) -> la_allocator {
    la_allocator::of_handle(fb, &PLAIN_VTABLE)
}

/// The lock-free allocator over `fb`: like `la_fixed_buffer_allocator`, but
/// `end_index` moves only by atomic compare-and-swap, so any number of
/// threads may allocate, resize and free at once.
///
/// Parameters: `fb` an initialised state, which must outlive the allocator.
///
/// Returns: the allocator. NULL: a NULL `fb` gives an allocator with a NULL
/// vtable, whose every call fails.
///
/// Thread safety: safe from any thread, but not together with
/// `la_fixed_buffer_allocator` or `la_fixed_buffer_reset` on the same `fb`.
#[unsafe(no_mangle)]
pub extern "C" fn la_fixed_buffer_thread_safe_allocator(fb: *mut la_fixed_buffer) -> la_allocator {
    la_allocator::of_handle(fb, &THREAD_SAFE_VTABLE)
}

/// Forgets every block: the whole buffer is free again.
///
/// Parameters: `fb` an initialised state. NULL: does nothing.
///
/// Thread safety: not thread-safe; no allocator over `fb` may be in use.
///
/// # Safety
/// `fb` is NULL or an initialised `la_fixed_buffer`; blocks handed out
/// before must no longer be used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_fixed_buffer_reset(fb: *mut la_fixed_buffer) {
    // SAFETY: fb is NULL or valid (caller's promise).
    if let Some(fb) = unsafe { fb.as_mut() } {
        fb.end_index = 0;
    }
}

/// Whether `fb`'s buffer contains the bytes `[ptr, ptr + len)` (Zig's
/// `ownsSlice`); with `len == 0`, whether it contains the byte at `ptr`
/// (Zig's `ownsPtr`).
///
/// Parameters: `fb` an initialised state; `ptr`, `len` the range asked about.
///
/// Returns: true when the range lies inside the buffer (allocated or not).
/// NULL: false for a NULL `fb` or `ptr`.
///
/// Thread safety: safe from any thread (reads only the buffer bounds).
///
/// # Safety
/// `fb` is NULL or an initialised `la_fixed_buffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_fixed_buffer_owns(
    fb: *const la_fixed_buffer,
    ptr: *const c_void,
    len: size_t,
) -> bool {
    if fb.is_null() || ptr.is_null() {
        return false;
    }
    // Read only the two fields that never change after init: another thread
    // may be moving `end_index` through the thread-safe allocator, so no
    // reference to the whole struct is formed.
    // SAFETY: fb is a valid, initialised state (caller's promise).
    let (buffer, buf_len) = unsafe { ((*fb).buffer, (*fb).len) };
    if buffer.is_null() {
        return false;
    }
    let start = buffer as usize;
    let end = start + buf_len;
    let p = ptr as usize;
    if len == 0 {
        return p >= start && p < end;
    }
    match p.checked_add(len) {
        Some(p_end) => p >= start && p_end <= end,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};

    fn init(buf: &mut [u8]) -> la_fixed_buffer {
        let mut fb = la_fixed_buffer {
            buffer: ptr::null_mut(),
            len: 0,
            end_index: 0,
        };
        // SAFETY: fb is writable and buf outlives the test.
        unsafe { la_fixed_buffer_init(&mut fb, buf.as_mut_ptr().cast(), buf.len()) };
        fb
    }

    #[test]
    fn reset_reuses_memory() {
        // Zig's `test reset`.
        let mut buf = [0u64; 1];
        // SAFETY: u64 storage viewed as bytes.
        let bytes = unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), 8) };
        let mut fb = init(bytes);
        let a = la_fixed_buffer_allocator(&mut fb);
        // SAFETY: blocks used within their lengths.
        unsafe {
            let x = la_raw_alloc(a, 8, 3, 0) as *mut u64;
            assert!(!x.is_null());
            x.write(0xeeee_eeee_eeee_eeee);
            assert!(la_raw_alloc(a, 8, 3, 0).is_null());
            la_fixed_buffer_reset(&mut fb);
            let y = la_raw_alloc(a, 8, 3, 0) as *mut u64;
            assert_eq!(x, y);
            y.write(u64::MAX);
            assert_eq!(x.read(), u64::MAX);
        }
    }

    #[test]
    fn reuse_memory_on_realloc() {
        // Zig's `test "reuse memory on realloc"`, at the vtable level.
        let mut buf = [0u8; 10];
        let mut fb = init(&mut buf);
        let a = la_fixed_buffer_allocator(&mut fb);
        // SAFETY: blocks used within their lengths.
        unsafe {
            let s0 = la_raw_alloc(a, 5, 0, 0);
            assert!(!s0.is_null());
            assert_eq!(la_raw_remap(a, s0, 5, 0, 10, 0), s0);
            assert!(la_raw_remap(a, s0, 10, 0, 11, 0).is_null());
            assert!(!la_raw_resize(a, s0, 10, 0, 11, 0));
        }
        let mut fb = init(&mut buf);
        let a = la_fixed_buffer_allocator(&mut fb);
        // SAFETY: as above.
        unsafe {
            let s0 = la_raw_alloc(a, 2, 0, 0);
            let s1 = la_raw_alloc(a, 2, 0, 0);
            assert!(!s0.is_null() && !s1.is_null());
            // s0 is not the last block: it cannot grow, but can shrink.
            assert!(la_raw_remap(a, s0, 2, 0, 4, 0).is_null());
            assert!(la_raw_resize(a, s0, 2, 0, 1, 0));
            // Freeing a non-last block does nothing; freeing the last one
            // gives its bytes back.
            la_raw_free(a, s0, 1, 0, 0);
            assert_eq!(fb.end_index, 4);
            la_raw_free(a, s1, 2, 0, 0);
            assert_eq!(fb.end_index, 2);
        }
    }

    #[test]
    fn alignment_and_bounds() {
        let mut buf = [0u8; 256];
        let mut fb = init(&mut buf);
        for a in [
            la_fixed_buffer_allocator(&mut fb),
            la_fixed_buffer_thread_safe_allocator(&mut fb),
        ] {
            // SAFETY: blocks are not written; the state is reset between uses.
            unsafe {
                la_fixed_buffer_reset(&mut fb);
                let p = la_raw_alloc(a, 1, 0, 0);
                let q = la_raw_alloc(a, 8, 5, 0);
                assert!(!p.is_null() && !q.is_null());
                assert_eq!(q as usize % 32, 0);
                assert!(la_raw_alloc(a, 1, 20, 0).is_null());
                assert!(la_raw_alloc(a, 1, 63, 0).is_null());
                assert!(la_raw_alloc(a, 1, 64, 0).is_null());
                assert!(la_raw_alloc(a, usize::MAX, 0, 0).is_null());
                assert!(la_raw_alloc(a, usize::MAX - 3, 4, 0).is_null());
                assert!(la_raw_alloc(a, 0, 0, 0).is_null());
                assert!(!la_raw_resize(a, q, 8, 5, usize::MAX, 0));
                assert!(la_fixed_buffer_owns(&fb, q, 8));
                assert!(la_fixed_buffer_owns(&fb, q, 0));
                assert!(!la_fixed_buffer_owns(&fb, q, 1000));
                assert!(!la_fixed_buffer_owns(&fb, q, usize::MAX));
            }
        }
    }

    #[test]
    fn thread_safe_last_block() {
        let mut buf = [0u8; 64];
        let mut fb = init(&mut buf);
        let a = la_fixed_buffer_thread_safe_allocator(&mut fb);
        // SAFETY: blocks are within the buffer and not written.
        unsafe {
            let p = la_raw_alloc(a, 8, 0, 0);
            let q = la_raw_alloc(a, 8, 0, 0);
            assert!(la_raw_resize(a, q, 8, 0, 16, 0));
            assert!(!la_raw_resize(a, p, 8, 0, 9, 0));
            assert!(la_raw_resize(a, p, 8, 0, 4, 0));
            la_raw_free(a, q, 16, 0, 0);
            assert_eq!(fb.end_index, 8);
            assert!(!la_raw_resize(a, p, 4, 0, 100, 0));
        }
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        const THREADS: usize = 4;
        const PER: usize = 500;
        let mut buf = vec![0u8; THREADS * PER * 32];
        let mut fb = init(&mut buf);
        let a = la_fixed_buffer_thread_safe_allocator(&mut fb);
        struct Send(la_allocator);
        // SAFETY: the thread-safe fixed buffer may be used from any thread.
        unsafe impl std::marker::Send for Send {}
        // SAFETY: as above.
        unsafe impl Sync for Send {}
        let shared = Send(a);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let shared = &shared;
                s.spawn(move || {
                    let a = shared.0;
                    let mut blocks = Vec::new();
                    for i in 0..PER {
                        let len = 1 + (i * 7 + t) % 24;
                        // SAFETY: blocks are written within their lengths only.
                        unsafe {
                            let p = la_raw_alloc(a, len, 0, 0) as *mut u8;
                            assert!(!p.is_null());
                            p.write_bytes(t as u8 + 1, len);
                            blocks.push((p, len));
                        }
                    }
                    for (p, len) in blocks {
                        // SAFETY: live blocks of this thread.
                        unsafe {
                            assert!((0..len).all(|i| *p.add(i) == t as u8 + 1));
                        }
                    }
                });
            }
        });
    }

    #[test]
    fn null_state() {
        // SAFETY: NULL is accepted everywhere.
        unsafe {
            la_fixed_buffer_init(ptr::null_mut(), ptr::null_mut(), 10);
            la_fixed_buffer_reset(ptr::null_mut());
            assert!(!la_fixed_buffer_owns(ptr::null(), ptr::null(), 0));
            let a = la_fixed_buffer_allocator(ptr::null_mut());
            assert!(la_raw_alloc(a, 8, 0, 0).is_null());
            let a = la_fixed_buffer_thread_safe_allocator(ptr::null_mut());
            assert!(la_raw_alloc(a, 8, 0, 0).is_null());
        }
        // An empty (NULL) buffer never allocates.
        let mut fb = la_fixed_buffer {
            buffer: ptr::null_mut(),
            len: 0,
            end_index: 0,
        };
        // SAFETY: fb is writable.
        unsafe {
            la_fixed_buffer_init(&mut fb, ptr::null_mut(), 100);
            assert_eq!(fb.len, 0);
            assert!(la_raw_alloc(la_fixed_buffer_allocator(&mut fb), 1, 0, 0).is_null());
        }
    }
}
