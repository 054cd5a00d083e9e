//! `chat-loadgen`: the load generator shared by both servers.
//!
//! It speaks only the chat protocol (through `chat-protocol`), so it drives
//! our two servers and any other server that speaks it, given a URL: the
//! Django Channels tutorial server, say. Three scenarios:
//!
//! * [`fanout`]: clients spread over rooms, open-loop senders, and every
//!   delivery accounted for: latency from the *intended* send time, loss,
//!   duplicates, order;
//! * [`capacity`]: one room, stepping clients up until p99 latency passes an
//!   SLO;
//! * [`connections`]: idle connections, as many as the server takes, and
//!   what each costs it.
//!
//! And one without a server, [`floor`]: what one thread's `write()` of a
//! server's frame to a loopback socket costs here, one frame per call and
//! several, so that a server's CPU per delivery can be stated as a multiple
//! of what the kernel alone costs. Three commands serve a sweep without
//! any load: [`machine`] writes the machine it runs on as data, [`verdict`]
//! says whether the last run of a runs file kept up, and `admit` runs the
//! [`admission`] check.
//!
//! A scenario drives one URL, or several: server processes sharing rooms
//! through a channel layer (Redis), its clients spread over them
//! ([`client::spread`]) and every check (loss, duplicates, one order per
//! room) made across them.
//!
//! With a server pid (one per URL), [`sampler`] reads the server's threads,
//! memory, CPU and context switches from `/proc` during the run, and those
//! of any other process named (the Redis server) and the load generator's
//! own, so a run can say when the load generator (not the server) was the
//! bottleneck. Every run becomes one [`chat_record::Record`]: printed as a
//! table ([`summary`]) and appended as a JSON line.
//!
//! The binary is a thin command line over this library, and a sweep driver
//! calls the library the same way, so both make the same records:
//! [`scenario::run`] turns a load, a target and what to record beside them
//! into a record, on a runtime of its own whose threads may be pinned to
//! cores ([`cpus`]); [`scenario::command_line`] is the `chat-loadgen`
//! invocation that runs the same load, for a run's README.
//!
//! Before a server is measured, [`admission`] checks that it does the job
//! the counts assume (every member of a room receives each message, the
//! sender included; nothing crosses rooms; two senders' messages reach
//! every member in one order), so that no server is faster for doing less:
//! [`admission::check`] from async code, [`admission::check_blocking`] from
//! a driver's thread.

pub mod admission;
mod arrivals;
pub mod capacity;
pub mod client;
pub mod connections;
pub mod cpus;
pub mod defaults;
pub mod fanout;
pub mod floor;
pub mod machine;
pub mod probe;
pub mod progress;

pub mod sampler;
pub mod scenario;
pub mod schedule;
pub mod soak;
pub mod summary;
pub mod tally;
pub mod verdict;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use chat_record::{Latency, ProcessFigures};

/// Send lag (p99) past which a run warns that its senders fell behind.
const LAG_WARNING_US: u64 = 50_000;

/// The commit of the working directory's checkout, or `unknown`.
pub fn current_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned())
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Warnings about the load generator itself: was it, not the server, the
/// bottleneck? `cores` is how many cores it may use.
pub fn loadgen_warnings(
    loadgen: &ProcessFigures,
    server: Option<&ProcessFigures>,
    send_lag: Option<&Latency>,
    cores: usize,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let busy = loadgen.cpu_utilization;
    if busy >= 0.85 * cores as f64 {
        warnings.push(format!(
            "the load generator kept {busy:.2} of its {cores} cores busy: it, not the server, may be the bottleneck"
        ));
    } else if let Some(server) = server
        && busy > server.cpu_utilization
        && busy >= 0.5
    {
        warnings.push(format!(
            "the load generator used more CPU ({busy:.2} cores) than the server ({:.2}): on shared cores it may limit the server",
            server.cpu_utilization
        ));
    }
    if let Some(lag) = send_lag
        && lag.p99_us > LAG_WARNING_US
    {
        warnings.push(format!(
            "senders fell behind their schedule (p99 lag {:.1} ms); latencies include the lag",
            lag.p99_us as f64 / 1000.0
        ));
    }
    warnings
}

/// Appends `record` (a [`chat_record::Record`], or a soak's record) to `path` as one
/// JSON line, creating the file (and its directory) if needed.
pub fn append_json(path: &Path, record: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut line = serde_json::to_string(record).context("cannot encode the record")?;
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .with_context(|| format!("cannot append to {}", path.display()))
}
