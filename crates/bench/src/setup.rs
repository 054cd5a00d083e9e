//! Everything around the experiments: the admission check of every server,
//! `machine.json` and `servers.json`, the README's header, the write floor,
//! the baseline's binaries, Django's venv, and the report.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use chat_loadgen::floor::FloorParams;
use chat_loadgen::machine::{MachineArgs, Mode as MachineMode};
use chat_record::machine::Machine;
use chat_record::servers::{Admission, ServerKind, ServerSetup, Servers};

use crate::console;
use crate::driver::{Driver, cpu_list};
use crate::fleet::{Fleet, ServerStart};
use crate::sweep::{Binaries, Kind, Mode};

/// How long each admission check may wait for one frame.
const ADMISSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Crates whose versions decide how the servers wait, recorded in
/// `machine.json`.
const RECORDED_CRATES: [&str; 5] = [
    "tokio",
    "tungstenite",
    "tokio-tungstenite",
    "crossbeam-channel",
    "hdrhistogram",
];

/// Checks every server the sweep would run (ours, the reference servers
/// unless `peers` is off, Django with `django`): installed, started, and
/// speaking the protocol exactly (`chat_loadgen::admission`). The admitted
/// become the driver's active servers; the rest are reported, not measured.
pub fn admit(driver: &mut Driver, peers: bool) -> Servers {
    let mut servers = Servers::default();
    let defs = driver.sweep.servers.clone();
    for def in &defs {
        let wanted = match def.kind {
            Kind::Ours => true,
            Kind::Reference => peers,
            Kind::Django => driver.django,
        };
        if !wanted {
            continue;
        }
        let cores = driver
            .cpus
            .server
            .as_ref()
            .map_or(driver.cpus.all.len(), Vec::len);
        let server_list = driver.cpus.server.as_deref().map(cpu_list);
        let start = ServerStart {
            def,
            binaries: Binaries::Current,
            flags: &[],
            redis_urls: &[],
            cpus: server_list.as_deref(),
            cores,
        };
        let command = start
            .launch(&driver.places, Path::new("-"))
            .map(|l| l.command_line())
            .unwrap_or_default();
        let admission = check_one(driver, &start);
        let line = match &admission {
            Admission::Passed => format!("admitted {}: {}", def.label, def.name),
            Admission::Failed(why) => format!("NOT ADMITTED {}: {why}", def.label),
            Admission::Unavailable(why) => format!("UNAVAILABLE {}: {why}", def.label),
        };
        console::say(&line);
        if admission.passed() {
            driver.active.push(def.label.clone());
        } else if def.kind != Kind::Reference || !matches!(admission, Admission::Unavailable(_)) {
            driver.failures.push(line);
        }
        servers.servers.push(ServerSetup {
            label: def.label.clone(),
            name: def.name.clone(),
            kind: match def.kind {
                Kind::Ours => ServerKind::Ours,
                Kind::Reference => ServerKind::Reference,
                Kind::Django => ServerKind::Django,
            },
            command,
            settings: def.settings.replace("{cores}", &cores.to_string()),
            cores: def.cores.clone(),
            admission,
        });
    }
    servers
}

fn check_one(driver: &Driver, start: &ServerStart<'_>) -> Admission {
    for need in &start.def.needs {
        let path = need.replace("{target}", &driver.places.target.display().to_string());
        if !Path::new(&path).exists() {
            return Admission::Unavailable(format!(
                "{path} is missing: install it with `bash peers/install.sh`"
            ));
        }
    }
    let mut fleet = Fleet::default();
    if let Err(error) = fleet.start_server(start, &driver.places, "admission") {
        return Admission::Unavailable(format!("{error:#}"));
    }
    let url = fleet.servers[0].process.url();
    let outcome = chat_loadgen::admission::check_blocking(&url, ADMISSION_TIMEOUT);
    let stopping = fleet.stop(driver.places.stop_timeout);
    match outcome {
        Ok(()) if stopping.failures.is_empty() => Admission::Passed,
        Ok(()) => Admission::Failed(format!(
            "it did not stop well: {}",
            stopping.failures.join("; ")
        )),
        Err(error) => Admission::Failed(error.to_string()),
    }
}

/// The machine as data, with the limits raised so far: read when the sweep
/// starts, so that its commit, whether the tree was clean and the start
/// time describe the binaries the sweep measures, whatever happens to the
/// work tree while it runs.
pub fn machine(driver: &Driver, command: &str, notes: &[String]) -> Machine {
    let args = MachineArgs {
        out: driver.dir.path.join("machine.json"),
        command: command.to_owned(),
        mode: match driver.sweep.mode {
            Mode::Quick => MachineMode::Quick,
            Mode::Full => MachineMode::Full,
        },
        server_cpus: driver.cpus.server.as_deref().map(cpu_list),
        loadgen_cpus: driver.cpus.loadgen.as_deref().map(cpu_list),
        raised: notes.iter().chain(&driver.raised).cloned().collect(),
        crates: RECORDED_CRATES
            .iter()
            .map(|name| ((*name).to_owned(), lock_versions(name)))
            .collect(),
    };
    chat_loadgen::machine::collect(&args)
}

/// `machine.json`: the machine read at the start, with the kernel limits
/// as they are now and every limit raised on the way.
pub fn write_machine(
    driver: &Driver,
    start: &Machine,
    command: &str,
    notes: &[String],
) -> anyhow::Result<()> {
    let now = machine(driver, command, notes);
    let machine = Machine {
        limits: now.limits,
        raised: now.raised,
        ..start.clone()
    };
    driver.dir.write_json("machine.json", &machine)
}

/// Every version of `name` in `Cargo.lock`, comma-separated.
fn lock_versions(name: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Lock {
        package: Vec<Package>,
    }
    #[derive(serde::Deserialize)]
    struct Package {
        name: String,
        version: String,
    }
    let versions: Vec<String> = std::fs::read_to_string("Cargo.lock")
        .ok()
        .and_then(|text| toml::from_str::<Lock>(&text).ok())
        .map(|lock| {
            lock.package
                .into_iter()
                .filter(|p| p.name == name)
                .map(|p| p.version)
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        "not in Cargo.lock".to_owned()
    } else {
        versions.join(", ")
    }
}

/// The README's header: the command, the mode, the pinning, the machine
/// (`scripts/sysinfo.sh`) and the limits raised.
pub fn write_header(driver: &mut Driver, command: &str, notes: &[String]) {
    let name = driver
        .dir
        .path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mode = match driver.sweep.mode {
        Mode::Quick => "quick (smoke run: tiny counts, not for conclusions)",
        Mode::Full => "full sweep",
    };
    let pinning = match (&driver.cpus.server, &driver.cpus.loadgen) {
        (None, None) => format!(
            "Not pinned: servers and the load generator share all {} cores (the cores experiment pins each server itself).",
            driver.cpus.all.len()
        ),
        (server, loadgen) => format!(
            "Pinned: servers on cores {}, the load generator on cores {}.",
            server.as_deref().map_or("any".to_owned(), cpu_list),
            loadgen.as_deref().map_or("any".to_owned(), cpu_list)
        ),
    };
    let sysinfo = Command::new("bash")
        .arg("scripts/sysinfo.sh")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "(scripts/sysinfo.sh failed)".to_owned());
    let mut lines = vec![
        format!("# Benchmark run `{name}`"),
        String::new(),
        "Written by `chat-bench` (`scripts/bench.sh`). `runs.jsonl` holds one JSON record per"
            .into(),
        "load-generator run (raw data); `chat-report` regenerates the report from it,".into(),
        "`machine.json` and `servers.json`.".into(),
        String::new(),
        "## Command".into(),
        String::new(),
        "```sh".into(),
        command.to_owned(),
        "```".into(),
        String::new(),
        format!(
            "Mode: {mode}. The sweep: `{}` at the commit below.",
            driver.sweep_path.display()
        ),
        pinning,
        String::new(),
        sysinfo.trim_end().to_owned(),
        String::new(),
        "## Limits raised".into(),
        String::new(),
    ];
    lines.extend(notes.iter().map(|n| format!("- {n}")));
    lines.push(String::new());
    lines.push("Every server inherits these; kernel settings raised for one experiment are noted under it.".into());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    driver.dir.note(&refs);
}

/// The servers, in the README.
pub fn note_servers(driver: &mut Driver, servers: &Servers) {
    driver.dir.note(&["", "## Servers", ""]);
    for s in &servers.servers {
        let admission = match &s.admission {
            Admission::Passed => "admitted".to_owned(),
            Admission::Failed(why) => format!("NOT admitted: {why}"),
            Admission::Unavailable(why) => format!("unavailable: {why}"),
        };
        let line = format!(
            "- `{}`: {}. Started as `{}`. {}. Cores: {}. {admission}.",
            s.label, s.name, s.command, s.settings, s.cores
        );
        driver.dir.note(&[&line]);
    }
}

/// The write floor (`chat-loadgen floor`, no server), pinned to the
/// servers' cores when they are pinned. `when` says when, for the README.
pub fn floor(driver: &mut Driver, when: &str) {
    let params = FloorParams {
        connections: driver.sweep.floor.connections,
        batch_sizes: vec![1, 4, 16, 64],
        per_batch: Duration::from_secs_f64(driver.sweep.floor.seconds),
        payload_bytes: 64,
        reader_threads: 1,
    };
    let commit = driver.commit.clone();
    let cpus = driver.cpus.server.clone();
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<chat_record::Record> {
                if let Some(cpus) = &cpus {
                    chat_loadgen::cpus::Affinity::new(cpus)?.pin_current_thread()?;
                }
                chat_loadgen::scenario::floor(&params, "floor", &commit)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the floor's thread panicked")))
    });
    driver.dir.note(&[
        "",
        &format!("### Write floor, {when}"),
        "",
        "```sh",
        &format!(
            "chat-loadgen floor --label floor --connections {} --seconds {}",
            params.connections, driver.sweep.floor.seconds
        ),
        "```",
    ]);
    match result.and_then(|record| driver.dir.append(&record).map(|()| record)) {
        Ok(_) => console::say(&format!("write floor, {when}: measured")),
        Err(error) => {
            console::say(&format!("write floor, {when}: FAILED: {error:#}"));
            driver.failures.push(format!("floor ({when}): {error:#}"));
        }
    }
}

/// Builds chat-sync and chat-async at `rev` in a worktree of their own;
/// returns the binaries' directory and the commit.
pub fn build_baseline(rev: &str, target: &Path) -> anyhow::Result<(PathBuf, String)> {
    let out = Command::new("git")
        .args(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!("--baseline {rev}: not a revision of this repository");
    }
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let src = target.join("baseline-src");
    let build_dir = target.join("baseline");
    console::say(&format!(
        "building chat-sync and chat-async at {rev} ({commit})"
    ));
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .status();
    let _ = std::fs::remove_dir_all(&src);
    let _ = Command::new("git").args(["worktree", "prune"]).status();
    let status = Command::new("git")
        .args(["worktree", "add", "--detach"])
        .arg(&src)
        .arg(&commit)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run git worktree")?;
    anyhow::ensure!(status.success(), "git worktree add failed: {status}");
    let built = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--bin",
            "chat-sync",
            "--bin",
            "chat-async",
        ])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", std::path::absolute(&build_dir)?)
        .status()
        .context("cannot run cargo")?;
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .status();
    anyhow::ensure!(built.success(), "building the baseline failed: {built}");
    Ok((build_dir.join("release"), commit))
}

/// Creates Django's venv before any timed start (`run.sh --setup-only`,
/// which installs from PyPI when absent, and says so), and notes its
/// packages in the README.
pub fn prepare_django(driver: &mut Driver) -> anyhow::Result<()> {
    console::say("preparing the Django venv (scripts/django/run.sh --setup-only)");
    let status = Command::new("bash")
        .args(["scripts/django/run.sh", "--setup-only"])
        .status()
        .context("cannot run scripts/django/run.sh")?;
    anyhow::ensure!(
        status.success(),
        "scripts/django/run.sh --setup-only failed: {status}"
    );
    let python = driver.places.target.join("django-venv/bin/python");
    let run = |args: &[&str]| {
        Command::new(&python)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let version = run(&["-VV"]);
    let freeze = run(&["-m", "pip", "freeze", "--disable-pip-version-check"]);
    let mut lines = vec![
        String::new(),
        "## Django".into(),
        String::new(),
        "`scripts/django/run.sh`: Daphne serving the Channels tutorial chat with the seed's".into(),
        "AsyncWebsocketConsumer and the tutorial's InMemoryChannelLayer at its defaults".into(),
        "(capacity 100 messages per channel, beyond which Channels drops messages".into(),
        "silently; chat-loadgen counts them as lost). Python packages:".into(),
        String::new(),
        format!("    {}", version.lines().next().unwrap_or("")),
    ];
    lines.extend(freeze.lines().map(|l| format!("    {l}")));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    driver.dir.note(&refs);
    Ok(())
}

/// Regenerates the report: the project's (`results/REPORT.md`) for a full
/// sweep in the default place, else one inside the run directory, so that
/// a smoke run never replaces the project's report.
pub fn report(driver: &Driver, project_report: bool) -> anyhow::Result<PathBuf> {
    let program = driver.places.bin.join("chat-report");
    let mut command = Command::new(&program);
    let written = if project_report {
        command.args(["--results", "results"]);
        PathBuf::from("results/REPORT.md")
    } else {
        command
            .arg("--results")
            .arg(&driver.dir.path)
            .arg("--run")
            .arg(&driver.dir.path);
        driver.dir.path.join("REPORT.md")
    };
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", program.display()))?;
    anyhow::ensure!(status.success(), "chat-report failed: {status}");
    Ok(written)
}
