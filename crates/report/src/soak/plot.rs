//! The soak's plot: RSS, threads and file descriptors against time, three
//! panels stacked on one time axis, one line per server.
//!
//! The point of a soak is a line that does not climb, so every panel's
//! value axis starts at zero (a zoomed axis makes noise look like growth)
//! and the panels share the time range, so that a step in one lines up
//! with the others. Three panels of different units do not fit `plots`'
//! single-chart renderer; this one shares its palette, axis range and
//! tick labels, and renders to a string as it does.

use anyhow::{Context, Result};
use chat_loadgen::soak::record::{SoakRecord, SoakSample};
use plotters::prelude::*;

use crate::format;
use crate::plots::{PALETTE, axis_range, plot_error, tick_sig};

/// The plot's file name under the plots directory.
pub const SOAK_PLOT: &str = "soak.svg";

/// The caption.
pub const TITLE: &str = "Soak: server memory, threads and file descriptors over time";

const SIZE: (u32, u32) = (1000, 900);
/// Room right of the panels for the legend, in pixels.
const LEGEND_WIDTH: u32 = 170;

/// A panel: its value axis's description, and how a sample reads on it.
type Panel = (&'static str, fn(&SoakSample) -> f64);

/// The panels, top to bottom.
const PANELS: [Panel; 3] = [
    ("RSS, MiB", |s| s.rss_kib as f64 / 1024.0),
    ("threads", |s| s.threads as f64),
    ("file descriptors", |s| s.fds as f64),
];

/// Minutes since the run started.
fn minutes(s: &SoakSample) -> f64 {
    s.t_s / 60.0
}

fn tick_count(v: f64) -> String {
    format::count(v.round().max(0.0) as u64)
}

/// The lines of one record: its label and colour.
struct Line<'a> {
    label: &'a str,
    color: RGBColor,
    samples: &'a [SoakSample],
}

/// Draws the records (in the section's order, `labels` naming them) into
/// an SVG string, or `None` when no record has a sample.
pub fn render(records: &[&SoakRecord], labels: &[String]) -> Result<Option<String>> {
    let lines: Vec<Line<'_>> = records
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(_, (r, _))| !r.samples.is_empty())
        .map(|(i, (r, label))| Line {
            label,
            color: PALETTE[i % PALETTE.len()],
            samples: &r.samples,
        })
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let all = || lines.iter().flat_map(|l| l.samples.iter());
    // Time runs from 0 to the last sample, unpadded: the lines end where
    // the soak did.
    let x1 = all().map(minutes).fold(0.0, f64::max);
    let (x0, x1) = (0.0, if x1 > 0.0 { x1 } else { 1.0 });
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let root = root.titled(TITLE, ("sans-serif", 22)).map_err(plot_error)?;
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let panels = plot.split_evenly((PANELS.len(), 1));
        for (i, (panel, (desc, get))) in panels.iter().zip(PANELS).enumerate() {
            let (y0, y1) = axis_range(false, false, all().map(get)).context("no samples")?;
            let bottom = i + 1 == PANELS.len();
            let mut ctx = ChartBuilder::on(panel)
                .margin(12)
                .x_label_area_size(if bottom { 44 } else { 24 })
                .y_label_area_size(72)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(plot_error)?;
            let y_label = if desc.starts_with("RSS") {
                tick_sig
            } else {
                tick_count
            };
            let x_fmt = |v: &f64| tick_sig(*v);
            let y_fmt = |v: &f64| y_label(*v);
            let mut mesh = ctx.configure_mesh();
            mesh.y_desc(desc)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .bold_line_style(RGBColor(205, 205, 205))
                .light_line_style(RGBColor(238, 238, 238))
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 15));
            if bottom {
                mesh.x_desc("minutes since the soak started");
            }
            mesh.draw().map_err(plot_error)?;
            for line in &lines {
                let points = line.samples.iter().map(|s| (minutes(s), get(s)));
                let style = ShapeStyle::from(&line.color).stroke_width(2);
                ctx.draw_series(LineSeries::new(points, style))
                    .map_err(plot_error)?;
            }
        }
        let font = ("sans-serif", 13).into_font().color(&BLACK);
        for (i, line) in lines.iter().enumerate() {
            let y = 40 + 22 * i32::try_from(i).unwrap_or(0);
            let style = ShapeStyle::from(&line.color).stroke_width(2);
            legend
                .draw(&PathElement::new(vec![(4, y), (36, y)], style))
                .map_err(plot_error)?;
            legend
                .draw(&Text::new(line.label, (44, y - 7), font.clone()))
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(Some(svg))
}
