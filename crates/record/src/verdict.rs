//! What a run showed, decided once: kept up, fell behind, lost, closed
//! members, refused clients; and which runs may be set side by side.
//!
//! A figure of a run is only worth showing if the run did what it was
//! asked. A server that delivered 72% of the deliveries offered has a
//! latency that measures its backlog, not its speed, and a CPU per delivery
//! that is not comparable with a server that kept up. So every table,
//! ratio and ladder asks [`judge`] first, and shows a latency, a peak or a
//! CPU figure only for a run that [`Verdict::KeptUp`]; any other run shows
//! as its verdict ("fell behind: X of Y deliveries/s").
//!
//! Two runs compare only when their [`Load`]s are equal: same scenario,
//! clients, rooms, senders, rate, payload, busy room. Runs of one
//! `runs.jsonl` share a machine and a sweep, so equal loads in one file are
//! like for like.

use serde::Serialize;

use crate::{FanoutResults, Params, Record, Results};

/// The share of the offered deliveries per second a run must deliver to
/// have kept up (with nothing lost, late or closed).
///
/// Deliveries per second are counted from the start of the measured window
/// to the last delivery, so a server with no backlog loses only its
/// latency at the end of the window: at a p99 of 0.3 s over a 10 s window,
/// about 3%. Below that, what it delivered fell short of what was offered
/// and the difference waited in a backlog that grew through the run. In
/// the sweep of 2026-12-04, every run that stayed up delivered at least
/// 99.4% (window) or 98.2% (a capacity step past its SLO), and the first
/// one under it, chat-sync at 1,000 clients and 100 msg/s, 95.8% with a
/// p99 of 473 ms and a backlog still draining 0.45 s after the senders
/// stopped: falling behind, which a 90% share had let pass.
pub const KEPT_UP_SHARE: f64 = 0.97;

/// What a fan-out run showed, worst first: a run is judged by the first
/// that applies (a run that sent nothing is judged by why: refused or
/// closed members say more than the empty count they caused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A delivery owed to a connected member never came, or came twice or
    /// out of order: the server broke its delivery guarantee.
    Lost,
    /// Clients could not connect: the server refused part of the load.
    Refused,
    /// The server closed members (a slow consumer's 1013, say): what they
    /// were owed was not delivered, but they were told.
    Closed,
    /// Nothing was sent, and no client was refused or closed: the run
    /// never started its load.
    NothingSent,
    /// Everything owed arrived or was still arriving, but slower than it
    /// was offered: late deliveries at the drain cap, or under
    /// [`KEPT_UP_SHARE`] of the offered deliveries per second.
    FellBehind,
    /// Every delivery arrived, once, in order, at the rate offered.
    KeptUp,
}

impl Verdict {
    /// Whether the run's latency, throughput and CPU figures may be shown.
    pub fn kept_up(self) -> bool {
        self == Self::KeptUp
    }
}

/// A fan-out run judged: its verdict and the two rates it is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Judgement {
    /// What the run showed.
    pub verdict: Verdict,
    /// Deliveries per second the load asked for.
    pub offered_per_s: f64,
    /// Deliveries per second the server made (measured window to its last
    /// delivery).
    pub delivered_per_s: f64,
}

impl Judgement {
    /// Whether the run kept up.
    pub fn kept_up(&self) -> bool {
        self.verdict.kept_up()
    }
}

/// Judges a fan-out run (or a capacity step) against what it was offered.
pub fn judge(results: &FanoutResults, offered_per_s: f64) -> Judgement {
    let verdict = if results.lost > 0
        || results.duplicated > 0
        || results.out_of_order > 0
        || results.order_mismatches > 0
    {
        Verdict::Lost
    } else if results.connect_failures > 0 {
        Verdict::Refused
    } else if results.missed_by_closed > 0 || !results.close_codes.is_empty() {
        Verdict::Closed
    } else if results.sent == 0 {
        Verdict::NothingSent
    } else if results.late > 0 || results.deliveries_per_s < KEPT_UP_SHARE * offered_per_s {
        Verdict::FellBehind
    } else {
        Verdict::KeptUp
    };
    Judgement {
        verdict,
        offered_per_s,
        delivered_per_s: results.deliveries_per_s,
    }
}

/// Judges a record: a fan-out run by [`judge`] at its offered rate (its
/// quiet rooms, with a busy room); `None` for any other scenario.
pub fn judge_record(record: &Record) -> Option<Judgement> {
    match &record.results {
        Results::Fanout(results) => Some(judge(results, Load::of(record).offered_per_s())),
        _ => None,
    }
}

/// Whether a capacity step held: it kept up at its offered rate, and its
/// p99 latency is within the SLO.
pub fn step_held(results: &FanoutResults, offered_per_s: f64, slo_ms: f64) -> bool {
    judge(results, offered_per_s).kept_up()
        && results.latency_us.count > 0
        && results.error_replies == 0
        && results.latency_us.p99_us as f64 <= slo_ms * 1000.0
}

/// What a run was asked to do. Runs with equal loads, in one `runs.jsonl`,
/// are like for like; a variant (an older build, a non-default setting) is
/// a different server on the same load, and is compared only where a
/// section sets variants side by side on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Load {
    /// Rooms the clients are spread over.
    pub rooms: u64,
    /// Clients over all rooms (a busy room's apart).
    pub clients: u64,
    /// Senders per room.
    pub senders: u64,
    /// Messages per second per sender, in thousandths (an integer, so that
    /// loads compare exactly).
    pub rate_milli: u64,
    /// Bytes of text per message.
    pub payload: u64,
    /// A busy room beside the measured ones: its clients, senders and rate
    /// (thousandths), all zero without one.
    pub busy: (u64, u64, u64),
}

impl Load {
    /// The load of a fan-out record (a capacity or connections record gives
    /// its fixed parameters; clients are then the step's).
    pub fn of(record: &Record) -> Self {
        Self::of_params(&record.params)
    }

    /// The load of a run's parameters.
    pub fn of_params(p: &Params) -> Self {
        Self {
            rooms: p.rooms.unwrap_or(0),
            clients: p.clients.unwrap_or(0),
            senders: p.senders_per_room.unwrap_or(0),
            rate_milli: milli(p.rate_per_s),
            payload: p.payload_bytes.unwrap_or(0),
            busy: (
                p.busy_clients.unwrap_or(0),
                p.busy_senders.unwrap_or(0),
                milli(p.busy_rate_per_s),
            ),
        }
    }

    /// The same load with `clients` clients (a capacity step's).
    pub fn with_clients(self, clients: u64) -> Self {
        Self { clients, ..self }
    }

    /// Messages per second per sender.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_milli as f64 / 1000.0
    }

    /// Deliveries per second the load asks for: every sender's messages to
    /// every member of its room (the sender included), the clients spread
    /// evenly over the rooms.
    pub fn offered_per_s(&self) -> f64 {
        self.clients as f64 * self.senders as f64 * self.rate_per_s()
    }
}

fn milli(rate: Option<f64>) -> u64 {
    // Rates are small positive numbers; anything else saturates, which
    // only affects grouping.
    rate.map_or(0, |r| (r * 1000.0).round().max(0.0) as u64)
}

/// Whether two records ran the same scenario at the same load, whatever
/// server or variant ran it, and both with or both without extra server
/// flags.
pub fn same_load(a: &Record, b: &Record) -> bool {
    a.scenario == b.scenario
        && Load::of(a) == Load::of(b)
        && a.params.server_flags.is_some() == b.params.server_flags.is_some()
}

/// Whether two records may be set side by side: the same load
/// ([`same_load`]), the same variant (none for a normal run).
pub fn like_for_like(a: &Record, b: &Record) -> bool {
    same_load(a, b) && a.params.variant == b.params.variant
}

/// The most deliveries per second kept up among `runs`, with the run
/// that made them: a server's peak is only ever a run that kept up.
pub fn peak<'a>(runs: impl IntoIterator<Item = &'a Record>) -> Option<(&'a Record, Judgement)> {
    runs.into_iter()
        .filter_map(|r| judge_record(r).map(|j| (r, j)))
        .filter(|(_, j)| j.kept_up())
        .max_by(|(_, a), (_, b)| a.delivered_per_s.total_cmp(&b.delivered_per_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept_up_run(offered: f64) -> FanoutResults {
        FanoutResults {
            sent: 1000,
            expected_deliveries: 1_000_000,
            delivered: 1_000_000,
            deliveries_per_s: offered,
            ..FanoutResults::default()
        }
    }

    #[test]
    fn a_run_at_the_offered_rate_kept_up() {
        let r = kept_up_run(100_000.0);
        assert_eq!(judge(&r, 100_000.0).verdict, Verdict::KeptUp);
    }

    #[test]
    fn under_the_share_is_falling_behind_even_with_nothing_lost() {
        // chat-sync at 1,000 clients, 100 msg/s in the run of 2026-12-04:
        // every delivery arrived, at 95.8% of the rate offered.
        let mut r = kept_up_run(95_775.0);
        r.delivered = r.expected_deliveries;
        let j = judge(&r, 100_000.0);
        assert_eq!(j.verdict, Verdict::FellBehind);
        assert!(!j.kept_up());
        r.deliveries_per_s = KEPT_UP_SHARE * 100_000.0;
        assert!(judge(&r, 100_000.0).kept_up(), "the share itself is enough");
    }

    #[test]
    fn late_deliveries_fall_behind_at_any_rate() {
        let mut r = kept_up_run(100_000.0);
        r.late = 1;
        assert_eq!(judge(&r, 100_000.0).verdict, Verdict::FellBehind);
    }

    #[test]
    fn the_worst_outcome_decides() {
        let mut r = kept_up_run(10.0);
        r.late = 5;
        r.close_codes.insert("1013".into(), 1);
        assert_eq!(judge(&r, 100.0).verdict, Verdict::Closed);
        r.connect_failures = 2;
        assert_eq!(judge(&r, 100.0).verdict, Verdict::Refused);
        r.out_of_order = 1;
        assert_eq!(judge(&r, 100.0).verdict, Verdict::Lost);
    }

    #[test]
    fn a_run_that_sent_nothing_is_judged_by_why() {
        let mut r = kept_up_run(10.0);
        r.sent = 0;
        r.close_codes.insert("1013".into(), 1);
        assert_eq!(judge(&r, 100.0).verdict, Verdict::Closed);
        r.connect_failures = 2;
        assert_eq!(judge(&r, 100.0).verdict, Verdict::Refused);
        r.close_codes.clear();
        r.connect_failures = 0;
        assert_eq!(judge(&r, 100.0).verdict, Verdict::NothingSent);
    }

    #[test]
    fn a_step_holds_only_within_the_slo_and_kept_up() {
        let mut r = kept_up_run(8000.0);
        r.latency_us.count = 10;
        r.latency_us.p99_us = 250_000;
        assert!(step_held(&r, 8000.0, 250.0));
        r.latency_us.p99_us = 250_001;
        assert!(!step_held(&r, 8000.0, 250.0));
        r.latency_us.p99_us = 1;
        r.error_replies = 1;
        assert!(!step_held(&r, 8000.0, 250.0));
    }

    #[test]
    fn offered_counts_every_member_of_each_senders_room() {
        let load = Load {
            rooms: 100,
            clients: 1000,
            senders: 1,
            rate_milli: 100_000,
            ..Load::default()
        };
        // 100 rooms of 10, one sender each at 100 msg/s: 100,000/s.
        assert_eq!(load.offered_per_s(), 100_000.0);
        let four = Load {
            rooms: 1,
            clients: 1000,
            senders: 4,
            rate_milli: 2000,
            ..Load::default()
        };
        assert_eq!(four.offered_per_s(), 8000.0);
    }
}
