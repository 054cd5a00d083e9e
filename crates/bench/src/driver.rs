//! Walks a sweep: for each experiment, each server (or mixed room), each
//! setting and each step, one run on fresh processes; the ladder stops as
//! the experiment's rule says; every run's record goes to `runs.jsonl` and
//! one line to the console.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use chat_loadgen::scenario::{self, RunOptions, Tags, Target};
use chat_loadgen::summary;
use chat_record::verdict::{self, Verdict};
use chat_record::{Record, Results};

use crate::console;
use crate::fleet::{Fleet, Places, ServerStart};
use crate::limits::Raised;
use crate::plan;
use crate::rundir::RunDir;
use crate::sweep::{
    Binaries, Experiment, Group, Kind, LoadSpec, Scenario, Servers, Setting, Stop, Sweep,
};

/// Where the servers and the load generator run.
#[derive(Debug, Clone)]
pub struct Cpus {
    /// Every core this process may use.
    pub all: Vec<usize>,
    /// `--server-cpus`.
    pub server: Option<Vec<usize>>,
    /// `--loadgen-cpus`.
    pub loadgen: Option<Vec<usize>>,
}

/// A `taskset -c` list.
pub fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A run's cores: the server's and the load generator's (none: unpinned).
type Pinned = (Option<Vec<usize>>, Option<Vec<usize>>);

/// The state of a sweep in progress.
pub struct Driver {
    /// The sweep.
    pub sweep: Sweep,
    /// Its file.
    pub sweep_path: std::path::PathBuf,
    /// Binaries, logs, waits.
    pub places: Places,
    /// The run directory.
    pub dir: RunDir,
    /// This checkout's commit.
    pub commit: String,
    /// Descriptors a process may give to connections.
    pub fd_room: u64,
    /// The servers measured (admitted), in the servers file's order.
    pub active: Vec<String>,
    /// Pinning.
    pub cpus: Cpus,
    /// `--baseline`: the revision and its commit.
    pub baseline: Option<(String, String)>,
    /// `--django`.
    pub django: bool,
    /// What went wrong, one line each.
    pub failures: Vec<String>,
    /// Sentences on kernel settings raised, for machine.json.
    pub raised: Vec<String>,
    /// Per server and client count: the most deliveries/s made in one room
    /// in a normal run that lost nothing (for the half-peak run).
    peaks: BTreeMap<(String, u64), f64>,
    run: usize,
    most: usize,
    /// Fresh SQLite files for `{db}`.
    db_dir: tempfile::TempDir,
    /// Set by SIGINT or SIGTERM: no new run starts.
    pub interrupted: Arc<AtomicBool>,
}

/// One group of server processes a run drives: one server, several
/// processes of it, or a mixed room.
#[derive(Debug, Clone)]
struct Group_ {
    /// The record's label: the server, or the servers joined with `+`.
    label: String,
    /// One label per process, in URL order.
    processes: Vec<String>,
}

impl Driver {
    /// A driver for `sweep`, writing into `dir`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sweep: Sweep,
        sweep_path: std::path::PathBuf,
        places: Places,
        dir: RunDir,
        commit: String,
        fd_limit: u64,
        cpus: Cpus,
        baseline: Option<(String, String)>,
        django: bool,
        interrupted: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let fd_room = fd_limit.saturating_sub(sweep.limits.fd_margin);
        Ok(Self {
            sweep,
            sweep_path,
            places,
            dir,
            commit,
            fd_room,
            active: Vec::new(),
            cpus,
            baseline,
            django,
            failures: Vec::new(),
            raised: Vec::new(),
            peaks: BTreeMap::new(),
            run: 0,
            most: 0,
            db_dir: tempfile::Builder::new()
                .prefix("chat-bench-history-")
                .tempdir()
                .context("cannot create a directory for the history files")?,
            interrupted,
        })
    }

    fn enabled(&self, experiment: &Experiment) -> bool {
        match experiment.only_with {
            None => true,
            Some(crate::sweep::Option_::Django) => self.django,
            Some(crate::sweep::Option_::Baseline) => self.baseline.is_some(),
        }
    }

    /// The active servers an experiment runs.
    fn servers_of(&self, experiment: &Experiment) -> Vec<String> {
        self.active
            .iter()
            .filter(|label| match &experiment.servers {
                Servers::Group(Group::All) => true,
                Servers::Group(Group::Ours) => self
                    .sweep
                    .server(label)
                    .is_some_and(|d| d.kind == Kind::Ours),
                Servers::Labels(labels) => labels.contains(label),
            })
            .cloned()
            .collect()
    }

    /// Counts the runs of every enabled experiment (at most), for the
    /// console.
    pub fn plan(&mut self) {
        let experiments = self.sweep.experiments.clone();
        self.most = experiments
            .iter()
            .filter(|e| self.enabled(e))
            .map(|e| {
                let servers = self.servers_of(e);
                let labels: Vec<&str> = servers.iter().map(String::as_str).collect();
                plan::most_runs(&self.sweep, e, &labels, self.fd_room)
            })
            .sum();
    }

    /// Runs every enabled experiment.
    pub fn run_experiments(&mut self) {
        let experiments = self.sweep.experiments.clone();
        for experiment in &experiments {
            if !self.enabled(experiment) {
                continue;
            }
            if self.interrupted.load(Ordering::Relaxed) {
                return;
            }
            self.experiment(experiment);
        }
    }

    fn experiment(&mut self, experiment: &Experiment) {
        let servers = self.servers_of(experiment);
        self.dir.note(&[
            "",
            &format!("### {}", experiment.name),
            "",
            &experiment.about,
        ]);
        let raised = Raised::raise(&experiment.sysctl);
        for note in &raised.notes {
            console::say(note);
            self.dir.note(&["", note]);
            self.raised
                .push(format!("{} ({} experiment)", note, experiment.name));
        }
        if experiment.settings.is_empty() {
            for label in &servers {
                let group = Group_ {
                    label: label.clone(),
                    processes: vec![label.clone()],
                };
                self.ladder(experiment, &[(group, None)]);
            }
        } else {
            for label in &servers {
                let units: Vec<(Group_, Option<&Setting>)> = experiment
                    .settings
                    .iter()
                    .filter(|s| s.mix.is_none() && plan::applies(&self.sweep, s, label))
                    .map(|s| {
                        let processes = vec![label.clone(); s.processes.unwrap_or(1)];
                        (
                            Group_ {
                                label: label.clone(),
                                processes,
                            },
                            Some(s),
                        )
                    })
                    .collect();
                if experiment.interleave {
                    self.ladder(experiment, &units);
                } else {
                    for unit in units {
                        self.ladder(experiment, std::slice::from_ref(&unit));
                    }
                }
            }
            for setting in experiment.settings.iter().filter(|s| s.mix.is_some()) {
                let mix = setting.mix.clone().unwrap_or_default();
                if let Some(missing) = mix.iter().find(|l| !self.active.contains(l)) {
                    self.dir
                        .note(&["", &format!("Not run: {missing} is not in this sweep.")]);
                    continue;
                }
                let group = Group_ {
                    label: mix.join("+"),
                    processes: mix,
                };
                self.ladder(experiment, &[(group, Some(setting))]);
            }
        }
        drop(raised);
    }

    /// One ladder: every unit (setting) at each step, until the stop rule
    /// says none held.
    fn ladder(&mut self, experiment: &Experiment, units: &[(Group_, Option<&Setting>)]) {
        let Some((_, first)) = units.first() else {
            return;
        };
        let (steps, cut) = plan::steps(experiment, *first, self.fd_room);
        if let Some(cut) = cut {
            self.dir.note(&["", &cut]);
        }
        for step in &steps {
            let mut held = false;
            for (group, setting) in units {
                if self.interrupted.load(Ordering::Relaxed) {
                    return;
                }
                let spec = match experiment.scenario {
                    Scenario::HalfPeak => match self.half_peak(&group.label, step) {
                        Some(spec) => spec,
                        None => {
                            self.dir.note(&["", &format!("No half-peak run for `{}`: no run at {} clients in one room lost nothing.", group.label, step.clients.unwrap_or(0))]);
                            continue;
                        }
                    },
                    _ => step.clone(),
                };
                let record = self.run_case(experiment, group, *setting, &spec, None);
                held |= self.held(experiment.stop, record.as_ref());
                if experiment.paired && setting.is_some() {
                    let note = format!(
                        "today's binaries, right after the {} run",
                        setting.map_or("", |s| s.variant.as_str())
                    );
                    self.run_case(experiment, group, None, &spec, Some(&note));
                }
            }
            if !held && experiment.stop != Stop::Never {
                let names: Vec<&str> = units.iter().map(|(g, _)| g.label.as_str()).collect();
                self.dir
                    .note(&["", &format!("The ladder stops here for `{}`.", names[0])]);
                break;
            }
        }
    }

    /// Whether a run lets its ladder go on.
    fn held(&self, stop: Stop, record: Option<&Record>) -> bool {
        let Some(record) = record else {
            return false;
        };
        match stop {
            Stop::Never => true,
            Stop::NotKeptUp => verdict::judge_record(record).is_some_and(|j| j.kept_up()),
            Stop::NotOpenedAll => match &record.results {
                Results::Connections(c) => c.opened == c.target,
                _ => false,
            },
        }
    }

    /// The half-peak step of server `label`: half the most deliveries/s it
    /// made at the step's clients, as a rate of the one sender.
    fn half_peak(&self, label: &str, step: &LoadSpec) -> Option<LoadSpec> {
        let clients = step.clients?;
        let peak = self.peaks.get(&(label.to_owned(), clients))?;
        let rate = (peak / 2.0 / clients as f64).floor();
        (rate >= 1.0).then(|| LoadSpec {
            rate: Some(rate),
            ..step.clone()
        })
    }

    /// Notes a normal run at one room and one sender as a peak candidate
    /// if it kept up or only fell behind (nothing lost, nobody refused or
    /// closed): what the server sustained.
    fn note_peak(&mut self, group: &Group_, record: &Record) {
        let p = &record.params;
        if p.variant.is_some() || p.rooms != Some(1) || p.senders_per_room != Some(1) {
            return;
        }
        let (Some(clients), Some(judgement)) = (p.clients, verdict::judge_record(record)) else {
            return;
        };
        if matches!(judgement.verdict, Verdict::KeptUp | Verdict::FellBehind) {
            let best = self
                .peaks
                .entry((group.label.clone(), clients))
                .or_insert(0.0);
            *best = best.max(judgement.delivered_per_s);
        }
    }

    /// One run: fresh processes, the load, the record, the processes
    /// stopped. `current_after` makes it the `current` half of a pair.
    fn run_case(
        &mut self,
        experiment: &Experiment,
        group: &Group_,
        setting: Option<&Setting>,
        spec: &LoadSpec,
        current_after: Option<&str>,
    ) -> Option<Record> {
        self.run += 1;
        let tag = format!("{:04}-{}", self.run, experiment.name);
        let started = Instant::now();
        let line_head = console::head(
            self.run,
            self.most,
            &group.label,
            experiment,
            setting,
            current_after,
        );
        let result = self.run_case_inner(experiment, group, setting, spec, current_after, &tag);
        let seconds = started.elapsed().as_secs_f64();
        match result {
            Ok((record, stopping)) => {
                let what = console::outcome(&record);
                let mut line = format!("{line_head}: {what} ({seconds:.0} s)");
                if !stopping.failures.is_empty() {
                    line.push_str(&format!("; stopping: {}", stopping.failures.join("; ")));
                    self.failures.push(format!(
                        "{tag} {}: {}",
                        group.label,
                        stopping.failures.join("; ")
                    ));
                }
                console::say(&line);
                self.dir.note(&[&format!(
                    "Outcome: {what}; {}.",
                    stopping.outcomes.join(", ")
                )]);
                for failure in &stopping.failures {
                    self.dir
                        .note(&["", &format!("Stopping did not end well: {failure}")]);
                }
                self.note_peak(group, &record);
                Some(record)
            }
            Err(error) => {
                console::say(&format!("{line_head}: FAILED: {error:#}"));
                self.dir.note(&["", &format!("Failed: {error:#}")]);
                self.failures
                    .push(format!("{tag} {}: {error:#}", group.label));
                None
            }
        }
    }

    fn run_case_inner(
        &mut self,
        experiment: &Experiment,
        group: &Group_,
        setting: Option<&Setting>,
        spec: &LoadSpec,
        current_after: Option<&str>,
        tag: &str,
    ) -> anyhow::Result<(Record, crate::fleet::Stopping)> {
        let load = plan::load(
            experiment.scenario,
            spec,
            self.fd_room,
            self.sweep.limits.connections_per_source_addr,
        )?;
        let (server_cpus, loadgen_cpus) = self.pinning(setting)?;
        let cores = server_cpus.as_ref().map_or(self.cpus.all.len(), Vec::len);
        let server_list = server_cpus.as_deref().map(cpu_list);
        let db = self.db_dir.path().join(format!("{tag}.sqlite"));
        let flags: Vec<String> = setting
            .map(|s| {
                s.flags
                    .iter()
                    .map(|f| f.replace("{db}", &db.display().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let binaries = setting.map_or(Binaries::Current, |s| s.binaries);
        let mut fleet = Fleet::default();
        let outcome = (|| -> anyhow::Result<Record> {
            fleet.start_redis(setting.and_then(|s| s.redis).unwrap_or(0))?;
            let redis_urls = fleet.redis_urls();
            for label in &group.processes {
                let def = self
                    .sweep
                    .server(label)
                    .with_context(|| format!("no server {label}"))?;
                let start = ServerStart {
                    def,
                    binaries,
                    flags: &flags,
                    redis_urls: &redis_urls,
                    cpus: server_list.as_deref(),
                    cores,
                };
                fleet.start_server(&start, &self.places, tag)?;
            }
            let target = Target {
                label: group.label.clone(),
                urls: fleet.servers.iter().map(|m| m.process.url()).collect(),
                server_pids: fleet
                    .servers
                    .iter()
                    .filter_map(|m| m.process.pid())
                    .collect(),
                sample_pids: fleet
                    .redis
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let name = if fleet.redis.len() == 1 {
                            "redis".to_owned()
                        } else {
                            format!("redis-{}", i + 1)
                        };
                        r.pid().map(|pid| (name, pid))
                    })
                    .collect(),
                commit: self.commit.clone(),
            };
            let tags = self.tags(
                group,
                setting,
                &flags,
                cores,
                current_after,
                &redis_urls,
                &server_list,
                &loadgen_cpus,
            );
            self.dir.note(&[
                "",
                "```sh",
                &scenario::command_line(&load, &target, &tags),
                "```",
            ]);
            let options = RunOptions {
                workers: loadgen_cpus.as_ref().map_or(self.cpus.all.len(), Vec::len),
                cpus: loadgen_cpus.clone(),
                progress: false,
            };
            let record = scenario::run(&load, &target, &tags, &options)?;
            std::fs::write(
                self.places
                    .logs
                    .join(format!("{tag}-{}.summary", group.label)),
                summary::render(&record),
            )
            .context("cannot write the run's summary")?;
            self.dir.append(&record)?;
            Ok(record)
        })();
        let stopping = fleet.stop(self.places.stop_timeout);
        let _ = std::fs::remove_file(&db);
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        Ok((outcome?, stopping))
    }

    /// The server's cores and the load generator's for a run.
    fn pinning(&self, setting: Option<&Setting>) -> anyhow::Result<Pinned> {
        let Some(cores) = setting.and_then(|s| s.cores) else {
            return Ok((self.cpus.server.clone(), self.cpus.loadgen.clone()));
        };
        let pool = self
            .cpus
            .server
            .clone()
            .unwrap_or_else(|| self.cpus.all.clone());
        anyhow::ensure!(
            cores <= pool.len(),
            "{cores} cores asked, {} available to the servers",
            pool.len()
        );
        let server = pool[pool.len() - cores..].to_vec();
        let loadgen = self.cpus.loadgen.clone().or_else(|| {
            let rest: Vec<usize> = self
                .cpus
                .all
                .iter()
                .copied()
                .filter(|c| !server.contains(c))
                .collect();
            (!rest.is_empty()).then_some(rest)
        });
        Ok((Some(server), loadgen))
    }

    /// What the record says beyond the load.
    #[allow(clippy::too_many_arguments)]
    fn tags(
        &self,
        group: &Group_,
        setting: Option<&Setting>,
        flags: &[String],
        cores: usize,
        current_after: Option<&str>,
        redis_urls: &[String],
        server_cpus: &Option<String>,
        loadgen_cpus: &Option<Vec<usize>>,
    ) -> Tags {
        let mut tags = Tags {
            server_cpus: server_cpus.clone(),
            loadgen_cpus: loadgen_cpus.as_deref().map(cpu_list),
            ..Tags::default()
        };
        if let Some(note) = current_after {
            tags.variant = Some("current".to_owned());
            tags.variant_note = Some(note.to_owned());
            return tags;
        }
        let Some(setting) = setting else {
            return tags;
        };
        let baseline = self
            .baseline
            .as_ref()
            .map_or("", |(_, commit)| &commit[..12.min(commit.len())]);
        tags.variant = Some(setting.variant.clone());
        tags.variant_note = Some(setting.note.replace("{baseline}", baseline));
        // The servers' flags beyond the usual ones, as they ran.
        let mut recorded = Vec::new();
        let labels: Vec<&String> = {
            let mut seen = Vec::new();
            for l in &group.processes {
                if !seen.contains(&l) {
                    seen.push(l);
                }
            }
            seen
        };
        for label in &labels {
            let Some(def) = self.sweep.server(label) else {
                continue;
            };
            // The cores flags are the usual ones, unless the setting sets
            // the cores.
            let mut parts: Vec<String> = if setting.cores.is_some() {
                def.cores_args
                    .iter()
                    .map(|a| a.replace("{cores}", &cores.to_string()))
                    .collect()
            } else {
                Vec::new()
            };
            if def.kind == Kind::Ours {
                parts.extend(flags.iter().cloned());
                for url in redis_urls {
                    parts.extend(def.redis_args.iter().map(|a| a.replace("{url}", url)));
                }
            } else if let Some(env) = &def.redis_env
                && !redis_urls.is_empty()
            {
                parts.push(format!("{env}={}", redis_urls.join(",")));
            }
            for (name, value) in &def.env {
                if setting.cores.is_some() && value.contains("{cores}") {
                    parts.push(format!(
                        "{name}={}",
                        value.replace("{cores}", &cores.to_string())
                    ));
                }
            }
            let text = parts.join(" ");
            if labels.len() > 1 {
                recorded.push(format!("{label}: {text}"));
            } else {
                recorded.push(text);
            }
        }
        let text = recorded.join("; ");
        tags.server_flags = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        tags
    }
}
