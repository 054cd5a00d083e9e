//! Queued bytes: each outbox bounded in bytes, and the whole server too.
//!
//! `--outbox-capacity` bounds a member's queue in frames, but frames are up
//! to `--max-message-bytes` each: 1,024 frames of 64 KiB are 64 MiB for one
//! stalled member, and that times every connection for the server. So every
//! outbox also counts the bytes it holds, from the push that queues a frame
//! until its writer has written it:
//!
//! * a push that would take one outbox past `--outbox-bytes` fails with
//!   [`PushError::Full`]: the member is too slow and its room closes it
//!   with 1013, exactly as for `--outbox-capacity`;
//! * a push that would take the whole server past `--max-queued-bytes`
//!   first evicts the member with the largest queue ([`Evict::evict`]: the
//!   server hangs up on it, which frees its queue at once, where a close
//!   frame would wait behind the very bytes its client is not reading),
//!   and again while the total is over, so that no one else loses a
//!   message; if the largest is the pusher's own, the push fails as above.
//!
//! A frame shared by a room's members (it is formatted once per message)
//! counts at each member that holds it: the bound is on what the server may
//! be made to hold, so it counts each member's hold on it as the whole.
//!
//! The bookkeeping is a few atomic operations per push that queues and per
//! batch a writer writes (frames the broadcast writes to the socket itself
//! are never queued): the server's total is one shared counter, and finding
//! the largest queue scans every outbox, which only an eviction does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::ServerConfig;
use crate::rooms::PushError;

/// The flag in [`QueuedBytes`]'s count that marks an evicted outbox.
const EVICTED: usize = 1 << (usize::BITS - 1);

/// The registry's size below which it is never pruned of dead outboxes.
const PRUNE_FLOOR: usize = 1024;

/// What the budget needs of a connection: its count, and a way to hang up
/// on it.
pub trait Evict: Send + Sync {
    /// The connection's queued bytes.
    fn queued(&self) -> &QueuedBytes;
    /// Hangs up on the connection now, dropping what it has queued.
    fn evict(&self);
}

/// The server's queued bytes, and every outbox that holds some.
pub struct QueueBudget {
    max_total: usize,
    total: AtomicUsize,
    outboxes: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    outboxes: Vec<Weak<dyn Evict>>,
    /// Its length after its last pruning.
    pruned_to: usize,
}

/// The bounds of one outbox: `frames` and `bytes` of its own, within the
/// server's `budget`.
#[derive(Clone)]
pub struct OutboxLimits {
    /// Most frames queued (`--outbox-capacity`).
    pub frames: usize,
    /// Most bytes queued (`--outbox-bytes`).
    pub bytes: usize,
    /// The server's budget (`--max-queued-bytes`).
    pub budget: Arc<QueueBudget>,
}

impl OutboxLimits {
    /// The limits `config` sets, with a budget of their own.
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            frames: config.outbox_capacity,
            bytes: config.outbox_bytes,
            budget: QueueBudget::new(config.max_queued_bytes),
        }
    }

    /// These limits raised by a replay of `frames` frames and `bytes` bytes
    /// queued at join, so that the replay never counts against the live
    /// frames' room (the server's budget still counts it).
    pub fn with_replay(&self, frames: usize, bytes: usize) -> Self {
        Self {
            frames: self.frames + frames,
            bytes: self.bytes + bytes,
            budget: Arc::clone(&self.budget),
        }
    }
}

/// One outbox's queued bytes, counted in its server's [`QueueBudget`].
pub struct QueuedBytes {
    /// Bytes held, with [`EVICTED`] once evicted.
    held: AtomicUsize,
    max: usize,
    budget: Arc<QueueBudget>,
}

impl QueueBudget {
    /// A budget of `max_total` bytes.
    pub fn new(max_total: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            total: AtomicUsize::new(0),
            outboxes: Mutex::new(Registry::default()),
        })
    }

    /// Bytes queued in all outboxes now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Adds an outbox to those an eviction chooses from, for as long as it
    /// lives.
    pub fn register(&self, outbox: Weak<dyn Evict>) {
        let mut registry = self.lock();
        registry.outboxes.push(outbox);
        if registry.outboxes.len() > (2 * registry.pruned_to).max(PRUNE_FLOOR) {
            registry.outboxes.retain(|outbox| outbox.strong_count() > 0);
            registry.pruned_to = registry.outboxes.len();
        }
    }

    /// While the total is over the budget, evicts the outbox with the most
    /// bytes. Returns whether it evicted any.
    fn evict_largest(&self) -> bool {
        let victim = {
            let registry = self.lock();
            // Another push may have evicted one meanwhile.
            if self.total() <= self.max_total {
                return false;
            }
            let mut largest: Option<(usize, Arc<dyn Evict>)> = None;
            for outbox in registry.outboxes.iter().filter_map(Weak::upgrade) {
                let held = outbox.queued().held.load(Ordering::Acquire);
                if held & EVICTED == 0 && held > largest.as_ref().map_or(0, |(most, _)| *most) {
                    largest = Some((held, outbox));
                }
            }
            largest
        };
        // Outside the registry's lock: a hang-up may drop the last handle
        // on an outbox.
        let Some((_, victim)) = victim else {
            return false;
        };
        if victim.queued().mark_evicted() {
            tracing::warn!(
                bytes = self.total(),
                max = self.max_total,
                "queued bytes over --max-queued-bytes: hanging up on the largest queue"
            );
            victim.evict();
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.outboxes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl QueuedBytes {
    /// An empty count of at most `max` bytes in `budget`.
    pub fn new(max: usize, budget: &Arc<QueueBudget>) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
            budget: Arc::clone(budget),
        }
    }

    /// Bytes held now (0 once evicted).
    pub fn bytes(&self) -> usize {
        let held = self.held.load(Ordering::Acquire);
        if held & EVICTED == 0 { held } else { 0 }
    }

    /// Whether the budget has evicted this outbox.
    pub fn is_evicted(&self) -> bool {
        self.held.load(Ordering::Acquire) & EVICTED != 0
    }

    /// Counts `bytes` about to be queued, or fails with
    /// [`PushError::Full`]: past this outbox's bound, evicted, or itself the
    /// largest queue when the server's total is over its budget (then other
    /// outboxes are evicted first, largest first, until it is not).
    pub fn reserve(&self, bytes: usize) -> Result<(), PushError> {
        let held = self.held.load(Ordering::Acquire);
        if held & EVICTED != 0 || held + bytes > self.max {
            return Err(PushError::Full);
        }
        // The total first: an eviction between the two counts then takes
        // back only what it saw here.
        self.budget.total.fetch_add(bytes, Ordering::AcqRel);
        if self.held.fetch_add(bytes, Ordering::AcqRel) & EVICTED != 0 {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            self.budget.total.fetch_sub(bytes, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        while self.budget.total() > self.budget.max_total && self.budget.evict_largest() {
            if self.is_evicted() {
                self.release(bytes);
                return Err(PushError::Full);
            }
        }
        Ok(())
    }

    /// Gives back `bytes` written (or dropped).
    pub fn release(&self, bytes: usize) {
        if self.held.fetch_sub(bytes, Ordering::AcqRel) & EVICTED == 0 {
            self.budget.total.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// Marks this outbox evicted and takes all it holds out of the total
    /// (its connection is hung up on, and drops it); false if it was
    /// already.
    fn mark_evicted(&self) -> bool {
        let held = self.held.fetch_or(EVICTED, Ordering::AcqRel);
        if held & EVICTED != 0 {
            return false;
        }
        self.budget.total.fetch_sub(held, Ordering::AcqRel);
        true
    }
}

impl Drop for QueuedBytes {
    /// Whatever is still counted goes with the outbox.
    fn drop(&mut self) {
        self.mark_evicted();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// An outbox that only counts, and records its eviction.
    struct Counted {
        queued: QueuedBytes,
        evicted: AtomicBool,
    }

    impl Evict for Counted {
        fn queued(&self) -> &QueuedBytes {
            &self.queued
        }
        fn evict(&self) {
            self.evicted.store(true, Ordering::SeqCst);
        }
    }

    fn outbox(max: usize, budget: &Arc<QueueBudget>) -> Arc<Counted> {
        let outbox = Arc::new(Counted {
            queued: QueuedBytes::new(max, budget),
            evicted: AtomicBool::new(false),
        });
        let weak: Weak<dyn Evict> = Arc::downgrade(&outbox) as Weak<dyn Evict>;
        budget.register(weak);
        outbox
    }

    #[test]
    fn an_outbox_holds_at_most_its_bytes() {
        let budget = QueueBudget::new(1 << 20);
        let one = outbox(100, &budget);
        assert_eq!(one.queued.reserve(60), Ok(()));
        assert_eq!(one.queued.reserve(41), Err(PushError::Full));
        assert_eq!(one.queued.reserve(40), Ok(()));
        assert_eq!(budget.total(), 100);
        one.queued.release(60);
        assert_eq!((one.queued.bytes(), budget.total()), (40, 40));
        drop(one);
        assert_eq!(budget.total(), 0, "a dropped outbox gives back its bytes");
    }

    #[test]
    fn over_the_budget_the_largest_queue_is_evicted_first() {
        let budget = QueueBudget::new(250);
        let (a, b, c) = (
            outbox(200, &budget),
            outbox(200, &budget),
            outbox(200, &budget),
        );
        a.queued.reserve(150).unwrap();
        b.queued.reserve(50).unwrap();
        c.queued.reserve(40).unwrap();
        assert_eq!(budget.total(), 240);
        assert_eq!(c.queued.reserve(20), Ok(()), "c is not the largest");
        assert!(a.evicted.load(Ordering::SeqCst), "a held the most");
        assert!(a.queued.is_evicted());
        assert!(!b.evicted.load(Ordering::SeqCst) && !c.evicted.load(Ordering::SeqCst));
        assert_eq!(budget.total(), 110, "a's bytes left with it");
        assert_eq!(
            a.queued.reserve(1),
            Err(PushError::Full),
            "evicted: no more"
        );
        a.queued.release(150);
        assert_eq!(
            budget.total(),
            110,
            "a's writer giving back changes nothing"
        );
    }

    #[test]
    fn the_largest_pusher_fails_its_own_push() {
        let budget = QueueBudget::new(100);
        let (a, b) = (outbox(200, &budget), outbox(200, &budget));
        a.queued.reserve(80).unwrap();
        b.queued.reserve(10).unwrap();
        assert_eq!(a.queued.reserve(20), Err(PushError::Full));
        assert!(a.evicted.load(Ordering::SeqCst) && !b.evicted.load(Ordering::SeqCst));
        assert_eq!(budget.total(), 10);
    }

    #[test]
    fn dead_outboxes_are_pruned_from_the_registry() {
        let budget = QueueBudget::new(100);
        for _ in 0..10 * PRUNE_FLOOR {
            drop(outbox(10, &budget));
        }
        assert!(budget.lock().outboxes.len() <= PRUNE_FLOOR + 1);
    }
}
