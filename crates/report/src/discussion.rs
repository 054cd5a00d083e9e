//! The discussion: where each model wins, and why, in terms of the two
//! execution models.
//!
//! Every number in a sentence is computed from the records, and every
//! comparison word ("lower", "fewer", "better on") is chosen from the
//! numbers: the fixed text only explains the execution models, and each
//! explanation is attached to the outcome it explains, so a run that
//! contradicts the expectation says so instead of repeating it.

use std::fmt::Write as _;

use chat_loadgen::record::ConnectionsResults;

use crate::compare::{Better, FanoutFigures, Outcome, TIE, outcome, verdict};
use crate::data::{ASYNC, Config, Data, SYNC};
use crate::format;
use crate::readme;
use crate::scoreboard::scoreboard;
use crate::tables::FLAG;

/// A p99 below this, in milliseconds, is too short for a person in a chat
/// to notice.
const UNNOTICEABLE_MS: f64 = 100.0;

/// The discussion: where each model wins and why, from the data.
pub fn discussion(data: &Data<'_>, readme: &str) -> String {
    let mut out = String::new();
    let (has_sync, has_async) = (data.has_server(SYNC), data.has_server(ASYNC));
    if !(has_sync && has_async) {
        let _ = writeln!(
            out,
            "This run has {}, so there is no comparison of the two models to discuss; \
             run both servers through the same scenarios.",
            if has_sync || has_async {
                format!("only `{}` of the two", if has_sync { SYNC } else { ASYNC })
            } else {
                "neither `sync` nor `async`".to_owned()
            },
        );
        external(data, &mut out);
        return out;
    }

    fanout_discussion(data, &mut out);
    memory_discussion(data, &mut out);
    limit_discussion(data, readme, &mut out);
    matters_discussion(data, &mut out);
    scoreboard(data, &mut out);
    external(data, &mut out);
    out
}

/// Fan-out: latency, throughput, context switches and CPU per delivery
/// at the largest one-room load both servers ran, then the trend across
/// room sizes.
fn fanout_discussion(data: &Data<'_>, out: &mut String) {
    out.push_str("### Fan-out: wake-ups per delivery\n\n");
    let Some(config) = data.largest_common_one_room(SYNC, ASYNC) else {
        out.push_str(
            "No one-room fan-out configuration was run against both servers: not measured.\n\n",
        );
        return;
    };
    let (Some((s_run, _)), Some((a_run, _))) = (
        data.median_run(SYNC, config),
        data.median_run(ASYNC, config),
    ) else {
        return;
    };
    let (s, a) = (FanoutFigures::of(s_run), FanoutFigures::of(a_run));
    out.push_str(
        "Both servers do the same work per message under the room's lock: encode the frame \
         once, push it into each member's bounded queue. They differ in what the push \
         wakes. In `chat-sync` it wakes the member's writer thread, blocked in `select!`: \
         the kernel has to schedule one thread per member, and each thread makes its own \
         blocking `write`. In `chat-async` it wakes the member's writer task: the worker \
         threads poll the woken tasks one after another, and a worker only sleeps when it \
         runs out of them, so a fan-out to many members costs many task polls but few \
         thread wake-ups. Each writer still makes its own `write` system call in both.\n\n",
    );
    let latency = outcome((SYNC, s.p99_ms), (ASYNC, a.p99_ms), Better::Lower);
    let throughput = outcome(
        (SYNC, s.deliveries_per_s),
        (ASYNC, a.deliveries_per_s),
        Better::Higher,
    );
    let _ = writeln!(
        out,
        "At {config} (the largest one-room fan-out both servers ran), p99 latency was \
         {} ms for sync and {} ms for async: {}. Deliveries per second: {} and {}: {}{}.",
        format::sig(s.p99_ms),
        format::sig(a.p99_ms),
        verdict(&latency, "lower"),
        format::sig(s.deliveries_per_s),
        format::sig(a.deliveries_per_s),
        verdict(&throughput, "higher"),
        if throughput == Outcome::Tie && s_run.results.lost == 0 && a_run.results.lost == 0 {
            "; both delivered everything offered, so at this load throughput does not \
             separate them, latency and cost do"
        } else {
            ""
        },
    );
    for run in [s_run, a_run] {
        if let Some(first) = run.anomalies().first() {
            let _ = writeln!(
                out,
                "\n**{FLAG} In this run {} {first}**: its figures describe a server that \
                 failed part of its load.",
                run.server()
            );
        }
    }
    let switches = s
        .switches
        .zip(a.switches)
        .map(|(sw, aw)| (sw, aw, outcome((SYNC, sw), (ASYNC, aw), Better::Lower)));
    match &switches {
        Some((sw, aw, o)) => {
            let _ = write!(
                out,
                "\nThe server made {} voluntary context switches per delivery with sync and \
                 {} with async: {}. ",
                format::sig(*sw),
                format::sig(*aw),
                verdict(o, "fewer"),
            );
            let agrees = matches!(o, Outcome::Wins(w, _) if w == ASYNC);
            if agrees {
                let async_text = if *aw > 0.0 {
                    format!("once every {} deliveries", format::sig(1.0 / aw))
                } else {
                    "not once".to_owned()
                };
                let _ = write!(
                    out,
                    "That is the models' difference made countable: a sync thread went to \
                     sleep {} times per delivery, an async worker {async_text}.",
                    format::sig(*sw),
                );
                match &latency {
                    Outcome::Wins(w, _) if w == ASYNC => out.push_str(
                        " The lower tail latency of async goes with it: its deliveries wait \
                         for a task poll rather than for the kernel to schedule one thread \
                         per member.",
                    ),
                    Outcome::Wins(_, _) => out.push_str(
                        " Yet sync had the lower tail here: at this load, the cost of its \
                         wake-ups did not yet delay deliveries more than async's queueing \
                         of tasks on a fixed pool.",
                    ),
                    Outcome::Tie => out.push_str(
                        " At this load the extra wake-ups did not change the tail latency.",
                    ),
                }
            } else {
                out.push_str(
                    "The expected gap (a thread wake-up per delivery for sync, batches of \
                     deliveries per wake-up for async) does not show in this run, so the \
                     latency difference above is not explained by context switches.",
                );
            }
            out.push('\n');
        }
        None => out.push_str(
            "\nContext switches per delivery: not measured (no server process figures).\n",
        ),
    }
    if let (Some(sc), Some(ac)) = (s.cpu_per_1000, a.cpu_per_1000) {
        let o = outcome((SYNC, sc), (ASYNC, ac), Better::Lower);
        let _ = write!(
            out,
            "\nServer CPU per 1,000 deliveries at the same load: {} s for sync, {} s for \
             async: {}.",
            format::sig(sc),
            format::sig(ac),
            verdict(&o, "lower"),
        );
        if let (Some(ss), Some(asy)) = (s.system_share, a.system_share) {
            let _ = write!(
                out,
                " The kernel's share of that CPU (system time) was {} for sync and {} for \
                 async{}.",
                format::percent(ss),
                format::percent(asy),
                if ss > asy * (1.0 + TIE) {
                    ": thread wake-ups and switches are kernel work"
                } else {
                    ""
                },
            );
        }
        out.push('\n');
    }
    let switches_favour_async =
        matches!(&switches, Some((_, _, Outcome::Wins(w, _))) if w == ASYNC);
    trend(data, switches_favour_async, out);
    out.push('\n');
}

/// How the p99 ratio moves from the lightest to the heaviest common
/// one-room configuration. The wake-up explanation of a growing ratio is
/// given only when the context switches counted back it.
fn trend(data: &Data<'_>, switches_favour_async: bool, out: &mut String) {
    let one_room: Vec<Config> = data
        .common_configs(SYNC, ASYNC)
        .into_iter()
        .filter(|c| c.rooms == Some(1))
        .collect();
    let load = |c: &Config| c.without_clients();
    // The lines of the latency plot: same load, clients varied.
    let Some(biggest) = data.largest_common_one_room(SYNC, ASYNC) else {
        return;
    };
    let mut line: Vec<Config> = one_room
        .into_iter()
        .filter(|c| load(c) == load(&biggest))
        .collect();
    line.sort_by_key(|c| c.clients);
    let (Some(first), Some(last)) = (line.first().copied(), line.last().copied()) else {
        return;
    };
    if first == last {
        return;
    }
    let ratio = |c: Config| -> Option<f64> {
        let s = data.median_run(SYNC, c)?.0.results.latency_us.p99_us as f64;
        let a = data.median_run(ASYNC, c)?.0.results.latency_us.p99_us as f64;
        (a > 0.0).then(|| s / a)
    };
    if let (Some(r0), Some(r1)) = (ratio(first), ratio(last)) {
        let direction = if r1 > r0 * (1.0 + TIE) && r1 > 1.0 && switches_favour_async {
            "grows with the room; the more members per message, the more the sync server's \
             per-member thread wake-ups cost relative to async's task polls"
        } else if r1 > r0 * (1.0 + TIE) {
            "grows with the room"
        } else if r1 < r0 * (1.0 - TIE) {
            "shrinks as the room grows; in this run the async server's advantage, if any, \
             does not grow with the fan-out"
        } else {
            "stays about the same as the room grows"
        };
        let _ = writeln!(
            out,
            "\nAcross room sizes ({}), the sync/async ratio of p99 latency goes from {} at {} \
             to {} at {}: it {direction}.",
            first.load_label(),
            format::sig(r0),
            format::plural(first.clients.unwrap_or(0), "client"),
            format::sig(r1),
            format::plural(last.clients.unwrap_or(0), "client"),
        );
    }
}

/// Threads and resident memory per idle connection, against each model.
fn memory_discussion(data: &Data<'_>, out: &mut String) {
    out.push_str("### Memory and threads per connection\n\n");
    let (Some(s), Some(a)) = (
        data.largest_connections_run(SYNC),
        data.largest_connections_run(ASYNC),
    ) else {
        out.push_str(
            "The connections scenario was not run against both servers: not measured.\n\n",
        );
        return;
    };
    let (sr, ar) = (s.results, a.results);
    if let (Some(st), Some(at)) = (sr.threads_per_connection, ar.threads_per_connection) {
        let expected = |v: f64, model: f64| (v - model).abs() <= 0.1;
        // Where a figure strays from its model, the raw counts say why
        // (threads left over from an earlier run, say).
        let counts = |r: &ConnectionsResults| match (r.server_before, r.server_loaded) {
            (Some(b), Some(l)) => format!(
                "; the server had {} threads before the first connection and {} with all open",
                format::count(b.threads),
                format::count(l.threads)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "With {} idle connections open, the sync server had {} threads per connection \
             ({}) and the async server {} ({}).",
            format::count(sr.opened),
            format::sig(st),
            if expected(st, 2.0) {
                "its model's 2: a reader and a writer".to_owned()
            } else {
                format!("its model says 2, a reader and a writer{}", counts(sr))
            },
            format::sig(at),
            if expected(at, 0.0) {
                "none: its threads are a fixed pool".to_owned()
            } else {
                format!("its model says none, the pool being fixed{}", counts(ar))
            },
        );
    }
    if let (Some(sk), Some(ak)) = (sr.rss_per_connection_kib, ar.rss_per_connection_kib) {
        let o = outcome((SYNC, sk), (ASYNC, ak), Better::Lower);
        let _ = write!(
            out,
            "\nResident memory per connection: {} KiB for sync, {} KiB for async ({} \
             connections): {}. ",
            format::sig(sk),
            format::sig(ak),
            format::count(ar.opened),
            verdict(&o, "lower"),
        );
        match &o {
            Outcome::Wins(w, _) if w == ASYNC => out.push_str(
                "Both servers hold the same buffers per connection; the difference is what \
                 waits. A sync connection is two threads, each with its own stack \
                 (`THREAD_STACK_BYTES`, of which only the touched pages are resident); an \
                 async connection is two futures of a few hundred bytes each.",
            ),
            _ => out.push_str(
                "The models predict async lower (two futures instead of two thread stacks, \
                 the same buffers in both); this run does not show it, which points at \
                 what the figure counts: only touched pages are resident, so an idle \
                 thread's stack costs little RSS.",
            ),
        }
        out.push_str(
            " RSS leaves out what the kernel keeps per thread (its kernel stack and task \
             structure), so it understates the cost of a thread.\n",
        );
    }
    out.push('\n');
}

/// How many connections the sync server held, and where it failed.
fn limit_discussion(data: &Data<'_>, readme: &str, out: &mut String) {
    out.push_str("### The thread limit\n\n");
    let sync_runs = data.connections_of(SYNC);
    let async_best = data
        .connections_of(ASYNC)
        .into_iter()
        .max_by_key(|c| c.results.held);
    let Some(sync_best) = sync_runs.iter().max_by_key(|c| c.results.held) else {
        out.push_str(
            "The connections scenario was not run against the sync server: not measured.\n\n",
        );
        return;
    };
    let failed = sync_runs
        .iter()
        .filter(|c| c.results.failed > 0 || c.results.held < c.results.target)
        .min_by_key(|c| c.results.target);
    let async_text = async_best.map_or_else(
        || "The async server was not run in this scenario.".to_owned(),
        |a| {
            format!(
                "The async server held {} of {}{}.",
                format::count(a.results.held),
                format::count(a.results.target),
                if a.results.failed > 0 {
                    format!(
                        " ({} failed, first: `{}`)",
                        format::count(a.results.failed),
                        a.results
                            .first_failure
                            .as_deref()
                            .map_or_else(|| "no text".to_owned(), |t| format::cell_text(t, 160))
                    )
                } else {
                    String::new()
                },
            )
        },
    );
    match failed {
        Some(f) => {
            let _ = writeln!(
                out,
                "Every sync connection needs two threads, so the sync server meets the \
                 system's thread limits (`/proc/sys/kernel/threads-max`, `pid_max`, the \
                 user's `ulimit -u`, memory for stacks) at half as many connections. Asked \
                 for {}, it opened {} and held {} ({} failed); the first failure: `{}`. {}",
                format::count(f.results.target),
                format::count(f.results.opened),
                format::count(f.results.held),
                format::count(f.results.failed),
                f.results
                    .first_failure
                    .as_deref()
                    .map_or_else(|| "no text".to_owned(), |t| format::cell_text(t, 160)),
                async_text,
            );
        }
        None => {
            let _ = writeln!(
                out,
                "The sync server held every connection it was asked for, up to {} (about {} \
                 threads): no run reached its limit. That limit is the system's thread \
                 limit (`/proc/sys/kernel/threads-max`, `pid_max`, the user's `ulimit -u`, \
                 memory for stacks), met at half as many connections since each takes two \
                 threads; the async server's limits are file descriptors and memory. {}",
                format::count(sync_best.results.held),
                format::count(sync_best.results.held * 2),
                async_text,
            );
        }
    }
    machine_limits(readme, failed.map(|f| f.results.opened), out);
    out.push('\n');
}

/// The machine's thread limits from the run's README, and how many sync
/// connections the smallest allows.
fn machine_limits(readme_text: &str, failed_after: Option<u64>, out: &mut String) {
    let limits = readme::thread_limits(readme_text);
    let Some(smallest) = limits.iter().min_by_key(|l| l.value) else {
        return;
    };
    let listed: Vec<String> = limits
        .iter()
        .map(|l| format!("{} {}", l.name, format::count(l.value)))
        .collect();
    let _ = write!(
        out,
        "\nThe run's README gives this machine's limits: {}. The smallest, {}, allows at \
         most about {} sync connections at two threads each, and fewer in practice, since \
         other threads count against it too. (The sync server reads these limits at \
         start-up and refuses upgrades beyond its thread budget with 503: a thread that \
         cannot map its signal stack aborts the whole process.)",
        listed.join(", "),
        smallest.name,
        format::count(smallest.value / 2),
    );
    if let Some(opened) = failed_after {
        let _ = write!(
            out,
            " The failing run stopped at {} connections, about {} threads ({} of that \
             limit); the failure text above says which resource ran out.",
            format::count(opened),
            format::count(opened * 2),
            format::percent((opened * 2) as f64 / smallest.value as f64),
        );
    }
    out.push('\n');
}

/// Whether the latency difference is one a chat user would notice.
fn matters_discussion(data: &Data<'_>, out: &mut String) {
    // The lightest one-room load both ran: what a chat room actually sees.
    let Some(config) = data
        .common_configs(SYNC, ASYNC)
        .into_iter()
        .filter(|c| c.rooms == Some(1))
        .min_by_key(|c| c.clients)
    else {
        return;
    };
    let (Some((s, _)), Some((a, _))) = (
        data.median_run(SYNC, config),
        data.median_run(ASYNC, config),
    ) else {
        return;
    };
    let (sp, ap) = (
        s.results.latency_us.p99_us as f64 / 1000.0,
        a.results.latency_us.p99_us as f64 / 1000.0,
    );
    out.push_str("### Does it matter?\n\n");
    let _ = write!(
        out,
        "At the lightest one-room load measured ({config}), p99 was {} ms for sync and {} \
         ms for async. ",
        format::sig(sp),
        format::sig(ap),
    );
    if sp < UNNOTICEABLE_MS && ap < UNNOTICEABLE_MS {
        let _ = writeln!(
            out,
            "Both are far below the {} ms a person in a chat would notice: at such loads the \
             choice of model shows in the machine's bill (threads, memory, CPU per \
             delivery) and in how many connections one machine holds, not in what users \
             see.",
            format::plain(UNNOTICEABLE_MS)
        );
    } else {
        let _ = writeln!(
            out,
            "At least one of them is above the {} ms a person in a chat would notice, \
             even at this load.",
            format::plain(UNNOTICEABLE_MS)
        );
    }
    out.push('\n');
}

/// A few figures for each server outside this workspace, for reference.
fn external(data: &Data<'_>, out: &mut String) {
    let others: Vec<&String> = data
        .servers
        .iter()
        .filter(|s| s.as_str() != SYNC && s.as_str() != ASYNC)
        .collect();
    if others.is_empty() {
        return;
    }
    out.push_str("### Other servers\n\n");
    for server in others {
        let mut parts = Vec::new();
        if let Some(peak) = data.peak_run(server) {
            parts.push(format!(
                "peak fan-out throughput {} deliveries/s",
                format::sig(peak.results.deliveries_per_s)
            ));
        }
        if let Some((run, _)) = data
            .configs()
            .into_iter()
            .filter(|c| c.rooms == Some(1))
            .filter_map(|c| data.median_run(server, c))
            .max_by_key(|(r, _)| r.config().clients)
        {
            parts.push(format!(
                "p99 {} ms at {}",
                format::ms(run.results.latency_us.p99_us),
                run.config()
            ));
        }
        if let Some(c) = data.largest_connections_run(server) {
            parts.push(format!(
                "{} of {} idle connections held",
                format::count(c.results.held),
                format::count(c.results.target)
            ));
        }
        let _ = writeln!(
            out,
            "- `{server}`: {}. Its execution model is not this workspace's; the run's README \
             says how it was started.",
            if parts.is_empty() {
                "no figures".to_owned()
            } else {
                parts.join("; ")
            }
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{capacity_record, connections_record, fanout_record};

    #[test]
    fn discussion_follows_the_data() {
        let records = vec![
            fanout_record("sync", 10, 1),
            fanout_record("async", 10, 1),
            fanout_record("sync", 1000, 1),
            fanout_record("async", 1000, 1),
            capacity_record("sync", &[(100, true), (200, false)]),
            capacity_record("async", &[(100, true), (200, true)]),
            connections_record("sync", 1000, 1000, None),
            connections_record("async", 1000, 1000, None),
        ];
        let data = Data::new(&records);
        let text = discussion(&data, "");
        // Synthetic sync: p99 = 4 × (200 + clients) µs = 4.80 ms at 1,000.
        assert!(
            text.contains(
                "p99 latency was 4.80 ms for sync and 2.60 ms for async: async lower, by 1.85×"
            ),
            "{text}"
        );
        assert!(text.contains("1.20 voluntary context switches per delivery with sync and 0.100 with async: async fewer, by 12.0×"), "{text}");
        assert!(
            text.contains("a sync thread went to sleep 1.20 times per delivery, an async worker once every 10.0 deliveries"),
            "{text}"
        );
        assert!(
            text.contains("That is the models' difference made countable"),
            "{text}"
        );
        assert!(
            text.contains("2.00 threads per connection (its model's 2"),
            "{text}"
        );
        assert!(
            text.contains("40.0 KiB for sync, 12.0 KiB for async"),
            "{text}"
        );
        assert!(text.contains("no run reached its limit"), "{text}");
        assert!(
            text.contains("- **sync** is better on none of them."),
            "{text}"
        );
    }

    #[test]
    fn contrary_data_is_not_explained_away() {
        // Swap the labels: now "sync" has async's figures and vice versa.
        let mut records = vec![
            fanout_record("async", 1000, 1),
            fanout_record("sync", 1000, 1),
        ];
        records[0].server = "sync".to_owned();
        records[1].server = "async".to_owned();
        let data = Data::new(&records);
        let text = discussion(&data, "");
        assert!(text.contains("sync lower, by"), "{text}");
        assert!(text.contains("does not show in this run"), "{text}");
        assert!(!text.contains("made countable"), "{text}");
        assert!(
            text.contains("Connections scenario was not run against both servers")
                || text.contains("connections scenario was not run against both servers"),
            "{text}"
        );
    }

    #[test]
    fn one_server_only() {
        let records = vec![fanout_record("django", 10, 1), fanout_record("sync", 10, 1)];
        let data = Data::new(&records);
        let text = discussion(&data, "");
        assert!(text.contains("only `sync` of the two"), "{text}");
        assert!(
            text.contains("- `django`: peak fan-out throughput"),
            "{text}"
        );
    }
}
