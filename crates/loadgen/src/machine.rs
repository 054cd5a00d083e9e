//! `chat-loadgen machine`: the machine a sweep runs on, read once before its
//! first run and written as [`chat_record::machine::Machine`] JSON
//! (`machine.json` beside `runs.jsonl`), so that the report states the
//! cores, memory, kernel limits, pinning and commit from data.
//!
//! What the sweep knows and this process cannot see (its command line,
//! quick or full, the pinning it applies, the limits it raised, the crate
//! versions in `Cargo.lock`) comes in by flag; the rest is read here, from
//! `/proc`, `/sys`, `getrlimit`, `git` and `rustc`. A value that cannot be
//! read is absent (or `unknown`, or 0 where the record has no absence),
//! never an error: a sandbox hiding `/sys` must not stop a sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use chat_record::machine::{Limits, Machine, Pinning};
use clap::{Args, ValueEnum};
use procfs::{CpuInfo, Current, Meminfo};

use crate::{current_commit, now_rfc3339};

/// Options of `chat-loadgen machine`.
#[derive(Debug, Args)]
pub struct MachineArgs {
    /// Write the machine, as pretty JSON, to this file.
    #[arg(long)]
    pub out: PathBuf,
    /// The sweep's command line, exactly.
    #[arg(long, allow_hyphen_values = true)]
    pub command: String,
    /// A smoke run (`quick`, not for conclusions) or the full sweep.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The servers' cores, as a `taskset -c` list, when pinned.
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<String>,
    /// The load generator's cores, as a `taskset -c` list, when pinned.
    #[arg(long, value_name = "LIST")]
    pub loadgen_cpus: Option<String>,
    /// A limit the sweep raised, or tried to, and how it went, e.g. "open
    /// files: soft limit raised from 1024 to 20000." Repeatable.
    #[arg(long, value_name = "NOTE", allow_hyphen_values = true)]
    pub raised: Vec<String>,
    /// A crate's version(s) in Cargo.lock, as NAME=VERSION. Repeatable.
    #[arg(long = "crate", value_name = "NAME=VERSION", value_parser = name_version)]
    pub crates: Vec<(String, String)>,
}

/// The sweep's mode, as `Machine::mode` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A smoke run: tiny counts, not for conclusions.
    Quick,
    /// The full sweep.
    Full,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
        }
    }
}

/// `NAME=VERSION`, as `--crate` takes it.
fn name_version(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            Ok((name.to_owned(), version.to_owned()))
        }
        _ => Err(format!("{value:?} is not NAME=VERSION")),
    }
}

/// Collects the machine and writes it to `--out`.
pub fn main(args: &MachineArgs) -> anyhow::Result<()> {
    let machine = collect(args);
    let mut json = serde_json::to_string_pretty(&machine).context("cannot encode the machine")?;
    json.push('\n');
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&args.out, json).with_context(|| format!("cannot write {}", args.out.display()))
}

/// The machine, the flags' part and what this process reads itself.
pub fn collect(args: &MachineArgs) -> Machine {
    let crates: BTreeMap<String, String> = args.crates.iter().cloned().collect();
    Machine {
        commit: current_commit(),
        clean: tree_is_clean(),
        started_at: now_rfc3339(),
        command: args.command.clone(),
        mode: args.mode.as_str().to_owned(),
        host: read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(unknown),
        cpu_model: cpu_model().unwrap_or_else(unknown),
        cores_online: cores_online().unwrap_or(0),
        cores_usable: std::thread::available_parallelism().map_or(0, |n| n.get() as u64),
        // procfs gives bytes.
        memory_kib: Meminfo::current().map_or(0, |m| m.mem_total / 1024),
        kernel: kernel().unwrap_or_else(unknown),
        rustc: command_output("rustc", &["-V"]).unwrap_or_else(|| "not found".to_owned()),
        pinning: Pinning {
            server_cpus: args.server_cpus.clone(),
            loadgen_cpus: args.loadgen_cpus.clone(),
        },
        limits: limits(),
        raised: args.raised.clone(),
        crates,
    }
}

fn unknown() -> String {
    "unknown".to_owned()
}

/// Whether `git status --porcelain --untracked-files=no` printed nothing
/// (false when git cannot say).
fn tree_is_clean() -> bool {
    Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii().is_empty())
}

/// A command's stdout, trimmed, if it ran and succeeded.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A file's text, trimmed, if it can be read and is not empty.
fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// A file holding one number (a sysctl).
fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

fn cpu_model() -> Option<String> {
    CpuInfo::current().ok()?.model_name(0).map(str::to_owned)
}

/// Cores online: `/sys/devices/system/cpu/online`, or failing that the
/// processors `/proc/cpuinfo` lists.
fn cores_online() -> Option<u64> {
    read_trimmed("/sys/devices/system/cpu/online")
        .and_then(|list| cpu_list_len(&list))
        .or_else(|| {
            let cores = CpuInfo::current().ok()?.num_cores() as u64;
            Some(cores).filter(|&n| n > 0)
        })
}

/// How many CPUs a kernel CPU list names (`0-3,8,10-11` is 7); `None` if
/// it is not one.
fn cpu_list_len(list: &str) -> Option<u64> {
    let mut count = 0;
    for part in list.trim().split(',') {
        count += match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
                last.checked_sub(first)? + 1
            }
            None => {
                part.parse::<u64>().ok()?;
                1
            }
        };
    }
    Some(count)
}

/// The release and the version, as `uname -r` and `uname -v` print them.
fn kernel() -> Option<String> {
    let release = read_trimmed("/proc/sys/kernel/osrelease")?;
    Some(match read_trimmed("/proc/sys/kernel/version") {
        Some(version) => format!("{release} {version}"),
        None => release,
    })
}

fn limits() -> Limits {
    let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    let nproc = rlimit::getrlimit(rlimit::Resource::NPROC).ok();
    let cgroup = cgroup_dir();
    let cgroup_value = |name: &str| cgroup.as_ref().and_then(|dir| read_trimmed(dir.join(name)));
    Limits {
        pid_max: read_u64("/proc/sys/kernel/pid_max"),
        threads_max: read_u64("/proc/sys/kernel/threads-max"),
        max_map_count: read_u64("/proc/sys/vm/max_map_count"),
        nr_open: read_u64("/proc/sys/fs/nr_open"),
        nofile_soft: nofile.map(|(soft, _)| soft),
        nofile_hard: nofile.map(|(_, hard)| hard),
        nproc_soft: nproc.map(|(soft, _)| soft),
        somaxconn: read_u64("/proc/sys/net/core/somaxconn"),
        ip_local_port_range: read_trimmed("/proc/sys/net/ipv4/ip_local_port_range")
            .map(|range| range.split_whitespace().collect::<Vec<_>>().join(" ")),
        cgroup_pids_max: cgroup_value("pids.max"),
        cgroup_memory_max: cgroup_value("memory.max"),
    }
}

/// This process's cgroup (v2) directory under `/sys/fs/cgroup`, as
/// `scripts/sysinfo.sh` finds it: the `0::PATH` line of
/// `/proc/self/cgroup`.
fn cgroup_dir() -> Option<PathBuf> {
    let cgroups = procfs::process::Process::myself().ok()?.cgroups().ok()?;
    let v2 = cgroups.into_iter().find(|c| c.hierarchy == 0)?;
    Some(Path::new("/sys/fs/cgroup").join(v2.pathname.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_list_counts_every_cpu_it_names() {
        assert_eq!(cpu_list_len("0"), Some(1));
        assert_eq!(cpu_list_len("0-1\n"), Some(2));
        assert_eq!(cpu_list_len("0-3,8,10-11"), Some(7));
        for bad in ["", "a", "3-1", "0-", "0,,1"] {
            assert_eq!(cpu_list_len(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_crate_is_name_equals_version() {
        assert_eq!(
            name_version("tokio=1.54.1"),
            Ok(("tokio".to_owned(), "1.54.1".to_owned()))
        );
        // Cargo.lock may hold two versions of one crate.
        assert_eq!(
            name_version("tungstenite=0.30.0, 0.21.0").map(|(_, v)| v),
            Ok("0.30.0, 0.21.0".to_owned())
        );
        for bad in ["tokio", "=1.0", "tokio="] {
            assert!(name_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn this_machine_reads_without_failing() {
        let args = MachineArgs {
            out: PathBuf::from("unused.json"),
            command: "bash scripts/bench.sh --quick".to_owned(),
            mode: Mode::Quick,
            server_cpus: Some("1".to_owned()),
            loadgen_cpus: Some("0".to_owned()),
            raised: vec!["open files: soft limit already at the hard limit, 20000.".to_owned()],
            crates: vec![("tokio".to_owned(), "1.54.1".to_owned())],
        };
        let machine = collect(&args);
        assert_eq!(machine.mode, "quick");
        assert_eq!(machine.command, args.command);
        assert!(!machine.pinning.shared());
        assert_eq!(machine.crates["tokio"], "1.54.1");
        assert_eq!(machine.raised, args.raised);
        assert!(machine.cores_usable >= 1);
        // Every Linux this runs on has these.
        assert!(machine.limits.nofile_soft.is_some());
        assert!(machine.limits.pid_max.is_some());
    }
}
