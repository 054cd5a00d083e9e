//! The section from synthetic records: which runs it takes, what its tables
//! show, and which conclusions the numbers choose.

use std::fs;

use chat_loadgen::record::Record;

use super::*;
use crate::data::Data;
use crate::load::parse_records;
use crate::plots;
use crate::report;
use crate::testdata::{LayerSpec, TempDir, fanout_record, layer_record, variant, write_run};

const README: &str = "# run\n\n| machine | value |\n|---|---|\n| cores (online / usable by this process) | 2 / 2 |\n";

/// A run of `server` in `variant` at `rate` msg/s per sender, with the
/// servers' cores (one per process) and Redis's (one per shard); it keeps
/// up unless `share` says otherwise.
fn run(
    server: &str,
    variant: &str,
    rate: f64,
    server_cores: &[f64],
    redis_cores: &[f64],
    share: f64,
    p99_us: u64,
) -> Record {
    layer_record(&LayerSpec {
        server: server.to_owned(),
        variant: variant.to_owned(),
        rate,
        share,
        p99_us,
        server_cores: server_cores.to_vec(),
        redis_cores: redis_cores.to_vec(),
        loadgen_cores: 0.4,
        ..LayerSpec::default()
    })
}

/// sync's ladder at 100 and 500 msg/s per sender (2,400 and 12,000 msg/s):
/// memory keeps up at both; on Redis every process count keeps up at 100
/// and falls behind at 500 with the machine's two cores busy, Redis at
/// `redis_top` cores with 4 processes.
fn sync_ladder(redis_top: f64) -> Vec<Record> {
    vec![
        run("sync", "layer-memory", 100.0, &[0.3], &[], 1.0, 2_000),
        run("sync", "layer-memory", 500.0, &[1.2], &[], 1.0, 6_000),
        run("sync", "layer-redis-1", 100.0, &[0.4], &[0.05], 1.0, 3_000),
        run("sync", "layer-redis-1", 500.0, &[1.4], &[0.2], 0.7, 900_000),
        run(
            "sync",
            "layer-redis-2",
            100.0,
            &[0.25, 0.25],
            &[0.08],
            1.0,
            3_500,
        ),
        run(
            "sync",
            "layer-redis-2",
            500.0,
            &[0.7, 0.7],
            &[0.3],
            0.6,
            950_000,
        ),
        run(
            "sync",
            "layer-redis-4",
            100.0,
            &[0.15, 0.15, 0.15, 0.15],
            &[0.12],
            1.0,
            4_000,
        ),
        run(
            "sync",
            "layer-redis-4",
            500.0,
            &[0.35, 0.35, 0.35, 0.35],
            &[redis_top],
            0.5,
            990_000,
        ),
    ]
}

/// One room of 30 behind a chat-sync, a chat-async and a Django process,
/// one sender behind each at 10 msg/s: Django busiest.
fn mixed() -> Record {
    layer_record(&LayerSpec {
        server: "sync+async+django".to_owned(),
        variant: "layer-mixed-django".to_owned(),
        rooms: 1,
        room_size: 30,
        senders: 3,
        rate: 10.0,
        p99_us: 20_000,
        server_cores: vec![0.1, 0.05, 0.6],
        redis_cores: vec![0.02],
        ..LayerSpec::default()
    })
}

fn section_of(records: &[Record]) -> String {
    section(&Data::new(records), Some(2), &[])
}

#[test]
fn layer_runs_stay_out_of_every_other_section() {
    let mut records = vec![
        fanout_record("sync", 100, 10),
        variant(fanout_record("sync", 100, 10), "batch-1", "no batching"),
        // A name of the experiments of no known kind: still theirs.
        variant(fanout_record("async", 100, 10), "layer-odd", ""),
    ];
    records.extend(sync_ladder(0.4));
    records.push(mixed());
    let data = Data::new(&records);
    assert_eq!(data.fanouts.len(), 1);
    assert_eq!(data.variants.len(), 1, "only batch-1");
    assert_eq!(data.layers.len(), 10);
    assert!(data.history.is_empty());
    assert_eq!(data.servers, ["sync"], "no column for layer-only servers");
    assert_eq!(data.before_after().len(), 1);
    let layers = Layers::new(&data);
    assert_eq!(layers.runs.len(), 9);
    assert_eq!(layers.unknown.len(), 1);
    let text = section(&data, Some(2), &[]);
    assert!(text.contains("Not shown: 1 run(s)"), "{text}");
    assert!(text.contains("`layer-odd` (async)"), "{text}");
}

#[test]
fn kinds_processes_and_shards_come_from_the_records() {
    assert_eq!(Kind::parse("memory"), Some(Kind::Memory));
    assert_eq!(Kind::parse("redis-4"), Some(Kind::Redis));
    assert_eq!(Kind::parse("redis-shards-2"), Some(Kind::Shards));
    assert_eq!(Kind::parse("mixed-django"), Some(Kind::Mixed));
    assert_eq!(Kind::parse("redis-"), None);
    assert_eq!(Kind::parse("redis-x"), None);
    assert_eq!(Kind::parse("odd"), None);

    let records = [
        run("async", "layer-memory", 100.0, &[0.3], &[], 1.0, 2_000),
        run(
            "async",
            "layer-redis-shards-2",
            100.0,
            &[0.1; 4],
            &[0.1, 0.2],
            1.0,
            2_000,
        ),
        mixed(),
    ];
    // Through JSON, as the report reads them: the deployment's fields are
    // the record's own.
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("encodes") + "\n")
        .collect();
    let parsed = parse_records(&text).expect("reads");
    let runs: Vec<LayerRun<'_>> = parsed.iter().filter_map(LayerRun::of).collect();
    assert_eq!(runs.len(), 3);

    let memory = runs[0];
    assert_eq!((memory.process_count(), memory.shards()), (1, 0));
    assert_eq!(memory.setup().describe(), "memory, 1 process");
    assert!(memory.redis_cores().is_none());
    let processes = memory.processes();
    assert_eq!(processes.len(), 1);
    assert_eq!(processes[0].server, "async");
    assert_eq!(processes[0].deliveries, Some(memory.run.results.delivered));

    let sharded = runs[1];
    assert_eq!((sharded.process_count(), sharded.shards()), (4, 2));
    assert_eq!(sharded.setup().describe(), "2 Redis shards, 4 processes");
    assert!((sharded.redis_cores().expect("sampled") - 0.3).abs() < 1e-9);
    assert_eq!(sharded.redis_busiest(), Some(0.2));
    assert!((sharded.server_cores().expect("sampled") - 0.4).abs() < 1e-9);
    assert_eq!(sharded.asked_messages_per_s(), Some(2_400.0));
    assert_eq!(sharded.asked_deliveries_per_s(), Some(19_200.0));
    // 3 s of Redis CPU over 24,000 messages: 125 µs each, 8,000 msg/s a
    // core.
    let us = sharded.redis_us_per_message().expect("a cost");
    assert!((us - 125.0).abs() < 1e-6, "{us}");
    let ceiling = sharded.redis_ceiling_messages_per_s().expect("a ceiling");
    assert!((ceiling - 8_000.0).abs() < 1e-3, "{ceiling}");

    let mixed = runs[2];
    let servers: Vec<&str> = mixed.processes().iter().map(|p| p.server).collect();
    assert_eq!(servers, ["sync", "async", "django"]);
    assert_eq!(mixed.processes()[2].p99_us, Some(20_200));
    assert!(mixed.kept_up());
}

#[test]
fn the_ladder_table_has_a_row_per_configuration_and_rate() {
    let records = sync_ladder(0.4);
    let text = section_of(&records);
    assert!(
        text.contains("### Memory and Redis, by number of processes"),
        "{text}"
    );
    assert!(text.contains("| all cores busy (of 2) |"), "{text}");
    assert!(
        text.contains("| sync | memory, 1 process | 2,400 | 19,200 | 19,200 | 0.500 | 2.00 | 0.300 | 15.6 | — | — | — | 0.400 | 0.700 |"),
        "{text}"
    );
    assert!(
        text.contains("| sync | Redis, 4 processes | 12,000 |"),
        "{text}"
    );
    // The run that fell behind is flagged.
    assert!(
        text.contains("| 2.20 | ⚠ 480,000 of 960,000 deliveries still missing"),
        "{text}"
    );
    // Rows in order: memory, then 1, 2 and 4 processes on Redis.
    let at = |s: &str| text.find(s).unwrap_or(usize::MAX);
    assert!(at("| memory, 1 process |") < at("| Redis, 1 process |"));
    assert!(at("| Redis, 1 process |") < at("| Redis, 2 processes |"));
    assert!(at("| Redis, 2 processes |") < at("| Redis, 4 processes |"));
}

#[test]
fn the_machine_before_redis_is_said_with_where_redis_would_fill_its_core() {
    let text = section_of(&sync_ladder(0.4));
    assert!(
        text.contains(
            "  - memory, 1 process: kept up to 12,000 msg/s (96,000 deliveries/s, p99 6.00 ms)"
        ),
        "{text}"
    );
    assert!(text.contains(", the top of its ladder"), "{text}");
    assert!(
        text.contains(
            "  - Redis, 4 processes: kept up to 2,400 msg/s (19,200 deliveries/s, p99 4.00 ms), \
             and fell behind at 12,000 msg/s (50.0% of the deliveries/s asked delivered, p99 990 \
             ms; the machine's 2 cores busy: 2.20 in all (servers 1.40, Redis 0.400, load \
             generator 0.400 cores))"
        ),
        "{text}"
    );
    assert!(text.contains("Redis was never saturated"), "{text}");
    assert!(
        text.contains("at most 0.400 cores (sync with 4 processes on Redis, at 12,000 msg/s)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Where a configuration fell behind (sync with 1 process on Redis at 12,000 msg/s; \
             sync with 2 processes on Redis at 12,000 msg/s; sync with 4 processes on Redis at \
             12,000 msg/s), every core of the machine was near busy (at least 90% of 2)"
        ),
        "{text}"
    );
    // Redis with 4 processes at 2,400 msg/s: 1.2 s over 24,000 messages,
    // 50 µs each: 20,000 msg/s a core, 8.33× the 2,400 carried.
    assert!(
        text.contains("it would fill its core near 20,000 msg/s, 8.33× the most any configuration on Redis carried here (2,400 msg/s)"),
        "{text}"
    );
    // Memory against one Redis process at 2,400 msg/s: 3 s against 4 s of
    // server CPU over 192,000 deliveries.
    assert!(
        text.contains(
            "the server's CPU per 1,000 deliveries was 15.6 ms with rooms in memory and 20.8 \
             ms (1.33×) on Redis with one process, Redis itself adding 2.60 ms"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "Redis's CPU per message was 20.8 µs with 1 process, 33.3 µs with 2 processes and \
             50.0 µs with 4 processes (2.40× from 1 process to 4 processes): at those costs one \
             Redis core would carry about 48,000, 30,000 and 20,000 msg/s"
        ),
        "{text}"
    );
}

#[test]
fn a_saturated_redis_is_named_the_bottleneck() {
    let text = section_of(&sync_ladder(0.97));
    assert!(
        text.contains("Redis saturated: its busiest server used 0.970 cores"),
        "{text}"
    );
    assert!(
        text.contains(
            "saturated, in 1 run: sync with 4 processes on Redis from 12,000 msg/s (0.970 \
             cores)"
        ),
        "{text}"
    );
    assert!(!text.contains("Redis was never saturated"), "{text}");
}

#[test]
fn sharding_that_buys_nothing_says_so() {
    let mut records = sync_ladder(0.4);
    records.push(run(
        "sync",
        "layer-redis-shards-2",
        100.0,
        &[0.15; 4],
        &[0.07, 0.06],
        1.0,
        4_050,
    ));
    let text = section_of(&records);
    assert!(text.contains("### Two Redis shards against one"), "{text}");
    assert!(
        text.contains(
            "| sync | 4 | 2,400 | 1 → 2 | 19,200 → 19,200 | 4.00 → 4.05 | 0.120 → 0.0700 + \
             0.0600 | 0.600 → 0.600 |"
        ),
        "{text}"
    );
    assert!(
        text.contains("Two shards changed neither deliveries/s nor p99 by 5% or more."),
        "{text}"
    );
    assert!(text.contains("One Redis was never the limit"), "{text}");
}

#[test]
fn sharding_a_saturated_redis_is_credited() {
    let mut records = sync_ladder(0.97);
    records.push(run(
        "sync",
        "layer-redis-shards-2",
        500.0,
        &[0.5; 4],
        &[0.5, 0.45],
        1.0,
        30_000,
    ));
    let text = section_of(&records);
    assert!(
        text.contains("One Redis was saturated here (its core at 0.970 busy)"),
        "{text}"
    );
    assert!(
        text.contains("two shards did better in 1 of 1 comparisons"),
        "{text}"
    );
    assert!(
        text.contains("Deliveries/s: sharded higher, by 2.00×"),
        "{text}"
    );
}

#[test]
fn a_sharded_run_without_its_reference_is_named() {
    let records = [run(
        "async",
        "layer-redis-shards-2",
        100.0,
        &[0.1; 4],
        &[0.1, 0.1],
        1.0,
        2_000,
    )];
    let text = section_of(&records);
    assert!(
        text.contains("no run on one Redis at this load to compare with"),
        "{text}"
    );
}

#[test]
fn the_mixed_room_gives_each_process_its_share() {
    let records = [mixed()];
    let text = section_of(&records);
    assert!(
        text.contains("### One room across chat-sync, chat-async and Django"),
        "{text}"
    );
    assert!(
        text.contains("one process each of `sync`, `async` and `django` on one Redis"),
        "{text}"
    );
    // 6 s of CPU over a third of the 9,000 deliveries: 2 s per 1,000, 12×
    // async's cost and 6× sync's, 80% of the CPU for 33.3% of the
    // deliveries.
    assert!(
        text.contains(
            "django spent 2,000 ms of CPU per 1,000 deliveries to its clients (6.00× sync's \
             333 ms and 12.0× async's 167 ms), and did 80.0% of the servers' CPU work for \
             33.3% of the deliveries"
        ),
        "{text}"
    );
    assert!(
        text.contains("| 30.0 | django | 10 | 300 | 20.2 | 0.600 | 2,000 | 80.0% | 33.3% |"),
        "{text}"
    );
    assert!(text.contains("| 30.0 | Redis | — |"), "{text}");
    assert!(text.contains("| 30.0 | all servers | 30 | 900 |"), "{text}");
}

#[test]
fn the_plots_draw_each_configuration_and_one_core() {
    let mut records = sync_ladder(0.4);
    records.push(run(
        "async",
        "layer-redis-4",
        100.0,
        &[0.1; 4],
        &[0.1],
        1.0,
        2_000,
    ));
    let data = Data::new(&records);
    let charts = plot_charts(&data);
    assert_eq!(charts.len(), 2);
    let (file, p99) = &charts[0];
    assert_eq!(*file, P99_PLOT);
    let p99 = p99.as_ref().expect("a p99 chart");
    let labels: Vec<&str> = p99.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "sync, memory",
            "sync, Redis ×1",
            "sync, Redis ×2",
            "sync, Redis ×4",
            "async, Redis ×4"
        ]
    );
    assert!(p99.series[4].dashed, "async dashed");
    assert_eq!(p99.series[0].points, [(2_400.0, 2.0), (12_000.0, 6.0)]);
    let (file, redis) = &charts[1];
    assert_eq!(*file, REDIS_PLOT);
    let redis = redis.as_ref().expect("a Redis chart");
    assert!(redis.series.iter().all(|s| s.label != "sync, memory"));
    let one = redis.series.last().expect("the core line");
    assert_eq!(one.label, "one core");
    assert_eq!(one.points, [(2_160.0, 1.0), (12_600.0, 1.0)]);
    // A configuration has one colour in both plots.
    let colour = |chart: &plots::Chart, label: &str| {
        chart
            .series
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.color)
    };
    assert_eq!(
        colour(p99, "sync, Redis ×1"),
        colour(redis, "sync, Redis ×1")
    );
    assert_ne!(colour(p99, "sync, memory"), colour(p99, "sync, Redis ×1"));
    let svg = plots::render(redis).expect("renders");
    assert!(svg.contains("one core") && svg.contains("sync, Redis ×4"));

    // Nothing on Redis: no Redis chart; nothing at all: neither.
    let memory = [run("sync", "layer-memory", 100.0, &[0.3], &[], 1.0, 2_000)];
    let charts = plot_charts(&Data::new(&memory));
    assert!(charts[0].1.is_some() && charts[1].1.is_none());
    let charts = plot_charts(&Data::new(&[fanout_record("sync", 10, 1)]));
    assert!(charts.iter().all(|(_, c)| c.is_none()));
}

#[test]
fn repeats_show_their_median() {
    let mut records = sync_ladder(0.4);
    records.push(run("sync", "layer-memory", 100.0, &[0.3], &[], 1.0, 1_000));
    records.push(run("sync", "layer-memory", 100.0, &[0.3], &[], 1.0, 9_000));
    let data = Data::new(&records);
    let layers = Layers::new(&data);
    let rows = layers.ladder_rows();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].repeats, 3);
    assert_eq!(rows[0].run.p99_us(), Some(2_000), "the median by p99");
    let text = section(&data, Some(2), &[]);
    assert!(text.contains("median of 3 runs by p99"), "{text}");
}

#[test]
fn the_report_gets_the_section_and_its_plots() {
    let tmp = TempDir::new("layers-report");
    let dir = tmp.path().join("2025-06-01-box");
    let mut records = vec![
        fanout_record("sync", 100, 1),
        fanout_record("async", 100, 1),
    ];
    records.extend(sync_ladder(0.4));
    write_run(&dir, &records, README);
    let generated = report::generate(tmp.path(), Some(&dir)).expect("generate");
    let md = fs::read_to_string(&generated.report).expect("report");
    let at = md.find("## Rooms on Redis").expect("the section");
    let end = md.find("## Write floor").expect("the next section");
    assert!(at < end);
    let section = &md[at..end];
    for file in [P99_PLOT, REDIS_PLOT] {
        assert!(section.contains(&format!("](plots/{file})")), "{section}");
        assert!(tmp.path().join(plots::PLOTS_DIR).join(file).exists());
    }
    assert!(section.contains("all cores busy (of 2)"), "{section}");
    // Nowhere else: no layer run counted as a fan-out or a variant.
    for text in [&md[..at], &md[end..]] {
        assert!(
            !text.contains("layer-redis"),
            "a layer run outside its section"
        );
    }
    assert!(md.contains("10 runs (2 fan-out, 8 channel-layer)"), "{md}");

    // Without them: said so, and the plots are gone.
    write_run(&dir, &records[..2], README);
    let generated = report::generate(tmp.path(), Some(&dir)).expect("generate");
    let md = fs::read_to_string(&generated.report).expect("report");
    assert!(
        md.contains("Not measured: the run has no `layer-*` runs"),
        "{md}"
    );
    for file in [P99_PLOT, REDIS_PLOT] {
        assert!(!tmp.path().join(plots::PLOTS_DIR).join(file).exists());
    }
}
