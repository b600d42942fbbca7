//! The logging wrapper: forwards every call to a child allocator and writes
//! one line per call to a file descriptor (Zig's former `LoggingAllocator`).
//!
//! Line format (one `write(2)` per line, fields separated by single spaces,
//! numbers in decimal, addresses in hexadecimal with `0x`, alignment in
//! bytes):
//!
//! ```text
//! alloc len=100 align=8 ra=0x55e0c0ffee00 -> 0x7f3a12345000
//! resize ptr=0x7f3a12345000 len=100 align=8 new_len=200 ra=0x55e0c0ffee00 -> true
//! remap ptr=0x7f3a12345000 len=200 align=8 new_len=4000 ra=0x55e0c0ffee00 -> 0x7f3a12350000
//! free ptr=0x7f3a12350000 len=4000 align=8 ra=0x55e0c0ffee00
//! ```
//!
//! A failed alloc/remap shows `-> null`, a failed resize `-> false`. Calls
//! whose lengths (`len` and `new_len`) are all below `min_len` are not
//! logged. Lines are formatted into a stack buffer; nothing is allocated, so
//! the wrapper may sit under a malloc replacement. Write errors are ignored.
//! As thread-safe as the child; lines from several threads do not
//! interleave on pipes and regular files, since each line is one write.

use core::ffi::c_int;
use core::ptr::{self, NonNull};
use libc::size_t;

use crate::sys::write::Writer;

use crate::allocators::handle;
use crate::vtable::{ChildAllocator, RawAllocator, la_allocator, la_vtable, vtable_of};

/// A logging wrapper (opaque): an allocator whose calls are written to an fd.
#[allow(non_camel_case_types)]
pub struct la_logging {
    child: ChildAllocator,
    fd: i32,
    min_len: usize,
}

static VTABLE: la_vtable = vtable_of::<la_logging>();

/// One log line, formatted on the stack by the crate's writer and written
/// with one `write(2)` when it ends.
struct Line(Writer<256>);

impl Line {
    fn new(fd: i32, op: &str) -> Line {
        let mut w = Writer::fd_sized(fd);
        w.str(op);
        Line(w)
    }

    fn str(&mut self, s: &str) {
        self.0.str(s);
    }

    /// ` name=<decimal>`
    fn dec(&mut self, name: &str, v: usize) {
        self.0.str(" ").str(name).str("=").u64(v as u64);
    }

    /// ` name=0x<hex>`
    fn hex(&mut self, name: &str, v: usize) {
        self.0.str(" ").str(name).str("=").hex(v);
    }

    /// ` -> 0x<hex>` or ` -> null`
    fn result_ptr(&mut self, p: *const u8) {
        if p.is_null() {
            self.0.str(" -> null");
        } else {
            self.0.str(" -> ").hex(p as usize);
        }
    }

    /// Ends the line; dropping the writer writes it.
    fn emit(mut self) {
        self.0.str("\n");
    }
}

impl la_logging {
    #[inline]
    fn wants(&self, len: usize, new_len: usize) -> bool {
        len.max(new_len) >= self.min_len
    }
}

/// Alignment in bytes, for the log (alignments reaching here are < 64).
#[inline]
fn align_bytes(alignment: u8) -> usize {
    crate::alignment::to_bytes(alignment).unwrap_or(0)
}

// SAFETY: every call is forwarded unchanged to the child, whose result is
// returned unchanged; logging only reads the arguments and the result.
unsafe impl RawAllocator for la_logging {
    unsafe fn alloc(&self, len: usize, alignment: u8, ret_addr: usize) -> *mut u8 {
        // SAFETY: the child is valid while the wrapper lives.
        let p = match unsafe { self.child.alloc(len, alignment, ret_addr) } {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        };
        if self.wants(len, 0) {
            let mut l = Line::new(self.fd, "alloc");
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.hex("ra", ret_addr);
            l.result_ptr(p);
            l.emit();
        }
        p
    }

    unsafe fn resize(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> bool {
        // SAFETY: forwarded vtable promise.
        let ok = unsafe { self.child.resize(memory, len, alignment, new_len, ret_addr) };
        if self.wants(len, new_len) {
            let mut l = Line::new(self.fd, "resize");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.dec("new_len", new_len);
            l.hex("ra", ret_addr);
            l.str(if ok { " -> true" } else { " -> false" });
            l.emit();
        }
        ok
    }

    unsafe fn remap(
        &self,
        memory: *mut u8,
        len: usize,
        alignment: u8,
        new_len: usize,
        ret_addr: usize,
    ) -> *mut u8 {
        // SAFETY: forwarded vtable promise.
        let p = match unsafe { self.child.remap(memory, len, alignment, new_len, ret_addr) } {
            Some(p) => p.as_ptr(),
            None => ptr::null_mut(),
        };
        if self.wants(len, new_len) {
            let mut l = Line::new(self.fd, "remap");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.dec("new_len", new_len);
            l.hex("ra", ret_addr);
            l.result_ptr(p);
            l.emit();
        }
        p
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: forwarded vtable promise.
        unsafe { self.child.free(memory, len, alignment, ret_addr) };
        if self.wants(len, 0) {
            let mut l = Line::new(self.fd, "free");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.hex("ra", ret_addr);
            l.emit();
        }
    }
}

/// Creates a logging wrapper: every call is forwarded to `child` and
/// described by one line written to `fd`:
/// `alloc len=N align=B ra=0xR -> 0xP|null`,
/// `resize ptr=0xP len=N align=B new_len=M ra=0xR -> true|false`,
/// `remap ptr=0xP len=N align=B new_len=M ra=0xR -> 0xQ|null`,
/// `free ptr=0xP len=N align=B ra=0xR` (`align` in bytes).
///
/// Parameters: `child` the allocator doing the work (it must outlive the
/// wrapper); `fd` an open file descriptor (not closed by the wrapper);
/// `min_len` calls whose lengths are all below it are not logged (0 logs
/// everything).
///
/// Returns: the wrapper, or NULL when `child` has a NULL vtable, `fd` is
/// negative, or the system is out of memory. The handle does not come from
/// `child`.
///
/// Thread safety: the wrapper is as thread-safe as `child`; each line is one
/// `write(2)`. Nothing is allocated while logging.
#[unsafe(no_mangle)]
pub extern "C" fn la_logging_create(
    child: la_allocator,
    fd: c_int,
    min_len: size_t,
) -> *mut la_logging {
    let child = ChildAllocator(child);
    if !child.is_valid() || fd < 0 {
        return ptr::null_mut();
    }
    match handle::create(la_logging { child, fd, min_len }) {
        Some(p) => p.as_ptr(),
        None => ptr::null_mut(),
    }
}

/// The allocator interface of a logging wrapper.
///
/// Returns: the allocator, valid until `la_logging_destroy(lg)`; for a NULL
/// `lg` one whose every call fails.
///
/// Thread safety: as thread-safe as the wrapped child.
#[unsafe(no_mangle)]
pub extern "C" fn la_logging_allocator(lg: *mut la_logging) -> la_allocator {
    la_allocator::of_handle(lg, &VTABLE)
}

/// Destroys a logging wrapper (the fd stays open; blocks allocated through
/// the wrapper belong to the child).
///
/// Parameters: `lg` the wrapper; NULL does nothing.
///
/// Thread safety: no thread may be using the wrapper's allocator.
///
/// # Safety
/// `lg` is NULL or a live wrapper not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn la_logging_destroy(lg: *mut la_logging) {
    if let Some(p) = NonNull::new(lg) {
        // SAFETY: a live wrapper from la_logging_create (caller's promise).
        unsafe { handle::destroy(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocators::c::la_c_allocator;
    use crate::vtable::{la_raw_alloc, la_raw_free, la_raw_remap, la_raw_resize};
    use std::io::Read;
    use std::os::fd::FromRawFd;

    fn pipe() -> (i32, std::fs::File) {
        let (r, w) = crate::sys::fd::pipe().unwrap();
        // SAFETY: r is a fresh descriptor owned by the File from now on.
        (w, unsafe { std::fs::File::from_raw_fd(r) })
    }

    #[test]
    fn line_format() {
        let (w, mut r) = pipe();
        let lg = la_logging_create(la_c_allocator(), w, 0);
        assert!(!lg.is_null());
        // SAFETY: live wrapper; blocks freed once.
        let (p, q) = unsafe {
            let a = la_logging_allocator(lg);
            let p = la_raw_alloc(a, 100, 3, 0x1234);
            assert!(la_raw_resize(a, p, 100, 3, 50, 0x1234));
            let q = la_raw_remap(a, p, 50, 3, 1 << 20, 0xab);
            assert!(!q.is_null());
            la_raw_free(a, q, 1 << 20, 3, 0);
            assert!(la_raw_alloc(a, usize::MAX / 2, 3, 7).is_null());
            la_logging_destroy(lg);
            crate::sys::fd::close(w);
            (p as usize, q as usize)
        };
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        let expect = format!(
            "alloc len=100 align=8 ra=0x1234 -> {p:#x}\n\
             resize ptr={p:#x} len=100 align=8 new_len=50 ra=0x1234 -> true\n\
             remap ptr={p:#x} len=50 align=8 new_len=1048576 ra=0xab -> {q:#x}\n\
             free ptr={q:#x} len=1048576 align=8 ra=0x0\n\
             alloc len={} align=8 ra=0x7 -> null\n",
            usize::MAX / 2
        );
        assert_eq!(s, expect);
    }

    #[test]
    fn min_len_filter() {
        let (w, mut r) = pipe();
        let lg = la_logging_create(la_c_allocator(), w, 64);
        // SAFETY: live wrapper; blocks freed once.
        unsafe {
            let a = la_logging_allocator(lg);
            let small = la_raw_alloc(a, 8, 0, 0);
            let big = la_raw_alloc(a, 64, 0, 0);
            la_raw_free(a, small, 8, 0, 0);
            la_raw_free(a, big, 64, 0, 0);
            la_logging_destroy(lg);
            crate::sys::fd::close(w);
        }
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s.lines().count(), 2, "{s}");
        assert!(s.lines().all(|l| l.contains("len=64")));
    }

    #[test]
    fn null_handles() {
        assert!(la_logging_create(la_allocator::NULL, 2, 0).is_null());
        assert!(la_logging_create(la_c_allocator(), -1, 0).is_null());
        // SAFETY: NULL handles must be refused.
        unsafe {
            assert!(la_raw_alloc(la_logging_allocator(ptr::null_mut()), 8, 0, 0).is_null());
            la_logging_destroy(ptr::null_mut());
        }
    }
}
