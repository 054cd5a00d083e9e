//! The `capacity` scenario: clients stepped up in one room, with a fixed
//! number of senders each at a fixed message rate, until the p99 fan-out
//! latency passes the SLO (250 ms by default, as in the websocket-shootout
//! broadcast benchmark) or anything goes wrong (loss, error replies, closes,
//! failed connections). The largest step that held is the capacity.

use std::time::Duration;

use anyhow::bail;

use crate::client::Target;
use crate::fanout::{self, FanoutParams};
use crate::progress::Progress;
use crate::sampler::Watch;
use chat_record::verdict;
use chat_record::{CapacityResults, CapacityStep, Deployment, FanoutResults, ProcessFigures};

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
    /// The rest of each step: its senders (`senders_per_room`, the same
    /// at every step), their rate, payload, warm-up and duration (`clients`
    /// is set per step, `rooms` is 1).
    pub fanout: FanoutParams,
}

/// What a capacity search measured.
#[derive(Debug, Clone)]
pub struct CapacityOutcome {
    /// Every step, and the capacity.
    pub results: CapacityResults,
    /// The server during the last step, if sampled (the first, if several).
    pub server: Option<ProcessFigures>,
    /// The load generator during the last step.
    pub loadgen: ProcessFigures,
    /// The URLs and processes beyond the first, and the others sampled,
    /// during the last step.
    pub deployment: Deployment,
    /// Failures to report.
    pub warnings: Vec<String>,
}

/// Whether a step held: it kept up at its offered rate and its p99 is
/// within the SLO ([`chat_record::verdict::step_held`], the one rule).
pub fn held(results: &FanoutResults, params: &FanoutParams, slo: Duration) -> bool {
    let offered = params.clients as f64 * params.senders_per_room as f64 * params.rate_per_s;
    verdict::step_held(results, offered, slo.as_secs_f64() * 1000.0)
}

/// Checks the steps and the senders against each other: every step, the
/// first included, must have at least as many clients as senders.
pub fn check(params: &CapacityParams) -> anyhow::Result<()> {
    if params.start == 0 || params.step == 0 || params.max < params.start {
        bail!("need 1 <= --start <= --max and --step >= 1");
    }
    let senders = params.fanout.senders_per_room;
    if senders == 0 || senders > params.start {
        bail!(
            "--senders ({senders}) must be between 1 and the clients of the first step (--start {})",
            params.start
        );
    }
    Ok(())
}

/// Runs the search against `targets` (one, or several server processes
/// sharing the room: its members are spread over them as in
/// [`fanout`](crate::fanout)), sampling the processes of `watch`.
pub async fn run(
    targets: &[Target],
    params: &CapacityParams,
    watch: &Watch,
    progress: &Progress,
) -> anyhow::Result<CapacityOutcome> {
    check(params)?;
    let mut steps = Vec::new();
    let mut capacity_clients = None;
    let mut last = None;
    let mut clients = params.start;
    while clients <= params.max {
        let step = FanoutParams {
            clients,
            rooms: 1,
            ..params.fanout.clone()
        };
        let outcome = fanout::run(targets, &step, watch, progress).await?;
        let ok = held(&outcome.results, &step, params.slo);
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
        deployment: last.deployment,
        warnings: last.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_holds_only_within_the_slo_and_at_the_offered_rate() {
        let mut step = search(100, 1).fanout;
        step.clients = 100;
        let offered = 100.0 * step.rate_per_s;
        let mut results = FanoutResults {
            sent: 10,
            deliveries_per_s: offered,
            ..FanoutResults::default()
        };
        results.latency_us.count = 10;
        results.latency_us.p99_us = 200_000;
        let slo = Duration::from_millis(250);
        assert!(held(&results, &step, slo));
        results.latency_us.p99_us = 250_001;
        assert!(!held(&results, &step, slo));
        results.latency_us.p99_us = 1;
        results.deliveries_per_s = offered / 2.0;
        assert!(!held(&results, &step, slo));
        results.deliveries_per_s = offered;
        results.close_codes.insert("1013".into(), 1);
        assert!(!held(&results, &step, slo));
    }

    fn search(start: u64, senders: u64) -> CapacityParams {
        CapacityParams {
            start,
            step: 100,
            max: 1000,
            slo: Duration::from_millis(250),
            fanout: FanoutParams {
                clients: start,
                rooms: 1,
                senders_per_room: senders,
                rate_per_s: 2.0,
                payload_bytes: 64,
                warmup: Duration::from_secs(1),
                duration: Duration::from_secs(5),
                drain: Duration::from_secs(5),
                drain_max: Duration::from_secs(60),
                connect_timeout: Duration::from_secs(10),
                connect_concurrency: 256,
                busy: None,
            },
        }
    }

    #[test]
    fn senders_must_fit_in_the_first_step() {
        assert!(check(&search(100, 1)).is_ok());
        assert!(check(&search(100, 4)).is_ok());
        assert!(check(&search(100, 100)).is_ok());
        assert!(
            check(&search(100, 101)).is_err(),
            "more senders than clients"
        );
        assert!(check(&search(100, 0)).is_err());
        let mut no_step = search(100, 1);
        no_step.step = 0;
        assert!(check(&no_step).is_err());
    }
}
