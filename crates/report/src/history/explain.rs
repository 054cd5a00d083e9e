//! The history section's prose: what was run, then what the numbers say.
//!
//! Every figure comes from the rows; every conclusion is chosen by the
//! figures (a setting "kept up" or "stayed near" only when its numbers say
//! so), as the Targets and Discussion sections do. The fixed text explains
//! the mechanism, never the outcome.

use std::fmt::Write as _;

use crate::format;

use super::{HistoryRun, Row, Setting};

/// Share of the messages sent that must be delivered for a setting to have
/// kept up (deliveries per second are measured over the time the server
/// took, so one that falls behind delivers less than was sent).
pub const KEPT_UP: f64 = 0.95;

/// Database calls of latency the quiet room may gain over its history-off
/// figure and still count as not stalled: its own message's store, the call
/// in progress when it arrived (a whole batch, with the writer: its message
/// waits for that batch, then goes in the next), and one more for the
/// queueing and scheduling around them. A server that stalls adds not a few
/// calls but the busy room's whole backlog, which grows with the run.
pub const NEAR_CALLS: f64 = 3.0;

/// The section's opening: how the runs were made.
pub fn intro() -> String {
    "Both servers with chat history on (`--history FILE`: every message stored in SQLite \
     before it is delivered; a fresh database file per run), against the same servers with \
     history off. chat-sync calls SQLite on the connection's own thread (blocking is its \
     model). chat-async must keep its workers free, and reaches the database through a \
     bridge (`--db-bridge`): `writer`, one database thread fed by a bounded queue, storing \
     the messages waiting (of any rooms) in one transaction; `spawn-blocking`, each call on \
     tokio's blocking pool (the analogue of Django's `database_sync_to_async`); or \
     `inline`, SQLite called on the async worker itself, the mistake, kept so that it can \
     be measured. A room's messages are stored and broadcast in the room's order, one at a \
     time, except through the writer, which stores a batch per call. Each run is recorded \
     as a variant named `history-<setting>` or `stall-<setting>` with the server's flags, \
     and appears only in this section. Messages delivered per second are deliveries per \
     second over the members of a room; latencies are from each message's intended send \
     time (open loop) to its arrival, in milliseconds.\n"
        .to_owned()
}

/// `12.3 ms`, or `nothing delivered` for a p99 with no deliveries.
fn ms(us: Option<u64>) -> String {
    us.map_or_else(
        || "nothing delivered".to_owned(),
        |us| format!("{} ms", format::ms(us)),
    )
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A setting's short name in prose: `writer`, `on the connection's thread`.
fn short(setting: Setting) -> String {
    match setting {
        Setting::Off => "history off".to_owned(),
        Setting::Thread => "on the connection's thread".to_owned(),
        other => format!("`{}`", other.name()),
    }
}

/// Whether a run delivered what its senders sent: at least [`KEPT_UP`] of
/// it, and nothing lost, late or owed to closed members.
fn kept_up(run: &HistoryRun<'_>) -> bool {
    run.run.lost_nothing()
        && run
            .delivered_per_s()
            .is_some_and(|d| d >= KEPT_UP * run.sent_per_s())
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

/// What the throughput runs say, per server, at the heaviest load that has
/// a history-off run to compare with.
pub fn throughput(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    for server in servers(rows) {
        let mine: Vec<HistoryRun<'_>> = rows
            .iter()
            .map(|r| r.run)
            .filter(|r| r.server() == server)
            .collect();
        // The heaviest load the server carried with history off, where what
        // history costs is not hidden by a server already behind; failing
        // that, the heaviest load.
        let Some(off) = mine
            .iter()
            .filter(|r| r.setting == Setting::Off)
            .max_by(|a, b| {
                let asked = |r: &HistoryRun<'_>| r.offered_per_s().unwrap_or(r.sent_per_s());
                kept_up(a)
                    .cmp(&kept_up(b))
                    .then(asked(a).total_cmp(&asked(b)))
            })
            .copied()
        else {
            let _ = writeln!(
                out,
                "- **{server}**: no history-off run to compare its history runs with.\n"
            );
            continue;
        };
        let on: Vec<HistoryRun<'_>> = mine
            .iter()
            .filter(|r| r.setting != Setting::Off && r.load_key() == off.load_key())
            .copied()
            .collect();
        let figures = |r: &HistoryRun<'_>| {
            format!(
                "{} msg/s delivered, p99 {}",
                r.delivered_per_s()
                    .map_or_else(|| "?".to_owned(), format::sig),
                ms(r.p99_us())
            )
        };
        let which = if kept_up(&off) {
            "the heaviest load it carried with history off"
        } else {
            "its heaviest load (it fell behind even with history off)"
        };
        let _ = write!(
            out,
            "- **{server}**, at {which} ({}{}): history off {}",
            off.config(),
            off.offered_per_s()
                .map(|a| format!(", {} msg/s asked", format::sig(a)))
                .unwrap_or_default(),
            figures(&off)
        );
        let off_p99 = off.p99_us().map_or(0.0, |us| us as f64);
        let off_delivered = off.delivered_per_s();
        for r in &on {
            let share = r
                .delivered_per_s()
                .zip(off_delivered)
                .filter(|(_, off)| *off > 0.0)
                .map(|(on, off)| format!("{} of history off's", format::percent(on / off)))
                .unwrap_or_else(|| "?".to_owned());
            let ratio = match r.p99_us() {
                Some(p99) if off_p99 > 0.0 => {
                    format!("{}× history off's", format::sig(p99 as f64 / off_p99))
                }
                _ => "?".to_owned(),
            };
            let _ = write!(
                out,
                "; {} {} ({share}; p99 {ratio})",
                short(r.setting),
                figures(r)
            );
        }
        out.push('.');
        if on.is_empty() {
            out.push_str(" No run with history on at this load.\n\n");
            continue;
        }
        let behind: Vec<String> = on
            .iter()
            .filter(|r| !kept_up(r))
            .map(|r| short(r.setting))
            .collect();
        if behind.is_empty() {
            let worst = on
                .iter()
                .filter_map(HistoryRun::p99_us)
                .fold(0.0, |worst, us| f64::max(worst, us as f64));
            let _ = write!(
                out,
                " Every history setting delivered what was sent (at least {} of it, nothing \
                 lost or late): at this load the store path did not limit the messages per \
                 second",
                format::percent(KEPT_UP)
            );
            if off_p99 > 0.0 && worst > off_p99 * (1.0 + crate::compare::TIE) {
                let _ = write!(
                    out,
                    "; it cost latency, p99 up to {}× history off's.",
                    format::sig(worst / off_p99)
                );
            } else {
                let _ = write!(
                    out,
                    ", nor raised p99 by {} or more.",
                    crate::compare::tie_text()
                );
            }
        } else {
            let _ = write!(
                out,
                " {} did not deliver what was sent (under {} of it, or deliveries lost or late)",
                and_list(&behind),
                format::percent(KEPT_UP),
            );
            if kept_up(&off) {
                let _ = write!(
                    out,
                    ": history off did, so at this load the way {} stored messages was {} limit.",
                    if behind.len() == 1 { "it" } else { "they" },
                    if behind.len() == 1 { "its" } else { "their" }
                );
            } else {
                out.push_str(
                    ", nor did history off: the server was behind before storing anything.",
                );
            }
        }
        out.push_str("\n\n");
    }
    out
}

/// How the stall experiment was run, from its rows: the rooms and the
/// delay.
pub fn stall_method(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let Some(first) = rows.first().map(|r| r.run) else {
        return out;
    };
    let p = &first.run.record.params;
    let busy = match (p.busy_clients, p.busy_senders, p.busy_rate_per_s) {
        (Some(clients), Some(senders), Some(rate)) => format!(
            "a busy room of {} ({} posting {} msg/s each, {} msg/s in all)",
            format::plural(clients, "client"),
            format::count(senders),
            format::plain(rate),
            format::sig(senders as f64 * rate)
        ),
        _ => "no busy room recorded".to_owned(),
    };
    let mut delays: Vec<String> = rows
        .iter()
        .filter(|r| r.run.setting != Setting::Off)
        .map(|r| {
            r.run.delay_ms().map_or_else(
                || "not recorded".to_owned(),
                |d| format!("{} ms", format::plain(d)),
            )
        })
        .collect();
    delays.sort();
    delays.dedup();
    let _ = writeln!(
        out,
        "The quiet room ({}) beside {busy}; every database call first sleeps \
         `--db-delay-ms` ({}), as a call to a slow or remote database would wait, and the \
         same load with history off is the reference. The quiet room barely uses the \
         database: its latency shows whether the busy room's calls hold up the rest of the \
         server. Quiet-room latencies are the main figures; the busy room's are counted apart, \
         its messages delivered per second being every one of its messages that arrived during \
         the measured window, whenever it was sent (a room behind its senders delivers its \
         backlog then).",
        first.config(),
        if delays.is_empty() {
            "no history run".to_owned()
        } else {
            delays.join(", ")
        }
    );
    out
}

/// One setting's quiet-room figure against its server's history-off run.
struct Against {
    setting: Setting,
    p99_us: Option<u64>,
    /// p99 over the history-off p99.
    ratio: Option<f64>,
    /// Within [`NEAR_CALLS`] delays of the history-off p99 (unknown without
    /// a recorded delay).
    near: Option<bool>,
    /// Deliveries still missing when the run stopped waiting, and how long
    /// after the senders stopped: then the p99 is a lower bound.
    late: Option<(u64, f64)>,
}

/// What the stall runs say, per server, then about the busy room, then why.
pub fn stall(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    for server in servers(rows) {
        let mine: Vec<HistoryRun<'_>> = rows
            .iter()
            .map(|r| r.run)
            .filter(|r| r.server() == server)
            .collect();
        let Some(off) = mine.iter().find(|r| r.setting == Setting::Off).copied() else {
            let _ = writeln!(
                out,
                "- **{server}**: no history-off run at this load to compare with.\n"
            );
            continue;
        };
        let ref_us = off.p99_us();
        let against: Vec<Against> = mine
            .iter()
            .filter(|r| r.setting != Setting::Off && r.load_key() == off.load_key())
            .map(|r| {
                let p99_us = r.p99_us();
                Against {
                    setting: r.setting,
                    p99_us,
                    ratio: p99_us
                        .zip(ref_us.filter(|us| *us > 0))
                        .map(|(p99, reference)| p99 as f64 / reference as f64),
                    // Nothing delivered, or deliveries missing, is no
                    // nearer than any latency.
                    late: (r.results().late > 0).then(|| (r.results().late, r.results().drain_s)),
                    near: r.delay_ms().map(|d| {
                        r.run.lost_nothing()
                            && p99_us.zip(ref_us).is_some_and(|(p99, reference)| {
                                p99 as f64 <= reference as f64 + NEAR_CALLS * d * 1000.0
                            })
                    }),
                }
            })
            .collect();
        let workers = mine
            .iter()
            .find_map(HistoryRun::workers)
            .map(|w| format!(" ({})", format::plural(w, "worker")))
            .unwrap_or_default();
        let _ = write!(
            out,
            "- **{server}**{workers}: the quiet room's p99 was {} with history off",
            ms(ref_us)
        );
        for a in &against {
            let mut notes: Vec<String> = a
                .ratio
                .map(|r| format!("{}×", format::sig(r)))
                .into_iter()
                .collect();
            if let Some((late, drain_s)) = a.late {
                notes.push(format!(
                    "at least: {} deliveries were still missing {} s after the senders \
                     stopped, when the run stopped waiting, and count as arriving then",
                    format::count(late),
                    format::sig(drain_s)
                ));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            };
            let _ = write!(out, "; {} {}{notes}", short(a.setting), ms(a.p99_us));
        }
        out.push('.');
        out.push_str(&verdict(&against));
        out.push_str("\n\n");
    }
    out.push_str(&busy_room(rows));
    out.push_str(
        "\nWhy: chat-async runs every connection's reader and writer tasks on a fixed pool of \
         worker threads. A database call made inline holds its worker for the whole call, the \
         delay included; while the busy room's messages keep the workers in such calls, no \
         other task runs, the quiet room's included, however little it asks of the database. \
         `spawn-blocking` and the writer make the same calls on other threads while the worker \
         awaits the result, free to run other tasks meanwhile. chat-sync has no shared workers \
         to block: each connection's thread waits for its own calls only.\n",
    );
    out
}

/// The conclusion for one server's settings, chosen by which stayed near
/// their history-off latency.
fn verdict(against: &[Against]) -> String {
    let near_text = |a: &Against| short(a.setting);
    let pick = |want: bool, bridge: bool| -> Vec<String> {
        against
            .iter()
            .filter(|a| a.near == Some(want) && is_bridge(a.setting) == bridge)
            .map(near_text)
            .collect()
    };
    let unknown: Vec<String> = against
        .iter()
        .filter(|a| a.near.is_none())
        .map(near_text)
        .collect();
    let calls = format!(
        "{} database calls of its history-off p99",
        format::plain(NEAR_CALLS)
    );
    let within = format!("within {calls}");
    let inline = against.iter().find(|a| a.setting == Setting::Inline);
    let mut out = String::new();
    let (bridges_near, bridges_far) = (pick(true, true), pick(false, true));
    match inline.and_then(|a| a.near) {
        Some(false) if bridges_far.is_empty() && !bridges_near.is_empty() => {
            let _ = write!(
                out,
                " The seed's point, measured: called inline, the database held the workers and \
                 the quiet room waited behind the busy room's calls{}; through {} it stayed {within}.",
                inline
                    .and_then(|a| a.ratio)
                    .map(|r| format!(" (p99 {}× its history-off figure)", format::sig(r)))
                    .unwrap_or_default(),
                and_list(&bridges_near)
            );
        }
        Some(false) => {
            let _ = write!(out, " Inline kept the quiet room's p99 beyond {calls}");
            if bridges_far.is_empty() {
                out.push('.');
            } else {
                let _ = write!(out, ", and so did {}.", and_list(&bridges_far));
            }
        }
        Some(true) => {
            let _ = write!(
                out,
                " In this run inline did not stall the quiet room: its p99 stayed {within}, so \
                 the busy room's calls did not hold the workers long enough to show."
            );
        }
        None => {
            let named = |want: bool| -> Vec<String> {
                against
                    .iter()
                    .filter(|a| a.near == Some(want) && !is_bridge(a.setting))
                    .map(|a| match a.setting {
                        Setting::Thread => "the calls on the connection's own thread".to_owned(),
                        other => short(other),
                    })
                    .collect()
            };
            let (others_near, others_far) = (named(true), named(false));
            if !others_near.is_empty() {
                let _ = write!(
                    out,
                    " With {}, the quiet room's p99 stayed {within}.",
                    and_list(&others_near)
                );
            }
            if !others_far.is_empty() {
                let _ = write!(
                    out,
                    " With {}, the quiet room's p99 went beyond {calls}.",
                    and_list(&others_far)
                );
            }
            if !bridges_far.is_empty() {
                let _ = write!(
                    out,
                    " Through {} the quiet room's p99 went beyond {calls}.",
                    and_list(&bridges_far)
                );
            } else if !bridges_near.is_empty() {
                let _ = write!(
                    out,
                    " Through {} it stayed {within}.",
                    and_list(&bridges_near)
                );
            }
        }
    }
    if !unknown.is_empty() {
        let _ = write!(
            out,
            " No verdict for {}: the delay per call was not recorded.",
            and_list(&unknown)
        );
    }
    out
}

fn is_bridge(setting: Setting) -> bool {
    matches!(setting, Setting::Writer | Setting::SpawnBlocking)
}

/// The busy room's messages per second against what one database call at
/// a time allows it.
fn busy_room(rows: &[Row<'_>]) -> String {
    let runs: Vec<HistoryRun<'_>> = rows
        .iter()
        .map(|r| r.run)
        .filter(|r| r.setting != Setting::Off && r.busy().is_some())
        .collect();
    let Some(first) = runs.first() else {
        return String::new();
    };
    let (Some(asked), Some(delay)) = (first.busy_offered_per_s(), first.delay_ms()) else {
        return String::new();
    };
    let same = runs
        .iter()
        .all(|r| r.busy_offered_per_s() == Some(asked) && r.delay_ms() == Some(delay));
    if !same || delay <= 0.0 {
        return String::new();
    }
    let bound = 1000.0 / delay;
    let delivered: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.server(),
                short(r.setting),
                r.busy_delivered_per_s()
                    .map_or_else(|| "?".to_owned(), format::sig)
            )
        })
        .collect();
    let mut out = format!(
        "The busy room asked for {} msg/s. One database call at a time, as a room's stores \
         are made, allows at most 1,000 / {} = {} msg/s. Delivered, msg/s: {}.",
        format::sig(asked),
        format::plain(delay),
        format::sig(bound),
        delivered.join(", ")
    );
    if asked <= bound {
        out.push_str(" The busy room asked for no more than that bound.");
    } else {
        let near_bound = |r: &&HistoryRun<'_>| {
            r.busy_delivered_per_s()
                .is_some_and(|d| d <= bound * (1.0 + crate::compare::TIE))
        };
        let name = |r: &HistoryRun<'_>| format!("{} {}", r.server(), short(r.setting));
        let capped: Vec<String> = runs.iter().filter(near_bound).map(name).collect();
        let above: Vec<String> = runs.iter().filter(|r| !near_bound(r)).map(name).collect();
        if !capped.is_empty() {
            let _ = write!(
                out,
                " At or under the bound, so falling behind what was asked: {}.",
                and_list(&capped)
            );
        }
        if !above.is_empty() {
            let _ = write!(
                out,
                " Above it: {}{}.",
                and_list(&above),
                if runs
                    .iter()
                    .filter(|r| !near_bound(r))
                    .all(|r| r.setting == Setting::Writer)
                {
                    ", which stores a batch of messages per call"
                } else {
                    ""
                }
            );
        }
    }
    out.push('\n');
    out
}
