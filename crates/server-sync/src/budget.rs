//! How many threads this process may create before the machine refuses, and
//! so how many connections the sync server can take without crashing.
//!
//! Two threads per connection meet three limits of the machine:
//!
//! * `vm.max_map_count` (per process, 65,530 by default): each thread costs
//!   four memory mappings, its stack and guard page, and the alternate
//!   signal stack and guard page that Rust's standard library installs to
//!   report stack overflows. When the alternate stack cannot be mapped, the
//!   new thread cannot even panic cleanly and the whole process aborts, so
//!   this limit must never be reached;
//! * `kernel.pid_max` and `kernel.threads-max` (machine-wide): past them,
//!   creating a thread fails with `EAGAIN`, which the server survives (the
//!   connection is dropped), but every connection beyond is refused anyway.
//!
//! The server reads them at start-up and refuses upgrades (503) beyond the
//! connections its budget allows, whatever `--max-connections` says.

use std::fs;

/// Memory mappings per thread: stack + guard, signal stack + guard.
pub const MAPS_PER_THREAD: u64 = 4;

/// Mappings left for everything else (code, heap arenas, buffers).
const MAPS_RESERVED: u64 = 2048;

/// Threads that are not connections' (acceptor, signal handler, main...).
const THREADS_RESERVED: u64 = 16;

/// The limit that bounds the thread budget, and the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadBudget {
    /// Threads this process may create.
    pub threads: u64,
    /// Which machine limit sets it, with its value.
    pub limited_by: String,
}

impl ThreadBudget {
    /// Reads the machine's limits from `/proc/sys`; `None` if none is
    /// readable (not Linux).
    pub fn of_this_machine() -> Option<Self> {
        let read =
            |path: &str| -> Option<u64> { fs::read_to_string(path).ok()?.trim().parse().ok() };
        let mut candidates = Vec::new();
        if let Some(maps) = read("/proc/sys/vm/max_map_count") {
            candidates.push((
                maps.saturating_sub(MAPS_RESERVED) / MAPS_PER_THREAD,
                format!("vm.max_map_count = {maps} ({MAPS_PER_THREAD} mappings per thread)"),
            ));
        }
        if let Some(pids) = read("/proc/sys/kernel/pid_max") {
            candidates.push((pids, format!("kernel.pid_max = {pids}")));
        }
        if let Some(threads) = read("/proc/sys/kernel/threads-max") {
            candidates.push((threads, format!("kernel.threads-max = {threads}")));
        }
        candidates
            .into_iter()
            .min_by_key(|(threads, _)| *threads)
            .map(|(threads, limited_by)| Self {
                threads,
                limited_by,
            })
    }

    /// Connections that fit: two threads each, beside one thread per
    /// pending handshake and a few of the server's own.
    pub fn connections(&self, pending_handshakes: usize) -> usize {
        let spare = self
            .threads
            .saturating_sub(THREADS_RESERVED + pending_handshakes as u64);
        (spare / 2).max(1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_threads_per_connection_after_the_reserve() {
        let budget = ThreadBudget {
            threads: 16_000,
            limited_by: "test".into(),
        };
        assert_eq!(budget.connections(512), (16_000 - 16 - 512) / 2);
        let tiny = ThreadBudget {
            threads: 10,
            limited_by: "test".into(),
        };
        assert_eq!(tiny.connections(512), 1);
    }

    #[test]
    fn this_machine_has_a_budget() {
        let budget = ThreadBudget::of_this_machine().expect("Linux exposes /proc/sys");
        assert!(budget.threads > 0);
        assert!(!budget.limited_by.is_empty());
    }
}
