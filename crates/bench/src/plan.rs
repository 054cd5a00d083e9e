//! What one experiment runs on one server: its settings and steps, turned
//! into the load generator's parameters. Pure: the driver runs them.

use std::time::Duration;

use chat_loadgen::capacity::CapacityParams;
use chat_loadgen::connections::ConnectionsParams;
use chat_loadgen::defaults;
use chat_loadgen::fanout::{BusyRoom, FanoutParams};
use chat_loadgen::scenario::Load;

use crate::sweep::{Binaries, Experiment, Kind, LoadSpec, Scenario, Setting, Sweep};

fn secs(value: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(value.unwrap_or(default).max(0.0))
}

/// A step's fan-out parameters.
pub fn fanout(spec: &LoadSpec) -> anyhow::Result<FanoutParams> {
    let clients = spec
        .clients
        .ok_or_else(|| anyhow::anyhow!("a fan-out step needs clients"))?;
    Ok(FanoutParams {
        clients,
        rooms: spec.rooms.unwrap_or(defaults::ROOMS),
        senders_per_room: spec.senders.unwrap_or(defaults::SENDERS),
        rate_per_s: spec.rate.unwrap_or(defaults::RATE_PER_S),
        payload_bytes: spec.payload.unwrap_or(defaults::PAYLOAD_BYTES),
        warmup: secs(spec.warmup, defaults::WARMUP_S),
        duration: secs(spec.duration, defaults::DURATION_S),
        drain: secs(spec.drain, defaults::DRAIN_S),
        drain_max: secs(spec.drain_max, defaults::DRAIN_MAX_S),
        connect_timeout: Duration::from_secs_f64(defaults::CONNECT_TIMEOUT_S),
        connect_concurrency: defaults::CONCURRENCY,
        busy: spec.busy_senders.map(|senders| BusyRoom {
            clients: spec.busy_clients.unwrap_or(senders),
            senders,
            rate_per_s: spec.busy_rate.unwrap_or(defaults::BUSY_RATE_PER_S),
        }),
    })
}

/// What a step asks of the load generator, given the open-files limit
/// (`fd_room`: descriptors a process may give to connections) and, for a
/// half-peak step, the rate it derived.
pub fn load(
    scenario: Scenario,
    spec: &LoadSpec,
    fd_room: u64,
    per_source_addr: u64,
) -> anyhow::Result<Load> {
    Ok(match scenario {
        Scenario::Fanout | Scenario::HalfPeak => Load::Fanout(fanout(spec)?),
        Scenario::Capacity => {
            let start = spec.start.unwrap_or(defaults::CAPACITY_START);
            let cap = fd_room / 1000 * 1000;
            let max = spec
                .max
                .unwrap_or(defaults::CAPACITY_MAX)
                .min(cap.max(start));
            Load::Capacity(CapacityParams {
                start,
                step: spec.step.unwrap_or(defaults::CAPACITY_STEP),
                max,
                slo: Duration::from_secs_f64(spec.slo_ms.unwrap_or(defaults::SLO_MS) / 1000.0),
                fanout: fanout(&LoadSpec {
                    clients: Some(start),
                    rooms: Some(1),
                    ..spec.clone()
                })?,
            })
        }
        Scenario::Connections => {
            let count = spec
                .count
                .ok_or_else(|| anyhow::anyhow!("a connections step needs count"))?;
            let source_addrs = count.div_ceil(per_source_addr.max(1)).clamp(1, 250);
            Load::Connections(ConnectionsParams {
                count,
                hold: secs(spec.hold, defaults::HOLD_S),
                source_addrs: u8::try_from(source_addrs).unwrap_or(u8::MAX),
                connect_timeout: Duration::from_secs_f64(defaults::CONNECT_TIMEOUT_S),
                concurrency: defaults::CONCURRENCY,
                max_failures: defaults::MAX_FAILURES,
            })
        }
    })
}

/// The steps of `experiment` under `setting`: its own ladder, or the
/// experiment's, each over the base load; a connections ladder stops at
/// what the open-files limit allows (the rungs above it replaced by one
/// rung at it). The second value says what was cut, for the README.
pub fn steps(
    experiment: &Experiment,
    setting: Option<&Setting>,
    fd_room: u64,
) -> (Vec<LoadSpec>, Option<String>) {
    let ladder = setting
        .and_then(|s| s.ladder.as_ref())
        .unwrap_or(&experiment.ladder);
    let mut steps: Vec<LoadSpec> = if ladder.is_empty() {
        vec![experiment.load.clone()]
    } else {
        ladder.iter().map(|s| experiment.load.with(s)).collect()
    };
    let mut cut = None;
    if experiment.scenario == Scenario::Connections {
        let cap = fd_room / 100 * 100;
        if let Some(first_over) = steps.iter().position(|s| s.count.unwrap_or(0) > cap) {
            let asked = steps[first_over].count.unwrap_or(0);
            steps.truncate(first_over);
            if steps.last().and_then(|s| s.count).unwrap_or(0) < cap {
                steps.push(LoadSpec {
                    count: Some(cap),
                    ..experiment.load.clone()
                });
            }
            cut = Some(format!(
                "Rungs of {asked} connections and above are not run: a process may open only {} files here, so the ladder stops at {cap}.",
                fd_room
            ));
        }
    }
    (steps, cut)
}

/// How many runs an experiment makes at most on `servers` servers (for
/// the console's "run k of at most n").
pub fn most_runs(sweep: &Sweep, experiment: &Experiment, servers: &[&str], fd_room: u64) -> usize {
    let pair = if experiment.paired { 2 } else { 1 };
    if experiment.settings.is_empty() {
        return servers.len() * steps(experiment, None, fd_room).0.len();
    }
    experiment
        .settings
        .iter()
        .map(|setting| {
            let n = steps(experiment, Some(setting), fd_room).0.len() * pair;
            if setting.mix.is_some() {
                n
            } else {
                let applies = servers
                    .iter()
                    .filter(|label| applies(sweep, setting, label))
                    .count();
                n * applies
            }
        })
        .sum()
}

/// Whether `setting` runs on server `label`: listed (or no list), and
/// one of ours where it needs our servers' options (flags, the baseline's
/// binaries, Redis processes).
pub fn applies(sweep: &Sweep, setting: &Setting, label: &str) -> bool {
    let listed = setting
        .servers
        .as_ref()
        .is_none_or(|s| s.iter().any(|x| x == label));
    let ours = sweep.server(label).is_some_and(|d| d.kind == Kind::Ours);
    let needs_ours = !setting.flags.is_empty()
        || setting.binaries == Binaries::Baseline
        || setting.redis.is_some();
    listed && (ours || !needs_ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(counts: &[u64]) -> Experiment {
        Experiment {
            name: "connections".into(),
            about: String::new(),
            servers: Default::default(),
            scenario: Scenario::Connections,
            load: LoadSpec {
                hold: Some(5.0),
                ..LoadSpec::default()
            },
            ladder: counts
                .iter()
                .map(|&c| LoadSpec {
                    count: Some(c),
                    ..LoadSpec::default()
                })
                .collect(),
            stop: Default::default(),
            settings: Vec::new(),
            interleave: false,
            paired: false,
            only_with: None,
            sysctl: Default::default(),
        }
    }

    #[test]
    fn the_connections_ladder_stops_at_the_open_files_limit() {
        let experiment = connections(&[1000, 10000, 20000, 30000]);
        let (steps, cut) = steps(&experiment, None, 19_750);
        let counts: Vec<u64> = steps.iter().filter_map(|s| s.count).collect();
        assert_eq!(counts, [1000, 10000, 19_700]);
        assert!(cut.expect("a cut").contains("stops at 19700"));
        let (steps, cut) = super::steps(&experiment, None, 100_000);
        assert_eq!(steps.len(), 4);
        assert!(cut.is_none());
        assert_eq!(steps[0].hold, Some(5.0), "each rung keeps the base load");
    }

    #[test]
    fn many_connections_spread_over_source_addresses() {
        let spec = LoadSpec {
            count: Some(45_000),
            ..LoadSpec::default()
        };
        let Load::Connections(params) =
            load(Scenario::Connections, &spec, 100_000, 20_000).expect("a connections load")
        else {
            panic!("not a connections load");
        };
        assert_eq!(params.source_addrs, 3);
    }

    #[test]
    fn capacity_stops_at_what_the_load_generator_can_hold() {
        let spec = LoadSpec {
            start: Some(1000),
            step: Some(1000),
            max: Some(30_000),
            ..LoadSpec::default()
        };
        let Load::Capacity(params) =
            load(Scenario::Capacity, &spec, 19_750, 20_000).expect("a capacity load")
        else {
            panic!("not a capacity load");
        };
        assert_eq!(params.max, 19_000);
    }
}
