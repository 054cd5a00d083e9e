//! The room registry: who is in which room, and fan-out to their outboxes.
//!
//! This is the `group_add` / `group_send` / `group_discard` of Django
//! Channels. It is shared by both servers, generic over the [`Outbox`] each
//! one builds from its own queues (crossbeam channels for the sync server,
//! tokio channels for the async one), so that the fan-out logic, the order
//! guarantee and the overflow policy are the same code in both.
//!
//! * **Total order per room.** A broadcast pushes the (once-encoded) frame to
//!   every member while holding the room's lock, so two broadcasts to one room
//!   reach every member's queue in the same order. The lock is held only for
//!   non-blocking pushes, never for I/O.
//! * **Bounded, never silent.** A push into a full outbox removes that member
//!   from the room and tells its connection to close with 1013; the other
//!   members are not slowed down and the slow one knows it lost messages.
//! * **Join before the 101.** A server joins a connection's room before it
//!   writes the handshake response, so a client that has completed its
//!   handshake is in its room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tungstenite::Utf8Bytes;

use crate::close::CloseReason;
use crate::message;
use crate::room::RoomName;

/// One connection's bounded outbound queue, as the room sees it.
pub trait Outbox: Send {
    /// Queues `frame` without blocking.
    fn try_push(&self, frame: Utf8Bytes) -> Result<(), PushError>;
    /// Asks the connection to close with `reason` now, ahead of queued frames.
    fn close(&self, reason: CloseReason);
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is full: the member is too slow and is disconnected (1013).
    Full,
    /// The connection is gone: the member is removed quietly.
    Gone,
}

/// The registry is closed: the server is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("server shutting down: message not sent")]
pub struct Closed;

/// Counters kept by the registry.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages broadcast.
    pub messages: AtomicU64,
    /// Frames queued to members (one message to n members counts n).
    pub deliveries: AtomicU64,
    /// Members disconnected because their outbox was full.
    pub slow_consumers: AtomicU64,
}

/// Every room of one server process.
pub struct Rooms<O> {
    registry: Mutex<Registry<O>>,
    /// Set by [`Rooms::close_all`]; read by broadcasts under a room's lock.
    closed: AtomicBool,
    next_member: AtomicU64,
    stats: Stats,
}

struct Registry<O> {
    rooms: HashMap<RoomName, Arc<Room<O>>>,
}

struct Room<O> {
    name: RoomName,
    members: Mutex<Vec<Member<O>>>,
}

struct Member<O> {
    id: u64,
    outbox: O,
}

/// A connection's place in a room; dropping it leaves the room.
pub struct Membership<O: Outbox> {
    rooms: Arc<Rooms<O>>,
    room: Arc<Room<O>>,
    id: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a room lock leaves the member list valid (every
    // mutation is a single push or retain), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<O: Outbox> Rooms<O> {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            registry: Mutex::new(Registry {
                rooms: HashMap::new(),
            }),
            closed: AtomicBool::new(false),
            next_member: AtomicU64::new(1),
            stats: Stats::default(),
        })
    }

    /// Adds a connection, through its outbox, to `room`.
    pub fn join(self: &Arc<Self>, room: RoomName, outbox: O) -> Result<Membership<O>, Closed> {
        let mut registry = lock(&self.registry);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        let id = self.next_member.fetch_add(1, Ordering::Relaxed);
        let room = Arc::clone(registry.rooms.entry(room).or_insert_with_key(|name| {
            Arc::new(Room {
                name: name.clone(),
                members: Mutex::new(Vec::new()),
            })
        }));
        lock(&room.members).push(Member { id, outbox });
        Ok(Membership {
            rooms: Arc::clone(self),
            room,
            id,
        })
    }

    /// Closes the registry: every member is asked to close with `reason`,
    /// and later joins and broadcasts fail.
    ///
    /// A broadcast either completes before a room's members are asked to
    /// close (so the frame is in their queues, ahead of the close request),
    /// or fails: no message reaches only some members.
    pub fn close_all(&self, reason: CloseReason) {
        let registry = lock(&self.registry);
        self.closed.store(true, Ordering::SeqCst);
        for room in registry.rooms.values() {
            for member in lock(&room.members).iter() {
                member.outbox.close(reason);
            }
        }
    }

    /// Number of rooms with at least one member.
    pub fn room_count(&self) -> usize {
        lock(&self.registry).rooms.len()
    }

    /// The registry's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl<O: Outbox> Membership<O> {
    /// The member's room.
    pub fn room(&self) -> &RoomName {
        &self.room.name
    }

    /// Sends `text` to every member of the room, this one included.
    ///
    /// The frame is encoded once and shared. Returns the number of members it
    /// was queued to, or [`Closed`] if the server is shutting down (then no
    /// member gets it).
    pub fn broadcast(&self, text: &str) -> Result<usize, Closed> {
        let frame = message::encode_chat(text);
        let mut slow = 0;
        let mut members = lock(&self.room.members);
        if self.rooms.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        members.retain(|member| match member.outbox.try_push(frame.clone()) {
            Ok(()) => true,
            Err(PushError::Full) => {
                member.outbox.close(CloseReason::SlowConsumer);
                slow += 1;
                false
            }
            Err(PushError::Gone) => false,
        });
        let delivered = members.len();
        drop(members);
        let stats = &self.rooms.stats;
        stats.messages.fetch_add(1, Ordering::Relaxed);
        stats
            .deliveries
            .fetch_add(delivered as u64, Ordering::Relaxed);
        if slow > 0 {
            stats.slow_consumers.fetch_add(slow, Ordering::Relaxed);
        }
        Ok(delivered)
    }
}

impl<O: Outbox> Drop for Membership<O> {
    fn drop(&mut self) {
        // Lock order everywhere: registry, then room.
        let mut registry = lock(&self.rooms.registry);
        let mut members = lock(&self.room.members);
        members.retain(|member| member.id != self.id);
        if members.is_empty() {
            drop(members);
            registry.rooms.remove(&self.room.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A test outbox: a bounded std channel plus a record of close requests.
    struct TestOutbox {
        frames: mpsc::SyncSender<Utf8Bytes>,
        closes: mpsc::Sender<CloseReason>,
    }

    impl Outbox for TestOutbox {
        fn try_push(&self, frame: Utf8Bytes) -> Result<(), PushError> {
            self.frames.try_send(frame).map_err(|e| match e {
                mpsc::TrySendError::Full(_) => PushError::Full,
                mpsc::TrySendError::Disconnected(_) => PushError::Gone,
            })
        }
        fn close(&self, reason: CloseReason) {
            let _ = self.closes.send(reason);
        }
    }

    fn member(
        capacity: usize,
    ) -> (
        TestOutbox,
        mpsc::Receiver<Utf8Bytes>,
        mpsc::Receiver<CloseReason>,
    ) {
        let (frames, frames_rx) = mpsc::sync_channel(capacity);
        let (closes, closes_rx) = mpsc::channel();
        (TestOutbox { frames, closes }, frames_rx, closes_rx)
    }

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    #[test]
    fn broadcasts_to_members_of_the_room_only() {
        let rooms = Rooms::new();
        let (a, a_rx, _) = member(8);
        let (b, b_rx, _) = member(8);
        let (c, c_rx, _) = member(8);
        let a = rooms.join(room("one"), a).unwrap();
        let _b = rooms.join(room("one"), b).unwrap();
        let _c = rooms.join(room("two"), c).unwrap();
        assert_eq!(a.broadcast("hi"), Ok(2));
        assert_eq!(&*a_rx.try_recv().unwrap(), r#"{"message":"hi"}"#);
        assert_eq!(&*b_rx.try_recv().unwrap(), r#"{"message":"hi"}"#);
        assert!(c_rx.try_recv().is_err());
        assert_eq!(rooms.room_count(), 2);
    }

    #[test]
    fn a_full_outbox_closes_that_member_only() {
        let rooms = Rooms::new();
        let (fast, fast_rx, _) = member(8);
        let (slow, _slow_rx, slow_closes) = member(1);
        let fast = rooms.join(room("r"), fast).unwrap();
        let _slow = rooms.join(room("r"), slow).unwrap();
        assert_eq!(fast.broadcast("1"), Ok(2));
        assert_eq!(fast.broadcast("2"), Ok(1));
        assert_eq!(slow_closes.try_recv(), Ok(CloseReason::SlowConsumer));
        assert_eq!(fast_rx.try_iter().count(), 2);
        assert_eq!(rooms.stats().slow_consumers.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn leaving_empties_the_room_and_close_all_refuses_joins() {
        let rooms = Rooms::new();
        let (a, _a_rx, a_closes) = member(8);
        let a = rooms.join(room("r"), a).unwrap();
        rooms.close_all(CloseReason::ServerShutdown);
        assert_eq!(a_closes.try_recv(), Ok(CloseReason::ServerShutdown));
        assert_eq!(a.broadcast("late"), Err(Closed));
        drop(a);
        assert_eq!(rooms.room_count(), 0);
        let (b, _b_rx, _) = member(8);
        assert!(rooms.join(room("r"), b).is_err());
    }
}
