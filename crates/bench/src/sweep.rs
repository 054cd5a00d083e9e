//! The sweep as data: a TOML file (`scripts/sweep/*.toml`) that names the
//! servers, the experiments, their parameter ladders and their stop rules.
//!
//! The shape follows k6's scenarios and hyperfine's parameter lists: an
//! experiment is a base load, a ladder of steps that each override part of
//! it, a stop rule, and optionally settings (server flags, binaries, core
//! counts, Redis deployments) that each run the ladder again as a variant.
//! Nothing here runs anything: [`Sweep::load`] reads and checks the file,
//! and the driver walks it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use serde::Deserialize;
use thiserror::Error;

/// A sweep file that cannot be run.
#[derive(Debug, Error)]
pub enum SweepError {
    /// Not TOML, or not this schema.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// Well-formed, but inconsistent.
    #[error("experiment {experiment:?}: {problem}")]
    Invalid {
        /// The experiment's name.
        experiment: String,
        /// What is wrong.
        problem: String,
    },
}

/// One sweep file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// `quick` (a smoke run, not for conclusions) or `full`.
    pub mode: Mode,
    /// Bounded waits and margins.
    pub limits: Limits,
    /// The write floor, measured before and after the servers.
    pub floor: Floor,
    /// Where each server spends its CPU (`perf record`), after the rest.
    pub profile: Option<Profile>,
    /// The file of server definitions, relative to this file.
    #[serde(rename = "servers")]
    pub servers_file: String,
    /// Every server the sweep may run, in the report's order (read from
    /// `servers_file`).
    #[serde(skip)]
    pub servers: Vec<ServerDef>,
    /// The experiments, run in this order, each over its servers.
    #[serde(rename = "experiment")]
    pub experiments: Vec<Experiment>,
}

/// Whether a sweep is for conclusions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A smoke run: tiny counts.
    Quick,
    /// The sweep the report draws conclusions from.
    Full,
}

impl Mode {
    /// As `machine.json` records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Full => "full",
        }
    }
}

/// Bounded waits and margins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Seconds a server may take to print its address.
    pub ready_timeout_s: f64,
    /// Seconds a server may take to exit after `SIGTERM` before `SIGKILL`.
    pub stop_timeout_s: f64,
    /// Descriptors kept free beyond one per connection.
    pub fd_margin: u64,
    /// Connections per loopback source address (ephemeral ports).
    pub connections_per_source_addr: u64,
}

/// The write floor's parameters (`chat-loadgen floor`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floor {
    /// Loopback connection pairs.
    pub connections: usize,
    /// Seconds per batch size.
    pub seconds: f64,
}

/// The profiles' parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Servers profiled.
    pub servers: Vec<String>,
    /// Clients in the one room.
    pub clients: u64,
    /// Rates profiled, msg/s of the one sender.
    pub rates: Vec<f64>,
    /// Seconds sampled.
    pub seconds: u64,
    /// Idle connections each of our servers holds for its memory profile
    /// (`memory`); none: no memory profile.
    #[serde(default)]
    pub idle_connections: Option<u64>,
}

/// Which side of the comparison a server is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// chat-sync, chat-async.
    Ours,
    /// `peers/`: run unless `--no-peers`, after an admission check.
    Reference,
    /// The Django Channels tutorial chat: only with `--django`.
    Django,
}

/// How to start one server. In `program`, `args` and `env`, `{bin}` is the
/// directory of the binaries under test, `{target}` Cargo's target
/// directory and `{cores}` the cores the server may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDef {
    /// The label its runs carry.
    pub label: String,
    /// What it is, in words.
    pub name: String,
    /// Ours, a reference server, or Django.
    pub kind: Kind,
    /// The program.
    pub program: String,
    /// Its arguments (it must listen on an ephemeral port of 127.0.0.1).
    #[serde(default)]
    pub args: Vec<String>,
    /// Arguments that say how many cores it may use (`--workers {cores}`).
    #[serde(default)]
    pub cores_args: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Arguments given once per Redis URL, `{url}` standing for it.
    #[serde(default)]
    pub redis_args: Vec<String>,
    /// Or: the variable that takes the Redis URLs, comma-separated.
    pub redis_env: Option<String>,
    /// Runs in a process group of its own (a script and what it starts).
    #[serde(default)]
    pub process_group: bool,
    /// Seconds it may take to print its address, beyond the default.
    pub ready_timeout_s: Option<f64>,
    /// Its settings that bear on the comparison, in words.
    pub settings: String,
    /// How it uses cores, in words.
    pub cores: String,
    /// Files that must exist for it to run (relative to the repository),
    /// and the command that installs them, when missing.
    #[serde(default)]
    pub needs: Vec<String>,
}

/// One experiment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Its name, in the console and the README.
    pub name: String,
    /// What it asks, in words, for the README.
    pub about: String,
    /// The servers it runs: `all`, `ours`, or labels.
    #[serde(default)]
    pub servers: Servers,
    /// What the load generator runs.
    pub scenario: Scenario,
    /// The base load; each ladder step overrides part of it.
    #[serde(default)]
    pub load: LoadSpec,
    /// The steps, in order (none: the base load once).
    #[serde(default)]
    pub ladder: Vec<LoadSpec>,
    /// When a server's ladder stops.
    #[serde(default)]
    pub stop: Stop,
    /// Each run again per setting, as a variant (none: normal runs).
    #[serde(default, rename = "setting")]
    pub settings: Vec<Setting>,
    /// Run every setting at a step before the next step (and stop only when
    /// none kept up), instead of each setting's whole ladder in turn.
    #[serde(default)]
    pub interleave: bool,
    /// Follow each run with the same run on today's binaries as they are
    /// (variant `current`), for before/after pairs.
    #[serde(default)]
    pub paired: bool,
    /// Only with this option of the command line.
    pub only_with: Option<Option_>,
    /// Kernel settings raised (never lowered) for this experiment and
    /// restored after it, as root.
    #[serde(default)]
    pub sysctl: BTreeMap<String, u64>,
}

/// An option of the command line an experiment may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Option_ {
    /// `--django`.
    Django,
    /// `--baseline REV`.
    Baseline,
}

/// Which servers an experiment runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Servers {
    /// `all` or `ours`.
    Group(Group),
    /// Labels.
    Labels(Vec<String>),
}

impl Default for Servers {
    fn default() -> Self {
        Self::Group(Group::All)
    }
}

/// A group of servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Every server the sweep runs.
    All,
    /// chat-sync and chat-async.
    Ours,
}

/// What the load generator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `chat-loadgen fanout`.
    Fanout,
    /// `chat-loadgen fanout` at half the most deliveries/s the server made
    /// at this load's clients in one room in a run that lost nothing.
    HalfPeak,
    /// `chat-loadgen capacity`.
    Capacity,
    /// `chat-loadgen connections`.
    Connections,
}

/// When a server's ladder stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// Every step runs.
    #[default]
    Never,
    /// At the first step that did not keep up (`chat_record::verdict`).
    NotKeptUp,
    /// At the first step that did not open every connection.
    NotOpenedAll,
}

/// A load, or the part of one a step overrides. Fan-out: clients, rooms,
/// senders, rate, payload, timing, busy room. Capacity: start, step, max,
/// slo_ms, senders, rate, payload, timing. Connections: count, hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LoadSpec {
    pub clients: Option<u64>,
    pub rooms: Option<u64>,
    pub senders: Option<u64>,
    pub rate: Option<f64>,
    pub payload: Option<usize>,
    pub warmup: Option<f64>,
    pub duration: Option<f64>,
    pub drain: Option<f64>,
    pub drain_max: Option<f64>,
    pub busy_clients: Option<u64>,
    pub busy_senders: Option<u64>,
    pub busy_rate: Option<f64>,
    pub start: Option<u64>,
    pub step: Option<u64>,
    pub max: Option<u64>,
    pub slo_ms: Option<f64>,
    pub count: Option<u64>,
    pub hold: Option<f64>,
}

impl LoadSpec {
    /// This load with every field `step` sets replaced.
    pub fn with(&self, step: &Self) -> Self {
        macro_rules! pick {
            ($($field:ident),*) => { Self { $($field: step.$field.or(self.$field)),* } };
        }
        pick!(
            clients,
            rooms,
            senders,
            rate,
            payload,
            warmup,
            duration,
            drain,
            drain_max,
            busy_clients,
            busy_senders,
            busy_rate,
            start,
            step,
            max,
            slo_ms,
            count,
            hold
        )
    }
}

/// One setting of an experiment: its runs are recorded as a variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The variant's name in the records.
    pub variant: String,
    /// What it is, in words (`{baseline}`: the baseline's commit).
    pub note: String,
    /// Only these servers (default: the experiment's).
    pub servers: Option<Vec<String>>,
    /// Extra flags for our servers (`{db}`: a fresh SQLite file).
    #[serde(default)]
    pub flags: Vec<String>,
    /// The binaries: today's (default) or the baseline's.
    #[serde(default)]
    pub binaries: Binaries,
    /// Processes of the server sharing rooms on Redis (default 1).
    pub processes: Option<usize>,
    /// Redis servers (shards) of the sweep's own (default: none).
    pub redis: Option<usize>,
    /// One process of each of these servers in one room (a mixed room).
    pub mix: Option<Vec<String>>,
    /// The server pinned to this many cores, and told so.
    pub cores: Option<usize>,
    /// This setting's own ladder, instead of the experiment's.
    pub ladder: Option<Vec<LoadSpec>>,
}

/// Which binaries of ours a setting runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binaries {
    /// Built from this checkout.
    #[default]
    Current,
    /// Built from `--baseline REV`.
    Baseline,
}

/// A file of server definitions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerDefs {
    server: Vec<ServerDef>,
}

impl Sweep {
    /// Reads and checks a sweep file, and the servers file it names.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let text = read(path)?;
        let mut sweep: Self =
            toml::from_str(&text).with_context(|| format!("{} is not a sweep", path.display()))?;
        let servers_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&sweep.servers_file);
        sweep.servers = Self::parse_servers(&read(&servers_path)?)
            .with_context(|| format!("in {}", servers_path.display()))?;
        sweep
            .check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(sweep)
    }

    /// Reads a servers file's text.
    pub fn parse_servers(text: &str) -> Result<Vec<ServerDef>, SweepError> {
        Ok(toml::from_str::<ServerDefs>(text)?.server)
    }

    /// Checks every experiment against the servers.
    pub fn check(&self) -> Result<(), SweepError> {
        for experiment in &self.experiments {
            experiment.check(self)?;
        }
        Ok(())
    }

    /// The server labelled `label`.
    pub fn server(&self, label: &str) -> Option<&ServerDef> {
        self.servers.iter().find(|s| s.label == label)
    }
}

impl Experiment {
    fn check(&self, sweep: &Sweep) -> Result<(), SweepError> {
        let invalid = |problem: String| SweepError::Invalid {
            experiment: self.name.clone(),
            problem,
        };
        let mut labels: Vec<&String> = match &self.servers {
            Servers::Labels(labels) => labels.iter().collect(),
            _ => Vec::new(),
        };
        for setting in &self.settings {
            labels.extend(setting.servers.iter().flatten());
            labels.extend(setting.mix.iter().flatten());
        }
        if let Some(unknown) = labels.iter().find(|l| sweep.server(l).is_none()) {
            return Err(invalid(format!("no server labelled {unknown:?}")));
        }
        let stop_fits = match self.stop {
            Stop::Never => true,
            Stop::NotKeptUp => self.scenario == Scenario::Fanout,
            Stop::NotOpenedAll => self.scenario == Scenario::Connections,
        };
        if !stop_fits {
            return Err(invalid(format!(
                "stop rule {:?} does not apply to a {:?} scenario",
                self.stop, self.scenario
            )));
        }
        if self.paired && self.settings.is_empty() {
            return Err(invalid("paired runs need settings".into()));
        }
        if self.interleave && self.settings.len() < 2 {
            return Err(invalid("interleave needs two settings or more".into()));
        }
        for setting in &self.settings {
            if setting.mix.is_some() && (setting.processes.is_some() || setting.cores.is_some()) {
                return Err(invalid(format!(
                    "setting {:?}: a mixed room is one process of each server",
                    setting.variant
                )));
            }
            if setting.processes.unwrap_or(1) > 1 && setting.redis.unwrap_or(0) == 0 {
                return Err(invalid(format!(
                    "setting {:?}: several processes share rooms only through Redis",
                    setting.variant
                )));
            }
            if setting.cores == Some(0) {
                return Err(invalid(format!(
                    "setting {:?}: zero cores",
                    setting.variant
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_sweeps_parse() {
        for name in ["full.toml", "quick.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/sweep")
                .join(name);
            let sweep = Sweep::load(&path).unwrap_or_else(|error| panic!("{name}: {error:#}"));
            assert!(sweep.server("sync").is_some() && sweep.server("async").is_some());
            assert!(
                sweep.experiments.iter().any(|e| e.name == "cores"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_step_overrides_only_what_it_sets() {
        let base = LoadSpec {
            clients: Some(1000),
            rate: Some(100.0),
            ..LoadSpec::default()
        };
        let step = LoadSpec {
            rate: Some(300.0),
            ..LoadSpec::default()
        };
        let load = base.with(&step);
        assert_eq!((load.clients, load.rate), (Some(1000), Some(300.0)));
    }

    #[test]
    fn inconsistent_experiments_are_refused() {
        let head = r#"
mode = "quick"
servers = "servers.toml"
limits = { ready_timeout_s = 10, stop_timeout_s = 20, fd_margin = 250, connections_per_source_addr = 20000 }
floor = { connections = 10, seconds = 0.1 }
"#;
        let servers = Sweep::parse_servers(
            r#"
[[server]]
label = "sync"
name = "chat-sync"
kind = "ours"
program = "{bin}/chat-sync"
settings = "defaults"
cores = "a thread per connection"
"#,
        )
        .expect("a servers file");
        let parse = |text: &str| -> Result<Sweep, SweepError> {
            let mut sweep: Sweep = toml::from_str(text)?;
            sweep.servers = servers.clone();
            sweep.check()?;
            Ok(sweep)
        };
        let unknown = format!(
            "{head}[[experiment]]\nname = \"x\"\nabout = \"\"\nscenario = \"fanout\"\nservers = [\"uws\"]\n"
        );
        let error = parse(&unknown).expect_err("uws is not defined");
        assert!(
            error.to_string().contains("no server labelled \"uws\""),
            "{error}"
        );
        let stop = format!(
            "{head}[[experiment]]\nname = \"x\"\nabout = \"\"\nscenario = \"capacity\"\nstop = \"not-kept-up\"\n"
        );
        assert!(parse(&stop).is_err());
        let typo = format!(
            "{head}[[experiment]]\nname = \"x\"\nabout = \"\"\nscenario = \"fanout\"\nload = {{ client = 1 }}\n"
        );
        assert!(parse(&typo).is_err(), "unknown fields are refused");
        let fine = format!(
            "{head}[[experiment]]\nname = \"x\"\nabout = \"\"\nscenario = \"fanout\"\nservers = \"ours\"\n"
        );
        let sweep = parse(&fine).expect("valid");
        assert_eq!(sweep.experiments[0].servers, Servers::Group(Group::Ours));
    }
}
