//! Where the rooms live (`--layer`): in this process, with or without a
//! history (`history`), or on Redis, shared with other processes (`pubsub`).
//! The connection code joins and posts through here and does not care which.

use std::io;
use std::sync::Arc;

use chat_protocol::ServerConfig;
use chat_protocol::config::Layer as LayerKind;
use chat_protocol::message;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::room::RoomName;
use chat_protocol::rooms::{Membership, RoomHandle, Rooms};
use chat_protocol::route::Refusal;
use chat_protocol::session::Control;
use chat_protocol::tungstenite::Utf8Bytes;
use crossbeam_channel::Sender;

use crate::Shutdown;
use crate::history::History;
use crate::outbox::{self, Inbox, Outbox};
use crate::pubsub::{RedisLayer, Subscription};

/// The rooms' layer.
pub(crate) enum Layer {
    /// Rooms in this process only.
    Memory(History),
    /// Rooms on Redis.
    Redis(RedisLayer),
}

/// A connection that has joined its room.
pub(crate) struct Joined {
    /// Its place in the room.
    pub(crate) member: Member,
    /// The reader's queue to the writer.
    pub(crate) control: Sender<Control>,
    /// The writer's queues.
    pub(crate) inbox: Inbox,
}

/// A member, and with Redis its hold on the room's subscription. Dropping
/// it leaves the room, then (fields drop in order) lets the subscription go.
pub(crate) struct Member {
    pub(crate) membership: Membership<Outbox>,
    _subscription: Option<Subscription>,
}

impl Layer {
    /// Opens the history, or connects to Redis, as `config` says.
    pub(crate) fn open(
        config: &ServerConfig,
        rooms: &Arc<Rooms<Outbox>>,
        shutdown: &Shutdown,
    ) -> io::Result<Self> {
        Ok(match config.layer {
            LayerKind::Memory => Self::Memory(History::open(config).map_err(io::Error::other)?),
            LayerKind::Redis => Self::Redis(
                RedisLayer::start(&config.redis_urls, &config.layer_prefix, rooms, shutdown)
                    .map_err(io::Error::other)?,
            ),
        })
    }

    /// Joins `room` with a new outbox within `limits` (plus, with
    /// history, the replay queued first); with Redis, once the room's
    /// subscription is confirmed.
    pub(crate) fn join(
        &self,
        rooms: &Arc<Rooms<Outbox>>,
        room: RoomName,
        limits: &OutboxLimits,
    ) -> Result<Joined, Refusal> {
        let (membership, control, inbox, subscription) = match self {
            Self::Memory(history) => {
                let (membership, control, inbox) = history
                    .join(rooms, room, limits)
                    .map_err(|_closed| Refusal::ShuttingDown)?;
                (membership, control, inbox, None)
            }
            Self::Redis(redis) => {
                let subscription = redis.subscribe(&room).map_err(|error| {
                    tracing::warn!(%error, "join refused");
                    Refusal::LayerUnavailable
                })?;
                let (outbox, control, inbox) = outbox::outbox(limits);
                let membership = rooms
                    .join(room, outbox)
                    .map_err(|_closed| Refusal::ShuttingDown)?;
                (membership, control, inbox, Some(subscription))
            }
        };
        Ok(Joined {
            member: Member {
                membership,
                _subscription: subscription,
            },
            control,
            inbox,
        })
    }

    /// Sends `text` to the room: stored first with history; with Redis,
    /// published, to come back through the subscription. On failure, the
    /// error reply for the sender.
    pub(crate) fn post(&self, room: &RoomHandle<Outbox>, text: &str) -> Result<(), Utf8Bytes> {
        match self {
            Self::Memory(history) => history.post(room, text),
            Self::Redis(redis) => {
                if room.is_closed() {
                    return Err(message::encode_error(&chat_protocol::rooms::Closed));
                }
                redis
                    .publish(room.room(), text)
                    .map_err(|error| message::encode_error(&error))
            }
        }
    }

    /// Sends `texts`, messages that arrived together, to the room in order:
    /// in memory without history as one broadcast (each member receives
    /// them together, in one write where its socket takes them); otherwise
    /// one by one. Returns the error replies, in order, for those that
    /// failed.
    pub(crate) fn post_all(&self, room: &RoomHandle<Outbox>, texts: &[String]) -> Vec<Utf8Bytes> {
        if let Self::Memory(history) = self
            && history.is_off()
        {
            return room.broadcast_all_replying(texts);
        }
        texts
            .iter()
            .filter_map(|text| self.post(room, text).err())
            .collect()
    }

    /// At shutdown, once every member has been asked to close.
    pub(crate) fn stop(&self) {
        if let Self::Redis(redis) = self {
            redis.stop();
        }
    }
}
