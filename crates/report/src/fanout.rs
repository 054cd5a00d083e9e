//! The fan-out experiment: every normal fan-out load, one row each, one
//! cell per server; a cell is that server's run at exactly that load.

use serde::Serialize;

use chat_record::verdict::Load;

use crate::data::{Data, Fan, LoadView};

/// One load and each server's run at it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The load.
    pub load: LoadView,
    /// One cell per server of [`Data::servers`]: its run, if it ran this.
    pub cells: Vec<Option<Fan>>,
}

/// Every normal fan-out load (without a busy room), fewest rooms first,
/// then by clients and rate.
pub fn rows(data: &Data<'_>) -> Vec<Row> {
    let fans = data.fans();
    let mut loads: Vec<Load> = data
        .records
        .iter()
        .filter(|r| crate::data::is_normal(r) && r.scenario == "fanout")
        .map(Load::of)
        .filter(|l| l.busy == (0, 0, 0))
        .collect();
    loads.sort_by_key(|l| (l.rooms, l.clients, l.senders, l.rate_milli, l.payload));
    loads.dedup();
    loads
        .into_iter()
        .map(|load| Row {
            load: load.into(),
            cells: data
                .servers
                .iter()
                .map(|s| {
                    fans.iter()
                        .rev()
                        .find(|f| &f.server == s && LoadView::from(load) == f.load)
                        .cloned()
                })
                .collect(),
        })
        .collect()
}
