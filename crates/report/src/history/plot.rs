//! The stall experiment's plot: the quiet room's p99, one horizontal bar
//! per server and setting, history off included as the reference.
//!
//! The configurations are categories, not a scale, so this is a bar chart
//! on a segmented axis rather than one of `plots`' line charts; it shares
//! their palette, axis ranges and log-scale ticks. A range of ten times or
//! more is drawn on a log scale, so that a stalled setting's seconds and a
//! bridge's milliseconds both read.

use anyhow::Result;
use plotters::coord::ranged1d::{AsRangedCoord, IntoSegmentedCoord, SegmentValue, ValueFormatter};
use plotters::prelude::*;

use crate::data::{Data, OWN_SERVERS};
use crate::format;
use crate::plots::{
    PALETTE, axis_range, log_ticks, nice_log_tick, plot_error, spans_decades, tick_sig,
};

use super::{Experiment, History, Setting};

/// The plot's file name under the plots directory.
pub const HISTORY_PLOT: &str = "history-stall-quiet-p99.svg";

const WIDTH: u32 = 1000;
/// Height per bar, and around them (caption, axis), in pixels.
const BAR_HEIGHT: u32 = 44;
const FRAME_HEIGHT: u32 = 140;

/// The bars, ready to draw, top to bottom.
#[derive(Debug, Clone)]
pub struct Bars {
    /// The caption.
    pub title: String,
    /// One label per bar: `async, inline`.
    pub labels: Vec<String>,
    /// The quiet room's p99, milliseconds.
    pub values_ms: Vec<f64>,
    /// Each bar's colour: its server's.
    pub colors: Vec<RGBColor>,
    /// A logarithmic value axis.
    pub log: bool,
}

/// The bars of the stall experiment, if it was run.
pub fn chart(data: &Data<'_>) -> Option<Bars> {
    let history = History::new(data);
    let rows: Vec<_> = history
        .rows(Experiment::Stall)
        .into_iter()
        .filter(|r| r.run.results().latency_us.p99_us > 0)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut delays: Vec<String> = rows
        .iter()
        .filter(|r| r.run.setting != Setting::Off)
        .filter_map(|r| r.run.delay_ms())
        .map(format::plain)
        .collect();
    delays.dedup();
    let several_loads = rows
        .iter()
        .any(|r| r.run.load_key() != rows[0].run.load_key());
    let title = match delays.as_slice() {
        [delay] => format!("Quiet room p99 beside a busy room, {delay} ms per database call"),
        _ => "Quiet room p99 beside a busy room".to_owned(),
    };
    let color = |server: &str| {
        let rank = OWN_SERVERS
            .iter()
            .position(|s| *s == server)
            .unwrap_or(OWN_SERVERS.len());
        PALETTE[rank % PALETTE.len()]
    };
    let values_ms: Vec<f64> = rows
        .iter()
        .map(|r| r.run.results().latency_us.p99_us as f64 / 1000.0)
        .collect();
    Some(Bars {
        title,
        labels: rows
            .iter()
            .map(|r| {
                let setting = match r.run.setting {
                    Setting::Off => "history off",
                    Setting::Thread => "own thread",
                    other => other.name(),
                };
                let mut label = format!("{}, {setting}", r.run.server());
                if several_loads {
                    label.push_str(&format!(" ({})", r.run.config().load_label()));
                }
                label
            })
            .collect(),
        log: spans_decades(values_ms.iter().copied()),
        values_ms,
        colors: rows.iter().map(|r| color(r.run.server())).collect(),
    })
}

/// Draws the bars into an SVG string.
pub fn render(bars: &Bars) -> Result<String> {
    let n = u32::try_from(bars.values_ms.len()).unwrap_or(u32::MAX);
    let height = FRAME_HEIGHT + BAR_HEIGHT * n.max(1);
    // Room right of the longest bar for its value.
    let longest = bars.values_ms.iter().copied().fold(0.0, f64::max);
    let room = if bars.log {
        longest * 3.0
    } else {
        longest * 1.2
    };
    let values = bars.values_ms.iter().copied().chain([room]);
    let (x0, x1) = match axis_range(bars.log, true, values) {
        Some(range) => range,
        None => anyhow::bail!("a plot with no bars"),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let ticks = log_ticks(bars.log, (x0, x1));
        if bars.log {
            draw(&root, bars, (x0..x1).log_scale(), ticks, x0)?;
        } else {
            draw(&root, bars, x0..x1, ticks, x0)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw<X>(root: &Area<'_>, bars: &Bars, x: X, ticks: Option<usize>, x_start: f64) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let n = i32::try_from(bars.values_ms.len()).unwrap_or(i32::MAX);
    let mut ctx = ChartBuilder::on(root)
        .caption(&bars.title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(190)
        // One segment per bar: the range's ends are both values.
        .build_cartesian_2d(x, (0..n - 1).into_segmented())
        .map_err(plot_error)?;
    // The first bar on top: segment 0 is at the bottom.
    let row_of = |y: i32| usize::try_from(n - 1 - y).ok();
    let y_fmt = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(y) => row_of(*y)
            .and_then(|i| bars.labels.get(i))
            .cloned()
            .unwrap_or_default(),
        _ => String::new(),
    };
    let log = bars.log;
    let x_fmt = move |v: &f64| {
        if !log || nice_log_tick(*v) {
            tick_sig(*v)
        } else {
            String::new()
        }
    };
    let mut mesh = ctx.configure_mesh();
    mesh.disable_y_mesh()
        .y_labels(bars.labels.len())
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&x_fmt)
        .x_desc(if log {
            "quiet room p99, ms (log scale)"
        } else {
            "quiet room p99, ms"
        })
        .bold_line_style(RGBColor(205, 205, 205))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15));
    if let Some(n) = ticks {
        mesh.x_labels(n).x_max_light_lines(1);
    }
    mesh.draw().map_err(plot_error)?;
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (i, (&value, &color)) in bars.values_ms.iter().zip(&bars.colors).enumerate() {
        let y = n - 1 - i32::try_from(i).unwrap_or(0);
        let mut bar = Rectangle::new(
            [
                (x_start, SegmentValue::Exact(y)),
                (value, SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(8, 8, 0, 0);
        ctx.draw_series(std::iter::once(bar)).map_err(plot_error)?;
        let label = EmptyElement::at((value, SegmentValue::CenterOf(y)))
            + Text::new(format!("{} ms", format::sig(value)), (6, -7), font.clone());
        ctx.draw_series(std::iter::once(label))
            .map_err(plot_error)?;
    }
    Ok(())
}
