//! The whole report on fixture records: rendered, short, deterministic, and
//! a run that fell behind never shown as a latency.

use std::fs;

use chat_record::Record;
use chat_record::servers::Servers;

use crate::data::{ASYNC, DJANGO, Data, SYNC};
use crate::report::{self, Paths};
use crate::testdata::{
    NODE_WS_FAILURE, REFERENCES, capacity_record, connections_record, cores_record, fanout_params,
    fanout_record, floor_record, measured_like_ours, servers, soak_record, variant_record,
};

fn write_run(dir: &std::path::Path, records: &[Record]) {
    fs::create_dir_all(dir).expect("mkdir");
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("json"))
        .collect();
    fs::write(dir.join("runs.jsonl"), lines.join("\n")).expect("write");
    fs::write(dir.join("README.md"), "commands").expect("write");
}

/// Every run of the cores experiment for `server`: on 1 core it keeps up to
/// 300 msg/s and falls behind at 1,000 (delivering more than it kept up
/// with, which must not count); on 2 cores it keeps up to 1,000 and falls
/// behind at 2,000; the light load on each.
fn cores_runs(server: &str) -> Vec<Record> {
    vec![
        cores_record(server, 1, 1000, 300.0, 300_000.0),
        cores_record(server, 1, 1000, 1000.0, 600_000.0),
        cores_record(server, 1, 100, 100.0, 10_000.0),
        cores_record(server, 2, 1000, 300.0, 300_000.0),
        cores_record(server, 2, 1000, 1000.0, 1_000_000.0),
        cores_record(server, 2, 1000, 2000.0, 1_100_000.0),
        cores_record(server, 2, 100, 100.0, 10_000.0),
    ]
}

fn sample() -> Vec<Record> {
    let mut behind = fanout_record(SYNC, 1000, 1, 300.0, 150_000.0);
    if let chat_record::Results::Fanout(f) = &mut behind.results {
        // A p99 no kept-up run has: it must not appear in the report.
        f.latency_us.p99_us = 21_299_000;
    }
    vec![
        floor_record(3.5),
        fanout_record(SYNC, 100, 1, 100.0, 10_000.0),
        fanout_record(ASYNC, 100, 1, 100.0, 10_000.0),
        fanout_record(SYNC, 1000, 1, 100.0, 100_000.0),
        fanout_record(ASYNC, 1000, 1, 100.0, 100_000.0),
        behind,
        fanout_record(ASYNC, 1000, 1, 300.0, 300_000.0),
        capacity_record(SYNC, &[(1000, 20.0, true), (2000, 300.0, true)]),
        capacity_record(ASYNC, &[(1000, 10.0, true), (2000, 20.0, true)]),
        connections_record(SYNC, 1000, 1000, None),
        connections_record(
            SYNC,
            10_000,
            7671,
            Some("HTTP error: 503 Service Unavailable"),
        ),
        connections_record(ASYNC, 1000, 1000, None),
        connections_record(ASYNC, 10_000, 10_000, None),
        variant_record(
            SYNC,
            "history-thread",
            fanout_params(100, 10, 100.0),
            10_000.0,
        ),
        variant_record(
            ASYNC,
            "history-writer",
            fanout_params(100, 10, 100.0),
            10_000.0,
        ),
        stall_record(),
        variant_record(ASYNC, "layer-redis-2", fanout_params(192, 24, 25.0), 4800.0),
        variant_record(
            ASYNC,
            "layer-mixed-django",
            fanout_params(30, 1, 10.0),
            300.0,
        ),
        variant_record(ASYNC, "batch-1", fanout_params(1000, 1, 300.0), 300_000.0),
        variant_record(ASYNC, "current", fanout_params(1000, 1, 300.0), 300_000.0),
    ]
}

/// The sample with the reference servers (node-ws failed its admission:
/// no runs), Django's fan-out, and the cores experiment.
fn sample_with_the_field() -> Vec<Record> {
    let mut records = sample();
    records.extend(measured_like_ours("uws"));
    records.extend(measured_like_ours("gorilla"));
    records.push(fanout_record(DJANGO, 100, 1, 100.0, 3000.0));
    records.extend(cores_runs(SYNC));
    records.extend(cores_runs("uws"));
    records
}

/// A quiet room beside a busy one that fell behind.
fn stall_record() -> Record {
    let mut params = fanout_params(10, 1, 20.0);
    params.busy_clients = Some(10);
    params.busy_senders = Some(10);
    params.busy_rate_per_s = Some(100.0);
    let mut r = variant_record(ASYNC, "stall-writer", params, 200.0);
    if let chat_record::Results::Fanout(f) = &mut r.results {
        f.busy_room = Some(Box::new(crate::testdata::fanout_results(
            10_000.0, 4000.0, 50.0,
        )));
    }
    r
}

#[test]
fn the_report_is_short_deterministic_and_shows_no_backlog_as_latency() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("2026-01-01-host");
    write_run(&run, &sample_with_the_field());
    let setups = serde_json::to_string(&servers()).expect("json");
    fs::write(run.join("servers.json"), setups).expect("write");
    let soak = tmp.path().join("soak/2026-01-01-host");
    fs::create_dir_all(&soak).expect("mkdir");
    let line = serde_json::to_string(&soak_record(SYNC, 30)).expect("json");
    fs::write(soak.join("soak.jsonl"), line).expect("write");
    fs::write(run.join("profile.tsv"), "server\trate_per_s\tkind\tname\tpercent\nsync\t100\tbinary\t[kernel.kallsyms]\t80.5\nsync\t100\tfunction\t[k] futex_wake\t2.0\n").expect("write");
    let paths = Paths {
        run: run.clone(),
        soak: Some(soak),
        out: tmp.path().to_path_buf(),
        command: "chat-report".to_owned(),
    };
    let written = report::generate(&paths).expect("generated");
    let first = fs::read_to_string(&written.report).expect("report");
    assert!(first.lines().count() <= 600, "{first}");
    assert!(
        !first.contains("21,299"),
        "a backlog shown as a p99:\n{first}"
    );
    assert!(
        first.contains("150,000 of 300,000"),
        "the verdict instead:\n{first}"
    );
    assert!(written.runs.starts_with(&run));
    assert!(written.plots.iter().all(|p| p.exists()));
    let svg = fs::read_to_string(&written.plots[0]).expect("plot");
    assert!(svg.contains("(log scale)"), "log axes are marked");
    // Every section rendered (their absence would hide a template error).
    for section in [
        "## History",
        "## Rooms on Redis",
        "## Endurance",
        "## Before and after",
        "## The servers",
        "## Cores",
        "futex_wake",
    ] {
        assert!(first.contains(section), "{section} missing:\n{first}");
    }
    assert!(
        first.contains(&format!(
            "| node-ws | not measured, failed admission: {NODE_WS_FAILURE} |"
        )),
        "a failed admission shown as such in the headline:\n{first}"
    );
    assert!(
        first.contains("queue of 4,096 \\| closed with 1013"),
        "servers.json's words, a pipe escaped:\n{first}"
    );
    let again = report::generate(&paths).expect("again");
    assert_eq!(fs::read_to_string(again.report).expect("report"), first);
}

#[test]
fn without_servers_json_the_report_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("2026-01-01-host");
    write_run(&run, &sample());
    let paths = Paths {
        run,
        soak: None,
        out: tmp.path().to_path_buf(),
        command: "chat-report".to_owned(),
    };
    let written = report::generate(&paths).expect("generated");
    let text = fs::read_to_string(&written.report).expect("report");
    assert!(text.contains("no `servers.json`"), "{text}");
    assert!(!text.contains("## Cores"), "no cores runs, no section");
    assert!(!text.contains("Not measured"), "{text}");
}

#[test]
fn reference_servers_sit_beside_ours_in_every_table() {
    let records = sample_with_the_field();
    let setups = servers();
    let data = Data::with_setups(&records, Some(&setups));
    let order = [SYNC, ASYNC, "uws", "gorilla", DJANGO];
    assert_eq!(data.servers, order, "measured, in the report's order");
    let listed = [SYNC, ASYNC, "uws", "gorilla", "node-ws", DJANGO];
    assert_eq!(data.listed, listed, "node-ws listed, not measured");

    let headline = crate::headline::headline(&data);
    assert_eq!(
        headline.light.as_ref().map(|l| l.clients),
        Some(100),
        "the light load stays below the peak ladder's room, where both also kept up"
    );
    let rows: Vec<&str> = headline.rows.iter().map(|r| r.server.as_str()).collect();
    assert_eq!(rows, listed);
    for reference in ["uws", "gorilla"] {
        let row = headline
            .rows
            .iter()
            .find(|r| r.server == reference)
            .expect("a row");
        assert!(row.admission.is_none());
        let peak = row
            .peak
            .as_ref()
            .and_then(|p| p.best.as_ref())
            .expect("a peak");
        assert_eq!(peak.delivered_per_s, 1_000_000.0, "the kept-up rung");
        assert!(row.light.as_ref().is_some_and(|f| f.kept_up()));
        assert_eq!(row.capacity.as_ref().and_then(|c| c.clients), Some(1000));
        assert!(row.idle.as_ref().is_some_and(|i| i.rss_kib.is_some()));
    }

    let fanout = crate::fanout::rows(&data);
    let light = fanout
        .iter()
        .find(|r| r.load.clients == 100 && r.load.rate == 100.0)
        .expect("the light load's row");
    assert_eq!(
        light.cells.len(),
        order.len(),
        "one cell per measured server"
    );
    assert!(
        light.cells.iter().all(Option::is_some),
        "every server ran it"
    );
    let connections = crate::connections::rows(&data);
    let ten_thousand = connections
        .iter()
        .find(|r| r.target == 10_000)
        .expect("row");
    assert!(ten_thousand.cells[2].as_ref().is_some_and(|c| c.all), "uws");
    let capacity: Vec<String> = data
        .servers
        .iter()
        .filter(|s| crate::headline::capacity(&data, s).is_some())
        .cloned()
        .collect();
    assert_eq!(capacity, [SYNC, ASYNC, "uws", "gorilla"]);
    for chart in [
        crate::plots::headline_chart(&data),
        crate::plots::rss_chart(&data),
    ] {
        let labels: Vec<String> = chart
            .expect("drawn")
            .series
            .into_iter()
            .map(|s| s.label)
            .collect();
        assert!(
            REFERENCES[..2]
                .iter()
                .all(|r| labels.iter().any(|l| l == r)),
            "{labels:?}"
        );
    }
}

#[test]
fn a_server_that_failed_admission_shows_as_such_with_no_figures() {
    let records = sample_with_the_field();
    let setups = servers();
    let data = Data::with_setups(&records, Some(&setups));
    let headline = crate::headline::headline(&data);
    let row = headline
        .rows
        .iter()
        .find(|r| r.server == "node-ws")
        .expect("a row for node-ws");
    assert!(matches!(
        &row.admission,
        Some(chat_record::servers::Admission::Failed(why)) if why == NODE_WS_FAILURE
    ));
    assert!(row.capacity.is_none() && row.peak.is_none() && row.light.is_none());
    assert!(row.idle.is_none() && row.held.is_none());
    assert!(!data.servers.iter().any(|s| s == "node-ws"), "no column");
}

#[test]
fn the_server_order_holds_without_servers_json() {
    let records: Vec<Record> = [DJANGO, "node-ws", "other", "gorilla", ASYNC, "uws", SYNC]
        .into_iter()
        .map(|s| fanout_record(s, 10, 1, 100.0, 1000.0))
        .collect();
    let data = Data::new(&records);
    let order = [SYNC, ASYNC, "uws", "gorilla", "node-ws", "other", DJANGO];
    assert_eq!(data.servers, order);
    // servers.json places an unknown label by its kind.
    let mut setups = Servers::default();
    let mut other = servers().servers[0].clone();
    other.label = "other".to_owned();
    other.kind = chat_record::servers::ServerKind::Ours;
    setups.servers.push(other);
    let data = Data::with_setups(&records, Some(&setups));
    assert_eq!(data.servers[2], "other", "another of ours, after ours");
}

#[test]
fn the_cores_table_takes_the_kept_up_peak_and_its_scaling() {
    let mut records = cores_runs(SYNC);
    // node-ws reaches the ladder's top on one core: no ratio can be read.
    records.extend([
        cores_record("node-ws", 1, 1000, 300.0, 300_000.0),
        cores_record("node-ws", 2, 1000, 300.0, 300_000.0),
    ]);
    let setups = servers();
    let data = Data::with_setups(&records, Some(&setups));
    let cores = crate::cores::cores(&data).expect("cores runs");
    let rows: Vec<(&str, u64)> = cores
        .rows
        .iter()
        .map(|r| (r.server.as_str(), r.cores))
        .collect();
    assert_eq!(rows, [(SYNC, 1), (SYNC, 2), ("node-ws", 1), ("node-ws", 2)]);
    let one = &cores.rows[0];
    let peak = one.peak.as_ref().expect("a ladder");
    let best = peak.best.as_ref().expect("kept up once");
    assert_eq!(
        best.delivered_per_s, 300_000.0,
        "the fell-behind rung delivered more, and does not count"
    );
    assert_eq!(peak.stopped.as_ref().map(|f| f.load.rate), Some(1000.0));
    assert!(one.first && !cores.rows[1].first);
    assert_eq!(one.words.as_deref(), Some("a thread per connection"));
    assert_eq!(one.server_cpus.as_deref(), Some("1"));
    assert!(one.light.as_ref().is_some_and(|f| f.cpu_us.is_some()));
    assert_eq!(one.scaling, None, "one core is the base");
    let two = &cores.rows[1];
    assert_eq!(two.scaling, Some(1_000_000.0 / 300_000.0));
    assert!(!two.scaling_at_least, "it stopped at 2,000 msg/s");
    assert_eq!(cores.rows[3].scaling, None, "one core reached the top");
    assert_eq!(cores.light.map(|l| l.clients), Some(100));
    assert_eq!(one.loadgen_cpus.as_deref(), Some("0"));
}

#[test]
fn cores_runs_stay_out_of_every_other_section() {
    let mut records = vec![
        fanout_record(SYNC, 1000, 1, 100.0, 100_000.0),
        fanout_record(SYNC, 100, 1, 100.0, 10_000.0),
        fanout_record(ASYNC, 100, 1, 100.0, 10_000.0),
    ];
    records.extend(cores_runs(SYNC));
    records.extend(cores_runs(ASYNC));
    // A `current` run at a cores run's load: the before/after pairing must
    // not take the cores run for a variant to compare with it.
    records.push(variant_record(
        SYNC,
        "current",
        fanout_params(1000, 1, 300.0),
        300_000.0,
    ));
    let data = Data::new(&records);
    assert!(data.fans().iter().all(|f| f.variant.is_none()));
    let loads: Vec<(u64, f64)> = crate::fanout::rows(&data)
        .iter()
        .map(|r| (r.load.clients, r.load.rate))
        .collect();
    assert_eq!(loads, [(100, 100.0), (1000, 100.0)], "no cores rung");
    let headline = crate::headline::headline(&data);
    let sync = headline.sync.expect("sync row");
    let best = sync.peak.and_then(|p| p.best).expect("its normal peak");
    assert_eq!(best.load.rate, 100.0, "not a cores run's 1,000 msg/s");
    assert!(headline.r#async.expect("async row").peak.is_none());
    assert!(crate::variants::pairs(&data).is_empty());
    assert!(crate::history::history(&data).is_none());
    assert!(crate::layers::layers(&data).is_none());
    let chart = crate::plots::headline_chart(&data).expect("drawn");
    let points: usize = chart.series.iter().map(|s| s.points.len()).sum();
    assert_eq!(points, 1, "only the normal run at 1,000 clients");
}

#[test]
fn history_compares_the_best_rate_each_setting_kept_up() {
    let at = |rate: f64| fanout_params(100, 10, rate);
    let records = vec![
        variant_record(SYNC, "history-thread", at(1000.0), 100_000.0),
        variant_record(SYNC, "history-thread", at(3000.0), 298_000.0),
        variant_record(ASYNC, "history-writer", at(1000.0), 100_000.0),
        // 61% of the 300,000/s offered: fell behind.
        variant_record(ASYNC, "history-writer", at(3000.0), 183_899.0),
        variant_record(ASYNC, "history-off", at(3000.0), 300_000.0),
    ];
    let data = crate::data::Data::new(&records);
    let h = crate::history::history(&data).expect("history runs");
    assert_eq!(h.columns.len(), 3);
    assert_eq!(h.columns[0].setting, "thread");
    assert_eq!(h.columns[1].setting, "off", "off before the bridges");
    assert!(h.sync_ahead);
    let default = h.async_default.expect("kept up once");
    assert_eq!(default.load.rate, 1000.0, "its best is the rung it kept up");
    let row = h.rows.iter().find(|r| r.load.rate == 3000.0).expect("row");
    assert!(row.cells.iter().flatten().any(|f| !f.kept_up()));
    assert!(
        data.fans().is_empty(),
        "history runs stay out of the fan-out"
    );
}

#[test]
fn a_variant_is_paired_with_the_current_run_that_follows_it() {
    let load = fanout_params(1000, 1, 300.0);
    let mut flagged = load.clone();
    // A variant's flags are what it changes: they do not keep it apart.
    flagged.server_flags = Some("--max-batch-frames 1".into());
    let records = vec![
        variant_record(ASYNC, "batch-1", flagged, 300_000.0),
        variant_record(ASYNC, "current", fanout_params(1000, 1, 100.0), 100_000.0),
        variant_record(ASYNC, "current", load, 300_000.0),
    ];
    let pairs = crate::variants::pairs(&crate::data::Data::new(&records));
    assert_eq!(pairs.len(), 1);
    let (before, after) = pairs[0].fans.as_ref().expect("fan-out pair");
    assert_eq!(before.load, after.load, "like for like");
    assert_eq!(after.variant.as_deref(), Some("current"));
}

#[test]
fn a_flat_soak_that_lost_nothing_passes() {
    let soaks = crate::soak::soaks(&[soak_record(SYNC, 30)]);
    assert_eq!(soaks.len(), 1);
    assert!(soaks[0].passed);
    assert_eq!(soaks[0].lost, 0);
    assert!(soaks[0].resources.iter().all(|r| r.flat));
    assert_eq!(soaks[0].resources.len(), 3);
}
