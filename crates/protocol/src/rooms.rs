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
//!   pushes that cannot wait: a push writes to a member's socket itself
//!   only with a write that returns at once (see [`crate::gate`]).
//! * **Bounded, never silent.** A push into a full outbox removes that member
//!   from the room and tells its connection to close with 1013; the other
//!   members are not slowed down and the slow one knows it lost messages.
//! * **Join before the 101.** A server joins a connection's room before it
//!   writes the handshake response, so a client that has completed its
//!   handshake is in its room.
//! * **History in the same order.** With chat history, each room also has an
//!   *order* lock: [`RoomHandle::broadcast_after`] stores a message and
//!   pushes it inside it, and [`Rooms::join_with`] reads the replay for a
//!   joining client and registers it inside it. So the sequence numbers are
//!   the delivery order, and a joiner's replay ends exactly where its live
//!   messages begin (no gap, no duplicate). This lock is held across the
//!   database call, so only code that may block takes it: the sync server's
//!   connection threads, the async server's database bridge.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tungstenite::Utf8Bytes;

use crate::close::CloseReason;
use crate::message;
use crate::queued::OutboxLimits;
use crate::room::RoomName;
use crate::wire::{WireFrame, WireFrames};

/// One connection's bounded outbound queue, as the room sees it.
pub trait Outbox: Send {
    /// Queues `frames` (or writes them, if that cannot block) without
    /// blocking.
    fn try_push(&self, frames: &WireFrames) -> Result<(), PushError>;
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

/// Why [`RoomHandle::broadcast_after`] sent nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSent<E> {
    /// The server is shutting down (nothing was stored).
    #[error(transparent)]
    Closed(#[from] Closed),
    /// Storing failed; the message was not delivered.
    #[error("message not sent: {0}")]
    Store(E),
}

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
    /// Held across a store and its push, and across a replay and its join.
    order: Mutex<()>,
    members: Mutex<Vec<Member<O>>>,
    /// Joins between finding the room and registering in it; changed and
    /// read only under the registry lock, so an empty room that someone is
    /// joining is not removed from under them.
    joining: AtomicUsize,
}

struct Member<O> {
    id: u64,
    outbox: O,
}

/// A handle to one room, for sending to it on a member's behalf. Cheap to
/// clone, so a send can be handed to another thread (the async server's
/// database bridge); it does not keep anyone in the room.
pub struct RoomHandle<O> {
    rooms: Arc<Rooms<O>>,
    room: Arc<Room<O>>,
}

/// A connection's place in a room; dropping it leaves the room.
pub struct Membership<O: Outbox> {
    handle: RoomHandle<O>,
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
        self.join_with(room, |_| (outbox, ()))
            .map(|(membership, ())| membership)
    }

    /// Adds a connection to `room`, with the outbox that `make` returns;
    /// `make` runs inside the room's order, so no [`RoomHandle::broadcast_after`]
    /// to the room falls between it and the join. With history, `make` reads
    /// the replay and queues it in the new outbox: every message is then
    /// either in the replay or delivered live, once. `make` may block (it
    /// holds this room's order, not the registry).
    pub fn join_with<T>(
        self: &Arc<Self>,
        name: RoomName,
        make: impl FnOnce(&RoomName) -> (O, T),
    ) -> Result<(Membership<O>, T), Closed> {
        let room = {
            let mut registry = lock(&self.registry);
            if self.closed.load(Ordering::SeqCst) {
                return Err(Closed);
            }
            let room = Arc::clone(registry.rooms.entry(name).or_insert_with_key(|name| {
                Arc::new(Room {
                    name: name.clone(),
                    order: Mutex::new(()),
                    members: Mutex::new(Vec::new()),
                    joining: AtomicUsize::new(0),
                })
            }));
            room.joining.fetch_add(1, Ordering::Relaxed);
            room
        };
        let _order = lock(&room.order);
        let (outbox, made) = make(&room.name);
        // Lock order everywhere: order, then registry, then members.
        let registry = lock(&self.registry);
        room.joining.fetch_sub(1, Ordering::Relaxed);
        if self.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        let id = self.next_member.fetch_add(1, Ordering::Relaxed);
        lock(&room.members).push(Member { id, outbox });
        drop(registry);
        let handle = RoomHandle {
            rooms: Arc::clone(self),
            room: Arc::clone(&room),
        };
        Ok((Membership { handle, id }, made))
    }

    /// [`Rooms::join_with`] for a joiner with a replay: `replay` (read
    /// inside the room's order) is queued first in the outbox that `make`
    /// returns for `limits` raised by the replay's frames and bytes.
    pub fn join_replaying<T>(
        self: &Arc<Self>,
        name: RoomName,
        limits: &OutboxLimits,
        replay: impl FnOnce(&RoomName) -> Vec<WireFrame>,
        make: impl FnOnce(OutboxLimits) -> (O, T),
    ) -> Result<(Membership<O>, T), Closed> {
        self.join_with(name, |room| {
            let replay = replay(room);
            let bytes = replay.iter().map(WireFrame::len).sum();
            let (outbox, made) = make(limits.with_replay(replay.len(), bytes));
            for frame in replay {
                // Fails only if the server's queued bytes are over budget
                // and this new outbox holds the most: then it is hung up
                // on, and its client reconnects for the replay.
                let _ = outbox.try_push(&WireFrames::one(frame));
            }
            (outbox, made)
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

    /// Sends `text` to every local member of `room`, if it has any: for a
    /// message that comes, already in its room's order, from elsewhere (the
    /// Redis layer). Returns the number of members it was queued to; none
    /// once the server is shutting down.
    pub fn broadcast_in(&self, room: &RoomName, text: &str) -> usize {
        let Some(room) = lock(&self.registry).rooms.get(room).map(Arc::clone) else {
            return 0;
        };
        let members = lock(&room.members);
        if self.closed.load(Ordering::SeqCst) {
            return 0;
        }
        push(&self.stats, members, &WireFrames::chats([text]))
    }

    /// Asks every local member of `room` to close with `reason` (for the
    /// Redis layer: its subscription was lost, so they may have missed
    /// messages).
    pub fn close_room(&self, room: &RoomName, reason: CloseReason) {
        let Some(room) = lock(&self.registry).rooms.get(room).map(Arc::clone) else {
            return;
        };
        for member in lock(&room.members).iter() {
            member.outbox.close(reason);
        }
    }

    /// Whether [`Rooms::close_all`] has run.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
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

impl<O> Clone for RoomHandle<O> {
    fn clone(&self) -> Self {
        Self {
            rooms: Arc::clone(&self.rooms),
            room: Arc::clone(&self.room),
        }
    }
}

impl<O: Outbox> RoomHandle<O> {
    /// The room.
    pub fn room(&self) -> &RoomName {
        &self.room.name
    }

    /// Whether the server is shutting down (a send would fail).
    pub fn is_closed(&self) -> bool {
        self.rooms.is_closed()
    }

    /// Sends `text` to every member of the room, the sender included.
    ///
    /// The frame is encoded once and shared. Returns the number of members it
    /// was queued to, or [`Closed`] if the server is shutting down (then no
    /// member gets it).
    pub fn broadcast(&self, text: &str) -> Result<usize, Closed> {
        let members = lock(&self.room.members);
        if self.rooms.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        Ok(push(&self.rooms.stats, members, &WireFrames::chats([text])))
    }

    /// Sends `texts`, in order, to every member of the room, the sender
    /// included, as [`RoomHandle::broadcast`] sends one: for messages that
    /// arrived together, which each member then receives together (in one
    /// write where its socket takes them at once).
    pub fn broadcast_all<'a>(
        &self,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, Closed> {
        let frames = WireFrames::chats(texts);
        let members = lock(&self.room.members);
        if self.rooms.closed.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        Ok(push(&self.rooms.stats, members, &frames))
    }

    /// [`RoomHandle::broadcast_all`] for a reader: the error replies to send
    /// back to the sender, one per message, if the room is closed (none
    /// otherwise).
    pub fn broadcast_all_replying(&self, texts: &[String]) -> Vec<Utf8Bytes> {
        match self.broadcast_all(texts.iter().map(String::as_str)) {
            Ok(_) => Vec::new(),
            Err(error) => texts
                .iter()
                .map(|_| message::encode_error(&error))
                .collect(),
        }
    }

    /// Runs `store` and then sends `text` to every member, inside the room's
    /// order: the message is stored before anyone can receive it, and the
    /// store's order is the delivery order. `store` may block. If the server
    /// is shutting down, nothing is stored; if `store` fails, nothing is sent.
    pub fn broadcast_after<T, E>(
        &self,
        text: &str,
        store: impl FnOnce(&RoomName, &str) -> Result<T, E>,
    ) -> Result<T, NotSent<E>> {
        let _order = lock(&self.room.order);
        if self.rooms.closed.load(Ordering::SeqCst) {
            return Err(NotSent::Closed(Closed));
        }
        let stored = store(&self.room.name, text).map_err(NotSent::Store)?;
        self.broadcast_stored(text);
        Ok(stored)
    }

    /// Sends a message that is already stored, even if the server has
    /// started shutting down (a member that is closing may not get it; the
    /// history has it). For a caller that is the room's only writer to the
    /// history, storing in batches (the async server's database thread): it
    /// must call this in the order it stored.
    pub fn broadcast_stored(&self, text: &str) -> usize {
        push(
            &self.rooms.stats,
            lock(&self.room.members),
            &WireFrames::chats([text]),
        )
    }
}

/// Pushes `frames`, formatted once, into every member's outbox; a member
/// whose outbox is full is removed and told to close with 1013.
fn push<O: Outbox>(
    stats: &Stats,
    mut members: MutexGuard<'_, Vec<Member<O>>>,
    frames: &WireFrames,
) -> usize {
    let mut slow = 0;
    members.retain(|member| match member.outbox.try_push(frames) {
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
    let messages = frames.count() as u64;
    stats.messages.fetch_add(messages, Ordering::Relaxed);
    stats
        .deliveries
        .fetch_add(delivered as u64 * messages, Ordering::Relaxed);
    if slow > 0 {
        stats.slow_consumers.fetch_add(slow, Ordering::Relaxed);
    }
    delivered
}

impl<O: Outbox> Membership<O> {
    /// The member's room.
    pub fn room(&self) -> &RoomName {
        self.handle.room()
    }

    /// The member's room, as a handle that can be sent to another thread.
    pub fn handle(&self) -> &RoomHandle<O> {
        &self.handle
    }

    /// Sends `text` to every member of the room, this one included: see
    /// [`RoomHandle::broadcast`].
    pub fn broadcast(&self, text: &str) -> Result<usize, Closed> {
        self.handle.broadcast(text)
    }
}

impl<O: Outbox> Drop for Membership<O> {
    fn drop(&mut self) {
        let RoomHandle { rooms, room } = &self.handle;
        let mut registry = lock(&rooms.registry);
        let mut members = lock(&room.members);
        members.retain(|member| member.id != self.id);
        if members.is_empty() && room.joining.load(Ordering::Relaxed) == 0 {
            drop(members);
            registry.rooms.remove(&room.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A test outbox: a bounded std channel plus a record of close requests.
    struct TestOutbox {
        /// The text of each frame.
        frames: mpsc::SyncSender<String>,
        closes: mpsc::Sender<CloseReason>,
    }

    impl Outbox for TestOutbox {
        fn try_push(&self, frames: &WireFrames) -> Result<(), PushError> {
            for frame in frames.frames() {
                let text = String::from_utf8(frame.payload().to_vec()).expect("a text frame");
                self.frames.try_send(text).map_err(|e| match e {
                    mpsc::TrySendError::Full(_) => PushError::Full,
                    mpsc::TrySendError::Disconnected(_) => PushError::Gone,
                })?;
            }
            Ok(())
        }
        fn close(&self, reason: CloseReason) {
            let _ = self.closes.send(reason);
        }
    }

    fn member(
        capacity: usize,
    ) -> (
        TestOutbox,
        mpsc::Receiver<String>,
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

    #[test]
    fn broadcast_after_sends_only_what_was_stored() {
        let rooms = Rooms::new();
        let (a, a_rx, _) = member(8);
        let a = rooms.join(room("r"), a).unwrap();
        let stored = a
            .handle()
            .broadcast_after("kept", |room, text| Ok::<_, &str>(format!("{room}:{text}")));
        assert_eq!(stored, Ok("r:kept".to_owned()));
        let failed = a
            .handle()
            .broadcast_after("lost", |_, _| Err::<(), _>("disk full"));
        assert_eq!(failed, Err(NotSent::Store("disk full")));
        assert_eq!(&*a_rx.try_recv().unwrap(), r#"{"message":"kept"}"#);
        assert!(
            a_rx.try_recv().is_err(),
            "a message that was not stored was sent"
        );
        rooms.close_all(CloseReason::ServerShutdown);
        let closed = a
            .handle()
            .broadcast_after("late", |_, _| -> Result<(), &str> {
                panic!("stored during shutdown")
            });
        assert_eq!(closed, Err(NotSent::Closed(Closed)));
    }

    /// A joiner's replay (what was stored before it joined) and its live
    /// frames together are every message once, in order, while another
    /// thread posts throughout.
    #[test]
    fn join_with_replay_has_no_gap_and_no_duplicate() {
        const MESSAGES: usize = 2000;
        let rooms = Rooms::new();
        let (poster, _poster_rx, _) = member(MESSAGES);
        let poster = rooms.join(room("r"), poster).unwrap();
        let history = Arc::new(Mutex::new(Vec::<String>::new()));
        let posting = {
            let handle = poster.handle().clone();
            let history = Arc::clone(&history);
            std::thread::spawn(move || {
                for i in 0..MESSAGES {
                    handle
                        .broadcast_after(&i.to_string(), |_, text| {
                            lock(&history).push(text.to_owned());
                            Ok::<_, ()>(())
                        })
                        .unwrap();
                }
            })
        };
        let mut joiners = Vec::new();
        // Join again and again while the poster runs (and once at least).
        while joiners.is_empty() || (!posting.is_finished() && joiners.len() < 200) {
            let (outbox, rx, _) = member(MESSAGES);
            let (membership, replay) = rooms
                .join_with(room("r"), |_| (outbox, lock(&history).clone()))
                .unwrap();
            joiners.push((membership, replay, rx));
        }
        posting.join().unwrap();
        let all: Vec<String> = (0..MESSAGES).map(|i| i.to_string()).collect();
        for (_membership, replay, rx) in joiners {
            let live = rx.try_iter().map(|frame| {
                let frame = crate::message::ServerFrame::parse(&frame).unwrap();
                match frame {
                    crate::message::ServerFrame::Message { message } => message,
                    other => panic!("unexpected {other:?}"),
                }
            });
            let seen: Vec<String> = replay.into_iter().chain(live).collect();
            assert_eq!(seen, all);
        }
        drop(poster);
    }

    #[test]
    fn messages_sent_together_reach_every_member_in_order() {
        let rooms = Rooms::new();
        let (a, a_rx, _) = member(8);
        let (b, b_rx, _) = member(8);
        let a = rooms.join(room("r"), a).unwrap();
        let _b = rooms.join(room("r"), b).unwrap();
        assert_eq!(a.handle().broadcast_all(["1", "2", "3"]), Ok(2));
        for rx in [&a_rx, &b_rx] {
            assert_eq!(
                rx.try_iter().collect::<Vec<_>>(),
                [
                    r#"{"message":"1"}"#,
                    r#"{"message":"2"}"#,
                    r#"{"message":"3"}"#
                ]
            );
        }
        assert_eq!(rooms.stats().messages.load(Ordering::Relaxed), 3);
        assert_eq!(rooms.stats().deliveries.load(Ordering::Relaxed), 6);
    }

    /// Messages from elsewhere (the Redis layer) go through the same push:
    /// a full outbox gets its member closed with 1013, the others get the
    /// message, and a room with no local member takes nothing.
    #[test]
    fn broadcast_in_closes_a_slow_member_and_skips_absent_rooms() {
        let rooms = Rooms::new();
        let (fast, fast_rx, _) = member(8);
        let (slow, _slow_rx, slow_closes) = member(1);
        let _fast = rooms.join(room("r"), fast).unwrap();
        let _slow = rooms.join(room("r"), slow).unwrap();
        assert_eq!(rooms.broadcast_in(&room("r"), "1"), 2);
        assert_eq!(rooms.broadcast_in(&room("r"), "2"), 1);
        assert_eq!(slow_closes.try_recv(), Ok(CloseReason::SlowConsumer));
        assert_eq!(fast_rx.try_iter().count(), 2);
        assert_eq!(rooms.broadcast_in(&room("elsewhere"), "3"), 0);
        rooms.close_room(&room("r"), CloseReason::LayerLost);
        rooms.close_all(CloseReason::ServerShutdown);
        assert_eq!(rooms.broadcast_in(&room("r"), "late"), 0);
    }
}
