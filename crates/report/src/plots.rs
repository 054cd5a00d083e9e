//! The SVG plots: p99 against the deliveries offered at 1,000 clients in
//! one room (the first screen's), p99 against clients in the capacity
//! search, and RSS against idle connections. Only runs that kept up are
//! drawn: a run that fell behind has no latency to show.
//!
//! Plotters renders to a string with its SVG back end; text is emitted as
//! SVG `<text>` elements, so no font is loaded (the viewer's sans-serif
//! draws the labels). Identical data gives byte-identical files. Every axis
//! names its unit, and a log axis says so in its label.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::data::{Data, Fan};
use crate::format;
use crate::headline::{Capacity, PEAK_CLIENTS};

/// The directory, beside the report, that holds the plots.
pub const PLOTS_DIR: &str = "plots";
/// p99 against deliveries offered, 1,000 clients in one room.
pub const HEADLINE_PLOT: &str = "p99-vs-offered.svg";
/// p99 against clients, the capacity search.
pub const CAPACITY_PLOT: &str = "capacity-p99-vs-clients.svg";
/// RSS against idle connections.
pub const RSS_PLOT: &str = "rss-vs-connections.svg";

const SIZE: (u32, u32) = (1000, 540);
/// Room right of the plot for the legend, in pixels.
const LEGEND_WIDTH: u32 = 200;

/// Colours by server, in the report's order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];
const GREY: RGBColor = RGBColor(120, 120, 120);

/// A server's line: its colour and marker by its place in the report.
fn line(data: &Data<'_>, server: &str, points: Vec<(f64, f64)>) -> Series {
    let rank = data.servers.iter().position(|s| s == server).unwrap_or(0);
    let mut points = points;
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    Series {
        label: server.to_owned(),
        color: PALETTE[rank % PALETTE.len()],
        dashed: false,
        marker: [Marker::Circle, Marker::Triangle, Marker::Cross][rank % 3],
        points,
    }
}

/// p99 against deliveries offered: every normal run at 1,000 clients in
/// one room, one sender, that kept up.
pub fn headline_chart(data: &Data<'_>) -> Option<Chart> {
    let fans: Vec<Fan> = data
        .fans()
        .into_iter()
        .filter(|f| f.load.clients == PEAK_CLIENTS && f.load.rooms == 1 && f.load.senders == 1)
        .filter(Fan::kept_up)
        .collect();
    let series = data
        .servers
        .iter()
        .map(|s| {
            let points = fans
                .iter()
                .filter(|f| &f.server == s && f.p99_ms > 0.0)
                .map(|f| (f.offered_per_s, f.p99_ms))
                .collect();
            line(data, s, points)
        })
        .collect();
    nonempty(Chart {
        title: format!(
            "p99 latency against load, {} clients in one room (runs that kept up)",
            format::count(PEAK_CLIENTS)
        ),
        x: Axis {
            desc: "deliveries offered per second".to_owned(),
            log: true,
            label: tick_sig,
        },
        y: Axis {
            desc: "p99 latency, ms".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// p99 against clients at each capacity step that kept up, with the SLO.
pub fn capacity_chart(data: &Data<'_>, searches: &[(String, Capacity)]) -> Option<Chart> {
    let mut series: Vec<Series> = searches
        .iter()
        .map(|(server, c)| {
            let points = c
                .steps
                .iter()
                .filter_map(|&(clients, p99)| Some((clients as f64, p99?)))
                .filter(|p| p.1 > 0.0)
                .collect();
            line(data, server, points)
        })
        .collect();
    let (lo, hi) = extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))?;
    if let Some((_, c)) = searches.first() {
        series.push(Series {
            label: format!("SLO {} ms", format::plain(c.slo_ms)),
            color: GREY,
            dashed: true,
            marker: Marker::None,
            points: vec![(lo, c.slo_ms), (hi, c.slo_ms)],
        });
    }
    nonempty(Chart {
        title: "Capacity search: p99 at each step that kept up".to_owned(),
        x: Axis {
            desc: "clients in the room".to_owned(),
            log: false,
            label: tick_count,
        },
        y: Axis {
            desc: "p99 latency, ms".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// Server RSS against idle connections: every connections run that opened
/// all it asked for.
pub fn rss_chart(data: &Data<'_>) -> Option<Chart> {
    let series = data
        .servers
        .iter()
        .map(|s| {
            let points = data
                .normal_of(s, "connections")
                .filter_map(|r| match &r.results {
                    chat_record::Results::Connections(c) if c.opened == c.target => {
                        Some((c.opened as f64, c.server_loaded?.rss_kib as f64 / 1024.0))
                    }
                    _ => None,
                })
                .collect();
            line(data, s, points)
        })
        .collect();
    nonempty(Chart {
        title: "Server memory with idle connections open".to_owned(),
        x: Axis {
            desc: "idle connections".to_owned(),
            log: true,
            label: tick_count,
        },
        y: Axis {
            desc: "RSS, MiB".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// Writes each chart that has data as `dir/<file>`, removes the stale
/// others, and returns the files written.
pub fn write_all(
    dir: &Path,
    charts: Vec<(&'static str, Option<Chart>)>,
) -> Result<Vec<&'static str>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for (file, chart) in charts {
        let path = dir.join(file);
        match chart {
            Some(chart) => {
                let svg = render(&chart).with_context(|| format!("plotting {file}"))?;
                fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
                written.push(file);
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            },
        }
    }
    Ok(written)
}

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend.
    pub label: String,
    /// Its colour.
    pub color: RGBColor,
    /// Dashed (a secondary figure, e.g. p50 next to p99), or solid.
    pub dashed: bool,
    /// The shape drawn at each point (a reference line has none).
    pub marker: Marker,
    /// The points, sorted by x.
    pub points: Vec<(f64, f64)>,
}

/// The shape drawn at each point of a series: one per server, so that
/// lines that coincide (the same offered load delivered) stay visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// No marker: a reference line.
    None,
    /// A filled circle.
    Circle,
    /// A filled triangle.
    Triangle,
    /// A cross.
    Cross,
}

/// An axis: its description, scale and tick labels.
#[derive(Debug, Clone)]
pub struct Axis {
    /// What it measures, with the unit (a log axis adds "log scale").
    pub desc: String,
    /// Logarithmic scale.
    pub log: bool,
    /// How a tick value is written.
    pub label: fn(f64) -> String,
}

/// One plot, ready to draw.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The caption drawn on top.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<Series>,
}

fn tick_count(v: f64) -> String {
    // Ticks are non-negative counts (clients, connections, threads).
    let n = v.round().max(0.0) as u64;
    format::count(n)
}

/// A tick value: three significant digits, without trailing zeros
/// (`10`, `2.5`, `0.1`), since a tick is exact.
fn tick_sig(v: f64) -> String {
    let s = format::sig(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn nonempty(mut chart: Chart) -> Option<Chart> {
    chart.series.retain(|s| !s.points.is_empty());
    chart
        .series
        .iter()
        .any(|s| s.marker != Marker::None)
        .then_some(chart)
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The range an axis shows, padded around the data. A linear axis starts
/// at zero (counts and rates read against zero). A log axis pads by a
/// factor; with `decades`, it extends to whole powers of ten, since plotters
/// labels a log axis only at powers of ten and a value must be readable at
/// both ends.
fn axis_range(log: bool, decades: bool, values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = extent(values)?;
    Some(if log {
        if decades {
            let low = lo.log10().floor();
            let high = hi.log10().ceil().max(low + 1.0);
            // Nudged outwards so that rounding in plotters' tick search
            // keeps the end decades.
            (
                10_f64.powf(low) * (1.0 - 1e-9),
                10_f64.powf(high) * (1.0 + 1e-9),
            )
        } else {
            (lo / 1.25, hi * 1.25)
        }
    } else {
        let hi = if hi > 0.0 { hi * 1.08 } else { 1.0 };
        (lo.min(0.0), hi)
    })
}

/// Draws a chart into an SVG string.
pub fn render(chart: &Chart) -> Result<String> {
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    // Horizontal space is scarce (clients start at a round number anyway);
    // vertical space is not.
    let (x0, x1) = axis_range(chart.x.log, false, xs).context("a plot with no points")?;
    let (y0, y1) = axis_range(chart.y.log, true, ys).context("a plot with no points")?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        // The legend gets its own column right of the plot, where it hides
        // no line.
        let (plot, legend) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let ticks = (
            log_ticks(chart.x.log, (x0, x1)),
            log_ticks(chart.y.log, (y0, y1)),
        );
        match (chart.x.log, chart.y.log) {
            (false, false) => draw(&plot, chart, ticks, x0..x1, y0..y1),
            (true, false) => draw(&plot, chart, ticks, (x0..x1).log_scale(), y0..y1),
            (false, true) => draw(&plot, chart, ticks, x0..x1, (y0..y1).log_scale()),
            (true, true) => draw(
                &plot,
                chart,
                ticks,
                (x0..x1).log_scale(),
                (y0..y1).log_scale(),
            ),
        }?;
        draw_legend(&legend, chart)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// The legend: one line per series, its stroke and marker, then its label.
fn draw_legend(area: &Area<'_>, chart: &Chart) -> Result<()> {
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (i, s) in chart.series.iter().enumerate() {
        let y = 60 + 22 * i32::try_from(i).unwrap_or(0);
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        let fill = ShapeStyle::from(&s.color).filled();
        let segments = if s.dashed {
            [[(4, y), (12, y)], [(18, y), (26, y)], [(32, y), (36, y)]]
        } else {
            [[(4, y), (20, y)], [(20, y), (36, y)], [(36, y), (36, y)]]
        };
        for segment in segments {
            area.draw(&PathElement::new(segment.to_vec(), style))
                .map_err(plot_error)?;
        }
        let at = (20, y);
        match s.marker {
            Marker::None => Ok(()),
            Marker::Circle => area.draw(&Circle::new(at, 3, fill)),
            Marker::Triangle => area.draw(&TriangleMarker::new(at, 4, fill)),
            Marker::Cross => area.draw(&Cross::new(at, 4, style)),
        }
        .map_err(plot_error)?;
        area.draw(&Text::new(s.label.as_str(), (44, y - 7), font.clone()))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The tick hint for a log axis: plotters places ticks at powers of ten,
/// and at each multiple (2×, 3×, … 9×) when the hint is ten per decade;
/// [`nice_log_tick`] then labels only 1×, 2× and 5×. `None` for a linear
/// axis (plotters' default ticks).
fn log_ticks(log: bool, (lo, hi): (f64, f64)) -> Option<usize> {
    if !log || lo <= 0.0 {
        return None;
    }
    // Whole decades spanned, as plotters counts them (at least one).
    let decades = (hi / lo).log10().floor().max(1.0);
    Some(10 * usize::try_from(decades as u64).unwrap_or(1))
}

/// Whether a log-axis tick gets a label: 1, 2 or 5 times a power of ten.
fn nice_log_tick(v: f64) -> bool {
    if v <= 0.0 {
        return false;
    }
    let leading = (v / 10_f64.powf(v.log10().floor())).round();
    leading == 1.0 || leading == 2.0 || leading == 5.0 || leading == 10.0
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw<X, Y>(
    root: &Area<'_>,
    chart: &Chart,
    ticks: (Option<usize>, Option<usize>),
    x: X,
    y: Y,
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(plot_error)?;
    let (x_label, x_log) = (chart.x.label, chart.x.log);
    let (y_label, y_log) = (chart.y.label, chart.y.log);
    let label = |f: fn(f64) -> String, log: bool, v: f64| {
        if !log || nice_log_tick(v) {
            f(v)
        } else {
            String::new()
        }
    };
    let x_fmt = move |v: &f64| label(x_label, x_log, *v);
    let y_fmt = move |v: &f64| label(y_label, y_log, *v);
    let mut mesh = ctx.configure_mesh();
    let desc = |axis: &Axis| {
        if axis.log {
            format!("{} (log scale)", axis.desc)
        } else {
            axis.desc.clone()
        }
    };
    mesh.x_desc(desc(&chart.x))
        .y_desc(desc(&chart.y))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(RGBColor(205, 205, 205))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15));
    // On a log axis the ticks are the light lines too: one light line per
    // tick, not ten between ticks (which would crowd the end of each
    // decade).
    if let Some(n) = ticks.0 {
        mesh.x_labels(n).x_max_light_lines(1);
    }
    if let Some(n) = ticks.1 {
        mesh.y_labels(n).y_max_light_lines(1);
    }
    mesh.draw().map_err(plot_error)?;

    for s in &chart.series {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        let fill = ShapeStyle::from(&s.color).filled();
        let points = s.points.iter().copied();
        if s.dashed {
            ctx.draw_series(DashedLineSeries::new(points, 8, 5, style))
        } else {
            ctx.draw_series(LineSeries::new(points, style))
        }
        .map_err(plot_error)?;
        let points = s.points.iter().copied();
        match s.marker {
            Marker::None => Ok(()),
            Marker::Circle => ctx
                .draw_series(points.map(|p| Circle::new(p, 3, fill)))
                .map(drop),
            Marker::Triangle => ctx
                .draw_series(points.map(|p| TriangleMarker::new(p, 4, fill)))
                .map(drop),
            Marker::Cross => ctx
                .draw_series(points.map(|p| Cross::new(p, 4, style)))
                .map(drop),
        }
        .map_err(plot_error)?;
    }
    Ok(())
}
