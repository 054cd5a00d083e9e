//! The processes of one run: its servers (one or several, sharing rooms
//! through Redis) and the Redis servers of the sweep's own, started afresh
//! for every run (clean RSS, thread and CPU figures, and a crash cannot
//! leak into the next run) and stopped after it, servers first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chat_testkit::RedisServer;
use chat_testkit::launch::{Launch, Launched, Stopped};

use crate::sweep::{Binaries, Kind, ServerDef};

/// Where the binaries and logs are, and the bounded waits.
#[derive(Debug, Clone)]
pub struct Places {
    /// Today's binaries.
    pub bin: PathBuf,
    /// The baseline's binaries, with `--baseline`.
    pub baseline_bin: Option<PathBuf>,
    /// Cargo's target directory.
    pub target: PathBuf,
    /// The servers' logs of this sweep.
    pub logs: PathBuf,
    /// How long a server may take to print its address.
    pub ready_timeout: Duration,
    /// How long a server may take to exit after `SIGTERM`.
    pub stop_timeout: Duration,
}

/// How one server process of a run is started.
#[derive(Debug, Clone)]
pub struct ServerStart<'a> {
    /// Its definition.
    pub def: &'a ServerDef,
    /// Today's binaries or the baseline's (ours only).
    pub binaries: Binaries,
    /// Extra flags (ours only; `{db}` already replaced).
    pub flags: &'a [String],
    /// The Redis URLs it shares rooms through (none: in memory).
    pub redis_urls: &'a [String],
    /// The cores it may use, as a `taskset -c` list (none: every core).
    pub cpus: Option<&'a str>,
    /// How many cores that is (`{cores}`).
    pub cores: usize,
}

impl ServerStart<'_> {
    /// The launch: program, arguments and environment with every
    /// placeholder replaced, under `taskset` when pinned.
    pub fn launch(&self, places: &Places, log_stem: &Path) -> anyhow::Result<Launch> {
        let bin = match self.binaries {
            Binaries::Current => &places.bin,
            Binaries::Baseline => places
                .baseline_bin
                .as_ref()
                .context("a baseline setting needs --baseline REV")?,
        };
        let fill = |text: &str| {
            text.replace("{bin}", &bin.display().to_string())
                .replace("{target}", &places.target.display().to_string())
                .replace("{cores}", &self.cores.to_string())
        };
        let program = fill(&self.def.program);
        let mut args: Vec<String> = self.def.args.iter().map(|a| fill(a)).collect();
        args.extend(self.def.cores_args.iter().map(|a| fill(a)));
        if self.def.kind == Kind::Ours {
            args.extend(self.flags.iter().cloned());
        }
        for url in self.redis_urls {
            args.extend(self.def.redis_args.iter().map(|a| a.replace("{url}", url)));
        }
        let mut launch = match self.cpus {
            Some(cpus) => Launch::new("taskset").args(["-c", cpus, &program]),
            None => Launch::new(&program),
        }
        .args(args)
        .logs(log_stem)
        .ready_within(
            self.def
                .ready_timeout_s
                .map_or(places.ready_timeout, Duration::from_secs_f64),
        );
        for (name, value) in &self.def.env {
            launch = launch.env(name, fill(value));
        }
        if let Some(name) = &self.def.redis_env
            && !self.redis_urls.is_empty()
        {
            launch = launch.env(name, self.redis_urls.join(","));
        }
        if self.def.process_group {
            launch = launch.own_process_group();
        }
        Ok(launch)
    }
}

/// A started server process of a run.
#[derive(Debug)]
pub struct Member {
    /// Its label.
    pub label: String,
    /// The process.
    pub process: Launched,
    /// Its logs, without the extension.
    pub log_stem: PathBuf,
}

/// Every process of one run.
#[derive(Default)]
pub struct Fleet {
    /// Its servers, in URL order.
    pub servers: Vec<Member>,
    /// Its Redis servers (shards), in shard order.
    pub redis: Vec<RedisServer>,
}

/// How stopping a fleet went.
#[derive(Debug, Default)]
pub struct Stopping {
    /// One phrase per process: "sync exit status: 0".
    pub outcomes: Vec<String>,
    /// The processes that did not end well, with the tail of their stderr.
    pub failures: Vec<String>,
}

impl Fleet {
    /// Starts `shards` Redis servers.
    pub fn start_redis(&mut self, shards: usize) -> anyhow::Result<()> {
        for _ in 0..shards {
            self.redis.push(RedisServer::try_start()?);
        }
        Ok(())
    }

    /// The Redis URLs, in shard order.
    pub fn redis_urls(&self) -> Vec<String> {
        self.redis.iter().map(RedisServer::url).collect()
    }

    /// Starts one server; `run` names the run in its log file.
    pub fn start_server(
        &mut self,
        start: &ServerStart<'_>,
        places: &Places,
        run: &str,
    ) -> anyhow::Result<()> {
        let log_stem = places.logs.join(format!(
            "{run}-{}-{}",
            start.def.label,
            self.servers.len() + 1
        ));
        let launch = start.launch(places, &log_stem)?;
        let command = launch.command_line();
        let process = launch.start().with_context(|| {
            format!(
                "{} did not start ({command}); its log: {}.err",
                start.def.label,
                log_stem.display()
            )
        })?;
        self.servers.push(Member {
            label: start.def.label.clone(),
            process,
            log_stem,
        });
        Ok(())
    }

    /// Stops the servers (`SIGTERM`, then `SIGKILL` past the deadline),
    /// then the Redis servers. A server ends well when it exits 0, or is
    /// ended by the `SIGTERM` itself (Node.js and Go servers without a
    /// handler of their own).
    pub fn stop(mut self, deadline: Duration) -> Stopping {
        let mut stopping = Stopping::default();
        for member in &mut self.servers {
            match member.process.stop(deadline) {
                Ok(stopped) => {
                    stopping
                        .outcomes
                        .push(format!("{} {stopped}", member.label));
                    if !ended_well(&stopped) {
                        stopping.failures.push(format!(
                            "{} {stopped}; stderr ends: {}",
                            member.label,
                            tail(&member.log_stem.with_extension("err"), 3)
                        ));
                    }
                }
                Err(error) => stopping
                    .failures
                    .push(format!("{}: {error:#}", member.label)),
            }
        }
        for redis in &mut self.redis {
            if redis.is_running() {
                redis.stop();
            }
        }
        stopping
    }
}

fn ended_well(stopped: &Stopped) -> bool {
    use std::os::unix::process::ExitStatusExt;
    !stopped.killed && (stopped.status.success() || stopped.status.signal() == Some(15))
}

/// The last `lines` lines of a log, on one line.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let tail = all[start..].join(" | ");
    if tail.is_empty() {
        "(empty)".to_owned()
    } else {
        tail
    }
}
