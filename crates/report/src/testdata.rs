//! Small synthetic records and a temporary directory, for the unit tests.
//!
//! The numbers are made up but shaped like real runs (the sync server's
//! threads grow with its clients, the async server's do not), so the prose
//! has something to compare.

use std::fs;
use std::path::{Path, PathBuf};

use chat_loadgen::record::{
    CapacityResults, CapacityStep, ConnectionsResults, Deployment, FanoutResults, FloorBatch,
    FloorResults, Latency, Params, ProcessFigures, ProcessSample, Record, Results,
};
use chat_loadgen::soak::record::{SoakParams, SoakRecord, SoakSample, SoakTotals};

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory named after the test.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("chat-report-{}-{name}", std::process::id()));
        // A leftover from an earlier crashed run of the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create the temporary directory");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes a run directory: `runs.jsonl` with the records, and a README.
pub fn write_run(dir: &Path, records: &[Record], readme: &str) {
    fs::create_dir_all(dir).expect("create the run directory");
    let mut lines = String::new();
    for r in records {
        lines.push_str(&serde_json::to_string(r).expect("serialize a record"));
        lines.push('\n');
    }
    fs::write(dir.join("runs.jsonl"), lines).expect("write runs.jsonl");
    fs::write(dir.join("README.md"), readme).expect("write README.md");
}

fn latency(p50: u64) -> Latency {
    Latency {
        count: 1000,
        min_us: p50 / 2,
        mean_us: p50 as f64 * 1.1,
        p50_us: p50,
        p90_us: p50 * 2,
        p99_us: p50 * 4,
        p999_us: p50 * 8,
        max_us: p50 * 10,
    }
}

fn is_sync(server: &str) -> bool {
    server == "sync"
}

fn process(server: &str, clients: u64, delivered: u64) -> ProcessFigures {
    let threads = if is_sync(server) { 2 * clients + 2 } else { 3 };
    let rss_kib = if is_sync(server) {
        4000 + clients * 40
    } else {
        4000 + clients * 12
    };
    let cpu_s = delivered as f64 * if is_sync(server) { 20e-6 } else { 8e-6 };
    ProcessFigures {
        pid: 42,
        samples: 10,
        threads_peak: threads,
        threads_mean: threads as f64,
        rss_peak_kib: rss_kib,
        rss_mean_kib: rss_kib as f64,
        cpu_user_s: cpu_s * 0.4,
        cpu_system_s: cpu_s * 0.6,
        cpu_utilization: cpu_s / 10.0,
        cpu_s_per_1000_deliveries: Some(cpu_s / delivered.max(1) as f64 * 1000.0),
        voluntary_ctxt_switches: if is_sync(server) {
            delivered * 12 / 10
        } else {
            delivered / 10
        },
        involuntary_ctxt_switches: delivered / 100,
    }
}

fn loadgen() -> ProcessFigures {
    ProcessFigures {
        pid: 7,
        cpu_utilization: 0.6,
        ..ProcessFigures::default()
    }
}

fn record(server: &str, scenario: &str, params: Params, results: Results) -> Record {
    Record {
        scenario: scenario.to_owned(),
        server: server.to_owned(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        started_at: "2025-01-01T00:00:00Z".to_owned(),
        url: "ws://127.0.0.1:8000".to_owned(),
        params,
        results,
        server_process: None,
        loadgen_process: loadgen(),
        warnings: Vec::new(),
        deployment: Deployment::default(),
    }
}

fn fanout_results(server: &str, clients: u64, rooms: u64) -> FanoutResults {
    let sent = 1000 * rooms;
    let expected = sent * clients / rooms.max(1);
    let p50 = if is_sync(server) {
        200 + clients
    } else {
        150 + clients / 2
    };
    FanoutResults {
        sent,
        expected_deliveries: expected,
        delivered: expected,
        messages_per_s: sent as f64 / 10.0,
        deliveries_per_s: expected as f64 / 10.0,
        latency_us: latency(p50),
        send_lag_us: latency(10),
        connect_us: latency(300),
        ..FanoutResults::default()
    }
}

/// A clean fan-out run: one sender per room at 100 msg/s, 32-byte
/// messages, 10 s measured.
pub fn fanout_record(server: &str, clients: u64, rooms: u64) -> Record {
    let params = Params {
        clients: Some(clients),
        rooms: Some(rooms),
        senders_per_room: Some(1),
        rate_per_s: Some(100.0),
        payload_bytes: Some(32),
        warmup_s: Some(2.0),
        duration_s: Some(10.0),
        ..Params::default()
    };
    let results = fanout_results(server, clients, rooms);
    let mut r = record(server, "fanout", params, Results::Fanout(results.clone()));
    r.server_process = Some(process(server, clients, results.delivered));
    r
}

/// A clean fan-out run with `clients` clients in one room and `senders`
/// senders at `rate` messages per second each, 10 s measured: it delivers
/// what it offers, clients × senders × rate per second.
pub fn fanout_load_record(server: &str, clients: u64, senders: u64, rate: f64) -> Record {
    let mut r = fanout_record(server, clients, 1);
    r.params.senders_per_room = Some(senders);
    r.params.rate_per_s = Some(rate);
    let sent = (senders as f64 * rate * 10.0).round() as u64;
    let delivered = sent * clients;
    if let Results::Fanout(f) = &mut r.results {
        f.sent = sent;
        f.expected_deliveries = delivered;
        f.delivered = delivered;
        f.messages_per_s = sent as f64 / 10.0;
        f.deliveries_per_s = delivered as f64 / 10.0;
    }
    r.server_process = Some(process(server, clients, delivered));
    r
}

/// The record as a variant run: `--variant name --variant-note note`.
pub fn variant(mut record: Record, name: &str, note: &str) -> Record {
    record.params.variant = Some(name.to_owned());
    record.params.variant_note = Some(note.to_owned());
    record
}

/// A capacity search over the given steps (clients, held).
pub fn capacity_record(server: &str, steps: &[(u64, bool)]) -> Record {
    let params = Params {
        rooms: Some(1),
        senders_per_room: Some(1),
        rate_per_s: Some(100.0),
        payload_bytes: Some(32),
        start: steps.first().map(|s| s.0),
        step: Some(100),
        max: steps.last().map(|s| s.0),
        slo_ms: Some(50.0),
        ..Params::default()
    };
    let results = CapacityResults {
        steps: steps
            .iter()
            .map(|&(clients, held)| CapacityStep {
                clients,
                held,
                fanout: fanout_results(server, clients, 1),
            })
            .collect(),
        capacity_clients: steps.iter().filter(|s| s.1).map(|s| s.0).max(),
    };
    record(server, "capacity", params, Results::Capacity(results))
}

/// A connections run: `opened` of `target` connections, with the first
/// failure if any.
pub fn connections_record(
    server: &str,
    target: u64,
    opened: u64,
    first_failure: Option<&str>,
) -> Record {
    let params = Params {
        clients: Some(target),
        hold_s: Some(5.0),
        source_addrs: Some(1),
        ..Params::default()
    };
    let before = ProcessSample {
        threads: 3,
        rss_kib: 4000,
    };
    let per_threads = if is_sync(server) { 2 } else { 0 };
    let per_rss = if is_sync(server) { 40 } else { 12 };
    let loaded = ProcessSample {
        threads: before.threads + per_threads * opened,
        rss_kib: before.rss_kib + per_rss * opened,
    };
    let results = ConnectionsResults {
        target,
        opened,
        failed: target - opened,
        first_failure: first_failure.map(str::to_owned),
        held: opened,
        connect_us: latency(300),
        handshakes_per_s: 2000.0,
        server_before: Some(before),
        server_loaded: Some(loaded),
        threads_per_connection: Some(per_threads as f64),
        rss_per_connection_kib: Some(per_rss as f64),
    };
    let mut r = record(server, "connections", params, Results::Connections(results));
    r.server_process = Some(ProcessFigures {
        threads_peak: loaded.threads,
        rss_peak_kib: loaded.rss_kib,
        ..ProcessFigures::default()
    });
    r
}

/// A write-floor run over 1,000 connections, batch sizes 1, 4, 16 and 64:
/// `us_per_write` of CPU per `write()` whatever its size (as measured, near
/// enough), 0.5 s of writing each. Its load generator was busy (readers and
/// writer), as a real floor run's is.
pub fn floor_record(us_per_write: f64) -> Record {
    let params = Params {
        connections: Some(1000),
        batch_sizes: Some(vec![1, 4, 16, 64]),
        per_batch_s: Some(0.5),
        reader_threads: Some(1),
        payload_bytes: Some(64),
        ..Params::default()
    };
    let batches = [1u64, 4, 16, 64]
        .iter()
        .map(|&b| {
            let cpu_s = 0.5;
            let writes = (cpu_s * 1e6 / us_per_write) as u64;
            FloorBatch {
                frames_per_write: b,
                frames: writes * b,
                writes,
                wall_s: 0.5,
                cpu_s,
                cpu_user_s: 0.04,
                cpu_system_s: 0.46,
                cpu_us_per_frame: us_per_write / b as f64,
                cpu_us_per_write: us_per_write,
                frames_per_s_per_core: 1e6 * b as f64 / us_per_write,
                writer_sleeps: 0,
                writer_preemptions: 2,
            }
        })
        .collect();
    let results = FloorResults {
        frame_bytes: 80,
        cpu_clock: "schedstat".to_owned(),
        batches,
        bytes_written: 1_000_000,
        bytes_read: 1_000_000,
    };
    let mut r = record("floor", "floor", params, Results::Floor(results));
    r.url = "tcp://127.0.0.1:40000".to_owned();
    r.loadgen_process.cpu_utilization = 1.9;
    r
}

/// A throughput run of the history experiments, recorded as variant
/// `history-<setting>` with the server's `flags`: 100 clients in 10 rooms,
/// one sender per room at `rate` msg/s, 64-byte messages, 10 s measured;
/// it delivers `share` of the deliveries it owes, at p99 `p99_us`.
pub fn history_record(
    server: &str,
    setting: &str,
    flags: &str,
    rate: f64,
    share: f64,
    p99_us: u64,
) -> Record {
    let mut r = fanout_load_record(server, 100, 1, rate);
    r.params.rooms = Some(10);
    r.params.payload_bytes = Some(64);
    r.params.server_flags = Some(flags.to_owned());
    let sent = (10.0 * rate * 10.0).round() as u64;
    if let Results::Fanout(f) = &mut r.results {
        f.sent = sent;
        f.messages_per_s = sent as f64 / 10.0;
        f.expected_deliveries = sent * 10;
        f.delivered = (f.expected_deliveries as f64 * share).round() as u64;
        f.late = f.expected_deliveries - f.delivered;
        f.deliveries_per_s = f.delivered as f64 / 10.0;
        f.latency_us = latency(p99_us / 4);
        f.latency_us.p99_us = p99_us;
    }
    variant(r, &format!("history-{setting}"), "history experiment")
}

/// A run of the stall experiment, recorded as variant `stall-<setting>`
/// with the server's `flags`: the quiet room (10 clients, one sender at 20
/// msg/s) at p99 `quiet_p99_us`, beside a busy room of 10 clients all
/// sending 100 msg/s, of which `busy_delivered` messages per second
/// arrived (at every member).
pub fn stall_record(
    server: &str,
    setting: &str,
    flags: &str,
    quiet_p99_us: u64,
    busy_delivered: f64,
) -> Record {
    let mut r = fanout_load_record(server, 10, 1, 20.0);
    r.params.payload_bytes = Some(64);
    r.params.server_flags = Some(flags.to_owned());
    r.params.busy_clients = Some(10);
    r.params.busy_senders = Some(10);
    r.params.busy_rate_per_s = Some(100.0);
    if let Results::Fanout(f) = &mut r.results {
        f.latency_us = latency(quiet_p99_us / 4);
        f.latency_us.p99_us = quiet_p99_us;
        f.latency_us.max_us = quiet_p99_us * 2;
        let sent = 10_000;
        let expected = sent * 10;
        let delivered = (busy_delivered * 10.0 * 10.0).round() as u64;
        f.busy_room = Some(Box::new(FanoutResults {
            sent,
            expected_deliveries: expected,
            delivered,
            late: expected.saturating_sub(delivered),
            messages_per_s: sent as f64 / 10.0,
            deliveries_per_s: delivered as f64 / 10.0,
            window_deliveries_per_s: Some(delivered as f64 / 10.0),
            latency_us: latency(quiet_p99_us),
            ..FanoutResults::default()
        }));
    }
    variant(r, &format!("stall-{setting}"), "stall experiment")
}

/// A run of the channel-layer experiments, for [`layer_record`].
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// The run's label: `sync`, or `sync+async+django` for a mixed run.
    pub server: String,
    /// The variant: `layer-memory`, `layer-redis-4`...
    pub variant: String,
    /// Rooms, members per room, senders per room.
    pub rooms: u64,
    pub room_size: u64,
    pub senders: u64,
    /// Messages per second per sender.
    pub rate: f64,
    /// Share of the deliveries owed that arrived (the rest late).
    pub share: f64,
    /// The rooms' p99, microseconds.
    pub p99_us: u64,
    /// Each server process's cores busy, one per URL.
    pub server_cores: Vec<f64>,
    /// Each Redis server's cores busy (none: the memory layer).
    pub redis_cores: Vec<f64>,
    /// The load generator's cores busy.
    pub loadgen_cores: f64,
}

impl Default for LayerSpec {
    fn default() -> Self {
        Self {
            server: "sync".to_owned(),
            variant: "layer-memory".to_owned(),
            rooms: 24,
            room_size: 8,
            senders: 1,
            rate: 100.0,
            share: 1.0,
            p99_us: 2_000,
            server_cores: vec![0.2],
            redis_cores: Vec::new(),
            loadgen_cores: 0.3,
        }
    }
}

/// A fan-out of the channel-layer experiments as `chat-loadgen` records it,
/// 10 s measured: the clients spread evenly over one URL per entry of
/// `server_cores` (each process sampled, their total, each URL's figures),
/// each Redis of `redis_cores` sampled as `redis` (one) or `redis-<n>`.
pub fn layer_record(spec: &LayerSpec) -> Record {
    use chat_loadgen::record::{ServerProcess, ServerTotal, UrlResults};

    const WINDOW_S: f64 = 10.0;
    let clients = spec.rooms * spec.room_size;
    let mut r = fanout_load_record(&spec.server, clients, spec.senders, spec.rate);
    r.params.rooms = Some(spec.rooms);
    r.params.payload_bytes = Some(64);
    r.params.server_flags = Some(if spec.redis_cores.is_empty() {
        "--layer memory".to_owned()
    } else {
        "--layer redis --redis-url redis://127.0.0.1:6379".to_owned()
    });
    let sent = (spec.rooms as f64 * spec.senders as f64 * spec.rate * WINDOW_S).round() as u64;
    let expected = sent * spec.room_size;
    let delivered = (expected as f64 * spec.share).round() as u64;
    let figures = |cores: f64, deliveries: u64, pid: u32| {
        let cpu_s = cores * WINDOW_S;
        ProcessFigures {
            pid,
            samples: 50,
            threads_peak: 4,
            threads_mean: 4.0,
            rss_peak_kib: 8000,
            rss_mean_kib: 8000.0,
            cpu_user_s: cpu_s * 0.4,
            cpu_system_s: cpu_s * 0.6,
            cpu_utilization: cores,
            cpu_s_per_1000_deliveries: (deliveries > 0).then(|| cpu_s * 1000.0 / deliveries as f64),
            voluntary_ctxt_switches: deliveries,
            involuntary_ctxt_switches: deliveries / 100,
        }
    };
    let n = spec.server_cores.len().max(1) as u64;
    let urls: Vec<String> = (0..n)
        .map(|i| format!("ws://127.0.0.1:{}", 9000 + i))
        .collect();
    if let Results::Fanout(f) = &mut r.results {
        f.sent = sent;
        f.messages_per_s = sent as f64 / WINDOW_S;
        f.expected_deliveries = expected;
        f.delivered = delivered;
        f.late = expected - delivered;
        f.deliveries_per_s = delivered as f64 / WINDOW_S;
        f.latency_us = latency(spec.p99_us / 4);
        f.latency_us.p99_us = spec.p99_us;
        if n > 1 {
            f.per_url = urls
                .iter()
                .enumerate()
                .map(|(i, url)| UrlResults {
                    url: url.clone(),
                    clients: clients / n,
                    senders: spec.rooms * spec.senders / n,
                    expected_deliveries: expected / n,
                    delivered: delivered / n,
                    late: (expected - delivered) / n,
                    latency_us: Latency {
                        p99_us: spec.p99_us + 100 * i as u64,
                        ..latency(spec.p99_us / 4)
                    },
                    ..UrlResults::default()
                })
                .collect();
        }
    }
    let processes: Vec<ServerProcess> = urls
        .iter()
        .zip(&spec.server_cores)
        .enumerate()
        .map(|(i, (url, &cores))| ServerProcess {
            url: url.clone(),
            clients: clients / n,
            deliveries: Some(delivered / n),
            process: figures(cores, delivered / n, 100 + i as u32),
        })
        .collect();
    r.server_process = processes.first().map(|p| ProcessFigures {
        cpu_s_per_1000_deliveries: figures(spec.server_cores[0], delivered, 100)
            .cpu_s_per_1000_deliveries,
        ..p.process.clone()
    });
    if n > 1 {
        r.deployment.urls = urls;
        r.deployment.server_total = Some(ServerTotal::of(&processes));
        r.deployment.server_processes = processes;
    }
    for (i, &cores) in spec.redis_cores.iter().enumerate() {
        let label = if spec.redis_cores.len() == 1 {
            "redis".to_owned()
        } else {
            format!("redis-{}", i + 1)
        };
        r.deployment
            .sampled_processes
            .insert(label, figures(cores, delivered, 200 + i as u32));
    }
    r.loadgen_process.cpu_utilization = spec.loadgen_cores;
    variant(r, &spec.variant, "channel-layer experiment")
}

/// A clean soak of `server`: one sample a minute, the first before the
/// load (RSS `rss_mib[0]`, 2 threads, 5 descriptors, no client), then
/// `threads` threads and `fds` descriptors under 62 connections, RSS as
/// given, half a core busy throughout.
pub fn soak_record(server: &str, rss_mib: &[f64], threads: u64, fds: u64) -> SoakRecord {
    let samples: Vec<SoakSample> = rss_mib
        .iter()
        .enumerate()
        .map(|(i, &mib)| {
            let i = i as u64;
            SoakSample {
                t_s: 60.0 * i as f64,
                rss_kib: (mib * 1024.0).round() as u64,
                threads: if i == 0 { 2 } else { threads },
                fds: if i == 0 { 5 } else { fds },
                cpu_s: 30.0 * i as f64,
                client_connections: if i == 0 { 0 } else { 62 },
                delivered: 6000 * i,
            }
        })
        .collect();
    let minutes = samples.len().saturating_sub(1) as u64;
    SoakRecord {
        scenario: "soak".to_owned(),
        server: server.to_owned(),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        started_at: "2025-01-01T00:00:00Z".to_owned(),
        url: "ws://127.0.0.1:8000".to_owned(),
        command: format!("chat-loadgen soak --label {server} --duration 1h"),
        params: SoakParams {
            duration_s: 60.0 * minutes as f64,
            sample_interval_s: 60.0,
            room_sizes: vec![2, 10, 50],
            rate_per_room_per_s: 2.0,
            senders_per_room: 2,
            churn_per_s: 1.0,
            slow_reader_every_s: 60.0,
            bad_client_every_s: 30.0,
        },
        totals: SoakTotals {
            sent: 360 * minutes,
            expected: 6000 * minutes,
            delivered: 6000 * minutes,
            churn_cycles: 60 * minutes,
            slow_readers: minutes,
            slow_readers_closed_1013: minutes,
            bad_clients: 2 * minutes,
            bad_clients_answered: 2 * minutes,
            ..SoakTotals::default()
        },
        samples,
        passed: true,
        warnings: Vec::new(),
    }
}

/// Writes a soak directory: `soak.jsonl` with the records, and a README.
pub fn write_soak(dir: &Path, records: &[SoakRecord], readme: &str) {
    fs::create_dir_all(dir).expect("create the soak directory");
    let mut lines = String::new();
    for r in records {
        lines.push_str(&serde_json::to_string(r).expect("serialize a soak record"));
        lines.push('\n');
    }
    fs::write(dir.join("soak.jsonl"), lines).expect("write soak.jsonl");
    fs::write(dir.join("README.md"), readme).expect("write README.md");
}
