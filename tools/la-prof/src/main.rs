//! la-prof: reads liballoc's raw heap profiles and writes pprof profiles,
//! flame graphs, a chart of live memory over time, and a text table.

mod chart;
mod pprof;
mod profile;
mod raw;
mod report;
mod symbolize;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// An error for the user: printed as one line, and the exit status is 1.
#[derive(Debug)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Converts a liballoc heap profile (written by `la-run --profile` or
/// LA_PROFILE) into pprof, flame graph, chart and text reports.
///
/// The last dump in the file is the final state; --chart uses them all.
/// With no output option, --top 20 is printed.
#[derive(Parser, Debug)]
#[command(name = "la-prof", version)]
struct Cli {
    /// The raw profile.
    file: PathBuf,
    /// Prints the N sites with the most live bytes (or allocated, with --alloc).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "20")]
    top: Option<usize>,
    /// Ranks --top by allocated bytes instead of live bytes.
    #[arg(long)]
    alloc: bool,
    /// Writes a gzipped pprof profile (alloc_objects, alloc_space, inuse_objects, inuse_space).
    #[arg(long, value_name = "OUT.pb.gz")]
    pprof: Option<PathBuf>,
    /// Writes a flame graph of live bytes.
    #[arg(long, value_name = "OUT.svg")]
    flame_live: Option<PathBuf>,
    /// Writes a flame graph of allocated bytes.
    #[arg(long, value_name = "OUT.svg")]
    flame_alloc: Option<PathBuf>,
    /// Writes a PNG chart of live bytes over time, one line per top site.
    #[arg(long, value_name = "OUT.png")]
    chart: Option<PathBuf>,
    /// How many sites the chart draws.
    #[arg(long, value_name = "N", default_value_t = 8)]
    chart_sites: usize,
    /// Uses a dump that has no `end` up to its last complete record,
    /// with a warning, instead of refusing the file.
    #[arg(long)]
    allow_truncated: bool,
}

fn write_file(path: &PathBuf, data: &[u8]) -> Result<(), Error> {
    std::fs::write(path, data).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))
}

fn run(cli: Cli) -> Result<(), Error> {
    let name = cli.file.display().to_string();
    let bytes = std::fs::read(&cli.file).map_err(|e| Error(format!("cannot read {name}: {e}")))?;
    let truncated = if cli.allow_truncated {
        raw::Truncated::Keep
    } else {
        raw::Truncated::Reject
    };
    let dumps = raw::parse(&name, &bytes, truncated, &mut |w| {
        eprintln!("la-prof: warning: {w}")
    })?;
    let last = dumps.last().expect("parse returns at least one dump");
    if last.dropped > 0 {
        eprintln!(
            "la-prof: warning: {name}: {} samples of freed blocks were dropped for room; \
             allocated totals are low by about that many samples",
            last.dropped
        );
    }
    if last.lost > 0 {
        eprintln!(
            "la-prof: warning: {name}: {} samples could not be recorded (the profiler's \
             tables were full); allocated and live totals are low by about that many samples",
            last.lost
        );
    }

    // Every map seen in any dump, first seen first (a library loaded later
    // appears only in later dumps).
    let mut maps: Vec<raw::Map> = Vec::new();
    for d in &dumps {
        for m in &d.maps {
            if !maps.contains(m) {
                maps.push(m.clone());
            }
        }
    }
    let mut sym = symbolize::Symbolizer::new(maps);
    let stacks = profile::by_stack(last);

    let any_output = cli.pprof.is_some()
        || cli.flame_live.is_some()
        || cli.flame_alloc.is_some()
        || cli.chart.is_some();
    if let Some(out) = &cli.pprof {
        let p = pprof::build(last, &stacks, &mut sym);
        let data = pprof::encode(&p).map_err(|e| Error(format!("cannot compress: {e}")))?;
        write_file(out, &data)?;
    }
    if let Some(out) = &cli.flame_live {
        let svg = report::flame(&stacks, &mut sym, false, &name)?;
        write_file(out, &svg)?;
    }
    if let Some(out) = &cli.flame_alloc {
        let svg = report::flame(&stacks, &mut sym, true, &name)?;
        write_file(out, &svg)?;
    }
    if let Some(out) = &cli.chart {
        chart::draw(&dumps, &mut sym, cli.chart_sites, out, &name)?;
    }
    let top = match cli.top {
        Some(n) => Some(n),
        None if !any_output => Some(20),
        None => None,
    };
    if let Some(n) = top {
        print!("{}", report::top(last, &stacks, &mut sym, n, cli.alloc));
    }
    for u in &sym.unreadable {
        eprintln!("la-prof: warning: cannot symbolize through {u}");
    }
    Ok(())
}

fn main() -> ExitCode {
    // A bug here is reported in one line, not as a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("la-prof: internal error: {info}");
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("la-prof: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(2),
    }
}
