//! The SVG plots: latency and throughput against clients (one-room fan-out),
//! threads and memory against connections, and the capacity search.
//!
//! Plotters renders to a string with its SVG back end; text is emitted as
//! SVG `<text>` elements and laid out with plotters' built-in width
//! estimate, so no font is loaded at build or run time (the viewer's
//! sans-serif draws the labels). Rendering to a string first means a
//! failed plot never leaves half a file, and identical data gives
//! byte-identical files, so regenerating the report is idempotent.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::data::{Config, Data, Fanout, median_by_p99};
use crate::format;
use crate::history::{self, HISTORY_PLOT};
use crate::layers;

/// The directory, under the results directory, that holds the plots.
pub const PLOTS_DIR: &str = "plots";

/// Every plot this module can write.
#[cfg(test)]
pub const ALL_PLOTS: [&str; 5] = [
    LATENCY_PLOT,
    THROUGHPUT_PLOT,
    CAPACITY_PLOT,
    THREADS_PLOT,
    RSS_PLOT,
];
/// p50 and p99 fan-out latency against clients, one room.
pub const LATENCY_PLOT: &str = "latency-vs-clients.svg";
/// Deliveries per second against clients, one room.
pub const THROUGHPUT_PLOT: &str = "throughput-vs-clients.svg";
/// p99 of each capacity-search step against its clients, with the SLO.
pub const CAPACITY_PLOT: &str = "capacity-p99-vs-clients.svg";
/// Server threads against idle connections held.
pub const THREADS_PLOT: &str = "threads-vs-connections.svg";
/// Server RSS against idle connections held.
pub const RSS_PLOT: &str = "rss-vs-connections.svg";

const SIZE: (u32, u32) = (1000, 540);
/// Room right of the plot for the legend, in pixels.
const LEGEND_WIDTH: u32 = 230;

/// Colours by server: sync red, async blue, then a fixed palette.
pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
];
const GREY: RGBColor = RGBColor(120, 120, 120);

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

impl Marker {
    /// The marker of the server in this column of the report.
    fn nth(i: usize) -> Self {
        [Marker::Circle, Marker::Triangle, Marker::Cross][i % 3]
    }
}

/// An axis: its description, scale and tick labels.
#[derive(Debug, Clone)]
pub struct Axis {
    /// What it measures, with the unit.
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

/// A plot written, for the report to link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file name under [`PLOTS_DIR`].
    pub file: &'static str,
    /// What it shows.
    pub title: String,
}

fn tick_count(v: f64) -> String {
    // Ticks are non-negative counts (clients, connections, threads).
    let n = v.round().max(0.0) as u64;
    format::count(n)
}

/// A tick value: three significant digits, without trailing zeros
/// (`10`, `2.5`, `0.1`), since a tick is exact.
pub(crate) fn tick_sig(v: f64) -> String {
    let s = format::sig(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The color of a server's lines: its column's position in the report.
fn color_of(data: &Data<'_>, server: &str) -> RGBColor {
    PALETTE[rank(data, server) % PALETTE.len()]
}

/// The marker of a server's lines.
fn marker_of(data: &Data<'_>, server: &str) -> Marker {
    Marker::nth(rank(data, server))
}

fn rank(data: &Data<'_>, server: &str) -> usize {
    data.servers.iter().position(|s| s == server).unwrap_or(0)
}

/// Whether a set of x values spans enough to read best on a log scale.
pub(crate) fn spans_decades(xs: impl Iterator<Item = f64>) -> bool {
    let (min, max) = xs.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    min > 0.0 && max / min >= 10.0
}

/// The one-room fan-out runs, grouped into lines: per server and load
/// (everything but the clients), the median run at each client count.
fn one_room_lines<'a>(data: &Data<'a>) -> Vec<(String, Config, Vec<Fanout<'a>>)> {
    let mut groups: BTreeMap<(usize, Config), BTreeMap<u64, Vec<Fanout<'a>>>> = BTreeMap::new();
    for run in &data.fanouts {
        let config = run.config();
        let (Some(1), Some(clients)) = (config.rooms, config.clients) else {
            continue;
        };
        let rank = data
            .servers
            .iter()
            .position(|s| s == run.server())
            .unwrap_or(usize::MAX);
        groups
            .entry((rank, config.without_clients()))
            .or_default()
            .entry(clients)
            .or_default()
            .push(*run);
    }
    groups
        .into_iter()
        .filter_map(|((rank, load), by_clients)| {
            let server = data.servers.get(rank)?.clone();
            let runs: Vec<Fanout<'a>> = by_clients
                .into_values()
                .filter_map(|runs| median_by_p99(runs).map(|(run, _)| run))
                .collect();
            Some((server, load, runs))
        })
        .collect()
}

/// A line's legend: the server, and its load when the plot holds lines of
/// several loads (the legend must then tell them apart).
fn legend_label(server: &str, load: Config, several_loads: bool) -> String {
    if several_loads {
        format!("{server} ({})", load.load_label())
    } else {
        server.to_owned()
    }
}

/// p99 (solid) and p50 (dashed) against clients, one room.
fn latency_chart(data: &Data<'_>) -> Option<Chart> {
    let lines = one_room_lines(data);
    let several = several_loads(&lines);
    let mut series = Vec::new();
    for (i, (server, load, runs)) in lines.iter().enumerate() {
        let color = line_color(data, server, i, several);
        let label = legend_label(server, *load, several);
        let points = |get: fn(&Fanout<'_>) -> u64| -> Vec<(f64, f64)> {
            runs.iter()
                .filter_map(|r| Some((r.config().clients? as f64, get(r) as f64 / 1000.0)))
                .filter(|&(_, y)| y > 0.0)
                .collect()
        };
        series.push(Series {
            label: format!("{label} p99"),
            color,
            dashed: false,
            marker: marker_of(data, server),
            points: points(|r| r.results.latency_us.p99_us),
        });
        series.push(Series {
            label: format!("{label} p50"),
            color,
            dashed: true,
            marker: marker_of(data, server),
            points: points(|r| r.results.latency_us.p50_us),
        });
    }
    let clients = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_log = spans_decades(clients);
    nonempty(Chart {
        title: "Fan-out latency, one room: p99 (solid) and p50 (dashed)".to_owned(),
        x: Axis {
            desc: "clients in the room".to_owned(),
            log: x_log,
            label: tick_count,
        },
        y: Axis {
            desc: "latency, ms (log scale)".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// Deliveries per second against clients, one room.
fn throughput_chart(data: &Data<'_>) -> Option<Chart> {
    let lines = one_room_lines(data);
    let several = several_loads(&lines);
    let series: Vec<Series> = lines
        .iter()
        .enumerate()
        .map(|(i, (server, load, runs))| Series {
            label: legend_label(server, *load, several),
            color: line_color(data, server, i, several),
            dashed: false,
            marker: marker_of(data, server),
            points: runs
                .iter()
                .filter_map(|r| Some((r.config().clients? as f64, r.results.deliveries_per_s)))
                .collect(),
        })
        .collect();
    let x_log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    // Deliveries grow with the room: over decades, a log scale keeps the
    // small rooms readable.
    let y_log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    nonempty(Chart {
        title: "Fan-out throughput, one room".to_owned(),
        x: Axis {
            desc: "clients in the room".to_owned(),
            log: x_log,
            label: tick_count,
        },
        y: Axis {
            desc: if y_log {
                "deliveries per second (log scale)".to_owned()
            } else {
                "deliveries per second".to_owned()
            },
            log: y_log,
            label: tick_sig,
        },
        series,
    })
}

/// Each capacity step's p99 against its clients, with the SLO as a line.
fn capacity_chart(data: &Data<'_>) -> Option<Chart> {
    let mut series = Vec::new();
    let mut slos = Vec::new();
    let mut searches = data.capacities.clone();
    searches.sort_by_key(|c| data.servers.iter().position(|s| s == c.server()));
    // The senders and their rate: in the title when every search shares
    // them, else in each line's legend.
    let mut loads: Vec<String> = searches
        .iter()
        .map(|c| c.load().senders_at_rate())
        .collect();
    loads.sort();
    loads.dedup();
    let shared_load = (loads.len() == 1).then(|| loads[0].clone());
    for search in searches {
        let points: Vec<(f64, f64)> = search
            .results
            .steps
            .iter()
            .map(|s| (s.clients as f64, s.fanout.latency_us.p99_us as f64 / 1000.0))
            .filter(|&(_, y)| y > 0.0)
            .collect();
        if let Some(slo) = search.slo_ms() {
            slos.push(slo);
        }
        let label = match &shared_load {
            Some(_) => format!("{} p99", search.server()),
            None => format!(
                "{} p99 ({})",
                search.server(),
                search.load().senders_at_rate()
            ),
        };
        series.push(Series {
            label,
            color: color_of(data, search.server()),
            dashed: false,
            marker: marker_of(data, search.server()),
            points,
        });
    }
    slos.sort_by(f64::total_cmp);
    slos.dedup();
    let (lo, hi) = x_extent(&series)?;
    for slo in slos {
        series.push(Series {
            label: format!("SLO {} ms", format::plain(slo)),
            color: GREY,
            dashed: true,
            marker: Marker::None,
            points: vec![(lo, slo), (hi, slo)],
        });
    }
    let x_log = spans_decades([lo, hi].into_iter());
    nonempty(Chart {
        title: match &shared_load {
            Some(load) => format!("Capacity search ({load}): p99 latency at each step"),
            None => "Capacity search: p99 latency at each step".to_owned(),
        },
        x: Axis {
            desc: "clients in the room".to_owned(),
            log: x_log,
            label: tick_count,
        },
        y: Axis {
            desc: "p99 latency, ms (log scale)".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// Threads or RSS against connections: per server, the baseline at zero
/// connections and one point per connections run.
fn connections_chart(
    data: &Data<'_>,
    title: &str,
    y_desc: &str,
    get: fn(&chat_loadgen::record::ProcessSample) -> f64,
) -> Option<Chart> {
    let mut series = Vec::new();
    for server in &data.servers {
        let runs = data.connections_of(server);
        let mut points = Vec::new();
        if let Some(before) = runs.first().and_then(|r| r.results.server_before) {
            points.push((0.0, get(&before)));
        }
        points.extend(runs.iter().filter_map(|r| {
            r.results
                .server_loaded
                .map(|loaded| (r.results.opened as f64, get(&loaded)))
        }));
        if points.len() > 1 || runs.iter().any(|r| r.results.server_loaded.is_some()) {
            series.push(Series {
                label: server.clone(),
                color: color_of(data, server),
                dashed: false,
                marker: marker_of(data, server),
                points,
            });
        }
    }
    nonempty(Chart {
        title: title.to_owned(),
        x: Axis {
            desc: "idle connections open".to_owned(),
            log: false,
            label: tick_count,
        },
        y: Axis {
            desc: y_desc.to_owned(),
            log: false,
            label: tick_sig,
        },
        series,
    })
}

fn several_loads(lines: &[(String, Config, Vec<Fanout<'_>>)]) -> bool {
    let mut loads: Vec<Config> = lines.iter().map(|l| l.1).collect();
    loads.sort();
    loads.dedup();
    loads.len() > 1
}

fn line_color(data: &Data<'_>, server: &str, index: usize, several: bool) -> RGBColor {
    if several {
        PALETTE[index % PALETTE.len()]
    } else {
        color_of(data, server)
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

fn x_extent(series: &[Series]) -> Option<(f64, f64)> {
    extent(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
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
pub(crate) fn axis_range(
    log: bool,
    decades: bool,
    values: impl Iterator<Item = f64>,
) -> Option<(f64, f64)> {
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
pub(crate) fn log_ticks(log: bool, (lo, hi): (f64, f64)) -> Option<usize> {
    if !log || lo <= 0.0 {
        return None;
    }
    // Whole decades spanned, as plotters counts them (at least one).
    let decades = (hi / lo).log10().floor().max(1.0);
    Some(10 * usize::try_from(decades as u64).unwrap_or(1))
}

/// Whether a log-axis tick gets a label: 1, 2 or 5 times a power of ten.
pub(crate) fn nice_log_tick(v: f64) -> bool {
    if v <= 0.0 {
        return false;
    }
    let leading = (v / 10_f64.powf(v.log10().floor())).round();
    leading == 1.0 || leading == 2.0 || leading == 5.0 || leading == 10.0
}

pub(crate) fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
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
    mesh.x_desc(chart.x.desc.as_str())
        .y_desc(chart.y.desc.as_str())
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

/// Writes every plot the data allows into `dir`, removes the others, and
/// returns those written.
pub fn write_all(data: &Data<'_>, dir: &Path) -> Result<Vec<Written>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = [
        (LATENCY_PLOT, latency_chart(data)),
        (THROUGHPUT_PLOT, throughput_chart(data)),
        (CAPACITY_PLOT, capacity_chart(data)),
        (
            THREADS_PLOT,
            connections_chart(
                data,
                "Server threads with idle connections open",
                "threads",
                |s| s.threads as f64,
            ),
        ),
        (
            RSS_PLOT,
            connections_chart(
                data,
                "Server resident memory with idle connections open",
                "RSS, MiB",
                |s| s.rss_kib as f64 / 1024.0,
            ),
        ),
    ];
    let mut written = Vec::new();
    for (file, chart) in charts {
        let path = dir.join(file);
        match chart {
            Some(chart) => {
                let svg = render(&chart).with_context(|| format!("plotting {file}"))?;
                fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
                written.push(Written {
                    file,
                    title: chart.title,
                });
            }
            None => remove_stale(&path)?,
        }
    }
    let history = history::plot_chart(data);
    match &history {
        Some(bars) => {
            let path = dir.join(HISTORY_PLOT);
            let svg =
                history::render_plot(bars).with_context(|| format!("plotting {HISTORY_PLOT}"))?;
            fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            written.push(Written {
                file: HISTORY_PLOT,
                title: bars.title.clone(),
            });
        }
        None => remove_stale(&dir.join(HISTORY_PLOT))?,
    }
    for (file, chart) in layers::plot_charts(data) {
        let path = dir.join(file);
        match chart {
            Some(chart) => {
                let svg = render(&chart).with_context(|| format!("plotting {file}"))?;
                fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
                written.push(Written {
                    file,
                    title: chart.title,
                });
            }
            None => remove_stale(&path)?,
        }
    }
    Ok(written)
}

fn remove_stale(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing the stale plot {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{TempDir, capacity_record, connections_record, fanout_record};

    #[test]
    fn every_plot_is_svg_with_text_labels() {
        let records = vec![
            fanout_record("sync", 10, 1),
            fanout_record("sync", 100, 1),
            fanout_record("sync", 1000, 1),
            fanout_record("async", 10, 1),
            fanout_record("async", 1000, 1),
            capacity_record("sync", &[(100, true), (200, false)]),
            connections_record("sync", 1000, 1000, None),
            connections_record("async", 1000, 1000, None),
        ];
        let data = Data::new(&records);
        let tmp = TempDir::new("plots-all");
        let written = write_all(&data, tmp.path()).expect("plots");
        assert_eq!(written.len(), ALL_PLOTS.len());
        for file in ALL_PLOTS {
            let svg = fs::read_to_string(tmp.path().join(file)).expect("written");
            assert!(
                svg.starts_with("<svg"),
                "{file}: {}",
                &svg[..svg.len().min(80)]
            );
            assert!(svg.trim_end().ends_with("</svg>"), "{file}");
            // Labels are real text, not missing for want of a font.
            assert!(svg.contains("<text"), "{file}");
        }
        let capacity = fs::read_to_string(tmp.path().join(CAPACITY_PLOT)).expect("written");
        assert!(
            capacity.contains("Capacity search (1 sender @ 100 msg/s)"),
            "the senders and rate are in the title"
        );
        let latency = fs::read_to_string(tmp.path().join(LATENCY_PLOT)).expect("written");
        assert!(latency.contains("sync p99") && latency.contains("async p50"));
        assert!(latency.contains("1,000"), "clients ticks are counts");
    }

    #[test]
    fn absent_data_removes_stale_plots() {
        let tmp = TempDir::new("plots-stale");
        fs::write(tmp.path().join(THREADS_PLOT), "<svg/>").expect("write");
        let records = vec![fanout_record("sync", 10, 1)];
        let data = Data::new(&records);
        let written = write_all(&data, tmp.path()).expect("plots");
        let files: Vec<&str> = written.iter().map(|w| w.file).collect();
        assert_eq!(files, [LATENCY_PLOT, THROUGHPUT_PLOT]);
        assert!(!tmp.path().join(THREADS_PLOT).exists());
    }

    #[test]
    fn identical_data_gives_identical_files() {
        let records = vec![fanout_record("sync", 10, 1), fanout_record("sync", 50, 1)];
        let data = Data::new(&records);
        let chart = latency_chart(&data).expect("chart");
        assert_eq!(render(&chart).expect("a"), render(&chart).expect("b"));
    }
}
