//! The raw profile format written by the sampling runtime: text, one record
//! per line, fields separated by one space.
//!
//! ```text
//! la-profile 2
//! pid <pid>
//! rate <bytes>
//! time <ms since process start>
//! dropped <freed samples dropped for room>
//! lost <samples not recorded for want of room (optional: 0 when absent)>
//! map <start hex>-<end hex> <perms> <offset hex> <path>
//! t <trace id> <nframes> <pc hex>...
//! s <size> <requested> <alloc_ms> <free_ms or -1> <trace id>
//! end
//! ```
//!
//! A trace is written once per dump, before the first sample that refers
//! to it. Version 1 had no `t` lines: each sample carried its own stack,
//! `s <size> <requested> <alloc_ms> <free_ms or -1> <nframes> <pc hex>...`;
//! it is still read.
//!
//! A file may hold several dumps one after the other (interval snapshots);
//! the last one is the final state.

use std::collections::HashMap;
use std::rc::Rc;

use crate::Error;

/// A version 2 dump's traces by id (version 1 has none).
type Traces = HashMap<u64, Rc<[u64]>>;

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

/// What to do with a dump that has no `end` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncated {
    /// Refuse the input.
    Reject,
    /// Keep the dump's complete records, and say so on stderr.
    Keep,
}

fn err(file: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error(format!("{file}:{line}: {msg}"))
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

/// Parses every dump in `text`; `file` names it in messages. Warnings (a
/// kept truncated dump) go to `warn`.
pub fn parse(
    file: &str,
    text: &str,
    truncated: Truncated,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Dump>, Error> {
    let mut dumps = Vec::new();
    // The open dump, the line it starts at, and its traces (`None` for a
    // version 1 dump).
    let mut cur: Option<(Dump, usize, Option<Traces>)> = None;
    // A last line without its newline was cut short: it is not complete.
    let complete = if text.ends_with('\n') || text.is_empty() {
        text
    } else {
        match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        }
    };
    let cut_line = complete.lines().count() + 1;
    let cut_short = complete.len() != text.len();

    let mut last = 0;
    for (i, line) in complete.lines().enumerate() {
        let n = i + 1;
        last = n;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let Some((dump, _, traces)) = cur.as_mut() else {
            match line {
                "la-profile 1" => cur = Some((Dump::default(), n, None)),
                "la-profile 2" => cur = Some((Dump::default(), n, Some(HashMap::new()))),
                _ if fields[0] == "la-profile" => {
                    return Err(err(
                        file,
                        n,
                        format!(
                            "unsupported format version '{line}' \
                             (this la-prof reads 'la-profile 1' and 'la-profile 2')"
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        file,
                        n,
                        format!(
                            "expected 'la-profile 1' or 'la-profile 2', found '{}'",
                            shorten(line)
                        ),
                    ));
                }
            }
            continue;
        };
        match fields[0] {
            "end" if fields.len() == 1 => {
                let (dump, _, _) = cur.take().expect("a dump is open");
                if dump.rate == 0 {
                    return Err(err(file, n, "dump has no 'rate' line"));
                }
                dumps.push(dump);
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
            "t" if traces.is_some() => {
                let (id, pcs) = parse_trace(file, n, &fields)?;
                traces.as_mut().expect("version 2").insert(id, pcs);
            }
            "s" => dump
                .samples
                .push(parse_sample(file, n, &fields, traces.as_ref())?),
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

    if let Some((dump, start, _)) = cur {
        let at = if cut_short { cut_line } else { last + 1 };
        match truncated {
            Truncated::Reject => {
                return Err(err(
                    file,
                    at,
                    format!(
                        "truncated dump: the dump that starts at line {start} has no 'end' \
                         (the program may still be writing it, or died; \
                         --allow-truncated uses its complete samples)"
                    ),
                ))
            }
            Truncated::Keep => {
                if dump.rate == 0 {
                    return Err(err(
                        file,
                        at,
                        format!("truncated dump (from line {start}) before its 'rate' line"),
                    ));
                }
                warn(format!(
                    "{file}:{at}: truncated dump (from line {start}, no 'end'): \
                     using its {} complete samples",
                    dump.samples.len()
                ));
                dumps.push(dump);
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

    fn run(text: &str, t: Truncated) -> (Result<Vec<Dump>, Error>, Vec<String>) {
        let mut w = Vec::new();
        let r = parse("f", text, t, &mut |m| w.push(m));
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
        let (r, _) = run("la-profile 3\n", Truncated::Reject);
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
}
