//! `chat-loadgen`: drives any server that speaks the chat protocol, given its
//! URL, and measures it. See the library's docs for the scenarios.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat_loadgen::capacity::{self, CapacityParams};
use chat_loadgen::client::resolve_all;
use chat_loadgen::connections::{self, ConnectionsParams};
use chat_loadgen::fanout::{self, BusyRoom, FanoutParams};
use chat_loadgen::floor::{self, FloorParams};
use chat_loadgen::machine::{self, MachineArgs};
use chat_loadgen::progress::Progress;
use chat_loadgen::sampler::Watch;
use chat_loadgen::soak::{self, args::SoakArgs};
use chat_loadgen::verdict::{self, VerdictArgs};
use chat_loadgen::{append_json, current_commit, loadgen_warnings, now_rfc3339, summary};
use chat_record::{Deployment, Params, Record, Results};
use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand};

/// Load generator for the chat protocol: open-loop fan-out latency,
/// capacity at an SLO, and idle connections, with the server's threads,
/// memory and CPU read from /proc.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Clients spread over rooms; open-loop senders; every delivery counted.
    Fanout {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        spread: Spread,
        #[command(flatten)]
        traffic: Traffic,
        #[command(flatten)]
        busy: Busy,
    },
    /// One room, clients stepped up until p99 fan-out latency passes the SLO.
    Capacity {
        #[command(flatten)]
        common: Common,
        /// Senders in the room, each at --rate (the same at every step).
        #[arg(long, default_value_t = 1)]
        senders: u64,
        /// Clients in the first step.
        #[arg(long, default_value_t = 100)]
        start: u64,
        /// Clients added per step.
        #[arg(long, default_value_t = 100)]
        step: u64,
        /// The largest step tried.
        #[arg(long, default_value_t = 5000)]
        max: u64,
        /// p99 fan-out latency a step must stay within, milliseconds.
        #[arg(long, default_value_t = 250.0)]
        slo_ms: f64,
        #[command(flatten)]
        traffic: Traffic,
    },
    /// Idle connections, opened as fast as the server accepts them, held,
    /// closed.
    Connections {
        #[command(flatten)]
        common: Common,
        /// Connections to open.
        #[arg(long)]
        count: u64,
        /// Seconds to hold them open.
        #[arg(long, default_value_t = 5.0)]
        hold: f64,
        /// Loopback source addresses to spread them over (127.0.0.1, .2, ...);
        /// one gives about 28,000 connections to one server port.
        #[arg(long, default_value_t = 1)]
        source_addrs: u8,
        /// Failed connections after which no new one is tried.
        #[arg(long, default_value_t = 100)]
        max_failures: u64,
    },
    /// No server: the CPU one thread spends to write() a server's frame to
    /// loopback sockets, one frame per call and several (the write floor).
    Floor(FloorArgs),
    /// A steady mixed load for a long time (rooms, churn, slow readers, bad
    /// clients), every delivery checked and the server's memory, threads,
    /// descriptors and CPU sampled; fails unless everything was delivered
    /// and answered as the protocol says.
    Soak(SoakArgs),
    /// No load: the machine a sweep runs on (cores, memory, kernel limits,
    /// pinning, commit), written as JSON (`machine.json`).
    Machine(MachineArgs),
    /// No load: whether the last run of a runs file kept up. Prints
    /// `VERDICT DELIVERED_PER_S OFFERED_PER_S`; exits 0 if it kept up, 1 if
    /// not, 2 if there is no fan-out record to judge.
    Verdict(VerdictArgs),
}

/// Options of the write floor (it drives no server, so none of [`Common`]'s
/// connection options).
#[derive(Args)]
struct FloorArgs {
    /// The run's name in the output.
    #[arg(long, default_value = "floor")]
    label: String,
    /// Append the run's record, as one JSON line, to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The commit to record [default: `git rev-parse HEAD`].
    #[arg(long)]
    commit: Option<String>,
    /// Loopback connection pairs written to, round-robin.
    #[arg(long, default_value_t = floor::DEFAULT_CONNECTIONS)]
    connections: usize,
    /// Frames concatenated into each write(), one measurement each,
    /// comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    batch: Vec<usize>,
    /// Seconds of writing measured per batch size.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Bytes of each message's text, as `fanout --payload`.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Threads draining the sockets (their CPU is not counted).
    #[arg(long, default_value_t = 1)]
    readers: usize,
}

/// Options of every scenario.
#[derive(Args)]
struct Common {
    /// The server, ws://HOST:PORT; clients connect to /ws/chat/<room>/.
    /// Repeat it for several server processes sharing rooms (through Redis,
    /// say): member k of room r connects to URL (r + k) mod the number of
    /// URLs, so every room has members behind every URL, senders too.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The server's process id, to sample its threads, memory and CPU. With
    /// several --url, give one per URL, in the same order (or none).
    #[arg(long = "server-pid", value_name = "PID")]
    server_pids: Vec<u32>,
    /// Another process to sample the same way, recorded under LABEL: the
    /// Redis server the servers share, say (redis=PID). Repeatable.
    #[arg(long = "sample-pid", value_name = "LABEL=PID", value_parser = label_pid)]
    sample_pids: Vec<(String, u32)>,
    /// The server's name in the output.
    #[arg(long, default_value = "server")]
    label: String,
    /// Append the run's record, as one JSON line, to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The commit to record [default: `git rev-parse HEAD`].
    #[arg(long)]
    commit: Option<String>,
    /// Seconds to wait for one connection.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Worker threads of the load generator [default: the number of cores].
    #[arg(long)]
    workers: Option<usize>,
    /// No progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Record the run as a variant named NAME: an experiment on a modified
    /// server (binaries built from an older commit, a non-default flag).
    /// The report keeps variant runs out of its main figures and sets each
    /// beside the normal run with the same parameters.
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    variant: Option<String>,
    /// What the variant is, in words, e.g. "built from commit fe44d3d,
    /// before the performance work".
    #[arg(long, value_name = "TEXT", requires = "variant")]
    variant_note: Option<String>,
    /// The server's flags beyond the usual ones, recorded as given (e.g.
    /// "--history h.sqlite --db-bridge inline"), so that the record says
    /// what it measured; write it as --server-flags="..." when it starts
    /// with a dash.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    server_flags: Option<String>,
}

/// How clients are spread.
#[derive(Args)]
struct Spread {
    /// Clients in all.
    #[arg(long)]
    clients: u64,
    /// Rooms; clients are spread evenly.
    #[arg(long, default_value_t = 1)]
    rooms: u64,
    /// Senders per room.
    #[arg(long, default_value_t = 1)]
    senders: u64,
}

/// One more room, measured apart: a busy room beside the --rooms, whose
/// load shows in their latency (the stall experiment), not in their counts.
#[derive(Args)]
struct Busy {
    /// Senders in the busy room; without it there is no busy room.
    #[arg(long, value_name = "N")]
    busy_senders: Option<u64>,
    /// Messages per second, per busy sender.
    #[arg(
        long,
        value_name = "R",
        default_value_t = 100.0,
        requires = "busy_senders"
    )]
    busy_rate: f64,
    /// Clients in the busy room, its senders included [default:
    /// --busy-senders].
    #[arg(long, value_name = "M", requires = "busy_senders")]
    busy_clients: Option<u64>,
}

impl Busy {
    fn room(&self) -> Option<BusyRoom> {
        let senders = self.busy_senders?;
        Some(BusyRoom {
            clients: self.busy_clients.unwrap_or(senders),
            senders,
            rate_per_s: self.busy_rate,
        })
    }
}

/// What the senders do.
#[derive(Args)]
struct Traffic {
    /// Messages per second, per sender.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Bytes of each message's text.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Once senders stop, seconds without any delivery after which the rest
    /// counts as lost.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Once senders stop, the longest wait, in seconds, for the last
    /// deliveries while they still arrive; the rest counts as late.
    #[arg(long, default_value_t = 60.0)]
    drain_max: f64,
}

/// `LABEL=PID`, as `--sample-pid` takes it.
fn label_pid(value: &str) -> Result<(String, u32), String> {
    let (label, pid) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not LABEL=PID"))?;
    if label.is_empty() {
        return Err(format!("no label in {value:?}: LABEL=PID"));
    }
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    Ok((label.to_owned(), pid))
}

impl Common {
    /// The processes to sample besides the load generator.
    fn watch(&self) -> Watch {
        Watch {
            servers: self.server_pids.clone(),
            others: self.sample_pids.clone(),
        }
    }
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("--{flag} must be a non-negative number of seconds"))
}

impl Traffic {
    fn params(
        &self,
        common: &Common,
        clients: u64,
        rooms: u64,
        senders: u64,
    ) -> anyhow::Result<FanoutParams> {
        Ok(FanoutParams {
            clients,
            rooms,
            senders_per_room: senders,
            rate_per_s: self.rate,
            payload_bytes: self.payload,
            warmup: secs(self.warmup, "warmup")?,
            duration: secs(self.duration, "duration")?,
            drain: secs(self.drain, "drain")?,
            drain_max: secs(self.drain_max, "drain-max")?,
            connect_timeout: secs(common.connect_timeout, "connect-timeout")?,
            connect_concurrency: common.concurrency,
            busy: None,
        })
    }

    fn record_params(&self, params: &mut Params) {
        params.rate_per_s = Some(self.rate);
        params.payload_bytes = Some(self.payload as u64);
        params.warmup_s = Some(self.warmup);
        params.duration_s = Some(self.duration);
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            // clap's message, without its usage lines, on one line.
            let rendered = error.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect();
            eprintln!(
                "chat-loadgen: {}",
                message.join(" ").trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    if let Scenario::Verdict(args) = &cli.scenario {
        // Its own exit statuses: a script reads them.
        return verdict::main(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let common = match &cli.scenario {
        Scenario::Fanout { common, .. }
        | Scenario::Capacity { common, .. }
        | Scenario::Connections { common, .. } => common,
        Scenario::Floor(args) => return run_floor(args),
        Scenario::Soak(args) => return soak::args::main(args, command_line()),
        Scenario::Machine(args) => return machine::main(args),
        Scenario::Verdict(_) => anyhow::bail!("the verdict is given by `verdict::main`"),
    };
    let workers = common
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-files limit raised"),
        Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_scenario(&cli.scenario, common, workers))
}

async fn run_scenario(scenario: &Scenario, common: &Common, workers: usize) -> anyhow::Result<()> {
    let watch = common.watch();
    watch.check(common.urls.len())?;
    let targets = resolve_all(
        &common.urls,
        secs(common.connect_timeout, "connect-timeout")?,
    )
    .await?;
    let progress = if common.no_progress {
        Progress::hidden()
    } else {
        Progress::new(true)
    };
    let started_at = now_rfc3339();
    let params = recorded_params(scenario, common);
    let (name, results, server, loadgen, deployment, mut warnings, lag) = match scenario {
        Scenario::Fanout {
            spread,
            traffic,
            busy,
            ..
        } => {
            let fanout_params = FanoutParams {
                busy: busy.room(),
                ..traffic.params(common, spread.clients, spread.rooms, spread.senders)?
            };
            let outcome = fanout::run(&targets, &fanout_params, &watch, &progress).await?;
            let lag = outcome.results.send_lag_us.clone();
            (
                "fanout",
                Results::Fanout(outcome.results),
                outcome.server,
                outcome.loadgen,
                outcome.deployment,
                outcome.warnings,
                Some(lag),
            )
        }
        Scenario::Capacity {
            senders,
            start,
            step,
            max,
            slo_ms,
            traffic,
            ..
        } => {
            let capacity_params = CapacityParams {
                start: *start,
                step: *step,
                max: *max,
                slo: secs(slo_ms / 1000.0, "slo-ms")?,
                fanout: traffic.params(common, *start, 1, *senders)?,
            };
            let outcome = capacity::run(&targets, &capacity_params, &watch, &progress).await?;
            let lag = outcome
                .results
                .steps
                .last()
                .map(|s| s.fanout.send_lag_us.clone());
            (
                "capacity",
                Results::Capacity(outcome.results),
                outcome.server,
                outcome.loadgen,
                outcome.deployment,
                outcome.warnings,
                lag,
            )
        }
        Scenario::Connections {
            count,
            hold,
            source_addrs,
            max_failures,
            ..
        } => {
            let connections_params = ConnectionsParams {
                count: *count,
                hold: secs(*hold, "hold")?,
                source_addrs: *source_addrs,
                connect_timeout: secs(common.connect_timeout, "connect-timeout")?,
                concurrency: common.concurrency,
                max_failures: *max_failures,
            };
            let outcome =
                connections::run(&targets, &connections_params, &watch, &progress).await?;
            (
                "connections",
                Results::Connections(outcome.results),
                outcome.server,
                outcome.loadgen,
                outcome.deployment,
                Vec::new(),
                None,
            )
        }
        // Dispatched before any server is resolved, in `run`.
        Scenario::Floor(_) => anyhow::bail!("the write floor drives no server"),
        Scenario::Soak(_) => anyhow::bail!("the soak is run by `soak::args::main`"),
        Scenario::Machine(_) | Scenario::Verdict(_) => {
            anyhow::bail!("`machine` and `verdict` drive no server")
        }
    };
    // Against several server processes, the busiest is the one the load
    // generator's CPU is weighed against.
    let busiest = deployment
        .server_processes
        .iter()
        .map(|p| &p.process)
        .max_by(|a, b| a.cpu_utilization.total_cmp(&b.cpu_utilization))
        .or(server.as_ref());
    warnings.extend(loadgen_warnings(&loadgen, busiest, lag.as_ref(), workers));
    if let Results::Fanout(results) = &results {
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
    if let Results::Connections(results) = &results
        && results.opened < results.target
    {
        warnings.push(format!(
            "opened only {} of {} connections: {}",
            results.opened,
            results.target,
            results.first_failure.as_deref().unwrap_or("no error seen")
        ));
    }
    let record = Record {
        scenario: name.to_owned(),
        server: common.label.clone(),
        commit: common.commit.clone().unwrap_or_else(current_commit),
        started_at,
        url: common.urls[0].clone(),
        params,
        results,
        server_process: server,
        loadgen_process: loadgen,
        warnings,
        deployment,
    };
    print!("{}", summary::render(&record));
    for warning in record.warnings.iter().filter(|w| w.starts_with("LOSS")) {
        eprintln!("chat-loadgen: {warning}");
    }
    if let Some(path) = &common.json {
        append_json(path, &record)?;
    }
    Ok(())
}

/// The parameters a server scenario records, as given on its command line.
fn recorded_params(scenario: &Scenario, common: &Common) -> Params {
    let mut params = Params {
        variant: common.variant.clone(),
        variant_note: common.variant_note.clone(),
        server_flags: common.server_flags.clone(),
        ..Params::default()
    };
    match scenario {
        Scenario::Fanout {
            spread,
            traffic,
            busy,
            ..
        } => {
            params.clients = Some(spread.clients);
            params.rooms = Some(spread.rooms);
            params.senders_per_room = Some(spread.senders);
            traffic.record_params(&mut params);
            if let Some(room) = busy.room() {
                params.busy_clients = Some(room.clients);
                params.busy_senders = Some(room.senders);
                params.busy_rate_per_s = Some(room.rate_per_s);
            }
        }
        Scenario::Capacity {
            senders,
            start,
            step,
            max,
            slo_ms,
            traffic,
            ..
        } => {
            params.start = Some(*start);
            params.step = Some(*step);
            params.max = Some(*max);
            params.slo_ms = Some(*slo_ms);
            params.rooms = Some(1);
            params.senders_per_room = Some(*senders);
            traffic.record_params(&mut params);
        }
        Scenario::Connections {
            count,
            hold,
            source_addrs,
            ..
        } => {
            params.clients = Some(*count);
            params.hold_s = Some(*hold);
            params.source_addrs = Some(u64::from(*source_addrs));
        }
        // Recorded by `run_floor`, and the soak by its own record; the
        // machine and the verdict record no run.
        Scenario::Floor(_) | Scenario::Soak(_) | Scenario::Machine(_) | Scenario::Verdict(_) => {}
    }
    params
}

/// The write floor: measured on this thread, no runtime of the scenarios'.
fn run_floor(args: &FloorArgs) -> anyhow::Result<()> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-files limit raised"),
        Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
    }
    let floor_params = FloorParams {
        connections: args.connections,
        batch_sizes: args.batch.clone(),
        per_batch: secs(args.seconds, "seconds")?,
        payload_bytes: args.payload,
        reader_threads: args.readers,
    };
    let started_at = now_rfc3339();
    let outcome = floor::run(&floor_params)?;
    let record = Record {
        scenario: "floor".to_owned(),
        server: args.label.clone(),
        commit: args.commit.clone().unwrap_or_else(current_commit),
        started_at,
        url: format!("tcp://{}", outcome.addr),
        params: Params {
            connections: Some(args.connections as u64),
            batch_sizes: Some(args.batch.iter().map(|&b| b as u64).collect()),
            per_batch_s: Some(args.seconds),
            reader_threads: Some(args.readers as u64),
            payload_bytes: Some(args.payload as u64),
            ..Params::default()
        },
        results: Results::Floor(outcome.results),
        server_process: None,
        loadgen_process: outcome.loadgen,
        warnings: outcome.warnings,
        deployment: Deployment::default(),
    };
    print!("{}", summary::render(&record));
    if let Some(path) = &args.json {
        append_json(path, &record)?;
    }
    Ok(())
}

/// This process's command line, each argument shell-quoted when it needs
/// to be, as a record states it.
fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
            if plain {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn loss_warning(lost: u64, expected: u64) -> String {
    format!(
        "LOSS: {lost} of {expected} expected deliveries never arrived ({:.3}%)",
        lost as f64 * 100.0 / expected.max(1) as f64
    )
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-loadgen").chain(args.iter().copied()))
    }

    fn params(args: &[&str]) -> Params {
        let cli = parse(args).expect("the arguments parse");
        let (Scenario::Fanout { common, .. }
        | Scenario::Capacity { common, .. }
        | Scenario::Connections { common, .. }) = &cli.scenario
        else {
            panic!("not a server scenario: {args:?}");
        };
        recorded_params(&cli.scenario, common)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn capacity_records_its_senders() {
        let url = ["--url", "ws://127.0.0.1:1"];
        let one = params(&[&["capacity"][..], &url].concat());
        assert_eq!(one.senders_per_room, Some(1));
        assert_eq!(one.rooms, Some(1));
        let four = params(&[&["capacity", "--senders", "4", "--rate", "2"][..], &url].concat());
        assert_eq!(four.senders_per_room, Some(4));
        assert_eq!(four.rate_per_s, Some(2.0));
    }

    #[test]
    fn every_server_scenario_records_its_variant() {
        let url = ["--url", "ws://127.0.0.1:1"];
        let variant = [
            "--variant",
            "baseline",
            "--variant-note",
            "built from commit fe44d3d",
        ];
        for scenario in [
            &["fanout", "--clients", "10"][..],
            &["capacity", "--senders", "2"],
            &["connections", "--count", "10"],
        ] {
            let normal = params(&[scenario, &url].concat());
            assert_eq!((normal.variant, normal.variant_note), (None, None));
            let p = params(&[scenario, &url, &variant].concat());
            assert_eq!(p.variant.as_deref(), Some("baseline"), "{scenario:?}");
            assert_eq!(
                p.variant_note.as_deref(),
                Some("built from commit fe44d3d"),
                "{scenario:?}"
            );
            let unnamed = params(&[scenario, &url, &variant[..2]].concat());
            assert_eq!(unnamed.variant.as_deref(), Some("baseline"));
            assert_eq!(unnamed.variant_note, None);
        }
    }

    #[test]
    fn a_busy_room_and_the_server_flags_are_recorded() {
        let base = ["fanout", "--url", "ws://127.0.0.1:1", "--clients", "10"];
        let normal = params(&base);
        assert_eq!(
            (
                normal.busy_senders,
                normal.busy_clients,
                normal.server_flags
            ),
            (None, None, None)
        );
        let busy = params(
            &[
                &base[..],
                &[
                    "--busy-senders",
                    "4",
                    "--busy-rate",
                    "50",
                    "--server-flags=--history h.sqlite --db-bridge inline",
                ],
            ]
            .concat(),
        );
        assert_eq!(busy.busy_senders, Some(4));
        assert_eq!(busy.busy_clients, Some(4), "every busy client sends");
        assert_eq!(busy.busy_rate_per_s, Some(50.0));
        assert_eq!(
            busy.server_flags.as_deref(),
            Some("--history h.sqlite --db-bridge inline")
        );
        let larger = params(&[&base[..], &["--busy-senders", "4", "--busy-clients", "9"]].concat());
        assert_eq!(
            (larger.busy_senders, larger.busy_clients),
            (Some(4), Some(9))
        );
        assert_eq!(larger.busy_rate_per_s, Some(100.0));
        assert!(
            parse(&[&base[..], &["--busy-rate", "5"]].concat()).is_err(),
            "a busy rate needs busy senders"
        );
    }

    fn common(args: &[&str]) -> (Vec<String>, Watch) {
        let cli = parse(args).expect("the arguments parse");
        let (Scenario::Fanout { common, .. }
        | Scenario::Capacity { common, .. }
        | Scenario::Connections { common, .. }) = &cli.scenario
        else {
            panic!("not a server scenario: {args:?}");
        };
        (common.urls.clone(), common.watch())
    }

    #[test]
    fn urls_and_pids_repeat() {
        let (urls, watch) = common(&["fanout", "--clients", "10", "--url", "ws://a:1"]);
        assert_eq!(urls, ["ws://a:1"]);
        assert_eq!(watch, Watch::default());
        for scenario in [
            &["fanout", "--clients", "10"][..],
            &["capacity"],
            &["connections", "--count", "10"],
        ] {
            let several = [
                "--url",
                "ws://a:1",
                "--server-pid",
                "11",
                "--url",
                "ws://b:2",
                "--server-pid",
                "12",
                "--sample-pid",
                "redis=13",
                "--sample-pid",
                "daphne=14",
            ];
            let (urls, watch) = common(&[scenario, &several].concat());
            assert_eq!(urls, ["ws://a:1", "ws://b:2"], "{scenario:?}");
            assert_eq!(watch.servers, [11, 12]);
            assert_eq!(
                watch.others,
                [("redis".to_owned(), 13), ("daphne".to_owned(), 14)]
            );
            assert!(watch.check(urls.len()).is_ok());
        }
        let base = ["fanout", "--clients", "10"];
        assert!(parse(&base).is_err(), "a URL is required");
        for bad in ["redis", "=13", "redis=x", "redis=-1"] {
            assert!(
                parse(&[&base[..], &["--url", "ws://a:1", "--sample-pid", bad]].concat()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_variant_note_needs_a_named_variant() {
        let base = ["fanout", "--url", "ws://127.0.0.1:1", "--clients", "10"];
        assert!(parse(&[&base[..], &["--variant-note", "a note"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--variant", ""]].concat()).is_err());
        assert!(
            parse(&["floor", "--variant", "x"]).is_err(),
            "the floor has no server"
        );
    }
}
