//! What the receivers of a fan-out run share: the arrival counts the drain
//! watches, and the stop signal.
//!
//! Both sit on the load generator's hot path (every frame received), so
//! both are built to cost a plain load or add per frame, not a lock: each
//! receiver counts locally and publishes into a slot of its own, and the
//! stop is a flag read before each frame, with a `Notify` only for
//! receivers that are idle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// Slots of [`Arrivals`]: receiver `i` counts in slot `i % ARRIVAL_SLOTS`, so
/// receivers running at once on different worker threads rarely write the
/// same cache line.
pub(crate) const ARRIVAL_SLOTS: usize = 64;

/// Frames a receiver takes in a row without waiting before it adds them to
/// [`Arrivals`] anyway (it always does before it waits).
pub(crate) const PUBLISH_EVERY: u64 = 256;

/// Deliveries so far, counted by every receiver, for the drain to watch.
///
/// A receiver adds what it got whenever it is about to wait for the next
/// frame, and after every [`PUBLISH_EVERY`] frames taken in a row, into its
/// own slot; the totals are the sums over the slots. So a receiver that is
/// not running has added everything it got, and one that is holds back
/// fewer than [`PUBLISH_EVERY`] frames.
pub(crate) struct Arrivals {
    pub(crate) slots: Box<[ArrivalSlot]>,
}

/// One slot of [`Arrivals`], alone on its cache lines (128 bytes: the
/// adjacent-line prefetcher moves pairs of 64-byte lines).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct ArrivalSlot {
    /// Measured deliveries (first copies of messages of the window).
    measured: AtomicU64,
    /// Every delivery of a load-generator message, warm-up included: a
    /// server still working through its backlog is making progress.
    any: AtomicU64,
    /// When the last measured delivery arrived, µs on the run's clock.
    last_measured_us: AtomicU64,
}

impl Default for Arrivals {
    fn default() -> Self {
        Self {
            slots: (0..ARRIVAL_SLOTS).map(|_| ArrivalSlot::default()).collect(),
        }
    }
}

impl Arrivals {
    /// Measured deliveries (first copies of messages of the window).
    pub(crate) fn measured(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.measured.load(Ordering::Relaxed))
            .sum()
    }

    /// Every delivery of a load-generator message, warm-up included.
    pub(crate) fn any(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.any.load(Ordering::Relaxed))
            .sum()
    }

    /// When the last measured delivery arrived, µs on the run's clock.
    pub(crate) fn last_measured_us(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.last_measured_us.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// What one receiver got and has not yet added to its slot of [`Arrivals`].
#[derive(Default)]
pub(crate) struct Unpublished {
    measured: u64,
    any: u64,
    last_measured_us: u64,
}

impl Unpublished {
    /// Counts a delivery of a load-generator message; `measured` if it was
    /// the first copy of a message of the window.
    pub(crate) fn count(&mut self, measured: bool, arrival_us: u64) {
        self.any += 1;
        if measured {
            self.measured += 1;
            self.last_measured_us = arrival_us;
        }
    }

    /// Adds what was counted to `slot`, and starts afresh.
    pub(crate) fn publish(&mut self, slot: &ArrivalSlot) {
        if self.any == 0 {
            return;
        }
        if self.measured > 0 {
            slot.last_measured_us
                .fetch_max(self.last_measured_us, Ordering::Relaxed);
            slot.measured.fetch_add(self.measured, Ordering::Relaxed);
        }
        slot.any.fetch_add(self.any, Ordering::Relaxed);
        *self = Self::default();
    }
}

/// Tells the receivers to stop.
///
/// A receiver reads the flag before each frame it takes (a load of a line
/// nobody writes until the stop), and registers its waker with the
/// [`Notify`] the first time it goes idle (again only if its waker changes),
/// so a stop also wakes the idle ones. (Polling a `CancellationToken`'s
/// `cancelled()` per frame took two shared locks, and with creating and
/// dropping the future a tenth of the load generator's CPU.)
#[derive(Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    pub(crate) wake: Notify,
}

impl Stop {
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}
