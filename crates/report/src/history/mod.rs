//! The history experiments of issue 5: what storing every chat message in
//! SQLite costs each server, and what a slow database does to a room that
//! barely uses it while another room posts hard.
//!
//! `bench.sh` records these runs as variants (`chat-loadgen --variant`)
//! named after the experiment and the server's history setting:
//! `history-<setting>` for the throughput runs and `stall-<setting>` for
//! the stall experiment (a fan-out with a busy room, `--busy-senders`), the
//! setting being one of [`Setting`]'s names. They measure modified servers
//! (`--history`, `--db-delay-ms`, `--db-bridge`), so, like every variant,
//! they stay out of the main figures; unlike the other variants they are
//! not before/after pairs, so [`crate::data::Data`] keeps them in a list of
//! their own and only this section reads them.
//!
//! Each record also carries the server's flags (`--server-flags`), from
//! which the delay per database call and the async server's workers are
//! read: the text never assumes them.

mod explain;
mod plot;
mod tables;

use std::fmt::Write as _;

use chat_loadgen::record::{FanoutResults, Record};

use crate::data::server_order;
use crate::data::{Config, Data, Fanout};
use crate::plots::{PLOTS_DIR, Written};

pub use plot::{HISTORY_PLOT, chart as plot_chart, render as render_plot};

/// The variant prefix of the throughput runs: `history-<setting>`.
pub const THROUGHPUT_PREFIX: &str = "history-";
/// The variant prefix of the stall experiment's runs: `stall-<setting>`.
pub const STALL_PREFIX: &str = "stall-";

/// Which experiment a run belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Experiment {
    /// Messages per second and fan-out latency, history off and on.
    Throughput,
    /// A quiet room's latency while a busy room posts hard, each database
    /// call delayed.
    Stall,
}

/// Where the server's database calls run: its history setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// No `--history`: nothing stored (the reference).
    Off,
    /// chat-sync with `--history`: on the connection's own thread.
    Thread,
    /// chat-async `--db-bridge writer`: one database thread, inserts batched.
    Writer,
    /// chat-async `--db-bridge spawn-blocking`: tokio's blocking pool.
    SpawnBlocking,
    /// chat-async `--db-bridge inline`: on the async worker itself.
    Inline,
}

impl Setting {
    /// Every setting, in the tables' order.
    pub const ALL: [Setting; 5] = [
        Setting::Off,
        Setting::Thread,
        Setting::Writer,
        Setting::SpawnBlocking,
        Setting::Inline,
    ];

    /// Its name in a variant, after the prefix.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Off => "off",
            Setting::Thread => "thread",
            Setting::Writer => "writer",
            Setting::SpawnBlocking => "spawn-blocking",
            Setting::Inline => "inline",
        }
    }

    /// What it means, for a table cell.
    pub fn describe(self) -> &'static str {
        match self {
            Setting::Off => "history off",
            Setting::Thread => "on the connection's own thread",
            Setting::Writer => "`writer`: one database thread, batched",
            Setting::SpawnBlocking => "`spawn-blocking`: tokio's blocking pool",
            Setting::Inline => "`inline`: on the async worker",
        }
    }

    /// The setting named `name`, if any.
    fn parse(name: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The experiment a variant name belongs to, and the rest of the name.
fn split_variant(variant: &str) -> Option<(Experiment, &str)> {
    if let Some(rest) = variant.strip_prefix(THROUGHPUT_PREFIX) {
        Some((Experiment::Throughput, rest))
    } else {
        variant
            .strip_prefix(STALL_PREFIX)
            .map(|rest| (Experiment::Stall, rest))
    }
}

/// Whether a record belongs to the history experiments (a variant named
/// `history-…` or `stall-…`), whatever its setting: such a run is reported
/// here or nowhere.
pub fn is_history_run(record: &Record) -> bool {
    record
        .params
        .variant
        .as_deref()
        .is_some_and(|v| split_variant(v).is_some())
}

/// The value of `--name` in a recorded command line (`--name V` or
/// `--name=V`).
fn flag_value<'s>(flags: &'s str, name: &str) -> Option<&'s str> {
    let mut words = flags.split_whitespace();
    while let Some(word) = words.next() {
        if word == name {
            return words.next();
        }
        if let Some(value) = word
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            return Some(value);
        }
    }
    None
}

/// One run of the history experiments.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRun<'a> {
    /// The fan-out run: for the stall experiment, its results are the quiet
    /// room's, the busy room's are [`HistoryRun::busy`].
    pub run: Fanout<'a>,
    /// Which experiment.
    pub experiment: Experiment,
    /// The server's history setting.
    pub setting: Setting,
}

impl<'a> HistoryRun<'a> {
    /// The run, if the record is a fan-out of the history experiments with
    /// a known setting.
    pub fn of(record: &'a Record) -> Option<Self> {
        let (experiment, rest) = split_variant(record.params.variant.as_deref()?)?;
        Some(Self {
            run: Fanout::of(record)?,
            experiment,
            setting: Setting::parse(rest)?,
        })
    }

    /// The server's label.
    pub fn server(&self) -> &'a str {
        &self.run.record.server
    }

    /// The load of its (quiet) rooms.
    pub fn config(&self) -> Config {
        self.run.config()
    }

    /// The rooms' results (the quiet room's, in the stall experiment).
    pub fn results(&self) -> &'a FanoutResults {
        self.run.results
    }

    /// The rooms' p99 latency, microseconds, if anything arrived to measure
    /// it (a run whose every delivery was lost has none).
    pub fn p99_us(&self) -> Option<u64> {
        let l = &self.results().latency_us;
        (l.count > 0).then_some(l.p99_us)
    }

    /// The busy room's results, in the stall experiment.
    pub fn busy(&self) -> Option<&'a FanoutResults> {
        self.run.results.busy_room.as_deref()
    }

    fn flag(&self, name: &str) -> Option<&'a str> {
        flag_value(self.run.record.params.server_flags.as_deref()?, name)
    }

    /// The delay of each database call, milliseconds: `--db-delay-ms` of the
    /// recorded server flags, 0 when they are recorded without it, unknown
    /// when they are not recorded.
    pub fn delay_ms(&self) -> Option<f64> {
        self.run.record.params.server_flags.as_deref()?;
        match self.flag("--db-delay-ms") {
            None => Some(0.0),
            Some(value) => value.parse().ok(),
        }
    }

    /// The async server's worker threads, when the flags record them.
    pub fn workers(&self) -> Option<u64> {
        self.flag("--workers")?.parse().ok()
    }

    /// Messages sent per second by the (quiet) rooms' senders.
    pub fn sent_per_s(&self) -> f64 {
        self.results().messages_per_s
    }

    /// Messages delivered per second: deliveries per second over the
    /// members of a room (each message goes to every member).
    pub fn delivered_per_s(&self) -> Option<f64> {
        let c = self.config();
        let members = c.clients? as f64 / c.rooms?.max(1) as f64;
        (members > 0.0).then(|| self.results().deliveries_per_s / members)
    }

    /// The busy room's messages delivered per second: the deliveries of
    /// any of its messages that arrived during the measured window (a room
    /// behind its senders delivers its backlog then), per second, over its
    /// members; its deliveries per second in records without that count.
    pub fn busy_delivered_per_s(&self) -> Option<f64> {
        let members = self.run.record.params.busy_clients? as f64;
        let busy = self.busy()?;
        let per_s = busy
            .window_deliveries_per_s
            .unwrap_or(busy.deliveries_per_s);
        (members > 0.0).then(|| per_s / members)
    }

    /// The messages per second the busy room's senders were asked for.
    pub fn busy_offered_per_s(&self) -> Option<f64> {
        let p = &self.run.record.params;
        Some(p.busy_senders? as f64 * p.busy_rate_per_s?)
    }

    /// The messages per second the rooms' senders were asked for.
    pub fn offered_per_s(&self) -> Option<f64> {
        let c = self.config();
        Some(c.rooms? as f64 * c.senders? as f64 * c.rate()?)
    }

    /// What tells two loads of one experiment apart: the rooms' load and,
    /// in the stall experiment, the busy room's (its rate in thousandths,
    /// to compare exactly). The delay per call is a setting's, not the
    /// load's: history off has none.
    pub fn load_key(&self) -> (Config, Option<u64>, Option<u64>, Option<u64>) {
        let p = &self.run.record.params;
        (
            self.config(),
            p.busy_clients,
            p.busy_senders,
            p.busy_rate_per_s
                .map(|v| (v * 1000.0).round().max(0.0) as u64),
        )
    }

    /// The delay in microseconds, to compare exactly.
    fn delay_key(&self) -> Option<u64> {
        self.delay_ms()
            .map(|ms| (ms * 1000.0).round().max(0.0) as u64)
    }
}

/// The history runs of one results file.
#[derive(Debug, Default)]
pub struct History<'a> {
    /// Every run of a known setting, in file order.
    pub runs: Vec<HistoryRun<'a>>,
    /// History variants that are not fan-outs of a known setting, shown
    /// nowhere but named, so that none goes missing silently.
    pub unknown: Vec<&'a Record>,
}

/// One row of a table: the representative run (the median by the rooms'
/// p99 when repeated) and how many runs it stands for.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The run shown.
    pub run: HistoryRun<'a>,
    /// Runs with the same experiment, server, setting and load.
    pub repeats: usize,
}

impl<'a> History<'a> {
    /// The history runs of `data`.
    pub fn new(data: &Data<'a>) -> Self {
        let mut history = History::default();
        for &record in &data.history {
            match HistoryRun::of(record) {
                Some(run) => history.runs.push(run),
                None => history.unknown.push(record),
            }
        }
        history
    }

    /// One row per server, setting and load of `experiment`, sorted by load,
    /// then server (ours first), then setting.
    pub fn rows(&self, experiment: Experiment) -> Vec<Row<'a>> {
        let mut runs: Vec<HistoryRun<'a>> = self
            .runs
            .iter()
            .copied()
            .filter(|r| r.experiment == experiment)
            .collect();
        runs.sort_by(|a, b| {
            a.load_key()
                .cmp(&b.load_key())
                .then_with(|| server_order(a.server(), b.server()))
                .then_with(|| a.setting.cmp(&b.setting))
                .then_with(|| a.delay_key().cmp(&b.delay_key()))
        });
        let mut rows: Vec<Row<'a>> = Vec::new();
        for group in runs.chunk_by(|a, b| {
            a.load_key() == b.load_key()
                && a.server() == b.server()
                && a.setting == b.setting
                && a.delay_key() == b.delay_key()
        }) {
            let mut sorted = group.to_vec();
            sorted.sort_by_key(|r| r.results().latency_us.p99_us);
            rows.push(Row {
                run: sorted[(sorted.len() - 1) / 2],
                repeats: sorted.len(),
            });
        }
        rows
    }
}

/// The section's body: both experiments' tables, the plot and the
/// explanation, or a line saying they were not run.
pub fn section(data: &Data<'_>, plots: &[Written]) -> String {
    let history = History::new(data);
    let mut out = String::new();
    if history.runs.is_empty() && history.unknown.is_empty() {
        let _ = writeln!(
            out,
            "Not measured: the run has no `{THROUGHPUT_PREFIX}*` or `{STALL_PREFIX}*` runs \
             (`bench.sh`'s history runs)."
        );
        return out;
    }
    out.push_str(&explain::intro());

    out.push_str("\n### Storing every message\n\n");
    let rows = history.rows(Experiment::Throughput);
    if rows.is_empty() {
        out.push_str("Not measured.\n");
    } else {
        out.push_str(&tables::throughput(&rows));
        out.push('\n');
        out.push_str(&explain::throughput(&rows));
    }

    out.push_str("\n### A slow database: a quiet room beside a busy one\n\n");
    let rows = history.rows(Experiment::Stall);
    if rows.is_empty() {
        out.push_str("Not measured.\n");
    } else {
        out.push_str(&explain::stall_method(&rows));
        out.push('\n');
        out.push_str(&tables::stall(&rows));
        out.push('\n');
        if let Some(w) = plots.iter().find(|w| w.file == HISTORY_PLOT) {
            let _ = writeln!(out, "![{}]({PLOTS_DIR}/{HISTORY_PLOT})\n", w.title);
        }
        out.push_str(&explain::stall(&rows));
    }
    // What the load generator warned about, but for the missing
    // deliveries the tables already show.
    let warnings: Vec<String> = history
        .runs
        .iter()
        .flat_map(|r| {
            r.run
                .record
                .warnings
                .iter()
                .filter(|w| {
                    !["LOSS", "LATE", "busy room:"]
                        .iter()
                        .any(|p| w.starts_with(p))
                })
                .map(move |w| {
                    format!(
                        "- {}, `{}`: {}",
                        r.server(),
                        r.run.record.params.variant.as_deref().unwrap_or_default(),
                        w
                    )
                })
        })
        .collect();
    crate::experiments::warnings(&mut out, &warnings);
    crate::experiments::not_shown(
        &mut out,
        &history.unknown,
        "the history experiments",
        &format!("setting ({})", Setting::ALL.map(Setting::name).join(", ")),
    );
    out
}

#[cfg(test)]
mod tests;
