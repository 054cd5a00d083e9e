//! The channel-layer experiments of issue 6: rooms in one process's memory
//! against rooms on Redis pub/sub shared by several processes, two Redis
//! shards against one, and a room shared by chat-sync, chat-async and a
//! Django Channels process.
//!
//! `bench.sh` records these runs as variants (`chat-loadgen --variant`)
//! named `layer-…` ([`Kind`]): `layer-memory`, `layer-redis-<processes>`,
//! `layer-redis-shards-<shards>` and `layer-mixed-django`. They measure
//! servers run with other flags (`--layer`, `--redis-url`), several of
//! them at once, so, like every variant, they stay out of the main
//! figures; [`crate::data::Data`] keeps them in a list of their own and only
//! this section reads them.
//!
//! Everything here is read from the records themselves, never assumed from
//! the variant's name: the server processes (`server_processes`, one per
//! URL, or the one `server_process`), the Redis servers (the processes
//! sampled under the label `redis`, or `redis-<n>` for shards), and which
//! server each process is (the run's label: `sync`, or `sync+async+django`
//! for a mixed run, in the order of the URLs).

mod explain;
mod plot;
mod tables;

use std::fmt::Write as _;

use chat_loadgen::record::{ProcessFigures, Record};

use crate::data::server_order;
use crate::data::{Config, Data, Fanout, OWN_SERVERS};
use crate::plots::{PLOTS_DIR, Written};

pub use plot::{P99_PLOT, REDIS_PLOT, charts as plot_charts};

/// The variant prefix of every run of these experiments.
pub const PREFIX: &str = "layer-";

/// Share of the deliveries asked that a run must deliver, nothing lost,
/// late or closed, to have kept up: the rule `bench.sh` climbs its ladders
/// by (`kept_up`).
pub const KEPT_UP: f64 = 0.9;

/// Cores a process must use to count as saturated: Redis runs every
/// command on one thread, so near one core busy it can take no more, and
/// neither can a machine whose every core is near busy.
pub const SATURATED: f64 = 0.9;

/// Which experiment a run belongs to, from its variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `layer-memory`: one process, rooms in its memory (the reference).
    Memory,
    /// `layer-redis-<processes>`: processes of one server on one Redis.
    Redis,
    /// `layer-redis-shards-<shards>`: the same on several Redis shards.
    Shards,
    /// `layer-mixed-…`: processes of different servers in one room.
    Mixed,
}

impl Kind {
    /// The kind a variant name (after [`PREFIX`]) names, if any.
    fn parse(rest: &str) -> Option<Kind> {
        let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if rest == "memory" {
            Some(Kind::Memory)
        } else if let Some(n) = rest.strip_prefix("redis-shards-") {
            number(n).then_some(Kind::Shards)
        } else if let Some(n) = rest.strip_prefix("redis-") {
            number(n).then_some(Kind::Redis)
        } else if rest == "mixed" || rest.starts_with("mixed-") {
            Some(Kind::Mixed)
        } else {
            None
        }
    }
}

/// Whether a record belongs to these experiments (a variant named
/// `layer-…`), whatever the rest of its name: such a run is reported here
/// or nowhere.
pub fn is_layer_run(record: &Record) -> bool {
    record
        .params
        .variant
        .as_deref()
        .is_some_and(|v| v.starts_with(PREFIX))
}

/// One server process of a run.
#[derive(Debug, Clone, Copy)]
pub struct Process<'a> {
    /// Which server it is (`sync`, `async`, `django`).
    pub server: &'a str,
    /// Clients connected through its URL.
    pub clients: u64,
    /// Measured deliveries to those clients, when known.
    pub deliveries: Option<u64>,
    /// Its figures, sampled from `/proc`.
    pub figures: &'a ProcessFigures,
    /// The p99 latency of its clients' deliveries, microseconds, when the
    /// run counted them apart (several URLs) and any arrived.
    pub p99_us: Option<u64>,
}

impl Process<'_> {
    /// CPU seconds over the measured window, user and system.
    pub fn cpu_s(&self) -> f64 {
        self.figures.cpu_user_s + self.figures.cpu_system_s
    }
}

/// One run of these experiments.
#[derive(Debug, Clone, Copy)]
pub struct LayerRun<'a> {
    /// The fan-out run.
    pub run: Fanout<'a>,
    /// Which experiment.
    pub kind: Kind,
}

impl<'a> LayerRun<'a> {
    /// The run, if the record is a fan-out of these experiments of a known
    /// kind.
    pub fn of(record: &'a Record) -> Option<Self> {
        let rest = record.params.variant.as_deref()?.strip_prefix(PREFIX)?;
        Some(Self {
            kind: Kind::parse(rest)?,
            run: Fanout::of(record)?,
        })
    }

    /// The record.
    pub fn record(&self) -> &'a Record {
        self.run.record
    }

    /// The run's label: the server, or the servers of a mixed run joined
    /// with `+`.
    pub fn server(&self) -> &'a str {
        &self.run.record.server
    }

    /// What it was asked: rooms, clients, senders, rate.
    pub fn config(&self) -> Config {
        self.run.config()
    }

    /// Server processes driven: one per URL.
    pub fn process_count(&self) -> usize {
        let d = &self.record().deployment;
        d.server_processes.len().max(d.urls.len()).max(1)
    }

    /// The server processes sampled, in the order of the URLs, each named
    /// after its server (the `+`-joined label's parts, in URL order; every
    /// process is the label's server when it has no `+`).
    pub fn processes(&self) -> Vec<Process<'a>> {
        let record = self.record();
        let names: Vec<&'a str> = record.server.split('+').collect();
        let name = |i: usize| {
            if names.len() > 1 {
                names.get(i).copied().unwrap_or("?")
            } else {
                record.server.as_str()
            }
        };
        let per_url = &self.run.results.per_url;
        let url_p99 = |i: usize| {
            per_url
                .get(i)
                .filter(|u| u.latency_us.count > 0)
                .map(|u| u.latency_us.p99_us)
        };
        let d = &record.deployment;
        if d.server_processes.is_empty() {
            return record
                .server_process
                .iter()
                .map(|figures| Process {
                    server: name(0),
                    clients: record.params.clients.unwrap_or(0),
                    deliveries: Some(self.run.results.delivered),
                    figures,
                    p99_us: url_p99(0),
                })
                .collect();
        }
        d.server_processes
            .iter()
            .enumerate()
            .map(|(i, p)| Process {
                server: name(i),
                clients: p.clients,
                deliveries: p.deliveries,
                figures: &p.process,
                p99_us: url_p99(i),
            })
            .collect()
    }

    /// The Redis servers sampled (`redis`, or `redis-<n>` for shards), by
    /// label.
    pub fn redis(&self) -> Vec<(&'a str, &'a ProcessFigures)> {
        self.record()
            .deployment
            .sampled_processes
            .iter()
            .filter(|(label, _)| *label == "redis" || label.starts_with("redis-"))
            .map(|(label, figures)| (label.as_str(), figures))
            .collect()
    }

    /// Redis servers the rooms were on: 0 for the memory layer.
    pub fn shards(&self) -> usize {
        self.redis().len()
    }

    /// Messages per second the senders were asked for, in all.
    pub fn asked_messages_per_s(&self) -> Option<f64> {
        let c = self.config();
        Some(c.rooms? as f64 * c.senders? as f64 * c.rate()?)
    }

    /// Deliveries per second asked: each message to every member of its
    /// room.
    pub fn asked_deliveries_per_s(&self) -> Option<f64> {
        self.run.offered_deliveries_per_s()
    }

    /// Deliveries per second delivered.
    pub fn delivered_per_s(&self) -> f64 {
        self.run.results.deliveries_per_s
    }

    /// Members of each room.
    pub fn room_size(&self) -> Option<u64> {
        let c = self.config();
        Some(c.clients? / c.rooms?.max(1))
    }

    /// The rooms' p50 and p99 latency, microseconds, if anything arrived.
    pub fn latency_us(&self) -> Option<(u64, u64)> {
        let l = &self.run.results.latency_us;
        (l.count > 0).then_some((l.p50_us, l.p99_us))
    }

    /// The p99, microseconds, if anything arrived.
    pub fn p99_us(&self) -> Option<u64> {
        self.latency_us().map(|(_, p99)| p99)
    }

    /// The server processes' cores busy, added up.
    pub fn server_cores(&self) -> Option<f64> {
        let processes = self.processes();
        (!processes.is_empty()).then(|| processes.iter().map(|p| p.figures.cpu_utilization).sum())
    }

    /// The server processes' CPU seconds per 1,000 deliveries, added up.
    pub fn server_cpu_per_1000(&self) -> Option<f64> {
        let processes = self.processes();
        if processes.is_empty() {
            return None;
        }
        per_1000(
            processes.iter().map(Process::cpu_s).sum(),
            self.run.results.delivered,
        )
    }

    /// The Redis servers' cores busy, added up.
    pub fn redis_cores(&self) -> Option<f64> {
        let redis = self.redis();
        (!redis.is_empty()).then(|| redis.iter().map(|(_, f)| f.cpu_utilization).sum())
    }

    /// The busiest Redis server's cores busy.
    pub fn redis_busiest(&self) -> Option<f64> {
        self.redis()
            .iter()
            .map(|(_, f)| f.cpu_utilization)
            .max_by(f64::total_cmp)
    }

    fn redis_cpu_s(&self) -> Option<f64> {
        let redis = self.redis();
        (!redis.is_empty()).then(|| {
            redis
                .iter()
                .map(|(_, f)| f.cpu_user_s + f.cpu_system_s)
                .sum()
        })
    }

    /// The Redis servers' CPU seconds per 1,000 deliveries, added up.
    pub fn redis_cpu_per_1000(&self) -> Option<f64> {
        per_1000(self.redis_cpu_s()?, self.run.results.delivered)
    }

    /// The Redis servers' CPU per message sent, microseconds: one PUBLISH
    /// in, one copy out to each subscribed process.
    pub fn redis_us_per_message(&self) -> Option<f64> {
        let sent = self.run.results.sent;
        (sent > 0).then_some(self.redis_cpu_s()? * 1e6 / sent as f64)
    }

    /// The messages per second one Redis core would carry at this run's CPU
    /// per message, to as many processes: a projection, 1 s over
    /// [`LayerRun::redis_us_per_message`].
    pub fn redis_ceiling_messages_per_s(&self) -> Option<f64> {
        self.redis_us_per_message()
            .filter(|us| *us > 0.0)
            .map(|us| 1e6 / us)
    }

    /// The load generator's cores busy.
    pub fn loadgen_cores(&self) -> f64 {
        self.record().loadgen_process.cpu_utilization
    }

    /// Cores busy in all: servers, Redis and the load generator.
    pub fn cores_busy(&self) -> Option<f64> {
        Some(self.server_cores()? + self.redis_cores().unwrap_or(0.0) + self.loadgen_cores())
    }

    /// Whether it delivered what was asked: at least [`KEPT_UP`] of the
    /// deliveries per second asked, none lost, late or owed to closed
    /// members, no close at all.
    pub fn kept_up(&self) -> bool {
        let r = self.run.results;
        self.run.lost_nothing()
            && r.close_codes.is_empty()
            && self
                .asked_deliveries_per_s()
                .is_some_and(|asked| r.deliveries_per_s >= KEPT_UP * asked)
    }

    /// What limited it, from its figures and the machine's cores.
    pub fn limit(&self, cores: Option<u64>) -> Limit {
        if let Some(busiest) = self.redis_busiest().filter(|c| *c >= SATURATED) {
            return Limit::Redis(busiest);
        }
        if let (Some(busy), Some(cores)) = (self.cores_busy(), cores)
            && busy >= SATURATED * cores as f64
        {
            return Limit::Machine(busy, cores);
        }
        Limit::Unclear
    }

    /// The configuration, to group runs and order rows: kind, processes,
    /// shards.
    pub fn setup(&self) -> Setup {
        Setup {
            kind: self.kind,
            processes: self.process_count(),
            shards: self.shards(),
        }
    }

    /// The rate asked per sender, in thousandths, to compare exactly.
    fn rate_key(&self) -> Option<u64> {
        self.config().rate_milli
    }
}

/// CPU seconds per 1,000 deliveries, if there were any.
fn per_1000(cpu_s: f64, deliveries: u64) -> Option<f64> {
    (deliveries > 0).then(|| cpu_s * 1000.0 / deliveries as f64)
}

/// What held a run back, as far as its figures tell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// A Redis server near a whole core busy (its busiest, in cores).
    Redis(f64),
    /// Every core of the machine near busy: cores busy in all, and the
    /// machine's cores.
    Machine(f64, u64),
    /// Neither: no process sampled near its limit.
    Unclear,
}

/// A run's configuration: the layer, how many processes, how many shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Setup {
    /// The experiment.
    pub kind: Kind,
    /// Server processes.
    pub processes: usize,
    /// Redis servers (0: the memory layer).
    pub shards: usize,
}

impl Setup {
    /// `memory, 1 process`, `Redis, 4 processes`, `2 Redis shards, 4
    /// processes`.
    pub fn describe(&self) -> String {
        let processes = processes_text(self.processes);
        match (self.kind, self.shards) {
            (Kind::Memory, _) | (_, 0) => format!("memory, {processes}"),
            (_, 1) => format!("Redis, {processes}"),
            (_, n) => format!("{n} Redis shards, {processes}"),
        }
    }
}

/// `1 process`, `4 processes`.
pub fn processes_text(n: usize) -> String {
    if n == 1 {
        "1 process".to_owned()
    } else {
        format!("{n} processes")
    }
}

impl Setup {
    /// The configuration in a sentence: `rooms in memory (1 process)`, `4
    /// processes on Redis`, `4 processes on 2 Redis shards`.
    pub fn prose(&self) -> String {
        let processes = processes_text(self.processes);
        match (self.kind, self.shards) {
            (Kind::Memory, _) | (_, 0) => format!("rooms in memory ({processes})"),
            (_, 1) => format!("{processes} on Redis"),
            (_, n) => format!("{processes} on {n} Redis shards"),
        }
    }
}

/// One row of a table: the representative run (the median by p99 when
/// repeated) and how many runs it stands for.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The run shown.
    pub run: LayerRun<'a>,
    /// Runs with the same server, configuration and load.
    pub repeats: usize,
}

/// The runs of these experiments in one results file.
#[derive(Debug, Default)]
pub struct Layers<'a> {
    /// Every run of a known kind, in file order.
    pub runs: Vec<LayerRun<'a>>,
    /// `layer-…` variants that are not fan-outs of a known kind: shown
    /// nowhere but named, so that none goes missing silently.
    pub unknown: Vec<&'a Record>,
}

impl<'a> Layers<'a> {
    /// The runs of `data`.
    pub fn new(data: &Data<'a>) -> Self {
        let mut layers = Layers::default();
        for &record in &data.layers {
            match LayerRun::of(record) {
                Some(run) => layers.runs.push(run),
                None => layers.unknown.push(record),
            }
        }
        layers
    }

    /// One row per server, configuration and load of the runs `keep`
    /// takes, sorted by server (ours first), configuration, then rate.
    pub fn rows(&self, keep: impl Fn(&LayerRun<'a>) -> bool) -> Vec<Row<'a>> {
        let mut runs: Vec<LayerRun<'a>> = self.runs.iter().copied().filter(|r| keep(r)).collect();
        let key = |r: &LayerRun<'a>| (r.setup(), r.config().without_clients(), r.config());
        runs.sort_by(|a, b| {
            server_order(a.server(), b.server())
                .then_with(|| a.server().cmp(b.server()))
                .then_with(|| a.setup().cmp(&b.setup()))
                .then_with(|| a.rate_key().cmp(&b.rate_key()))
                .then_with(|| key(a).cmp(&key(b)))
        });
        let mut rows = Vec::new();
        for group in runs.chunk_by(|a, b| a.server() == b.server() && key(a) == key(b)) {
            let mut sorted = group.to_vec();
            sorted.sort_by_key(|r| r.run.results.latency_us.p99_us);
            rows.push(Row {
                run: sorted[(sorted.len() - 1) / 2],
                repeats: sorted.len(),
            });
        }
        rows
    }

    /// The rows of the memory layer and of one Redis (the process ladder),
    /// ours and any other homogeneous server.
    pub fn ladder_rows(&self) -> Vec<Row<'a>> {
        self.rows(|r| matches!(r.kind, Kind::Memory | Kind::Redis))
    }

    /// The rows of the shard comparison: the sharded runs, and the runs on
    /// one Redis with the same server, processes and load.
    pub fn shard_pairs(&self) -> Vec<(Row<'a>, Option<Row<'a>>)> {
        let one = self.rows(|r| r.kind == Kind::Redis);
        self.rows(|r| r.kind == Kind::Shards)
            .into_iter()
            .map(|sharded| {
                let s = sharded.run;
                let reference = one.iter().copied().find(|o| {
                    o.run.server() == s.server()
                        && o.run.process_count() == s.process_count()
                        && o.run.config() == s.config()
                });
                (sharded, reference)
            })
            .collect()
    }

    /// The rows of the mixed runs.
    pub fn mixed_rows(&self) -> Vec<Row<'a>> {
        self.rows(|r| r.kind == Kind::Mixed)
    }
}

/// The section's body: the tables, plots and explanations of each part, or
/// a line saying the experiments were not run. `cores` is the machine's
/// (from the run's README), when known.
pub fn section(data: &Data<'_>, cores: Option<u64>, plots: &[Written]) -> String {
    let layers = Layers::new(data);
    let mut out = String::new();
    if layers.runs.is_empty() && layers.unknown.is_empty() {
        let _ = writeln!(
            out,
            "Not measured: the run has no `{PREFIX}*` runs (`bench.sh`'s Redis runs, which \
             need `redis-server`)."
        );
        return out;
    }
    out.push_str(&explain::intro(&layers, cores));

    out.push_str("\n### Memory and Redis, by number of processes\n\n");
    let rows = layers.ladder_rows();
    if rows.is_empty() {
        out.push_str("Not measured.\n");
    } else {
        out.push_str(&tables::ladder(&rows, cores));
        for file in [P99_PLOT, REDIS_PLOT] {
            if let Some(w) = plots.iter().find(|w| w.file == file) {
                let _ = writeln!(out, "\n![{}]({PLOTS_DIR}/{file})", w.title);
            }
        }
        out.push('\n');
        out.push_str(&explain::ladder(&rows, cores));
    }

    out.push_str("\n### Two Redis shards against one\n\n");
    let pairs = layers.shard_pairs();
    if pairs.is_empty() {
        out.push_str("Not measured.\n");
    } else {
        out.push_str(&tables::shards(&pairs));
        out.push('\n');
        out.push_str(&explain::shards(&pairs, cores));
    }

    out.push_str("\n### One room across chat-sync, chat-async and Django\n\n");
    let mixed = layers.mixed_rows();
    if mixed.is_empty() {
        out.push_str(
            "Not measured (`bench.sh --django` runs it: a room with members behind one \
             chat-sync, one chat-async and one Django process on one Redis).\n",
        );
    } else {
        out.push_str(&explain::mixed_method(&mixed));
        out.push('\n');
        out.push_str(&tables::mixed(&mixed));
        out.push('\n');
        out.push_str(&explain::mixed(&mixed));
    }

    // What the load generator warned about, but for the missing deliveries
    // the tables already show.
    let warnings: Vec<String> = layers
        .runs
        .iter()
        .flat_map(|r| {
            r.record()
                .warnings
                .iter()
                .filter(|w| !["LOSS", "LATE"].iter().any(|p| w.starts_with(p)))
                .map(move |w| {
                    format!(
                        "- {}, `{}` at {} msg/s: {}",
                        r.server(),
                        r.record().params.variant.as_deref().unwrap_or_default(),
                        r.asked_messages_per_s()
                            .map_or_else(|| "?".to_owned(), crate::format::sig),
                        w
                    )
                })
        })
        .collect();
    crate::experiments::warnings(&mut out, &warnings);
    crate::experiments::not_shown(
        &mut out,
        &layers.unknown,
        "these experiments",
        "kind (`layer-memory`, `layer-redis-<n>`, `layer-redis-shards-<n>`, `layer-mixed-…`)",
    );
    out
}

#[cfg(test)]
mod tests;
