//! From what every client counted to the run's totals, its verdict, and
//! warnings that say where anything went wrong: which room, which member,
//! which sender's which messages.
//!
//! A member is owed every message its room's senders sent (steady rooms)
//! or every burst (the slow room): they were all members for the whole
//! run. The members of a room that got everything must also have got it in
//! one order; one that did not is counted once in `out_of_order`, since
//! the order hash cannot say which message moved.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::soak::member::{MemberEnd, Room};
use crate::soak::slow::Burst;
use crate::soak::state::{Shared, get};
use chat_record::soak::{SoakSample, SoakTotals};

/// Missing ranges shown per member and sender.
const RANGES_SHOWN: usize = 5;

/// The totals, the verdict and the warnings.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What the run counted.
    pub totals: SoakTotals,
    /// Whether everything was delivered and answered as the contract says.
    pub passed: bool,
    /// What went wrong, and where; the first says whether it passed.
    pub warnings: Vec<String>,
}

/// Deliveries owed to the members so far: each steady message to every
/// member of its room, each burst message to every member of the slow room.
pub fn owed_to_members(shared: &Shared, rooms: &[Room]) -> u64 {
    rooms
        .iter()
        .map(|room| {
            let sent = if room.slow {
                get(&shared.counts.burst_sent)
            } else {
                room.senders
                    .iter()
                    .map(|s| s.sent.load(Ordering::Relaxed))
                    .sum()
            };
            sent * u64::from(room.members)
        })
        .sum()
}

/// Judges the run.
pub fn judge(
    shared: &Shared,
    rooms: &[Room],
    ends: &[MemberEnd],
    bursts: &[Burst],
    samples: &[SoakSample],
) -> Verdict {
    let c = &shared.counts;
    let mut t = SoakTotals::default();
    let mut warnings = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let owed: Vec<(u32, u64)> = if room.slow {
            bursts.to_vec()
        } else {
            room.senders
                .iter()
                .map(|s| (s.id, s.sent.load(Ordering::Relaxed)))
                .collect()
        };
        let sent: u64 = owed.iter().map(|(_, n)| n).sum();
        t.expected += sent * u64::from(room.members);
        if !room.slow {
            t.sent += sent;
        }
        let of_room: Vec<&MemberEnd> = ends.iter().filter(|e| e.room == r).collect();
        if of_room.len() < room.members as usize {
            let gone = room.members as usize - of_room.len();
            t.unexpected_closes += gone as u64;
            t.lost += sent * gone as u64;
            warnings.push(format!(
                "LOSS: room {}: {gone} member task(s) did not return; all they were owed counts as lost",
                room.name
            ));
        }
        let mut orders: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        for end in &of_room {
            let who = format!(
                "member {} of room {} ({} members)",
                end.member, room.name, room.members
            );
            let mut missing_all = 0;
            for &(id, n) in &owed {
                let missing: Vec<u32> = end.tally.missing_of(id, 0, n as u32).collect();
                missing_all += missing.len() as u64;
                if !missing.is_empty() {
                    warnings.push(format!(
                        "LOSS: {who} missed {} of the {n} messages of sender {id}: seq {}",
                        missing.len(),
                        ranges(&missing)
                    ));
                }
            }
            t.lost += missing_all;
            t.delivered += sent - missing_all;
            t.duplicates += end.tally.duplicated;
            t.out_of_order += end.tally.out_of_order;
            t.foreign_frames += end.tally.foreign + end.tally.error_replies;
            if end.tally.duplicated + end.tally.out_of_order > 0 {
                warnings.push(format!(
                    "ORDER: {who} received {} message(s) twice and {} after a later one of the same sender",
                    end.tally.duplicated, end.tally.out_of_order
                ));
            }
            if end.tally.foreign + end.tally.error_replies > 0 {
                warnings.push(format!(
                    "JUNK: {who} received {} error repl(ies) and {} other frame(s) that are not its room's messages",
                    end.tally.error_replies, end.tally.foreign
                ));
            }
            if let Some(why) = &end.ended {
                t.unexpected_closes += 1;
                warnings.push(format!("CLOSED: {who}: {why}"));
            }
            if missing_all == 0 {
                orders
                    .entry(end.tally.order_hash)
                    .or_default()
                    .push(end.member);
            }
        }
        // The most common order is the room's; members with another differ.
        let reference = orders
            .iter()
            .max_by_key(|(_, members)| members.len())
            .map(|(&hash, members)| (hash, members.len()));
        if let Some((hash, reference)) = reference
            && orders.len() > 1
        {
            let differing: Vec<u32> = orders
                .iter()
                .filter(|(h, _)| **h != hash)
                .flat_map(|(_, members)| members.iter().copied())
                .collect();
            t.out_of_order += differing.len() as u64;
            warnings.push(format!(
                "ORDER: room {}: members {differing:?} received the room's messages in another order than the other {reference}",
                room.name
            ));
        }
    }
    // The burst senders' own echoes, and the churn's.
    let burst_sent = get(&c.burst_sent);
    let burst_lost = get(&c.burst_lost);
    let churn_sent = get(&c.churn_sent);
    let churn_echoed = get(&c.churn_echoed);
    t.sent += burst_sent + churn_sent;
    t.expected += burst_sent + churn_sent;
    t.delivered += burst_sent - burst_lost + churn_echoed;
    t.lost += burst_lost + churn_sent.saturating_sub(churn_echoed);
    t.duplicates += get(&c.burst_duplicates);
    t.out_of_order += get(&c.burst_out_of_order);
    t.unexpected_closes += get(&c.other_unexpected_closes);
    t.foreign_frames += get(&c.other_foreign);
    t.churn_cycles = get(&c.churn_cycles);
    t.churn_failures = get(&c.churn_failures);
    t.slow_readers = get(&c.slow_readers);
    t.slow_readers_closed_1013 = get(&c.slow_1013);
    t.bad_clients = get(&c.bad_clients);
    t.bad_clients_answered = get(&c.bad_answered);

    let (notes, dropped) = shared.notes();
    let server_failed = notes.iter().any(|n| n.contains("SERVER:"));
    let mut failures = Vec::new();
    for (count, what) in [
        (t.lost, "lost"),
        (t.duplicates, "duplicated"),
        (t.out_of_order, "out of order"),
        (t.unexpected_closes, "unexpected closes"),
        (
            t.foreign_frames,
            "junk frames reaching well-behaved clients",
        ),
        (t.churn_failures, "churn cycles failed"),
        (
            t.slow_readers - t.slow_readers_closed_1013,
            "slow readers not closed 1013",
        ),
        (
            t.bad_clients - t.bad_clients_answered,
            "bad clients not answered as the protocol says",
        ),
    ] {
        if count > 0 {
            failures.push(format!("{count} {what}"));
        }
    }
    if server_failed || samples.is_empty() {
        failures.push("the server process could not be read".to_owned());
    }
    let passed = failures.is_empty();
    let mut all = Vec::new();
    if !passed {
        all.push(format!("FAILED: {}", failures.join(", ")));
    }
    all.extend(notes);
    if dropped > 0 {
        all.push(format!("... and {dropped} more events like those above"));
    }
    all.extend(warnings);
    if t.slow_readers == 0 {
        all.push(
            "no slow reader ran: the run was shorter than half of --slow-reader-every".to_owned(),
        );
    }
    if t.bad_clients == 0 {
        all.push(
            "no bad client ran: the run was shorter than half of --bad-client-every".to_owned(),
        );
    }
    Verdict {
        totals: t,
        passed,
        warnings: all,
    }
}

/// `[1, 2, 3, 7, 9, 10]` as `1-3, 7, 9-10`, the first few ranges.
pub fn ranges(seqs: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while i + 1 < seqs.len() && seqs[i + 1] == end + 1 {
            i += 1;
            end = seqs[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    let more = out.len().saturating_sub(RANGES_SHOWN);
    out.truncate(RANGES_SHOWN);
    if more > 0 {
        out.push(format!("and {more} more range(s)"));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_messages_read_as_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(ranges(&[]), "");
        let many: Vec<u32> = (0..20).map(|i| i * 2).collect();
        assert_eq!(ranges(&many), "0, 2, 4, 6, 8, and 15 more range(s)");
    }
}
