//! Report formatting, shaped like the sanitizers' so people can read them
//! and CI can grep them.
//!
//! A misuse report starts with `liballoc: error: <what>` and lists the
//! relevant traces (allocation, first free, this call), each frame as
//! `#N 0xADDR in function file:line` (or `(module+0xOFF)` when there is no
//! line information). Symbolization happens here, once per report, for all
//! the addresses it prints. Nothing here allocates through `malloc`.

use core::fmt::Write;

use super::scratch::Scratch;
use super::symbolize::{Symbol, Symbols};
use crate::sys::write::Writer;

/// The report buffer's size: a report goes out in few `write` calls.
const REPORT_BUF: usize = 4096;

/// The writer reports are printed with: `sys`'s writer with a 4 KiB
/// buffer, flushed when full and when dropped.
pub type Out = Writer<REPORT_BUF>;

/// One trace to print: a label ("allocated by thread 12 here") and frames.
pub struct TraceRef<'a> {
    /// What the trace shows ("freed"), printed before it as `freed by
    /// thread 12 here:`, or `freed here:` without a thread.
    pub label: &'a str,
    /// The kernel thread id that took the trace (0: not shown).
    pub tid: u32,
    /// Return addresses, innermost first.
    pub frames: &'a [usize],
}

/// Prints `frames` as numbered lines, using already resolved symbols.
pub fn frames(out: &mut Out, syms: &Symbols, frames: &[usize]) {
    if frames.is_empty() {
        out.bytes(b"    <no stack trace: stack_trace_frames is 0>\n");
    }
    for (i, &a) in frames.iter().enumerate() {
        frame(out, i, &syms.get(a));
    }
}

fn frame(out: &mut Out, i: usize, s: &Symbol) {
    let _ = write!(out, "    #{} 0x{:x} in ", i, s.addr);
    if s.func.is_empty() {
        out.bytes(b"??");
    } else {
        out.bytes(s.func);
    }
    if !s.file_line.is_empty() {
        out.bytes(b" ");
        out.bytes(s.file_line);
    } else if !s.module.is_empty() {
        out.bytes(b" (");
        out.bytes(s.module);
        let _ = write!(out, "+0x{:x})", s.offset);
    }
    out.bytes(b"\n");
}

/// Prints a misuse report: the headline (already written by `head`) and
/// each trace, symbolized together.
pub fn misuse(fd: i32, head: impl FnOnce(&mut Out), traces: &[TraceRef<'_>]) {
    let mut out = Out::fd_sized(fd);
    out.bytes(b"liballoc: error: ");
    head(&mut out);
    out.bytes(b"\n");
    let mut addrs = [0usize; 8 * super::trace::MAX_FRAMES];
    let mut n = 0;
    for t in traces {
        for &a in t.frames {
            if n < addrs.len() {
                addrs[n] = a;
                n += 1;
            }
        }
    }
    let mut scratch = Scratch::new();
    let syms = Symbols::resolve(&mut scratch, &addrs[..n]);
    for t in traces {
        if t.tid != 0 {
            let _ = writeln!(out, "  {} by thread {} here:", t.label, t.tid);
        } else {
            let _ = writeln!(out, "  {} here:", t.label);
        }
        frames(&mut out, &syms, t.frames);
    }
    out.bytes(b"\n");
}
