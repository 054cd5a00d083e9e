//! The first screen's figures: one row per server (capacity in one room,
//! the peak kept up at 1,000 clients, CPU per delivery at one shared light
//! load, the cost of an idle connection, the connections held and what
//! stopped them), each from runs with the same parameters for every server.

use serde::Serialize;

use chat_record::servers::Admission;
use chat_record::verdict::{self, Load, step_held};
use chat_record::{ConnectionsResults, Record, Results};

use crate::connections::opened_all;
use crate::data::{ASYNC, Data, Fan, SYNC};

/// Clients in the one room of the peak ladder.
pub const PEAK_CLIENTS: u64 = 1000;
/// The rate per sender of the clients ladder, whose loads the light load is
/// chosen from: each member's frames come 10 ms apart, so nothing batches.
pub const LIGHT_RATE: f64 = 100.0;
/// Idle connections at which a connection's cost is read.
pub const IDLE_CONNECTIONS: u64 = 10_000;

/// One server's row of the headline table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The server's label.
    pub server: String,
    /// Why it was not measured: its admission check failed, or it could
    /// not be started (`servers.json`); `None` when it passed or was not
    /// recorded.
    pub admission: Option<Admission>,
    /// The capacity search's finding.
    pub capacity: Option<Capacity>,
    /// The most deliveries per second kept up at [`PEAK_CLIENTS`] in one
    /// room, and where it stopped.
    pub peak: Option<Peak>,
    /// Its run at the shared light load.
    pub light: Option<Fan>,
    /// An idle connection's cost at [`IDLE_CONNECTIONS`].
    pub idle: Option<Idle>,
    /// The connections ladder's finding.
    pub held: Option<Held>,
}

/// What the capacity search found.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// The most clients of a step that held, if any.
    pub clients: Option<u64>,
    /// Whether every step held (the search ran out of steps).
    pub all_held: bool,
    /// The first step's clients.
    pub start: u64,
    /// The SLO, ms.
    pub slo_ms: f64,
    /// Senders in the room, and each one's rate.
    pub senders: u64,
    /// Messages per second per sender.
    pub rate: f64,
    /// p99 of the last step that held, ms.
    pub p99_ms: Option<f64>,
    /// The first step that did not hold.
    pub failed: Option<Fan>,
    /// Whether it failed by its p99 alone (it kept up).
    pub over_slo: bool,
    /// Every step: clients and p99 (ms) of those that kept up.
    pub steps: Vec<(u64, Option<f64>)>,
}

/// The peak at [`PEAK_CLIENTS`] in one room.
#[derive(Debug, Clone, Serialize)]
pub struct Peak {
    /// The run that kept up with the most deliveries per second.
    pub best: Option<Fan>,
    /// The least-offered run above it that did not keep up, if any: where
    /// the server stopped.
    pub stopped: Option<Fan>,
}

/// An idle connection's cost.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// Connections asked for.
    pub target: u64,
    /// Connections opened.
    pub opened: u64,
    /// RSS per connection, KiB (opened all only).
    pub rss_kib: Option<f64>,
    /// Threads per 1,000 connections (opened all only).
    pub threads_per_1000: Option<f64>,
}

/// What the connections ladder found.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// The most connections held by a rung that opened them all.
    pub most: u64,
    /// The rung that failed first: its target and opened count.
    pub failed_target: Option<u64>,
    /// Connections it opened.
    pub failed_opened: Option<u64>,
    /// What stopped it.
    pub stop: Stop,
    /// The first failure as the load generator saw it.
    pub failure: Option<String>,
}

/// Why a connections rung failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// No rung failed: the ladder ended (its top is set by the open-files
    /// limit).
    LadderTop,
    /// The server answered 503: it could not take the connection (for
    /// chat-sync, a thread could not be created).
    ServiceUnavailable,
    /// The connection was reset.
    Reset,
    /// Connecting or the handshake timed out.
    Timeout,
    /// Something else.
    Other,
}

impl Stop {
    fn of(failure: &str) -> Self {
        let f = failure.to_ascii_lowercase();
        if f.contains("503") {
            Self::ServiceUnavailable
        } else if f.contains("reset") {
            Self::Reset
        } else if f.contains("timed out") || f.contains("timeout") {
            Self::Timeout
        } else {
            Self::Other
        }
    }
}

/// The headline: one row per server, the light load they share, and the
/// figures the verdict quotes.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// One row per server ([`Data::listed`]: the measured ones and those
    /// `servers.json` lists), ours first.
    pub rows: Vec<Row>,
    /// The shared light load, if both of our servers kept up at one.
    pub light: Option<crate::data::LoadView>,
    /// chat-sync's row.
    pub sync: Option<Row>,
    /// chat-async's row.
    pub r#async: Option<Row>,
    /// chat-sync's CPU per delivery over chat-async's at the light load.
    pub cpu_ratio: Option<f64>,
}

/// Computes the headline.
pub fn headline(data: &Data<'_>) -> Headline {
    let light = light_load(data);
    let rows: Vec<Row> = data
        .listed
        .iter()
        .map(|server| Row {
            server: server.clone(),
            admission: data
                .setup(server)
                .map(|s| s.admission.clone())
                .filter(|a| !a.passed()),
            capacity: capacity(data, server),
            peak: peak(data, server),
            light: light.and_then(|l| data.fan_at(server, l)),
            idle: idle(data, server),
            held: held(data, server),
        })
        .collect();
    let find = |s: &str| rows.iter().find(|r| r.server == s).cloned();
    let (sync, r#async) = (find(SYNC), find(ASYNC));
    let cpu = |r: &Option<Row>| r.as_ref()?.light.as_ref()?.cpu_us;
    Headline {
        cpu_ratio: cpu(&sync).zip(cpu(&r#async)).map(|(s, a)| s / a),
        light: light.map(Into::into),
        rows,
        sync,
        r#async,
    }
}

/// A one-room load at [`LIGHT_RATE`] with one sender and fewer clients than
/// the peak ladder's [`PEAK_CLIENTS`]: the one with the most deliveries
/// offered at which both of our servers kept up. Larger rooms are left out
/// because there a delivery no longer shows its own cost: thousands of
/// writes back to back share the kernel's and the scheduler's fixed costs,
/// and every server measured below the one-frame write floor.
fn light_load(data: &Data<'_>) -> Option<Load> {
    let mut loads: Vec<Load> = data
        .fans()
        .iter()
        .filter(|f| f.server == SYNC && f.kept_up())
        .filter(|f| f.load.rooms == 1 && f.load.senders == 1 && f.load.rate == LIGHT_RATE)
        .filter(|f| f.load.clients < PEAK_CLIENTS)
        .map(|f| Load {
            rooms: 1,
            clients: f.load.clients,
            senders: 1,
            rate_milli: (LIGHT_RATE * 1000.0) as u64,
            payload: f.load.payload,
            busy: (0, 0, 0),
        })
        .filter(|&l| data.fan_at(ASYNC, l).is_some_and(|f| f.kept_up()))
        .collect();
    loads.sort_by(|a, b| a.offered_per_s().total_cmp(&b.offered_per_s()));
    loads.pop()
}

/// The peak at [`PEAK_CLIENTS`] clients in one room, one sender.
fn peak(data: &Data<'_>, server: &str) -> Option<Peak> {
    peak_of(data.normal_of(server, "fanout"), data.floor_us)
}

/// Whether a fan-out record is a rung of a peak ladder: [`PEAK_CLIENTS`]
/// in one room, one sender, no busy room.
pub fn is_peak_rung(record: &Record) -> bool {
    let l = Load::of(record);
    record.scenario == "fanout"
        && l.clients == PEAK_CLIENTS
        && l.rooms == 1
        && l.senders == 1
        && l.busy == (0, 0, 0)
}

/// The peak of one server's ladder among `runs` (the rungs of
/// [`is_peak_rung`] are picked out): the most deliveries per second kept
/// up ([`verdict::peak`]), and the first rung above it that was not.
pub fn peak_of<'r>(runs: impl IntoIterator<Item = &'r Record>, floor: Option<f64>) -> Option<Peak> {
    let runs: Vec<&Record> = runs.into_iter().filter(|r| is_peak_rung(r)).collect();
    if runs.is_empty() {
        return None;
    }
    let best = verdict::peak(runs.iter().copied()).map(|(r, _)| r);
    let best_offered = best.map_or(0.0, |r| Load::of(r).offered_per_s());
    let stopped = runs
        .iter()
        .filter_map(|r| Fan::of(r, floor))
        .filter(|f| !f.kept_up() && f.offered_per_s > best_offered)
        .min_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    Some(Peak {
        best: best.and_then(|r| Fan::of(r, floor)),
        stopped,
    })
}

/// The capacity search of `server`, judged by the one rule.
pub fn capacity(data: &Data<'_>, server: &str) -> Option<Capacity> {
    let record = data.normal_of(server, "capacity").last()?;
    if !matches!(record.results, Results::Capacity(_)) {
        return None;
    }
    let steps = Fan::steps(record, data.floor_us);
    let base = Load::of(record);
    let slo_ms = record.params.slo_ms.unwrap_or(f64::INFINITY);
    let mut clients = None;
    let mut p99_ms = None;
    let mut failed = None;
    let mut over_slo = false;
    let mut points = Vec::new();
    for (step, load, fan) in steps {
        points.push((step.clients, fan.kept_up().then_some(fan.p99_ms)));
        if failed.is_some() {
            continue;
        }
        if step_held(&step.fanout, load.offered_per_s(), slo_ms) {
            clients = Some(step.clients);
            p99_ms = Some(fan.p99_ms);
        } else {
            over_slo = fan.kept_up();
            failed = Some(fan);
        }
    }
    Some(Capacity {
        clients,
        all_held: failed.is_none(),
        start: record.params.start.unwrap_or(0),
        slo_ms,
        senders: base.senders,
        rate: base.rate_per_s(),
        p99_ms,
        failed,
        over_slo,
        steps: points,
    })
}

fn connections(data: &Data<'_>, server: &str) -> Vec<(u64, ConnectionsResults)> {
    let mut runs: Vec<(u64, ConnectionsResults)> = data
        .normal_of(server, "connections")
        .filter_map(|r| match &r.results {
            Results::Connections(c) => Some((c.target, c.clone())),
            _ => None,
        })
        .collect();
    runs.sort_by_key(|(target, _)| *target);
    runs
}

/// An idle connection's cost at [`IDLE_CONNECTIONS`].
fn idle(data: &Data<'_>, server: &str) -> Option<Idle> {
    let (_, c) = connections(data, server)
        .into_iter()
        .find(|(t, _)| *t == IDLE_CONNECTIONS)?;
    let all = opened_all(&c);
    Some(Idle {
        target: c.target,
        opened: c.opened,
        rss_kib: c.rss_per_connection_kib.filter(|_| all),
        threads_per_1000: c.threads_per_connection.filter(|_| all).map(|t| t * 1000.0),
    })
}

/// The connections ladder's finding.
pub fn held(data: &Data<'_>, server: &str) -> Option<Held> {
    let runs = connections(data, server);
    if runs.is_empty() {
        return None;
    }
    let most = runs
        .iter()
        .filter(|(_, c)| opened_all(c))
        .map(|(_, c)| c.held)
        .max()
        .unwrap_or(0);
    let failed = runs.iter().find(|(_, c)| !opened_all(c)).map(|(_, c)| c);
    Some(Held {
        most,
        failed_target: failed.map(|c| c.target),
        failed_opened: failed.map(|c| c.opened),
        stop: failed.map_or(Stop::LadderTop, |c| {
            Stop::of(c.first_failure.as_deref().unwrap_or(""))
        }),
        failure: failed.and_then(|c| c.first_failure.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{capacity_record, connections_record, fanout_record};

    #[test]
    fn the_peak_is_the_most_kept_up_and_stops_at_the_next_rung() {
        let records = vec![
            fanout_record(SYNC, 1000, 1, 100.0, 100_000.0),
            fanout_record(SYNC, 1000, 1, 300.0, 200_000.0),
            fanout_record(SYNC, 1000, 1, 1000.0, 300_000.0),
            fanout_record(SYNC, 1000, 1, 35.0, 35_000.0),
        ];
        let data = Data::new(&records);
        let peak = peak(&data, SYNC).expect("a peak");
        let best = peak.best.expect("kept up once");
        assert_eq!(best.load.rate, 100.0);
        let stopped = peak.stopped.expect("fell behind");
        assert_eq!(
            stopped.load.rate, 300.0,
            "the first rung above, not the last"
        );
        assert_eq!(stopped.delivered_per_s, 200_000.0);
    }

    #[test]
    fn the_light_load_is_the_heaviest_both_kept_up_at() {
        let records = vec![
            fanout_record(SYNC, 100, 1, 100.0, 10_000.0),
            fanout_record(ASYNC, 100, 1, 100.0, 10_000.0),
            // chat-sync fell behind at 1,000 clients: 72% of what was asked.
            fanout_record(SYNC, 1000, 1, 100.0, 72_000.0),
            fanout_record(ASYNC, 1000, 1, 100.0, 100_000.0),
        ];
        let h = headline(&Data::new(&records));
        assert_eq!(h.light.map(|l| l.clients), Some(100));
        let sync = h.sync.expect("sync row");
        assert!(sync.light.expect("measured there").kept_up());
        assert!(h.cpu_ratio.is_some());
    }

    #[test]
    fn capacity_is_judged_by_the_one_rule() {
        let record = capacity_record(SYNC, &[(1000, 20.0, true), (2000, 300.0, true)]);
        let data = Data::new(std::slice::from_ref(&record));
        let c = capacity(&data, SYNC).expect("a search");
        assert_eq!(c.clients, Some(1000));
        assert!(c.over_slo, "kept up, but p99 over the SLO");
        assert!(!c.all_held);
        let behind = capacity_record(SYNC, &[(1000, 20.0, false)]);
        let data = Data::new(std::slice::from_ref(&behind));
        let c = capacity(&data, SYNC).expect("a search");
        assert_eq!(c.clients, None);
        assert!(!c.over_slo);
    }

    #[test]
    fn the_ladder_stops_at_its_first_failure() {
        let records = vec![
            connections_record(SYNC, 1000, 1000, None),
            connections_record(
                SYNC,
                10_000,
                7671,
                Some("HTTP error: 503 Service Unavailable"),
            ),
            connections_record(SYNC, 5000, 5000, None),
        ];
        let data = Data::new(&records);
        let h = held(&data, SYNC).expect("ladder");
        assert_eq!(h.most, 5000);
        assert_eq!(h.stop, Stop::ServiceUnavailable);
        assert_eq!(h.failed_opened, Some(7671));
        let sync_idle = idle(&data, SYNC).expect("10,000 run");
        assert_eq!(sync_idle.rss_kib, None, "not every connection opened");
        let records = vec![connections_record(ASYNC, 10_000, 10_000, None)];
        let data = Data::new(&records);
        assert_eq!(held(&data, ASYNC).map(|h| h.stop), Some(Stop::LadderTop));
        assert!(idle(&data, ASYNC).and_then(|i| i.rss_kib).is_some());
    }
}
