//! `chat-bench`: runs the benchmark's sweep. See the library's docs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_bench::driver::{Cpus, Driver};
use chat_bench::fleet::Places;
use chat_bench::rundir::RunDir;
use chat_bench::sweep::{Mode, Sweep};
use chat_bench::{console, limits, memory, profile, setup};
use chat_loadgen::cpus::parse_cpu_list;
use clap::Parser;

/// Runs the benchmark's sweep: every server, every experiment of the sweep
/// file, then the report.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The sweep [default: scripts/sweep/full.toml, or quick.toml with
    /// --quick].
    #[arg(long)]
    sweep: Option<PathBuf>,
    /// A smoke run (scripts/sweep/quick.toml), written to
    /// results/<date>-<host>-quick/ with its own REPORT.md.
    #[arg(long)]
    quick: bool,
    /// Also the Django Channels tutorial chat (needs python3 and PyPI for
    /// its venv).
    #[arg(long)]
    django: bool,
    /// Leave out the reference servers of peers/.
    #[arg(long)]
    no_peers: bool,
    /// Also before/after pairs against our servers built at this git
    /// revision.
    #[arg(long, value_name = "REV")]
    baseline: Option<String>,
    /// The run directory [default: results/<UTC date>-<host>[-quick]].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Pin every server to these cores (a taskset list: 0-3,6).
    #[arg(long, value_name = "LIST")]
    server_cpus: Option<String>,
    /// Pin the load generator to these cores.
    #[arg(long, value_name = "LIST")]
    loadgen_cpus: Option<String>,
    /// Only the profiles (perf, heaptrack), taken again into the existing
    /// run directory --out (its profile.tsv and memory.tsv replaced, its
    /// README extended), then the report regenerated.
    #[arg(long, requires = "out")]
    profiles_only: bool,
    /// The command line to record [default: this one].
    #[arg(long, hide = true)]
    command_line: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("chat-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    let started = Instant::now();
    let command = cli.command_line.clone().unwrap_or_else(|| {
        std::env::args()
            .map(|a| chat_loadgen::scenario::shell_quote(&a).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let sweep_path = cli.sweep.clone().unwrap_or_else(|| {
        PathBuf::from(if cli.quick {
            "scripts/sweep/quick.toml"
        } else {
            "scripts/sweep/full.toml"
        })
    });
    let sweep = Sweep::load(&sweep_path)?;
    let parse = |list: &Option<String>, flag: &str| -> anyhow::Result<Option<Vec<usize>>> {
        list.as_deref()
            .map(|l| parse_cpu_list(l).with_context(|| format!("--{flag} {l}")))
            .transpose()
    };
    let cpus = Cpus {
        all: usable_cpus(),
        server: parse(&cli.server_cpus, "server-cpus")?,
        loadgen: parse(&cli.loadgen_cpus, "loadgen-cpus")?,
    };
    let bin = std::env::current_exe()
        .context("cannot find this program")?
        .parent()
        .context("this program is in no directory")?
        .to_owned();
    // Relative to the repository when it is under it: paths in the README
    // and servers.json then read the same on every machine.
    let bin = std::env::current_dir()
        .ok()
        .and_then(|cwd| bin.strip_prefix(cwd).ok().map(ToOwned::to_owned))
        .unwrap_or(bin);
    let target = bin
        .parent()
        .map_or_else(|| PathBuf::from("target"), ToOwned::to_owned);
    let default_out = cli.out.is_none();
    let out = cli.out.clone().unwrap_or_else(|| {
        let date = &chat_loadgen::now_rfc3339()[..10];
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "host".to_owned(), |h| h.trim().to_owned());
        let quick = if sweep.mode == Mode::Quick {
            "-quick"
        } else {
            ""
        };
        PathBuf::from(format!("results/{date}-{host}{quick}"))
    });
    let dir = if cli.profiles_only {
        RunDir::reopen(&out)?
    } else {
        RunDir::create(&out)?
    };
    let run_name = out
        .file_name()
        .map_or_else(|| "run".to_owned(), |n| n.to_string_lossy().into_owned());
    let logs = target.join("bench-logs").join(&run_name);
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let (notes, fd_limit) = limits::raise_process_limits();
    for note in &notes {
        console::say(note);
    }
    let baseline = match &cli.baseline {
        Some(rev) => {
            let (bin_dir, commit) = setup::build_baseline(rev, &target)?;
            Some((rev.clone(), commit, bin_dir))
        }
        None => None,
    };
    let places = Places {
        bin,
        baseline_bin: baseline.as_ref().map(|(_, _, dir)| dir.clone()),
        target,
        logs: logs.clone(),
        ready_timeout: Duration::from_secs_f64(sweep.limits.ready_timeout_s),
        stop_timeout: Duration::from_secs_f64(sweep.limits.stop_timeout_s),
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("cannot watch for signals")?;
    }
    let mut driver = Driver::new(
        sweep,
        sweep_path,
        places,
        dir,
        chat_loadgen::current_commit(),
        fd_limit,
        cpus,
        baseline.map(|(rev, commit, _)| (rev, commit)),
        cli.django,
        Arc::clone(&interrupted),
    )?;
    if cli.profiles_only {
        return profiles_only(driver, &command, !cli.no_peers);
    }
    let machine = setup::machine(&driver, &command, &notes);
    setup::write_header(&mut driver, &command, &notes);
    if cli.django {
        setup::prepare_django(&mut driver)?;
    }
    let servers = setup::admit(&mut driver, !cli.no_peers);
    driver.dir.write_json("servers.json", &servers)?;
    setup::note_servers(&mut driver, &servers);
    setup::write_machine(&driver, &machine, &command, &notes)?;
    driver.plan();
    driver.dir.note(&[
        "",
        "## Runs",
        "",
        &format!(
            "Each run's equivalent `chat-loadgen` command (the driver calls it as a library), then how it ended. Servers' logs and each run's summary: `{}/` (not committed).",
            logs.display()
        ),
    ]);
    setup::floor(&mut driver, "before the servers");
    driver.run_experiments();
    profile::profile_servers(&mut driver);
    memory::profile_memory(&mut driver);
    setup::floor(&mut driver, "after the servers");
    // machine.json again: with the kernel settings raised on the way.
    setup::write_machine(&driver, &machine, &command, &notes)?;
    let seconds = started.elapsed().as_secs();
    let end = format!(
        "Finished in {seconds} s, {} UTC, with {} failed run(s).",
        chat_loadgen::now_rfc3339(),
        driver.failures.len()
    );
    driver.dir.note(&["", "## End", "", &end]);
    let failures: Vec<String> = driver.failures.iter().map(|f| format!("- {f}")).collect();
    let refs: Vec<&str> = failures.iter().map(String::as_str).collect();
    driver.dir.note(&refs);
    let project_report = driver.sweep.mode == Mode::Full && default_out;
    let report = setup::report(&driver, project_report)?;
    let records = std::fs::read_to_string(driver.dir.runs())
        .map(|t| t.lines().count())
        .unwrap_or(0);
    console::say(&format!(
        "done in {seconds} s: {} ({records} records); report: {}",
        driver.dir.runs().display(),
        report.display()
    ));
    for failure in &driver.failures {
        eprintln!("chat-bench: failed: {failure}");
    }
    Ok(driver.failures.is_empty())
}

/// `--profiles-only`: the profiles of an existing run taken again, and its
/// report regenerated.
fn profiles_only(mut driver: Driver, command: &str, peers: bool) -> anyhow::Result<bool> {
    let note = format!(
        "`{command}`, at commit `{}`, {} UTC: the profiles below replace the sweep's.",
        driver.commit,
        chat_loadgen::now_rfc3339()
    );
    driver
        .dir
        .note(&["", "## Profiles, taken again after the sweep", "", &note]);
    setup::admit(&mut driver, peers);
    profile::profile_servers(&mut driver);
    memory::profile_memory(&mut driver);
    let report = setup::report(&driver, driver.sweep.mode == Mode::Full)?;
    console::say(&format!("profiles taken; report: {}", report.display()));
    for failure in &driver.failures {
        eprintln!("chat-bench: failed: {failure}");
    }
    Ok(driver.failures.is_empty())
}

/// The cores this process may run on (`Cpus_allowed_list`).
fn usable_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|list| parse_cpu_list(list.trim()).ok())
        })
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}
