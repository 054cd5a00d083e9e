//! Rooms on Redis: each server with its rooms in memory, then on Redis with
//! 1, 2 and 4 processes and on two Redis shards, on a rate ladder; and a
//! room shared by chat-sync, chat-async and Django on one Redis.
//!
//! Runs are variants named `layer-<configuration>`; a row is one server in
//! one configuration, a column one rate, so every cell of a column has the
//! same load.

use serde::Serialize;

use chat_record::Record;
use chat_record::verdict::Load;

use crate::data::{Data, Fan, LoadView};

/// The configurations in the table's order.
pub const CONFIGS: [&str; 5] = ["memory", "redis-1", "redis-2", "redis-4", "redis-shards-2"];
/// The room shared with Django.
pub const MIXED: &str = "mixed-django";

/// One server in one configuration, along the ladder.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The server (for the mixed room, every server of it).
    pub server: String,
    /// The configuration.
    pub config: String,
    /// One cell per load of [`Layers::loads`].
    pub cells: Vec<Option<Cell>>,
    /// The most deliveries per second it kept up, with Redis's cores there.
    pub best: Option<Cell>,
}

/// One run: the fan-out, and the Redis servers' cores.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The run.
    pub fan: Fan,
    /// Cores the Redis servers kept busy, added up.
    pub redis_cores: Option<f64>,
    /// Server processes.
    pub processes: u64,
}

/// The section's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Layers {
    /// The ladder's loads, one per column.
    pub loads: Vec<LoadView>,
    /// The rows.
    pub rows: Vec<Row>,
    /// The mixed room's runs.
    pub mixed: Vec<Cell>,
}

fn cell(data: &Data<'_>, r: &Record) -> Option<Cell> {
    let redis: Vec<f64> = r
        .deployment
        .sampled_processes
        .iter()
        .filter(|(label, _)| label.starts_with("redis"))
        .map(|(_, p)| p.cpu_utilization)
        .collect();
    Some(Cell {
        fan: Fan::of(r, data.floor_us)?,
        redis_cores: (!redis.is_empty()).then(|| redis.iter().sum()),
        processes: r.deployment.server_processes.len().max(1) as u64,
    })
}

/// The section, if the run has channel-layer runs.
pub fn layers(data: &Data<'_>) -> Option<Layers> {
    let runs: Vec<(&Record, &str)> = data
        .variants("layer-")
        .filter_map(|r| Some((r, r.params.variant.as_deref()?.strip_prefix("layer-")?)))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut loads: Vec<Load> = runs
        .iter()
        .filter(|(_, c)| *c != MIXED)
        .map(|(r, _)| Load::of(r))
        .collect();
    loads.sort_by_key(|l| l.rate_milli);
    loads.dedup();
    let mut rows = Vec::new();
    for server in &data.servers {
        for config in CONFIGS {
            let of_row: Vec<&Record> = runs
                .iter()
                .filter(|(r, c)| &r.server == server && *c == config)
                .map(|(r, _)| *r)
                .collect();
            if of_row.is_empty() {
                continue;
            }
            let cells: Vec<Option<Cell>> = loads
                .iter()
                .map(|&l| {
                    of_row
                        .iter()
                        .rev()
                        .find(|r| Load::of(r) == l)
                        .and_then(|r| cell(data, r))
                })
                .collect();
            let best = cells
                .iter()
                .flatten()
                .filter(|c| c.fan.kept_up())
                .max_by(|a, b| a.fan.delivered_per_s.total_cmp(&b.fan.delivered_per_s))
                .cloned();
            rows.push(Row {
                server: server.clone(),
                config: config.to_owned(),
                cells,
                best,
            });
        }
    }
    let mixed = runs
        .iter()
        .filter(|(_, c)| *c == MIXED)
        .filter_map(|(r, _)| cell(data, r))
        .collect();
    Some(Layers {
        loads: loads.into_iter().map(Into::into).collect(),
        rows,
        mixed,
    })
}
