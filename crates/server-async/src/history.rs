//! Chat history, kept off the async workers: `database_sync_to_async` in
//! Rust.
//!
//! SQLite calls block (file I/O, locks, `--db-delay-ms`). A join reads the
//! room's replay and a post stores its message while holding the room's order
//! (`chat_protocol::rooms`), so one room's messages are stored one at a time,
//! in delivery order. Where that blocking happens is the `--db-bridge`:
//!
//! * `writer` (the default): one dedicated database thread (`db_thread`) fed
//!   by a bounded queue. It stores the messages waiting in the queue in one
//!   transaction, then delivers them in order: one commit and one
//!   `--db-delay-ms` per batch instead of per message. The reader task waits
//!   for its message's outcome before reading the next frame.
//! * `spawn-blocking`: every call on tokio's blocking pool, as
//!   `database_sync_to_async` runs the ORM on a thread pool. The reader task
//!   waits for it; the pool grows by a thread per call in flight (up to
//!   tokio's 512), and calls for one room queue for its order.
//! * `inline`: the call is made on the worker thread itself, which blocks it
//!   and every task it would have run. The mistake the seed warns about, kept
//!   so that its cost can be measured.
//!
//! Without `--history`, a post is the plain broadcast, on the worker.

use std::io;
use std::sync::Arc;

use chat_history::{HistoryError, SharedHistory};
use chat_protocol::ServerConfig;
use chat_protocol::message;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::room::RoomName;
use chat_protocol::rooms::{Closed, Membership, RoomHandle, Rooms};
use chat_protocol::session::Control;
use chat_protocol::tungstenite::Utf8Bytes;
use tokio::sync::mpsc::Sender;
use tokio::sync::oneshot;

use crate::db_thread::{self, Job};

/// How the server reaches the (blocking) database without blocking its
/// workers (`--db-bridge`; the module's documentation says each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DbBridge {
    /// One dedicated database thread fed by a bounded queue; consecutive
    /// messages are stored in one transaction (the default).
    #[default]
    Writer,
    /// Every database call on tokio's blocking pool (`spawn_blocking`): the
    /// analogue of Django's `database_sync_to_async`.
    SpawnBlocking,
    /// Database calls made directly on the async worker: the mistake the
    /// seed warns about, kept only so that it can be measured.
    Inline,
}
use crate::outbox::{self, Inbox, Outbox};

/// The server's history, if it keeps one (`--history`), and how it reaches it.
pub(crate) enum History {
    Off,
    Inline(Arc<SharedHistory>),
    SpawnBlocking(Arc<SharedHistory>),
    Writer(Sender<Job>),
}

/// A connection that has joined its room: its membership, and the two ends
/// of its queues.
pub(crate) type Joined = (Membership<Outbox>, Sender<Control>, Inbox);

/// Resolves once the database thread (`--db-bridge writer`) has stored what
/// it was given and closed the database.
pub(crate) type Finished = oneshot::Receiver<()>;

impl History {
    /// Opens the database named by `--history`, if any, and starts the
    /// database thread if the bridge is `writer` (`None`: the default).
    pub(crate) fn open(
        config: &ServerConfig,
        bridge: Option<DbBridge>,
    ) -> io::Result<(Self, Option<Finished>)> {
        let Some(path) = &config.history else {
            return Ok((Self::Off, None));
        };
        let shared = SharedHistory::open(path, config.history_replay, config.db_delay())
            .map_err(io::Error::other)?;
        Ok(match bridge.unwrap_or_default() {
            DbBridge::Writer => {
                let (jobs, finished) = db_thread::start(shared)?;
                (Self::Writer(jobs), Some(finished))
            }
            DbBridge::SpawnBlocking => (Self::SpawnBlocking(Arc::new(shared)), None),
            DbBridge::Inline => (Self::Inline(Arc::new(shared)), None),
        })
    }

    /// Joins `room` with a new outbox within `limits`, in which
    /// the room's replay is queued first.
    pub(crate) async fn join(
        &self,
        rooms: &Arc<Rooms<Outbox>>,
        room: RoomName,
        limits: &OutboxLimits,
    ) -> Result<Joined, Closed> {
        match self {
            Self::Off => join_blocking(None, rooms, room, limits),
            Self::Inline(shared) => join_blocking(Some(shared), rooms, room, limits),
            Self::SpawnBlocking(shared) => {
                let (shared, rooms) = (Arc::clone(shared), Arc::clone(rooms));
                let limits = limits.clone();
                tokio::task::spawn_blocking(move || {
                    join_blocking(Some(&shared), &rooms, room, &limits)
                })
                .await
                .unwrap_or_else(|panic| {
                    tracing::error!(%panic, "history: a join panicked");
                    Err(Closed)
                })
            }
            Self::Writer(jobs) => {
                let (done, outcome) = oneshot::channel();
                let rooms = Arc::clone(rooms);
                let job = Job::Join {
                    rooms,
                    room,
                    limits: limits.clone(),
                    done,
                };
                if jobs.send(job).await.is_err() {
                    return Err(Closed);
                }
                outcome.await.unwrap_or(Err(Closed))
            }
        }
    }

    /// Whether the server keeps no history.
    pub(crate) fn is_off(&self) -> bool {
        matches!(self, Self::Off)
    }

    /// Stores `text` (with history) and sends it to the room; on failure,
    /// the error reply for the sender.
    pub(crate) async fn post(
        &self,
        room: &RoomHandle<Outbox>,
        text: String,
    ) -> Result<(), Utf8Bytes> {
        match self {
            Self::Off => room
                .broadcast(&text)
                .map(drop)
                .map_err(|error| message::encode_error(&error)),
            Self::Inline(shared) => post_blocking(shared, room, &text),
            Self::SpawnBlocking(shared) => {
                let (shared, room) = (Arc::clone(shared), room.clone());
                tokio::task::spawn_blocking(move || post_blocking(&shared, &room, &text))
                    .await
                    .unwrap_or_else(|panic| {
                        tracing::error!(%panic, "history: a post panicked");
                        Err(message::encode_error(&Unavailable))
                    })
            }
            Self::Writer(jobs) => {
                let (done, outcome) = oneshot::channel();
                let room = room.clone();
                if jobs.send(Job::Post { room, text, done }).await.is_err() {
                    return Err(message::encode_error(&Unavailable));
                }
                outcome
                    .await
                    .unwrap_or_else(|_| Err(message::encode_error(&Unavailable)))
            }
        }
    }
}

/// The database thread is gone (it panicked): nothing can be stored.
#[derive(Debug, thiserror::Error)]
#[error("message not sent: chat history unavailable")]
struct Unavailable;

/// Joins `room` on the calling thread, which may block on the room's order
/// and in SQLite.
pub(crate) fn join_blocking(
    shared: Option<&SharedHistory>,
    rooms: &Arc<Rooms<Outbox>>,
    room: RoomName,
    limits: &OutboxLimits,
) -> Result<Joined, Closed> {
    let (membership, (control, inbox)) = rooms.join_replaying(
        room,
        limits,
        |room| shared.map_or_else(Vec::new, |shared| shared.replay_frames(room)),
        |limits| {
            let (outbox, control, inbox) = outbox::outbox(&limits);
            (outbox, (control, inbox))
        },
    )?;
    Ok((membership, control, inbox))
}

/// Stores and sends on the calling thread, which may block.
fn post_blocking(
    shared: &SharedHistory,
    room: &RoomHandle<Outbox>,
    text: &str,
) -> Result<(), Utf8Bytes> {
    room.broadcast_after(text, |room, text| shared.append(room, text))
        .map(drop)
        .map_err(|error| message::encode_error(&error))
}

/// The error reply for a message that was not stored.
pub(crate) fn not_stored(error: HistoryError) -> Utf8Bytes {
    message::encode_error(&chat_protocol::rooms::NotSent::Store(error))
}
