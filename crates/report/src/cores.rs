//! The cores experiment: each server pinned (`taskset`) to 1, 2 (and on
//! bigger machines 4, 8) cores, the load generator on cores of its own,
//! climbing the peak ladder at 1,000 clients in one room and running one
//! light load; how far each server gets with each core count, what a
//! delivery costs it, and how its peak scales with the cores.
//!
//! Runs are variants named `cores-<N>` (`params.server_cpus` and
//! `params.loadgen_cpus` say where each ran); they stay out of every other
//! section, since a pinned server is not the server the rest of the report
//! measured. A row is one server with one core count; every cell of a
//! column has the same load.

use serde::Serialize;

use chat_record::Record;
use chat_record::verdict::Load;

use crate::data::{Data, Fan, LoadView};
use crate::headline::{LIGHT_RATE, PEAK_CLIENTS, Peak, peak_of};

/// The variant prefix of the experiment's runs: `cores-<N>`.
pub const PREFIX: &str = "cores-";

/// One server with one core count.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The server.
    pub server: String,
    /// Whether it is the server's first row (its own words go there).
    pub first: bool,
    /// Whether the server may use more than one core, in `servers.json`'s
    /// words ("one thread": Node.js), if recorded.
    pub words: Option<String>,
    /// Cores it was pinned to.
    pub cores: u64,
    /// Those cores, as the `taskset` list it was given.
    pub server_cpus: Option<String>,
    /// The load generator's cores in those runs, a `taskset` list (the
    /// same as the server's when they share them).
    pub loadgen_cpus: Option<String>,
    /// What the variant is, in the sweep's words (`--variant-note`).
    pub note: Option<String>,
    /// Its peak at [`PEAK_CLIENTS`] clients in one room.
    pub peak: Option<Peak>,
    /// Its run at the light load ([`Cores::light`]).
    pub light: Option<Fan>,
    /// Its peak over its peak on one core; absent on one core, or when
    /// either did not keep up anywhere, or when one core already reached
    /// the top of the ladder (the ratio would say nothing).
    pub scaling: Option<f64>,
    /// Whether the ratio is a lower bound: this core count reached the top
    /// of the ladder, so it may have more in it.
    pub scaling_at_least: bool,
}

/// The section's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Cores {
    /// One row per server and core count: servers in the report's order,
    /// fewest cores first.
    pub rows: Vec<Row>,
    /// The light load: one room, one sender at [`LIGHT_RATE`], fewer than
    /// [`PEAK_CLIENTS`] clients (the first such run's).
    pub light: Option<LoadView>,
}

/// The core count of a `cores-<N>` variant run, if it is one.
pub fn core_count(record: &Record) -> Option<u64> {
    record
        .params
        .variant
        .as_deref()?
        .strip_prefix(PREFIX)?
        .parse()
        .ok()
        .filter(|&n| n > 0)
}

/// Whether a run is at the light load's shape: one room, one sender at
/// [`LIGHT_RATE`], fewer clients than the peak ladder's, no busy room.
fn is_light(record: &Record) -> bool {
    let l = Load::of(record);
    record.scenario == "fanout"
        && l.rooms == 1
        && l.senders == 1
        && l.rate_per_s() == LIGHT_RATE
        && l.clients < PEAK_CLIENTS
        && l.busy == (0, 0, 0)
}

/// The section, if the run has cores runs.
pub fn cores(data: &Data<'_>) -> Option<Cores> {
    let runs: Vec<(&Record, u64)> = data
        .variants(PREFIX)
        .filter_map(|r| Some((r, core_count(r)?)))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let light = runs
        .iter()
        .map(|(r, _)| *r)
        .find(|r| is_light(r))
        .map(Load::of);
    let mut keys: Vec<(usize, String, u64)> = runs
        .iter()
        .map(|(r, n)| {
            let place = data.listed.iter().position(|s| *s == r.server);
            (place.unwrap_or(usize::MAX), r.server.clone(), *n)
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut rows: Vec<Row> = Vec::new();
    for (_, server, n) in keys {
        let of_row: Vec<&Record> = runs
            .iter()
            .filter(|(r, c)| r.server == server && *c == n)
            .map(|(r, _)| *r)
            .collect();
        let first = rows.last().is_none_or(|r| r.server != server);
        rows.push(Row {
            words: data.setup(&server).map(|s| s.cores.clone()),
            first,
            cores: n,
            server_cpus: of_row.iter().find_map(|r| r.params.server_cpus.clone()),
            loadgen_cpus: of_row.iter().find_map(|r| r.params.loadgen_cpus.clone()),
            note: of_row.iter().find_map(|r| r.params.variant_note.clone()),
            peak: peak_of(of_row.iter().copied(), data.floor_us),
            light: light.and_then(|l| {
                of_row
                    .iter()
                    .rev()
                    .find(|r| r.scenario == "fanout" && Load::of(r) == l)
                    .and_then(|r| Fan::of(r, data.floor_us))
            }),
            scaling: None,
            scaling_at_least: false,
            server,
        });
    }
    let on_one: Vec<(String, Option<Peak>)> = rows
        .iter()
        .filter(|r| r.cores == 1)
        .map(|r| (r.server.clone(), r.peak.clone()))
        .collect();
    for row in rows.iter_mut().filter(|r| r.cores > 1) {
        let one = on_one.iter().find(|(s, _)| *s == row.server);
        if let Some((ratio, at_least)) = one
            .and_then(|(_, p)| p.as_ref())
            .zip(row.peak.as_ref())
            .and_then(|(one, this)| scaling(one, this))
        {
            row.scaling = Some(ratio);
            row.scaling_at_least = at_least;
        }
    }
    Some(Cores {
        rows,
        light: light.map(Into::into),
    })
}

/// A peak over the same server's peak on one core, and whether that is a
/// lower bound (the peak is the ladder's top); `None` when either kept up
/// nowhere, or when one core already reached the top of the ladder: more
/// cores can only reach it too, and the ratio would say nothing.
fn scaling(one: &Peak, this: &Peak) -> Option<(f64, bool)> {
    let (base, best) = (one.best.as_ref()?, this.best.as_ref()?);
    if one.stopped.is_none() || base.delivered_per_s <= 0.0 {
        return None;
    }
    Some((
        best.delivered_per_s / base.delivered_per_s,
        this.stopped.is_none(),
    ))
}
