//! One run of a server scenario as a library call: what the `chat-loadgen`
//! binary does for `fanout`, `capacity` and `connections`, and what a sweep
//! driver calls directly, so that both make the same record the same way.
//!
//! [`run`] takes the load ([`Load`]), the server it drives ([`Target`]),
//! what the record says beside them ([`Tags`]) and how the load generator
//! itself runs ([`RunOptions`]: its worker threads and the cores they are
//! pinned to), and returns the [`Record`] with its warnings (loss, late
//! deliveries, the load generator being the bottleneck). Printing it
//! ([`crate::summary`]) and appending it to a runs file
//! ([`crate::append_json`]) are the caller's. [`command_line`] is the
//! `chat-loadgen` invocation that runs the same load, for a run's README;
//! [`floor()`] is the write floor's record; [`raise_open_files_limit`] is
//! called once per process, before any run.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use chat_record::{Deployment, Params, Record, Results};

use crate::capacity::{self, CapacityParams};
use crate::client::resolve_all;
use crate::connections::{self, ConnectionsParams};
use crate::cpus::Affinity;
use crate::fanout::{self, FanoutParams};
use crate::floor::{self, FloorParams};
use crate::progress::Progress;
use crate::sampler::Watch;
use crate::{loadgen_warnings, now_rfc3339};

/// The load of one run: a scenario and its parameters.
#[derive(Debug, Clone)]
pub enum Load {
    /// Clients spread over rooms, open-loop senders ([`fanout`]).
    Fanout(FanoutParams),
    /// One room, clients stepped up until p99 latency passes an SLO
    /// ([`capacity`]).
    Capacity(CapacityParams),
    /// Idle connections, opened, held and closed ([`connections`]).
    Connections(ConnectionsParams),
}

impl Load {
    /// The scenario's name, as the record and the command line spell it.
    pub fn scenario(&self) -> &'static str {
        match self {
            Self::Fanout(_) => "fanout",
            Self::Capacity(_) => "capacity",
            Self::Connections(_) => "connections",
        }
    }

    fn connect_timeout(&self) -> Duration {
        match self {
            Self::Fanout(params) => params.connect_timeout,
            Self::Capacity(params) => params.fanout.connect_timeout,
            Self::Connections(params) => params.connect_timeout,
        }
    }
}

/// The server a run drives, and what the record calls it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The server's name in the record and its summary (`sync`, `uws`).
    pub label: String,
    /// `ws://HOST:PORT`, one or several server processes sharing rooms:
    /// member *k* of room *r* connects to URL (*r* + *k*) mod their number.
    pub urls: Vec<String>,
    /// The server processes to sample from `/proc`: one per URL, in the
    /// same order, or none.
    pub server_pids: Vec<u32>,
    /// Other processes to sample the same way, by label (`redis`).
    pub sample_pids: Vec<(String, u32)>,
    /// This project's commit, recorded as the one that ran the load.
    pub commit: String,
}

/// What the record says about the run beyond its load, as given.
#[derive(Debug, Clone, Default)]
pub struct Tags {
    /// A variant run's name: a modified server set beside the normal run.
    pub variant: Option<String>,
    /// What the variant is, in words.
    pub variant_note: Option<String>,
    /// The server's flags beyond the usual ones, in its own words.
    pub server_flags: Option<String>,
    /// The cores the server was pinned to, a `taskset -c` list (recorded
    /// only: pinning the server is the caller's).
    pub server_cpus: Option<String>,
    /// The cores the load generator was pinned to, a `taskset -c` list
    /// (recorded only: [`RunOptions::cpus`] pins).
    pub loadgen_cpus: Option<String>,
}

/// How the load generator itself runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads of its runtime (at least one is used).
    pub workers: usize,
    /// The CPUs its threads are pinned to (see
    /// [`crate::cpus::parse_cpu_list`]); `None` leaves them where the
    /// process may run.
    pub cpus: Option<Vec<usize>>,
    /// Whether to show a progress bar (only ever on a terminal).
    pub progress: bool,
}

impl Default for RunOptions {
    /// A worker per core this process may use, unpinned, no progress bar.
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpus: None,
            progress: false,
        }
    }
}

/// Raises this process's open-files soft limit as far as its hard limit
/// allows (a run holds a socket per client); returns the new limit. Call
/// once, before any run.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Runs one load against a target on a tokio runtime of its own, whose
/// threads (and the thread that blocks on it) are pinned to `options.cpus`
/// when given; returns the record (summary printing and appending JSON are
/// the caller's).
///
/// The runtime runs on a fresh thread, so this may be called from
/// anywhere, async code included, and the caller's own threads stay
/// unpinned.
pub fn run(
    load: &Load,
    target: &Target,
    tags: &Tags,
    options: &RunOptions,
) -> anyhow::Result<Record> {
    let workers = options.workers.max(1);
    let affinity = options
        .cpus
        .as_deref()
        .map(Affinity::new)
        .transpose()
        .context("cannot pin the load generator")?;
    // The cores its warnings weigh its CPU against.
    let cores = affinity
        .as_ref()
        .map_or(workers, |a| a.cpus().len().min(workers));
    std::thread::scope(|scope| {
        let driver = std::thread::Builder::new()
            .name("chat-loadgen".into())
            .spawn_scoped(scope, || {
                let runtime = pinned_runtime(workers, affinity)?;
                runtime.block_on(run_on_runtime(load, target, tags, options, cores))
            })
            .context("cannot start the load generator's thread")?;
        driver
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A runtime of `workers` threads, each pinned to `affinity` as it starts,
/// as is the calling thread (which blocks on it).
fn pinned_runtime(
    workers: usize,
    affinity: Option<Affinity>,
) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(workers)
        .thread_name("chat-loadgen-worker")
        .enable_all();
    if let Some(affinity) = affinity {
        affinity
            .pin_current_thread()
            .context("cannot pin the load generator")?;
        // The same mask the calling thread just took, so a refusal here
        // would be news: said, not fatal (a hook cannot fail the build).
        builder.on_thread_start(move || {
            if let Err(error) = affinity.pin_current_thread() {
                tracing::warn!(%error, "a load generator thread could not be pinned");
            }
        });
    }
    builder.build().context("cannot start the tokio runtime")
}

/// What a scenario returned, in the shape every scenario shares.
struct Measured {
    results: Results,
    server: Option<chat_record::ProcessFigures>,
    loadgen: chat_record::ProcessFigures,
    deployment: Deployment,
    warnings: Vec<String>,
    send_lag: Option<chat_record::Latency>,
}

async fn run_on_runtime(
    load: &Load,
    target: &Target,
    tags: &Tags,
    options: &RunOptions,
    cores: usize,
) -> anyhow::Result<Record> {
    let watch = Watch {
        servers: target.server_pids.clone(),
        others: target.sample_pids.clone(),
    };
    watch.check(target.urls.len())?;
    let targets = resolve_all(&target.urls, load.connect_timeout()).await?;
    let progress = Progress::new(options.progress);
    let started_at = now_rfc3339();
    let Measured {
        results,
        server,
        loadgen,
        deployment,
        mut warnings,
        send_lag,
    } = measure(load, &targets, &watch, &progress).await?;
    // Against several server processes, the busiest is the one the load
    // generator's CPU is weighed against.
    let busiest = deployment
        .server_processes
        .iter()
        .map(|p| &p.process)
        .max_by(|a, b| a.cpu_utilization.total_cmp(&b.cpu_utilization))
        .or(server.as_ref());
    warnings.extend(loadgen_warnings(
        &loadgen,
        busiest,
        send_lag.as_ref(),
        cores,
    ));
    add_delivery_warnings(&results, &mut warnings);
    Ok(Record {
        scenario: load.scenario().to_owned(),
        server: target.label.clone(),
        commit: target.commit.clone(),
        started_at,
        url: target.urls.first().cloned().unwrap_or_default(),
        params: recorded_params(load, tags),
        results,
        server_process: server,
        loadgen_process: loadgen,
        warnings,
        deployment,
    })
}

async fn measure(
    load: &Load,
    targets: &[crate::client::Target],
    watch: &Watch,
    progress: &Progress,
) -> anyhow::Result<Measured> {
    Ok(match load {
        Load::Fanout(params) => {
            let outcome = fanout::run(targets, params, watch, progress).await?;
            Measured {
                send_lag: Some(outcome.results.send_lag_us.clone()),
                results: Results::Fanout(outcome.results),
                server: outcome.server,
                loadgen: outcome.loadgen,
                deployment: outcome.deployment,
                warnings: outcome.warnings,
            }
        }
        Load::Capacity(params) => {
            let outcome = capacity::run(targets, params, watch, progress).await?;
            Measured {
                send_lag: outcome
                    .results
                    .steps
                    .last()
                    .map(|s| s.fanout.send_lag_us.clone()),
                results: Results::Capacity(outcome.results),
                server: outcome.server,
                loadgen: outcome.loadgen,
                deployment: outcome.deployment,
                warnings: outcome.warnings,
            }
        }
        Load::Connections(params) => {
            let outcome = connections::run(targets, params, watch, progress).await?;
            Measured {
                send_lag: None,
                results: Results::Connections(outcome.results),
                server: outcome.server,
                loadgen: outcome.loadgen,
                deployment: outcome.deployment,
                warnings: Vec::new(),
            }
        }
    })
}

/// What a reader must not miss about the deliveries and connections:
/// loss first, then late deliveries, then the rest.
fn add_delivery_warnings(results: &Results, warnings: &mut Vec<String>) {
    if let Results::Fanout(results) = results {
        if results.late > 0 {
            warnings.insert(
                0,
                format!(
                    "LATE: {} of {} expected deliveries had not arrived when the run stopped waiting ({:.1} s after the senders stopped); counted in the latencies as arriving then",
                    results.late, results.expected_deliveries, results.drain_s
                ),
            );
        }
        if results.lost > 0 {
            warnings.insert(0, loss_warning(results.lost, results.expected_deliveries));
        }
        if results.missed_by_closed > 0 {
            warnings.push(format!(
                "{} expected deliveries were owed to members the server closed (close codes {:?})",
                results.missed_by_closed, results.close_codes
            ));
        }
        if let Some(busy) = &results.busy_room {
            if busy.lost > 0 {
                let loss = loss_warning(busy.lost, busy.expected_deliveries);
                warnings.insert(0, format!("{loss}, in the busy room"));
            }
            if busy.late > 0 {
                warnings.push(format!(
                    "busy room: {} of {} expected deliveries had not arrived when the run stopped waiting (late)",
                    busy.late, busy.expected_deliveries
                ));
            }
            if busy.missed_by_closed > 0 {
                warnings.push(format!(
                    "busy room: {} expected deliveries were owed to members the server closed (close codes {:?})",
                    busy.missed_by_closed, busy.close_codes
                ));
            }
        }
    }
    if let Results::Connections(results) = results
        && results.opened < results.target
    {
        warnings.push(format!(
            "opened only {} of {} connections: {}",
            results.opened,
            results.target,
            results.first_failure.as_deref().unwrap_or("no error seen")
        ));
    }
}

fn loss_warning(lost: u64, expected: u64) -> String {
    format!(
        "LOSS: {lost} of {expected} expected deliveries never arrived ({:.3}%)",
        lost as f64 * 100.0 / expected.max(1) as f64
    )
}

/// The parameters a run records: its load's, in the units the record
/// uses, and its tags.
pub fn recorded_params(load: &Load, tags: &Tags) -> Params {
    let mut params = Params {
        variant: tags.variant.clone(),
        variant_note: tags.variant_note.clone(),
        server_flags: tags.server_flags.clone(),
        server_cpus: tags.server_cpus.clone(),
        loadgen_cpus: tags.loadgen_cpus.clone(),
        ..Params::default()
    };
    match load {
        Load::Fanout(fanout) => {
            params.clients = Some(fanout.clients);
            params.rooms = Some(fanout.rooms);
            params.senders_per_room = Some(fanout.senders_per_room);
            record_traffic(fanout, &mut params);
            if let Some(room) = &fanout.busy {
                params.busy_clients = Some(room.clients);
                params.busy_senders = Some(room.senders);
                params.busy_rate_per_s = Some(room.rate_per_s);
            }
        }
        Load::Capacity(capacity) => {
            params.start = Some(capacity.start);
            params.step = Some(capacity.step);
            params.max = Some(capacity.max);
            params.slo_ms = Some(capacity.slo.as_secs_f64() * 1000.0);
            params.rooms = Some(1);
            params.senders_per_room = Some(capacity.fanout.senders_per_room);
            record_traffic(&capacity.fanout, &mut params);
        }
        Load::Connections(connections) => {
            params.clients = Some(connections.count);
            params.hold_s = Some(connections.hold.as_secs_f64());
            params.source_addrs = Some(u64::from(connections.source_addrs));
        }
    }
    params
}

/// What the senders do, as recorded.
fn record_traffic(fanout: &FanoutParams, params: &mut Params) {
    params.rate_per_s = Some(fanout.rate_per_s);
    params.payload_bytes = Some(fanout.payload_bytes as u64);
    params.warmup_s = Some(fanout.warmup.as_secs_f64());
    params.duration_s = Some(fanout.duration.as_secs_f64());
}

/// The `chat-loadgen` command line that would run the same load (for a
/// run's README), without --json.
///
/// Every parameter of the load is spelled out, defaults included, so the
/// line means the same after a default changes. Not on it: `--commit` (a
/// rerun records its own), `--workers` (a [`RunOptions`] matter; the
/// default applies), `--no-progress`.
pub fn command_line(load: &Load, target: &Target, tags: &Tags) -> String {
    command_args(load, target, tags)
        .iter()
        .map(|arg| shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`command_line`] as its arguments, the program's name first, unquoted.
pub fn command_args(load: &Load, target: &Target, tags: &Tags) -> Vec<String> {
    let mut args = vec!["chat-loadgen".to_owned(), load.scenario().to_owned()];
    let mut flag = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    for url in &target.urls {
        flag("url", url.clone());
    }
    for pid in &target.server_pids {
        flag("server-pid", pid.to_string());
    }
    for (label, pid) in &target.sample_pids {
        flag("sample-pid", format!("{label}={pid}"));
    }
    flag("label", target.label.clone());
    let (connect_timeout, concurrency) = match load {
        Load::Fanout(fanout) => {
            flag("clients", fanout.clients.to_string());
            flag("rooms", fanout.rooms.to_string());
            flag("senders", fanout.senders_per_room.to_string());
            traffic_args(fanout, &mut flag);
            if let Some(busy) = &fanout.busy {
                flag("busy-senders", busy.senders.to_string());
                flag("busy-rate", busy.rate_per_s.to_string());
                flag("busy-clients", busy.clients.to_string());
            }
            (fanout.connect_timeout, fanout.connect_concurrency)
        }
        Load::Capacity(capacity) => {
            flag("senders", capacity.fanout.senders_per_room.to_string());
            flag("start", capacity.start.to_string());
            flag("step", capacity.step.to_string());
            flag("max", capacity.max.to_string());
            flag("slo-ms", (capacity.slo.as_secs_f64() * 1000.0).to_string());
            traffic_args(&capacity.fanout, &mut flag);
            (
                capacity.fanout.connect_timeout,
                capacity.fanout.connect_concurrency,
            )
        }
        Load::Connections(connections) => {
            flag("count", connections.count.to_string());
            flag("hold", seconds(connections.hold));
            flag("source-addrs", connections.source_addrs.to_string());
            flag("max-failures", connections.max_failures.to_string());
            (connections.connect_timeout, connections.concurrency)
        }
    };
    flag("connect-timeout", seconds(connect_timeout));
    flag("concurrency", concurrency.to_string());
    let tagged = [
        ("variant", &tags.variant),
        ("variant-note", &tags.variant_note),
        ("server-cpus", &tags.server_cpus),
        ("loadgen-cpus", &tags.loadgen_cpus),
    ];
    for (name, value) in tagged {
        if let Some(value) = value {
            flag(name, value.clone());
        }
    }
    // Joined to its flag: the server's flags start with a dash.
    if let Some(server_flags) = &tags.server_flags {
        args.push(format!("--server-flags={server_flags}"));
    }
    args
}

/// The senders' flags, shared by fan-out and capacity.
fn traffic_args(fanout: &FanoutParams, flag: &mut impl FnMut(&str, String)) {
    flag("rate", fanout.rate_per_s.to_string());
    flag("payload", fanout.payload_bytes.to_string());
    flag("warmup", seconds(fanout.warmup));
    flag("duration", seconds(fanout.duration));
    flag("drain", seconds(fanout.drain));
    flag("drain-max", seconds(fanout.drain_max));
}

/// A duration as the command line's seconds (`2`, `0.5`).
fn seconds(duration: Duration) -> String {
    duration.as_secs_f64().to_string()
}

/// `arg` as one shell word: as it is when it holds nothing a shell reads
/// specially, else single-quoted.
pub fn shell_quote(arg: &str) -> Cow<'_, str> {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

/// The write floor, measured on the calling thread (no runtime of the
/// scenarios'), as a record labelled `label`.
pub fn floor(params: &FloorParams, label: &str, commit: &str) -> anyhow::Result<Record> {
    let started_at = now_rfc3339();
    let outcome = floor::run(params)?;
    Ok(Record {
        scenario: "floor".to_owned(),
        server: label.to_owned(),
        commit: commit.to_owned(),
        started_at,
        url: format!("tcp://{}", outcome.addr),
        params: Params {
            connections: Some(params.connections as u64),
            batch_sizes: Some(params.batch_sizes.iter().map(|&b| b as u64).collect()),
            per_batch_s: Some(params.per_batch.as_secs_f64()),
            reader_threads: Some(params.reader_threads as u64),
            payload_bytes: Some(params.payload_bytes as u64),
            ..Params::default()
        },
        results: Results::Floor(outcome.results),
        server_process: None,
        loadgen_process: outcome.loadgen,
        warnings: outcome.warnings,
        deployment: Deployment::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fanout() -> FanoutParams {
        FanoutParams {
            clients: 10,
            rooms: 2,
            senders_per_room: 1,
            rate_per_s: 50.0,
            payload_bytes: 64,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            drain: Duration::from_secs(5),
            drain_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            connect_concurrency: 256,
            busy: None,
        }
    }

    #[test]
    fn the_record_states_the_load_in_its_units_and_the_tags_as_given() {
        let capacity = Load::Capacity(CapacityParams {
            start: 100,
            step: 50,
            max: 1000,
            slo: Duration::from_millis(250),
            fanout: FanoutParams {
                senders_per_room: 4,
                ..fanout()
            },
        });
        let tags = Tags {
            server_cpus: Some("0-3".into()),
            loadgen_cpus: Some("4-7".into()),
            ..Tags::default()
        };
        let params = recorded_params(&capacity, &tags);
        assert_eq!(params.slo_ms, Some(250.0));
        assert_eq!((params.rooms, params.senders_per_room), (Some(1), Some(4)));
        assert_eq!((params.warmup_s, params.duration_s), (Some(0.5), Some(3.0)));
        assert_eq!(params.clients, None, "set per step");
        assert_eq!(params.server_cpus.as_deref(), Some("0-3"));
        assert_eq!(params.loadgen_cpus.as_deref(), Some("4-7"));
    }

    #[test]
    fn the_command_line_spells_out_the_load_and_quotes_what_needs_it() {
        let target = Target {
            label: "uws".into(),
            urls: vec!["ws://127.0.0.1:9001".into()],
            server_pids: vec![42],
            commit: "abc".into(),
            ..Target::default()
        };
        let tags = Tags {
            variant_note: Some("it's a note".into()),
            server_flags: Some("--history h.sqlite".into()),
            ..Tags::default()
        };
        let line = command_line(&Load::Fanout(fanout()), &target, &tags);
        assert!(
            line.starts_with(
                "chat-loadgen fanout --url ws://127.0.0.1:9001 --server-pid 42 --label uws --clients 10 --rooms 2 --senders 1 --rate 50 --payload 64 --warmup 0.5 --duration 3 --drain 5 --drain-max 60 --connect-timeout 10 --concurrency 256"
            ),
            "{line}"
        );
        assert!(line.contains(r"--variant-note 'it'\''s a note'"), "{line}");
        assert!(
            line.ends_with("'--server-flags=--history h.sqlite'"),
            "{line}"
        );
        assert!(
            !line.contains("--commit") && !line.contains("--json"),
            "{line}"
        );
    }
}
