//! `chat-loadgen`: drives any server that speaks the chat protocol, given its
//! URL, and measures it. See the library's docs for the scenarios.
//!
//! A thin command line: flags become the library's structs
//! (`chat_loadgen::scenario`), whose record is printed and appended here, so
//! a sweep driver calling the library makes the same records.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chat_loadgen::admission;
use chat_loadgen::capacity::CapacityParams;
use chat_loadgen::connections::ConnectionsParams;
use chat_loadgen::cpus::parse_cpu_list;
use chat_loadgen::defaults;
use chat_loadgen::fanout::{BusyRoom, FanoutParams};
use chat_loadgen::floor::{self, FloorParams};
use chat_loadgen::machine::{self, MachineArgs};
use chat_loadgen::scenario::{self, Load, RunOptions, Tags, Target};
use chat_loadgen::soak::{self, args::SoakArgs};
use chat_loadgen::verdict::{self, VerdictArgs};
use chat_loadgen::{append_json, current_commit, summary};
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
        #[arg(long, default_value_t = defaults::CAPACITY_START)]
        start: u64,
        /// Clients added per step.
        #[arg(long, default_value_t = defaults::CAPACITY_STEP)]
        step: u64,
        /// The largest step tried.
        #[arg(long, default_value_t = defaults::CAPACITY_MAX)]
        max: u64,
        /// p99 fan-out latency a step must stay within, milliseconds.
        #[arg(long, default_value_t = defaults::SLO_MS)]
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
        #[arg(long, default_value_t = defaults::HOLD_S)]
        hold: f64,
        /// Loopback source addresses to spread them over (127.0.0.1, .2, ...);
        /// one gives about 28,000 connections to one server port.
        #[arg(long, default_value_t = 1)]
        source_addrs: u8,
        /// Failed connections after which no new one is tried.
        #[arg(long, default_value_t = defaults::MAX_FAILURES)]
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
    /// No load: whether the server at --url may be measured. Checks that
    /// each message reaches every member of its room, the sender included;
    /// that nothing crosses rooms; and that two senders' messages reach
    /// every member in one order. Prints `admitted` and exits 0, or prints
    /// `not admitted: REASON` and exits 1.
    Admit(AdmitArgs),
}

/// Options of the admission check.
#[derive(Args)]
struct AdmitArgs {
    /// The server, ws://HOST:PORT.
    #[arg(long)]
    url: String,
    /// Seconds any one wait of the check (a connection, a message) may take.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = positive_seconds)]
    timeout_secs: Duration,
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
    #[arg(long, default_value_t = defaults::CONNECT_TIMEOUT_S)]
    connect_timeout: f64,
    /// Connections opened at once.
    #[arg(long, default_value_t = defaults::CONCURRENCY)]
    concurrency: usize,
    /// Worker threads of the load generator [default: the number of cores,
    /// or of --loadgen-cpus when given].
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
    /// The cores the server is pinned to, as a `taskset -c` list (0-3,8):
    /// recorded only, pinning the server is the caller's.
    #[arg(long, value_name = "LIST", value_parser = cpu_list)]
    server_cpus: Option<String>,
    /// Pin the load generator's threads to these cores, a `taskset -c` list
    /// (4-7), and record it.
    #[arg(long, value_name = "LIST", value_parser = cpu_list)]
    loadgen_cpus: Option<String>,
}

/// How clients are spread.
#[derive(Args)]
struct Spread {
    /// Clients in all.
    #[arg(long)]
    clients: u64,
    /// Rooms; clients are spread evenly.
    #[arg(long, default_value_t = defaults::ROOMS)]
    rooms: u64,
    /// Senders per room.
    #[arg(long, default_value_t = defaults::SENDERS)]
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
        default_value_t = defaults::BUSY_RATE_PER_S,
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
    #[arg(long, default_value_t = defaults::RATE_PER_S)]
    rate: f64,
    /// Bytes of each message's text.
    #[arg(long, default_value_t = defaults::PAYLOAD_BYTES)]
    payload: usize,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = defaults::WARMUP_S)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = defaults::DURATION_S)]
    duration: f64,
    /// Once senders stop, seconds without any delivery after which the rest
    /// counts as lost.
    #[arg(long, default_value_t = defaults::DRAIN_S)]
    drain: f64,
    /// Once senders stop, the longest wait, in seconds, for the last
    /// deliveries while they still arrive; the rest counts as late.
    #[arg(long, default_value_t = defaults::DRAIN_MAX_S)]
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

/// A `taskset -c` list, checked and kept as given.
fn cpu_list(value: &str) -> Result<String, String> {
    parse_cpu_list(value)
        .map(|_| value.to_owned())
        .map_err(|error| error.to_string())
}

/// A positive number of seconds.
fn positive_seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| format!("{value:?} is not a positive number of seconds"))
}

impl Common {
    /// The server driven, as the library takes it.
    fn target(&self) -> Target {
        Target {
            label: self.label.clone(),
            urls: self.urls.clone(),
            server_pids: self.server_pids.clone(),
            sample_pids: self.sample_pids.clone(),
            commit: self.commit.clone().unwrap_or_else(current_commit),
        }
    }

    /// What the record says beside the load.
    fn tags(&self) -> Tags {
        Tags {
            variant: self.variant.clone(),
            variant_note: self.variant_note.clone(),
            server_flags: self.server_flags.clone(),
            server_cpus: self.server_cpus.clone(),
            loadgen_cpus: self.loadgen_cpus.clone(),
        }
    }

    /// How the load generator runs: pinned to --loadgen-cpus, with a worker
    /// per core there unless --workers says otherwise.
    fn options(&self) -> anyhow::Result<RunOptions> {
        let cpus = self
            .loadgen_cpus
            .as_deref()
            .map(parse_cpu_list)
            .transpose()
            .context("--loadgen-cpus")?;
        let workers = self
            .workers
            .or(cpus.as_ref().map(Vec::len))
            .unwrap_or_else(|| RunOptions::default().workers);
        Ok(RunOptions {
            workers,
            cpus,
            progress: !self.no_progress,
        })
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
    if let Scenario::Admit(args) = &cli.scenario {
        // Its own exit statuses too.
        return admit(args);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A server scenario: its flags become the library's load, target, tags
/// and options; [`scenario::run`] makes the record; it is printed and
/// appended here.
fn run(cli: Cli) -> anyhow::Result<()> {
    let common = match &cli.scenario {
        Scenario::Fanout { common, .. }
        | Scenario::Capacity { common, .. }
        | Scenario::Connections { common, .. } => common,
        Scenario::Floor(args) => return run_floor(args),
        Scenario::Soak(args) => return soak::args::main(args, command_line()),
        Scenario::Machine(args) => return machine::main(args),
        Scenario::Verdict(_) | Scenario::Admit(_) => {
            anyhow::bail!("`verdict` and `admit` give their own exit statuses, in `main`")
        }
    };
    let load = load(&cli.scenario)?;
    let options = common.options()?;
    log_open_files_limit();
    let record = scenario::run(&load, &common.target(), &common.tags(), &options)?;
    print!("{}", summary::render(&record));
    for warning in record.warnings.iter().filter(|w| w.starts_with("LOSS")) {
        eprintln!("chat-loadgen: {warning}");
    }
    if let Some(path) = &common.json {
        append_json(path, &record)?;
    }
    Ok(())
}

/// The load a server scenario's command line asks for.
fn load(scenario: &Scenario) -> anyhow::Result<Load> {
    Ok(match scenario {
        Scenario::Fanout {
            common,
            spread,
            traffic,
            busy,
        } => Load::Fanout(FanoutParams {
            busy: busy.room(),
            ..traffic.params(common, spread.clients, spread.rooms, spread.senders)?
        }),
        Scenario::Capacity {
            common,
            senders,
            start,
            step,
            max,
            slo_ms,
            traffic,
        } => Load::Capacity(CapacityParams {
            start: *start,
            step: *step,
            max: *max,
            slo: secs(slo_ms / 1000.0, "slo-ms")?,
            fanout: traffic.params(common, *start, 1, *senders)?,
        }),
        Scenario::Connections {
            common,
            count,
            hold,
            source_addrs,
            max_failures,
        } => Load::Connections(ConnectionsParams {
            count: *count,
            hold: secs(*hold, "hold")?,
            source_addrs: *source_addrs,
            connect_timeout: secs(common.connect_timeout, "connect-timeout")?,
            concurrency: common.concurrency,
            max_failures: *max_failures,
        }),
        Scenario::Floor(_)
        | Scenario::Soak(_)
        | Scenario::Machine(_)
        | Scenario::Verdict(_)
        | Scenario::Admit(_) => anyhow::bail!("not a scenario that drives a server with a load"),
    })
}

/// Raises the open-files limit for the run's sockets, saying how far.
fn log_open_files_limit() {
    match scenario::raise_open_files_limit() {
        Ok(limit) => tracing::info!(limit, "open-files limit raised"),
        Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
    }
}

/// The write floor: measured on this thread, no runtime of the scenarios'.
fn run_floor(args: &FloorArgs) -> anyhow::Result<()> {
    log_open_files_limit();
    let floor_params = FloorParams {
        connections: args.connections,
        batch_sizes: args.batch.clone(),
        per_batch: secs(args.seconds, "seconds")?,
        payload_bytes: args.payload,
        reader_threads: args.readers,
    };
    let commit = args.commit.clone().unwrap_or_else(current_commit);
    let record = scenario::floor(&floor_params, &args.label, &commit)?;
    print!("{}", summary::render(&record));
    if let Some(path) = &args.json {
        append_json(path, &record)?;
    }
    Ok(())
}

/// `admit`: prints `admitted` (exit 0) or `not admitted: REASON` (exit 1).
fn admit(args: &AdmitArgs) -> ExitCode {
    match admission::check_blocking(&args.url, args.timeout_secs) {
        Ok(()) => {
            println!("admitted");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("not admitted: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// This process's command line, each argument shell-quoted when it needs
/// to be, as a record states it.
fn command_line() -> String {
    std::env::args()
        .map(|arg| scenario::shell_quote(&arg).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use chat_record::Params;
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("chat-loadgen").chain(args.iter().copied()))
    }

    /// A server scenario's load, target, tags and options, as `run` makes
    /// them (`--commit` given, or the target asks git).
    fn server_run(args: &[&str]) -> (Load, Target, Tags, RunOptions) {
        let cli = parse(args).expect("the arguments parse");
        let (Scenario::Fanout { common, .. }
        | Scenario::Capacity { common, .. }
        | Scenario::Connections { common, .. }) = &cli.scenario
        else {
            panic!("not a server scenario: {args:?}");
        };
        let load = load(&cli.scenario).expect("a load");
        let options = common.options().expect("run options");
        (load, common.target(), common.tags(), options)
    }

    fn params(args: &[&str]) -> Params {
        let (load, _, tags, _) = server_run(&[args, &["--commit", "c"]].concat());
        scenario::recorded_params(&load, &tags)
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

    fn target(args: &[&str]) -> Target {
        server_run(&[args, &["--commit", "c"]].concat()).1
    }

    #[test]
    fn urls_and_pids_repeat() {
        let one = target(&["fanout", "--clients", "10", "--url", "ws://a:1"]);
        assert_eq!(one.urls, ["ws://a:1"]);
        assert_eq!((one.server_pids.len(), one.sample_pids.len()), (0, 0));
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
            let target = target(&[scenario, &several].concat());
            assert_eq!(target.urls, ["ws://a:1", "ws://b:2"], "{scenario:?}");
            assert_eq!(target.server_pids, [11, 12]);
            assert_eq!(
                target.sample_pids,
                [("redis".to_owned(), 13), ("daphne".to_owned(), 14)]
            );
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

    #[test]
    fn the_cores_are_recorded_and_pin_the_load_generator() {
        let base = ["fanout", "--url", "ws://127.0.0.1:1", "--clients", "10"];
        let (_, _, tags, options) = server_run(&[&base[..], &["--commit", "c"]].concat());
        assert_eq!(
            (tags.server_cpus, tags.loadgen_cpus, options.cpus),
            (None, None, None)
        );
        for scenario in [
            &["fanout", "--clients", "10"][..],
            &["capacity"],
            &["connections", "--count", "10"],
        ] {
            let pinned = [
                "--url",
                "ws://127.0.0.1:1",
                "--commit",
                "c",
                "--server-cpus",
                "0-3",
                "--loadgen-cpus",
                "4-6,9",
            ];
            let (load, _, tags, options) = server_run(&[scenario, &pinned].concat());
            let params = scenario::recorded_params(&load, &tags);
            assert_eq!(params.server_cpus.as_deref(), Some("0-3"), "{scenario:?}");
            assert_eq!(params.loadgen_cpus.as_deref(), Some("4-6,9"));
            assert_eq!(options.cpus, Some(vec![4, 5, 6, 9]));
            assert_eq!(options.workers, 4, "a worker per pinned core");
        }
        let (.., options) = server_run(
            &[
                &base[..],
                &["--commit", "c", "--loadgen-cpus", "0-7", "--workers", "2"],
            ]
            .concat(),
        );
        assert_eq!(options.workers, 2, "--workers wins");
        for bad in ["", "3-1", "x", "0,,1"] {
            for flag in ["--server-cpus", "--loadgen-cpus"] {
                assert!(
                    parse(&[&base[..], &[flag, bad]].concat()).is_err(),
                    "{flag} {bad:?}"
                );
            }
        }
    }

    /// Runs the library's command line for `args` back through the parser:
    /// the same load, target and tags.
    fn round_trip(args: &[&str]) {
        let (load, target, tags, _) = server_run(args);
        let again = scenario::command_args(&load, &target, &tags);
        assert_eq!(again[0], "chat-loadgen");
        let again: Vec<&str> = again[1..]
            .iter()
            .map(String::as_str)
            .chain(["--commit", &target.commit])
            .collect();
        let (load_again, target_again, tags_again, _) = server_run(&again);
        assert_eq!(format!("{load_again:?}"), format!("{load:?}"), "{again:?}");
        assert_eq!(format!("{target_again:?}"), format!("{target:?}"));
        assert_eq!(format!("{tags_again:?}"), format!("{tags:?}"));
    }

    #[test]
    fn the_library_command_line_runs_the_same_load() {
        let url = ["--url", "ws://a:1", "--commit", "c"];
        round_trip(&[&["fanout", "--clients", "10"][..], &url].concat());
        round_trip(
            &[
                &[
                    "fanout",
                    "--clients",
                    "40",
                    "--rooms",
                    "4",
                    "--senders",
                    "2",
                    "--rate",
                    "12.5",
                    "--warmup",
                    "0.25",
                    "--busy-senders",
                    "3",
                    "--busy-rate",
                    "7.5",
                    "--url",
                    "ws://b:2",
                    "--server-pid",
                    "11",
                    "--server-pid",
                    "12",
                    "--sample-pid",
                    "redis=13",
                    "--label",
                    "two words",
                    "--variant",
                    "v",
                    "--variant-note",
                    "it's built from fe44d3d",
                    "--server-flags=--history h.sqlite",
                    "--server-cpus",
                    "0-3",
                    "--loadgen-cpus",
                    "4-7",
                ][..],
                &url,
            ]
            .concat(),
        );
        round_trip(
            &[
                &[
                    "capacity",
                    "--senders",
                    "4",
                    "--start",
                    "50",
                    "--step",
                    "25",
                    "--max",
                    "500",
                    "--slo-ms",
                    "120.5",
                    "--duration",
                    "3",
                ][..],
                &url,
            ]
            .concat(),
        );
        round_trip(
            &[
                &[
                    "connections",
                    "--count",
                    "100",
                    "--hold",
                    "1.5",
                    "--source-addrs",
                    "3",
                    "--max-failures",
                    "7",
                    "--concurrency",
                    "16",
                    "--connect-timeout",
                    "2.5",
                ][..],
                &url,
            ]
            .concat(),
        );
    }

    #[test]
    fn admit_takes_a_url_and_a_positive_timeout() {
        let Scenario::Admit(args) = parse(&["admit", "--url", "ws://a:1"])
            .expect("parses")
            .scenario
        else {
            panic!("not admit");
        };
        assert_eq!(args.timeout_secs, Duration::from_secs(10));
        let Scenario::Admit(args) = parse(&["admit", "--url", "ws://a:1", "--timeout-secs", "0.5"])
            .expect("parses")
            .scenario
        else {
            panic!("not admit");
        };
        assert_eq!(args.timeout_secs, Duration::from_millis(500));
        for bad in ["0", "-1", "x"] {
            assert!(
                parse(&["admit", "--url", "ws://a:1", "--timeout-secs", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(parse(&["admit"]).is_err(), "a URL is required");
    }
}
