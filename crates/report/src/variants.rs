//! Before and after: each variant run (an older build, one optimisation
//! turned off) beside the run of today's server that followed it at once
//! with the same load (variant `current`), as ratios of the two.

use serde::Serialize;

use chat_record::verdict;
use chat_record::{Record, Results};

use crate::connections::opened_all;
use crate::data::{Data, Fan};

/// The variant name of today's server in a pair.
pub const CURRENT: &str = "current";
/// Variant prefixes that belong to other sections.
const OTHER_SECTIONS: [&str; 4] = ["history-", "stall-", "layer-", crate::cores::PREFIX];

/// One variant and today's server on the same load.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// The server.
    pub server: String,
    /// The variant's name.
    pub variant: String,
    /// What it is, in the sweep's words (`--variant-note`).
    pub note: Option<String>,
    /// The fan-out runs, variant then current (fan-out pairs only).
    pub fans: Option<(Fan, Fan)>,
    /// RSS per idle connection, KiB, variant then current (connections
    /// pairs that opened every connection only).
    pub rss_kib: Option<(f64, f64)>,
    /// Connections of that run.
    pub connections: Option<u64>,
}

/// Every pair in file order: a variant run and the next `current` run of
/// the same server, scenario and load.
pub fn pairs(data: &Data<'_>) -> Vec<Pair> {
    let records = data.records;
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let variant = r.params.variant.as_deref()?;
            if variant == CURRENT || OTHER_SECTIONS.iter().any(|p| variant.starts_with(p)) {
                return None;
            }
            let current = records[i + 1..].iter().find(|c| {
                c.params.variant.as_deref() == Some(CURRENT)
                    && c.server == r.server
                    && same_load(r, c)
            })?;
            Some(pair(data, r, current, variant))
        })
        .collect()
}

/// The same scenario and load. Not [`verdict::same_load`], which also keeps
/// a run with flags of its own apart from a default one: a pair sets a
/// variant's flags beside today's defaults on purpose.
fn same_load(a: &Record, b: &Record) -> bool {
    a.scenario == b.scenario
        && verdict::Load::of(a) == verdict::Load::of(b)
        && match (&a.results, &b.results) {
            (Results::Connections(x), Results::Connections(y)) => x.target == y.target,
            _ => true,
        }
}

fn pair(data: &Data<'_>, variant: &Record, current: &Record, name: &str) -> Pair {
    let fans = Fan::of(variant, data.floor_us).zip(Fan::of(current, data.floor_us));
    let rss = |r: &Record| match &r.results {
        Results::Connections(c) if opened_all(c) => c.rss_per_connection_kib,
        _ => None,
    };
    let connections = match &variant.results {
        Results::Connections(c) => Some(c.target),
        _ => None,
    };
    Pair {
        server: variant.server.clone(),
        variant: name.to_owned(),
        note: variant.params.variant_note.clone(),
        fans,
        rss_kib: rss(variant).zip(rss(current)),
        connections,
    }
}
