//! The connections still in their HTTP handshake, oldest first, and which
//! one to evict when a newcomer finds every handshake slot taken.
//!
//! A flood of connections that never finish their request head (slowloris,
//! or plain silent sockets) would otherwise hold every slot
//! (`--max-pending-handshakes`) until the handshake timeout, while real
//! clients wait behind the flood in the kernel's backlog. So when a
//! connection arrives and every slot is taken, a server evicts the oldest
//! handshake that has lasted at least [`EVICTABLE_AFTER`] (250 ms). A real client
//! sends its head within a round trip, long before it could be evicted;
//! younger handshakes are never evicted, so a burst of real clients waits in
//! the backlog as before. Eviction happens only when someone new is waiting,
//! never on a timer.
//!
//! This is the bookkeeping, shared by both servers; each server's `pending`
//! module holds the slots, waits for them its own way, and hangs up on the
//! evicted connection through the handle kept here (a socket to shut down,
//! or a cancellation token).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a handshake must have lasted before a newcomer may evict it:
/// far longer than a real client takes to send its head (a round trip),
/// short enough that the acceptor gets through a backlog of silent
/// connections quickly, at `--max-pending-handshakes` per this much (2,048
/// a second by default). A flood sustained faster than that still keeps
/// real clients waiting in the backlog: this bounds what an attacker must
/// sustain; the limits per address ([`crate::per_ip`]) stop one address
/// from sustaining it, and a flood from many addresses needs a firewall.
pub const EVICTABLE_AFTER: Duration = Duration::from_millis(250);

/// The connections reading their request head, in accept order, each with
/// the handle that hangs up on it.
pub struct PendingHandshakes<H> {
    waiting: Mutex<VecDeque<Waiting<H>>>,
}

struct Waiting<H> {
    id: u64,
    since: Instant,
    handle: H,
}

/// What [`PendingHandshakes::evict_oldest`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Eviction<H> {
    /// The oldest had lasted long enough and is no longer pending: hang up on
    /// it with `handle`; its slot comes back when its connection ends.
    Evict {
        /// The evicted connection.
        id: u64,
        /// How long its handshake had lasted.
        age: Duration,
        /// What hangs up on it.
        handle: H,
    },
    /// The oldest may be evicted after this long.
    NotBefore(Duration),
    /// None is reading its head (every slot is past it): wait for a slot.
    NoCandidate,
}

impl<H> PendingHandshakes<H> {
    /// An empty list with room for `capacity` (the slots).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            waiting: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// Connection `id` starts reading its head.
    pub fn push(&self, id: u64, handle: H) {
        self.lock().push_back(Waiting {
            id,
            since: Instant::now(),
            handle,
        });
    }

    /// Connection `id` is no longer reading its head (it was read, or the
    /// connection ended); nothing if it is not listed.
    pub fn remove(&self, id: u64) {
        let mut waiting = self.lock();
        if let Some(index) = waiting.iter().position(|w| w.id == id) {
            waiting.remove(index);
        }
    }

    /// Takes the oldest pending handshake off the list if it has lasted at
    /// least [`EVICTABLE_AFTER`], for the caller to hang up on.
    pub fn evict_oldest(&self) -> Eviction<H> {
        let mut waiting = self.lock();
        let Some(oldest) = waiting.front() else {
            return Eviction::NoCandidate;
        };
        let age = oldest.since.elapsed();
        if age < EVICTABLE_AFTER {
            return Eviction::NotBefore(EVICTABLE_AFTER - age);
        }
        let oldest = waiting.pop_front().expect("the front was just seen");
        Eviction::Evict {
            id: oldest.id,
            age,
            handle: oldest.handle,
        }
    }

    /// How many are pending.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Waiting<H>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list whose first `old` entries (ids from 1) started
    /// `EVICTABLE_AFTER` ago, and the rest now.
    fn list(old: u64, young: u64) -> PendingHandshakes<&'static str> {
        let pending = PendingHandshakes::with_capacity(8);
        let then = Instant::now()
            .checked_sub(EVICTABLE_AFTER)
            .expect("the clock is past one second");
        for id in 1..=old + young {
            pending.push(id, "handle");
        }
        for waiting in pending.lock().iter_mut().take(old as usize) {
            waiting.since = then;
        }
        pending
    }

    #[test]
    fn nothing_pending_is_no_candidate() {
        assert_eq!(list(0, 0).evict_oldest(), Eviction::NoCandidate);
    }

    #[test]
    fn a_young_handshake_is_not_evicted_yet() {
        let pending = list(0, 2);
        match pending.evict_oldest() {
            Eviction::NotBefore(wait) => assert!(wait <= EVICTABLE_AFTER),
            other => panic!("expected NotBefore, got {other:?}"),
        }
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn the_oldest_goes_first_and_only_it() {
        let pending = list(2, 1);
        match pending.evict_oldest() {
            Eviction::Evict { id, age, .. } => {
                assert_eq!(id, 1);
                assert!(age >= EVICTABLE_AFTER);
            }
            other => panic!("expected an eviction, got {other:?}"),
        }
        assert_eq!(pending.len(), 2);
        assert!(matches!(
            pending.evict_oldest(),
            Eviction::Evict { id: 2, .. }
        ));
        assert!(matches!(pending.evict_oldest(), Eviction::NotBefore(_)));
    }

    #[test]
    fn a_head_read_is_never_evicted() {
        let pending = list(2, 0);
        pending.remove(1);
        pending.remove(7);
        assert!(matches!(
            pending.evict_oldest(),
            Eviction::Evict { id: 2, .. }
        ));
        assert!(pending.is_empty());
    }
}
