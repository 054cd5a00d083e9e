//! The section's prose: how the runs were made, then what the numbers say.
//!
//! Every figure comes from the rows, and every conclusion is chosen by the
//! figures: Redis "was saturated" only where its busiest server used at
//! least [`SATURATED`] cores, the machine "ran out" only where the cores
//! busy in all came that near its cores, sharding "bought" something only
//! where the numbers differ by more than [`crate::compare::TIE`]. The fixed
//! text explains the mechanism, never the outcome.

use std::fmt::Write as _;

use crate::compare::{Better, Outcome, outcome, verdict};
use crate::format;

use super::{KEPT_UP, Kind, LayerRun, Layers, Limit, Row, SATURATED, Setup};

/// A threshold as a percentage: `90%`.
fn percent(fraction: f64) -> String {
    format!("{}%", format::plain((fraction * 100.0).round()))
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `12.3 ms`, or `nothing delivered`.
fn ms(us: Option<u64>) -> String {
    us.map_or_else(
        || "nothing delivered".to_owned(),
        |us| format!("{} ms", format::ms(us)),
    )
}

fn msgs(v: Option<f64>) -> String {
    v.map_or_else(
        || "? msg/s".to_owned(),
        |v| format!("{} msg/s", format::sig(v)),
    )
}

/// CPU seconds per 1,000 deliveries as `1.23 ms`.
fn cpu_ms(s: Option<f64>) -> String {
    s.map_or_else(
        || "?".to_owned(),
        |s| format!("{} ms", format::sig(s * 1000.0)),
    )
}

/// The servers of some rows, in the rows' order.
fn servers<'a>(rows: &[Row<'a>]) -> Vec<&'a str> {
    let mut servers: Vec<&'a str> = Vec::new();
    for row in rows {
        if !servers.contains(&row.run.server()) {
            servers.push(row.run.server());
        }
    }
    servers
}

/// The configurations of some rows, in order.
fn setups(rows: &[Row<'_>]) -> Vec<Setup> {
    let mut setups: Vec<Setup> = rows.iter().map(|r| r.run.setup()).collect();
    setups.sort();
    setups.dedup();
    setups
}

/// What a run's figures say limited it, in words.
fn limit_text(run: &LayerRun<'_>, cores: Option<u64>) -> String {
    let parts = format!(
        "servers {}, Redis {}, load generator {} cores",
        run.server_cores()
            .map_or_else(|| "?".to_owned(), format::sig),
        run.redis_cores()
            .map_or_else(|| "none".to_owned(), format::sig),
        format::sig(run.loadgen_cores())
    );
    match run.limit(cores) {
        Limit::Redis(busiest) => format!(
            "Redis saturated: its busiest server used {} cores ({parts})",
            format::sig(busiest)
        ),
        Limit::Machine(busy, n) => format!(
            "the machine's {n} cores busy: {} in all ({parts})",
            format::sig(busy)
        ),
        Limit::Unclear => format!(
            "no process near its limit, nor the machine ({parts}{})",
            run.cores_busy()
                .zip(cores)
                .map(|(busy, n)| format!("; {} of {n} cores busy", format::sig(busy)))
                .unwrap_or_default()
        ),
    }
}

/// The opening: how the runs were made.
pub fn intro(layers: &Layers<'_>, cores: Option<u64>) -> String {
    let mut loads: Vec<String> = layers
        .runs
        .iter()
        .filter(|r| r.kind != Kind::Mixed)
        .filter_map(|r| {
            let c = r.config();
            Some(format!(
                "{} of {} ({} per room)",
                format::plural(c.rooms?, "room"),
                format::count(r.room_size()?),
                format::plural(c.senders?, "sender")
            ))
        })
        .collect();
    loads.sort();
    loads.dedup();
    let load = if loads.is_empty() {
        String::new()
    } else {
        format!(" The ladder's load: {}.", and_list(&loads))
    };
    let machine = cores.map_or_else(
        || "this machine's cores".to_owned(),
        |n| format!("this machine's {n} cores"),
    );
    format!(
        "Both servers with their rooms on Redis pub/sub (`--layer redis`, channels_redis' wire \
         format), 1, 2 and 4 processes of the same server on one Redis, against one process \
         with its rooms in memory (`--layer memory`), the reference; then the most processes \
         on two Redis shards against one; and one room shared by a chat-sync, a chat-async and \
         a Django Channels process.{load} chat-loadgen spreads every room's members over the \
         processes, so every process has members in every room: a server publishes each \
         message a client sends (one `PUBLISH`), Redis sends it to every process subscribed to \
         the room's channel, and each fans it out to its own members. The deliveries are the \
         same whatever the processes; Redis's work grows with messages × processes. Each \
         configuration climbs a ladder of rates and stops at the first it does not deliver (at \
         least {} of the deliveries/s asked, nothing lost, late or closed). Redis runs every \
         command on one thread: at {} cores or more it is saturated. The server processes, \
         Redis and the load generator all share {machine}; the tables show how busy each was \
         over the measured window. CPU per 1,000 deliveries is over every delivery of the \
         run; Redis's CPU per message over every message sent. Each run is recorded as a \
         variant `layer-…` with the servers' flags, and appears only in this section.\n",
        percent(KEPT_UP),
        format::plain(SATURATED),
    )
}

/// How far a server's runs in one configuration kept up: the heaviest
/// rate kept up, and the first rate above it that was not, if any.
struct Reach<'a> {
    kept: Option<LayerRun<'a>>,
    failed: Option<LayerRun<'a>>,
}

fn reach<'a>(runs: &[LayerRun<'a>]) -> Reach<'a> {
    let asked = |r: &LayerRun<'_>| r.asked_messages_per_s().unwrap_or(0.0);
    let kept = runs
        .iter()
        .filter(|r| r.kept_up())
        .max_by(|a, b| asked(a).total_cmp(&asked(b)))
        .copied();
    let floor = kept.as_ref().map_or(f64::NEG_INFINITY, asked);
    let failed = runs
        .iter()
        .filter(|r| !r.kept_up() && asked(r) > floor)
        .min_by(|a, b| asked(a).total_cmp(&asked(b)))
        .copied();
    Reach { kept, failed }
}

fn reach_text(reach: &Reach<'_>, cores: Option<u64>) -> String {
    let mut out = match &reach.kept {
        Some(k) => format!(
            "kept up to {} ({} deliveries/s, p99 {})",
            msgs(k.asked_messages_per_s()),
            format::sig(k.delivered_per_s()),
            ms(k.p99_us())
        ),
        None => "kept up at no rate asked".to_owned(),
    };
    match &reach.failed {
        Some(f) => {
            let _ = write!(
                out,
                ", and fell behind at {} ({} of the deliveries/s asked delivered, p99 {}; {})",
                msgs(f.asked_messages_per_s()),
                f.asked_deliveries_per_s().filter(|a| *a > 0.0).map_or_else(
                    || "?".to_owned(),
                    |a| format::percent(f.delivered_per_s() / a)
                ),
                ms(f.p99_us()),
                limit_text(f, cores)
            );
        }
        None if reach.kept.is_some() => out.push_str(", the top of its ladder"),
        None => {}
    }
    out
}

/// The process ladder: per server, how far each configuration kept up and
/// why it stopped, what the Redis layer costs against memory, and Redis's
/// work by processes; then where Redis becomes the bottleneck.
pub fn ladder(rows: &[Row<'_>], cores: Option<u64>) -> String {
    let mut out = String::new();
    for server in servers(rows) {
        let mine: Vec<LayerRun<'_>> = rows
            .iter()
            .map(|r| r.run)
            .filter(|r| r.server() == server)
            .collect();
        let _ = writeln!(out, "- **{server}**:");
        for setup in setups(rows) {
            let runs: Vec<LayerRun<'_>> = mine
                .iter()
                .copied()
                .filter(|r| r.setup() == setup)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "  - {}: {}.",
                setup.describe(),
                reach_text(&reach(&runs), cores)
            );
        }
        if let Some(text) = memory_against_redis(&mine) {
            let _ = writeln!(out, "  - {text}");
        }
        if let Some(text) = redis_by_processes(&mine) {
            let _ = writeln!(out, "  - {text}");
        }
        out.push('\n');
    }
    out.push_str(&bottleneck(rows, cores));
    out
}

/// The runs of `setup` in `runs` at the rate of `at`.
fn at_rate<'a>(runs: &[LayerRun<'a>], setup: Setup, at: &LayerRun<'_>) -> Option<LayerRun<'a>> {
    runs.iter()
        .copied()
        .find(|r| r.setup() == setup && r.config() == at.config())
}

/// The memory layer against one process on Redis, at the heaviest rate
/// both kept up.
fn memory_against_redis(runs: &[LayerRun<'_>]) -> Option<String> {
    let memory = Setup {
        kind: Kind::Memory,
        processes: 1,
        shards: 0,
    };
    let redis = Setup {
        kind: Kind::Redis,
        processes: 1,
        shards: 1,
    };
    let asked = |r: &LayerRun<'_>| r.asked_messages_per_s().unwrap_or(0.0);
    let (m, r) = runs
        .iter()
        .filter(|m| m.setup() == memory && m.kept_up())
        .filter_map(|m| Some((*m, at_rate(runs, redis, m).filter(LayerRun::kept_up)?)))
        .max_by(|a, b| asked(&a.0).total_cmp(&asked(&b.0)))?;
    let factor = match (m.server_cpu_per_1000(), r.server_cpu_per_1000()) {
        (Some(a), Some(b)) if a > 0.0 => format!(" ({}×)", format::sig(b / a)),
        _ => String::new(),
    };
    Some(format!(
        "At {}, the heaviest rate both kept up, the server's CPU per 1,000 deliveries was {} \
         with rooms in memory and {}{factor} on Redis with one process, Redis itself adding {}; \
         p99 {} in memory, {} on Redis.",
        msgs(m.asked_messages_per_s()),
        cpu_ms(m.server_cpu_per_1000()),
        cpu_ms(r.server_cpu_per_1000()),
        cpu_ms(r.redis_cpu_per_1000()),
        ms(m.p99_us()),
        ms(r.p99_us()),
    ))
}

/// Redis's CPU per message by process count, at the heaviest rate every
/// one-Redis configuration of the server kept up.
fn redis_by_processes(runs: &[LayerRun<'_>]) -> Option<String> {
    let mut redis: Vec<Setup> = runs
        .iter()
        .map(LayerRun::setup)
        .filter(|s| s.kind == Kind::Redis && s.shards == 1)
        .collect();
    redis.sort();
    redis.dedup();
    if redis.len() < 2 {
        return None;
    }
    let asked = |r: &LayerRun<'_>| r.asked_messages_per_s().unwrap_or(0.0);
    let (first, rest) = redis.split_first()?;
    let at = runs
        .iter()
        .filter(|r| r.setup() == *first && r.kept_up())
        .filter(|r| {
            rest.iter()
                .all(|s| at_rate(runs, *s, r).is_some_and(|o| o.kept_up()))
        })
        .max_by(|a, b| asked(a).total_cmp(&asked(b)))?;
    let figures: Vec<(Setup, LayerRun<'_>)> = redis
        .iter()
        .filter_map(|s| Some((*s, at_rate(runs, *s, at)?)))
        .collect();
    let costs: Vec<String> = figures
        .iter()
        .map(|(s, r)| {
            format!(
                "{} µs with {}",
                r.redis_us_per_message()
                    .map_or_else(|| "?".to_owned(), format::sig),
                super::processes_text(s.processes)
            )
        })
        .collect();
    let ceilings: Vec<String> = figures
        .iter()
        .map(|(_, r)| {
            r.redis_ceiling_messages_per_s()
                .map_or_else(|| "?".to_owned(), format::sig)
        })
        .collect();
    let growth = match (
        figures.first().and_then(|(_, r)| r.redis_us_per_message()),
        figures.last().and_then(|(_, r)| r.redis_us_per_message()),
    ) {
        (Some(a), Some(b)) if a > 0.0 => format!(
            " ({}× from {} to {})",
            format::sig(b / a),
            super::processes_text(figures[0].0.processes),
            super::processes_text(figures[figures.len() - 1].0.processes)
        ),
        _ => String::new(),
    };
    Some(format!(
        "At {}, the heaviest rate it kept up with every process count, Redis's CPU per \
         message was {}{growth}: at those costs one Redis core would carry about {} msg/s \
         respectively (a projection: 1 s of CPU over the cost).",
        msgs(at.asked_messages_per_s()),
        and_list(&costs),
        and_list(&ceilings),
    ))
}

/// Where Redis becomes the bottleneck, from every run of the ladder: where
/// it was saturated, or, if it never was, what stopped the configurations
/// that fell behind and where Redis's measured cost would fill its core.
fn bottleneck(rows: &[Row<'_>], cores: Option<u64>) -> String {
    let mut out = String::from("**Where Redis becomes the bottleneck.** ");
    let runs: Vec<LayerRun<'_>> = rows.iter().map(|r| r.run).collect();
    let on_redis: Vec<LayerRun<'_>> = runs.iter().copied().filter(|r| r.shards() > 0).collect();
    if on_redis.is_empty() {
        out.push_str("No run had its rooms on Redis.\n");
        return out;
    }
    let saturated: Vec<LayerRun<'_>> = on_redis
        .iter()
        .copied()
        .filter(|r| matches!(r.limit(cores), Limit::Redis(_)))
        .collect();
    let asked = |r: &LayerRun<'_>| r.asked_messages_per_s().unwrap_or(0.0);
    if !saturated.is_empty() {
        let mut firsts: Vec<String> = Vec::new();
        for server in servers(rows) {
            for setup in setups(rows) {
                if let Some(first) = saturated
                    .iter()
                    .filter(|r| r.server() == server && r.setup() == setup)
                    .min_by(|a, b| asked(a).total_cmp(&asked(b)))
                {
                    firsts.push(format!(
                        "{server} with {} from {} ({} cores)",
                        setup.prose(),
                        msgs(first.asked_messages_per_s()),
                        first
                            .redis_busiest()
                            .map_or_else(|| "?".to_owned(), format::sig)
                    ));
                }
            }
        }
        let _ = writeln!(
            out,
            "Redis's busiest server reached {} cores or more, saturated, in {}: {}. There, \
             more processes of ours add work to Redis without adding any it can do, and \
             sharding the rooms over more Redis servers is what helps.",
            format::plain(SATURATED),
            format::plural(saturated.len() as u64, "run"),
            and_list(&firsts)
        );
        return out;
    }
    let busiest = on_redis
        .iter()
        .max_by(|a, b| {
            a.redis_busiest()
                .unwrap_or(0.0)
                .total_cmp(&b.redis_busiest().unwrap_or(0.0))
        })
        .copied();
    if let Some(b) = busiest {
        let _ = write!(
            out,
            "Redis was never saturated: its busiest server used at most {} cores ({} with {}, \
             at {}).",
            b.redis_busiest()
                .map_or_else(|| "?".to_owned(), format::sig),
            b.server(),
            b.setup().prose(),
            msgs(b.asked_messages_per_s())
        );
    }
    // The first rung each configuration did not deliver, and why.
    let mut behind: Vec<LayerRun<'_>> = Vec::new();
    for server in servers(rows) {
        for setup in setups(rows) {
            let mine: Vec<LayerRun<'_>> = runs
                .iter()
                .copied()
                .filter(|r| r.server() == server && r.setup() == setup)
                .collect();
            if let Some(f) = reach(&mine).failed {
                behind.push(f);
            }
        }
    }
    if behind.is_empty() {
        out.push_str(" No configuration fell behind at the rates asked.");
    } else {
        let machine = behind
            .iter()
            .filter(|r| matches!(r.limit(cores), Limit::Machine(..)))
            .count();
        let names: Vec<String> = behind
            .iter()
            .map(|r| {
                format!(
                    "{} with {} at {}",
                    r.server(),
                    r.setup().prose(),
                    msgs(r.asked_messages_per_s())
                )
            })
            .collect();
        let _ = write!(
            out,
            " Where a configuration fell behind ({}), ",
            names.join("; ")
        );
        if machine == behind.len() {
            let _ = write!(
                out,
                "every core of the machine was near busy (at least {} of {}): the server \
                 processes and the load generator ran out of CPU before Redis did.",
                percent(SATURATED),
                cores.map_or_else(|| "?".to_owned(), |n| n.to_string())
            );
        } else if machine > 0 {
            let _ = write!(
                out,
                "the machine's cores were near busy in {machine} of {} cases, and in the others \
                 no process sampled was near its limit: not Redis, in any case.",
                behind.len()
            );
        } else {
            out.push_str(
                "neither Redis nor the machine's cores as a whole were near their limit: the \
                 limit was elsewhere (one process's threads, the load generator's schedule; \
                 see the load generator's warnings).",
            );
        }
    }
    // Where Redis would fill its core: the lowest projection among the
    // configurations with the most processes on one Redis, at the heaviest
    // rate each kept up (its idle work then weighs least).
    let most = on_redis
        .iter()
        .filter(|r| r.kind == Kind::Redis)
        .map(LayerRun::process_count)
        .max();
    let projection = most.and_then(|n| {
        servers(rows)
            .into_iter()
            .filter_map(|server| {
                let mine: Vec<LayerRun<'_>> = on_redis
                    .iter()
                    .copied()
                    .filter(|r| {
                        r.server() == server && r.kind == Kind::Redis && r.process_count() == n
                    })
                    .collect();
                let k = reach(&mine).kept?;
                Some((k, k.redis_ceiling_messages_per_s()?))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
    });
    let carried = on_redis
        .iter()
        .filter(|r| r.kept_up())
        .map(asked)
        .fold(0.0, f64::max);
    if let Some((run, ceiling)) = projection {
        let _ = write!(
            out,
            " At the CPU per message Redis spent with {} ({}, {} µs at {}), it would fill its \
             core near {} msg/s",
            super::processes_text(run.process_count()),
            run.server(),
            run.redis_us_per_message()
                .map_or_else(|| "?".to_owned(), format::sig),
            msgs(run.asked_messages_per_s()),
            format::sig(ceiling)
        );
        if carried > 0.0 {
            let _ = write!(
                out,
                ", {}× the most any configuration on Redis carried here ({} msg/s)",
                format::sig(ceiling / carried),
                format::sig(carried)
            );
        }
        out.push_str(
            ": that is where Redis would become the bottleneck once the server processes \
             have cores of their own, and each process more brings it closer (every message \
             goes to every process).",
        );
    }
    out.push('\n');
    out
}

/// The shard comparison: per pair, what two shards changed, then what
/// sharding bought, as the numbers say.
pub fn shards(pairs: &[(Row<'_>, Option<Row<'_>>)], cores: Option<u64>) -> String {
    let mut out = String::new();
    let mut one_busiest: f64 = 0.0;
    let mut outcomes: Vec<(Outcome, Outcome)> = Vec::new();
    for (sharded, one) in pairs {
        let s = sharded.run;
        let Some(one) = one else {
            let _ = writeln!(
                out,
                "- **{}**, {} on {} Redis shards at {}: no run on one Redis at this load to \
                 compare with.",
                s.server(),
                super::processes_text(s.process_count()),
                s.shards(),
                msgs(s.asked_messages_per_s())
            );
            continue;
        };
        let o = one.run;
        one_busiest = one_busiest.max(o.redis_busiest().unwrap_or(0.0));
        let shard_cores: Vec<String> = s
            .redis()
            .iter()
            .map(|(_, f)| format::sig(f.cpu_utilization))
            .collect();
        let delivered = outcome(
            ("one Redis", o.delivered_per_s()),
            ("sharded", s.delivered_per_s()),
            Better::Higher,
        );
        let p99 = outcome(
            (
                "one Redis",
                o.p99_us().map_or(f64::INFINITY, |us| us as f64),
            ),
            ("sharded", s.p99_us().map_or(f64::INFINITY, |us| us as f64)),
            Better::Lower,
        );
        let _ = writeln!(
            out,
            "- **{}**, {} at {}: one Redis delivered {}/s at p99 {} (Redis {} cores; {}); \
             {} shards {}/s at p99 {} (shards {} cores; {}). Deliveries/s: {}; p99: {}. \
             Redis's CPU in all: {} → {} cores.",
            s.server(),
            super::processes_text(s.process_count()),
            msgs(s.asked_messages_per_s()),
            format::sig(o.delivered_per_s()),
            ms(o.p99_us()),
            o.redis_busiest()
                .map_or_else(|| "?".to_owned(), format::sig),
            if o.kept_up() {
                "kept up"
            } else {
                "fell behind"
            },
            s.shards(),
            format::sig(s.delivered_per_s()),
            ms(s.p99_us()),
            and_list(&shard_cores),
            if s.kept_up() {
                "kept up"
            } else {
                "fell behind"
            },
            verdict(&delivered, "higher"),
            verdict(&p99, "lower"),
            o.redis_cores().map_or_else(|| "?".to_owned(), format::sig),
            s.redis_cores().map_or_else(|| "?".to_owned(), format::sig),
        );
        outcomes.push((delivered, p99));
    }
    if outcomes.is_empty() {
        return out;
    }
    out.push('\n');
    let sharded_won = |o: &Outcome| matches!(o, Outcome::Wins(w, _) if w == "sharded");
    let one_won = |o: &Outcome| matches!(o, Outcome::Wins(w, _) if w == "one Redis");
    let gains = outcomes
        .iter()
        .filter(|(d, p)| sharded_won(d) || sharded_won(p))
        .count();
    let losses = outcomes
        .iter()
        .filter(|(d, p)| one_won(d) || one_won(p))
        .count();
    let bought = if gains == 0 && losses == 0 {
        format!(
            "changed neither deliveries/s nor p99 by {} or more",
            crate::compare::tie_text()
        )
    } else if losses == 0 {
        format!("did better in {gains} of {} comparisons", outcomes.len())
    } else if gains == 0 {
        format!(
            "did no better, and worse in {losses} of {} comparisons",
            outcomes.len()
        )
    } else {
        format!(
            "did better in {gains} and worse in {losses} of {} comparisons: no consistent gain",
            outcomes.len()
        )
    };
    let machine = cores.map_or_else(
        || "the machine's cores".to_owned(),
        |n| format!("the machine's {n} cores"),
    );
    if one_busiest >= SATURATED {
        let _ = writeln!(
            out,
            "**What sharding bought.** One Redis was saturated here (its core at {} busy), \
             which is what a second shard relieves: two shards {bought}.",
            format::sig(one_busiest)
        );
    } else {
        let _ = writeln!(
            out,
            "**What sharding bought.** Two shards {bought}. One Redis was never the limit in \
             these runs (its core at most {} busy, under the {} of saturation), so there was \
             no Redis bottleneck for a second shard to relieve{}: the shards split Redis's \
             work between two single-threaded servers, but here they share {machine} with the \
             server processes and the load generator, and every process keeps a subscriber \
             connection to each shard. Sharding pays where one Redis's core is the limit: see \
             where Redis becomes the bottleneck, above.",
            format::sig(one_busiest),
            format::plain(SATURATED),
            if gains + losses > 0 {
                ", and the differences above do not come from relieving one"
            } else {
                ""
            }
        );
    }
    out
}

/// How the mixed room was run, from its rows.
pub fn mixed_method(rows: &[Row<'_>]) -> String {
    let Some(first) = rows.first().map(|r| r.run) else {
        return String::new();
    };
    let names: Vec<String> = first
        .processes()
        .iter()
        .map(|p| format!("`{}`", p.server))
        .collect();
    let c = first.config();
    format!(
        "One room of {} with {} (one behind each process), the clients spread evenly over \
         one process each of {} on {}, each process behind its own URL and \
         sampled as that URL's server: its CPU per 1,000 deliveries is over the deliveries to \
         its own clients. Each process also receives every message of the room from Redis. \
         Django runs the seed's `AsyncWebsocketConsumer` under Daphne with channels_redis' \
         `RedisPubSubChannelLayer` on the same Redis.\n",
        c.clients
            .map_or_else(|| "? clients".to_owned(), |n| format::plural(n, "client")),
        c.senders
            .map_or_else(|| "? senders".to_owned(), |n| format::plural(n, "sender")),
        and_list(&names),
        match first.shards() {
            1 => "one Redis".to_owned(),
            n => format!("{n} Redis shards"),
        },
    )
}

/// What the mixed room says: per run, each foreign process's CPU per
/// delivery against ours, and its share of the work.
pub fn mixed(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    for row in rows {
        let r = row.run;
        let processes = r.processes();
        let total_cpu: f64 = processes.iter().map(|p| p.cpu_s()).sum();
        let delivered = r.run.results.delivered;
        let _ = write!(
            out,
            "- At {} ({} deliveries/s, p99 {}; {}): ",
            msgs(r.asked_messages_per_s()),
            format::sig(r.delivered_per_s()),
            ms(r.p99_us()),
            if r.kept_up() {
                "every process kept up".to_owned()
            } else {
                format!("{} fell behind", r.server())
            }
        );
        let ours: Vec<_> = processes
            .iter()
            .filter(|p| super::OWN_SERVERS.contains(&p.server))
            .collect();
        let foreign: Vec<_> = processes
            .iter()
            .filter(|p| !super::OWN_SERVERS.contains(&p.server))
            .collect();
        let mut sentences: Vec<String> = Vec::new();
        for f in &foreign {
            let own_cost = f.figures.cpu_s_per_1000_deliveries;
            let against: Vec<String> = ours
                .iter()
                .filter_map(|o| {
                    let (a, b) = (own_cost?, o.figures.cpu_s_per_1000_deliveries?);
                    (b > 0.0).then(|| {
                        format!("{}× {}'s {}", format::sig(a / b), o.server, cpu_ms(Some(b)))
                    })
                })
                .collect();
            let share = |part: f64, whole: f64| {
                if whole > 0.0 {
                    format::percent(part / whole)
                } else {
                    "?".to_owned()
                }
            };
            sentences.push(format!(
                "{} spent {} of CPU per 1,000 deliveries to its clients{}, and did {} of the \
                 servers' CPU work for {} of the deliveries",
                f.server,
                cpu_ms(own_cost),
                if against.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", and_list(&against))
                },
                share(f.cpu_s(), total_cpu),
                f.deliveries
                    .map_or_else(|| "?".to_owned(), |d| share(d as f64, delivered as f64)),
            ));
        }
        if foreign.is_empty() {
            let each: Vec<String> = ours
                .iter()
                .map(|p| {
                    format!(
                        "{} {} per 1,000 deliveries",
                        p.server,
                        cpu_ms(p.figures.cpu_s_per_1000_deliveries)
                    )
                })
                .collect();
            sentences.push(format!("CPU: {}", and_list(&each)));
        }
        let _ = writeln!(out, "{}.", sentences.join("; "));
    }
    out
}
