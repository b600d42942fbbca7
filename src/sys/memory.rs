//! Memory from the OS: anonymous mappings, reservations, protection,
//! decommit, `mremap`, and a residency probe (`mincore`).
//!
//! Addresses passed back in must come from [`map`]/[`remap`] of this module
//! (or be page-aligned sub-ranges of them). Every call is counted
//! ([`counters`]): `mmap`, `munmap`, `madvise` and `mremap` calls and the
//! bytes decommitted, in process-wide relaxed atomics (one uncontended add
//! per system call, which costs far more).

use super::errno;
use core::ffi::c_int;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static MMAP_CALLS: AtomicU64 = AtomicU64::new(0);
static MUNMAP_CALLS: AtomicU64 = AtomicU64::new(0);
static MADVISE_CALLS: AtomicU64 = AtomicU64::new(0);
static MREMAP_CALLS: AtomicU64 = AtomicU64::new(0);
static PURGED_BYTES: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The system calls made here so far, process-wide (see [`counters`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `mmap` calls ([`map`], [`reserve`], [`map_lazy`], and the mappings
    /// inside [`map_aligned`] and [`map_huge`]), failed ones included.
    pub mmap_calls: u64,
    /// `munmap` calls ([`unmap`], and the trims inside [`map_aligned`]).
    pub munmap_calls: u64,
    /// `madvise` calls ([`decommit`], and the huge-page advice of
    /// [`map_huge`]).
    pub madvise_calls: u64,
    /// `mremap` calls ([`remap`], [`remap_fixed`]).
    pub mremap_calls: u64,
    /// Bytes given back to the OS by successful [`decommit`] calls.
    pub purged_bytes: u64,
}

/// A snapshot of the system-call counters (relaxed loads: exact when the
/// process is quiet, a close approximation while threads run).
pub fn counters() -> Counters {
    Counters {
        mmap_calls: MMAP_CALLS.load(Ordering::Relaxed),
        munmap_calls: MUNMAP_CALLS.load(Ordering::Relaxed),
        madvise_calls: MADVISE_CALLS.load(Ordering::Relaxed),
        mremap_calls: MREMAP_CALLS.load(Ordering::Relaxed),
        purged_bytes: PURGED_BYTES.load(Ordering::Relaxed),
    }
}

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system page size (read once, then cached).
#[inline]
pub fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions and does not allocate.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Maps `len` bytes of zeroed, readable and writable anonymous memory,
/// page-aligned. `len` must be non-zero; it need not be a page multiple.
pub fn map(len: usize) -> Option<NonNull<u8>> {
    map_anon(0, len, libc::PROT_READ | libc::PROT_WRITE, 0)
}

/// One counted `mmap` of `len` bytes of private anonymous memory with
/// `prot` and `MAP_PRIVATE | MAP_ANONYMOUS | flags`, at `hint` (0: anywhere).
fn map_anon(hint: usize, len: usize, prot: c_int, flags: c_int) -> Option<NonNull<u8>> {
    debug_assert!(len > 0);
    count(&MMAP_CALLS, 1);
    // SAFETY: an anonymous private mapping touches no existing memory (the
    // callers never pass MAP_FIXED, which could replace a mapping).
    let p = errno::keep(|| unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    });
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Reserves `len` bytes of address space with no access (for guard pages and
/// aligned over-mapping). Commit parts of it with [`protect_rw`].
pub fn reserve(len: usize) -> Option<NonNull<u8>> {
    map_anon(0, len, libc::PROT_NONE, libc::MAP_NORESERVE)
}

/// Reserves `len` bytes of address space with no access at exactly `addr`
/// (page-aligned), to extend an earlier reservation that ends there; false
/// when any of that range is already mapped (nothing is changed then).
pub fn reserve_at(addr: usize, len: usize) -> bool {
    debug_assert!(addr.is_multiple_of(page_size()));
    // MAP_FIXED_NOREPLACE never replaces an existing mapping; on a kernel
    // without it the address is a hint, and a mapping placed elsewhere is
    // undone below.
    let flags = libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
    match map_anon(addr, len, libc::PROT_NONE, flags) {
        None => false,
        Some(p) if p.as_ptr() as usize == addr => true,
        Some(p) => {
            // SAFETY: the fresh mapping just made, placed elsewhere.
            unsafe { unmap(p.as_ptr(), len) };
            false
        }
    }
}

/// The process's address-space limit (`RLIMIT_AS`, soft), in bytes;
/// `None` when there is none.
pub fn address_space_limit() -> Option<usize> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    let rc = errno::keep(|| unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) });
    if rc != 0 || rl.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(usize::try_from(rl.rlim_cur).unwrap_or(usize::MAX))
}

/// Maps `len` bytes aligned to `align` (a power of two, possibly above the
/// page size) by over-mapping and trimming the excess on both sides.
pub fn map_aligned(len: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(len > 0 && align.is_power_of_two());
    if align <= page_size() {
        return map(len);
    }
    over_map_aligned(len, align, map)
}

/// Maps `len` bytes (page-rounded) aligned to `align` with `mapper`, by
/// asking it for `align - page` bytes more and unmapping the excess on both
/// sides.
fn over_map_aligned(
    len: usize,
    align: usize,
    mapper: fn(usize) -> Option<NonNull<u8>>,
) -> Option<NonNull<u8>> {
    let page = page_size();
    let len = crate::alignment::forward(len, page)?;
    let over = len.checked_add(align.saturating_sub(page))?;
    let base = mapper(over)?.as_ptr() as usize;
    let start = crate::alignment::forward(base, align)?;
    let head = start - base;
    let tail = over - head - len;
    // SAFETY: [base, base+head) and [start+len, start+len+tail) are page-aligned
    // parts of the mapping just made, which nobody else knows about.
    unsafe {
        if head > 0 {
            unmap(base as *mut u8, head);
        }
        if tail > 0 {
            unmap((start + len) as *mut u8, tail);
        }
    }
    NonNull::new(start as *mut u8)
}

/// Unmaps `[addr, addr + len)`.
///
/// # Safety
/// - `addr` is page-aligned and the range lies within mappings made here;
/// - nothing uses the range afterwards.
pub unsafe fn unmap(addr: *mut u8, len: usize) {
    debug_assert!(crate::alignment::is_aligned(addr as usize, page_size()));
    count(&MUNMAP_CALLS, 1);
    // SAFETY: caller's promise: the range is ours and dead.
    errno::keep(|| unsafe {
        libc::munmap(addr.cast(), len);
    });
}

/// Moves or resizes a mapping with `mremap`. With `may_move` false the
/// mapping only grows or shrinks in place. Returns the new address.
///
/// # Safety
/// - `addr` is page-aligned, `old_len` the page-rounded length of a mapping
///   made here; `new_len` is page-rounded and non-zero;
/// - on success with a different address, the old range is dead.
pub unsafe fn remap(
    addr: *mut u8,
    old_len: usize,
    new_len: usize,
    may_move: bool,
) -> Option<NonNull<u8>> {
    debug_assert!(crate::alignment::is_aligned(addr as usize, page_size()));
    debug_assert!(new_len > 0);
    let flags = if may_move { libc::MREMAP_MAYMOVE } else { 0 };
    count(&MREMAP_CALLS, 1);
    // SAFETY: caller's promise: the range is a mapping of ours.
    let p = errno::keep(|| unsafe { libc::mremap(addr.cast(), old_len, new_len, flags) });
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Makes `[addr, addr + len)` readable and writable.
///
/// # Safety
/// The page-aligned range lies within a mapping made here.
pub unsafe fn protect_rw(addr: *mut u8, len: usize) -> bool {
    // SAFETY: caller's promise: the range is ours.
    errno::keep(|| unsafe {
        libc::mprotect(addr.cast(), len, libc::PROT_READ | libc::PROT_WRITE) == 0
    })
}

/// Makes `[addr, addr + len)` inaccessible (guard pages).
///
/// # Safety
/// The page-aligned range lies within a mapping made here and nothing may
/// touch it until it is made accessible again.
pub unsafe fn protect_none(addr: *mut u8, len: usize) -> bool {
    // SAFETY: caller's promise: the range is ours.
    errno::keep(|| unsafe { libc::mprotect(addr.cast(), len, libc::PROT_NONE) == 0 })
}

/// Gives the physical pages of `[addr, addr + len)` back to the OS; the range
/// stays mapped and reads back as zeros when touched again.
///
/// # Safety
/// The page-aligned range lies within a mapping made here and holds no live
/// data.
pub unsafe fn decommit(addr: *mut u8, len: usize) -> bool {
    count(&MADVISE_CALLS, 1);
    // SAFETY: caller's promise: the range is ours and dead.
    let ok = errno::keep(|| unsafe { libc::madvise(addr.cast(), len, libc::MADV_DONTNEED) == 0 });
    if ok {
        count(&PURGED_BYTES, len as u64);
    }
    ok
}

/// Maps `len` bytes of zeroed, readable and writable anonymous memory,
/// aligned to [`HUGE_PAGE`] and advised to be backed by transparent huge
/// pages where the system allows (fewer TLB misses and page faults for
/// large tables that are filled densely). `len` should be a multiple of
/// [`HUGE_PAGE`].
pub fn map_huge(len: usize) -> Option<NonNull<u8>> {
    let p = map_aligned(len, HUGE_PAGE)?;
    count(&MADVISE_CALLS, 1);
    // SAFETY: advice on our fresh mapping; failure (no THP) is harmless.
    errno::keep(|| unsafe { libc::madvise(p.as_ptr().cast(), len, libc::MADV_HUGEPAGE) });
    Some(p)
}

/// The size of a transparent huge page (x86-64, aarch64 with 4 KiB pages).
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// Maps `len` bytes of readable and writable memory without reserving swap
/// (`MAP_NORESERVE`): for large tables that are touched sparsely, so that
/// only the pages actually written cost memory.
pub fn map_lazy(len: usize) -> Option<NonNull<u8>> {
    map_anon(
        0,
        len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_NORESERVE,
    )
}

/// [`map_lazy`] of `len` bytes aligned to `align` (a power of two), by
/// over-mapping and trimming the excess: for arenas of address space that
/// are touched a part at a time.
pub fn map_aligned_lazy(len: usize, align: usize) -> Option<NonNull<u8>> {
    debug_assert!(len > 0 && align.is_power_of_two());
    over_map_aligned(len, align, map_lazy)
}

/// Moves the mapping `[addr, addr + old_len)` to exactly `target`, resized
/// to `new_len` (`mremap` with `MREMAP_FIXED`); whatever was mapped at
/// `[target, target + new_len)` is replaced.
///
/// # Safety
/// - `addr`, `old_len` as for [`remap`]; `target` is page-aligned;
/// - `[target, target + new_len)` lies within a reservation made here that
///   nothing else uses and that does not overlap the old range;
/// - on success the old range is dead.
pub unsafe fn remap_fixed(addr: *mut u8, old_len: usize, new_len: usize, target: *mut u8) -> bool {
    debug_assert!(crate::alignment::is_aligned(target as usize, page_size()));
    count(&MREMAP_CALLS, 1);
    // SAFETY: caller's promise: both ranges are ours.
    let p = errno::keep(|| unsafe {
        libc::mremap(
            addr.cast(),
            old_len,
            new_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            target,
        )
    });
    p == target.cast()
}

/// Which pages of `[addr, addr + vec.len() pages)` are resident: bit 0 of
/// `vec[i]` is set for each resident page (`mincore`). False when part of
/// the range is not mapped (then `vec` says nothing).
///
/// Safe for any address: the kernel only reads page-table state, and an
/// unmapped or misaligned range is refused with an error.
pub fn resident(addr: usize, vec: &mut [u8]) -> bool {
    let len = vec.len() * page_size();
    // SAFETY: mincore reads no user memory; vec is writable for one byte
    // per page of the range.
    errno::keep(|| unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) == 0 })
}

/// Whether every page of `[lo, hi)` is mapped (`mincore`, a chunk of 64
/// pages per call); false for an empty range. Says nothing about the
/// pages' protection.
pub fn range_mapped(lo: usize, hi: usize) -> bool {
    let page = page_size();
    let (mut at, end) = (lo & !(page - 1), hi.next_multiple_of(page));
    if at >= end {
        return false;
    }
    let mut vec = [0u8; 64];
    while at < end {
        let n = ((end - at) / page).min(vec.len());
        if !resident(at, &mut vec[..n]) {
            return false;
        }
        at += n * page;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_calls_keep_errno() {
        let page = page_size();
        let p = map(page).unwrap().as_ptr();
        errno::set(4321);
        // SAFETY: an empty and a misaligned range inside our mapping: the
        // calls fail with EINVAL without touching anything.
        unsafe {
            unmap(p, 0);
            assert!(!protect_rw(p.add(1), 1));
        }
        assert!(map(usize::MAX - page).is_none());
        assert_eq!(errno::get(), 4321);
        // SAFETY: the mapping is ours.
        unsafe { unmap(p, page) };
    }

    #[test]
    fn system_calls_are_counted() {
        // Other tests run at the same time: the counters only grow, so
        // each must have grown at least by the calls made here.
        let page = page_size();
        let before = counters();
        let p = map(page * 4).unwrap().as_ptr();
        // SAFETY: the mapping is ours; its pages hold nothing.
        unsafe {
            *p = 1;
            assert!(decommit(p, page * 2));
            let q = remap(p, page * 4, page * 8, true).unwrap().as_ptr();
            unmap(q, page * 8);
        }
        let after = counters();
        assert!(after.mmap_calls > before.mmap_calls);
        assert!(after.munmap_calls > before.munmap_calls);
        assert!(after.madvise_calls > before.madvise_calls);
        assert!(after.mremap_calls > before.mremap_calls);
        assert!(after.purged_bytes >= before.purged_bytes + (page * 2) as u64);
    }

    #[test]
    fn residency() {
        let page = page_size();
        let p = map(page * 2).unwrap().as_ptr();
        // SAFETY: the mapping is ours and writable.
        unsafe { p.write(1) };
        let mut vec = [0u8; 2];
        assert!(resident(p as usize, &mut vec));
        assert_eq!(vec[0] & 1, 1);
        // SAFETY: the mapping is ours.
        unsafe { unmap(p, page * 2) };
        assert!(!resident(1 << 12, &mut vec));
    }

    #[test]
    fn map_and_unmap() {
        let len = page_size() * 3;
        let p = map(len).unwrap();
        // SAFETY: the mapping is ours and writable.
        unsafe {
            *p.as_ptr() = 7;
            *p.as_ptr().add(len - 1) = 9;
            unmap(p.as_ptr(), len);
        }
    }

    #[test]
    fn aligned_mapping() {
        for shift in [13u32, 16, 21, 22] {
            let align = 1usize << shift;
            let p = map_aligned(5000, align).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: 5000 bytes rounded to pages were mapped.
            unsafe {
                *p.as_ptr().add(4999) = 1;
                unmap(
                    p.as_ptr(),
                    crate::alignment::forward(5000, page_size()).unwrap(),
                );
            }
        }
    }

    #[test]
    fn huge_mapping_is_aligned_and_zeroed() {
        let p = map_huge(2 * HUGE_PAGE).unwrap();
        assert_eq!(p.as_ptr() as usize % HUGE_PAGE, 0);
        // SAFETY: the mapping is ours, writable, 2 * HUGE_PAGE bytes.
        unsafe {
            assert_eq!(*p.as_ptr().add(HUGE_PAGE + 5), 0);
            *p.as_ptr().add(2 * HUGE_PAGE - 1) = 3;
            unmap(p.as_ptr(), 2 * HUGE_PAGE);
        }
    }

    #[test]
    fn remap_grows() {
        let page = page_size();
        let p = map(page).unwrap();
        // SAFETY: fresh mapping of one page, grown with MAYMOVE.
        unsafe {
            *p.as_ptr() = 42;
            let q = remap(p.as_ptr(), page, page * 64, true).unwrap();
            assert_eq!(*q.as_ptr(), 42);
            *q.as_ptr().add(page * 64 - 1) = 1;
            unmap(q.as_ptr(), page * 64);
        }
    }
}
