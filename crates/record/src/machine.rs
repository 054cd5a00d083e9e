//! The machine a sweep ran on, as data: `machine.json` beside `runs.jsonl`.
//!
//! Every figure of a run depends on the machine as much as on the code: its
//! cores (and whether the servers and the load generator shared them), its
//! memory, and the kernel limits that bound threads and connections. The
//! sweep records them once, before its first run, as this JSON object, so
//! that the report states them from data and never from prose.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One sweep's machine, commit and command.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The commit the sweep ran (`git rev-parse HEAD`), or `unknown`.
    pub commit: String,
    /// Whether `git status --porcelain` was empty: numbers from a dirty
    /// tree cannot be reproduced from the commit alone.
    pub clean: bool,
    /// When the sweep started, RFC 3339, UTC.
    pub started_at: String,
    /// The sweep's command line, exactly.
    pub command: String,
    /// `quick` (a smoke run, not for conclusions) or `full`.
    pub mode: String,
    /// The host name.
    pub host: String,
    /// The CPU's model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Cores online.
    pub cores_online: u64,
    /// Cores this process may run on (its affinity mask).
    pub cores_usable: u64,
    /// Memory, KiB (`MemTotal`).
    pub memory_kib: u64,
    /// The kernel (`uname -r`-like release and version).
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// Where the servers and the load generator ran.
    pub pinning: Pinning,
    /// The limits every process of the sweep inherited.
    pub limits: Limits,
    /// The limits the sweep raised, or tried to, and how it went.
    pub raised: Vec<String>,
    /// Versions of the crates that decide how the servers wait
    /// (`Cargo.lock`), by name.
    pub crates: BTreeMap<String, String>,
}

/// CPU affinity of the servers and of the load generator: a `taskset`
/// list (`0-3`), or absent when not pinned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pinning {
    /// The servers' cores, when pinned.
    pub server_cpus: Option<String>,
    /// The load generator's cores, when pinned.
    pub loadgen_cpus: Option<String>,
}

impl Pinning {
    /// Whether servers and load generator may run on the same cores.
    pub fn shared(&self) -> bool {
        self.server_cpus.is_none() || self.loadgen_cpus.is_none()
    }
}

/// Kernel and process limits; a value that could not be read is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `kernel.pid_max`: every thread takes a pid.
    pub pid_max: Option<u64>,
    /// `kernel.threads-max`.
    pub threads_max: Option<u64>,
    /// `vm.max_map_count`: a thread's stack and guard page are two maps.
    pub max_map_count: Option<u64>,
    /// `fs.nr_open`: the most an open-files limit may be raised to.
    pub nr_open: Option<u64>,
    /// Open files, soft limit (after the sweep raised it).
    pub nofile_soft: Option<u64>,
    /// Open files, hard limit.
    pub nofile_hard: Option<u64>,
    /// Processes (threads) per user, soft limit.
    pub nproc_soft: Option<u64>,
    /// `net.core.somaxconn`.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.ip_local_port_range`, as written.
    pub ip_local_port_range: Option<String>,
    /// The cgroup's `pids.max` (`max` when unbounded).
    pub cgroup_pids_max: Option<String>,
    /// The cgroup's `memory.max` (`max` when unbounded).
    pub cgroup_memory_max: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_reads_back() {
        let machine = Machine {
            commit: "abc".into(),
            cores_online: 2,
            limits: Limits {
                max_map_count: Some(65_530),
                ..Limits::default()
            },
            crates: [("tokio".to_owned(), "1.54.1".to_owned())].into(),
            ..Machine::default()
        };
        let json = serde_json::to_string(&machine).expect("encodes");
        let back: Machine = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, machine);
        assert!(back.pinning.shared());
    }
}
