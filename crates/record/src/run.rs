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
    /// `fanout`, `capacity`, `connections` or `floor` (no server: the
    /// cost of writing to loopback sockets, labelled `floor`).
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
    /// What a run against several server processes adds: every URL, each
    /// process and their total, and the other processes sampled. Its fields
    /// are top-level keys of the same JSON object (flattened), each absent
    /// when it does not apply, so a run against one URL with at most one
    /// `--server-pid` and no `--sample-pid` writes exactly the line it wrote
    /// before they existed, and every older line reads (with an empty
    /// deployment).
    #[serde(flatten)]
    pub deployment: Deployment,
}

/// The server processes of a run beyond one, and the other processes it
/// sampled ([`Record::deployment`]). Every field is absent when it does not
/// apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// Every URL driven, in the order given, when there are several
    /// (`--url` repeated): client *k* of room *r* connected to URL
    /// (*r* + *k*) mod the number of URLs. [`Record::url`] is the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// With several `--server-pid`s (one per URL, in the same order): each
    /// server process, with the clients that connected through its URL and
    /// the deliveries to them. [`Record::server_process`] is the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_processes: Vec<ServerProcess>,
    /// With several `--server-pid`s: the server processes added up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_total: Option<ServerTotal>,
    /// Other processes sampled the same way (`--sample-pid LABEL=PID`: the
    /// Redis server, Django's daphne), by label. Their CPU per 1,000
    /// deliveries is over every delivery of the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sampled_processes: BTreeMap<String, ProcessFigures>,
}

impl Deployment {
    /// Whether it adds nothing to the [`Record`].
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One of several server processes of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerProcess {
    /// The URL it serves (its `--url`).
    pub url: String,
    /// Clients connected through that URL (fan-out and capacity: in the
    /// measured run, or the last step; connections: opened).
    pub clients: u64,
    /// Measured deliveries to those clients (fan-out and capacity, the busy
    /// room's included): the work of this process, over which its
    /// `cpu_s_per_1000_deliveries` is counted.
    pub deliveries: Option<u64>,
    /// The process, sampled from `/proc` as [`Record::server_process`] is.
    pub process: ProcessFigures,
}

/// Several server processes added up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTotal {
    /// Processes added up.
    pub processes: u64,
    /// User CPU of them all over the measured window, seconds.
    pub cpu_user_s: f64,
    /// System CPU of them all over the measured window, seconds.
    pub cpu_system_s: f64,
    /// Their CPU over the window's wall time: cores busy, all processes.
    pub cpu_utilization: f64,
    /// Their CPU seconds per 1,000 deliveries (to every process's clients).
    pub cpu_s_per_1000_deliveries: Option<f64>,
    /// Measured deliveries to every process's clients.
    pub deliveries: Option<u64>,
    /// The sum of each process's peak thread count (peaks apart in time
    /// add up to more than was ever running at once).
    pub threads_peak_sum: u64,
    /// The sum of each process's peak RSS, KiB (an upper bound, as
    /// `threads_peak_sum`).
    pub rss_peak_sum_kib: u64,
    /// Voluntary context switches over the window, all processes.
    pub voluntary_ctxt_switches: u64,
    /// Involuntary context switches over the window, all processes.
    pub involuntary_ctxt_switches: u64,
}

impl ServerTotal {
    /// `processes` added up.
    pub fn of(processes: &[ServerProcess]) -> Self {
        let mut total = Self {
            processes: processes.len() as u64,
            ..Self::default()
        };
        let mut deliveries = Some(0);
        for p in processes {
            let f = &p.process;
            total.cpu_user_s += f.cpu_user_s;
            total.cpu_system_s += f.cpu_system_s;
            total.cpu_utilization += f.cpu_utilization;
            total.threads_peak_sum += f.threads_peak;
            total.rss_peak_sum_kib += f.rss_peak_kib;
            total.voluntary_ctxt_switches += f.voluntary_ctxt_switches;
            total.involuntary_ctxt_switches += f.involuntary_ctxt_switches;
            deliveries = deliveries.zip(p.deliveries).map(|(a, b)| a + b);
        }
        total.deliveries = deliveries;
        total.cpu_s_per_1000_deliveries =
            per_1000_deliveries(total.cpu_user_s + total.cpu_system_s, deliveries);
        total
    }
}

/// CPU seconds per 1,000 deliveries, if there were any.
pub fn per_1000_deliveries(cpu_s: f64, deliveries: Option<u64>) -> Option<f64> {
    deliveries
        .filter(|&d| d > 0)
        .map(|d| cpu_s * 1000.0 / d as f64)
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
    /// Floor: loopback connection pairs written to, round-robin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Floor: the frames per `write()` measured, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_sizes: Option<Vec<u64>>,
    /// Floor: seconds of writing measured per batch size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_batch_s: Option<f64>,
    /// Floor: threads draining the sockets (not measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_threads: Option<u64>,
    /// Fan-out with a busy room (`--busy-senders`): the clients of that
    /// extra room, not counted in `clients` or `rooms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_clients: Option<u64>,
    /// Fan-out with a busy room: the senders among its clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_senders: Option<u64>,
    /// Fan-out with a busy room: messages per second, per busy sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_rate_per_s: Option<f64>,
    /// The server's command-line flags beyond the benchmark's usual ones, as
    /// given (`--server-flags`, e.g. `--history h.sqlite --db-bridge
    /// inline`): what the run measured, in the server's own words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_flags: Option<String>,
    /// The cores the server was pinned to, as a `taskset -c` list, as given
    /// (`--server-cpus`, e.g. `0-3`): recorded only, the pinning is the
    /// sweep's. Absent when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpus: Option<String>,
    /// The cores the load generator's threads were pinned to, as a
    /// `taskset -c` list, as given (`--loadgen-cpus`, e.g. `4-7`). Absent
    /// when they were not pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadgen_cpus: Option<String>,
    /// A variant run's name (`--variant`): the run measured a modified
    /// server (binaries built from an older commit, a non-default flag),
    /// an experiment set beside the normal run with the same parameters.
    /// Absent for a normal run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// What the variant is, in words (`--variant-note`): `built from commit
    /// fe44d3d, before the performance work`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_note: Option<String>,
}

/// A latency distribution, from an HDR histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// `floor`. Last, so that a record of another scenario never reads as
    /// one (it has none of `batches`, `frame_bytes`, `cpu_clock`), and a
    /// floor record has none of the fields the others need (`sent`,
    /// `steps`, `target`).
    Floor(FloorResults),
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
    /// Deliveries of any message, warm-up ones included, that arrived
    /// within the measured window, per second of it: what the server
    /// delivered then, even while it was working through a backlog
    /// (`deliveries_per_s` counts only the window's own messages). Absent
    /// from records made before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_deliveries_per_s: Option<f64>,
    /// Fan-out latency: intended send time to each arrival.
    pub latency_us: Latency,
    /// How late the senders sent, behind their schedule.
    pub send_lag_us: Latency,
    /// Connection set-up (TCP connect and WebSocket handshake).
    pub connect_us: Latency,
    /// With several URLs: the figures of the members that connected through
    /// each, in the order of the URLs (absent with one URL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_url: Vec<UrlResults>,
    /// With a busy room (`--busy-senders`): that room's own figures, every
    /// field counted for it alone. Everything above is then the other rooms'
    /// (the quiet ones) alone, so that the busy room's load shows in their
    /// latency and not in their counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_room: Option<Box<FanoutResults>>,
}

/// The members of a fan-out run that connected through one of its URLs: what
/// they were owed and got. Their room's other members may be elsewhere, so
/// an order mismatch here is a member that saw its room's messages in
/// another order than the room's first member did, wherever that one was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UrlResults {
    /// The URL.
    pub url: String,
    /// Members connected through it, senders included.
    pub clients: u64,
    /// Senders among them.
    pub senders: u64,
    /// Clients that could not connect to it.
    pub connect_failures: u64,
    /// Deliveries owed to its members: each message of their room, to each.
    pub expected_deliveries: u64,
    /// Deliveries its members got.
    pub delivered: u64,
    /// As [`FanoutResults::lost`], for its members.
    pub lost: u64,
    /// As [`FanoutResults::late`], for its members.
    pub late: u64,
    /// As [`FanoutResults::missed_by_closed`], for its members.
    pub missed_by_closed: u64,
    /// Deliveries its members got twice or more.
    pub duplicated: u64,
    /// Deliveries to its members before an earlier message of the same
    /// sender.
    pub out_of_order: u64,
    /// Its members whose order differs from their room's first member's.
    pub order_mismatches: u64,
    /// Fan-out latency to its members.
    pub latency_us: Latency,
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
    /// The server before the first connection (with several server
    /// processes, all of them added up).
    pub server_before: Option<ProcessSample>,
    /// The server with every connection open (with several, added up).
    pub server_loaded: Option<ProcessSample>,
    /// (loaded - before) threads / opened connections.
    pub threads_per_connection: Option<f64>,
    /// (loaded - before) RSS / opened connections, KiB.
    pub rss_per_connection_kib: Option<f64>,
}

/// The write floor: one thread writing one server frame to many loopback
/// sockets, one and several frames per `write()`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FloorResults {
    /// Bytes of one frame as written: the WebSocket header and the
    /// server's JSON text.
    pub frame_bytes: u64,
    /// Where the writer thread's CPU time was read: `schedstat`
    /// (`/proc/thread-self/schedstat`, nanoseconds) or `stat` (utime +
    /// stime of `/proc/thread-self/stat`, clock ticks).
    pub cpu_clock: String,
    /// One measurement per batch size, in the order run.
    pub batches: Vec<FloorBatch>,
    /// Bytes written over the run, warm-up included.
    pub bytes_written: u64,
    /// Bytes the readers received: `bytes_written` unless a connection
    /// failed.
    pub bytes_read: u64,
}

impl FloorResults {
    /// The measurement at `frames_per_write`, if it was run.
    pub fn at(&self, frames_per_write: u64) -> Option<&FloorBatch> {
        self.batches
            .iter()
            .find(|b| b.frames_per_write == frames_per_write)
    }
}

/// The write floor at one batch size: the writer thread's own CPU only.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FloorBatch {
    /// Frames concatenated into each socket's `write()`.
    pub frames_per_write: u64,
    /// Frames written.
    pub frames: u64,
    /// `write()` calls made (more than frames / frames per write only if a
    /// call wrote part of its buffer).
    pub writes: u64,
    /// Wall time of the writing, seconds.
    pub wall_s: f64,
    /// The writer thread's CPU time (user + system), seconds.
    pub cpu_s: f64,
    /// Its user part, seconds (clock ticks: coarse).
    pub cpu_user_s: f64,
    /// Its system part, seconds (clock ticks: coarse).
    pub cpu_system_s: f64,
    /// CPU per frame, microseconds.
    pub cpu_us_per_frame: f64,
    /// CPU per `write()` call, microseconds.
    pub cpu_us_per_write: f64,
    /// Frames one core could write at this cost: 1e6 / `cpu_us_per_frame`.
    pub frames_per_s_per_core: f64,
    /// Times the writer slept (voluntary context switches): a write that
    /// waited for room in a socket buffer, or for a socket its reader held.
    /// Zero when the readers kept up.
    pub writer_sleeps: u64,
    /// Times the writer was preempted (involuntary context switches).
    pub writer_preemptions: u64,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
                deployment: Deployment::default(),
            };
            let line = serde_json::to_string(&record).expect("encodes");
            let back: Record = serde_json::from_str(&line).expect("reads back");
            assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
        }
    }
    /// Lines of `results/2026-11-26-vm/runs.jsonl` (commit 9f5c0e7), one per
    /// scenario, as the load generator wrote them before `floor` existed.
    const FANOUT_2026_11_26: &str = r#"{"scenario":"fanout","server":"sync","commit":"9f5c0e725b2327d2a62b431d3350d38a40693f1c","started_at":"2026-11-26T19:58:52Z","url":"ws://127.0.0.1:35211","params":{"clients":10,"rooms":1,"senders_per_room":1,"rate_per_s":100.0,"payload_bytes":64,"warmup_s":2.0,"duration_s":10.0},"results":{"sent":1000,"expected_deliveries":10000,"delivered":10000,"lost":0,"late":0,"missed_by_closed":0,"drain_s":0.013069442,"duplicated":0,"out_of_order":0,"order_mismatches":0,"error_replies":0,"close_codes":{},"connect_failures":0,"messages_per_s":100.0,"deliveries_per_s":1000.0,"latency_us":{"count":10000,"min_us":408,"mean_us":1003.5149000000002,"p50_us":993,"p90_us":1405,"p99_us":1515,"p999_us":2793,"max_us":4295},"send_lag_us":{"count":1000,"min_us":308,"mean_us":877.5960000000001,"p50_us":866,"p90_us":1280,"p99_us":1371,"p999_us":1394,"max_us":4083},"connect_us":{"count":10,"min_us":961,"mean_us":1018.4,"p50_us":1009,"p90_us":1059,"p99_us":1113,"p999_us":1113,"max_us":1113}},"server_process":{"pid":29044,"samples":50,"threads_peak":22,"threads_mean":22.0,"rss_peak_kib":4512,"rss_mean_kib":4512.0,"cpu_user_s":0.0,"cpu_system_s":0.13,"cpu_utilization":0.01299921577291148,"cpu_s_per_1000_deliveries":0.013,"voluntary_ctxt_switches":11538,"involuntary_ctxt_switches":648},"loadgen_process":{"pid":29049,"samples":50,"threads_peak":5,"threads_mean":5.0,"rss_peak_kib":5652,"rss_mean_kib":5636.64,"cpu_user_s":0.04,"cpu_system_s":0.060000000000000005,"cpu_utilization":0.00999949413159158,"cpu_s_per_1000_deliveries":0.01,"voluntary_ctxt_switches":3699,"involuntary_ctxt_switches":731},"warnings":[]}"#;
    const CAPACITY_2026_11_26: &str = r#"{"scenario":"capacity","server":"django","commit":"9f5c0e725b2327d2a62b431d3350d38a40693f1c","started_at":"2026-11-26T20:11:33Z","url":"ws://127.0.0.1:58333","params":{"rooms":1,"senders_per_room":1,"rate_per_s":100.0,"payload_bytes":64,"warmup_s":1.0,"duration_s":5.0,"start":100,"step":200,"max":5000,"slo_ms":250.0},"results":{"steps":[{"clients":100,"held":false,"fanout":{"sent":500,"expected_deliveries":50000,"delivered":50000,"lost":0,"late":0,"missed_by_closed":0,"drain_s":0.358256075,"duplicated":0,"out_of_order":0,"order_mismatches":0,"error_replies":0,"close_codes":{},"connect_failures":0,"messages_per_s":100.0,"deliveries_per_s":9369.14545523366,"latency_us":{"count":50000,"min_us":60672,"mean_us":201590.12255999987,"p50_us":200063,"p90_us":301567,"p99_us":351999,"p999_us":357119,"max_us":357375},"send_lag_us":{"count":500,"min_us":248,"mean_us":685.2239999999997,"p50_us":645,"p90_us":1170,"p99_us":1469,"p999_us":2757,"max_us":2757},"connect_us":{"count":100,"min_us":43904,"mean_us":48372.479999999996,"p50_us":48767,"p90_us":49375,"p99_us":49407,"p999_us":49951,"max_us":49951}}}],"capacity_clients":null},"server_process":{"pid":2169,"samples":26,"threads_peak":2,"threads_mean":2.0,"rss_peak_kib":75276,"rss_mean_kib":75276.0,"cpu_user_s":4.779999999999999,"cpu_system_s":0.82,"cpu_utilization":1.0475183702543687,"cpu_s_per_1000_deliveries":0.112,"voluntary_ctxt_switches":55285,"involuntary_ctxt_switches":2916},"loadgen_process":{"pid":2226,"samples":26,"threads_peak":4,"threads_mean":4.0,"rss_peak_kib":7712,"rss_mean_kib":7539.692307692308,"cpu_user_s":0.09,"cpu_system_s":0.39,"cpu_utilization":0.08979075618987982,"cpu_s_per_1000_deliveries":0.0096,"voluntary_ctxt_switches":27089,"involuntary_ctxt_switches":9934},"warnings":[]}"#;
    const CONNECTIONS_2026_11_26: &str = r#"{"scenario":"connections","server":"sync","commit":"9f5c0e725b2327d2a62b431d3350d38a40693f1c","started_at":"2026-11-26T20:02:00Z","url":"ws://127.0.0.1:33787","params":{"clients":1000,"hold_s":5.0,"source_addrs":1},"results":{"target":1000,"opened":1000,"failed":0,"first_failure":null,"held":1000,"connect_us":{"count":1000,"min_us":424,"mean_us":31185.199999999993,"p50_us":29199,"p90_us":44255,"p99_us":53919,"p999_us":56191,"max_us":56543},"handshakes_per_s":7020.996120394131,"server_before":{"threads":2,"rss_kib":3384},"server_loaded":{"threads":2002,"rss_kib":89016},"threads_per_connection":2.0,"rss_per_connection_kib":85.632},"server_process":{"pid":6011,"samples":27,"threads_peak":2002,"threads_mean":1927.962962962963,"rss_peak_kib":89016,"rss_mean_kib":85844.44444444444,"cpu_user_s":0.01,"cpu_system_s":0.14,"cpu_utilization":0.028831191322793062,"cpu_s_per_1000_deliveries":null,"voluntary_ctxt_switches":3975,"involuntary_ctxt_switches":554},"loadgen_process":{"pid":6016,"samples":27,"threads_peak":4,"threads_mean":4.0,"rss_peak_kib":24132,"rss_mean_kib":23439.25925925926,"cpu_user_s":0.06,"cpu_system_s":0.07,"cpu_utilization":0.024986453526949146,"cpu_s_per_1000_deliveries":null,"voluntary_ctxt_switches":1532,"involuntary_ctxt_switches":214},"warnings":[]}"#;

    #[test]
    fn recorded_runs_still_read_as_their_scenario() {
        for (line, scenario) in [
            (FANOUT_2026_11_26, "fanout"),
            (CAPACITY_2026_11_26, "capacity"),
            (CONNECTIONS_2026_11_26, "connections"),
        ] {
            let record: Record = serde_json::from_str(line).expect("an old record reads");
            let read_as = match &record.results {
                Results::Fanout(_) => "fanout",
                Results::Capacity(_) => "capacity",
                Results::Connections(_) => "connections",
                Results::Floor(_) => "floor",
            };
            assert_eq!(read_as, scenario, "{line}");
            assert_eq!(record.scenario, scenario);
            // Nothing lost or added: it encodes back to the same JSON.
            let original: serde_json::Value = serde_json::from_str(line).expect("JSON");
            let again = serde_json::to_value(&record).expect("encodes");
            assert_eq!(again, original);
        }
    }

    #[test]
    fn a_variant_is_recorded_only_when_given() {
        let mut record: Record = serde_json::from_str(FANOUT_2026_11_26).expect("reads");
        assert_eq!(record.params.variant, None);
        assert_eq!(record.params.variant_note, None);
        let normal = serde_json::to_value(&record).expect("encodes");
        assert!(normal["params"].get("variant").is_none(), "{normal}");
        assert!(normal["params"].get("variant_note").is_none(), "{normal}");

        record.params.variant = Some("batch-1".into());
        record.params.variant_note = Some("`--max-batch-frames 1`: one frame per write".into());
        let line = serde_json::to_string(&record).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["params"]["variant"], "batch-1");
        assert_eq!(
            value["params"]["variant_note"],
            "`--max-batch-frames 1`: one frame per write"
        );
        let back: Record = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back.params.variant.as_deref(), Some("batch-1"));
        assert!(matches!(back.results, Results::Fanout(_)));
        assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
    }

    #[test]
    fn a_busy_room_and_server_flags_round_trip() {
        let mut record: Record = serde_json::from_str(FANOUT_2026_11_26).expect("reads");
        record.params.busy_clients = Some(10);
        record.params.busy_senders = Some(10);
        record.params.busy_rate_per_s = Some(100.0);
        record.params.server_flags = Some("--history h.sqlite --db-delay-ms 10".into());
        let Results::Fanout(quiet) = &mut record.results else {
            panic!("a fan-out record");
        };
        let mut busy = quiet.clone();
        busy.sent = 12_345;
        quiet.busy_room = Some(Box::new(busy));
        let line = serde_json::to_string(&record).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["results"]["busy_room"]["sent"], 12_345);
        assert!(value["results"]["busy_room"].get("busy_room").is_none());
        assert_eq!(value["params"]["busy_rate_per_s"], 100.0);
        let back: Record = serde_json::from_str(&line).expect("reads back");
        let Results::Fanout(quiet) = &back.results else {
            panic!("a fan-out record read as another scenario: {line}");
        };
        assert_eq!(quiet.busy_room.as_ref().map(|b| b.sent), Some(12_345));
        assert_eq!(quiet.sent, 1000);
        assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
    }

    #[test]
    fn the_pinning_is_recorded_only_when_given() {
        let mut record: Record = serde_json::from_str(FANOUT_2026_11_26).expect("reads");
        assert_eq!(
            (&record.params.server_cpus, &record.params.loadgen_cpus),
            (&None, &None)
        );
        let normal = serde_json::to_value(&record).expect("encodes");
        for key in ["server_cpus", "loadgen_cpus"] {
            assert!(
                normal["params"].get(key).is_none(),
                "{key} written: {normal}"
            );
        }

        record.params.server_cpus = Some("0-3".into());
        record.params.loadgen_cpus = Some("4-7,12".into());
        let line = serde_json::to_string(&record).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["params"]["server_cpus"], "0-3");
        assert_eq!(value["params"]["loadgen_cpus"], "4-7,12");
        let back: Record = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back.params.loadgen_cpus.as_deref(), Some("4-7,12"));
        assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
    }

    #[test]
    fn a_run_against_one_server_writes_the_same_line_as_before() {
        for line in [
            FANOUT_2026_11_26,
            CAPACITY_2026_11_26,
            CONNECTIONS_2026_11_26,
        ] {
            let record: Record = serde_json::from_str(line).expect("an old record reads");
            assert!(record.deployment.is_empty(), "{:?}", record.deployment);
            let value = serde_json::to_value(&record).expect("encodes");
            for key in [
                "urls",
                "server_processes",
                "server_total",
                "sampled_processes",
            ] {
                assert!(value.get(key).is_none(), "{key} written: {value}");
            }
        }
    }

    #[test]
    fn several_servers_and_processes_are_recorded_beside_the_first() {
        let mut record: Record = serde_json::from_str(FANOUT_2026_11_26).expect("reads");
        let Results::Fanout(fanout) = &mut record.results else {
            panic!("a fan-out record");
        };
        let urls = vec!["ws://127.0.0.1:1".to_owned(), "ws://127.0.0.1:2".to_owned()];
        fanout.per_url = urls
            .iter()
            .map(|url| UrlResults {
                url: url.clone(),
                clients: 5,
                delivered: 5000,
                ..UrlResults::default()
            })
            .collect();
        let server = record.server_process.clone().expect("sampled");
        let server_processes: Vec<ServerProcess> = urls
            .iter()
            .map(|url| ServerProcess {
                url: url.clone(),
                clients: 5,
                deliveries: Some(5000),
                process: server.clone(),
            })
            .collect();
        record.deployment = Deployment {
            urls: urls.clone(),
            server_total: Some(ServerTotal::of(&server_processes)),
            server_processes,
            sampled_processes: [("redis".to_owned(), server.clone())].into(),
        };
        let line = serde_json::to_string(&record).expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["url"], "ws://127.0.0.1:35211", "the first as before");
        assert_eq!(value["urls"][1], "ws://127.0.0.1:2");
        assert_eq!(value["results"]["per_url"][1]["delivered"], 5000);
        assert_eq!(value["server_processes"][1]["deliveries"], 5000);
        assert_eq!(value["server_processes"][0]["process"]["pid"], 29044);
        assert_eq!(value["server_total"]["processes"], 2);
        assert_eq!(value["server_total"]["deliveries"], 10_000);
        assert_eq!(value["server_total"]["threads_peak_sum"], 44);
        assert_eq!(value["sampled_processes"]["redis"]["pid"], 29044);
        assert!(value.get("deployment").is_none(), "flattened: {value}");
        // It reads back whole.
        let back: Record = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back.deployment, record.deployment);
        assert!(matches!(back.results, Results::Fanout(ref f) if f.per_url.len() == 2));
        assert_eq!(back.url, "ws://127.0.0.1:35211");
        assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
    }

    #[test]
    fn floor_record_round_trips() {
        let batch = |b: u64| FloorBatch {
            frames_per_write: b,
            frames: 1000 * b,
            writes: 1000,
            wall_s: 0.5,
            cpu_s: 0.25,
            cpu_user_s: 0.02,
            cpu_system_s: 0.23,
            cpu_us_per_frame: 250.0 / b as f64,
            cpu_us_per_write: 250.0,
            frames_per_s_per_core: 4000.0 * b as f64,
            writer_sleeps: 0,
            writer_preemptions: 3,
        };
        let record = Record {
            scenario: "floor".into(),
            server: "floor".into(),
            commit: "c".into(),
            started_at: "t".into(),
            url: "tcp://127.0.0.1:1".into(),
            params: Params {
                connections: Some(1000),
                batch_sizes: Some(vec![1, 4]),
                per_batch_s: Some(0.5),
                reader_threads: Some(1),
                payload_bytes: Some(64),
                ..Params::default()
            },
            results: Results::Floor(FloorResults {
                frame_bytes: 80,
                cpu_clock: "schedstat".into(),
                batches: vec![batch(1), batch(4)],
                bytes_written: 400_000,
                bytes_read: 400_000,
            }),
            server_process: None,
            loadgen_process: ProcessFigures::default(),
            warnings: Vec::new(),
            deployment: Deployment::default(),
        };
        let line = serde_json::to_string(&record).expect("encodes");
        let back: Record = serde_json::from_str(&line).expect("reads back");
        let Results::Floor(floor) = &back.results else {
            panic!("a floor record read as another scenario: {line}");
        };
        assert_eq!(floor.at(4).map(|b| b.frames), Some(4000));
        assert!(floor.at(16).is_none());
        assert_eq!(back.params.batch_sizes, Some(vec![1, 4]));
        assert_eq!(serde_json::to_string(&back).expect("encodes"), line);
    }
}
