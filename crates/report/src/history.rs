//! History (SQLite) and the database bridges: each server with history off
//! and on (each `--db-bridge` of chat-async) on a rate ladder, and a quiet
//! room beside a busy one with every database call delayed.
//!
//! Runs are variants named `history-<setting>` and `stall-<setting>`; a
//! column is one server with one setting, and every cell of a row has the
//! same load.

use serde::Serialize;

use chat_record::verdict::Load;
use chat_record::{Record, Results};

use crate::data::{ASYNC, Data, Fan, SYNC};

/// Settings in the tables' order: off, then each place a database call can
/// run.
pub const SETTINGS: [&str; 5] = ["off", "thread", "writer", "spawn-blocking", "inline"];
/// chat-async's default bridge.
pub const DEFAULT_BRIDGE: &str = "writer";

/// One server with one history setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The server.
    pub server: String,
    /// The setting (`off`, `thread`, `writer`, …).
    pub setting: String,
}

/// One rate of the ladder.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The load.
    pub load: crate::data::LoadView,
    /// One cell per column.
    pub cells: Vec<Option<Fan>>,
}

/// The stall experiment for one column.
#[derive(Debug, Clone, Serialize)]
pub struct Stall {
    /// The column.
    pub column: Column,
    /// The quiet room.
    pub quiet: Fan,
    /// The busy room.
    pub busy: Option<Fan>,
}

/// The section's figures.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The columns.
    pub columns: Vec<Column>,
    /// The ladder.
    pub rows: Vec<Row>,
    /// Per column, its run with the most deliveries per second kept up.
    pub best: Vec<Option<Fan>>,
    /// The stall runs.
    pub stall: Vec<Stall>,
    /// chat-sync with history, its best run.
    pub sync_on: Option<Fan>,
    /// chat-async with its default bridge, its best run.
    pub async_default: Option<Fan>,
    /// Whether chat-sync with history kept up at a higher rate than
    /// chat-async with its default bridge.
    pub sync_ahead: bool,
    /// Whether chat-async with its default bridge kept up at a higher rate
    /// than chat-sync with history.
    pub async_ahead: bool,
    /// chat-sync with history at the heaviest load both it and chat-async's
    /// default bridge ran.
    pub sync_top: Option<Fan>,
    /// chat-async's default bridge at that load.
    pub async_top: Option<Fan>,
}

fn column(record: &Record, prefix: &str) -> Option<Column> {
    let setting = record.params.variant.as_deref()?.strip_prefix(prefix)?;
    Some(Column {
        server: record.server.clone(),
        setting: setting.to_owned(),
    })
}

fn order(c: &Column) -> (usize, usize) {
    let server = [SYNC, ASYNC].iter().position(|s| *s == c.server);
    let setting = SETTINGS.iter().position(|s| *s == c.setting);
    (server.unwrap_or(2), setting.unwrap_or(SETTINGS.len()))
}

/// The section, if the run has history runs.
pub fn history(data: &Data<'_>) -> Option<History> {
    let runs: Vec<(&Record, Column)> = data
        .variants("history-")
        .filter_map(|r| column(r, "history-").map(|c| (r, c)))
        .collect();
    if runs.is_empty() {
        return None;
    }
    let mut columns: Vec<Column> = runs.iter().map(|(_, c)| c.clone()).collect();
    columns.sort_by_key(order);
    columns.dedup();
    let mut loads: Vec<Load> = runs.iter().map(|(r, _)| Load::of(r)).collect();
    loads.sort();
    loads.dedup();
    let fan = |r: &Record| Fan::of(r, data.floor_us);
    let rows: Vec<Row> = loads
        .iter()
        .map(|&load| Row {
            load: load.into(),
            cells: columns
                .iter()
                .map(|c| {
                    runs.iter()
                        .rev()
                        .find(|(r, rc)| rc == c && Load::of(r) == load)
                        .and_then(|(r, _)| fan(r))
                })
                .collect(),
        })
        .collect();
    let best: Vec<Option<Fan>> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .filter_map(|row| row.cells[i].clone())
                .filter(Fan::kept_up)
                .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
        })
        .collect();
    let column_of = |server: &str, setting: &str| {
        columns
            .iter()
            .position(|c| c.server == server && c.setting == setting)
    };
    let (sync_on_column, async_default_column) =
        (column_of(SYNC, "thread"), column_of(ASYNC, DEFAULT_BRIDGE));
    let sync_on = sync_on_column.and_then(|i| best[i].clone());
    let async_default = async_default_column.and_then(|i| best[i].clone());
    let (sync_top, async_top) = match (sync_on_column, async_default_column) {
        (Some(s), Some(a)) => rows
            .iter()
            .rev()
            .find_map(|row| row.cells[s].clone().zip(row.cells[a].clone()))
            .unzip(),
        _ => (None, None),
    };
    let rate = |f: &Option<Fan>| f.as_ref().map_or(0.0, |f| f.offered_per_s);
    let mut stall: Vec<Stall> = data
        .variants("stall-")
        .filter_map(|r| {
            let column = column(r, "stall-")?;
            let Results::Fanout(results) = &r.results else {
                return None;
            };
            let busy = results.busy_room.as_ref().map(|busy| {
                let (clients, senders, rate_milli) = Load::of(r).busy;
                let load = Load {
                    rooms: 1,
                    clients,
                    senders,
                    rate_milli,
                    payload: r.params.payload_bytes.unwrap_or(0),
                    busy: (0, 0, 0),
                };
                Fan::new(r, busy, load, None, None)
            });
            Some(Stall {
                column,
                quiet: fan(r)?,
                busy,
            })
        })
        .collect();
    stall.sort_by_key(|s| order(&s.column));
    Some(History {
        sync_ahead: rate(&sync_on) > rate(&async_default),
        async_ahead: rate(&async_default) > rate(&sync_on),
        sync_top,
        async_top,
        sync_on,
        async_default,
        columns,
        rows,
        best,
        stall,
    })
}
