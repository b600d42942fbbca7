//! Report output: a small buffered writer to a file descriptor.
//!
//! It implements `core::fmt::Write`, so reports use `write!` with integers
//! and byte strings; formatting integers never allocates. Output is written
//! with `write(2)` when the 4 KiB buffer fills and on drop, so a report is
//! emitted in few system calls and nothing touches stdio or `malloc`.

use core::fmt;

/// A buffered writer to a raw file descriptor.
pub struct Out {
    fd: i32,
    n: usize,
    buf: [u8; 4096],
}

impl Out {
    /// A writer to `fd` (2 for stderr).
    pub fn new(fd: i32) -> Self {
        Out {
            fd,
            n: 0,
            buf: [0; 4096],
        }
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, mut s: &[u8]) {
        while !s.is_empty() {
            if self.n == self.buf.len() {
                self.flush();
            }
            let k = s.len().min(self.buf.len() - self.n);
            self.buf[self.n..self.n + k].copy_from_slice(&s[..k]);
            self.n += k;
            s = &s[k..];
        }
    }

    /// Writes out what is buffered (retrying short writes, ignoring errors:
    /// a report has nowhere else to go).
    pub fn flush(&mut self) {
        let mut off = 0;
        while off < self.n {
            // SAFETY: buf[off..n] is initialised memory we own.
            let w = unsafe { libc::write(self.fd, self.buf[off..].as_ptr().cast(), self.n - off) };
            if w <= 0 {
                // SAFETY: reading errno has no preconditions.
                if w < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
                    continue;
                }
                break;
            }
            off += w as usize;
        }
        self.n = 0;
    }
}

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.flush();
    }
}
