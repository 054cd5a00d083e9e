//! The section's prose: the loud line of a failed soak, the sentence that
//! says whether each server's lines stayed flat, the method and the
//! caveats.
//!
//! Every verdict is [`Check::flat`]'s and every figure the tables'; the
//! fixed text states the criterion and how the soak was run, never its
//! outcome.

use std::fmt::Write as _;

use chat_loadgen::soak::record::{SoakParams, SoakRecord};

use crate::format;
use crate::tables::FLAG;

use super::figures::{
    COUNT_SLACK, COUNT_SLACK_SHARE, Check, RSS_SLACK_MIB, RSS_SLACK_SHARE, Resource, Resources,
    WINDOW,
};
use super::tables::{duration, number, share, signed};

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The section's opening words: `The soak of sync and async`.
pub fn servers_soaked(labels: &[String]) -> String {
    format!("The soak of {}", and_list(labels))
}

/// What a failed soak lost, from its warnings, else from its totals.
fn what_failed(r: &SoakRecord) -> String {
    if !r.warnings.is_empty() {
        return r.warnings.join("; ");
    }
    let t = &r.totals;
    let parts: Vec<String> = [
        (t.lost, "deliveries lost"),
        (t.duplicates, "duplicated"),
        (t.out_of_order, "out of order"),
        (t.unexpected_closes, "unexpected closes"),
        (t.churn_failures, "churn cycles failed"),
        (
            t.bad_clients.saturating_sub(t.bad_clients_answered),
            "hostile clients unanswered",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{} {what}", format::count(n)))
    .collect();
    if parts.is_empty() {
        "the load generator marked it failed and gave no reason".to_owned()
    } else {
        and_list(&parts)
    }
}

/// One loud line per failed soak, for the top of the section.
pub fn failures(records: &[&SoakRecord]) -> String {
    let mut out = String::new();
    for r in records.iter().filter(|r| !r.passed) {
        let _ = writeln!(
            out,
            "**{FLAG} The {} soak failed: {}.**\n",
            r.server,
            what_failed(r).trim_end_matches('.')
        );
    }
    out
}

/// How the tables' columns are made and what flat means.
pub fn criterion() -> String {
    format!(
        "Start is the first sample, taken before any client connects; early is the median \
         of the samples in the first {w} of the run after it (once the load is on); midway \
         the median of the {w} from halfway; peak is the highest sample; end is the median \
         of the samples in the last {w}. The first half is the warm-up: a server's memory \
         grows from its start as the load arrives, and its allocator may keep growing in \
         steps for a while, to what the load's largest coincidences need (a slow reader's \
         full queue during a churn wave), and keep it; a leak keeps climbing after that. So \
         a line counts as flat when its end is at most its midway level plus an allowance: \
         for RSS, {rss_share} of the midway level or {rss_mib} MiB, whichever is larger \
         (allocators keep memory freed after a burst); for threads and file descriptors, \
         {count_share} of the midway level plus {count} (a couple of connections opening at \
         the moment of a sample).\n",
        w = share(WINDOW),
        rss_share = share(RSS_SLACK_SHARE),
        rss_mib = format::plain(RSS_SLACK_MIB),
        count_share = share(COUNT_SLACK_SHARE),
        count = format::plain(COUNT_SLACK),
    )
}

/// A check's figures, midway → end: `RSS 12.3 → 12.5 MiB (+0.200;
/// allowed +2.00)`.
fn figures(c: &Check) -> String {
    let (show, unit): (fn(f64) -> String, &str) = match c.resource {
        Resource::Rss => (format::sig, " MiB"),
        Resource::Threads | Resource::Fds => (number, ""),
    };
    format!(
        "{} {} → {}{unit} ({}; allowed +{})",
        c.resource.name(),
        show(c.level.midway),
        show(c.level.end),
        signed(c.level.growth(), show),
        format::sig(c.allowed()),
    )
}

/// Whether a server's lines stayed flat, and by how much each moved.
pub fn flatness(server: &str, r: &Resources) -> String {
    let checks = r.checks();
    let grown: Vec<&Check> = checks.iter().filter(|c| !c.flat()).collect();
    let kept: Vec<String> = checks.iter().filter(|c| c.flat()).map(figures).collect();
    if grown.is_empty() {
        let mut out = format!(
            "**{server}: flat** by this criterion, midway → end: {}.",
            kept.join("; ")
        );
        warm_up(&mut out, &checks);
        out.push('\n');
        return out;
    }
    let grew: Vec<String> = grown
        .iter()
        .map(|c| {
            let pace = r.per_hour(c).map_or_else(String::new, |h| {
                let unit = if c.resource == Resource::Rss {
                    " MiB"
                } else {
                    ""
                };
                format!(", about {}{unit} per hour", signed(h, format::sig))
            });
            format!("{}{pace}", figures(c))
        })
        .collect();
    let mut out = format!(
        "**{FLAG} {server}: not flat** by this criterion, midway → end (the windows {} \
         apart): {}.",
        duration(r.between_s),
        grew.join("; ")
    );
    if !kept.is_empty() {
        let _ = write!(out, " Within the allowance: {}.", kept.join("; "));
    }
    warm_up(&mut out, &checks);
    out.push('\n');
    out
}

/// Says which lines grew during the warm-up by more than the allowance
/// would let the second half grow, so that a step there is not passed over.
fn warm_up(out: &mut String, checks: &[Check]) {
    let stepped: Vec<String> = checks
        .iter()
        .filter(|c| c.level.warm_up() > c.allowed())
        .map(|c| {
            let (show, unit): (fn(f64) -> String, &str) = match c.resource {
                Resource::Rss => (format::sig, " MiB"),
                Resource::Threads | Resource::Fds => (number, ""),
            };
            format!(
                "{} {} → {}{unit} ({})",
                c.resource.name(),
                show(c.level.early),
                show(c.level.midway),
                signed(c.level.warm_up(), show),
            )
        })
        .collect();
    if !stepped.is_empty() {
        let _ = write!(
            out,
            " During the warm-up, early → midway, it grew: {}.",
            stepped.join("; ")
        );
    }
}

/// The CPU the server used, on average and at both ends.
pub fn cpu(r: &Resources) -> String {
    format!(
        "CPU: {} cores busy on average from the first sample to the last ({} from the first \
         sample to the end of the early window, {} over the end window).\n",
        format::sig(r.cpu_mean),
        format::sig(r.cpu_early),
        format::sig(r.cpu_end),
    )
}

/// Who sends in a steady room: `one member of each`, `the first 2 members
/// of each (fewer in a smaller room)`.
fn senders(n: u32) -> String {
    if n <= 1 {
        "one member of each".to_owned()
    } else {
        format!("the first {n} members of each (all of a smaller room)")
    }
}

/// The load in a sentence.
fn load(p: &SoakParams) -> String {
    let sizes: Vec<String> = p
        .room_sizes
        .iter()
        .map(|n| format::count(u64::from(*n)))
        .collect();
    let every = |s: f64, what: &str| {
        if s > 0.0 {
            format!("{what} every {}", duration(s))
        } else {
            format!("no {what}")
        }
    };
    format!(
        "{} of {} members held open for {}, {} sending {} msg/s in all to the others; \
         churn: connect–join–send–disconnect cycles started at {} per second; {} (a member of \
         a busy room that stops reading until the server closes it with 1013); {} (bad \
         frames, bad handshakes)",
        format::plural(p.room_sizes.len() as u64, "steady room"),
        and_list(&sizes),
        duration(p.duration_s),
        senders(p.senders_per_room),
        format::plain(p.rate_per_room_per_s),
        format::plain(p.churn_per_s),
        every(p.slow_reader_every_s, "a slow reader"),
        every(p.bad_client_every_s, "a hostile client"),
    )
}

/// How the soak was run, from the records' parameters and commands.
pub fn method(records: &[&SoakRecord]) -> String {
    let mut out = String::new();
    let loads: Vec<String> = records.iter().map(|r| load(&r.params)).collect();
    if loads.iter().all(|l| *l == loads[0]) && !loads.is_empty() {
        let _ = write!(out, "Each server under one load: {}.", loads[0]);
    } else {
        for (r, l) in records.iter().zip(&loads) {
            let _ = write!(out, "{}: {l}. ", r.server);
        }
    }
    let _ = writeln!(
        out,
        " chat-loadgen checks every delivery owed to a well-behaved member: received, once, \
         in the room's one order, and that nothing else reaches it (a foreign frame: an error \
         reply, another room's message). A soak passes with nothing lost, duplicated or \
         reordered, no foreign frame, no well-behaved connection closed unexpectedly, and \
         every hostile client answered as the protocol says. The server process is read from \
         `/proc` throughout: `VmRSS`, its threads, the entries of `/proc/<pid>/fd`, and its \
         user + system CPU since it started; the first reading is taken before the load \
         starts.\n\nThe commands:\n"
    );
    for r in records {
        let _ = writeln!(
            out,
            "- {} (commit `{}`): `{}`",
            r.server,
            &r.commit[..r.commit.len().min(12)],
            r.command
        );
    }
    out
}

/// What the numbers cannot say, from the runs themselves.
pub fn caveats(records: &[&SoakRecord], figures: &[Option<Resources>]) -> String {
    let mut lines = Vec::new();
    // How slow a leak the soak could miss: the RSS allowance over the time
    // between the windows.
    let blind: Vec<String> = records
        .iter()
        .zip(figures)
        .filter_map(|(r, f)| {
            let f = f.as_ref()?;
            let h = f.allowed_per_hour(&f.checks()[0])?;
            Some(format!(
                "{} MiB per hour for {} (windows {} apart)",
                format::sig(h),
                r.server,
                duration(f.between_s)
            ))
        })
        .collect();
    if !blind.is_empty() {
        lines.push(format!(
            "- A leak slower than its allowance over the soak passes as flat: RSS growing \
             slower than about {} would not be seen. Only a longer soak sees a slower one.",
            and_list(&blind)
        ));
    }
    for (r, f) in records.iter().zip(figures) {
        if f.is_none() {
            lines.push(format!(
                "- {}: only {} samples, too few to compare an early window with an end one.",
                r.server,
                r.samples.len()
            ));
        }
        let t = &r.totals;
        if t.slow_readers_closed_1013 < t.slow_readers {
            lines.push(format!(
                "- {}: not seen closed with 1013: {} of {} slow readers.",
                r.server,
                format::count(t.slow_readers - t.slow_readers_closed_1013),
                format::count(t.slow_readers)
            ));
        }
        if r.passed {
            lines.extend(
                r.warnings
                    .iter()
                    .map(|w| format!("- {}: the load generator warned: {w}", r.server)),
            );
        }
    }
    let mut params: Vec<String> = records.iter().map(|r| load(&r.params)).collect();
    params.sort();
    params.dedup();
    if params.len() > 1 {
        lines.push(
            "- The servers ran different loads (see the totals): compare with care.".to_owned(),
        );
    }
    lines.push(
        "- RSS counts what the allocator holds, not what the server uses: memory freed after \
         a burst may stay resident (the peak), and a small leak hides under that until it \
         outgrows the allowance."
            .to_owned(),
    );
    lines.push(
        "- One soak per server on one machine, the load generator sharing its cores: a flat \
         line is this load's, for this long."
            .to_owned(),
    );
    lines.join("\n") + "\n"
}
