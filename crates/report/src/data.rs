//! The records, sorted into what the report compares: servers, fan-out
//! configurations, capacity searches, connection runs, and the figures
//! derived from them.
//!
//! Every number in the report comes from here, so the tables, the plots and
//! the prose cannot disagree. Derived figures (context switches per
//! delivery, loss) are computed once, here.

use std::fmt;

use chat_loadgen::record::{
    CapacityResults, ConnectionsResults, FanoutResults, FloorResults, ProcessFigures, Record,
    Results,
};

use crate::format;
use crate::history;
use crate::layers;

/// The label of the thread-per-connection server.
pub const SYNC: &str = "sync";
/// The label of the tokio-tasks server.
pub const ASYNC: &str = "async";
/// The two servers of this workspace, shown first and in this order; any
/// other label (an external server such as `django`) follows.
pub const OWN_SERVERS: [&str; 2] = [SYNC, ASYNC];

/// The order servers are shown in: ours first ([`OWN_SERVERS`]), then the
/// others by name.
pub fn server_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let rank = |s: &str| OWN_SERVERS.iter().position(|own| *own == s);
    match (rank(a), rank(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// What a fan-out run was asked to do; runs with equal configurations are
/// comparable across servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Config {
    /// Rooms (first, so one-room runs sort together).
    pub rooms: Option<u64>,
    /// Senders per room.
    pub senders: Option<u64>,
    /// Messages per second per sender, in thousandths (an integer, so
    /// configurations compare exactly).
    pub rate_milli: Option<u64>,
    /// Bytes of text per message.
    pub payload: Option<u64>,
    /// Clients, over all rooms.
    pub clients: Option<u64>,
}

impl Config {
    /// The configuration a record was run with.
    pub fn of(record: &Record) -> Self {
        let p = &record.params;
        Self {
            rooms: p.rooms,
            senders: p.senders_per_room,
            // Rates are small positive numbers; a negative or absurd one
            // saturates, which only affects grouping.
            rate_milli: p.rate_per_s.map(|r| (r * 1000.0).round().max(0.0) as u64),
            payload: p.payload_bytes,
            clients: p.clients,
        }
    }

    /// The same configuration with the client count left out: what one line
    /// of a "versus clients" plot holds constant.
    pub fn without_clients(self) -> Self {
        Self {
            clients: None,
            ..self
        }
    }

    /// The rate in messages per second per sender.
    pub fn rate(self) -> Option<f64> {
        self.rate_milli.map(|r| r as f64 / 1000.0)
    }

    /// The senders and their rate, for one room: `4 senders @ 2 msg/s`
    /// (the rate is each sender's).
    pub fn senders_at_rate(self) -> String {
        let senders = self
            .senders
            .map_or_else(|| "? senders".to_owned(), |s| format::plural(s, "sender"));
        let rate = self.rate().map_or_else(|| "?".to_owned(), format::plain);
        format!("{senders} @ {rate} msg/s")
    }

    /// The load, without the clients: `1 sender/room @ 100 msg/s, 32 B`.
    pub fn load_label(self) -> String {
        let senders = self.senders.map_or_else(
            || "? senders/room".to_owned(),
            |s| {
                if s == 1 {
                    "1 sender/room".to_owned()
                } else {
                    format!("{} senders/room", format::count(s))
                }
            },
        );
        let rate = self.rate().map_or_else(|| "?".to_owned(), format::plain);
        let payload = self.payload.map_or_else(|| "?".to_owned(), format::count);
        format!("{senders} @ {rate} msg/s, {payload} B")
    }
}

impl fmt::Display for Config {
    /// `1,000 clients in 1 room, 1 sender/room @ 100 msg/s, 32 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clients = self
            .clients
            .map_or_else(|| "? clients".to_owned(), |c| format::plural(c, "client"));
        let rooms = self
            .rooms
            .map_or_else(|| "? rooms".to_owned(), |r| format::plural(r, "room"));
        write!(f, "{clients} in {rooms}, {}", self.load_label())
    }
}

/// One fan-out run.
#[derive(Debug, Clone, Copy)]
pub struct Fanout<'a> {
    /// The whole record.
    pub record: &'a Record,
    /// Its results.
    pub results: &'a FanoutResults,
}

impl Fanout<'_> {
    /// The server's label.
    pub fn server(&self) -> &str {
        &self.record.server
    }

    /// What it was asked to do.
    pub fn config(&self) -> Config {
        Config::of(self.record)
    }

    /// Everything that says the run did not deliver exactly what it owed,
    /// once, in order; empty for a clean run.
    pub fn anomalies(&self) -> Vec<String> {
        anomalies(self.results)
    }

    /// The server process's figures, when sampled.
    pub fn server_process(&self) -> Option<&ProcessFigures> {
        self.record.server_process.as_ref()
    }

    /// The server's CPU per delivery, in microseconds (user + system over
    /// the window, from the server's CPU per 1,000 deliveries).
    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        let per_1000_s = self.server_process()?.cpu_s_per_1000_deliveries?;
        Some(per_1000_s * 1e6 / 1000.0)
    }

    /// The server's voluntary context switches per delivery: how often a
    /// thread gave up its core to wait, for each frame delivered.
    pub fn voluntary_switches_per_delivery(&self) -> Option<f64> {
        let process = self.server_process()?;
        per_delivery(process.voluntary_ctxt_switches, self.results.delivered)
    }

    /// The deliveries per second the run asked for: clients × senders per
    /// room × rate (each message of a room goes to each of its members).
    pub fn offered_deliveries_per_s(&self) -> Option<f64> {
        let c = self.config();
        Some(c.clients? as f64 * c.senders? as f64 * c.rate()?)
    }

    /// Whether every delivery owed arrived: none lost, late or owed to a
    /// member the server closed.
    pub fn lost_nothing(&self) -> bool {
        let r = self.results;
        r.lost == 0 && r.late == 0 && r.missed_by_closed == 0
    }

    /// The run, if the record is a fan-out.
    pub fn of(record: &Record) -> Option<Fanout<'_>> {
        match &record.results {
            Results::Fanout(results) => Some(Fanout { record, results }),
            _ => None,
        }
    }
}

/// Everything wrong with a fan-out's counts, as short phrases.
pub fn anomalies(r: &FanoutResults) -> Vec<String> {
    let mut out = Vec::new();
    if r.lost > 0 {
        out.push(format!(
            "lost {} of {} deliveries ({})",
            format::count(r.lost),
            format::count(r.expected_deliveries),
            format::percent(r.lost as f64 / r.expected_deliveries.max(1) as f64),
        ));
    }
    if r.late > 0 {
        out.push(format!(
            "{} of {} deliveries still missing {:.1} s after the senders stopped (late; counted in the latencies as arriving then)",
            format::count(r.late),
            format::count(r.expected_deliveries),
            r.drain_s,
        ));
    }
    let counts = [
        (
            r.missed_by_closed,
            "deliveries owed to members the server closed",
        ),
        (r.duplicated, "duplicated deliveries"),
        (r.out_of_order, "out-of-order deliveries"),
        (r.order_mismatches, "members with a different room order"),
        (r.error_replies, "error replies"),
        (r.connect_failures, "clients that could not connect"),
    ];
    for (n, what) in counts {
        if n > 0 {
            out.push(format!("{} {what}", format::count(n)));
        }
    }
    let closes: u64 = r.close_codes.values().sum();
    if closes > 0 {
        let codes: Vec<String> = r
            .close_codes
            .iter()
            .map(|(code, n)| format!("{code}×{}", format::count(*n)))
            .collect();
        out.push(format!("closed by the server ({})", codes.join(", ")));
    }
    out
}

fn per_delivery(n: u64, delivered: u64) -> Option<f64> {
    (delivered > 0).then(|| n as f64 / delivered as f64)
}

/// One capacity search.
#[derive(Debug, Clone, Copy)]
pub struct Capacity<'a> {
    /// The whole record.
    pub record: &'a Record,
    /// Its results.
    pub results: &'a CapacityResults,
}

/// What a capacity search found, in words the summary table can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityFinding {
    /// The largest step that held, and a larger one failed.
    Held(u64),
    /// Every step held: the capacity is at least this, the search's limit.
    AtLeast(u64),
    /// No step held: the capacity is below the first step.
    Below(u64),
    /// No step was run.
    NoSteps,
}

impl<'a> Capacity<'a> {
    /// The search, if the record is one.
    pub fn of(record: &'a Record) -> Option<Self> {
        match &record.results {
            Results::Capacity(results) => Some(Capacity { record, results }),
            _ => None,
        }
    }

    /// The server's label.
    pub fn server(&self) -> &str {
        &self.record.server
    }

    /// Its load: senders, their rate, payload (one room; no clients).
    pub fn load(&self) -> Config {
        Config::of(self.record).without_clients()
    }

    /// The latency limit, in milliseconds.
    pub fn slo_ms(&self) -> Option<f64> {
        self.record.params.slo_ms
    }

    /// What the search found.
    pub fn finding(&self) -> CapacityFinding {
        let steps = &self.results.steps;
        let Some(first) = steps.first() else {
            return CapacityFinding::NoSteps;
        };
        match self.results.capacity_clients {
            None => CapacityFinding::Below(first.clients),
            Some(n) => {
                let larger_failed = steps.iter().any(|s| s.clients > n && !s.held);
                if larger_failed {
                    CapacityFinding::Held(n)
                } else {
                    CapacityFinding::AtLeast(n)
                }
            }
        }
    }
}

/// One connections run.
#[derive(Debug, Clone, Copy)]
pub struct Connections<'a> {
    /// The whole record.
    pub record: &'a Record,
    /// Its results.
    pub results: &'a ConnectionsResults,
}

impl<'a> Connections<'a> {
    /// The run, if the record is a connections run.
    pub fn of(record: &'a Record) -> Option<Self> {
        match &record.results {
            Results::Connections(results) => Some(Connections { record, results }),
            _ => None,
        }
    }

    /// The server's label.
    pub fn server(&self) -> &str {
        &self.record.server
    }

    /// Whether it opened every connection asked for.
    pub fn opened_all(&self) -> bool {
        self.results.opened >= self.results.target
    }
}

/// One write-floor run: the CPU one thread spends to `write()` a server's
/// frame to loopback sockets, at several frames per call.
#[derive(Debug, Clone, Copy)]
pub struct Floor<'a> {
    /// The whole record.
    pub record: &'a Record,
    /// Its results.
    pub results: &'a FloorResults,
}

/// The records of one run directory, sorted by scenario.
#[derive(Debug, Default)]
pub struct Data<'a> {
    /// Server labels: `sync`, `async`, then the others in order of first
    /// appearance.
    pub servers: Vec<String>,
    /// Fan-out runs, in file order.
    pub fanouts: Vec<Fanout<'a>>,
    /// Capacity searches, in file order.
    pub capacities: Vec<Capacity<'a>>,
    /// Connections runs, in file order.
    pub connections: Vec<Connections<'a>>,
    /// Write-floor runs, in file order (no server: never a column).
    pub floors: Vec<Floor<'a>>,
    /// Variant runs (`params.variant`: a modified server), in file order:
    /// kept out of everything above, compared only with the normal run
    /// at the same parameters ([`Data::before_after`]).
    pub variants: Vec<&'a Record>,
    /// The history experiments' runs (variants named `history-…` and
    /// `stall-…`, see [`crate::history`]), in file order: kept out of
    /// everything above, the other variants included, and reported in their
    /// own section.
    pub history: Vec<&'a Record>,
    /// The channel-layer experiments' runs (variants named `layer-…`, see
    /// [`crate::layers`]), in file order: kept out of everything above, as
    /// the history runs are, and reported in their own section.
    pub layers: Vec<&'a Record>,
    /// Every record, in file order, variants included.
    pub records: &'a [Record],
}

impl<'a> Data<'a> {
    /// Sorts the records. The scenario is taken from the shape of the
    /// results, which is what the numbers mean.
    pub fn new(records: &'a [Record]) -> Self {
        let mut data = Data {
            records,
            ..Data::default()
        };
        for record in records {
            if history::is_history_run(record) {
                data.history.push(record);
                continue;
            }
            if layers::is_layer_run(record) {
                data.layers.push(record);
                continue;
            }
            if is_variant(record) {
                data.variants.push(record);
                continue;
            }
            if let Results::Floor(results) = &record.results {
                data.floors.push(Floor { record, results });
                continue;
            }
            if !data.servers.contains(&record.server) {
                data.servers.push(record.server.clone());
            }
            match &record.results {
                Results::Fanout(results) => data.fanouts.push(Fanout { record, results }),
                Results::Capacity(results) => {
                    data.capacities.push(Capacity { record, results });
                }
                Results::Connections(results) => {
                    data.connections.push(Connections { record, results });
                }
                Results::Floor(_) => {}
            }
        }
        data.servers.sort_by_key(|s| {
            OWN_SERVERS
                .iter()
                .position(|own| own == s)
                .unwrap_or(OWN_SERVERS.len())
        });
        data
    }

    /// Whether the server has any record.
    pub fn has_server(&self, server: &str) -> bool {
        self.servers.iter().any(|s| s == server)
    }

    /// A server's fan-out runs.
    pub fn fanouts_of<'s>(&'s self, server: &'s str) -> impl Iterator<Item = Fanout<'a>> + 's {
        self.fanouts
            .iter()
            .copied()
            .filter(move |f| f.server() == server)
    }

    /// Every fan-out configuration, sorted (one room first, then by load,
    /// then by clients).
    pub fn configs(&self) -> Vec<Config> {
        let mut configs: Vec<Config> = self.fanouts.iter().map(Fanout::config).collect();
        configs.sort();
        configs.dedup();
        configs
    }

    /// The representative run of a server at a configuration: the median by
    /// p99 latency when the configuration was repeated, with the number of
    /// runs it stands for.
    pub fn median_run(&self, server: &str, config: Config) -> Option<(Fanout<'a>, usize)> {
        let runs: Vec<Fanout<'a>> = self
            .fanouts_of(server)
            .filter(|f| f.config() == config)
            .collect();
        median_by_p99(runs)
    }

    /// A server's representative run at [`LIGHT_LOAD`].
    pub fn light_load_run(&self, server: &str) -> Option<Fanout<'a>> {
        self.median_run(server, LIGHT_LOAD).map(|(run, _)| run)
    }

    /// A server's fan-out run with the most deliveries per second.
    pub fn peak_run(&self, server: &str) -> Option<Fanout<'a>> {
        self.fanouts_of(server).max_by(|a, b| {
            a.results
                .deliveries_per_s
                .total_cmp(&b.results.deliveries_per_s)
        })
    }

    /// A server's last capacity search (a repeated search supersedes the
    /// earlier one).
    pub fn capacity_of(&self, server: &str) -> Option<Capacity<'a>> {
        self.capacities
            .iter()
            .copied()
            .rfind(|c| c.server() == server)
    }

    /// A server's connections runs, by connections opened.
    pub fn connections_of(&self, server: &str) -> Vec<Connections<'a>> {
        let mut runs: Vec<Connections<'a>> = self
            .connections
            .iter()
            .copied()
            .filter(|c| c.server() == server)
            .collect();
        runs.sort_by_key(|c| (c.results.opened, c.results.target));
        runs
    }

    /// A server's connections run with the most connections opened: where
    /// the per-connection figures are least diluted by the baseline.
    pub fn largest_connections_run(&self, server: &str) -> Option<Connections<'a>> {
        self.connections_of(server).pop()
    }

    /// The configurations both `a` and `b` ran, sorted.
    pub fn common_configs(&self, a: &str, b: &str) -> Vec<Config> {
        self.configs()
            .into_iter()
            .filter(|c| self.median_run(a, *c).is_some() && self.median_run(b, *c).is_some())
            .collect()
    }

    /// The one-room configuration with the most clients that both `a` and
    /// `b` ran: where the models differ most within what both measured.
    pub fn largest_common_one_room(&self, a: &str, b: &str) -> Option<Config> {
        self.common_configs(a, b)
            .into_iter()
            .filter(|c| c.rooms == Some(1))
            .max_by_key(|c| (c.clients, std::cmp::Reverse(*c)))
    }

    /// The load generator's highest CPU utilization, with its run (a
    /// write-floor run drives no server: not counted).
    pub fn loadgen_peak(&self) -> Option<&'a Record> {
        self.server_records().max_by(|a, b| {
            a.loadgen_process
                .cpu_utilization
                .total_cmp(&b.loadgen_process.cpu_utilization)
        })
    }

    /// Every normal record that drove a server (neither a write-floor run
    /// nor a variant), in file order.
    pub fn server_records(&self) -> impl Iterator<Item = &'a Record> + use<'a> {
        self.main_records()
            .filter(|r| !matches!(r.results, Results::Floor(_)))
    }

    /// Every record but the variants, in file order: what the report's
    /// main tables, figures and caveats are made of.
    pub fn main_records(&self) -> impl Iterator<Item = &'a Record> + use<'a> {
        self.records.iter().filter(|r| !is_variant(r))
    }

    /// A server's fan-out run with the most deliveries per second among
    /// those with `clients` clients in one room that lost nothing.
    pub fn peak_run_at(&self, server: &str, clients: u64) -> Option<Fanout<'a>> {
        self.fanouts_of(server)
            .filter(|f| one_room_of(*f, clients) && f.lost_nothing())
            .max_by(|a, b| {
                a.results
                    .deliveries_per_s
                    .total_cmp(&b.results.deliveries_per_s)
            })
    }

    /// The run at half the peak: among a server's other fan-out runs with
    /// `clients` clients in one room, the one whose offered deliveries per
    /// second are closest to half of [`Data::peak_run_at`]'s measured ones
    /// (the first in file order on a tie).
    pub fn half_peak_run(&self, server: &str, clients: u64) -> Option<Fanout<'a>> {
        let peak = self.peak_run_at(server, clients)?;
        let half = peak.results.deliveries_per_s / 2.0;
        self.fanouts_of(server)
            .filter(|f| one_room_of(*f, clients) && !std::ptr::eq(f.record, peak.record))
            .filter_map(|f| Some((f, (f.offered_deliveries_per_s()? - half).abs())))
            .filter(|(_, distance)| distance.is_finite())
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, _)| f)
    }

    /// A server's last connections run with this target.
    pub fn connections_at(&self, server: &str, target: u64) -> Option<Connections<'a>> {
        self.connections
            .iter()
            .copied()
            .rfind(|c| c.server() == server && c.results.target == target)
    }

    /// Every variant run, in file order, with the normal run it is compared
    /// with: same server, same scenario, same parameters but for timing
    /// (warm-up, duration, hold). For a fan-out, the median (by p99) of the
    /// normal runs that match; for a capacity search or a connections run,
    /// the last one, as elsewhere.
    ///
    /// A variant run followed by a run of today's servers with the same
    /// parameters recorded as variant [`CURRENT`] (bench.sh runs the two back
    /// to back, so that they share the machine's state) is compared with
    /// that run instead; the `current` runs are no rows of their own.
    pub fn before_after(&self) -> Vec<BeforeAfter<'a>> {
        self.variants
            .iter()
            .enumerate()
            .filter(|(_, variant)| variant.params.variant.as_deref() != Some(CURRENT))
            .map(|(i, &variant)| {
                let current = self.variants[i + 1..].iter().copied().find(|after| {
                    after.params.variant.as_deref() == Some(CURRENT)
                        && same_parameters(variant, after)
                });
                if let Some(current) = current {
                    return BeforeAfter {
                        variant,
                        normal: Some(current),
                        matches: 1,
                    };
                }
                let matches: Vec<&'a Record> = self
                    .main_records()
                    .filter(|normal| same_parameters(variant, normal))
                    .collect();
                let normal = match &variant.results {
                    Results::Fanout(_) => {
                        median_by_p99(matches.iter().filter_map(|r| Fanout::of(r)).collect())
                            .map(|(f, _)| f.record)
                    }
                    _ => matches.last().copied(),
                };
                BeforeAfter {
                    variant,
                    normal,
                    matches: matches.len(),
                }
            })
            .collect()
    }

    /// The write floor: the mean over the write-floor runs of the writer's
    /// CPU per frame at one frame per `write()`, in microseconds, with the
    /// runs it is the mean of.
    pub fn write_floor_us(&self) -> Option<(f64, usize)> {
        let at_one: Vec<f64> = self
            .floors
            .iter()
            .filter_map(|f| f.results.at(1))
            .map(|b| b.cpu_us_per_frame)
            .filter(|us| us.is_finite() && *us > 0.0)
            .collect();
        (!at_one.is_empty()).then(|| {
            (
                at_one.iter().sum::<f64>() / at_one.len() as f64,
                at_one.len(),
            )
        })
    }

    /// A fan-out run's server CPU per delivery as a multiple of the write
    /// floor: 1.0 is the CPU of one `write()` of one frame and nothing else.
    pub fn floor_multiple(&self, run: Fanout<'_>) -> Option<f64> {
        let (floor_us, _) = self.write_floor_us()?;
        Some(run.cpu_us_per_delivery()? / floor_us)
    }

    /// The distinct commits the normal records name (variants aside), in
    /// order of appearance.
    pub fn commits(&self) -> Vec<&'a str> {
        let mut commits: Vec<&str> = Vec::new();
        for r in self.main_records() {
            if !commits.contains(&r.commit.as_str()) {
                commits.push(&r.commit);
            }
        }
        commits
    }

    /// Distinct values of a parameter over all records, sorted.
    pub fn distinct_params(&self, get: impl Fn(&Record) -> Option<f64>) -> Vec<f64> {
        let mut values: Vec<f64> = self.records.iter().filter_map(get).collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        values
    }
}

/// A variant run and the normal run it is compared with.
#[derive(Debug, Clone, Copy)]
pub struct BeforeAfter<'a> {
    /// The variant run: before.
    pub variant: &'a Record,
    /// The normal run at the same parameters, if any: after.
    pub normal: Option<&'a Record>,
    /// How many normal runs matched (the one shown stands for them).
    pub matches: usize,
}

/// The room size of the peak and half-peak figures.
pub const PEAK_CLIENTS: u64 = 1000;
/// The connection count of the idle-memory figures.
pub const IDLE_CONNECTIONS: u64 = 10_000;
/// The light load where nothing can be batched: 1,000 clients in one room,
/// one sender at 100 msg/s, so each member's frames come 10 ms apart and
/// each delivery is its own `write()`.
pub const LIGHT_LOAD: Config = Config {
    rooms: Some(1),
    senders: Some(1),
    rate_milli: Some(100_000),
    payload: Some(64),
    clients: Some(PEAK_CLIENTS),
};

/// The variant name of a run of today's servers made right after a variant
/// run, as its "after".
pub const CURRENT: &str = "current";

/// Whether a record is a variant run (`--variant`).
pub fn is_variant(record: &Record) -> bool {
    record.params.variant.is_some()
}

/// Whether a fan-out run had `clients` clients in one room.
fn one_room_of(run: Fanout<'_>, clients: u64) -> bool {
    let c = run.config();
    c.clients == Some(clients) && c.rooms == Some(1)
}

/// Whether two runs are comparable as before and after: the same server,
/// the same scenario, and the same parameters (clients, rooms, senders,
/// rate, payload; a capacity search's SLO and steps; a connections run's
/// target), timing aside.
fn same_parameters(a: &Record, b: &Record) -> bool {
    let (pa, pb) = (&a.params, &b.params);
    let scenario = match (&a.results, &b.results) {
        (Results::Fanout(_), Results::Fanout(_)) => true,
        (Results::Capacity(_), Results::Capacity(_)) => {
            (pa.slo_ms, pa.start, pa.step) == (pb.slo_ms, pb.start, pb.step)
        }
        (Results::Connections(x), Results::Connections(y)) => x.target == y.target,
        _ => false,
    };
    scenario && a.server == b.server && Config::of(a) == Config::of(b)
}

/// The median run by p99 latency (the lower middle for an even count), with
/// the number of runs.
pub fn median_by_p99(mut runs: Vec<Fanout<'_>>) -> Option<(Fanout<'_>, usize)> {
    if runs.is_empty() {
        return None;
    }
    runs.sort_by_key(|f| f.results.latency_us.p99_us);
    let n = runs.len();
    Some((runs[(n - 1) / 2], n))
}

/// One record's short name, for warnings and flags: `sync fan-out, 1,000
/// clients in 1 room, …`.
pub fn describe(record: &Record) -> String {
    match &record.results {
        Results::Fanout(_) => format!("{} fan-out, {}", record.server, Config::of(record)),
        Results::Capacity(_) => {
            let config = Config::of(record).without_clients();
            format!("{} capacity search, {}", record.server, config.load_label())
        }
        Results::Connections(r) => format!(
            "{} connections, target {}",
            record.server,
            format::count(r.target)
        ),
        Results::Floor(_) => format!(
            "write floor ({}, {} loopback connections)",
            record.server,
            record
                .params
                .connections
                .map_or_else(|| "?".to_owned(), format::count)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{
        capacity_record, connections_record, fanout_load_record, fanout_record, variant,
    };

    #[test]
    fn servers_own_first() {
        let records = vec![
            fanout_record("django", 10, 1),
            fanout_record("async", 10, 1),
            fanout_record("sync", 10, 1),
        ];
        let data = Data::new(&records);
        assert_eq!(data.servers, ["sync", "async", "django"]);
        assert_eq!(data.fanouts.len(), 3);
    }

    #[test]
    fn config_label() {
        let record = fanout_record("sync", 1000, 1);
        let config = Config::of(&record);
        assert_eq!(
            config.to_string(),
            "1,000 clients in 1 room, 1 sender/room @ 100 msg/s, 32 B"
        );
    }

    #[test]
    fn median_of_repeats() {
        let mut records = Vec::new();
        for p99 in [30, 10, 20] {
            let mut r = fanout_record("sync", 10, 1);
            if let Results::Fanout(f) = &mut r.results {
                f.latency_us.p99_us = p99;
            }
            records.push(r);
        }
        let data = Data::new(&records);
        let config = data.configs()[0];
        let (run, n) = data.median_run("sync", config).expect("runs");
        assert_eq!(n, 3);
        assert_eq!(run.results.latency_us.p99_us, 20);
    }

    #[test]
    fn capacity_findings() {
        let records = vec![
            capacity_record("sync", &[(100, true), (200, false)]),
            capacity_record("async", &[(100, true), (200, true)]),
            capacity_record("django", &[(100, false)]),
        ];
        let data = Data::new(&records);
        let finding = |s| data.capacity_of(s).map(|c| c.finding());
        assert_eq!(finding("sync"), Some(CapacityFinding::Held(100)));
        assert_eq!(finding("async"), Some(CapacityFinding::AtLeast(200)));
        assert_eq!(finding("django"), Some(CapacityFinding::Below(100)));
        assert_eq!(finding("other"), None);
    }

    #[test]
    fn switches_per_delivery_and_anomalies() {
        let mut r = fanout_record("sync", 10, 1);
        if let Results::Fanout(f) = &mut r.results {
            f.lost = 5;
            f.duplicated = 1;
        }
        let records = vec![r, connections_record("sync", 100, 100, None)];
        let data = Data::new(&records);
        let run = data.fanouts[0];
        let per = run.voluntary_switches_per_delivery().expect("sampled");
        assert!(per > 0.0);
        let anomalies = run.anomalies();
        assert_eq!(anomalies.len(), 2, "{anomalies:?}");
        assert!(anomalies[0].starts_with("lost 5 of"));
        assert_eq!(data.connections.len(), 1);
    }

    #[test]
    fn a_current_run_right_after_a_variant_is_its_after() {
        let mut before = variant(fanout_record("async", 1000, 1), "baseline", "old commit");
        before.started_at = "1".to_owned();
        let mut current = variant(fanout_record("async", 1000, 1), CURRENT, "today");
        current.started_at = "2".to_owned();
        let mut lone = variant(fanout_record("sync", 1000, 1), "batch-1", "no batching");
        lone.started_at = "3".to_owned();
        let normal = fanout_record("sync", 1000, 1);
        let records = vec![normal, before, current, lone];
        let data = Data::new(&records);
        let pairs = data.before_after();
        assert_eq!(pairs.len(), 2, "the current run is no row of its own");
        assert_eq!(pairs[0].variant.started_at, "1");
        assert_eq!(pairs[0].normal.map(|r| r.started_at.as_str()), Some("2"));
        assert_eq!(pairs[1].variant.started_at, "3");
        assert!(pairs[1].normal.is_some_and(|r| r.params.variant.is_none()));
    }

    #[test]
    fn variants_are_kept_apart() {
        let mut busy = variant(fanout_record("sync", 1000, 1), "baseline", "old commit");
        busy.loadgen_process.cpu_utilization = 3.0;
        busy.commit = "fe44d3d".to_owned();
        let records = vec![
            fanout_record("sync", 1000, 1),
            busy,
            variant(fanout_record("other", 10, 1), "x", "only a variant"),
            variant(connections_record("sync", 100, 100, None), "baseline", ""),
        ];
        let data = Data::new(&records);
        assert_eq!(data.servers, ["sync"], "no column for a variant-only label");
        assert_eq!(data.fanouts.len(), 1);
        assert!(data.connections.is_empty());
        assert_eq!(data.variants.len(), 3);
        assert_eq!(data.server_records().count(), 1);
        assert_eq!(data.main_records().count(), 1);
        assert_eq!(
            data.commits().len(),
            1,
            "a variant's commit is not the run's"
        );
        let peak = data.loadgen_peak().expect("a normal run");
        assert!(!is_variant(peak));
    }

    #[test]
    fn a_variant_pairs_with_the_normal_run_at_the_same_parameters() {
        let mut shorter = variant(fanout_record("sync", 1000, 1), "batch-1", "one frame");
        // Timing is not a parameter that must match.
        shorter.params.duration_s = Some(5.0);
        shorter.params.warmup_s = Some(1.0);
        let mut other_slo = variant(
            capacity_record("sync", &[(100, true), (200, false)]),
            "baseline",
            "",
        );
        other_slo.params.slo_ms = Some(100.0);
        let records = vec![
            fanout_record("sync", 100, 1),
            fanout_record("async", 1000, 1),
            fanout_record("sync", 1000, 1),
            connections_record("sync", 5000, 5000, None),
            connections_record("sync", 10000, 10000, None),
            capacity_record("sync", &[(100, true), (200, false)]),
            shorter,
            variant(fanout_record("sync", 1000, 10), "batch-1", "ten rooms"),
            variant(
                connections_record("sync", 10000, 10000, None),
                "baseline",
                "",
            ),
            variant(
                capacity_record("sync", &[(100, true), (200, true)]),
                "baseline",
                "",
            ),
            other_slo,
        ];
        let data = Data::new(&records);
        let pairs = data.before_after();
        assert_eq!(pairs.len(), 5);
        let normal = |i: usize| pairs[i].normal.map(|r| (r.server.as_str(), Config::of(r)));
        assert_eq!(
            normal(0),
            Some(("sync", Config::of(&records[2]))),
            "sync, 1,000 clients, 1 room"
        );
        assert_eq!(pairs[0].matches, 1);
        assert!(normal(1).is_none(), "no normal run in 10 rooms");
        let Some(Results::Connections(c)) = pairs[2].normal.map(|r| &r.results) else {
            panic!("a connections run pairs with one");
        };
        assert_eq!(c.target, 10000);
        assert!(std::ptr::eq(
            pairs[3].normal.expect("same SLO and steps"),
            &records[5]
        ));
        assert!(pairs[4].normal.is_none(), "another SLO is another search");
    }

    #[test]
    fn peak_and_half_peak_at_a_thousand_clients() {
        let mut lossy = fanout_load_record("sync", 1000, 1, 4000.0);
        if let Results::Fanout(f) = &mut lossy.results {
            f.lost = 1;
        }
        let records = vec![
            fanout_load_record("sync", 1000, 1, 100.0),
            fanout_load_record("sync", 1000, 1, 2000.0),
            fanout_load_record("sync", 1000, 2, 450.0),
            fanout_load_record("sync", 1000, 1, 1150.0),
            lossy,
            // More clients, or more rooms: not at 1,000 in one room.
            fanout_load_record("sync", 2000, 1, 2000.0),
            fanout_record("sync", 1000, 10),
            fanout_load_record("async", 1000, 1, 100.0),
            variant(fanout_load_record("async", 1000, 1, 8000.0), "baseline", ""),
        ];
        let data = Data::new(&records);
        let peak = data.peak_run_at("sync", 1000).expect("a peak");
        assert_eq!(peak.results.deliveries_per_s, 2_000_000.0);
        // Half the peak is 1,000,000/s: 1,000 clients × 2 senders × 450
        // msg/s (900,000 offered) is closer than 1 × 1,150 (1,150,000).
        let half = data.half_peak_run("sync", 1000).expect("a half-peak run");
        assert_eq!(half.offered_deliveries_per_s(), Some(900_000.0));
        assert!(!std::ptr::eq(half.record, peak.record));
        // async: one run, which is the peak; the variant is not counted.
        let async_peak = data.peak_run_at("async", 1000).expect("a peak");
        assert_eq!(async_peak.results.deliveries_per_s, 100_000.0);
        assert!(data.half_peak_run("async", 1000).is_none());
    }

    #[test]
    fn connections_at_a_target() {
        let records = vec![
            connections_record("sync", 10000, 7671, Some("503")),
            connections_record("async", 10000, 10000, None),
            connections_record("async", 20000, 20000, None),
        ];
        let data = Data::new(&records);
        let sync = data.connections_at("sync", 10000).expect("a run");
        assert!(!sync.opened_all());
        let asynch = data.connections_at("async", 10000).expect("a run");
        assert!(asynch.opened_all());
        assert_eq!(asynch.results.target, 10000);
        assert!(data.connections_at("async", 5000).is_none());
    }
}
