//! The console: one line per run (run k of at most n, the server, the
//! experiment, the step, the verdict and a few figures); the full command
//! of each run goes to the run's README, its summary to the logs.

use chat_loadgen::summary::thousands as count;
use chat_record::verdict::{self, Verdict};
use chat_record::{Record, Results};

use crate::sweep::{Experiment, Setting};

/// Prints one line, prefixed with the program's name.
pub fn say(line: &str) {
    println!("chat-bench: {line}");
}

/// `[ 12/≤240] async  peak cores-1`: which run this is.
pub fn head(
    run: usize,
    most: usize,
    label: &str,
    experiment: &Experiment,
    setting: Option<&Setting>,
    current_after: Option<&str>,
) -> String {
    let variant = match (current_after, setting) {
        (Some(_), _) => " current".to_owned(),
        (None, Some(s)) => format!(" {}", s.variant),
        (None, None) => String::new(),
    };
    format!("[{run:>3}/≤{most}] {label:<8} {}{variant}", experiment.name)
}

/// `kept up: 99,870 of 100,000 deliveries/s, p99 12.3 ms` and the like.
pub fn outcome(record: &Record) -> String {
    let p = &record.params;
    let load = match (p.clients, p.rooms, p.rate_per_s) {
        (Some(c), Some(r), Some(rate)) if record.scenario == "fanout" => {
            format!(
                "{} clients in {} room{} at {} msg/s: ",
                count(c as f64),
                count(r as f64),
                if r == 1 { "" } else { "s" },
                rate
            )
        }
        _ => String::new(),
    };
    match &record.results {
        Results::Fanout(results) => {
            let Some(judgement) = verdict::judge_record(record) else {
                return "no verdict".to_owned();
            };
            let words = match judgement.verdict {
                Verdict::KeptUp => "kept up",
                Verdict::FellBehind => "fell behind",
                Verdict::Lost => "LOST messages",
                Verdict::Refused => "refused clients",
                Verdict::Closed => "closed clients",
                Verdict::NothingSent => "sent nothing",
            };
            let p99 = if judgement.verdict == Verdict::KeptUp {
                format!(", p99 {:.1} ms", results.latency_us.p99_us as f64 / 1000.0)
            } else {
                String::new()
            };
            format!(
                "{load}{words}, {} of {} deliveries/s{p99}",
                count(judgement.delivered_per_s),
                count(judgement.offered_per_s)
            )
        }
        Results::Capacity(results) => match results.capacity_clients {
            Some(clients) => format!("held up to {} clients", count(clients as f64)),
            None => "held no step".to_owned(),
        },
        Results::Connections(results) => {
            let each = results
                .rss_per_connection_kib
                .map_or(String::new(), |kib| format!(", {kib:.1} KiB RSS each"));
            format!(
                "opened {} of {} connections{each}",
                count(results.opened as f64),
                count(results.target as f64)
            )
        }
        Results::Floor(_) => "measured".to_owned(),
    }
}
