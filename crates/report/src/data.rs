//! The records of one run, each fan-out run judged once, and the figures
//! every section reads from them.
//!
//! A [`Fan`] is a fan-out run as the report shows it: its load, its
//! [`Verdict`], and the figures that are only meaningful when it kept up
//! (latency, CPU per delivery). Sections never reach into raw records for a
//! fan-out figure, so a run that fell behind cannot slip into a table as a
//! latency.

use serde::Serialize;

use chat_record::servers::{ServerKind, ServerSetup, Servers};
use chat_record::verdict::{self, Load, Verdict};
use chat_record::{CapacityStep, FanoutResults, FloorResults, ProcessFigures, Record, Results};

/// The thread-per-connection server's label.
pub const SYNC: &str = "sync";
/// The tokio server's label.
pub const ASYNC: &str = "async";
/// The Django Channels tutorial server's label.
pub const DJANGO: &str = "django";

/// The servers the report knows by label, in its order: ours (sync, then
/// async), then the reference servers (`peers/`: uWebSockets.js, Go's
/// gorilla/websocket, Node.js's ws), then Django.
///
/// Ours come first because they are the question. The reference servers
/// follow at once, since they are the yardstick it is read against: what
/// servers engineers already trust do with the same load on the same
/// machine. Django, the tutorial this project reproduces and far behind
/// every other server in the runs so far, comes last rather than between a
/// figure and its yardstick. A label not listed here goes by its kind in `servers.json`
/// (another of ours after ours, another reference server after those),
/// else between the reference servers and Django; ties by name.
pub const SERVER_ORDER: [&str; 6] = [SYNC, ASYNC, "uws", "gorilla", "node-ws", DJANGO];

/// A fan-out load as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadView {
    /// Clients over all rooms.
    pub clients: u64,
    /// Rooms.
    pub rooms: u64,
    /// Senders per room.
    pub senders: u64,
    /// Messages per second per sender.
    pub rate: f64,
    /// Bytes of text per message.
    pub payload: u64,
    /// Deliveries per second asked for.
    pub offered: f64,
}

impl From<Load> for LoadView {
    fn from(load: Load) -> Self {
        Self {
            clients: load.clients,
            rooms: load.rooms,
            senders: load.senders,
            rate: load.rate_per_s(),
            payload: load.payload,
            offered: load.offered_per_s(),
        }
    }
}

/// One fan-out run (or capacity step), judged, with its figures.
#[derive(Debug, Clone, Serialize)]
pub struct Fan {
    /// The server's label.
    pub server: String,
    /// The variant's name, for a variant run.
    pub variant: Option<String>,
    /// Its load.
    pub load: LoadView,
    /// What it showed.
    pub verdict: Verdict,
    /// Deliveries per second asked for.
    pub offered_per_s: f64,
    /// Deliveries per second made.
    pub delivered_per_s: f64,
    /// Deliveries owed.
    pub expected: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// Owed to connected members and never arrived.
    pub lost: u64,
    /// Still missing when the run stopped waiting.
    pub late: u64,
    /// Owed to members the server closed.
    pub closed: u64,
    /// Clients that could not connect.
    pub refused: u64,
    /// Latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Server CPU (user + system) per delivery, µs.
    pub cpu_us: Option<f64>,
    /// That as a multiple of the write floor.
    pub floor_x: Option<f64>,
    /// The server's voluntary context switches per delivery.
    pub switches: Option<f64>,
    /// Cores the server kept busy.
    pub server_cores: Option<f64>,
    /// Cores the load generator kept busy.
    pub loadgen_cores: f64,
    /// The server's peak threads.
    pub threads: Option<u64>,
    /// The server's peak RSS, MiB.
    pub rss_mib: Option<f64>,
}

impl Fan {
    /// A fan-out result judged at `load` (a capacity step's, or the run's).
    pub fn new(
        record: &Record,
        results: &FanoutResults,
        load: Load,
        server: Option<&ProcessFigures>,
        floor_us: Option<f64>,
    ) -> Self {
        let judgement = verdict::judge(results, load.offered_per_s());
        let per_delivery = |x: f64| (results.delivered > 0).then(|| x / results.delivered as f64);
        let cpu_us = server.and_then(|s| per_delivery((s.cpu_user_s + s.cpu_system_s) * 1e6));
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            server: record.server.clone(),
            variant: record.params.variant.clone(),
            load: load.into(),
            verdict: judgement.verdict,
            offered_per_s: judgement.offered_per_s,
            delivered_per_s: judgement.delivered_per_s,
            expected: results.expected_deliveries,
            delivered: results.delivered,
            lost: results.lost,
            late: results.late,
            closed: results.missed_by_closed,
            refused: results.connect_failures,
            p50_ms: ms(results.latency_us.p50_us),
            p99_ms: ms(results.latency_us.p99_us),
            p999_ms: ms(results.latency_us.p999_us),
            cpu_us,
            floor_x: cpu_us.zip(floor_us).map(|(c, f)| c / f),
            switches: server.and_then(|s| per_delivery(s.voluntary_ctxt_switches as f64)),
            server_cores: server.map(|s| s.cpu_utilization),
            loadgen_cores: record.loadgen_process.cpu_utilization,
            threads: server.map(|s| s.threads_peak),
            rss_mib: server.map(|s| s.rss_peak_kib as f64 / 1024.0),
        }
    }

    /// A fan-out record, judged; `None` for another scenario.
    pub fn of(record: &Record, floor_us: Option<f64>) -> Option<Self> {
        let Results::Fanout(results) = &record.results else {
            return None;
        };
        let server = record
            .deployment
            .server_total
            .as_ref()
            .map(|t| ProcessFigures {
                cpu_user_s: t.cpu_user_s,
                cpu_system_s: t.cpu_system_s,
                cpu_utilization: t.cpu_utilization,
                voluntary_ctxt_switches: t.voluntary_ctxt_switches,
                threads_peak: t.threads_peak_sum,
                rss_peak_kib: t.rss_peak_sum_kib,
                ..ProcessFigures::default()
            })
            .or_else(|| record.server_process.clone());
        Some(Self::new(
            record,
            results,
            Load::of(record),
            server.as_ref(),
            floor_us,
        ))
    }

    /// Whether it kept up.
    pub fn kept_up(&self) -> bool {
        self.verdict.kept_up()
    }

    /// Each step of a capacity search, with its load and judged at it;
    /// none for another scenario.
    pub fn steps(record: &Record, floor_us: Option<f64>) -> Vec<(&CapacityStep, Load, Self)> {
        let Results::Capacity(capacity) = &record.results else {
            return Vec::new();
        };
        capacity
            .steps
            .iter()
            .map(|step| {
                let load = Load::of(record).with_clients(step.clients);
                let fan = Self::new(record, &step.fanout, load, None, floor_us);
                (step, load, fan)
            })
            .collect()
    }
}

/// The records of one run, with what every section needs.
#[derive(Debug)]
pub struct Data<'a> {
    /// Every record, in file order.
    pub records: &'a [Record],
    /// Servers measured in normal runs, in the report's order
    /// ([`SERVER_ORDER`]).
    pub servers: Vec<String>,
    /// Every server of the run, measured or only listed in `servers.json`
    /// (one whose admission check failed has no runs), in the same order.
    pub listed: Vec<String>,
    /// What each server is and ran with (`servers.json`), if recorded.
    pub setups: Option<&'a Servers>,
    /// The write floor: µs of CPU to `write()` one frame, the mean of the
    /// floor runs.
    pub floor_us: Option<f64>,
}

impl<'a> Data<'a> {
    /// Sorts `records` into what the sections read, without `servers.json`.
    #[cfg(test)]
    pub fn new(records: &'a [Record]) -> Self {
        Self::with_setups(records, None)
    }

    /// Sorts `records` into what the sections read; `setups` (the run's
    /// `servers.json`) adds the servers that were not measured and orders
    /// the unknown ones by their kind.
    pub fn with_setups(records: &'a [Record], setups: Option<&'a Servers>) -> Self {
        let rank = |s: &String| server_rank(s, setups.and_then(|x| x.get(s)));
        let mut servers: Vec<String> = records
            .iter()
            .filter(|r| is_normal(r) && !matches!(r.results, Results::Floor(_)))
            .map(|r| r.server.clone())
            .collect();
        servers.sort_by_key(rank);
        servers.dedup();
        let mut listed = servers.clone();
        listed.extend(
            setups
                .iter()
                .flat_map(|x| &x.servers)
                .map(|s| s.label.clone()),
        );
        listed.sort_by_key(rank);
        listed.dedup();
        let floors: Vec<f64> = records
            .iter()
            .filter_map(|r| match &r.results {
                Results::Floor(f) => one_frame_us(f),
                _ => None,
            })
            .collect();
        let floor_us =
            (!floors.is_empty()).then(|| floors.iter().sum::<f64>() / floors.len() as f64);
        Self {
            records,
            servers,
            listed,
            setups,
            floor_us,
        }
    }

    /// What `server` is and ran with, if `servers.json` lists it.
    pub fn setup(&self, server: &str) -> Option<&'a ServerSetup> {
        self.setups?.get(server)
    }

    /// The normal (not variant) fan-out runs, judged.
    pub fn fans(&self) -> Vec<Fan> {
        self.records
            .iter()
            .filter(|r| is_normal(r))
            .filter_map(|r| Fan::of(r, self.floor_us))
            .collect()
    }

    /// The normal fan-out run of `server` at `load`, if there is one (the
    /// last, if several).
    pub fn fan_at(&self, server: &str, load: Load) -> Option<Fan> {
        self.records
            .iter()
            .rev()
            .filter(|r| is_normal(r) && r.server == server && r.scenario == "fanout")
            .find(|r| Load::of(r) == load)
            .and_then(|r| Fan::of(r, self.floor_us))
    }

    /// The normal records of `server` in `scenario`.
    pub fn normal_of<'s>(
        &'s self,
        server: &'s str,
        scenario: &'s str,
    ) -> impl Iterator<Item = &'a Record> + 's {
        self.records
            .iter()
            .filter(move |r| is_normal(r) && r.server == server && r.scenario == scenario)
    }

    /// The records of variants whose name starts with `prefix`.
    pub fn variants<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = &'a Record> + 's {
        self.records.iter().filter(move |r| {
            r.params
                .variant
                .as_deref()
                .is_some_and(|v| v.starts_with(prefix))
        })
    }
}

/// Whether a record is a normal run: no variant, no extra server flags.
pub fn is_normal(record: &Record) -> bool {
    record.params.variant.is_none() && record.params.server_flags.is_none()
}

/// Where `server` goes in the report ([`SERVER_ORDER`]): its group (ours,
/// reference, unknown, Django), its place among the known labels, its name.
fn server_rank(server: &str, setup: Option<&ServerSetup>) -> (u8, usize, String) {
    let known = SERVER_ORDER.iter().position(|s| *s == server);
    let group = match setup.map(|s| s.kind) {
        Some(ServerKind::Ours) => 0,
        Some(ServerKind::Reference) => 1,
        Some(ServerKind::Django) => 3,
        None => match server {
            SYNC | ASYNC => 0,
            DJANGO => 3,
            _ if known.is_some() => 1,
            _ => 2,
        },
    };
    (group, known.unwrap_or(usize::MAX), server.to_owned())
}

fn one_frame_us(floor: &FloorResults) -> Option<f64> {
    floor
        .at(1)
        .map(|b| b.cpu_us_per_frame)
        .filter(|us| us.is_finite() && *us > 0.0)
}
