//! The section's plots, on the report's line charts (`plots::render`):
//! p99 latency against the messages per second asked, one line per server
//! and configuration, the memory layer included; and the busiest Redis
//! server's cores against the same, with one core (where Redis, which runs
//! every command on one thread, saturates) drawn across.

use plotters::style::RGBColor;

use crate::data::{Data, OWN_SERVERS};
use crate::plots::{Axis, Chart, Marker, Series, spans_decades, tick_sig};

use super::{Kind, LayerRun, Layers, Row, Setup};

/// p99 against messages per second asked.
pub const P99_PLOT: &str = "layers-p99-vs-rate.svg";
/// The busiest Redis server's cores against messages per second asked.
pub const REDIS_PLOT: &str = "layers-redis-cores-vs-rate.svg";

/// Colours by configuration, in [`Setup`] order: the memory layer dark
/// grey, then one colour per Redis configuration.
const COLORS: [RGBColor; 6] = [
    RGBColor(70, 70, 70),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(120, 120, 120);

/// A configuration in a legend: `memory`, `Redis ×4`, `2 shards ×4`.
fn short(setup: Setup) -> String {
    match (setup.kind, setup.shards) {
        (Kind::Memory, _) | (_, 0) => "memory".to_owned(),
        (_, 1) => format!("Redis ×{}", setup.processes),
        (_, n) => format!("{n} shards ×{}", setup.processes),
    }
}

/// Solid with circles for chat-sync, dashed with triangles for chat-async,
/// crosses for any other server.
fn style(server: &str) -> (bool, Marker) {
    match OWN_SERVERS.iter().position(|s| *s == server) {
        Some(0) => (false, Marker::Circle),
        Some(_) => (true, Marker::Triangle),
        None => (false, Marker::Cross),
    }
}

fn counts(v: f64) -> String {
    crate::format::count(v.round().max(0.0) as u64)
}

/// One line per server and configuration of `rows`, `get` giving each
/// run's value (skipped when `None`), coloured by the configuration's
/// place in `setups` (every plot's, so that colours agree across plots).
fn lines(
    rows: &[Row<'_>],
    setups: &[Setup],
    get: impl Fn(&LayerRun<'_>) -> Option<f64>,
) -> Vec<Series> {
    let mut keys: Vec<(usize, &str, Setup)> = rows
        .iter()
        .map(|r| {
            let rank = OWN_SERVERS
                .iter()
                .position(|s| *s == r.run.server())
                .unwrap_or(OWN_SERVERS.len());
            (rank, r.run.server(), r.run.setup())
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(_, server, setup)| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.run.server() == server && r.run.setup() == setup)
                .filter_map(|r| Some((r.run.asked_messages_per_s()?, get(&r.run)?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (dashed, marker) = style(server);
            let index = setups.iter().position(|s| *s == setup).unwrap_or(0);
            Series {
                label: format!("{server}, {}", short(setup)),
                color: COLORS[index % COLORS.len()],
                dashed,
                marker,
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

fn rate_axis(series: &[Series]) -> Axis {
    let log = spans_decades(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    Axis {
        desc: if log {
            "messages per second asked, all rooms (log scale)".to_owned()
        } else {
            "messages per second asked, all rooms".to_owned()
        },
        log,
        label: counts,
    }
}

/// The p99 chart, if any run has a latency.
fn p99_chart(rows: &[Row<'_>], setups: &[Setup]) -> Option<Chart> {
    let series = lines(rows, setups, |r| {
        r.p99_us()
            .map(|us| us as f64 / 1000.0)
            .filter(|ms| *ms > 0.0)
    });
    if series.is_empty() {
        return None;
    }
    Some(Chart {
        title: "Rooms on Redis: p99 latency (×N: N processes)".to_owned(),
        x: rate_axis(&series),
        y: Axis {
            desc: "p99 latency, ms (log scale)".to_owned(),
            log: true,
            label: tick_sig,
        },
        series,
    })
}

/// The Redis chart, if any run sampled Redis: its busiest server's cores,
/// with one core across.
fn redis_chart(rows: &[Row<'_>], setups: &[Setup]) -> Option<Chart> {
    let redis: Vec<Row<'_>> = rows
        .iter()
        .copied()
        .filter(|r| r.run.shards() > 0)
        .collect();
    let mut series = lines(&redis, setups, |r| r.redis_busiest());
    if series.is_empty() {
        return None;
    }
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let x = rate_axis(&series);
    // Across the points, a little beyond (a line even under one rate).
    series.push(Series {
        label: "one core".to_owned(),
        color: GREY,
        dashed: true,
        marker: Marker::None,
        points: vec![(lo * 0.9, 1.0), (hi * 1.05, 1.0)],
    });
    Some(Chart {
        title: "Rooms on Redis: the busiest Redis server's CPU (×N: N processes)".to_owned(),
        x,
        y: Axis {
            desc: "Redis, cores busy".to_owned(),
            log: false,
            label: tick_sig,
        },
        series,
    })
}

/// Both charts the runs allow, with their file names: every row of the
/// ladder and of the shard comparison.
pub fn charts(data: &Data<'_>) -> Vec<(&'static str, Option<Chart>)> {
    let layers = Layers::new(data);
    let rows = layers.rows(|r| r.kind != Kind::Mixed);
    let mut setups: Vec<Setup> = rows.iter().map(|r| r.run.setup()).collect();
    setups.sort();
    setups.dedup();
    vec![
        (P99_PLOT, p99_chart(&rows, &setups)),
        (REDIS_PLOT, redis_chart(&rows, &setups)),
    ]
}
