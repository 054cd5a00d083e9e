//! Accounting of deliveries: latency, loss, duplicates and order.
//!
//! Every receiving client keeps a [`ReceiverTally`]: which message of which
//! sender it got (a bitset per sender, so duplicates are exact), the last
//! sequence number per sender (a smaller one after a larger is out of
//! order), and a hash of the order in which it got the room's messages, so
//! that the members of a room can be checked for one total order. Latencies
//! go to a histogram shared by the run, through a small local buffer so the
//! lock is taken once per [`FLUSH_EVERY`] deliveries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;

use crate::probe::Probe;
use chat_record::Latency;

/// Latencies buffered per receiver before they go to the shared histogram.
pub const FLUSH_EVERY: usize = 1024;

/// Largest latency the histograms track: 10 minutes, in µs.
const MAX_TRACKED_US: u64 = 600_000_000;

/// The run's window, in µs on its clock: messages meant to be sent in
/// `[start_us, end_us)` are measured; the others (warm-up) are not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start of the measured window.
    pub start_us: u64,
    /// End of the measured window (exclusive).
    pub end_us: u64,
}

impl Window {
    /// Whether a message meant for `intended_us` is measured.
    pub fn contains(&self, intended_us: u64) -> bool {
        (self.start_us..self.end_us).contains(&intended_us)
    }
}

/// A histogram of µs values that many tasks record into.
#[derive(Clone)]
pub struct SharedHistogram {
    inner: Arc<Mutex<Histogram<u64>>>,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(new_histogram())),
        }
    }
}

/// A histogram with 3 significant digits from 1 µs to 10 minutes.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid histogram bounds")
}

impl SharedHistogram {
    /// Records `values` (µs), saturating at the tracked maximum.
    pub fn record_all(&self, values: &[u64]) {
        let mut histogram = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for &value in values {
            histogram.saturating_record(value.max(1));
        }
    }

    /// The distribution so far.
    pub fn summary(&self) -> Latency {
        summarize(&self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The distribution of several histograms together (one URL's each, say).
pub fn summary_of(parts: &[SharedHistogram]) -> Latency {
    let mut all = new_histogram();
    for part in parts {
        let part = part.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // The same bounds, so nothing is out of range.
        all.add(&*part)
            .expect("histograms of the same bounds add up");
    }
    summarize(&all)
}

/// Percentiles of a histogram, in the record's shape.
pub fn summarize(histogram: &Histogram<u64>) -> Latency {
    if histogram.is_empty() {
        return Latency::default();
    }
    Latency {
        count: histogram.len(),
        min_us: histogram.min(),
        mean_us: histogram.mean(),
        p50_us: histogram.value_at_quantile(0.50),
        p90_us: histogram.value_at_quantile(0.90),
        p99_us: histogram.value_at_quantile(0.99),
        p999_us: histogram.value_at_quantile(0.999),
        max_us: histogram.max(),
    }
}

/// Which sequence numbers of one sender a receiver got.
#[derive(Debug, Default, Clone)]
struct SeenSet {
    bits: Vec<u64>,
    last_seq: Option<u32>,
}

impl SeenSet {
    /// Marks `seq`; false if it was already there.
    fn insert(&mut self, seq: u32) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        let fresh = self.bits[word] & (1 << bit) == 0;
        self.bits[word] |= 1 << bit;
        fresh
    }

    /// Whether `seq` was seen.
    fn contains(&self, seq: u32) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        self.bits.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// What one receiving client saw.
#[derive(Debug, Default, Clone)]
pub struct ReceiverTally {
    seen: BTreeMap<u32, SeenSet>,
    /// Measured deliveries received (first copies only).
    pub measured: u64,
    /// Deliveries of any message (first copies, warm-up ones included)
    /// that arrived within the window: what the server delivered then,
    /// however far behind it was.
    pub arrived_in_window: u64,
    /// Deliveries received twice or more.
    pub duplicated: u64,
    /// Deliveries that came after a later message of the same sender.
    pub out_of_order: u64,
    /// `{"error": ...}` frames.
    pub error_replies: u64,
    /// Text frames that were not the load generator's messages.
    pub foreign: u64,
    /// The close code the server sent, if it closed this client.
    pub close_code: Option<u16>,
    /// Hash of the order of the measured messages received.
    pub order_hash: u64,
    pending: Vec<u64>,
}

impl ReceiverTally {
    /// Accounts for one delivery of `probe` arriving at `arrival_us`.
    pub fn on_probe(
        &mut self,
        probe: Probe,
        arrival_us: u64,
        window: Window,
        latency: &SharedHistogram,
    ) {
        let seen = self.seen.entry(probe.sender).or_default();
        if !seen.insert(probe.seq) {
            self.duplicated += 1;
            return;
        }
        if seen.last_seq.is_some_and(|last| probe.seq < last) {
            self.out_of_order += 1;
        }
        seen.last_seq = Some(seen.last_seq.map_or(probe.seq, |last| last.max(probe.seq)));
        if window.contains(arrival_us) {
            self.arrived_in_window += 1;
        }
        if !window.contains(probe.intended_us) {
            return;
        }
        self.measured += 1;
        let id = (u64::from(probe.sender) << 32) | u64::from(probe.seq);
        self.order_hash = (self.order_hash ^ id)
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(5);
        // From the intended send time, however late the server (or the
        // sender's blocked socket) made it.
        self.pending
            .push(arrival_us.saturating_sub(probe.intended_us));
        if self.pending.len() >= FLUSH_EVERY {
            self.flush(latency);
        }
    }

    /// Sends the buffered latencies to the shared histogram.
    pub fn flush(&mut self, latency: &SharedHistogram) {
        latency.record_all(&self.pending);
        self.pending.clear();
    }

    /// How many of sender `sender`'s messages `lo..hi` this receiver got.
    pub fn received_of(&self, sender: u32, lo: u32, hi: u32) -> u64 {
        u64::from(hi - lo) - self.missing_of(sender, lo, hi).count() as u64
    }

    /// Which of sender `sender`'s messages `lo..hi` this receiver did not get.
    pub fn missing_of(&self, sender: u32, lo: u32, hi: u32) -> impl Iterator<Item = u32> + '_ {
        let seen = self.seen.get(&sender);
        (lo..hi).filter(move |&seq| !seen.is_some_and(|seen| seen.contains(seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Window = Window {
        start_us: 1_000,
        end_us: 10_000_000,
    };

    fn probe(sender: u32, seq: u32, intended_us: u64) -> Probe {
        Probe {
            sender,
            seq,
            intended_us,
        }
    }

    #[test]
    fn a_stalled_delivery_shows_its_whole_delay() {
        let latency = SharedHistogram::default();
        let mut tally = ReceiverTally::default();
        tally.on_probe(probe(1, 0, 2_000), 2_500, WINDOW, &latency);
        // The server stalled for 5 s: the message meant for t = 3 ms
        // arrives at t = 5.003 s.
        tally.on_probe(probe(1, 1, 3_000), 5_003_000, WINDOW, &latency);
        tally.flush(&latency);
        let summary = latency.summary();
        assert_eq!(summary.count, 2);
        assert_eq!(summary.min_us, 500);
        assert!(summary.max_us >= 4_999_000, "{summary:?}");
    }

    #[test]
    fn counts_duplicates_out_of_order_and_loss() {
        let latency = SharedHistogram::default();
        let mut tally = ReceiverTally::default();
        for (seq, t) in [(0, 2_000), (2, 4_000), (1, 3_000), (2, 4_000), (4, 6_000)] {
            tally.on_probe(probe(9, seq, t), t + 10, WINDOW, &latency);
        }
        assert_eq!(tally.duplicated, 1);
        assert_eq!(tally.out_of_order, 1);
        assert_eq!(tally.measured, 4);
        assert_eq!(tally.received_of(9, 0, 5), 4, "seq 3 was lost");
        assert_eq!(tally.received_of(8, 0, 5), 0);
    }

    #[test]
    fn warm_up_messages_are_not_measured() {
        let latency = SharedHistogram::default();
        let mut tally = ReceiverTally::default();
        tally.on_probe(probe(1, 0, 500), 600, WINDOW, &latency);
        tally.flush(&latency);
        assert_eq!(tally.measured, 0);
        assert_eq!(latency.summary().count, 0);
        assert_eq!(tally.arrived_in_window, 0);
    }

    #[test]
    fn arrivals_in_the_window_count_whatever_their_send_time() {
        let latency = SharedHistogram::default();
        let mut tally = ReceiverTally::default();
        // A warm-up message delivered late, in the window; a measured one;
        // its duplicate; one delivered after the window.
        tally.on_probe(probe(1, 0, 500), 5_000, WINDOW, &latency);
        tally.on_probe(probe(1, 1, 2_000), 6_000, WINDOW, &latency);
        tally.on_probe(probe(1, 1, 2_000), 7_000, WINDOW, &latency);
        tally.on_probe(probe(1, 2, 3_000), 10_000_000, WINDOW, &latency);
        assert_eq!(tally.arrived_in_window, 2);
        assert_eq!(tally.measured, 2);
    }

    #[test]
    fn the_same_order_gives_the_same_hash() {
        let latency = SharedHistogram::default();
        let (mut a, mut b, mut c) = Default::default();
        for (tally, order) in [
            (&mut a, [(1, 0), (2, 0), (1, 1)]),
            (&mut b, [(1, 0), (2, 0), (1, 1)]),
            (&mut c, [(2, 0), (1, 0), (1, 1)]),
        ] {
            let tally: &mut ReceiverTally = tally;
            for (sender, seq) in order {
                tally.on_probe(probe(sender, seq, 5_000), 6_000, WINDOW, &latency);
            }
        }
        assert_eq!(a.order_hash, b.order_hash);
        assert_ne!(a.order_hash, c.order_hash);
    }
}
