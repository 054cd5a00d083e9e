//! Where each server spends its CPU: `perf record` (software clock, 999 Hz,
//! no call graphs: self time per function) of the server for a few seconds
//! in the middle of a fan-out run. The load generator's record is not kept
//! (perf's sampling costs the server a little CPU); what is kept is the
//! share of samples per binary (kernel, server, libc) and per function, in
//! `profile.tsv`, which the report renders. Skipped, and said so, where
//! perf cannot sample (not installed, or not allowed).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use chat_loadgen::scenario::{self, Load, RunOptions, Tags, Target};

use crate::console;
use crate::driver::Driver;
use crate::fleet::{Fleet, ServerStart};
use crate::plan;
use crate::sweep::{Binaries, LoadSpec};

/// Seconds into the run when sampling starts: past the connections and
/// the warm-up.
const SAMPLE_FROM_S: u64 = 3;
/// Functions kept per profile.
const TOP_FUNCTIONS: usize = 25;

/// Profiles the sweep's profile servers, if perf runs here.
pub fn profile_servers(driver: &mut Driver) {
    let Some(profile) = driver.sweep.profile.clone() else {
        return;
    };
    let perf_runs = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    driver.dir.note(&["", "## Profiles", ""]);
    if !perf_runs {
        driver.dir.note(&["Not taken: `perf record -e cpu-clock` does not run here (install Debian's linux-perf)."]);
        console::say("profiles: not taken (perf does not run here)");
        return;
    }
    driver.dir.note(&[&format!(
        "`perf record -e cpu-clock -F 999 -p PID -- sleep {}` of each server, from {SAMPLE_FROM_S} s into each run below (these runs are not in runs.jsonl); shares of samples in `profile.tsv`.",
        profile.seconds
    )]);
    let mut tsv = String::from("server\trate_per_s\tkind\tname\tpercent\n");
    for label in &profile.servers {
        if !driver.active.contains(label) {
            continue;
        }
        for &rate in &profile.rates {
            match profile_one(driver, label, profile.clients, rate, profile.seconds) {
                Ok(rows) => {
                    tsv.push_str(&rows);
                    console::say(&format!("profiled {label} at {rate} msg/s"));
                }
                Err(error) => {
                    console::say(&format!(
                        "profile of {label} at {rate} msg/s FAILED: {error:#}"
                    ));
                    driver.dir.note(&[&format!(
                        "Profile of {label} at {rate} msg/s failed: {error:#}"
                    )]);
                }
            }
        }
    }
    if let Err(error) = std::fs::write(driver.dir.path.join("profile.tsv"), tsv) {
        driver.failures.push(format!("profile.tsv: {error}"));
    }
}

fn profile_one(
    driver: &mut Driver,
    label: &str,
    clients: u64,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<String> {
    let def = driver
        .sweep
        .server(label)
        .ok_or_else(|| anyhow::anyhow!("no server {label}"))?
        .clone();
    let cores = driver.cpus.all.len();
    let mut fleet = Fleet::default();
    let start = ServerStart {
        def: &def,
        binaries: Binaries::Current,
        flags: &[],
        redis_urls: &[],
        cpus: None,
        cores,
    };
    let tag = format!("perf-{label}-{rate}");
    fleet.start_server(&start, &driver.places, &tag)?;
    let pid = fleet.servers[0].process.pid().unwrap_or(0);
    let target = Target {
        label: label.to_owned(),
        urls: vec![fleet.servers[0].process.url()],
        server_pids: vec![pid],
        sample_pids: Vec::new(),
        commit: driver.commit.clone(),
    };
    let load = plan::fanout(&LoadSpec {
        clients: Some(clients),
        rooms: Some(1),
        senders: Some(1),
        rate: Some(rate),
        payload: Some(64),
        warmup: Some(2.0),
        duration: Some((seconds + 2) as f64),
        drain: Some(1.0),
        drain_max: Some(1.0),
        ..LoadSpec::default()
    })?;
    let load = Load::Fanout(load);
    driver.dir.note(&[
        "",
        "```sh",
        &scenario::command_line(&load, &target, &Tags::default()),
        "```",
    ]);
    let data = driver.places.logs.join(format!("{tag}.data"));
    let rows = std::thread::scope(|scope| {
        let runner =
            scope.spawn(|| scenario::run(&load, &target, &Tags::default(), &RunOptions::default()));
        // Past the connections and the warm-up: the measured window.
        std::thread::sleep(Duration::from_secs(SAMPLE_FROM_S));
        let recorded = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "999", "-o"])
            .arg(&data)
            .args(["-p", &pid.to_string(), "--", "sleep", &seconds.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = runner.join();
        recorded
    });
    let stopping = fleet.stop(driver.places.stop_timeout);
    driver
        .dir
        .note(&[&format!("Stopped: {}.", stopping.outcomes.join(", "))]);
    anyhow::ensure!(rows.is_ok_and(|s| s.success()), "perf record failed");
    let mut out = String::new();
    for (kind, sort, limit) in [
        ("binary", "dso", usize::MAX),
        ("function", "sym", TOP_FUNCTIONS),
    ] {
        let report = Command::new("perf")
            .args(["report", "-i"])
            .arg(&data)
            .args([
                "--no-children",
                "--sort",
                sort,
                "--stdio",
                "-q",
                "-g",
                "none",
            ])
            .stderr(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&report.stdout);
        for (percent, name) in shares(&text).into_iter().take(limit) {
            let _ = writeln!(out, "{label}\t{rate}\t{kind}\t{name}\t{percent}");
        }
    }
    Ok(out)
}

/// `(percent, name)` of each line of `perf report --stdio -q` that starts
/// with a share (`  12.34%  chat-async`).
fn shares(report: &str) -> Vec<(String, String)> {
    report
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (first, rest) = line.split_once(char::is_whitespace)?;
            let percent = first.strip_suffix('%')?;
            percent.parse::<f64>().ok()?;
            Some((percent.to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_are_read_from_perf_report() {
        let report = "\n    45.10%  [kernel.kallsyms]\n     3.20%  chat-async\n# comment\n";
        assert_eq!(
            super::shares(report),
            [
                ("45.10".to_owned(), "[kernel.kallsyms]".to_owned()),
                ("3.20".to_owned(), "chat-async".to_owned())
            ]
        );
    }
}
