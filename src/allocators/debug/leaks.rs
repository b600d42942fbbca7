//! Leak reports, shaped like LeakSanitizer's.
//!
//! Live blocks (minus suppressed ones and, when asked, those still reachable
//! from the program's roots: see `roots.rs`) are grouped by allocation
//! trace; groups are printed largest first as "Leak of N byte(s) in M
//! object(s) allocated from:" with numbered, symbolized frames, and the
//! report closes with "SUMMARY: liballoc: X byte(s) leaked in Y
//! allocation(s).". Groups whose frames match a suppression pattern (the
//! `leak:pattern` lines of an LSan suppressions file: `*` matches anything,
//! a pattern matches a function name, file or module path anywhere) are
//! left out. All memory comes from a private [`Scratch`] arena.

use core::cmp::Ordering;
use core::fmt::Write;

use super::depot::Depot;
use super::out::Out;
use super::roots;
use super::scratch::Scratch;
use super::symbolize::Symbols;
use super::table::{LIVE, Record, Table};

/// How to report.
#[derive(Default)]
pub struct Options<'a> {
    /// Contents of a suppressions file (`leak:pattern` lines).
    pub suppressions: &'a [u8],
    /// Leave out blocks reachable from the program's roots (globals,
    /// the current thread's stack).
    pub scan_roots: bool,
}

#[derive(Clone, Copy)]
struct Group {
    first: usize,
    count: usize,
    bytes: usize,
}

/// Whether `text` matches the glob `pat` anywhere (`*` = any run).
pub fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (anchored_start, pat) = match pat.first() {
        Some(b'^') => (true, &pat[1..]),
        _ => (false, pat),
    };
    let (anchored_end, pat) = match pat.last() {
        Some(b'$') => (true, &pat[..pat.len() - 1]),
        _ => (false, pat),
    };
    let segs = pat.split(|&c| c == b'*');
    let nsegs = pat.split(|&c| c == b'*').count();
    let mut pos = 0;
    for (i, seg) in segs.enumerate() {
        if seg.is_empty() {
            continue;
        }
        let first = i == 0 && anchored_start;
        let last = i + 1 == nsegs && anchored_end;
        if first {
            if !text[pos..].starts_with(seg) {
                return false;
            }
            pos += seg.len();
            continue;
        }
        if last {
            return text.len() >= pos + seg.len() && text.ends_with(seg);
        }
        match text[pos..].windows(seg.len()).position(|w| w == seg) {
            Some(k) => pos += k + seg.len(),
            None => return false,
        }
    }
    !anchored_end || nsegs == 0 || pat.ends_with(b"*") || pos == text.len() || pat.is_empty()
}

/// The `leak:` patterns of a suppressions file.
fn patterns(file: &[u8]) -> impl Iterator<Item = &[u8]> {
    file.split(|&c| c == b'\n').filter_map(|line| {
        let line = line.trim_ascii();
        line.strip_prefix(b"leak:")
            .map(|p| p.trim_ascii())
            .filter(|p| !p.is_empty())
    })
}

/// A live block to report: its record and the index of its shard.
#[derive(Clone, Copy)]
struct Leak {
    r: *mut Record,
    part: usize,
}

/// Prints the leak report for the shards `parts` (each a table and the
/// depot of its traces) to `fd`; returns (bytes, blocks) leaked after
/// suppressions. Prints nothing when nothing leaked.
/// `segments`: the modules' writable segments, gathered before the tables'
/// locks were taken (used when `opts.scan_roots`).
pub fn report(
    parts: &[(&Table, &Depot)],
    fd: i32,
    opts: &Options<'_>,
    segments: &roots::Segments,
) -> (usize, usize) {
    // SAFETY: the records of the tables being reported (locked).
    let trace = |l: &Leak| parts[l.part].1.get(unsafe { (*l.r).alloc_stack });
    if parts.is_empty() {
        return (0, 0);
    }
    let mut scratch = Scratch::new();
    // Two walks over the records: one counts the live blocks (and those
    // that may be reported) and clears the reachability marks, one collects
    // the live blocks.
    let (mut live, mut n) = (0, 0);
    for (table, _) in parts {
        table.for_each(|r| {
            // SAFETY: indexed records are valid; `_pad` is the mark.
            unsafe {
                (*r)._pad = 0;
                if (*r).state == LIVE {
                    live += 1;
                    n += ((*r).suppressed == 0) as usize;
                }
            }
        });
    }
    if n == 0 {
        return (0, 0);
    }
    let Some(all) = scratch.slice::<Leak>(live) else {
        return (0, 0);
    };
    let mut k = 0;
    for (part, (table, _)) in parts.iter().enumerate() {
        table.for_each(|r| {
            // SAFETY: indexed records are valid.
            if unsafe { (*r).state } == LIVE && k < live {
                all[k] = Leak { r, part };
                k += 1;
            }
        });
    }
    let all = &mut all[..k];
    if opts.scan_roots {
        let Some(blocks) = scratch.slice::<*mut Record>(all.len()) else {
            return (0, 0);
        };
        for (b, l) in blocks.iter_mut().zip(all.iter()) {
            *b = l.r;
        }
        let tables: [&Table; super::MAX_SHARDS] =
            core::array::from_fn(|i| parts[i.min(parts.len() - 1)].0);
        roots::mark_reachable(
            blocks,
            &tables[..parts.len().min(super::MAX_SHARDS)],
            segments,
            &mut scratch,
        );
    }
    // The leaks: live, not suppressed, not reached.
    let mut m = 0;
    for i in 0..all.len() {
        let r = all[i].r;
        // SAFETY: a valid record; `_pad` is the reachability mark.
        if unsafe { (*r).suppressed == 0 && (*r)._pad == 0 } {
            all[m] = all[i];
            m += 1;
        }
    }
    let list = &mut all[..m];
    if list.is_empty() {
        return (0, 0);
    }
    list.sort_unstable_by(|a, b| trace(a).cmp(trace(b)));
    let Some(groups) = scratch.slice::<Group>(list.len()) else {
        return (0, 0);
    };
    let mut g = 0;
    for i in 0..list.len() {
        // SAFETY: a valid record.
        let len = unsafe { (*list[i].r).len };
        if i > 0 && trace(&list[i]) == trace(&list[i - 1]) {
            groups[g - 1].count += 1;
            groups[g - 1].bytes += len;
        } else {
            groups[g] = Group {
                first: i,
                count: 1,
                bytes: len,
            };
            g += 1;
        }
    }
    let groups = &mut groups[..g];
    groups.sort_unstable_by(|a, b| match b.bytes.cmp(&a.bytes) {
        Ordering::Equal => b.count.cmp(&a.count),
        o => o,
    });
    let mut total_frames = 0;
    for gr in groups.iter() {
        total_frames += trace(&list[gr.first]).len();
    }
    let Some(addrs) = scratch.slice::<usize>(total_frames) else {
        return (0, 0);
    };
    let mut a = 0;
    for gr in groups.iter() {
        for &f in trace(&list[gr.first]) {
            addrs[a] = f;
            a += 1;
        }
    }
    let syms = Symbols::resolve(&mut scratch, addrs);
    let suppressed = |gr: &Group| {
        trace(&list[gr.first]).iter().any(|&f| {
            let s = syms.get(f);
            patterns(opts.suppressions).any(|p| {
                glob_match(p, s.func) || glob_match(p, s.file_line) || glob_match(p, s.module)
            })
        })
    };
    let (mut bytes, mut blocks) = (0, 0);
    for gr in groups.iter() {
        if !suppressed(gr) {
            bytes += gr.bytes;
            blocks += gr.count;
        }
    }
    if blocks == 0 {
        return (0, 0);
    }
    let mut out = Out::new(fd);
    out.bytes(b"\n=================================================================\n");
    out.bytes(b"liballoc: leak report: detected memory leaks\n\n");
    for gr in groups.iter() {
        if suppressed(gr) {
            continue;
        }
        let _ = writeln!(
            out,
            "Leak of {} byte(s) in {} object(s) allocated from:",
            gr.bytes, gr.count
        );
        super::report::frames(&mut out, &syms, trace(&list[gr.first]));
        out.bytes(b"\n");
    }
    let _ = writeln!(
        out,
        "SUMMARY: liballoc: {} byte(s) leaked in {} allocation(s).",
        bytes, blocks
    );
    (bytes, blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"foo", b"libfoo.so"));
        assert!(glob_match(b"lib*.so", b"/usr/lib/libc.so"));
        assert!(!glob_match(b"^foo", b"libfoo"));
        assert!(glob_match(b"^lib", b"libfoo"));
        assert!(glob_match(b"main$", b"not_main"));
        assert!(!glob_match(b"main$", b"main_x"));
        assert!(!glob_match(b"bar", b"foo"));
    }

    #[test]
    fn suppression_lines() {
        let f = b"# comment\nleak:foo\n  leak: bar \ncalled_from_lib:x\n";
        let v: [&[u8]; 2] = [b"foo", b"bar"];
        assert!(patterns(f).eq(v.iter().copied()));
    }
}
