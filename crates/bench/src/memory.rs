//! Where an idle connection's memory goes: each of our profiled servers holds idle
//! connections with heaptrack's allocation hooks preloaded (`LD_PRELOAD`, as
//! the `heaptrack` launcher starts a program, so that the server is still
//! the process the driver starts and stops), and the heap at its peak is
//! split by where it was allocated: the first frame outside Rust's standard
//! library (a dependency's or ours), and the first frame of ours on the way
//! there. Kept in `memory.tsv`, with the RSS per connection measured in a
//! run without heaptrack just before (the heap is part of it; thread stacks and the allocator's own
//! overhead are the rest), which the report renders. Skipped, and said so,
//! where heaptrack is not installed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use chat_loadgen::scenario::{self, RunOptions, Tags, Target};
use chat_record::{ConnectionsResults, Results};

use crate::console;
use crate::driver::Driver;
use crate::fleet::{Fleet, ServerStart};
use crate::plan;
use crate::sweep::{Binaries, Kind, LoadSpec, Scenario, ServerDef};

/// Debian's heaptrack: the preloaded library, and the program that turns
/// its raw output into what `heaptrack_print` reads.
const PRELOAD: &str = "/usr/lib/heaptrack/libheaptrack_preload.so";
const INTERPRET: &str = "/usr/lib/heaptrack/libexec/heaptrack_interpret";
/// Seconds the connections are held.
const HOLD_S: f64 = 3.0;
/// Allocation sites read from heaptrack's list of peak consumers.
const PEAKS: usize = 40;
/// The file's header.
pub const HEADER: &str = "server\tconnections\trss_kib_per_connection\tsite\tvia\tbytes_per_connection\tallocations_per_connection\n";

/// Profiles the idle connections of the sweep's profile servers, if the
/// sweep asks for it and heaptrack is installed.
pub fn profile_memory(driver: &mut Driver) {
    let Some(profile) = driver.sweep.profile.clone() else {
        return;
    };
    let Some(count) = profile.idle_connections else {
        return;
    };
    driver.dir.note(&["", "## Memory profiles", ""]);
    let installed = Path::new(PRELOAD).exists()
        && Path::new(INTERPRET).exists()
        && Command::new("heaptrack_print")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !installed {
        driver
            .dir
            .note(&["Not taken: heaptrack is not installed (Debian's heaptrack)."]);
        console::say("memory profiles: not taken (heaptrack is not installed)");
        return;
    }
    driver.dir.note(&[&format!(
        "Each server started with `LD_PRELOAD={PRELOAD}` and `DUMP_HEAPTRACK_OUTPUT=FILE`, holding {count} idle connections for {HOLD_S} s, after a run without it that measures the RSS (these runs are not in runs.jsonl); then `{INTERPRET} < FILE > OUT` and `heaptrack_print -f OUT --print-peaks 1 --peak-limit {PEAKS} --merge-backtraces 0`, condensed into `memory.tsv`."
    )]);
    let mut tsv = String::from(HEADER);
    for label in &profile.servers {
        let ours = driver
            .sweep
            .server(label)
            .is_some_and(|def| def.kind == Kind::Ours);
        // The heap of a garbage-collected runtime is not malloc's.
        if !ours || !driver.active.contains(label) {
            continue;
        }
        match profile_one(driver, label, count) {
            Ok(rows) => {
                tsv.push_str(&rows);
                console::say(&format!(
                    "memory profile of {label}: {count} idle connections"
                ));
            }
            Err(error) => {
                console::say(&format!("memory profile of {label} FAILED: {error:#}"));
                driver
                    .dir
                    .note(&[&format!("Memory profile of {label} failed: {error:#}")]);
            }
        }
    }
    if let Err(error) = std::fs::write(driver.dir.path.join("memory.tsv"), tsv) {
        driver.failures.push(format!("memory.tsv: {error}"));
    }
}

fn profile_one(driver: &mut Driver, label: &str, count: u64) -> anyhow::Result<String> {
    let def = driver
        .sweep
        .server(label)
        .ok_or_else(|| anyhow::anyhow!("no server {label}"))?
        .clone();
    // The RSS comes from a run without heaptrack, whose own buffers (one per
    // thread) would count against a server with a thread per connection.
    let plain = hold_idle(driver, &def, &format!("rss-{label}"), count)?;
    let tag = format!("heap-{label}");
    let raw = driver.places.logs.join(format!("{tag}.raw"));
    let interpreted = driver.places.logs.join(format!("{tag}.txt"));
    let mut traced = def;
    traced.env.insert("LD_PRELOAD".into(), PRELOAD.into());
    traced
        .env
        .insert("DUMP_HEAPTRACK_OUTPUT".into(), raw.display().to_string());
    let held = hold_idle(driver, &traced, &tag, count)?;
    let interpreting = Command::new(INTERPRET)
        .stdin(File::open(&raw)?)
        .stdout(File::create(&interpreted)?)
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(interpreting.success(), "{INTERPRET} failed");
    let printed = Command::new("heaptrack_print")
        .arg("-f")
        .arg(&interpreted)
        .args(["--print-peaks", "1", "--print-allocators", "0"])
        .args(["--print-temporary", "0", "--print-leaks", "0"])
        .args([
            "--peak-limit",
            &PEAKS.to_string(),
            "--merge-backtraces",
            "0",
        ])
        .stderr(Stdio::null())
        .output()?;
    anyhow::ensure!(printed.status.success(), "heaptrack_print failed");
    let _ = std::fs::remove_file(&raw);
    let rss = plain
        .rss_per_connection_kib
        .map_or_else(String::new, |kib| format!("{kib:.2}"));
    let per = held.opened as f64;
    let mut out = String::new();
    for ((site, via), (bytes, calls)) in sites(&String::from_utf8_lossy(&printed.stdout)) {
        let _ = writeln!(
            out,
            "{label}\t{}\t{rss}\t{site}\t{via}\t{:.0}\t{:.2}",
            held.opened,
            bytes / per,
            calls / per
        );
    }
    Ok(out)
}

/// One peak consumer of heaptrack's list: bytes, calls, and the frames
/// (function, source location), innermost first.
#[derive(Debug, Default)]
struct Peak {
    bytes: f64,
    calls: f64,
    frames: Vec<(String, String)>,
}

/// The peak consumers, added up by (site, via): bytes and calls.
fn sites(printed: &str) -> BTreeMap<(String, String), (f64, f64)> {
    let mut out: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for peak in peaks(printed) {
        let site = peak
            .frames
            .iter()
            .find(|(_, at)| !is_std(at))
            .map_or_else(|| "the standard library".to_owned(), frame_name);
        let via = peak
            .frames
            .iter()
            .find(|(_, at)| is_ours(at))
            .map_or_else(String::new, frame_name);
        let entry = out.entry((site, via)).or_default();
        entry.0 += peak.bytes;
        entry.1 += peak.calls;
    }
    out
}

/// Parses `heaptrack_print --print-peaks 1 --merge-backtraces 0`: each
/// consumer starts with `3.33M peak memory consumed over 2001 calls from`,
/// then its frames, a function name and an indented `at FILE:LINE` each.
fn peaks(printed: &str) -> Vec<Peak> {
    let mut out: Vec<Peak> = Vec::new();
    let mut function: Option<String> = None;
    for line in printed.lines() {
        if let Some((bytes, calls)) = consumer(line) {
            out.push(Peak {
                bytes,
                calls,
                frames: Vec::new(),
            });
            function = None;
            continue;
        }
        let Some(peak) = out.last_mut() else {
            continue;
        };
        let text = line.trim();
        if let Some(at) = text.strip_prefix("at ") {
            if let Some(name) = function.take() {
                peak.frames.push((name, at.to_owned()));
            }
        } else if line.starts_with("  ") && !text.starts_with("in ") && !text.is_empty() {
            function = Some(text.to_owned());
        } else if !line.starts_with(' ') {
            // The list's end, or another section.
            function = None;
        }
    }
    out
}

/// `(bytes, calls)` of a consumer's first line.
fn consumer(line: &str) -> Option<(f64, f64)> {
    let (size, rest) = line.split_once(" peak memory consumed over ")?;
    let calls = rest.strip_suffix(" calls from")?.trim().parse().ok()?;
    Some((bytes(size.trim())?, calls))
}

/// heaptrack's sizes: `472B`, `4.10K`, `3.33M`, `1.2G` (powers of 1,000).
fn bytes(size: &str) -> Option<f64> {
    let unit = size.chars().last()?;
    let value: f64 = size[..size.len() - unit.len_utf8()].parse().ok()?;
    let scale = match unit {
        'B' => 1.0,
        'K' => 1e3,
        'M' => 1e6,
        'G' => 1e9,
        _ => return None,
    };
    Some(value * scale)
}

/// Rust's standard library and the C library: not where a connection's
/// memory is decided.
fn is_std(at: &str) -> bool {
    at.starts_with("/rustc/") || at.starts_with("library/") || !at.contains(".rs:")
}

/// This workspace's code.
fn is_ours(at: &str) -> bool {
    at.contains("crates/") && !at.contains("/registry/")
}

/// `function (crate path/file.rs:line)`, the crate's directory without the
/// registry's prefix, our files as they are in the repository.
fn frame_name((function, at): &(String, String)) -> String {
    let place = match at.find("/registry/src/") {
        Some(i) => at[i..].splitn(5, '/').nth(4).unwrap_or(at).to_owned(),
        None => match at.find("crates/") {
            Some(i) => at[i..].to_owned(),
            None => at.clone(),
        },
    };
    let function = function.trim_end_matches("<>");
    format!("{function} ({place})")
}

/// Starts `def`, holds `count` idle connections to it, stops it: what the
/// load generator measured.
fn hold_idle(
    driver: &mut Driver,
    def: &ServerDef,
    tag: &str,
    count: u64,
) -> anyhow::Result<ConnectionsResults> {
    let mut fleet = Fleet::default();
    let start = ServerStart {
        def,
        binaries: Binaries::Current,
        flags: &[],
        redis_urls: &[],
        cpus: None,
        cores: driver.cpus.all.len(),
    };
    fleet.start_server(&start, &driver.places, tag)?;
    let pid = fleet.servers[0].process.pid().unwrap_or(0);
    let target = Target {
        label: def.label.clone(),
        urls: vec![fleet.servers[0].process.url()],
        server_pids: vec![pid],
        sample_pids: Vec::new(),
        commit: driver.commit.clone(),
    };
    let spec = LoadSpec {
        count: Some(count),
        hold: Some(HOLD_S),
        ..LoadSpec::default()
    };
    let load = plan::load(
        Scenario::Connections,
        &spec,
        driver.fd_room,
        driver.sweep.limits.connections_per_source_addr,
    )?;
    driver.dir.note(&[
        "",
        "```sh",
        &scenario::command_line(&load, &target, &Tags::default()),
        "```",
    ]);
    let record = scenario::run(&load, &target, &Tags::default(), &RunOptions::default());
    let stopping = fleet.stop(driver.places.stop_timeout);
    driver.dir.note(&[&format!(
        "{tag}: stopped: {}.",
        stopping.outcomes.join(", ")
    )]);
    let Results::Connections(held) = record?.results else {
        anyhow::bail!("not a connections record");
    };
    anyhow::ensure!(held.opened > 0, "no connection opened");
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINTED: &str = "\
reading file...
PEAK MEMORY CONSUMERS
3.33M peak memory consumed over 2001 calls from
  _RNvCsfLfy6EI15iL_7___rustc11___rdl_alloc
    at library/std/src/alloc.rs:455
  alloc
    at /rustc/5980/library/alloc/src/alloc.rs:95
    in /work/main/target/release/chat-async
  new<>
    at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/core.rs:261
  spawn
    at crates/server-async/src/writer.rs:140
973.82K peak memory consumed over 1902 calls from
  alloc
    at /rustc/5980/library/alloc/src/alloc.rs:95
  new<>
    at /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/runtime/task/core.rs:261
  {async_fn#0}
    at crates/server-async/src/connection.rs:94
472B peak memory consumed over 1 calls from
  alloc
    at /rustc/5980/library/alloc/src/alloc.rs:95

MOST TEMPORARY ALLOCATIONS
";

    #[test]
    fn consumers_are_read_with_their_frames() {
        let peaks = peaks(PRINTED);
        assert_eq!(peaks.len(), 3);
        assert_eq!(peaks[0].bytes, 3.33e6);
        assert_eq!(peaks[0].calls, 2001.0);
        assert_eq!(peaks[0].frames.len(), 4);
        assert_eq!(peaks[1].bytes, 973_820.0);
        assert_eq!(peaks[2].bytes, 472.0);
    }

    #[test]
    fn sites_are_the_first_frame_outside_std_and_ours_on_the_way() {
        let sites = sites(PRINTED);
        let task = "new (tokio-1.54.1/src/runtime/task/core.rs:261)".to_owned();
        assert_eq!(
            sites[&(
                task.clone(),
                "spawn (crates/server-async/src/writer.rs:140)".to_owned()
            )],
            (3.33e6, 2001.0)
        );
        assert!(sites.contains_key(&(
            task,
            "{async_fn#0} (crates/server-async/src/connection.rs:94)".to_owned()
        )));
        assert!(sites.contains_key(&("the standard library".to_owned(), String::new())));
    }
}
