//! The history section's two tables: one row per server, setting and load.

use chat_loadgen::record::FanoutResults;

use crate::data::anomalies;
use crate::format;
use crate::tables::{FLAG, Table};

use super::{HistoryRun, Row, Setting};

/// Everything wrong with some deliveries, flagged; empty when nothing is.
fn flagged(results: &FanoutResults) -> String {
    let issues = anomalies(results);
    if issues.is_empty() {
        String::new()
    } else {
        format!("{FLAG} {}", issues.join("; "))
    }
}

/// What went wrong in a row's rooms, and how many runs it stands for.
fn notes(row: &Row<'_>) -> String {
    let mut cell = flagged(row.run.results());
    if row.repeats > 1 {
        if !cell.is_empty() {
            cell.push_str("; ");
        }
        cell.push_str(&format!("median of {} runs by p99", row.repeats));
    }
    cell
}

/// p50, p99 and max in milliseconds, or dashes when nothing arrived.
fn latencies(results: &FanoutResults) -> [String; 3] {
    let l = &results.latency_us;
    if l.count == 0 {
        return ["—", "—", "—"].map(str::to_owned);
    }
    [l.p50_us, l.p99_us, l.max_us].map(format::ms)
}

fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "?".to_owned(), format::sig)
}

fn setting_cell(run: &HistoryRun<'_>) -> String {
    run.setting.describe().to_owned()
}

/// The throughput runs: messages per second and fan-out latency per load,
/// server and setting.
pub fn throughput(rows: &[Row<'_>]) -> String {
    let mut table = Table::new(&[
        ("load", false),
        ("server", false),
        ("database calls", false),
        ("asked, msg/s", true),
        ("sent, msg/s", true),
        ("delivered, msg/s", true),
        ("p50, ms", true),
        ("p99, ms", true),
        ("max, ms", true),
        ("notes", false),
    ]);
    for row in rows {
        let run = row.run;
        let [p50, p99, max] = latencies(run.results());
        table.push(vec![
            run.config().to_string(),
            run.server().to_owned(),
            setting_cell(&run),
            rate(run.offered_per_s()),
            format::sig(run.sent_per_s()),
            rate(run.delivered_per_s()),
            p50,
            p99,
            max,
            notes(row),
        ]);
    }
    table.render()
}

/// The stall runs: the quiet room's latency and the busy room's messages
/// per second, per server and setting.
pub fn stall(rows: &[Row<'_>]) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("database calls", false),
        ("delay per call, ms", true),
        ("quiet p50, ms", true),
        ("quiet p99, ms", true),
        ("quiet max, ms", true),
        ("quiet room notes", false),
        ("busy: asked, msg/s", true),
        ("busy: sent, msg/s", true),
        ("busy: delivered, msg/s", true),
        ("busy p99, ms", true),
        ("busy room notes", false),
    ]);
    for row in rows {
        let run = row.run;
        let [p50, p99, max] = latencies(run.results());
        let busy = run.busy();
        let dash = || "—".to_owned();
        let delay = match (run.setting, run.delay_ms()) {
            (Setting::Off, _) => dash(),
            (_, Some(ms)) => format::plain(ms),
            (_, None) => "?".to_owned(),
        };
        table.push(vec![
            run.server().to_owned(),
            setting_cell(&run),
            delay,
            p50,
            p99,
            max,
            notes(row),
            rate(run.busy_offered_per_s()),
            busy.map_or_else(dash, |b| format::sig(b.messages_per_s)),
            busy.map_or_else(dash, |_| rate(run.busy_delivered_per_s())),
            busy.map_or_else(dash, |b| latencies(b)[1].clone()),
            busy.map_or_else(|| "no busy room recorded".to_owned(), flagged),
        ]);
    }
    table.render()
}
