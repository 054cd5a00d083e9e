//! Where each server spends its CPU: the `perf record` samples that
//! `bench.sh` keeps in a run's `profile.tsv` (self time per binary and per
//! function, software clock), rendered side by side.
//!
//! The file is optional: a run where `perf` could not sample has none, and
//! the report says so instead of the tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The profile file of a run directory.
pub const PROFILE_FILE: &str = "profile.tsv";
/// Functions listed per server and rate.
const TOP_FUNCTIONS: usize = 12;

/// One line of `profile.tsv`: a share of one server's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// The server's label.
    pub server: String,
    /// The sender's rate during the profile, messages/s.
    pub rate_per_s: u64,
    /// `binary` (kernel, the server, libc...) or `function`.
    pub kind: String,
    /// The binary or the function, as perf names it.
    pub name: String,
    /// Percent of the server's samples.
    pub percent: f64,
}

/// Parses `profile.tsv` (a header line, then tab-separated rows); lines that
/// do not parse are skipped.
pub fn parse(tsv: &str) -> Vec<Share> {
    tsv.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let server = fields.next()?.to_owned();
            let rate_per_s = fields.next()?.parse().ok()?;
            let kind = fields.next()?.to_owned();
            let name = fields.next()?.trim().to_owned();
            let percent = fields.next()?.parse().ok()?;
            Some(Share {
                server,
                rate_per_s,
                kind,
                name,
                percent,
            })
        })
        .collect()
}

/// The section's body: per rate, the binaries' shares and the top functions
/// of each server, side by side.
pub fn render(shares: &[Share]) -> String {
    if shares.is_empty() {
        return "No profile in this run (`perf` could not sample here; see the run's README).\n"
            .to_owned();
    }
    let mut out = String::from(
        "`perf record -e cpu-clock` of each server during a 1,000-client fan-out in one room \
         (self time: a function's own samples, not its callees'). `[kernel.kallsyms]` is \
         the kernel working for the server: syscalls (the `write`s, the futex and epoll \
         waits), the TCP/IP stack on loopback, and the scheduler's context switches; \
         `[k]` marks kernel functions, `[.]` user-space ones.\n",
    );
    let mut by_rate: BTreeMap<u64, BTreeMap<&str, Vec<&Share>>> = BTreeMap::new();
    for share in shares {
        by_rate
            .entry(share.rate_per_s)
            .or_default()
            .entry(share.server.as_str())
            .or_default()
            .push(share);
    }
    for (rate, servers) in &by_rate {
        let _ = write!(out, "\n### 1 sender @ {rate} msg/s\n\n");
        let names: Vec<&str> = servers.keys().copied().collect();
        out.push_str("| binary |");
        for name in &names {
            let _ = write!(out, " {name}, % |");
        }
        out.push_str("\n| --- |");
        out.push_str(&" ---: |".repeat(names.len()));
        out.push('\n');
        let mut binaries: Vec<&str> = Vec::new();
        for shares in servers.values() {
            for share in shares.iter().filter(|s| s.kind == "binary") {
                if !binaries.contains(&share.name.as_str()) {
                    binaries.push(&share.name);
                }
            }
        }
        for binary in binaries {
            let _ = write!(out, "| `{binary}` |");
            for name in &names {
                let percent = servers[name]
                    .iter()
                    .find(|s| s.kind == "binary" && s.name == binary)
                    .map_or_else(|| "—".to_owned(), |s| format!("{:.1}", s.percent));
                let _ = write!(out, " {percent} |");
            }
            out.push('\n');
        }
        out.push('\n');
        out.push('|');
        for name in &names {
            let _ = write!(out, " {name}: function | % |");
        }
        out.push_str("\n|");
        out.push_str(&" --- | ---: |".repeat(names.len()));
        out.push('\n');
        let tops: Vec<Vec<&&Share>> = names
            .iter()
            .map(|name| {
                servers[name]
                    .iter()
                    .filter(|s| s.kind == "function")
                    .take(TOP_FUNCTIONS)
                    .collect()
            })
            .collect();
        let rows = tops.iter().map(Vec::len).max().unwrap_or(0);
        for row in 0..rows {
            out.push('|');
            for top in &tops {
                match top.get(row) {
                    Some(share) => {
                        let _ = write!(
                            out,
                            " `{}` | {:.1} |",
                            share.name.replace('|', "\\|"),
                            share.percent
                        );
                    }
                    None => out.push_str(" | |"),
                }
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "server\trate_per_s\tkind\tname\tpercent\n\
        sync\t100\tbinary\t[kernel.kallsyms]\t80.5\n\
        sync\t100\tbinary\tchat-sync\t15.0\n\
        sync\t100\tfunction\t[k] finish_task_switch.isra.0\t32.6\n\
        async\t100\tbinary\t[kernel.kallsyms]\t69.8\n\
        async\t100\tbinary\tchat-async\t28.1\n\
        async\t100\tfunction\t[.] tokio::sync::mpsc::list::Rx<T>::pop\t2.7\n\
        async\t100\tfunction\t[k] tcp_sendmsg_locked\t3.1\n\
        garbage line\n";

    #[test]
    fn parses_rows_and_skips_the_header_and_garbage() {
        let shares = parse(TSV);
        assert_eq!(shares.len(), 7);
        assert_eq!(shares[0].server, "sync");
        assert_eq!(shares[0].rate_per_s, 100);
        assert_eq!(shares[0].name, "[kernel.kallsyms]");
        assert!((shares[0].percent - 80.5).abs() < 1e-9);
    }

    #[test]
    fn renders_binaries_and_functions_side_by_side() {
        let md = render(&parse(TSV));
        assert!(md.contains("### 1 sender @ 100 msg/s"), "{md}");
        assert!(md.contains("| binary | async, % | sync, % |"), "{md}");
        assert!(md.contains("| `[kernel.kallsyms]` | 69.8 | 80.5 |"), "{md}");
        assert!(md.contains("| `chat-sync` | — | 15.0 |"), "{md}");
        assert!(
            md.contains("| `[.] tokio::sync::mpsc::list::Rx<T>::pop` | 2.7 | `[k] finish_task_switch.isra.0` | 32.6 |"),
            "{md}"
        );
        assert!(
            md.contains("| `[k] tcp_sendmsg_locked` | 3.1 | | |"),
            "{md}"
        );
    }

    #[test]
    fn no_profile_says_so() {
        assert!(render(&[]).contains("No profile"));
    }
}
