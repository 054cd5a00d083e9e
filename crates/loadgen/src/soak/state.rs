//! What every part of a soak shares: the run's clock, its two stop signals,
//! the counters that the samples and the verdict read, and the notes that
//! say precisely what went wrong.
//!
//! Counters are atomics, not a lock: the members count every delivery, and
//! a lock taken per frame by ~80 tasks would be the load generator's own
//! bottleneck on two cores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::client::Target;
use crate::soak::SoakConfig;

/// Notes kept word for word; past this many, only counted (a server that
/// fails every churn cycle for an hour must not fill the record).
const MAX_NOTES: usize = 40;

/// The run's shared state.
pub struct Shared {
    /// The server.
    pub target: Target,
    /// The load, as asked.
    pub config: SoakConfig,
    /// Prefix of every room name of this run, so runs never share rooms.
    pub tag: String,
    /// The run's clock; samples' `t_s` and probes' times count from it.
    pub clock: Instant,
    /// Cancelled when the load stops: senders stop sending, and churn, slow
    /// readers and bad clients start nothing new (those under way finish).
    pub load: CancellationToken,
    /// Cancelled once every owed delivery is in (or the wait gave up): the
    /// members close.
    pub close: CancellationToken,
    /// What the run counted so far.
    pub counts: Counts,
    notes: Mutex<Notes>,
}

/// The run's counters, all monotonic except `connections`.
#[derive(Debug, Default)]
pub struct Counts {
    /// Client connections open now.
    pub connections: AtomicU64,
    /// Deliveries to well-behaved clients so far (members, burst senders'
    /// own echoes, churn echoes): first copies only.
    pub delivered: AtomicU64,
    /// Of those, deliveries to the members: the part the final drain waits for.
    pub member_delivered: AtomicU64,
    /// Steady senders still sending.
    pub senders_sending: AtomicU64,
    /// Messages sent into the slow room by burst senders.
    pub burst_sent: AtomicU64,
    /// Churn cycles that sent their message.
    pub churn_sent: AtomicU64,
    /// Churn cycles that got their echo.
    pub churn_echoed: AtomicU64,
    /// Churn cycles completed.
    pub churn_cycles: AtomicU64,
    /// Churn cycles that failed.
    pub churn_failures: AtomicU64,
    /// Slow readers started.
    pub slow_readers: AtomicU64,
    /// Slow readers closed with 1013.
    pub slow_1013: AtomicU64,
    /// Bad clients started.
    pub bad_clients: AtomicU64,
    /// Bad clients answered as the protocol says.
    pub bad_answered: AtomicU64,
    /// Burst senders' own echoes lost, duplicated, out of order.
    pub burst_lost: AtomicU64,
    /// See `burst_lost`.
    pub burst_duplicates: AtomicU64,
    /// See `burst_lost`.
    pub burst_out_of_order: AtomicU64,
    /// Well-behaved clients other than members (burst senders, churn)
    /// closed or broken without asking.
    pub other_unexpected_closes: AtomicU64,
    /// Frames burst senders and churn clients received that were not theirs.
    pub other_foreign: AtomicU64,
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads a counter.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[derive(Debug, Default)]
struct Notes {
    kept: Vec<String>,
    dropped: u64,
}

impl Shared {
    /// A run of `config` against `target`, its clock starting now.
    pub fn new(target: Target, config: SoakConfig, tag: String) -> Arc<Self> {
        Arc::new(Self {
            target,
            config,
            tag,
            clock: Instant::now(),
            load: CancellationToken::new(),
            close: CancellationToken::new(),
            counts: Counts::default(),
            notes: Mutex::default(),
        })
    }

    /// µs since the run started.
    pub fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// The instant `us` µs after the run started.
    pub fn at(&self, us: u64) -> Instant {
        self.clock + Duration::from_micros(us)
    }

    /// Seconds since the run started.
    pub fn t_s(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    /// Records what went wrong, where, and when; prints it on stderr too
    /// (the first [`MAX_NOTES`]).
    pub fn note(&self, what: impl Into<String>) {
        let line = format!("at {:.1} s: {}", self.t_s(), what.into());
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        if notes.kept.len() < MAX_NOTES {
            // At once, beside the progress lines: a soak runs for long.
            eprintln!("soak [{}] {line}", self.config.label);
            notes.kept.push(line);
        } else {
            notes.dropped += 1;
        }
    }

    /// The notes, and how many more were not kept.
    pub fn notes(&self) -> (Vec<String>, u64) {
        let notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        (notes.kept.clone(), notes.dropped)
    }
}

/// One open client connection, counted in [`Counts::connections`] while it
/// lives.
pub struct Open(Arc<Shared>);

impl Open {
    /// Counts one more open connection.
    pub fn new(shared: &Arc<Shared>) -> Self {
        bump(&shared.counts.connections);
        Self(Arc::clone(shared))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.counts.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Offsets of a periodic event within the run: the first at half the
/// period (so that a run as short as one period still has one), then
/// every period.
pub fn first_at(every: Duration) -> Duration {
    every / 2
}
