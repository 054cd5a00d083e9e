//! Facts about the machine, read from the run's `README.md`.
//!
//! The bench script describes the machine there (`scripts/sysinfo.sh`: a
//! markdown table of cores, kernel limits, resource limits). The report
//! reads the few facts its text needs (how many cores the load generator
//! and the server shared, and what bounds the number of threads) rather
//! than probing the machine it happens to run on, which may not be the one
//! that ran the benchmark. A fact the README does not state is simply left
//! out of the text.

/// The number of cores, when the README states it: the `cores` row of the
/// machine table (its last number, the cores usable by the benchmark's
/// processes), or a line with `nproc`, `CPU(s)` or `N cores`.
pub fn cores(readme: &str) -> Option<u64> {
    let positive = |n: u64| (n > 0).then_some(n);
    for line in readme.lines() {
        let lower = line.to_lowercase();
        if lower.starts_with('|')
            && lower.contains("cores")
            && let Some(n) = table_value(line).and_then(|v| integers(&v).last().copied())
        {
            return positive(n);
        }
        for key in ["nproc", "cpu(s)"] {
            if let Some(at) = lower.find(key)
                && let Some(&n) = integers(&lower[at + key.len()..]).first()
            {
                return positive(n);
            }
        }
        // "8 cores": the number before the word.
        if let Some(at) = lower.find(" cores")
            && let Some(&n) = integers(&lower[..at]).last()
        {
            return positive(n);
        }
    }
    None
}

/// A limit on the number of threads, as the README states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLimit {
    /// What sets it, as the report names it (`pid_max`, `ulimit -u`, ...).
    pub name: &'static str,
    /// Its value.
    pub value: u64,
}

/// The limits that bound how many threads the sync server can create,
/// those the README states as numbers: the kernel's `threads-max` and
/// `pid_max`, the soft `ulimit -u` (every thread of the user counts), the
/// cgroup's `pids.max`, and `vm.max_map_count` divided by the four memory
/// mappings each thread costs (stack and guard, signal stack and guard).
pub fn thread_limits(readme: &str) -> Vec<ThreadLimit> {
    let rows: [(&str, &'static str, u64); 5] = [
        ("threads-max", "`threads-max`", 1),
        ("pid_max", "`pid_max`", 1),
        ("ulimit -u", "`ulimit -u`", 1),
        ("pids.max", "cgroup `pids.max`", 1),
        (
            "max_map_count",
            "`vm.max_map_count` (4 memory mappings per thread)",
            4,
        ),
    ];
    let mut limits = Vec::new();
    for (key, name, per_thread) in rows {
        let value = readme
            .lines()
            .filter(|line| line.starts_with('|'))
            .find(|line| first_cell(line).is_some_and(|c| c.contains(key)))
            .and_then(table_value)
            // `ulimit -u` is "soft / hard": the soft limit applies.
            .and_then(|v| integers(&v).first().copied());
        if let Some(value) = value {
            limits.push(ThreadLimit {
                name,
                value: value / per_thread,
            });
        }
    }
    limits
}

/// The first cell of a markdown table row.
fn first_cell(line: &str) -> Option<&str> {
    line.trim().trim_start_matches('|').split('|').next()
}

/// The second cell of a markdown table row: `| what | value |` → `value`.
fn table_value(line: &str) -> Option<String> {
    let cell = line.trim().trim_start_matches('|').split('|').nth(1)?;
    Some(cell.trim().to_owned())
}

/// Every whole number in a text, in order (digits only: `4,096` is two).
fn integers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape `scripts/sysinfo.sh` writes.
    const SYSINFO: &str = "\
## Machine

| what | value |
|---|---|
| CPU | AMD EPYC 7B13 64-Core Processor |
| cores (online / usable by this process) | 4 / 2 |

## Limits

| limit | value |
|---|---|
| `/proc/sys/kernel/pid_max` | 4194304 |
| `/proc/sys/kernel/threads-max` | 63405 |
| `ulimit -u` (processes, soft / hard) | 31702 / 31702 |
| cgroup `pids.max` | max |
| `/proc/sys/vm/max_map_count` | 65530 |
";

    #[test]
    fn cores_from_the_machine_table_or_a_line() {
        assert_eq!(cores(SYSINFO), Some(2));
        assert_eq!(cores("- nproc: 2\n"), Some(2));
        assert_eq!(cores("CPU(s):   4"), Some(4));
        assert_eq!(cores("a VM with 8 cores"), Some(8));
        assert_eq!(cores("no number here"), None);
    }

    #[test]
    fn thread_limits_that_are_numbers() {
        let limits = thread_limits(SYSINFO);
        let pairs: Vec<(&str, u64)> = limits.iter().map(|l| (l.name, l.value)).collect();
        assert_eq!(
            pairs,
            [
                ("`threads-max`", 63405),
                ("`pid_max`", 4_194_304),
                ("`ulimit -u`", 31702),
                ("`vm.max_map_count` (4 memory mappings per thread)", 16382)
            ]
        );
        assert!(thread_limits("# nothing").is_empty());
    }
}
