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

/// One log line, built on the stack.
struct Line {
    buf: [u8; 256],
    n: usize,
}

impl Line {
    fn new(op: &str) -> Line {
        let mut l = Line {
            buf: [0; 256],
            n: 0,
        };
        l.str(op);
        l
    }

    fn str(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if self.n < self.buf.len() {
                self.buf[self.n] = b;
                self.n += 1;
            }
        }
    }

    fn digits(&mut self, mut v: usize, base: usize) {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b"0123456789abcdef"[v % base];
            v /= base;
            if v == 0 {
                break;
            }
        }
        for &b in &tmp[i..] {
            if self.n < self.buf.len() {
                self.buf[self.n] = b;
                self.n += 1;
            }
        }
    }

    /// ` name=<decimal>`
    fn dec(&mut self, name: &str, v: usize) {
        self.str(" ");
        self.str(name);
        self.str("=");
        self.digits(v, 10);
    }

    /// ` name=0x<hex>`
    fn hex(&mut self, name: &str, v: usize) {
        self.str(" ");
        self.str(name);
        self.str("=0x");
        self.digits(v, 16);
    }

    /// ` -> 0x<hex>` or ` -> null`
    fn result_ptr(&mut self, p: *const u8) {
        if p.is_null() {
            self.str(" -> null");
        } else {
            self.str(" -> 0x");
            self.digits(p as usize, 16);
        }
    }

    /// Writes the line and its newline with as few `write` calls as the fd
    /// allows (one, normally).
    fn emit(mut self, fd: i32) {
        self.str("\n");
        let mut off = 0;
        while off < self.n {
            // SAFETY: the range lies inside `buf`; write(2) only reads it.
            let w = unsafe { libc::write(fd, self.buf[off..].as_ptr().cast(), self.n - off) };
            if w > 0 {
                off += w as usize;
            } else if w < 0 && errno() == libc::EINTR {
                continue;
            } else {
                return;
            }
        }
    }
}

/// The calling thread's `errno` (read without going through std).
#[inline]
fn errno() -> i32 {
    // SAFETY: __errno_location returns the thread's valid errno slot.
    unsafe { *libc::__errno_location() }
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
            let mut l = Line::new("alloc");
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.hex("ra", ret_addr);
            l.result_ptr(p);
            l.emit(self.fd);
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
            let mut l = Line::new("resize");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.dec("new_len", new_len);
            l.hex("ra", ret_addr);
            l.str(if ok { " -> true" } else { " -> false" });
            l.emit(self.fd);
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
            let mut l = Line::new("remap");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.dec("new_len", new_len);
            l.hex("ra", ret_addr);
            l.result_ptr(p);
            l.emit(self.fd);
        }
        p
    }

    unsafe fn free(&self, memory: *mut u8, len: usize, alignment: u8, ret_addr: usize) {
        // SAFETY: forwarded vtable promise.
        unsafe { self.child.free(memory, len, alignment, ret_addr) };
        if self.wants(len, 0) {
            let mut l = Line::new("free");
            l.hex("ptr", memory as usize);
            l.dec("len", len);
            l.dec("align", align_bytes(alignment));
            l.hex("ra", ret_addr);
            l.emit(self.fd);
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
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: fds[0] is a fresh descriptor owned by the File from now on.
        (fds[1], unsafe { std::fs::File::from_raw_fd(fds[0]) })
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
            libc::close(w);
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
            libc::close(w);
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
