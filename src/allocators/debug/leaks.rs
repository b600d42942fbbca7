//! Leak reports, shaped like LeakSanitizer's.
//!
//! The leaks are the live blocks nothing reachable points to (when asked,
//! reachability from the program's roots: see `roots.rs`). Each is
//! classified as LeakSanitizer does: a leak that another leaked block
//! points to (start or interior, a block's pointers to itself aside) is
//! *indirect*; the others are *direct*, so the root of a leaked structure
//! stands out. The blocks of a leaked cycle all point to one another, so
//! they are all indirect, as LeakSanitizer reports them.
//!
//! Blocks whose allocation trace matches a suppression pattern (the
//! `leak:pattern` lines of an LSan suppressions file: `*` matches anything,
//! a pattern matches a function name, file or module path anywhere) and
//! blocks made before the program started are suppressed, and so is every
//! leak reachable from a suppressed block: it belongs to that block.
//!
//! Groups (class and allocation trace) are printed direct first, each
//! class largest first, as "Direct leak of N byte(s) in M object(s)
//! allocated from:" (or "Indirect leak of ...") with numbered, symbolized
//! frames; then, when a listed pattern matched, a "Suppressions used:"
//! table (objects and bytes per pattern); the report closes with
//! "SUMMARY: liballoc: X byte(s) leaked in Y allocation(s)." counting
//! direct and indirect leaks. All memory comes from a private [`Scratch`]
//! arena.

use core::fmt::Write;

use super::roots;
use super::table::{LIVE, Record, Table};
use crate::diag::depot::Depot;
use crate::diag::report::Out;
use crate::diag::scratch::Scratch;
use crate::diag::symbolize::Symbols;

/// How to report.
#[derive(Default)]
pub struct Options<'a> {
    /// Contents of a suppressions file (`leak:pattern` lines); the
    /// patterns that matched are listed under "Suppressions used:".
    pub suppressions: &'a [u8],
    /// More `leak:pattern` lines, applied without being listed (the C
    /// runtime's own blocks).
    pub quiet_suppressions: &'a [u8],
    /// Opens where to print the report instead of the instance's report
    /// descriptor (closed afterwards); called only when there is something
    /// to print. `None` from it: the instance's descriptor after all.
    pub open_log: Option<&'a dyn Fn() -> Option<i32>>,
    /// Leave out blocks reachable from the program's roots (globals,
    /// the current thread's stack).
    pub scan_roots: bool,
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

/// A leaked block nothing leaked points to.
const DIRECT: u8 = 0;
/// A leaked block another leaked block points to.
const INDIRECT: u8 = 1;
/// Matched by a suppression pattern, or made before the program started.
const SUPPRESSED: u8 = 2;
/// Reachable from a suppressed block: not reported.
const HIDDEN: u8 = 3;

/// A live block nothing reachable points to: its record, the index of its
/// shard and its class ([`DIRECT`] ...).
#[derive(Clone, Copy)]
struct Leak {
    r: *mut Record,
    part: usize,
    class: u8,
}

#[derive(Clone, Copy)]
struct Group {
    first: usize,
    count: usize,
    bytes: usize,
}

/// Per listed suppression pattern: objects and bytes it matched.
#[derive(Clone, Copy, Default)]
struct Used {
    count: usize,
    bytes: usize,
}

/// The leak among `leaks` (sorted by address) whose block holds `v` (start
/// or interior), by index.
fn find(leaks: &[Leak], v: usize) -> Option<usize> {
    // SAFETY: the records of the tables being reported (locked).
    let i = leaks.partition_point(|l| unsafe { (*l.r).addr } <= v);
    let i = i.checked_sub(1)?;
    // SAFETY: as above.
    let (a, len) = unsafe { ((*leaks[i].r).addr, (*leaks[i].r).len) };
    (v < a + len.max(1)).then_some(i)
}

/// Calls `f` with the index of every leak (other than `i` itself) that
/// an aligned word of leak `i`'s block points into.
fn for_each_pointee(leaks: &[Leak], i: usize, mut f: impl FnMut(usize)) {
    // SAFETY: the records of the tables being reported (locked).
    let (a, len) = unsafe { ((*leaks[i].r).addr, (*leaks[i].r).len) };
    let (lo, hi) = match (leaks.first(), leaks.last()) {
        // SAFETY: as above.
        (Some(f), Some(l)) => unsafe { ((*f.r).addr, (*l.r).addr + (*l.r).len.max(1)) },
        _ => return,
    };
    let mut p = (a + 7) & !7;
    while p + 8 <= a + len {
        // SAFETY: a live block's user range is readable (the root scan
        // reads it the same way).
        let v = unsafe { *(p as *const usize) };
        if v >= lo
            && v < hi
            && let Some(j) = find(leaks, v)
            && j != i
        {
            f(j);
        }
        p += 8;
    }
}

/// Prints the leak report for the shards `parts` (each a table and the
/// depot of its traces) to `fd`; returns (bytes, blocks) leaked after
/// suppressions (direct and indirect). Prints nothing when nothing leaked
/// and no listed suppression pattern matched.
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
                // SAFETY: as above.
                let made_early = unsafe { (*r).suppressed } != 0;
                all[k] = Leak {
                    r,
                    part,
                    class: if made_early { SUPPRESSED } else { DIRECT },
                };
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
    // The unreached blocks (those made early included: what they point to
    // is theirs, not leaked), by address.
    let mut m = 0;
    for i in 0..all.len() {
        // SAFETY: a valid record; `_pad` is the reachability mark.
        if unsafe { (*all[i].r)._pad == 0 } {
            all[m] = all[i];
            m += 1;
        }
    }
    let list = &mut all[..m];
    if list.iter().all(|l| l.class == SUPPRESSED) {
        return (0, 0);
    }
    // SAFETY: valid records.
    list.sort_unstable_by_key(|l| unsafe { (*l.r).addr });

    // Classes and credited patterns (1-based; 0: none) apart from the
    // list, which the scans below read.
    let (Some(cls), Some(pat)) = (
        scratch.slice::<u8>(list.len()),
        scratch.slice::<u32>(list.len()),
    ) else {
        return (0, 0);
    };
    for (c, l) in cls.iter_mut().zip(list.iter()) {
        *c = l.class;
    }
    let list = &*list;
    // Symbolize each distinct trace of the blocks that may be reported
    // once (not those of blocks made early): an index sorted by trace.
    let Some(order) = scratch.slice::<u32>(list.len()) else {
        return (0, 0);
    };
    let mut k = 0;
    for (i, &c) in cls.iter().enumerate() {
        if c == DIRECT {
            order[k] = i as u32;
            k += 1;
        }
    }
    let order = &mut order[..k];
    order.sort_unstable_by(|&a, &b| trace(&list[a as usize]).cmp(trace(&list[b as usize])));
    let same = |a: u32, b: u32| trace(&list[a as usize]) == trace(&list[b as usize]);
    let mut total_frames = 0;
    for (i, &o) in order.iter().enumerate() {
        if i == 0 || !same(o, order[i - 1]) {
            total_frames += trace(&list[o as usize]).len();
        }
    }
    let Some(addrs) = scratch.slice::<usize>(total_frames) else {
        return (0, 0);
    };
    let mut a = 0;
    for (i, &o) in order.iter().enumerate() {
        if i == 0 || !same(o, order[i - 1]) {
            for &f in trace(&list[o as usize]) {
                addrs[a] = f;
                a += 1;
            }
        }
    }
    let syms = Symbols::resolve(&mut scratch, addrs);
    let matches = |p: &[u8], frames: &[usize]| {
        frames.iter().any(|&f| {
            let s = syms.get(f);
            glob_match(p, s.func) || glob_match(p, s.file_line) || glob_match(p, s.module)
        })
    };
    // Suppression patterns, per distinct trace: the quiet ones first, then
    // the listed ones (the first that matches is credited).
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && same(order[j], order[i]) {
            j += 1;
        }
        let frames = trace(&list[order[i] as usize]);
        let quiet = patterns(opts.quiet_suppressions).any(|p| matches(p, frames));
        let listed = if quiet {
            None
        } else {
            patterns(opts.suppressions).position(|p| matches(p, frames))
        };
        if quiet || listed.is_some() {
            for &o in &order[i..j] {
                if cls[o as usize] == DIRECT {
                    cls[o as usize] = SUPPRESSED;
                    pat[o as usize] = listed.map_or(0, |k| k as u32 + 1);
                }
            }
        }
        i = j;
    }
    // What suppressed blocks point to, directly or not, is theirs: hidden.
    let Some(work) = scratch.slice::<u32>(list.len()) else {
        return (0, 0);
    };
    let mut top = 0;
    for (i, &c) in cls.iter().enumerate() {
        if c == SUPPRESSED {
            work[top] = i as u32;
            top += 1;
        }
    }
    while top > 0 {
        top -= 1;
        let i = work[top] as usize;
        for_each_pointee(list, i, |j| {
            // Each block enters the worklist once, so it never overflows.
            if cls[j] <= INDIRECT && top < work.len() {
                cls[j] = HIDDEN;
                work[top] = j as u32;
                top += 1;
            }
        });
    }
    // A leak another leak points to is indirect (cycles included: each of
    // their blocks is pointed to by another).
    for i in 0..list.len() {
        if cls[i] <= INDIRECT {
            for_each_pointee(list, i, |j| {
                if cls[j] == DIRECT {
                    cls[j] = INDIRECT;
                }
            });
        }
    }
    // Credit the listed patterns.
    let npat = patterns(opts.suppressions).count();
    let Some(used) = scratch.slice::<Used>(npat) else {
        return (0, 0);
    };
    let mut any_used = false;
    for (l, &p) in list.iter().zip(pat.iter()) {
        if p > 0 {
            let u = &mut used[p as usize - 1];
            u.count += 1;
            // SAFETY: a valid record.
            u.bytes += unsafe { (*l.r).len };
            any_used = true;
        }
    }
    // The leaks to report, grouped by class and trace.
    let all_leaks = list;
    let Some(list) = scratch.slice::<Leak>(list.len()) else {
        return (0, 0);
    };
    let mut m = 0;
    for i in 0..all_leaks.len() {
        if cls[i] <= INDIRECT {
            list[m] = Leak {
                class: cls[i],
                ..all_leaks[i]
            };
            m += 1;
        }
    }
    let list = &mut list[..m];
    list.sort_unstable_by(|a, b| a.class.cmp(&b.class).then_with(|| trace(a).cmp(trace(b))));
    let Some(groups) = scratch.slice::<Group>(list.len()) else {
        return (0, 0);
    };
    let mut g = 0;
    for i in 0..list.len() {
        // SAFETY: a valid record.
        let len = unsafe { (*list[i].r).len };
        if i > 0 && list[i].class == list[i - 1].class && trace(&list[i]) == trace(&list[i - 1]) {
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
    groups.sort_unstable_by(|a, b| {
        list[a.first]
            .class
            .cmp(&list[b.first].class)
            .then(b.bytes.cmp(&a.bytes))
            .then(b.count.cmp(&a.count))
    });
    let (mut bytes, mut blocks) = (0, 0);
    for gr in groups.iter() {
        bytes += gr.bytes;
        blocks += gr.count;
    }
    if blocks == 0 && !any_used {
        return (0, 0);
    }
    let log = opts.open_log.and_then(|open| open());
    let mut out = Out::fd_sized(log.unwrap_or(fd));
    if blocks > 0 {
        out.bytes(b"\n=================================================================\n");
        out.bytes(b"liballoc: leak report: detected memory leaks\n\n");
        for gr in groups.iter() {
            let kind = if list[gr.first].class == DIRECT {
                "Direct"
            } else {
                "Indirect"
            };
            let _ = writeln!(
                out,
                "{} leak of {} byte(s) in {} object(s) allocated from:",
                kind, gr.bytes, gr.count
            );
            crate::diag::report::frames(&mut out, &syms, trace(&list[gr.first]));
            out.bytes(b"\n");
        }
    }
    if any_used {
        const RULE: &[u8] = b"-----------------------------------------------------\n";
        out.bytes(RULE);
        out.bytes(b"Suppressions used:\n  count      bytes template\n");
        for (u, p) in used.iter().zip(patterns(opts.suppressions)) {
            if u.count > 0 {
                let _ = write!(out, "{:7} {:10} ", u.count, u.bytes);
                out.bytes(p);
                out.bytes(b"\n");
            }
        }
        out.bytes(RULE);
        out.bytes(b"\n");
    }
    if blocks > 0 {
        let _ = writeln!(
            out,
            "SUMMARY: liballoc: {} byte(s) leaked in {} allocation(s).",
            bytes, blocks
        );
    }
    out.flush();
    if let Some(log) = log {
        crate::sys::close(log);
    }
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
