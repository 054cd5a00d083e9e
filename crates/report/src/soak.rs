//! Endurance: each server under a long steady load, what it lost, and
//! whether its memory, threads and descriptors stayed flat over the second
//! half of the run ([`chat_record::flat`] decides).

use serde::Serialize;

use chat_record::flat::Resources;
use chat_record::soak::SoakRecord;

/// One server's soak.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// The server.
    pub server: String,
    /// The commit soaked.
    pub commit: String,
    /// Minutes of load.
    pub minutes: f64,
    /// Messages sent, deliveries owed and made, and lost.
    pub sent: u64,
    /// Deliveries owed.
    pub expected: u64,
    /// Deliveries made.
    pub delivered: u64,
    /// Deliveries lost, duplicated or out of order.
    pub lost: u64,
    /// Churn cycles completed.
    pub churn_cycles: u64,
    /// Slow readers closed with 1013, of those started.
    pub slow_closed: u64,
    /// Slow readers started.
    pub slow_readers: u64,
    /// Hostile clients answered as the protocol says, of those started.
    pub bad_answered: u64,
    /// Hostile clients started.
    pub bad_clients: u64,
    /// Whether the soak passed (nothing lost, everyone answered).
    pub passed: bool,
    /// Each resource: name, early, midway, end, peak, and whether flat.
    pub resources: Vec<Level>,
    /// Cores busy on average.
    pub cpu_mean: Option<f64>,
}

/// One resource of a soak.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// `rss_mib`, `threads` or `fds`.
    pub name: &'static str,
    /// Median of the early window.
    pub early: f64,
    /// Median from halfway.
    pub midway: f64,
    /// Median of the end window.
    pub end: f64,
    /// Whether the end is within its allowance of midway.
    pub flat: bool,
}

/// The soak of each server.
pub fn soaks(records: &[SoakRecord]) -> Vec<Soak> {
    records
        .iter()
        .map(|r| {
            let figures = Resources::of(r);
            let t = &r.totals;
            let resources = figures.as_ref().map_or_else(Vec::new, |f| {
                ["rss_mib", "threads", "fds"]
                    .into_iter()
                    .zip(f.checks())
                    .map(|(name, check)| Level {
                        name,
                        early: check.level.early,
                        midway: check.level.midway,
                        end: check.level.end,
                        flat: check.flat(),
                    })
                    .collect()
            });
            Soak {
                server: r.server.clone(),
                commit: r.commit.clone(),
                minutes: r.params.duration_s / 60.0,
                sent: t.sent,
                expected: t.expected,
                delivered: t.delivered,
                lost: t.lost + t.duplicates + t.out_of_order,
                churn_cycles: t.churn_cycles,
                slow_closed: t.slow_readers_closed_1013,
                slow_readers: t.slow_readers,
                bad_answered: t.bad_clients_answered,
                bad_clients: t.bad_clients,
                passed: r.passed,
                resources,
                cpu_mean: figures.map(|f| f.cpu_mean),
            }
        })
        .collect()
}
