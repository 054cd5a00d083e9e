//! The `capacity` scenario: clients stepped up in one room, at a fixed
//! message rate, until the p99 fan-out latency passes the SLO (250 ms by
//! default, as in the websocket-shootout broadcast benchmark) or anything
//! goes wrong (loss, error replies, closes, failed connections). The largest
//! step that held is the capacity.

use std::time::Duration;

use anyhow::bail;

use crate::client::Target;
use crate::fanout::{self, FanoutParams};
use crate::progress::Progress;
use crate::record::{CapacityResults, CapacityStep, FanoutResults, ProcessFigures};

/// What a capacity search does.
#[derive(Debug, Clone)]
pub struct CapacityParams {
    /// Clients in the first step.
    pub start: u64,
    /// Clients added per step.
    pub step: u64,
    /// The largest step tried.
    pub max: u64,
    /// The p99 fan-out latency a step must stay within.
    pub slo: Duration,
    /// The rest of each step: one room, one sender, its rate, payload,
    /// warm-up and duration (`clients` is set per step).
    pub fanout: FanoutParams,
}

/// What a capacity search measured.
#[derive(Debug, Clone)]
pub struct CapacityOutcome {
    /// Every step, and the capacity.
    pub results: CapacityResults,
    /// The server during the last step, if sampled.
    pub server: Option<ProcessFigures>,
    /// The load generator during the last step.
    pub loadgen: ProcessFigures,
    /// Failures to report.
    pub warnings: Vec<String>,
}

/// Whether a step held: p99 within the SLO and nothing went wrong.
pub fn held(results: &FanoutResults, slo: Duration) -> bool {
    results.latency_us.count > 0
        && results.latency_us.p99_us <= slo.as_micros() as u64
        && results.lost == 0
        && results.late == 0
        && results.missed_by_closed == 0
        && results.duplicated == 0
        && results.error_replies == 0
        && results.connect_failures == 0
        && results.close_codes.is_empty()
}

/// Runs the search against `target`.
pub async fn run(
    target: &Target,
    params: &CapacityParams,
    server_pid: Option<u32>,
    progress: &Progress,
) -> anyhow::Result<CapacityOutcome> {
    if params.start == 0 || params.step == 0 || params.max < params.start {
        bail!("need 1 <= --start <= --max and --step >= 1");
    }
    let mut steps = Vec::new();
    let mut capacity_clients = None;
    let mut last = None;
    let mut clients = params.start;
    while clients <= params.max {
        let step = FanoutParams {
            clients,
            rooms: 1,
            senders_per_room: 1,
            ..params.fanout.clone()
        };
        let outcome = fanout::run(target, &step, server_pid, progress).await?;
        let ok = held(&outcome.results, params.slo);
        tracing::info!(
            clients,
            p99_us = outcome.results.latency_us.p99_us,
            lost = outcome.results.lost,
            held = ok,
            "capacity step"
        );
        steps.push(CapacityStep {
            clients,
            held: ok,
            fanout: outcome.results.clone(),
        });
        last = Some(outcome);
        if !ok {
            break;
        }
        capacity_clients = Some(clients);
        clients += params.step;
    }
    let last = last.expect("at least one step runs");
    Ok(CapacityOutcome {
        results: CapacityResults {
            steps,
            capacity_clients,
        },
        server: last.server,
        loadgen: last.loadgen,
        warnings: last.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_holds_only_within_the_slo_and_without_loss() {
        let mut results = FanoutResults::default();
        results.latency_us.count = 10;
        results.latency_us.p99_us = 200_000;
        let slo = Duration::from_millis(250);
        assert!(held(&results, slo));
        results.latency_us.p99_us = 250_001;
        assert!(!held(&results, slo));
        results.latency_us.p99_us = 1;
        results.lost = 1;
        assert!(!held(&results, slo));
        results.lost = 0;
        results.close_codes.insert("1013".into(), 1);
        assert!(!held(&results, slo));
    }
}
