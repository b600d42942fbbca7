//! Reads `/proc/self/maps` without allocating: one line at a time through
//! a stack buffer (`sys::fd::for_each_record`).
//!
//! Used to find the current thread's stack bounds (for the frame-pointer walk
//! and the leak scan) and the writable mappings to scan as roots.

use crate::sys::fd;

/// One line of `/proc/self/maps`.
pub struct Mapping<'a> {
    /// The first address of the mapping.
    pub lo: usize,
    /// The address just past its end.
    pub hi: usize,
    /// Its pages may be read (`r`).
    pub readable: bool,
    /// Its pages may be written (`w`).
    pub writable: bool,
    /// Its pages may be executed (`x`).
    pub executable: bool,
    /// The permission field as written (`r-xp`).
    pub perms: &'a [u8],
    /// The offset of the mapping in its file.
    pub offset: usize,
    /// The file or pseudo-name (`[stack]`, `[heap]`), empty for anonymous.
    pub name: &'a [u8],
}

fn hex(s: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut i = 0;
    while i < s.len() {
        let d = match s[i] {
            b'0'..=b'9' => s[i] - b'0',
            b'a'..=b'f' => s[i] - b'a' + 10,
            _ => break,
        };
        v = v.wrapping_mul(16).wrapping_add(d as usize);
        i += 1;
    }
    (v, i)
}

fn parse(line: &[u8]) -> Option<Mapping<'_>> {
    let (lo, n) = hex(line);
    let rest = line.get(n + 1..)?;
    let (hi, n) = hex(rest);
    let rest = rest.get(n + 1..)?;
    let perms = rest.get(..4)?;
    let (offset, n) = hex(rest.get(5..).unwrap_or(&[]));
    // Past perms and offset, then the device and the inode: the name
    // follows, after the spaces that pad it to a fixed column (skipped a
    // word at a time: most lines have two dozen).
    let mut i = 5 + n;
    for _ in 0..2 {
        while i < rest.len() && rest[i] == b' ' {
            i += 1;
        }
        while i < rest.len() && rest[i] != b' ' {
            i += 1;
        }
    }
    while let Some(w) = rest.get(i..i + 8)
        && w == b"        "
    {
        i += 8;
    }
    while i < rest.len() && rest[i] == b' ' {
        i += 1;
    }
    Some(Mapping {
        lo,
        hi,
        readable: perms[0] == b'r',
        writable: perms[1] == b'w',
        executable: perms[2] == b'x',
        perms,
        offset,
        name: rest.get(i..).unwrap_or(&[]),
    })
}

/// Calls `f` for each mapping until it returns false. Returns false when the
/// file could not be read.
pub fn for_each(mut f: impl FnMut(&Mapping<'_>) -> bool) -> bool {
    let Some(fd) = fd::open_read(c"/proc/self/maps") else {
        return false;
    };
    // A line longer than the buffer (a very long path) is cut; its
    // addresses and permissions come first and stay whole.
    let mut buf = [0u8; 8192];
    fd::for_each_record(fd, b'\n', &mut buf, |line| match parse(line) {
        Some(m) => f(&m),
        None => true,
    });
    fd::close(fd);
    true
}

/// The bounds `[lo, hi)` of the mapping holding `addr`, if any.
pub fn containing(addr: usize) -> Option<(usize, usize)> {
    let mut found = None;
    for_each(|m| {
        if m.lo <= addr && addr < m.hi {
            found = Some((m.lo, m.hi));
            false
        } else {
            true
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_and_without_names() {
        let line = b"7f0000001000-7f0000003000 r-xp 0002a000 fe:00 5309044                    /usr/lib/x/libc.so.6";
        let m = parse(line).unwrap();
        assert_eq!(
            (m.lo, m.hi, m.offset),
            (0x7f00_0000_1000, 0x7f00_0000_3000, 0x2a000)
        );
        assert!(m.readable && !m.writable && m.executable);
        assert_eq!(m.perms, b"r-xp");
        assert_eq!(m.name, b"/usr/lib/x/libc.so.6");
        let anon = parse(b"7ffd3e35f000-7ffd3e380000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.name, b"");
        assert!(anon.writable && !anon.executable);
        let spaced = parse(b"1000-2000 rw-p 00000000 00:00 0      [stack]").unwrap();
        assert_eq!(spaced.name, b"[stack]");
        let bare = parse(b"1000-2000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(bare.name, b"");
        // A name with spaces in it stays whole.
        let odd = parse(b"1000-2000 r--p 00000000 08:01 12   /tmp/a b  c").unwrap();
        assert_eq!(odd.name, b"/tmp/a b  c");
        assert!(parse(b"").is_none());
        assert!(parse(b"1000-2000").is_none());
    }

    #[test]
    fn finds_own_stack() {
        let x = 5u64;
        let a = &x as *const u64 as usize;
        let (lo, hi) = containing(a).unwrap();
        assert!(lo <= a && a < hi);
    }
}
