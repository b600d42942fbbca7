//! The text table and the flame graphs.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::profile::Totals;
use crate::raw::Dump;
use crate::symbolize::Symbolizer;
use crate::Error;

/// Names a stack with no frame at all.
pub const NO_STACK: &str = "[no stack]";

/// The function that called malloc: the site a stack is counted under.
pub fn site(pcs: &[u64], sym: &mut Symbolizer) -> String {
    match pcs.first() {
        Some(&pc) => sym.symbolize(pc).frames[0].function.clone(),
        None => NO_STACK.to_string(),
    }
}

/// Function names of a stack, outermost first (inlined functions after
/// the function they were inlined into).
fn functions_outermost_first(pcs: &[u64], sym: &mut Symbolizer) -> Vec<String> {
    let mut out = Vec::new();
    for &pc in pcs.iter().rev() {
        let s = sym.symbolize(pc);
        out.extend(s.frames.iter().rev().map(|f| f.function.clone()));
    }
    if out.is_empty() {
        out.push(NO_STACK.to_string());
    }
    out
}

pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}{}", UNITS[u])
    } else {
        format!("{v:.2}{}", UNITS[u])
    }
}

fn pct(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        100.0 * part / total
    } else {
        0.0
    }
}

/// A table like `jeprof --text`: flat (bytes allocated by the site itself),
/// flat%, the running sum of flat%, cum (bytes under stacks through the
/// function anywhere) and cum%.
pub fn top(
    dump: &Dump,
    stacks: &[(Vec<u64>, Totals)],
    sym: &mut Symbolizer,
    n: usize,
    alloc: bool,
) -> String {
    let value = |t: &Totals| if alloc { t.alloc_bytes } else { t.inuse_bytes };
    let mut all = Totals::default();
    let mut flat: HashMap<String, f64> = HashMap::new();
    let mut cum: HashMap<String, f64> = HashMap::new();
    for (pcs, t) in stacks {
        all.add(t);
        *flat.entry(site(pcs, sym)).or_default() += value(t);
        let seen: HashSet<String> = functions_outermost_first(pcs, sym).into_iter().collect();
        for f in seen {
            *cum.entry(f).or_default() += value(t);
        }
    }
    let total = value(&all);
    // Every function on a stack gets a row, as in jeprof: by flat, then cum.
    let mut rows: Vec<(String, f64, f64)> = cum
        .iter()
        .filter(|(_, &c)| c > 0.0)
        .map(|(name, &c)| (name.clone(), flat.get(name).copied().unwrap_or(0.0), c))
        .collect();
    rows.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| b.2.total_cmp(&a.2))
            .then_with(|| a.0.cmp(&b.0))
    });

    let mut out = String::new();
    let _ = writeln!(
        out,
        "pid {}, {} samples at one per {} bytes, at {:.3} s; {} freed samples dropped",
        dump.pid,
        dump.samples.len(),
        dump.rate,
        dump.time_ms as f64 / 1000.0,
        dump.dropped
    );
    let _ = writeln!(
        out,
        "live: {} in {:.0} blocks; allocated: {} in {:.0} blocks (estimates)",
        human(all.inuse_bytes),
        all.inuse_objects,
        human(all.alloc_bytes),
        all.alloc_objects
    );
    let _ = writeln!(
        out,
        "showing {} of {} functions, by {} bytes",
        rows.len().min(n),
        rows.len(),
        if alloc { "allocated" } else { "live" }
    );
    let _ = writeln!(
        out,
        "{:>11} {:>6} {:>6} {:>11} {:>6}  site",
        "flat", "flat%", "sum%", "cum", "cum%"
    );
    let mut sum = 0.0;
    for (name, v, c) in rows.into_iter().take(n) {
        sum += v;
        let _ = writeln!(
            out,
            "{:>11} {:>5.1}% {:>5.1}% {:>11} {:>5.1}%  {}",
            human(v),
            pct(v, total),
            pct(sum, total),
            human(c),
            pct(c, total),
            name
        );
    }
    out
}

/// A flame graph of live (or allocated) bytes, as SVG.
pub fn flame(
    stacks: &[(Vec<u64>, Totals)],
    sym: &mut Symbolizer,
    alloc: bool,
    name: &str,
) -> Result<Vec<u8>, Error> {
    let mut lines = Vec::new();
    for (pcs, t) in stacks {
        let bytes = if alloc { t.alloc_bytes } else { t.inuse_bytes }.round() as u64;
        if bytes == 0 {
            continue;
        }
        // The folded format separates frames with ';'.
        let frames: Vec<String> = functions_outermost_first(pcs, sym)
            .into_iter()
            .map(|f| f.replace(';', ":"))
            .collect();
        lines.push(format!("{} {bytes}", frames.join(";")));
    }
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = format!("{} bytes: {name}", if alloc { "Allocated" } else { "Live" });
    opt.count_name = "bytes".to_string();
    opt.colors =
        inferno::flamegraph::color::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    let mut svg = Vec::new();
    if lines.is_empty() {
        // inferno refuses an empty graph; an empty profile still gets one.
        lines.push(format!("{NO_STACK} 0"));
        opt.title.push_str(" (no samples)");
    }
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| Error(format!("cannot draw the flame graph: {e}")))?;
    Ok(svg)
}
