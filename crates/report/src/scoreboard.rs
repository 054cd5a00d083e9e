//! The scoreboard: every figure measured for both of this workspace's
//! servers, listed under the one that did better.
//!
//! It ends the discussion with the plain count the prose explains: no
//! figure is left out for being inconvenient, and a difference under the
//! tie threshold is listed as a tie.

use std::fmt::Write as _;

use chat_loadgen::record::ConnectionsResults;

use crate::compare::{Better, FanoutFigures, Outcome, factor_text, outcome, tie_text};
use crate::data::{ASYNC, CapacityFinding, Data, SYNC};
use crate::format;

/// One figure of the scoreboard: both servers' values, and how to show
/// them.
struct Row {
    what: String,
    sync: f64,
    asynch: f64,
    better: Better,
    /// The values as shown (a bound is shown as one: `≥ 3,000`).
    texts: (String, String),
    /// Whether the factor between the values means something (not for a
    /// bound).
    factor: bool,
}

impl Row {
    fn new(what: String, values: Option<(f64, f64)>, better: Better) -> Option<Self> {
        let (sync, asynch) = values?;
        Some(Self {
            what,
            sync,
            asynch,
            better,
            texts: (format::sig(sync), format::sig(asynch)),
            factor: true,
        })
    }
}

/// The capacity row: a search that never failed only gives a lower bound,
/// and one where no step held an upper bound, so the comparison is made
/// only when the bounds allow it, and without a factor.
fn capacity_row(data: &Data<'_>) -> Option<Row> {
    let (s, a) = (
        data.capacity_of(SYNC)?.finding(),
        data.capacity_of(ASYNC)?.finding(),
    );
    let value = |f: CapacityFinding| match f {
        CapacityFinding::Held(n) => Some((n as f64, format::count(n))),
        CapacityFinding::AtLeast(n) => Some((n as f64, format!("≥ {}", format::count(n)))),
        CapacityFinding::Below(n) => Some((0.0, format!("< {}", format::count(n)))),
        CapacityFinding::NoSteps => None,
    };
    let ((sv, st), (av, at)) = (value(s)?, value(a)?);
    // The smaller value must be exact (or an upper bound) for the larger
    // one to win: a lower bound may hide anything above it.
    let smaller = if sv <= av { s } else { a };
    if matches!(smaller, CapacityFinding::AtLeast(_)) {
        return None;
    }
    Some(Row {
        what: "capacity at the SLO (clients)".to_owned(),
        sync: sv,
        asynch: av,
        better: Better::Higher,
        texts: (st, at),
        factor: false,
    })
}

/// Every figure both servers have, with the one that did better.
pub fn scoreboard(data: &Data<'_>, out: &mut String) {
    let mut rows: Vec<Option<Row>> = Vec::new();
    let peak = |s| data.peak_run(s).map(|r| r.results.deliveries_per_s);
    rows.push(Row::new(
        "peak fan-out throughput (deliveries/s)".to_owned(),
        peak(SYNC).zip(peak(ASYNC)),
        Better::Higher,
    ));
    for config in data.common_configs(SYNC, ASYNC) {
        let p99 = |s| {
            data.median_run(s, config)
                .map(|(r, _)| r.results.latency_us.p99_us as f64 / 1000.0)
        };
        rows.push(Row::new(
            format!("p99 latency, ms, at {config}"),
            p99(SYNC).zip(p99(ASYNC)),
            Better::Lower,
        ));
    }
    rows.push(capacity_row(data));
    let conn = |s, get: fn(&ConnectionsResults) -> Option<f64>| {
        data.largest_connections_run(s).and_then(|c| get(c.results))
    };
    let threads = |r: &ConnectionsResults| r.threads_per_connection;
    let rss = |r: &ConnectionsResults| r.rss_per_connection_kib;
    rows.push(Row::new(
        "threads per connection".to_owned(),
        conn(SYNC, threads).zip(conn(ASYNC, threads)),
        Better::Lower,
    ));
    rows.push(Row::new(
        "RSS per connection (KiB)".to_owned(),
        conn(SYNC, rss).zip(conn(ASYNC, rss)),
        Better::Lower,
    ));
    if let Some(config) = data.largest_common_one_room(SYNC, ASYNC) {
        let figures = |s| {
            data.median_run(s, config)
                .map(|(r, _)| FanoutFigures::of(r))
        };
        let (sf, af) = (figures(SYNC), figures(ASYNC));
        let pair = |get: fn(&FanoutFigures) -> Option<f64>| {
            sf.as_ref().and_then(get).zip(af.as_ref().and_then(get))
        };
        rows.push(Row::new(
            format!("server CPU s per 1,000 deliveries at {config}"),
            pair(|f| f.cpu_per_1000),
            Better::Lower,
        ));
        rows.push(Row::new(
            format!("voluntary context switches per delivery at {config}"),
            pair(|f| f.switches),
            Better::Lower,
        ));
    }
    let held = |s| {
        data.connections_of(s)
            .iter()
            .map(|c| c.results.held)
            .max()
            .map(|h| h as f64)
    };
    rows.push(Row::new(
        "idle connections held".to_owned(),
        held(SYNC).zip(held(ASYNC)),
        Better::Higher,
    ));

    let mut wins = [(SYNC, Vec::new()), (ASYNC, Vec::new())];
    let mut ties = Vec::new();
    for row in rows.into_iter().flatten() {
        let line = format!("{}: sync {}, async {}", row.what, row.texts.0, row.texts.1);
        match outcome((SYNC, row.sync), (ASYNC, row.asynch), row.better) {
            Outcome::Tie => ties.push(line),
            Outcome::Wins(w, f) => {
                let entry = if row.factor {
                    format!("{line} ({})", factor_text(f))
                } else {
                    line
                };
                if let Some(slot) = wins.iter_mut().find(|(s, _)| *s == w) {
                    slot.1.push(entry);
                }
            }
        }
    }
    out.push_str("### Where each model wins\n\n");
    let _ = writeln!(
        out,
        "Every figure measured for both servers, with the better one (a difference under \
         {} is a tie):\n",
        tie_text()
    );
    for (server, list) in &wins {
        if list.is_empty() {
            let _ = writeln!(out, "- **{server}** is better on none of them.");
        } else {
            let _ = writeln!(out, "- **{server}** is better on:");
            for item in list {
                let _ = writeln!(out, "  - {item}");
            }
        }
    }
    if !ties.is_empty() {
        out.push_str("- **Ties:**\n");
        for item in &ties {
            let _ = writeln!(out, "  - {item}");
        }
    }
    out.push('\n');
}
