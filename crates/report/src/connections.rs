//! Idle connections: the ladder of each server, one row per target, one
//! cell per server.

use serde::Serialize;

use chat_record::{ConnectionsResults, Results};

use crate::data::Data;

/// One server's run at one target.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Connections opened.
    pub opened: u64,
    /// Connections asked for.
    pub target: u64,
    /// Whether it opened them all.
    pub all: bool,
    /// RSS per connection, KiB.
    pub rss_kib: Option<f64>,
    /// Threads per connection.
    pub threads: Option<f64>,
    /// Handshakes per second while opening.
    pub handshakes_per_s: f64,
    /// The first failure, as the load generator saw it.
    pub failure: Option<String>,
}

/// Whether a connections run opened every connection it asked for.
pub fn opened_all(c: &ConnectionsResults) -> bool {
    c.opened == c.target && c.failed == 0
}

impl Cell {
    /// The figures of a connections run.
    pub fn of(c: &ConnectionsResults) -> Self {
        Self {
            opened: c.opened,
            target: c.target,
            all: opened_all(c),
            rss_kib: c.rss_per_connection_kib,
            threads: c.threads_per_connection,
            handshakes_per_s: c.handshakes_per_s,
            failure: c.first_failure.clone(),
        }
    }
}

/// One target and each server's run at it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Connections asked for.
    pub target: u64,
    /// One cell per server of [`Data::servers`].
    pub cells: Vec<Option<Cell>>,
}

/// Every target of the normal connections runs, in order.
pub fn rows(data: &Data<'_>) -> Vec<Row> {
    let runs: Vec<(&str, Cell)> = data
        .records
        .iter()
        .filter(|r| crate::data::is_normal(r))
        .filter_map(|r| match &r.results {
            Results::Connections(c) => Some((r.server.as_str(), Cell::of(c))),
            _ => None,
        })
        .collect();
    let mut targets: Vec<u64> = runs.iter().map(|(_, c)| c.target).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
        .into_iter()
        .map(|target| Row {
            target,
            cells: data
                .servers
                .iter()
                .map(|s| {
                    runs.iter()
                        .rev()
                        .find(|(server, c)| server == s && c.target == target)
                        .map(|(_, c)| c.clone())
                })
                .collect(),
        })
        .collect()
}
