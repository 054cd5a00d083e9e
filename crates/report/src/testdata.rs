//! Fixture records for the tests: small, with only the fields the report
//! reads set.

use chat_record::servers::{Admission, ServerKind, ServerSetup, Servers};
use chat_record::soak::{SoakParams, SoakRecord, SoakSample, SoakTotals};
use chat_record::{
    CapacityResults, CapacityStep, ConnectionsResults, Deployment, FanoutResults, FloorBatch,
    FloorResults, Params, ProcessFigures, ProcessSample, Record, Results,
};

fn record(server: &str, scenario: &str, params: Params, results: Results) -> Record {
    Record {
        scenario: scenario.to_owned(),
        server: server.to_owned(),
        commit: "0123456789abcdef".to_owned(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        url: "ws://127.0.0.1:1".to_owned(),
        params,
        results,
        server_process: Some(ProcessFigures {
            cpu_user_s: 0.5,
            cpu_system_s: 1.5,
            cpu_utilization: 0.2,
            threads_peak: 3,
            rss_peak_kib: 20_480,
            voluntary_ctxt_switches: 1000,
            ..ProcessFigures::default()
        }),
        loadgen_process: ProcessFigures::default(),
        warnings: Vec::new(),
        deployment: Deployment::default(),
    }
}

/// Fan-out results for `offered` deliveries/s of which `delivered_per_s`
/// were made over 10 s, nothing lost.
pub fn fanout_results(offered: f64, delivered_per_s: f64, p99_ms: f64) -> FanoutResults {
    let expected = (offered * 10.0) as u64;
    let mut r = FanoutResults {
        sent: 1000,
        expected_deliveries: expected,
        delivered: expected,
        deliveries_per_s: delivered_per_s,
        ..FanoutResults::default()
    };
    r.latency_us.count = expected;
    r.latency_us.p50_us = (p99_ms * 500.0) as u64;
    r.latency_us.p99_us = (p99_ms * 1000.0) as u64;
    r
}

/// The parameters of a fan-out run: one sender per room, 64 B.
pub fn fanout_params(clients: u64, rooms: u64, rate: f64) -> Params {
    Params {
        clients: Some(clients),
        rooms: Some(rooms),
        senders_per_room: Some(1),
        rate_per_s: Some(rate),
        payload_bytes: Some(64),
        ..Params::default()
    }
}

/// A fan-out run that delivered everything at `delivered_per_s`.
pub fn fanout_record(
    server: &str,
    clients: u64,
    rooms: u64,
    rate: f64,
    delivered_per_s: f64,
) -> Record {
    let offered = clients as f64 * rate;
    record(
        server,
        "fanout",
        fanout_params(clients, rooms, rate),
        Results::Fanout(fanout_results(offered, delivered_per_s, 10.0)),
    )
}

/// A fan-out run of a variant.
pub fn variant_record(server: &str, variant: &str, params: Params, delivered_per_s: f64) -> Record {
    let load = chat_record::verdict::Load::of_params(&params);
    let offered = load.offered_per_s();
    let mut r = record(
        server,
        "fanout",
        Params {
            variant: Some(variant.to_owned()),
            ..params
        },
        Results::Fanout(fanout_results(offered, delivered_per_s, 10.0)),
    );
    if variant.starts_with("history-") || variant.starts_with("stall-") {
        r.params.server_flags = Some("--history h.sqlite".to_owned());
    }
    r
}

/// A capacity search, 4 senders at 2 msg/s: each step its clients, p99
/// and whether it kept up.
pub fn capacity_record(server: &str, steps: &[(u64, f64, bool)]) -> Record {
    let steps = steps
        .iter()
        .map(|&(clients, p99_ms, kept_up)| {
            let offered = clients as f64 * 8.0;
            let made = if kept_up { offered } else { offered / 2.0 };
            CapacityStep {
                clients,
                held: kept_up,
                fanout: fanout_results(offered, made, p99_ms),
            }
        })
        .collect();
    record(
        server,
        "capacity",
        Params {
            rooms: Some(1),
            senders_per_room: Some(4),
            rate_per_s: Some(2.0),
            payload_bytes: Some(64),
            slo_ms: Some(250.0),
            start: Some(1000),
            step: Some(1000),
            ..Params::default()
        },
        Results::Capacity(CapacityResults {
            steps,
            capacity_clients: None,
        }),
    )
}

/// A connections run.
pub fn connections_record(server: &str, target: u64, opened: u64, failure: Option<&str>) -> Record {
    record(
        server,
        "connections",
        Params {
            clients: Some(target),
            ..Params::default()
        },
        Results::Connections(ConnectionsResults {
            target,
            opened,
            failed: target - opened,
            first_failure: failure.map(str::to_owned),
            held: opened,
            server_before: Some(ProcessSample {
                threads: 2,
                rss_kib: 4096,
            }),
            server_loaded: Some(ProcessSample {
                threads: 2 + 2 * opened,
                rss_kib: 4096 + 70 * opened,
            }),
            threads_per_connection: Some(2.0),
            rss_per_connection_kib: Some(70.0),
            ..ConnectionsResults::default()
        }),
    )
}

/// A write-floor run at `us` µs per one-frame write.
pub fn floor_record(us: f64) -> Record {
    let batch = FloorBatch {
        frames_per_write: 1,
        frames: 1000,
        writes: 1000,
        cpu_us_per_frame: us,
        cpu_us_per_write: us,
        ..FloorBatch::default()
    };
    let mut r = record(
        "floor",
        "floor",
        Params::default(),
        Results::Floor(FloorResults {
            frame_bytes: 80,
            cpu_clock: "schedstat".to_owned(),
            batches: vec![batch],
            bytes_written: 80_000,
            bytes_read: 80_000,
        }),
    );
    r.server_process = None;
    r
}

/// A soak of `minutes` minutes with flat resources.
pub fn soak_record(server: &str, minutes: u64) -> SoakRecord {
    let samples = (0..=minutes)
        .map(|i| SoakSample {
            t_s: 60.0 * i as f64,
            rss_kib: if i == 0 { 4096 } else { 20_480 },
            threads: if i == 0 { 2 } else { 50 },
            fds: if i == 0 { 5 } else { 70 },
            cpu_s: 30.0 * i as f64,
            client_connections: if i == 0 { 0 } else { 62 },
            delivered: 6000 * i,
        })
        .collect();
    SoakRecord {
        scenario: "soak".to_owned(),
        server: server.to_owned(),
        commit: "0123456789abcdef".to_owned(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        url: "ws://127.0.0.1:1".to_owned(),
        command: format!("chat-loadgen soak --label {server}"),
        params: SoakParams {
            duration_s: 60.0 * minutes as f64,
            sample_interval_s: 60.0,
            room_sizes: vec![2, 5, 20, 50],
            rate_per_room_per_s: 20.0,
            senders_per_room: 2,
            churn_per_s: 20.0,
            slow_reader_every_s: 60.0,
            bad_client_every_s: 5.0,
        },
        samples,
        totals: SoakTotals {
            sent: 1000 * minutes,
            expected: 6000 * minutes,
            delivered: 6000 * minutes,
            ..SoakTotals::default()
        },
        passed: true,
        warnings: Vec::new(),
    }
}

/// The reference servers, in the report's order.
pub const REFERENCES: [&str; 3] = ["uws", "gorilla", "node-ws"];
/// Why the fixture's node-ws failed its admission check.
pub const NODE_WS_FAILURE: &str = "two senders' messages reached members in different orders";

/// A `servers.json` as the sweep of issue 14 writes it, in the order
/// measured (not the report's): Django first, then the reference servers
/// (node-ws failed its admission check), then ours.
pub fn servers() -> Servers {
    let setup = |label: &str, name: &str, kind, cores: &str, admission| ServerSetup {
        label: label.to_owned(),
        name: name.to_owned(),
        kind,
        command: format!("{label} --port 0"),
        settings: format!("{name}'s settings: queue of 4,096 | closed with 1013"),
        cores: cores.to_owned(),
        admission,
    };
    Servers {
        servers: vec![
            setup(
                "django",
                "Django Channels tutorial",
                ServerKind::Django,
                "one process",
                Admission::Passed,
            ),
            setup(
                "node-ws",
                "Node.js ws 8.23.1",
                ServerKind::Reference,
                "one thread",
                Admission::Failed(NODE_WS_FAILURE.to_owned()),
            ),
            setup(
                "gorilla",
                "Go gorilla/websocket",
                ServerKind::Reference,
                "every core (GOMAXPROCS)",
                Admission::Passed,
            ),
            setup(
                "uws",
                "uWebSockets.js (npm uwebsockets 3.0.6)",
                ServerKind::Reference,
                "one thread",
                Admission::Passed,
            ),
            setup(
                "async",
                "chat-async",
                ServerKind::Ours,
                "a worker per core",
                Admission::Passed,
            ),
            setup(
                "sync",
                "chat-sync",
                ServerKind::Ours,
                "a thread per connection",
                Admission::Passed,
            ),
        ],
    }
}

/// What a server measured like ours has: the fan-out ladder at 100 msg/s,
/// the peak ladder at 1,000 clients (kept up to 1,000 msg/s, fell behind at
/// 2,000), a capacity search and the idle connections ladder.
pub fn measured_like_ours(server: &str) -> Vec<Record> {
    let mut records: Vec<Record> = [10, 100, 1000, 5000]
        .into_iter()
        .map(|clients| {
            let offered = clients as f64 * 100.0;
            fanout_record(server, clients, 1, 100.0, offered)
        })
        .collect();
    records.extend([
        fanout_record(server, 1000, 1, 300.0, 300_000.0),
        fanout_record(server, 1000, 1, 1000.0, 1_000_000.0),
        fanout_record(server, 1000, 1, 2000.0, 1_200_000.0),
        capacity_record(server, &[(1000, 10.0, true), (2000, 400.0, true)]),
        connections_record(server, 1000, 1000, None),
        connections_record(server, 10_000, 10_000, None),
    ]);
    records
}

/// A run of the cores experiment: `server` pinned to `cores` cores, a
/// fan-out of `clients` in one room, one sender at `rate`, that made
/// `delivered_per_s`.
pub fn cores_record(
    server: &str,
    cores: u64,
    clients: u64,
    rate: f64,
    delivered_per_s: f64,
) -> Record {
    let mut r = fanout_record(server, clients, 1, rate, delivered_per_s);
    r.params.variant = Some(format!("cores-{cores}"));
    r.params.variant_note = Some(format!("pinned to {cores} core(s)"));
    r.params.server_cpus = Some(if cores == 1 {
        "1".to_owned()
    } else {
        format!("1-{cores}")
    });
    r.params.loadgen_cpus = Some("0".to_owned());
    r
}
