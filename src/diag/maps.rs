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
    let (offset, _) = hex(rest.get(5..).unwrap_or(&[]));
    // Skip perms, offset, dev, inode: the name starts after the 5th field.
    let mut fields = 0;
    let mut i = 0;
    while i < rest.len() && fields < 4 {
        if rest[i] == b' ' {
            fields += 1;
            while i + 1 < rest.len() && rest[i + 1] == b' ' && fields < 4 {
                i += 1;
            }
        }
        i += 1;
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
    fn finds_own_stack() {
        let x = 5u64;
        let a = &x as *const u64 as usize;
        let (lo, hi) = containing(a).unwrap();
        assert!(lo <= a && a < hi);
    }
}
