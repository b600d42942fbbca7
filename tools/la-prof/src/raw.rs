//! The raw profile format written by the sampling runtime: a text header,
//! then the dump's traces and samples as binary items.
//!
//! ```text
//! la-profile 3
//! pid <pid>
//! rate <bytes>
//! time <ms since process start>
//! dropped <freed samples dropped for room>
//! lost <samples not recorded for want of room (optional: 0 when absent)>
//! map <start hex>-<end hex> <perms> <offset hex> <path>     (zero or more)
//! data
//! <binary items>
//! end
//! ```
//!
//! The header is text, one record per line, fields separated by one space.
//! The `data` line ends it, and binary items follow at once: back to back,
//! no padding, integers little-endian, each starting with a tag byte.
//!
//! | tag  | item   | then                                                   | bytes  |
//! |------|--------|--------------------------------------------------------|--------|
//! | `t`  | trace  | u32 id, u32 n (at most 64), n u64 return addresses     | 9 + 8n |
//! | `s`  | sample | u64 size, u64 requested, u64 alloc_ms, u64 free_ms     | 37     |
//! |      |        | (`u64::MAX` while the block is live), u32 trace id     |        |
//! | `e`  | end    | the bytes `nd\n`: the dump ends with the text `end\n`  | 4      |
//!
//! A trace is written once per dump, before the first sample that refers
//! to it.
//!
//! Version 2, still read, is all text: after the header lines (no `data`
//! line), `t <trace id> <nframes> <pc hex>...` and
//! `s <size> <requested> <alloc_ms> <free_ms or -1> <trace id>` lines, then
//! an `end` line. Version 1 had no `t` lines: each sample carried its own
//! stack, `s <size> <requested> <alloc_ms> <free_ms or -1> <nframes> <pc hex>...`.
//!
//! A file may hold several dumps one after the other, of any versions
//! (interval snapshots); the last one is the final state.
//!
//! Positions in messages: `file:LINE` for text, where LINE is 1 + the
//! number of newline bytes before it in the file, binary items included
//! (the numbering `grep -an` and `sed -n LINEp` use); `file: byte OFFSET`
//! for a binary item, OFFSET being its tag's offset from the start of the
//! file, counted from 0.

use std::collections::HashMap;
use std::rc::Rc;

use crate::Error;

/// A dump's traces by id (versions 2 and 3; version 1 has none).
type Traces = HashMap<u64, Rc<[u64]>>;

/// Most frames a version 3 trace holds.
const MAX_FRAMES: u32 = 64;
/// A version 3 trace item's bytes before its frames: tag, id, frame count.
const TRACE_HEAD: usize = 9;
/// A version 3 sample item's bytes: tag, four u64 and a u32 trace id.
const SAMPLE_LEN: usize = 37;
/// A version 3 end item: its tag and the bytes after it.
const END: &[u8] = b"end\n";

/// One executable mapping of the profiled process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub path: String,
}

/// One sampled allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The size the sampler counted.
    pub size: u64,
    /// The size the program asked for.
    pub requested: u64,
    pub alloc_ms: u64,
    /// `None` while the block is live.
    pub free_ms: Option<u64>,
    /// Return addresses, innermost caller of malloc first (shared by the
    /// samples of one trace).
    pub pcs: Rc<[u64]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    pub pid: u64,
    pub rate: u64,
    pub time_ms: u64,
    pub dropped: u64,
    /// Samples the runtime could not record (no room in its tables).
    pub lost: u64,
    pub maps: Vec<Map>,
    pub samples: Vec<Sample>,
}

/// What to do with a dump that has no `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncated {
    /// Refuse the input.
    Reject,
    /// Keep the dump's complete records, and say so on stderr.
    Keep,
}

/// An error at a text line.
fn err(file: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error(format!("{file}:{line}: {msg}"))
}

/// An error at a binary item, by the offset of its first byte.
fn err_at_byte(file: &str, byte: usize, msg: impl std::fmt::Display) -> Error {
    Error(format!("{file}: byte {byte}: {msg}"))
}

fn num(file: &str, line: usize, what: &str, s: &str) -> Result<u64, Error> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse::<u64>(),
    };
    parsed.map_err(|_| err(file, line, format!("bad {what} '{s}'")))
}

fn hex(file: &str, line: usize, what: &str, s: &str) -> Result<u64, Error> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    u64::from_str_radix(digits, 16).map_err(|_| err(file, line, format!("bad {what} '{s}'")))
}

fn parse_map(file: &str, n: usize, fields: &[&str], rest: &str) -> Result<Map, Error> {
    if fields.len() < 5 {
        return Err(err(file, n, "map line needs: start-end perms offset path"));
    }
    let (start, end) = fields[1]
        .split_once('-')
        .ok_or_else(|| err(file, n, format!("bad address range '{}'", fields[1])))?;
    let start = hex(file, n, "map start", start)?;
    let end = hex(file, n, "map end", end)?;
    if end <= start {
        return Err(err(file, n, "map end is not above its start"));
    }
    let offset = hex(file, n, "map offset", fields[3])?;
    // The path is the rest of the line: it may hold spaces.
    let path = rest.splitn(5, ' ').nth(4).unwrap_or_default().to_string();
    Ok(Map {
        start,
        end,
        perms: fields[2].to_string(),
        offset,
        path,
    })
}

fn pcs(file: &str, n: usize, nframes: &str, pcs: &[&str]) -> Result<Rc<[u64]>, Error> {
    let nframes = num(file, n, "frame count", nframes)?;
    if pcs.len() as u64 != nframes {
        return Err(err(
            file,
            n,
            format!("{nframes} frames announced but {} given", pcs.len()),
        ));
    }
    pcs.iter()
        .map(|p| hex(file, n, "return address", p))
        .collect::<Result<Rc<[u64]>, _>>()
}

/// A `t` line: the trace's id and its frames.
fn parse_trace(file: &str, n: usize, fields: &[&str]) -> Result<(u64, Rc<[u64]>), Error> {
    if fields.len() < 3 {
        return Err(err(file, n, "trace line needs: id nframes pcs..."));
    }
    let id = num(file, n, "trace id", fields[1])?;
    Ok((id, pcs(file, n, fields[2], &fields[3..])?))
}

/// An `s` line; `traces` holds the dump's traces so far (version 2), or is
/// `None` for version 1, whose samples carry their own frames.
fn parse_sample(
    file: &str,
    n: usize,
    fields: &[&str],
    traces: Option<&Traces>,
) -> Result<Sample, Error> {
    let need = if traces.is_some() {
        "sample line needs: size requested alloc_ms free_ms trace_id"
    } else {
        "sample line needs: size requested alloc_ms free_ms nframes pcs..."
    };
    if fields.len() < 6 || (traces.is_some() && fields.len() != 6) {
        return Err(err(file, n, need));
    }
    let size = num(file, n, "size", fields[1])?;
    if size == 0 {
        return Err(err(file, n, "sample of size 0"));
    }
    let requested = num(file, n, "requested size", fields[2])?;
    let alloc_ms = num(file, n, "allocation time", fields[3])?;
    let free_ms = match fields[4] {
        "-1" => None,
        s => Some(num(file, n, "free time", s)?),
    };
    let pcs = match traces {
        Some(traces) => {
            let id = num(file, n, "trace id", fields[5])?;
            traces.get(&id).cloned().ok_or_else(|| {
                err(
                    file,
                    n,
                    format!("sample refers to trace {id}, not written before it"),
                )
            })?
        }
        None => pcs(file, n, fields[5], &fields[6..])?,
    };
    Ok(Sample {
        size,
        requested,
        alloc_ms,
        free_ms,
        pcs,
    })
}

/// One version 3 binary item.
enum Item {
    Trace(u64, Rc<[u64]>),
    Sample(Sample),
    End,
}

/// The little-endian u32 at `b[at..]`.
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The little-endian u64 at `b[at..]`.
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the version 3 item that `rest` starts with (it starts at byte `at`
/// of the file), with the dump's traces so far: the item and its length, or
/// `None` when the file ends inside it.
fn parse_item(
    file: &str,
    rest: &[u8],
    at: usize,
    traces: &Traces,
) -> Result<Option<(Item, usize)>, Error> {
    let Some(&tag) = rest.first() else {
        return Ok(None);
    };
    match tag {
        b't' => {
            if rest.len() < TRACE_HEAD {
                return Ok(None);
            }
            let id = le_u32(rest, 1);
            let n = le_u32(rest, 5);
            if n > MAX_FRAMES {
                return Err(err_at_byte(
                    file,
                    at,
                    format!("trace {id} has {n} frames (at most {MAX_FRAMES})"),
                ));
            }
            let len = TRACE_HEAD + 8 * n as usize;
            if rest.len() < len {
                return Ok(None);
            }
            let pcs = (TRACE_HEAD..len).step_by(8).map(|i| le_u64(rest, i));
            Ok(Some((Item::Trace(id.into(), pcs.collect()), len)))
        }
        b's' => {
            if rest.len() < SAMPLE_LEN {
                return Ok(None);
            }
            let size = le_u64(rest, 1);
            if size == 0 {
                return Err(err_at_byte(file, at, "sample of size 0"));
            }
            let id = u64::from(le_u32(rest, 33));
            let pcs = traces.get(&id).cloned().ok_or_else(|| {
                err_at_byte(
                    file,
                    at,
                    format!("sample refers to trace {id}, not written before it"),
                )
            })?;
            let sample = Sample {
                size,
                requested: le_u64(rest, 9),
                alloc_ms: le_u64(rest, 17),
                free_ms: Some(le_u64(rest, 25)).filter(|&ms| ms != u64::MAX),
                pcs,
            };
            Ok(Some((Item::Sample(sample), SAMPLE_LEN)))
        }
        b'e' => {
            let got = &rest[..rest.len().min(END.len())];
            if !END.starts_with(got) {
                return Err(err_at_byte(file, at, "'e' item not followed by 'nd\\n'"));
            }
            if got.len() < END.len() {
                return Ok(None);
            }
            Ok(Some((Item::End, END.len())))
        }
        _ if rest.starts_with(b"la-profile ") => Err(err_at_byte(
            file,
            at,
            "a new dump starts before the previous one's 'end'",
        )),
        _ => Err(err_at_byte(
            file,
            at,
            format!("unrecognized item tag 0x{tag:02x}"),
        )),
    }
}

/// The file being read, and where in it: text lines and binary items are
/// taken from its front.
struct Input<'a> {
    file: &'a str,
    bytes: &'a [u8],
    /// The offset of the next unread byte.
    pos: usize,
    /// The line number at byte `counted`.
    line: usize,
    counted: usize,
}

impl<'a> Input<'a> {
    fn new(file: &'a str, bytes: &'a [u8]) -> Self {
        Input {
            file,
            bytes,
            pos: 0,
            line: 1,
            counted: 0,
        }
    }

    /// The line number at byte `at`: 1 + the newline bytes before it (`at`
    /// never goes back, so each byte is counted once).
    fn line_at(&mut self, at: usize) -> usize {
        let newlines = self.bytes[self.counted..at].iter().filter(|&&b| b == b'\n');
        self.line += newlines.count();
        self.counted = at;
        self.line
    }

    /// The next text line, without its newline (nor a `\r` before it), and
    /// its number; `None` at the end of the file, or at a last line without
    /// its newline (cut short, so not complete).
    fn text_line(&mut self) -> Result<Option<(usize, &'a str)>, Error> {
        let rest = &self.bytes[self.pos..];
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let n = self.line_at(self.pos);
        self.pos += len + 1;
        let line = &rest[..len];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line =
            std::str::from_utf8(line).map_err(|_| err(self.file, n, "not text (invalid UTF-8)"))?;
        Ok(Some((n, line)))
    }
}

/// The dump being read.
struct Open {
    dump: Dump,
    /// The line of its `la-profile` header.
    start: usize,
    version: u8,
    /// Its traces so far (versions 2 and 3).
    traces: Traces,
    /// After a version 3 dump's `data` line: binary items come next.
    items: bool,
}

/// Parses every dump in `bytes`; `file` names it in messages. Warnings (a
/// kept truncated dump) go to `warn`.
pub fn parse(
    file: &str,
    bytes: &[u8],
    truncated: Truncated,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Dump>, Error> {
    let mut dumps = Vec::new();
    let mut input = Input::new(file, bytes);
    let mut cur: Option<Open> = None;
    // The offset of a binary item cut short by the end of the file.
    let mut cut_item = None;

    loop {
        if let Some(open) = cur.as_mut().filter(|o| o.items) {
            let at = input.pos;
            let Some((item, len)) = parse_item(file, &bytes[at..], at, &open.traces)? else {
                cut_item = Some(at);
                break;
            };
            input.pos += len;
            match item {
                Item::Trace(id, pcs) => {
                    open.traces.insert(id, pcs);
                }
                Item::Sample(s) => open.dump.samples.push(s),
                Item::End => dumps.push(cur.take().expect("a dump is open").dump),
            }
            continue;
        }
        let Some((n, line)) = input.text_line()? else {
            break;
        };
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(open) = cur.as_mut() else {
            let version = match line {
                "la-profile 1" => 1,
                "la-profile 2" => 2,
                "la-profile 3" => 3,
                _ if fields[0] == "la-profile" => {
                    return Err(err(
                        file,
                        n,
                        format!(
                            "unsupported format version '{line}' (this la-prof reads \
                             'la-profile 1', 'la-profile 2' and 'la-profile 3')"
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        file,
                        n,
                        format!(
                            "expected 'la-profile 1', 'la-profile 2' or 'la-profile 3', \
                             found '{}'",
                            shorten(line)
                        ),
                    ));
                }
            };
            cur = Some(Open {
                dump: Dump::default(),
                start: n,
                version,
                traces: HashMap::new(),
                items: false,
            });
            continue;
        };
        let dump = &mut open.dump;
        match fields[0] {
            "t" | "s" | "end" if open.version == 3 => {
                return Err(err(
                    file,
                    n,
                    format!(
                        "'{}' line in a version 3 dump's header (its traces, samples \
                         and end follow its 'data' line)",
                        fields[0]
                    ),
                ));
            }
            "data" if open.version == 3 && fields.len() == 1 => {
                if dump.rate == 0 {
                    return Err(err(file, n, "dump has no 'rate' line"));
                }
                open.items = true;
            }
            "end" if fields.len() == 1 => {
                let open = cur.take().expect("a dump is open");
                if open.dump.rate == 0 {
                    return Err(err(file, n, "dump has no 'rate' line"));
                }
                dumps.push(open.dump);
            }
            "pid" | "rate" | "time" | "dropped" | "lost" if fields.len() == 2 => {
                let v = num(file, n, fields[0], fields[1])?;
                if fields[0] == "rate" && v == 0 {
                    return Err(err(file, n, "a rate of 0 bytes"));
                }
                match fields[0] {
                    "pid" => dump.pid = v,
                    "rate" => dump.rate = v,
                    "time" => dump.time_ms = v,
                    "lost" => dump.lost = v,
                    _ => dump.dropped = v,
                }
            }
            "map" => dump.maps.push(parse_map(file, n, &fields, line)?),
            "t" if open.version == 2 => {
                let (id, pcs) = parse_trace(file, n, &fields)?;
                open.traces.insert(id, pcs);
            }
            "s" => {
                let traces = (open.version == 2).then_some(&open.traces);
                dump.samples.push(parse_sample(file, n, &fields, traces)?);
            }
            "la-profile" => {
                return Err(err(
                    file,
                    n,
                    "a new dump starts before the previous one's 'end'",
                ));
            }
            _ => {
                return Err(err(
                    file,
                    n,
                    format!("unrecognized record '{}'", shorten(line)),
                ))
            }
        }
    }

    if let Some(open) = cur {
        // Where the file ends: in a binary item, or after the last complete
        // line.
        let at = match cut_item {
            Some(byte) => format!("{file}: byte {byte}"),
            None => format!("{file}:{}", input.line_at(bytes.len())),
        };
        let start = open.start;
        match truncated {
            Truncated::Reject => {
                return Err(Error(format!(
                    "{at}: truncated dump: the dump that starts at line {start} has no 'end' \
                     (the program may still be writing it, or died; \
                     --allow-truncated uses its complete samples)"
                )))
            }
            Truncated::Keep => {
                if open.dump.rate == 0 {
                    return Err(Error(format!(
                        "{at}: truncated dump (from line {start}) before its 'rate' line"
                    )));
                }
                warn(format!(
                    "{at}: truncated dump (from line {start}, no 'end'): \
                     using its {} complete samples",
                    open.dump.samples.len()
                ));
                dumps.push(open.dump);
            }
        }
    }
    if dumps.is_empty() {
        return Err(Error(format!("{file}: no dump in the file (empty?)")));
    }
    Ok(dumps)
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "la-profile 1\npid 7\nrate 1024\ntime 5\ndropped 0\n\
        map 1000-2000 r-xp 0 /bin/x y\n\
        s 64 60 1 -1 2 0x1010 0x1020\n\
        s 2048 2048 1 3 1 1abc\nend\n";

    fn run(input: impl AsRef<[u8]>, t: Truncated) -> (Result<Vec<Dump>, Error>, Vec<String>) {
        let mut w = Vec::new();
        let r = parse("f", input.as_ref(), t, &mut |m| w.push(m));
        (r, w)
    }

    #[test]
    fn reads_one_dump() {
        let (r, w) = run(ONE, Truncated::Reject);
        let d = r.unwrap();
        assert!(w.is_empty());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].rate, 1024);
        assert_eq!(d[0].maps[0].path, "/bin/x y");
        assert_eq!(*d[0].samples[0].pcs, [0x1010, 0x1020]);
        assert_eq!(d[0].samples[1].free_ms, Some(3));
        assert_eq!(*d[0].samples[1].pcs, [0x1abc]);
    }

    #[test]
    fn truncated_is_refused_or_kept() {
        let cut = &ONE[..ONE.len() - 10];
        let (r, _) = run(cut, Truncated::Reject);
        let e = r.unwrap_err().0;
        assert!(e.starts_with("f:8: truncated dump"), "{e}");
        let (r, w) = run(cut, Truncated::Keep);
        assert_eq!(r.unwrap()[0].samples.len(), 1);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let (r, _) = run("la-profile 9\n", Truncated::Reject);
        assert!(r.unwrap_err().0.starts_with("f:1: unsupported"));
        let bad = ONE.replace("0x1020", "zz");
        let (r, _) = run(&bad, Truncated::Reject);
        assert_eq!(r.unwrap_err().0, "f:7: bad return address 'zz'");
        let bad = ONE.replace("s 64 60 1 -1 2", "s 64 60 1 -1 3");
        let (r, _) = run(&bad, Truncated::Reject);
        assert!(r
            .unwrap_err()
            .0
            .starts_with("f:7: 3 frames announced but 2 given"));
        let (r, _) = run("hello\n", Truncated::Reject);
        assert!(r.unwrap_err().0.starts_with("f:1: expected 'la-profile 1'"));
    }

    const TWO: &str = "la-profile 2\npid 7\nrate 1024\ntime 5\ndropped 0\n\
        map 1000-2000 r-xp 0 /bin/x y\n\
        t 0 2 0x1010 0x1020\n\
        s 64 60 1 -1 0\n\
        t 3 1 0x1abc\n\
        s 2048 2048 1 3 3\n\
        s 96 90 2 -1 0\nend\n";

    #[test]
    fn version_2_shares_traces() {
        let (r, w) = run(TWO, Truncated::Reject);
        let d = r.unwrap();
        assert!(w.is_empty());
        let s = &d[0].samples;
        assert_eq!(s.len(), 3);
        assert_eq!(*s[0].pcs, [0x1010, 0x1020]);
        assert_eq!(*s[1].pcs, [0x1abc]);
        assert_eq!(s[1].free_ms, Some(3));
        assert!(Rc::ptr_eq(&s[0].pcs, &s[2].pcs));
        // Both versions give the same samples.
        let one = run(ONE, Truncated::Reject).0.unwrap();
        assert_eq!(one[0].samples[..], s[..2]);
    }

    #[test]
    fn lost_samples_are_read_and_optional() {
        let d = run(TWO, Truncated::Reject).0.unwrap();
        assert_eq!(d[0].lost, 0);
        let with = TWO.replace("dropped 0\n", "dropped 0\nlost 12\n");
        let d = run(&with, Truncated::Reject).0.unwrap();
        assert_eq!((d[0].dropped, d[0].lost), (0, 12));
        let bad = TWO.replace("dropped 0\n", "dropped 0\nlost many\n");
        assert!(run(&bad, Truncated::Reject).0.is_err());
    }

    #[test]
    fn version_2_bad_traces() {
        let bad = TWO.replace("s 64 60 1 -1 0", "s 64 60 1 -1 9");
        let (r, _) = run(&bad, Truncated::Reject);
        assert_eq!(
            r.unwrap_err().0,
            "f:8: sample refers to trace 9, not written before it"
        );
        let bad = TWO.replace("t 3 1 0x1abc", "t 3 2 0x1abc");
        let (r, _) = run(&bad, Truncated::Reject);
        assert!(r
            .unwrap_err()
            .0
            .starts_with("f:9: 2 frames announced but 1 given"));
        let bad = TWO.replace("s 64 60 1 -1 0", "s 64 60 1 -1 1 0x1010");
        let (r, _) = run(&bad, Truncated::Reject);
        assert!(r.unwrap_err().0.starts_with("f:8: sample line needs"));
        // A trace of another dump is not this dump's.
        let two = format!("{TWO}{}", TWO.replace("t 0 2 0x1010 0x1020\n", ""));
        let (r, _) = run(&two, Truncated::Reject);
        assert!(r.unwrap_err().0.contains("refers to trace 0"));
    }

    #[test]
    fn several_dumps() {
        let two = format!("{ONE}{ONE}");
        let (r, _) = run(&two, Truncated::Reject);
        assert_eq!(r.unwrap().len(), 2);
    }

    /// A version 3 dump's text header, up to its `data` line (line 7).
    const HEAD3: &str = "la-profile 3\npid 7\nrate 1024\ntime 5\ndropped 0\n\
        map 1000-2000 r-xp 0 /bin/x y\ndata\n";

    /// A version 3 trace item.
    fn t3(id: u32, pcs: &[u64]) -> Vec<u8> {
        let mut b = vec![b't'];
        b.extend(id.to_le_bytes());
        b.extend((pcs.len() as u32).to_le_bytes());
        for pc in pcs {
            b.extend(pc.to_le_bytes());
        }
        b
    }

    /// A version 3 sample item (`free_ms` `None`: still live).
    fn s3(size: u64, requested: u64, alloc_ms: u64, free_ms: Option<u64>, id: u32) -> Vec<u8> {
        let mut b = vec![b's'];
        for v in [size, requested, alloc_ms, free_ms.unwrap_or(u64::MAX)] {
            b.extend(v.to_le_bytes());
        }
        b.extend(id.to_le_bytes());
        b
    }

    /// A version 3 dump: `head`, then `items`, then `end`.
    fn dump3(head: &str, items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = head.as_bytes().to_vec();
        for i in items {
            b.extend(i);
        }
        b.extend(b"end\n");
        b
    }

    /// TWO's traces and samples as version 3 items.
    fn three_items() -> Vec<Vec<u8>> {
        vec![
            t3(0, &[0x1010, 0x1020]),
            s3(64, 60, 1, None, 0),
            t3(3, &[0x1abc]),
            s3(2048, 2048, 1, Some(3), 3),
            s3(96, 90, 2, None, 0),
        ]
    }

    /// TWO in version 3.
    fn three() -> Vec<u8> {
        dump3(HEAD3, &three_items())
    }

    /// The offset of item `i` of `three_items()` in `three()` (5: the end).
    fn item_at(i: usize) -> usize {
        HEAD3.len() + three_items()[..i].iter().map(Vec::len).sum::<usize>()
    }

    /// The error that reading `input` gives.
    fn error(input: impl AsRef<[u8]>) -> String {
        run(input, Truncated::Reject).0.unwrap_err().0
    }

    #[test]
    fn version_3_reads_like_version_2() {
        assert_eq!((t3(1, &[2, 3]).len(), s3(1, 1, 1, None, 1).len()), (25, 37));
        let (r, w) = run(three(), Truncated::Reject);
        let d = r.unwrap();
        assert!(w.is_empty());
        assert_eq!(d, run(TWO, Truncated::Reject).0.unwrap());
        assert_eq!((d[0].pid, d[0].rate, d[0].time_ms), (7, 1024, 5));
        assert_eq!(d[0].maps[0].path, "/bin/x y");
        let s = &d[0].samples;
        assert_eq!((s[0].free_ms, s[1].free_ms), (None, Some(3)));
        assert!(Rc::ptr_eq(&s[0].pcs, &s[2].pcs));
        // 64 frames is the most a trace holds.
        let pcs: Vec<u64> = (1..=64).collect();
        let d = run(
            dump3(HEAD3, &[t3(5, &pcs), s3(8, 8, 0, None, 5)]),
            Truncated::Reject,
        );
        assert_eq!(*d.0.unwrap()[0].samples[0].pcs, pcs[..]);
    }

    #[test]
    fn version_3_several_dumps() {
        // The newline bytes in a dump's items count in the next one's
        // line numbers.
        let first = dump3(HEAD3, &[t3(1, &[0x0a0a]), s3(16, 16, 1, None, 1)]);
        let lines = first.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(lines, 10);
        let d = run([&first[..], &three()].concat(), Truncated::Reject).0;
        let d = d.unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(*d[0].samples[0].pcs, [0x0a0a]);
        assert_eq!(d[1].samples.len(), 3);
        let bad = HEAD3.replace("rate 1024", "rate x");
        let e = error([&first[..], &dump3(&bad, &[])].concat());
        assert_eq!(e, format!("f:{}: bad rate 'x'", lines + 3));
        // A trace of another dump is not this dump's.
        let second = dump3(HEAD3, &[s3(16, 16, 1, None, 1)]);
        let e = error([&first[..], &second].concat());
        assert_eq!(
            e,
            format!(
                "f: byte {}: sample refers to trace 1, not written before it",
                first.len() + HEAD3.len()
            )
        );
        // Versions 2, 3 and 1 in one file.
        let all = [TWO.as_bytes(), &three(), ONE.as_bytes()].concat();
        let d = run(all, Truncated::Reject).0.unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d[0], d[1]);
        assert_eq!(d[2].samples[..], d[1].samples[..2]);
    }

    #[test]
    fn version_3_truncated_in_an_item() {
        let file = three();
        // Cut in the last sample: the two before it are complete.
        let cut = &file[..item_at(4) + 20];
        assert_eq!(
            error(cut),
            format!(
                "f: byte {}: truncated dump: the dump that starts at line 1 has no 'end' \
                 (the program may still be writing it, or died; \
                 --allow-truncated uses its complete samples)",
                item_at(4)
            )
        );
        let (r, w) = run(cut, Truncated::Keep);
        assert_eq!(r.unwrap()[0].samples.len(), 2);
        assert_eq!(
            w,
            [format!(
                "f: byte {}: truncated dump (from line 1, no 'end'): \
                 using its 2 complete samples",
                item_at(4)
            )]
        );
        // In a trace's frames, in its head, in the end, right after `data`:
        // the message names the item cut short.
        for (len, at) in [
            (item_at(2) + 12, item_at(2)),
            (item_at(2) + 3, item_at(2)),
            (item_at(5) + 2, item_at(5)),
            (HEAD3.len(), HEAD3.len()),
        ] {
            let e = error(&file[..len]);
            let want = format!("f: byte {at}: truncated dump: the dump that starts at line 1");
            assert!(e.starts_with(&want), "{e}");
        }
        // Cut in the header: the line, as in version 2.
        assert!(error(&file[..20]).starts_with("f:3: truncated dump"));
        // A later dump starts at a line counted through the items before it
        // (two newline bytes in the first one's frame).
        let first = dump3(HEAD3, &[t3(1, &[0x0a0a]), s3(16, 16, 1, None, 1)]);
        let two = [&first[..], &file[..item_at(1)]].concat();
        let e = error(&two);
        let want = format!(
            "f: byte {}: truncated dump: the dump that starts at line 11 has",
            first.len() + item_at(1)
        );
        assert!(e.starts_with(&want), "{e}");
    }

    #[test]
    fn version_3_bad_items() {
        let with = |i: usize, item: Vec<u8>| {
            let mut items = three_items();
            items[i] = item;
            dump3(HEAD3, &items)
        };
        let mut bad = three();
        bad[item_at(1)] = b'x';
        assert_eq!(
            error(bad),
            format!("f: byte {}: unrecognized item tag 0x78", item_at(1))
        );
        let mut bad = three();
        bad[item_at(5) + 1] = b'N';
        assert_eq!(
            error(bad),
            format!("f: byte {}: 'e' item not followed by 'nd\\n'", item_at(5))
        );
        assert_eq!(
            error(with(1, s3(64, 60, 1, None, 9))),
            format!(
                "f: byte {}: sample refers to trace 9, not written before it",
                item_at(1)
            )
        );
        assert_eq!(
            error(with(1, s3(0, 0, 1, None, 0))),
            format!("f: byte {}: sample of size 0", item_at(1))
        );
        // 65 frames: refused whether they follow or not.
        let pcs: Vec<u64> = (1..=65).collect();
        let want = format!(
            "f: byte {}: trace 0 has 65 frames (at most 64)",
            HEAD3.len()
        );
        assert_eq!(error(with(0, t3(0, &pcs))), want);
        let head_only = [HEAD3.as_bytes(), &t3(0, &pcs)[..9]].concat();
        assert_eq!(error(head_only), want);
        // A new dump where an item should be.
        let nested = [HEAD3.as_bytes(), &three_items()[0], &three()].concat();
        assert_eq!(
            error(nested),
            format!(
                "f: byte {}: a new dump starts before the previous one's 'end'",
                item_at(1)
            )
        );
    }

    #[test]
    fn version_3_bad_headers() {
        let items = three_items();
        let head = |from: &str, to: &str| dump3(&HEAD3.replace(from, to), &items);
        assert_eq!(error(head("rate 1024", "rate x")), "f:3: bad rate 'x'");
        assert_eq!(error(head("rate 1024", "rate 0")), "f:3: a rate of 0 bytes");
        assert_eq!(
            error(head("rate 1024\n", "")),
            "f:6: dump has no 'rate' line"
        );
        assert!(error(head("map 1000-2000", "map 2000-1000")).starts_with("f:6: map end"));
        let d = run(
            head("dropped 0\n", "dropped 0\nlost 12\n"),
            Truncated::Reject,
        )
        .0;
        assert_eq!(d.unwrap()[0].lost, 12);
        // Traces, samples and the end come after `data`, in binary.
        for line in ["t 0 1 0x10", "s 64 60 1 -1 0", "end"] {
            let e = error(format!("la-profile 3\nrate 1\n{line}\n"));
            assert!(e.starts_with("f:3: '"), "{e}");
            assert!(e.contains("line in a version 3 dump's header"), "{e}");
        }
        assert_eq!(
            error(b"la-profile 3\npid \xff\n"),
            "f:2: not text (invalid UTF-8)"
        );
        assert!(error("la-profile 3\nrate 1\ndata x\n").starts_with("f:3: unrecognized record"));
        // Versions 1 and 2 have no `data` line.
        assert!(error("la-profile 2\nrate 1\ndata\n").starts_with("f:3: unrecognized record"));
    }
}
