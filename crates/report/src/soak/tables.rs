//! The section's tables: the load and what it counted, one column per
//! server; then each server's memory, threads and descriptors at the four
//! moments [`super::figures`] defines.

use chat_loadgen::soak::record::{SoakParams, SoakRecord, SoakTotals};

use crate::format;
use crate::tables::{FLAG, Table};

use super::figures::{Level, Resources, WINDOW};

/// A duration: `45 s`, `20 min`, `2 h 05 min`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 60.0 {
        return format!("{} s", number(s));
    }
    let minutes = (s / 60.0).round() as u64;
    if minutes < 60 {
        format!("{minutes} min")
    } else {
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

/// A share as a whole percentage: `10%`.
pub fn share(fraction: f64) -> String {
    format!("{}%", format::plain((fraction * 100.0).round()))
}

/// A count that may be a median (`45`, `45.5`), or a number of seconds.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format::plain(x)
    } else {
        format::sig(x)
    }
}

/// A growth with its sign: `+1.50`, `-3`, `+0`.
pub fn signed(x: f64, show: fn(f64) -> String) -> String {
    if x < 0.0 {
        format!("−{}", show(-x))
    } else {
        format!("+{}", show(x))
    }
}

/// `n`, flagged when it is not zero.
fn bad_count(n: u64) -> String {
    if n == 0 {
        "0".to_owned()
    } else {
        format!("{FLAG} {}", format::count(n))
    }
}

/// `n, m what`, flagged when `ok` says so.
fn pair(n: u64, m: u64, what: &str, ok: bool) -> String {
    let cell = format!("{}, {} {what}", format::count(n), format::count(m));
    if ok { cell } else { format!("{FLAG} {cell}") }
}

/// Seconds as `every 30 s`, or `none` for 0.
fn every(s: f64) -> String {
    if s > 0.0 {
        format!("every {}", duration(s))
    } else {
        "none".to_owned()
    }
}

/// The rows of the totals table: a label and a cell from each record.
type Row = (&'static str, fn(&SoakRecord) -> String);

const ROWS: [Row; 17] = [
    ("result", |r| {
        if r.passed {
            "passed".to_owned()
        } else {
            format!("{FLAG} **failed**")
        }
    }),
    ("load ran for", |r| duration(r.params.duration_s)),
    ("steady rooms (members each)", |r| rooms(&r.params)),
    ("msg/s per steady room, senders", |r| {
        format!(
            "{}, {}",
            format::plain(r.params.rate_per_room_per_s),
            format::count(u64::from(r.params.senders_per_room))
        )
    }),
    ("churn: connect–join–send–disconnect cycles/s", |r| {
        format::plain(r.params.churn_per_s)
    }),
    ("a slow reader", |r| every(r.params.slow_reader_every_s)),
    ("a hostile client", |r| every(r.params.bad_client_every_s)),
    ("server sampled", |r| {
        format!(
            "{}, {} samples",
            every(r.params.sample_interval_s),
            format::count(r.samples.len() as u64)
        )
    }),
    ("messages sent", |r| format::count(r.totals.sent)),
    ("deliveries: delivered of owed", |r| delivered(&r.totals)),
    ("lost / duplicated / out of order", |r| {
        let t = &r.totals;
        [t.lost, t.duplicates, t.out_of_order]
            .map(bad_count)
            .join(" / ")
    }),
    ("unexpected closes", |r| {
        bad_count(r.totals.unexpected_closes)
    }),
    ("foreign frames received", |r| {
        bad_count(r.totals.foreign_frames)
    }),
    ("churn cycles, failed", |r| {
        let t = &r.totals;
        pair(
            t.churn_cycles,
            t.churn_failures,
            "failed",
            t.churn_failures == 0,
        )
    }),
    ("slow readers, closed with 1013", |r| {
        let t = &r.totals;
        pair(t.slow_readers, t.slow_readers_closed_1013, "closed", true)
    }),
    ("hostile clients, answered", |r| {
        let t = &r.totals;
        pair(
            t.bad_clients,
            t.bad_clients_answered,
            "answered",
            t.bad_clients_answered >= t.bad_clients,
        )
    }),
    ("commit", |r| {
        format!("`{}`", &r.commit[..r.commit.len().min(12)])
    }),
];

/// `3 rooms (2, 10, 50)`.
fn rooms(p: &SoakParams) -> String {
    let sizes: Vec<String> = p
        .room_sizes
        .iter()
        .map(|n| format::count(u64::from(*n)))
        .collect();
    format!(
        "{} ({})",
        format::plural(p.room_sizes.len() as u64, "room"),
        sizes.join(", ")
    )
}

/// `1,234 of 1,240 (99.5%)`.
fn delivered(t: &SoakTotals) -> String {
    let share = if t.expected > 0 {
        format!(
            " ({})",
            format::percent(t.delivered as f64 / t.expected as f64)
        )
    } else {
        String::new()
    };
    format!(
        "{} of {}{share}",
        format::count(t.delivered),
        format::count(t.expected)
    )
}

/// The load and the totals: one column per record, `headers` naming them.
pub fn totals(records: &[&SoakRecord], headers: &[String]) -> String {
    let mut columns = vec![("", false)];
    columns.extend(headers.iter().map(|h| (h.as_str(), true)));
    let mut table = Table::new(&columns);
    for (label, cell) in ROWS {
        let mut row = vec![label.to_owned()];
        row.extend(records.iter().map(|r| cell(r)));
        table.push(row);
    }
    table.render()
}

/// The header of the early column, naming how it is computed.
pub fn early_header() -> String {
    format!("early (median, first {})", share(WINDOW))
}

/// The header of the midway column.
pub fn midway_header() -> String {
    format!("midway (median, from 50%, {})", share(WINDOW))
}

/// The header of the end column.
pub fn end_header() -> String {
    format!("end (median, last {})", share(WINDOW))
}

/// One server's resources: start, early, midway, peak, end, growth over
/// the second half.
pub fn resources(r: &Resources) -> String {
    let early = early_header();
    let midway = midway_header();
    let end = end_header();
    let mut table = Table::new(&[
        ("", false),
        ("start (before load)", true),
        (early.as_str(), true),
        (midway.as_str(), true),
        ("peak", true),
        (end.as_str(), true),
        ("end − midway", true),
    ]);
    let row = |label: &str, level: &Level, show: fn(f64) -> String| {
        vec![
            label.to_owned(),
            show(level.start),
            show(level.early),
            show(level.midway),
            show(level.peak),
            show(level.end),
            signed(level.growth(), show),
        ]
    };
    table.push(row("RSS, MiB", &r.rss_mib, format::sig));
    table.push(row("threads", &r.threads, number));
    table.push(row("file descriptors", &r.fds, number));
    table.push(row(
        "client connections (load generator)",
        &r.clients,
        number,
    ));
    table.render()
}
