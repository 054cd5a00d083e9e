//! The performance targets the project set itself (issue 4), each beside
//! what this run measured, whether it is met, and, where it is not, why.
//!
//! Every figure comes from the run's records, through the same accessors
//! as the summary table; the explanations are fixed text, chosen by the
//! outcome, never by hand per run.

use std::fmt::Write as _;

use crate::data::{CapacityFinding, Data, IDLE_CONNECTIONS, PEAK_CLIENTS as CLIENTS};
use crate::format;

/// Connections of the scale target.
const SCALE_CONNECTIONS: u64 = 100_000;

/// One target: what it asks, what async measured, whether that meets it,
/// what sync measured beside it, and the explanation.
struct Target {
    asks: &'static str,
    async_cell: String,
    met: Option<bool>,
    sync_cell: String,
    why: String,
}

/// The section's body.
pub fn targets(data: &Data<'_>, readme: &str) -> String {
    let rows = [
        light_load(data),
        peak(data),
        half_peak(data),
        capacity(data),
        memory(data),
        scale(data, readme),
    ];
    let mut out = String::from(
        "What the performance work set out to reach for the async server, on this 2-core \
         machine with the load generator on the same cores, and the sync server's figure \
         beside it. Each figure is from this run (the tables above); \"not measured\" means \
         the run has no record for it.\n\n\
         | target (async) | async | met? | sync | why |\n| --- | ---: | --- | ---: | --- |\n",
    );
    for t in rows {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            t.asks, t.async_cell, met, t.sync_cell, t.why
        );
    }
    out
}

fn not_measured() -> String {
    crate::tables::NOT_MEASURED.to_owned()
}

/// CPU per delivery at 1,000 clients, 1 sender @ 100 msg/s, × the floor.
fn light_load(data: &Data<'_>) -> Target {
    let multiple = |server: &str| data.floor_multiple(data.light_load_run(server)?);
    let cell = |m: Option<f64>| m.map_or_else(not_measured, |m| format!("{}×", format::sig(m)));
    let (a, s) = (multiple("async"), multiple("sync"));
    let met = a.map(|m| m <= 1.3);
    let why = match met {
        Some(true) => "Each delivery costs about one `write()`: waking a task is cheap beside it.",
        _ => {
            "At 100 msg/s a member's frames come 10 ms apart, so nothing can be batched: each \
             delivery is one `write()` (the floor) plus waking the connection's writer task and \
             polling it, and the kernel's wake-up of the reading client (see Where the CPU \
             goes). The sync server pays a futex wake and two context switches of a writer \
             thread per delivery instead, hence its multiple."
        }
    };
    Target {
        asks: "CPU per delivery ≤ 1.3 × the write floor at 1,000 clients in one room, 1 sender @ \
               100 msg/s",
        async_cell: cell(a),
        met,
        sync_cell: cell(s),
        why: why.to_owned(),
    }
}

/// Peak deliveries/s at 1,000 clients in one room, without loss or closes.
fn peak(data: &Data<'_>) -> Target {
    let cell = |server: &str| {
        data.peak_run_at(server, CLIENTS)
            .map_or_else(not_measured, |run| {
                format!(
                    "{} (loadgen {} cores)",
                    format::count(run.results.deliveries_per_s.round() as u64),
                    format::sig(run.record.loadgen_process.cpu_utilization)
                )
            })
    };
    let a = data.peak_run_at("async", CLIENTS);
    let met = a.map(|run| run.results.deliveries_per_s >= 1e6);
    Target {
        asks: "≥ 1,000,000 deliveries/s at 1,000 clients in one room (no loss, no closes)",
        async_cell: cell("async"),
        met,
        sync_cell: cell("sync"),
        why: "Batching: a writer that wakes to several queued frames sends them in one \
              `write()`, so the busier the room, the less each delivery costs. The sync server \
              batches the same way, but each of its writers is a thread woken by a futex: its \
              2 cores go to context switches first."
            .to_owned(),
    }
}

/// p99 of the run at half the peak.
fn half_peak(data: &Data<'_>) -> Target {
    let p99 = |server: &str| {
        data.half_peak_run(server, CLIENTS)
            .map(|run| run.results.latency_us.p99_us)
    };
    let cell =
        |us: Option<u64>| us.map_or_else(not_measured, |us| format!("{} ms", format::ms(us)));
    let a = p99("async");
    let met = a.map(|us| us <= 5_000);
    let why = match met {
        Some(true) => "",
        _ => {
            "At half its peak the async server still keeps about one core busy and the load \
             generator the other (their CPU is in the fan-out table): a message's 1,000 \
             deliveries queue behind the previous message's, on cores that are never idle. \
             Only more cores, or a load generator on another machine, would show the server's \
             own latency at this rate."
        }
    };
    Target {
        asks: "p99 fan-out latency ≤ 5 ms at half the peak deliveries/s (1,000 clients)",
        async_cell: cell(a),
        met,
        sync_cell: cell(p99("sync")),
        why: why.to_owned(),
    }
}

/// Clients held in one room at p99 ≤ 250 ms, 4 senders @ 2 msg/s.
fn capacity(data: &Data<'_>) -> Target {
    let finding = |server: &str| data.capacity_of(server).map(|c| c.finding());
    let cell = |f: Option<CapacityFinding>| match f {
        Some(CapacityFinding::Held(n)) => format::count(n),
        Some(CapacityFinding::AtLeast(n)) => format!("≥ {} (every step held)", format::count(n)),
        Some(CapacityFinding::Below(n)) => format!("< {}", format::count(n)),
        Some(CapacityFinding::NoSteps) | None => not_measured(),
    };
    let a = finding("async");
    let met = match a {
        Some(CapacityFinding::Held(n) | CapacityFinding::AtLeast(n)) => Some(n >= 15_000),
        Some(CapacityFinding::Below(_)) => Some(false),
        _ => None,
    };
    Target {
        asks: "≥ 15,000 clients in one room within p99 ≤ 250 ms, 4 senders @ 2 msg/s each",
        async_cell: cell(a),
        met,
        sync_cell: cell(finding("sync")),
        why: "The async search stops where the load generator may open no more files (it \
              holds every client). The sync server stops where a step's p99 passes the SLO or \
              its thread budget refuses clients (503): each member is two threads, and each \
              message wakes every one of them."
            .to_owned(),
    }
}

/// RSS per idle connection at 10,000 connections.
fn memory(data: &Data<'_>) -> Target {
    let kib = |server: &str| {
        let run = data.connections_at(server, IDLE_CONNECTIONS)?;
        Some((run.results.rss_per_connection_kib?, run.results.opened))
    };
    let cell = |v: Option<(f64, u64)>| match v {
        Some((kib, opened)) if opened == IDLE_CONNECTIONS => format!("{} KiB", format::sig(kib)),
        Some((kib, opened)) => format!(
            "{} KiB (of {} opened)",
            format::sig(kib),
            format::count(opened)
        ),
        None => not_measured(),
    };
    let a = kib("async");
    let met = a.map(|(kib, opened)| kib <= 16.0 && opened == IDLE_CONNECTIONS);
    Target {
        asks: "≤ 16 KiB RSS per idle connection at 10,000 connections",
        async_cell: cell(a),
        met,
        sync_cell: cell(kib("sync")),
        why: "Mostly tungstenite's read buffer (4 KiB, touched on the first read; the writer \
              side has none) and two tasks' state. The sync server's is two threads' touched \
              stacks and per-thread state; its thread budget stops it before 10,000."
            .to_owned(),
    }
}

/// Idle connections held, against 100,000.
fn scale(data: &Data<'_>, readme: &str) -> Target {
    let held = |server: &str| {
        data.connections_of(server)
            .iter()
            .map(|c| c.results.held)
            .max()
    };
    let cell = |n: Option<u64>| n.map_or_else(not_measured, format::count);
    let a = held("async");
    let fd_limit = open_files_hard_limit(readme);
    let blocked = fd_limit.is_some_and(|limit| limit < SCALE_CONNECTIONS);
    let met = match a {
        Some(n) if n >= SCALE_CONNECTIONS => Some(true),
        Some(_) if blocked => None,
        Some(_) => Some(false),
        None => None,
    };
    let why = match fd_limit {
        Some(limit) if blocked => format!(
            "Blocked on this machine: every process may open at most {} files (the hard \
             limit, which only CAP_SYS_RESOURCE may raise, and the sandbox withholds it), so \
             neither a server nor the load generator can hold {} sockets. The sync server \
             meets its thread budget first (two threads per connection; see Idle \
             connections).",
            format::count(limit),
            format::count(SCALE_CONNECTIONS)
        ),
        _ => "The sync server meets its thread budget (two threads per connection; see Idle \
              connections)."
            .to_owned(),
    };
    Target {
        asks: "holds 100,000 idle connections",
        async_cell: cell(a),
        met,
        sync_cell: cell(held("sync")),
        why,
    }
}

/// The open-files hard limit bench.sh could not raise, from the run's README
/// (`the hard limit stays N`).
fn open_files_hard_limit(readme: &str) -> Option<u64> {
    let rest = &readme[readme.find("the hard limit stays ")? + "the hard limit stays ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_open_files_limit_bench_sh_could_not_raise() {
        let readme = "- open files: the hard limit stays 20000: raising it to 1048576 failed";
        assert_eq!(open_files_hard_limit(readme), Some(20_000));
        assert_eq!(open_files_hard_limit("open files: hard limit raised"), None);
    }

    #[test]
    fn a_run_without_records_measures_nothing() {
        let records = Vec::new();
        let data = Data::new(&records);
        let md = targets(&data, "");
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            8,
            "{md}"
        );
        assert!(md.contains("not measured"), "{md}");
    }
}
