//! The history section from synthetic records: which runs it takes, what
//! its tables show, and which conclusions the numbers choose.

use std::fs;

use chat_loadgen::record::{Record, Results};

use super::*;
use crate::data::Data;
use crate::plots;
use crate::report;
use crate::testdata::{TempDir, fanout_record, history_record, stall_record, variant, write_run};

const SYNC_ON: &str = "--history /tmp/h/history-1.sqlite";
const ASYNC: &str = "--workers 2";

fn async_with(bridge: &str, delay_ms: Option<u64>) -> String {
    let mut flags = format!("--workers 2 --history /tmp/h/history-2.sqlite --db-bridge {bridge}");
    if let Some(delay) = delay_ms {
        flags.push_str(&format!(" --db-delay-ms={delay}"));
    }
    flags
}

/// Every throughput setting at 100 msg/s per room: all keep up but
/// `inline` (`inline_share` of what it owes).
fn throughput_runs(inline_share: f64) -> Vec<Record> {
    vec![
        history_record("sync", "off", "", 100.0, 1.0, 2_000),
        history_record("sync", "thread", SYNC_ON, 100.0, 1.0, 4_000),
        history_record("async", "off", ASYNC, 100.0, 1.0, 1_000),
        history_record(
            "async",
            "writer",
            &async_with("writer", None),
            100.0,
            1.0,
            3_000,
        ),
        history_record(
            "async",
            "spawn-blocking",
            &async_with("spawn-blocking", None),
            100.0,
            1.0,
            2_000,
        ),
        history_record(
            "async",
            "inline",
            &async_with("inline", None),
            100.0,
            inline_share,
            9_000,
        ),
    ]
}

/// The stall experiment at 10 ms per call: `inline_p99_us` is the quiet
/// room's p99 with inline; the others stay near their reference.
fn stall_runs(inline_p99_us: u64) -> Vec<Record> {
    let sync_delay = format!("{SYNC_ON} --db-delay-ms 10");
    vec![
        stall_record("sync", "off", "", 2_000, 1_000.0),
        stall_record("sync", "thread", &sync_delay, 13_000, 99.0),
        stall_record("async", "off", ASYNC, 2_000, 1_000.0),
        stall_record(
            "async",
            "writer",
            &async_with("writer", Some(10)),
            21_000,
            990.0,
        ),
        stall_record(
            "async",
            "spawn-blocking",
            &async_with("spawn-blocking", Some(10)),
            12_000,
            98.0,
        ),
        stall_record(
            "async",
            "inline",
            &async_with("inline", Some(10)),
            inline_p99_us,
            60.0,
        ),
    ]
}

#[test]
fn history_runs_stay_out_of_every_other_section() {
    let mut records = vec![
        fanout_record("sync", 100, 10),
        variant(fanout_record("sync", 100, 10), "batch-1", "no batching"),
        // A name of the experiments with an unknown setting: still theirs.
        variant(fanout_record("async", 100, 10), "history-odd", ""),
    ];
    records.extend(throughput_runs(1.0));
    records.extend(stall_runs(900_000));
    let data = Data::new(&records);
    assert_eq!(data.fanouts.len(), 1);
    assert_eq!(data.variants.len(), 1, "only batch-1");
    assert_eq!(data.history.len(), 13);
    assert_eq!(data.servers, ["sync"], "no column for history-only servers");
    assert_eq!(data.before_after().len(), 1);
    let history = History::new(&data);
    assert_eq!(history.runs.len(), 12);
    let text = section(&data, &[]);
    assert!(!text.contains("The load generator warned"), "{text}");
    assert_eq!(history.unknown.len(), 1);
    assert!(text.contains("Not shown: 1 run(s)"), "{text}");
    assert!(text.contains("`history-odd` (async)"), "{text}");
}

#[test]
fn the_load_generators_warnings_are_listed_but_missing_deliveries() {
    let mut records = stall_runs(900_000);
    records[5].warnings = vec![
        "LATE: 200 of 200 expected deliveries had not arrived".to_owned(),
        "busy room: 10000 of 10000 expected deliveries had not arrived".to_owned(),
        "the load generator used more CPU (0.9 cores) than the server (0.1)".to_owned(),
    ];
    let data = Data::new(&records);
    let text = section(&data, &[]);
    assert!(
        text.contains(
            "The load generator warned, in these runs:\n\n- async, `stall-inline`: the load \
             generator used more CPU (0.9 cores)"
        ),
        "{text}"
    );
    assert!(!text.contains("- async, `stall-inline`: LATE"), "{text}");
}

#[test]
fn the_flags_give_the_delay_and_the_workers() {
    assert_eq!(
        flag_value("--a 1 --db-delay-ms 10", "--db-delay-ms"),
        Some("10")
    );
    assert_eq!(
        flag_value("--db-delay-ms=5 --b", "--db-delay-ms"),
        Some("5")
    );
    assert_eq!(flag_value("--db-delay-ms-x=5", "--db-delay-ms"), None);
    assert_eq!(flag_value("", "--workers"), None);
    let records = [
        stall_record("async", "inline", &async_with("inline", Some(10)), 1, 1.0),
        stall_record("sync", "off", "", 1, 1.0),
        {
            let mut r = stall_record("sync", "off", "", 1, 1.0);
            r.params.server_flags = None;
            r
        },
    ];
    let runs: Vec<HistoryRun<'_>> = records.iter().filter_map(HistoryRun::of).collect();
    assert_eq!(runs.len(), 3);
    assert_eq!(
        (runs[0].delay_ms(), runs[0].workers()),
        (Some(10.0), Some(2))
    );
    assert_eq!(
        (runs[0].experiment, runs[0].setting),
        (Experiment::Stall, Setting::Inline)
    );
    assert_eq!(
        runs[1].delay_ms(),
        Some(0.0),
        "flags recorded, no delay among them"
    );
    assert_eq!(runs[2].delay_ms(), None, "no flags recorded");
    assert_eq!(runs[0].busy_offered_per_s(), Some(1000.0));
    assert_eq!(runs[0].busy_delivered_per_s(), Some(1.0));
}

#[test]
fn the_throughput_table_and_a_setting_that_kept_up() {
    let records = throughput_runs(1.0);
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Throughput);
    let order: Vec<(&str, Setting)> = rows
        .iter()
        .map(|r| (r.run.server(), r.run.setting))
        .collect();
    assert_eq!(
        order,
        [
            ("sync", Setting::Off),
            ("sync", Setting::Thread),
            ("async", Setting::Off),
            ("async", Setting::Writer),
            ("async", Setting::SpawnBlocking),
            ("async", Setting::Inline),
        ]
    );
    let table = tables::throughput(&rows);
    assert!(
        table.contains(
            "| 100 clients in 10 rooms, 1 sender/room @ 100 msg/s, 64 B | async | `writer`: one \
             database thread, batched | 1,000 | 1,000 | 1,000 | 0.750 | 3.00 |"
        ),
        "{table}"
    );
    let text = explain::throughput(&rows);
    assert!(
        text.contains("- **sync**, at the heaviest load it carried with history off (100 clients"),
        "{text}"
    );
    assert!(
        text.contains(
            "on the connection's thread 1,000 msg/s delivered, p99 4.00 ms (100% of history \
             off's; p99 2.00× history off's)"
        ),
        "{text}"
    );
    assert!(
        text.contains("Every history setting delivered what was sent"),
        "{text}"
    );
    assert!(text.contains("p99 up to 9.00× history off's"), "{text}");
}

#[test]
fn a_setting_that_fell_behind_is_named() {
    let records = throughput_runs(0.5);
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Throughput);
    let text = explain::throughput(&rows);
    assert!(
        text.contains(
            "`inline` did not deliver what was sent (under 95.0% of it, or deliveries lost or \
             late): history off did, so at this load the way it stored messages was its limit."
        ),
        "{text}"
    );
    assert!(text.contains("(50.0% of history off's"), "{text}");
    let (sync, asynch) = text.split_once("- **async**").expect("both servers");
    assert!(sync.contains("Every history setting"), "{text}");
    assert!(!asynch.contains("Every history setting"), "{text}");
    let table = tables::throughput(&rows);
    assert!(
        table.contains("⚠ 50,000 of 100,000 deliveries still missing"),
        "{table}"
    );
}

#[test]
fn the_comparison_is_at_the_heaviest_load_history_off_carried() {
    let mut records = throughput_runs(1.0);
    // At 1,000 msg/s per room, sync falls behind with history off too.
    records.push(history_record("sync", "off", "", 1000.0, 0.6, 90_000));
    records.push(history_record(
        "sync", "thread", SYNC_ON, 1000.0, 0.5, 99_000,
    ));
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Throughput);
    assert_eq!(rows.len(), 8);
    let text = explain::throughput(&rows);
    assert!(
        text.contains(
            "- **sync**, at the heaviest load it carried with history off (100 clients in 10 \
             rooms, 1 sender/room @ 100 msg/s"
        ),
        "{text}"
    );
    // Only sync falling behind everywhere: the heaviest load, said so.
    let only_heavy: Vec<Record> = records.into_iter().skip(6).collect();
    let data = Data::new(&only_heavy);
    let text = explain::throughput(&History::new(&data).rows(Experiment::Throughput));
    assert!(
        text.contains("its heaviest load (it fell behind even with history off)"),
        "{text}"
    );
    assert!(
        text.contains(
            "on the connection's thread did not deliver what was sent (under 95.0% of it, or \
             deliveries lost or late), nor did history off"
        ),
        "{text}"
    );
}

#[test]
fn inline_stalling_alone_is_the_seeds_point() {
    let records = stall_runs(900_000);
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Stall);
    assert_eq!(rows.len(), 6);
    let table = tables::stall(&rows);
    assert!(
        table.contains("| async | `inline`: on the async worker | 10 | 225 | 900 | 1,800 |"),
        "{table}"
    );
    assert!(
        table.contains(
            "| sync | history off | — | 0.500 | 2.00 | 4.00 |  | 1,000 | 1,000 | 1,000 |"
        ),
        "{table}"
    );
    let text = explain::stall(&rows);
    assert!(
        text.contains("- **async** (2 workers): the quiet room's p99 was 2.00 ms"),
        "{text}"
    );
    assert!(text.contains("`inline` 900 ms (450×)"), "{text}");
    assert!(
        text.contains(
            "The seed's point, measured: called inline, the database held the workers and the \
             quiet room waited behind the busy room's calls (p99 450× its history-off figure); \
             through `writer` and `spawn-blocking` it stayed within 3 database calls"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "With the calls on the connection's own thread, the quiet room's p99 stayed within 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("allows at most 1,000 / 10 = 100 msg/s"),
        "{text}"
    );
    assert!(
        text.contains("Above it: async `writer`, which stores a batch of messages per call."),
        "{text}"
    );
    assert!(
        text.contains(
            "At or under the bound, so falling behind what was asked: sync on the connection's \
             thread, async `spawn-blocking` and async `inline`."
        ),
        "{text}"
    );
    let method = explain::stall_method(&rows);
    assert!(
        method
            .contains("a busy room of 10 clients (10 posting 100 msg/s each, 1,000 msg/s in all)"),
        "{method}"
    );
    assert!(method.contains("(10 ms)"), "{method}");
}

#[test]
fn inline_near_its_reference_is_no_stall() {
    let records = stall_runs(15_000);
    let data = Data::new(&records);
    let text = explain::stall(&History::new(&data).rows(Experiment::Stall));
    assert!(
        text.contains("In this run inline did not stall the quiet room"),
        "{text}"
    );
    assert!(!text.contains("The seed's point"), "{text}");
}

#[test]
fn a_bridge_that_stalls_too_is_named() {
    let mut records = stall_runs(900_000);
    records[4] = stall_record(
        "async",
        "spawn-blocking",
        &async_with("spawn-blocking", Some(10)),
        400_000,
        98.0,
    );
    let data = Data::new(&records);
    let text = explain::stall(&History::new(&data).rows(Experiment::Stall));
    assert!(
        text.contains("Inline kept the quiet room's p99 beyond 3 database calls of its"),
        "{text}"
    );
    assert!(text.contains("and so did `spawn-blocking`."), "{text}");
    assert!(!text.contains("The seed's point"), "{text}");
}

#[test]
fn a_stalled_quiet_room_is_a_lower_bound_or_nothing() {
    let mut records = stall_runs(900_000);
    if let Results::Fanout(f) = &mut records[5].results {
        f.late = 150;
        f.drain_s = 5.0;
    }
    let data = Data::new(&records);
    let text = explain::stall(&History::new(&data).rows(Experiment::Stall));
    assert!(
        text.contains(
            "`inline` 900 ms (450×; at least: 150 deliveries were still missing 5.00 s after \
             the senders stopped"
        ),
        "{text}"
    );
    assert!(text.contains("The seed's point, measured"), "{text}");

    // Every delivery lost: no latency to show, and no stall-free verdict.
    if let Results::Fanout(f) = &mut records[5].results {
        f.late = 0;
        f.lost = 200;
        f.delivered = 0;
        f.latency_us = Default::default();
    }
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Stall);
    let text = explain::stall(&rows);
    assert!(text.contains("`inline` nothing delivered."), "{text}");
    assert!(text.contains("The seed's point, measured"), "{text}");
    assert!(
        tables::stall(&rows).contains("| async | `inline`: on the async worker | 10 | — | — | — |"),
        "{}",
        tables::stall(&rows)
    );
    let bars = plot_chart(&data).expect("bars");
    assert_eq!(bars.labels.len(), 5, "no bar without a latency");
}

#[test]
fn repeats_show_their_median() {
    let mut records = stall_runs(900_000);
    records.push(stall_record(
        "async",
        "inline",
        &async_with("inline", Some(10)),
        100_000,
        60.0,
    ));
    records.push(stall_record(
        "async",
        "inline",
        &async_with("inline", Some(10)),
        500_000,
        60.0,
    ));
    let data = Data::new(&records);
    let rows = History::new(&data).rows(Experiment::Stall);
    let inline = rows
        .iter()
        .find(|r| r.run.setting == Setting::Inline)
        .expect("an inline row");
    assert_eq!(inline.repeats, 3);
    assert_eq!(inline.run.results().latency_us.p99_us, 500_000);
    assert!(tables::stall(&rows).contains("median of 3 runs by p99"));
}

#[test]
fn the_plot_has_a_bar_per_setting_on_a_log_scale() {
    let records = stall_runs(900_000);
    let data = Data::new(&records);
    let bars = plot_chart(&data).expect("bars");
    assert_eq!(bars.labels.len(), 6);
    assert_eq!(bars.labels[0], "sync, history off");
    assert_eq!(bars.labels[1], "sync, own thread");
    assert_eq!(bars.labels[5], "async, inline");
    assert!(bars.log, "2 ms to 900 ms spans decades");
    assert_eq!(
        bars.title,
        "Quiet room p99 beside a busy room, 10 ms per database call"
    );
    let svg = render_plot(&bars).expect("svg");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("async, inline") && svg.contains("900 ms"),
        "{svg}"
    );
    let mut near = stall_runs(15_000);
    near[3] = stall_record(
        "async",
        "writer",
        &async_with("writer", Some(10)),
        18_000,
        990.0,
    );
    let data = Data::new(&near);
    assert!(
        !plot_chart(&data).expect("bars").log,
        "2 ms to 18 ms: under ten times"
    );
    assert!(plot_chart(&Data::new(&throughput_runs(1.0))).is_none());
}

#[test]
fn the_report_gets_the_section_and_its_plot() {
    let tmp = TempDir::new("history-report");
    let run = tmp.path().join("2025-06-01-box");
    let mut records = vec![
        fanout_record("sync", 100, 1),
        fanout_record("async", 100, 1),
    ];
    records.extend(throughput_runs(1.0));
    records.extend(stall_runs(900_000));
    write_run(&run, &records, "# run\n");
    let generated = report::generate(tmp.path(), Some(&run)).expect("generate");
    let md = fs::read_to_string(&generated.report).expect("report");
    let heading = "## History (SQLite) and the database bridges";
    let at = md.find(heading).expect("the section");
    let end = md.find("## Write floor").expect("the next section");
    assert!(at < end);
    let section = &md[at..end];
    assert!(section.contains("### Storing every message"), "{section}");
    assert!(section.contains("### A slow database: a quiet room beside a busy one"));
    assert!(
        section.contains(&format!("](plots/{HISTORY_PLOT})")),
        "{section}"
    );
    assert!(
        tmp.path()
            .join(plots::PLOTS_DIR)
            .join(HISTORY_PLOT)
            .exists()
    );
    // Nowhere else: the stall's 900 ms, and no count of them as fan-outs.
    for text in [&md[..at], &md[end..]] {
        assert!(
            !text.contains("900"),
            "a history figure outside its section"
        );
        assert!(!text.contains("stall-"));
    }
    assert!(md.contains("14 runs (2 fan-out, 12 history)"), "{md}");

    // Without history runs: said so, and the plot is gone.
    write_run(&run, &records[..2], "# run\n");
    let generated = report::generate(tmp.path(), Some(&run)).expect("generate");
    let md = fs::read_to_string(&generated.report).expect("report");
    assert!(md.contains("Not measured: the run has no `history-*` or `stall-*` runs"));
    assert!(
        !tmp.path()
            .join(plots::PLOTS_DIR)
            .join(HISTORY_PLOT)
            .exists()
    );
    let counted = generated
        .plots
        .iter()
        .filter(|p| p.ends_with(HISTORY_PLOT))
        .count();
    assert_eq!(counted, 0);
}
