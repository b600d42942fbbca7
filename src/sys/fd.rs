//! File descriptors: open, read, write, close, with `EINTR` retried in one
//! place.
//!
//! [`read`] and [`write_all`] retry a call a signal interrupted, and
//! [`write_all`] also retries short writes, so no caller writes its own
//! loop. [`for_each_record`] reads a file of separated records (the
//! NUL-separated `/proc/self/environ`, the lines of `/proc/self/maps` or of
//! a pipe) through a caller's stack buffer. Descriptors are plain `c_int`s
//! owned by the caller, who closes them with [`close`]. Failures are
//! `None` / `false`; `errno` is left as it was.

use super::errno;
use core::ffi::{CStr, c_int};

/// Opens `path` for reading (`O_RDONLY | O_CLOEXEC`); `None` when it cannot
/// be opened.
pub fn open_read(path: &CStr) -> Option<c_int> {
    // SAFETY: a NUL-terminated path; open does not allocate.
    let fd = errno::keep(|| unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) });
    (fd >= 0).then_some(fd)
}

/// Opens `path` for appending, creating it with mode 0644 (less the
/// umask): `O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC`. The descriptor, or
/// `None` when it cannot be opened.
pub fn open_append(path: &CStr) -> Option<c_int> {
    open_write(path, libc::O_APPEND).ok()
}

/// Opens `path` for writing from an empty file, creating it with mode 0644
/// (less the umask) and emptying what was there: `O_WRONLY | O_CREAT |
/// O_TRUNC | O_APPEND | O_CLOEXEC`. The descriptor, or the `errno` of the
/// failure.
pub fn open_truncate(path: &CStr) -> Result<c_int, c_int> {
    open_write(path, libc::O_TRUNC | libc::O_APPEND)
}

/// Opens `path` for appending (creating it, mode 0644 less the umask) and
/// takes an exclusive `flock` on it without waiting: `Ok(Some(fd))` when
/// the lock was free, with the file emptied (the lock stays with the
/// descriptor, and so with the process, until it is closed; a child of
/// `fork()` shares it); `Ok(None)` when another process holds it (the file
/// is left as it was); `Err(errno)` when the file cannot be opened. A file
/// system without `flock` (`ENOLCK`, `EINVAL`) counts as a free lock.
pub fn claim_file(path: &CStr) -> Result<Option<c_int>, c_int> {
    let fd = open_write(path, libc::O_APPEND)?;
    let (rc, err) =
        // SAFETY: flock on our own descriptor has no memory preconditions.
        errno::keep_with(|| unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) });
    if rc != 0 && err == libc::EWOULDBLOCK {
        close(fd);
        return Ok(None);
    }
    // SAFETY: ftruncate on our own descriptor has no memory preconditions.
    let (rc, err) = errno::keep_with(|| unsafe { libc::ftruncate(fd, 0) });
    if rc != 0 {
        close(fd);
        return Err(err);
    }
    Ok(Some(fd))
}

/// Whether a file could be created in the directory of `path` (the part
/// before its last `/`, or the working directory): `access(dir, W_OK |
/// X_OK)`, without creating anything. `Err` holds the `errno` of the
/// failure (`ENAMETOOLONG` when the directory's name does not fit 512
/// bytes).
pub fn dir_writable(path: &[u8]) -> Result<(), c_int> {
    let dir: &[u8] = match path.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &path[..i],
        None => b".",
    };
    let mut buf = [0u8; 512];
    if dir.len() >= buf.len() || dir.contains(&0) {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..dir.len()].copy_from_slice(dir);
    let (r, err) = errno::keep_with(|| {
        // SAFETY: a NUL-terminated path (the buffer's zeros after it);
        // access does not allocate.
        unsafe { libc::access(buf.as_ptr().cast(), libc::W_OK | libc::X_OK) }
    });
    if r == 0 { Ok(()) } else { Err(err) }
}

/// `open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644)`.
fn open_write(path: &CStr, flags: c_int) -> Result<c_int, c_int> {
    let (fd, err) = errno::keep_with(|| {
        // SAFETY: a NUL-terminated path; open does not allocate.
        unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | flags,
                0o644 as libc::c_uint,
            )
        }
    });
    if fd >= 0 { Ok(fd) } else { Err(err) }
}

/// Reads up to `buf.len()` bytes (retrying `EINTR`): the count, 0 at end
/// of file, `None` on an error.
pub fn read(fd: c_int, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: buf is writable for its length.
        let (n, err) =
            errno::keep_with(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) });
        if n >= 0 {
            return Some(n as usize);
        }
        if err != libc::EINTR {
            return None;
        }
    }
}

/// Reads until `buf` is full or the file ends; the bytes read (errors end
/// the read like the end of file).
pub fn read_full(fd: c_int, buf: &mut [u8]) -> usize {
    let mut have = 0;
    while have < buf.len() {
        match read(fd, &mut buf[have..]) {
            Some(n) if n > 0 => have += n,
            _ => break,
        }
    }
    have
}

/// Reads the start of the file at `path` into `buf`; the bytes read, or
/// `None` when it cannot be opened.
pub fn read_file(path: &CStr, buf: &mut [u8]) -> Option<usize> {
    let fd = open_read(path)?;
    let n = read_full(fd, buf);
    close(fd);
    Some(n)
}

/// Writes all of `bytes` (retrying `EINTR` and short writes); false when
/// the descriptor refused them (the rest is dropped).
pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: bytes is a valid initialised range; write only reads it.
        let (n, err) =
            errno::keep_with(|| unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) });
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && err == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    true
}

/// Calls `f` on each record of `fd` (records end with `sep`; the last one
/// may not), until it returns false or the file ends, reading through
/// `buf`. A record longer than `buf` is passed cut to `buf.len()` bytes
/// (the rest is skipped). Returns false when `f` stopped the walk.
pub fn for_each_record(
    fd: c_int,
    sep: u8,
    buf: &mut [u8],
    mut f: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut have = 0;
    // True while the rest of an over-long record is being skipped.
    let mut skipping = false;
    loop {
        let n = match read(fd, &mut buf[have..]) {
            Some(n) if n > 0 => n,
            _ => break,
        };
        have += n;
        let mut start = 0;
        while let Some(end) = find_byte(&buf[start..have], sep) {
            if !skipping && !f(&buf[start..start + end]) {
                return false;
            }
            skipping = false;
            start += end + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            if !skipping && !f(buf) {
                return false;
            }
            skipping = true;
            have = 0;
        }
    }
    skipping || have == 0 || f(&buf[..have])
}

/// The index of the first `c` in `s` (the C library's `memchr`, many bytes
/// a step: a scan byte by byte cost a `/proc/self/maps` read a few
/// instructions per byte).
fn find_byte(s: &[u8], c: u8) -> Option<usize> {
    // SAFETY: memchr reads at most s.len() bytes of s.
    let p = unsafe { libc::memchr(s.as_ptr().cast(), c_int::from(c), s.len()) };
    (!p.is_null()).then(|| p as usize - s.as_ptr() as usize)
}

/// Reads the target of the symbolic link at `path` into `buf` (not
/// NUL-terminated, cut to `buf.len()`); the length, or `None`.
pub fn read_link(path: &CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: a NUL-terminated path; readlink writes at most buf.len()
    // bytes into buf.
    let n = errno::keep(|| unsafe {
        libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    });
    (n > 0).then_some(n as usize)
}

/// Whether the file at `path` exists and the process may execute it
/// (`access(X_OK)`).
pub fn is_executable(path: &CStr) -> bool {
    // SAFETY: a NUL-terminated path; access only reads it.
    errno::keep(|| unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 })
}

/// A close-on-exec copy of `fd` numbered `min` or above
/// (`F_DUPFD_CLOEXEC`), out of the way of descriptors a program manages
/// itself; `None` when it cannot be made.
pub fn dup_above(fd: c_int, min: c_int) -> Option<c_int> {
    // SAFETY: fcntl on descriptor numbers has no memory preconditions.
    let copy = errno::keep(|| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) });
    (copy >= 0).then_some(copy)
}

/// Makes a pipe (`O_CLOEXEC`): `(read end, write end)`, or `None`.
pub fn pipe() -> Option<(c_int, c_int)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    let rc = errno::keep(|| unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) });
    (rc == 0).then_some((fds[0], fds[1]))
}

/// Closes a descriptor this process opened (errors ignored).
pub fn close(fd: c_int) {
    // SAFETY: closing a descriptor has no memory preconditions.
    errno::keep(|| unsafe { libc::close(fd) });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_file_is_emptied_and_held_until_closed() {
        let dir = std::env::temp_dir().join(std::format!("la_claim_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("shared.raw");
        std::fs::write(&file, b"an earlier run").unwrap();
        let mut name = file.to_str().unwrap().as_bytes().to_vec();
        name.push(0);
        let path = CStr::from_bytes_with_nul(&name).unwrap();
        let fd = claim_file(path).unwrap().expect("the lock is free");
        assert_eq!(std::fs::read(&file).unwrap(), b"", "emptied");
        std::fs::write(&file, b"ours").unwrap();
        // Another open file description (another process's) finds it held,
        // and leaves the file alone.
        assert_eq!(claim_file(path), Ok(None));
        assert_eq!(std::fs::read(&file).unwrap(), b"ours");
        close(fd);
        let again = claim_file(path).unwrap().expect("free once closed");
        close(again);
        let missing = dir.join("no/such/p.raw");
        let mut name = missing.to_str().unwrap().as_bytes().to_vec();
        name.push(0);
        let missing = CStr::from_bytes_with_nul(&name).unwrap();
        assert_eq!(claim_file(missing), Err(libc::ENOENT));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_are_checked_without_creating_anything() {
        let dir = std::env::temp_dir().join(std::format!("la_dirw_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.1.raw");
        let path = file.to_str().unwrap().as_bytes();
        assert_eq!(dir_writable(path), Ok(()));
        assert!(!file.exists(), "nothing is created");
        let missing = dir.join("no/such/p.raw");
        assert_eq!(
            dir_writable(missing.to_str().unwrap().as_bytes()),
            Err(libc::ENOENT)
        );
        // A name without a directory is checked in the working directory.
        assert_eq!(dir_writable(b"p.raw"), Ok(()));
        let long = [b'a'; 600];
        assert_eq!(
            dir_writable(&[&long[..], b"/p"].concat()),
            Err(libc::ENAMETOOLONG)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn records(input: &[u8], buf_len: usize) -> std::vec::Vec<std::vec::Vec<u8>> {
        let (r, w) = pipe().unwrap();
        assert!(write_all(w, input));
        close(w);
        let mut buf = std::vec![0u8; buf_len];
        let mut out = std::vec::Vec::new();
        assert!(for_each_record(r, b'\n', &mut buf, |rec| {
            out.push(rec.to_vec());
            true
        }));
        close(r);
        out
    }

    #[test]
    fn records_split_across_reads_and_cut_when_long() {
        assert_eq!(
            records(b"ab\ncd\nef", 4),
            [b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]
        );
        assert_eq!(
            records(b"abcdefgh\nxy\n", 4),
            [b"abcd".to_vec(), b"xy".to_vec()]
        );
        assert!(records(b"", 4).is_empty());
    }

    #[test]
    fn reads_a_file_and_keeps_errno() {
        errno::set(4321);
        let mut buf = [0u8; 64];
        let n = read_file(c"/proc/self/statm", &mut buf).unwrap();
        assert!(n > 0 && buf[0].is_ascii_digit());
        assert!(read_file(c"/nonexistent/file", &mut buf).is_none());
        assert_eq!(open_truncate(c"/nonexistent/file"), Err(libc::ENOENT));
        assert!(!write_all(-1, b"x"));
        assert!(read_link(c"/proc/self/exe", &mut buf).is_some_and(|n| buf[0] == b'/' && n > 1));
        assert!(read_link(c"/nonexistent/link", &mut buf).is_none());
        assert!(is_executable(c"/bin/sh"));
        let copy = dup_above(2, 100).unwrap();
        assert!(copy >= 100);
        close(copy);
        assert!(dup_above(-1, 100).is_none());
        assert!(!is_executable(c"/nonexistent/file"));
        assert_eq!(errno::get(), 4321);
    }
}
