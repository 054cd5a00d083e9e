//! The section's tables: the process ladder, the shard comparison and the
//! mixed room.

use crate::data::anomalies;
use crate::format;
use crate::tables::{FLAG, Table};

use super::{KEPT_UP, LayerRun, Row};

const DASH: &str = "—";

fn opt(v: Option<f64>, f: fn(f64) -> String) -> String {
    v.map_or_else(|| DASH.to_owned(), f)
}

/// CPU seconds per 1,000 deliveries, shown in milliseconds.
fn ms_per_1000(s: Option<f64>) -> String {
    opt(s.map(|s| s * 1000.0), format::sig)
}

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| DASH.to_owned(), format::ms)
}

/// What went wrong in a row's run, whether it fell behind, and how many
/// runs it stands for.
fn notes(row: &Row<'_>) -> String {
    let run = row.run;
    let issues = anomalies(run.run.results);
    let mut parts = Vec::new();
    if !issues.is_empty() {
        parts.push(format!("{FLAG} {}", issues.join("; ")));
    } else if !run.kept_up() {
        parts.push(format!(
            "{FLAG} delivered under {}% of the deliveries/s asked",
            format::plain((KEPT_UP * 100.0).round())
        ));
    }
    if row.repeats > 1 {
        parts.push(format!("median of {} runs by p99", row.repeats));
    }
    parts.join("; ")
}

/// The memory layer and one Redis at each process count: one row per
/// server, configuration and rate.
pub fn ladder(rows: &[Row<'_>], cores: Option<u64>) -> String {
    let busy = match cores {
        Some(n) => format!("all cores busy (of {n})"),
        None => "all cores busy".to_owned(),
    };
    let mut table = Table::new(&[
        ("server", false),
        ("rooms in", false),
        ("msg/s asked", true),
        ("deliveries/s asked", true),
        ("deliveries/s", true),
        ("p50, ms", true),
        ("p99, ms", true),
        ("servers: cores", true),
        ("servers: CPU ms per 1,000 deliveries", true),
        ("Redis: cores", true),
        ("Redis: CPU ms per 1,000 deliveries", true),
        ("Redis: CPU µs per message", true),
        ("load generator: cores", true),
        (busy.as_str(), true),
        ("notes", false),
    ]);
    for row in rows {
        let r = row.run;
        let (p50, p99) = match r.latency_us() {
            Some((p50, p99)) => (Some(p50), Some(p99)),
            None => (None, None),
        };
        table.push(vec![
            r.server().to_owned(),
            r.setup().describe(),
            opt(r.asked_messages_per_s(), format::sig),
            opt(r.asked_deliveries_per_s(), format::sig),
            format::sig(r.delivered_per_s()),
            ms(p50),
            ms(p99),
            opt(r.server_cores(), format::sig),
            ms_per_1000(r.server_cpu_per_1000()),
            opt(r.redis_cores(), format::sig),
            ms_per_1000(r.redis_cpu_per_1000()),
            opt(r.redis_us_per_message(), format::sig),
            format::sig(r.loadgen_cores()),
            opt(r.cores_busy(), format::sig),
            notes(row),
        ]);
    }
    table.render()
}

/// `before → after`.
fn arrow(before: String, after: String) -> String {
    format!("{before} → {after}")
}

/// Each shard's cores busy: `0.21 + 0.19`.
fn shard_cores(run: &LayerRun<'_>) -> String {
    let cores: Vec<String> = run
        .redis()
        .iter()
        .map(|(_, f)| format::sig(f.cpu_utilization))
        .collect();
    if cores.is_empty() {
        DASH.to_owned()
    } else {
        cores.join(" + ")
    }
}

/// The sharded runs beside the runs on one Redis at the same load: one
/// Redis → the shards.
pub fn shards(pairs: &[(Row<'_>, Option<Row<'_>>)]) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("processes", true),
        ("msg/s asked", true),
        ("Redis servers", false),
        ("deliveries/s", false),
        ("p99, ms", false),
        ("Redis: cores, each", false),
        ("servers: cores", false),
        ("notes", false),
    ]);
    for (sharded, one) in pairs {
        let s = sharded.run;
        let Some(one) = one else {
            table.push(vec![
                s.server().to_owned(),
                format::count(s.process_count() as u64),
                opt(s.asked_messages_per_s(), format::sig),
                format!("{DASH} → {}", s.shards()),
                arrow(DASH.to_owned(), format::sig(s.delivered_per_s())),
                arrow(DASH.to_owned(), ms(s.p99_us())),
                arrow(DASH.to_owned(), shard_cores(&s)),
                arrow(DASH.to_owned(), opt(s.server_cores(), format::sig)),
                format!(
                    "no run on one Redis at this load to compare with{}",
                    prefixed(&notes(sharded))
                ),
            ]);
            continue;
        };
        let o = one.run;
        let mut note = Vec::new();
        for (which, row) in [("one Redis", one), ("sharded", sharded)] {
            let n = notes(row);
            if !n.is_empty() {
                note.push(format!("{which}: {n}"));
            }
        }
        table.push(vec![
            s.server().to_owned(),
            format::count(s.process_count() as u64),
            opt(s.asked_messages_per_s(), format::sig),
            arrow(o.shards().to_string(), s.shards().to_string()),
            arrow(
                format::sig(o.delivered_per_s()),
                format::sig(s.delivered_per_s()),
            ),
            arrow(ms(o.p99_us()), ms(s.p99_us())),
            arrow(shard_cores(&o), shard_cores(&s)),
            arrow(
                opt(o.server_cores(), format::sig),
                opt(s.server_cores(), format::sig),
            ),
            note.join("; "),
        ]);
    }
    table.render()
}

fn prefixed(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("; {text}")
    }
}

/// The mixed room: per run, each process's clients, deliveries, latency
/// and CPU, then Redis.
pub fn mixed(rows: &[Row<'_>]) -> String {
    let mut table = Table::new(&[
        ("msg/s asked", true),
        ("process", false),
        ("clients", true),
        ("deliveries/s to its clients", true),
        ("its clients' p99, ms", true),
        ("cores", true),
        ("CPU ms per 1,000 deliveries", true),
        ("share of the servers' CPU", true),
        ("share of the deliveries", true),
        ("notes", false),
    ]);
    for row in rows {
        let r = row.run;
        let asked = opt(r.asked_messages_per_s(), format::sig);
        let processes = r.processes();
        let total_cpu: f64 = processes.iter().map(|p| p.cpu_s()).sum();
        let results = r.run.results;
        // Deliveries per second per delivery counted: the same window for
        // every process of the run.
        let rate = if results.delivered > 0 {
            results.deliveries_per_s / results.delivered as f64
        } else {
            0.0
        };
        let run_notes = notes(row);
        for (i, p) in processes.iter().enumerate() {
            table.push(vec![
                asked.clone(),
                p.server.to_owned(),
                format::count(p.clients),
                p.deliveries
                    .map_or_else(|| DASH.to_owned(), |d| format::sig(d as f64 * rate)),
                ms(p.p99_us),
                format::sig(p.figures.cpu_utilization),
                ms_per_1000(p.figures.cpu_s_per_1000_deliveries),
                if total_cpu > 0.0 {
                    format::percent(p.cpu_s() / total_cpu)
                } else {
                    DASH.to_owned()
                },
                p.deliveries.filter(|_| results.delivered > 0).map_or_else(
                    || DASH.to_owned(),
                    |d| format::percent(d as f64 / results.delivered as f64),
                ),
                if i == 0 {
                    run_notes.clone()
                } else {
                    String::new()
                },
            ]);
        }
        if let Some(cores) = r.redis_cores() {
            table.push(vec![
                asked.clone(),
                match r.shards() {
                    1 => "Redis".to_owned(),
                    n => format!("Redis, {n} shards"),
                },
                DASH.to_owned(),
                DASH.to_owned(),
                DASH.to_owned(),
                format::sig(cores),
                ms_per_1000(r.redis_cpu_per_1000()),
                DASH.to_owned(),
                DASH.to_owned(),
                String::new(),
            ]);
        }
        table.push(vec![
            asked,
            "all servers".to_owned(),
            format::count(processes.iter().map(|p| p.clients).sum()),
            format::sig(r.delivered_per_s()),
            ms(r.p99_us()),
            opt(r.server_cores(), format::sig),
            ms_per_1000(r.server_cpu_per_1000()),
            DASH.to_owned(),
            DASH.to_owned(),
            String::new(),
        ]);
    }
    table.render()
}
