//! The whole report on fixture records: rendered, short, deterministic, and
//! a run that fell behind never shown as a latency.

use std::fs;

use crate::data::{ASYNC, SYNC};
use crate::report::{self, Paths};
use crate::testdata::{
    capacity_record, connections_record, fanout_params, fanout_record, floor_record, soak_record,
    variant_record,
};

fn write_run(dir: &std::path::Path, records: &[chat_record::Record]) {
    fs::create_dir_all(dir).expect("mkdir");
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("json"))
        .collect();
    fs::write(dir.join("runs.jsonl"), lines.join("\n")).expect("write");
    fs::write(dir.join("README.md"), "commands").expect("write");
}

fn sample() -> Vec<chat_record::Record> {
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

/// A quiet room beside a busy one that fell behind.
fn stall_record() -> chat_record::Record {
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
    write_run(&run, &sample());
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
        "futex_wake",
    ] {
        assert!(first.contains(section), "{section} missing:\n{first}");
    }
    let again = report::generate(&paths).expect("again");
    assert_eq!(fs::read_to_string(again.report).expect("report"), first);
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
    let records = vec![
        variant_record(ASYNC, "batch-1", load.clone(), 300_000.0),
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
