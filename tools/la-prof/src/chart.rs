//! Live bytes over time, one line per top site, from the interval
//! snapshots of a profile.

use std::collections::HashMap;
use std::path::Path;

use plotters::prelude::*;

use crate::profile::by_stack;
use crate::raw::Dump;
use crate::report::site;
use crate::symbolize::Symbolizer;
use crate::Error;

const WIDTH: u32 = 1024;
const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";

/// TrueType fonts looked for, in order, when LA_PROF_FONT names none.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers a font for the chart's text; false when there is none (the
/// chart is then drawn without text, and its legend printed instead).
fn load_font() -> bool {
    let candidates: Vec<String> = match std::env::var("LA_PROF_FONT") {
        Ok(v) if v == "none" => return false,
        Ok(v) => vec![v],
        Err(_) => FONT_PATHS.iter().map(|s| s.to_string()).collect(),
    };
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            // The font lives as long as the program.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Per site, live bytes at each dump; the sites are the `n` largest by
/// their highest live bytes.
fn series(dumps: &[Dump], sym: &mut Symbolizer, n: usize) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut per_site: HashMap<String, Vec<f64>> = HashMap::new();
    for (i, d) in dumps.iter().enumerate() {
        for (pcs, t) in by_stack(d) {
            let v = per_site
                .entry(site(&pcs, sym))
                .or_insert_with(|| vec![0.0; dumps.len()]);
            v[i] += t.inuse_bytes;
        }
    }
    let mut sites: Vec<(String, Vec<f64>)> = per_site.into_iter().collect();
    let peak = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    sites.sort_by(|a, b| {
        peak(&b.1)
            .total_cmp(&peak(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    sites.truncate(n);
    sites
        .into_iter()
        .map(|(name, v)| {
            let points = dumps
                .iter()
                .zip(v)
                .map(|(d, b)| (d.time_ms as f64 / 1000.0, b / (1024.0 * 1024.0)))
                .collect();
            (name, points)
        })
        .collect()
}

pub fn draw(
    dumps: &[Dump],
    sym: &mut Symbolizer,
    n: usize,
    out: &Path,
    name: &str,
) -> Result<(), Error> {
    let series = series(dumps, sym, n);
    let text = load_font();
    if !text {
        eprintln!(
            "la-prof: warning: no TrueType font found (set LA_PROF_FONT): the chart has no text"
        );
    }
    let fail = |e: &dyn std::fmt::Display| Error(format!("cannot draw {}: {e}", out.display()));

    let t0 = dumps.iter().map(|d| d.time_ms).min().unwrap_or(0) as f64 / 1000.0;
    let t1 = dumps.iter().map(|d| d.time_ms).max().unwrap_or(0) as f64 / 1000.0;
    let (x0, x1) = if t1 > t0 {
        (t0, t1)
    } else {
        (t0 - 1.0, t0 + 1.0)
    };
    let ymax = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };

    let root = BitMapBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(format!("Live bytes by site: {name}"), (FONT, 20))
            .x_label_area_size(40)
            .y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(x0..x1, 0.0..ymax)
        .map_err(|e| fail(&e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("seconds since start")
            .y_desc("live MiB")
            .label_style((FONT, 13));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| fail(&e))?;

    for (i, (site, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let style = color.stroke_width(2);
        let drawn = chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(|e| fail(&e))?;
        if text {
            drawn
                .label(site.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        // Points too, so that a single dump still shows each site.
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| fail(&e))?;
        if !text {
            eprintln!("la-prof: chart line {}: {site}", i + 1);
        }
    }
    if text && !series.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
