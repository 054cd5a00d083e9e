//! Chat history, called on the connection's own thread: the sync consumer
//! calling the ORM.
//!
//! A join reads the room's replay and a post stores its message, both while
//! holding the room's order (`chat_protocol::rooms`), so the thread blocks
//! in SQLite, and so does any other thread of the same room that wants to
//! post or join meanwhile: one room's messages are stored one at a time, in
//! delivery order. Other rooms' threads do not wait for it, except on the
//! database connection itself (`chat_history::SharedHistory`).

use std::sync::Arc;

use chat_history::{HistoryError, SharedHistory};
use chat_protocol::ServerConfig;
use chat_protocol::message;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::room::RoomName;
use chat_protocol::rooms::{Closed, Membership, RoomHandle, Rooms};
use chat_protocol::session::Control;
use chat_protocol::tungstenite::Utf8Bytes;
use crossbeam_channel::Sender;

use crate::outbox::{self, Inbox, Outbox};

/// The server's history, if it keeps one (`--history`).
pub(crate) struct History {
    shared: Option<SharedHistory>,
}

/// A connection that has joined its room: its membership, and the two ends
/// of its queues.
pub(crate) type Joined = (Membership<Outbox>, Sender<Control>, Inbox);

impl History {
    /// Opens the database named by `--history`, if any.
    pub(crate) fn open(config: &ServerConfig) -> Result<Self, HistoryError> {
        let shared = match &config.history {
            Some(path) => Some(SharedHistory::open(
                path,
                config.history_replay,
                config.db_delay(),
            )?),
            None => None,
        };
        Ok(Self { shared })
    }

    /// Joins `room` with a new outbox within `limits`, in which
    /// the room's replay is queued first.
    pub(crate) fn join(
        &self,
        rooms: &Arc<Rooms<Outbox>>,
        room: RoomName,
        limits: &OutboxLimits,
    ) -> Result<Joined, Closed> {
        let (membership, (control, inbox)) = rooms.join_replaying(
            room,
            limits,
            |room| match &self.shared {
                Some(shared) => shared.replay_frames(room),
                None => Vec::new(),
            },
            |limits| {
                let (outbox, control, inbox) = outbox::outbox(&limits);
                (outbox, (control, inbox))
            },
        )?;
        Ok((membership, control, inbox))
    }

    /// Whether the server keeps no history.
    pub(crate) fn is_off(&self) -> bool {
        self.shared.is_none()
    }

    /// Stores `text` (with history) and sends it to the room; on failure,
    /// the error reply for the sender.
    pub(crate) fn post(&self, room: &RoomHandle<Outbox>, text: &str) -> Result<(), Utf8Bytes> {
        match &self.shared {
            Some(shared) => room
                .broadcast_after(text, |room, text| shared.append(room, text))
                .map(drop)
                .map_err(|error| message::encode_error(&error)),
            None => room
                .broadcast(text)
                .map(drop)
                .map_err(|error| message::encode_error(&error)),
        }
    }
}
