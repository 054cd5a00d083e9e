//! The JSON record of one run: what `--json FILE` appends, one object per
//! line, and what the report generator reads.
//!
//! Units are in the field names: `_us` microseconds, `_kib` KiB, `_s`
//! seconds, `_per_s` per second, `_bytes` bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One run of one scenario against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `fanout`, `capacity` or `connections`.
    pub scenario: String,
    /// The server's label (`--label`, e.g. `sync`, `async`, `django`).
    pub server: String,
    /// The commit of this project that ran the load (`git rev-parse HEAD`).
    pub commit: String,
    /// When the run started, RFC 3339, UTC.
    pub started_at: String,
    /// The URL driven (the room path is appended per client).
    pub url: String,
    /// The scenario's parameters, as given.
    pub params: Params,
    /// What the scenario measured.
    pub results: Results,
    /// The server process, sampled from `/proc` (with `--server-pid`).
    pub server_process: Option<ProcessFigures>,
    /// The load generator's own process.
    pub loadgen_process: ProcessFigures,
    /// Anything a reader must not miss: loss, errors, the load generator
    /// being the bottleneck.
    pub warnings: Vec<String>,
}

/// Parameters of a run (those that do not apply to a scenario are absent).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Params {
    /// Clients connected (fan-out), or the target (connections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<u64>,
    /// Rooms the clients are spread over, evenly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<u64>,
    /// Senders per room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub senders_per_room: Option<u64>,
    /// Messages per second, per sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// Size of each message's text, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<u64>,
    /// Seconds of load before measuring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup_s: Option<f64>,
    /// Seconds measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Capacity search: first step, step size, last step (clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// Capacity search: clients added per step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    /// Capacity search: the largest step tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Capacity search: the p99 latency limit, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_ms: Option<f64>,
    /// Connections: seconds the connections are held open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_s: Option<f64>,
    /// Connections: loopback source addresses used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_addrs: Option<u64>,
}

/// A latency distribution, from an HDR histogram, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_us: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest.
    pub max_us: u64,
}

/// What a scenario measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Results {
    /// `fanout`.
    Fanout(FanoutResults),
    /// `capacity`.
    Capacity(CapacityResults),
    /// `connections`.
    Connections(ConnectionsResults),
}

/// Counts and latencies of one fan-out run (the measured window only, after
/// the warm-up).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FanoutResults {
    /// Messages sent in the measured window.
    pub sent: u64,
    /// Deliveries those messages owe: each one, to every member of its room.
    pub expected_deliveries: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// Expected deliveries that never arrived to members still connected,
    /// once deliveries had stopped arriving: silent loss.
    pub lost: u64,
    /// Expected deliveries still missing when the run stopped waiting at
    /// its drain cap while deliveries were still arriving: a server far
    /// behind. Each is recorded in `latency_us` at the time the run stopped
    /// waiting (a lower bound on its latency).
    #[serde(default)]
    pub late: u64,
    /// Expected deliveries owed to members that the server closed (1013 for
    /// a slow consumer, say): not silent, since the member was told.
    #[serde(default)]
    pub missed_by_closed: u64,
    /// Seconds spent waiting for the last deliveries after the senders
    /// stopped.
    #[serde(default)]
    pub drain_s: f64,
    /// Deliveries that arrived twice or more.
    pub duplicated: u64,
    /// Deliveries that arrived before an earlier message of the same sender.
    pub out_of_order: u64,
    /// Members whose order of a room's messages differs from the room's
    /// first member's (the total order per room); counted when nothing was
    /// lost.
    pub order_mismatches: u64,
    /// `{"error": ...}` frames received.
    pub error_replies: u64,
    /// Close codes received from the server, by code.
    ///
    /// Keys are the codes as strings, as JSON objects need (and as serde's
    /// untagged [`Results`] can read back).
    pub close_codes: BTreeMap<String, u64>,
    /// Clients that could not connect.
    pub connect_failures: u64,
    /// Messages sent per second (measured window).
    pub messages_per_s: f64,
    /// Deliveries per second: delivered over the time from the start of the
    /// window to the last measured delivery (at least the window), so a
    /// server still delivering after the window is not credited with more
    /// than it did.
    pub deliveries_per_s: f64,
    /// Fan-out latency: intended send time to each arrival.
    pub latency_us: Latency,
    /// How late the senders sent, behind their schedule.
    pub send_lag_us: Latency,
    /// Connection set-up (TCP connect and WebSocket handshake).
    pub connect_us: Latency,
}

/// One step of the capacity search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityStep {
    /// Clients in the room.
    pub clients: u64,
    /// Whether the step held: p99 within the SLO, no loss, no errors.
    pub held: bool,
    /// The step's fan-out figures.
    pub fanout: FanoutResults,
}

/// The capacity search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityResults {
    /// Every step tried, in order.
    pub steps: Vec<CapacityStep>,
    /// The largest number of clients that held, if any did.
    pub capacity_clients: Option<u64>,
}

/// Idle connections opened and held.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectionsResults {
    /// Connections asked for.
    pub target: u64,
    /// Connections that completed their handshake.
    pub opened: u64,
    /// Connections that failed (refused, reset, timed out).
    pub failed: u64,
    /// The first failure, as the load generator saw it.
    pub first_failure: Option<String>,
    /// Connections still open at the end of the hold (none closed by the
    /// server meanwhile).
    pub held: u64,
    /// Connection set-up time.
    pub connect_us: Latency,
    /// Handshakes completed per second while opening.
    pub handshakes_per_s: f64,
    /// The server before the first connection.
    pub server_before: Option<ProcessSample>,
    /// The server with every connection open.
    pub server_loaded: Option<ProcessSample>,
    /// (loaded - before) threads / opened connections.
    pub threads_per_connection: Option<f64>,
    /// (loaded - before) RSS / opened connections, KiB.
    pub rss_per_connection_kib: Option<f64>,
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Threads.
    pub threads: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
}

/// A process, sampled during a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// Its pid.
    pub pid: u32,
    /// Samples taken.
    pub samples: u64,
    /// Most threads seen.
    pub threads_peak: u64,
    /// Mean threads.
    pub threads_mean: f64,
    /// Largest RSS seen, KiB.
    pub rss_peak_kib: u64,
    /// Mean RSS, KiB.
    pub rss_mean_kib: f64,
    /// User CPU over the measured window, seconds.
    pub cpu_user_s: f64,
    /// System CPU over the measured window, seconds.
    pub cpu_system_s: f64,
    /// (user + system) / wall time of the window: 1.0 is one core busy.
    pub cpu_utilization: f64,
    /// CPU seconds per 1,000 deliveries (fan-out scenarios).
    pub cpu_s_per_1000_deliveries: Option<f64>,
    /// Voluntary context switches over the window, all threads.
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches over the window, all threads.
    pub involuntary_ctxt_switches: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_record_reads_back() {
        let mut fanout = FanoutResults::default();
        fanout.close_codes.insert("1013".into(), 3);
        fanout.latency_us.p99_us = 1234;
        let kinds = [
            Results::Fanout(fanout.clone()),
            Results::Capacity(CapacityResults {
                steps: vec![CapacityStep {
                    clients: 10,
                    held: false,
                    fanout,
                }],
                capacity_clients: None,
            }),
            Results::Connections(ConnectionsResults {
                target: 5,
                first_failure: Some("503".into()),
                ..ConnectionsResults::default()
            }),
        ];
        for results in kinds {
            let record = Record {
                scenario: "x".into(),
                server: "s".into(),
                commit: "c".into(),
                started_at: "t".into(),
                url: "ws://u".into(),
                params: Params::default(),
                results,
                server_process: Some(ProcessFigures::default()),
                loadgen_process: ProcessFigures::default(),
                warnings: vec!["w".into()],
            };
            let line = serde_json::to_string(&record).expect("encodes");
            let back: Record = serde_json::from_str(&line).expect("reads back");
            assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
        }
    }
}
