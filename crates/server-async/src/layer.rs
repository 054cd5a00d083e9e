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
use tokio::sync::mpsc::Sender;

use crate::history::{self, DbBridge, History};
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
    /// Opens the history, or checks that Redis answers, as `config` says.
    /// With the history's `writer` bridge, also what resolves once its
    /// database thread has finished.
    pub(crate) fn open(
        config: &ServerConfig,
        bridge: Option<DbBridge>,
    ) -> io::Result<(Self, Option<history::Finished>)> {
        Ok(match config.layer {
            LayerKind::Memory => {
                let (history, finished) = History::open(config, bridge)?;
                (Self::Memory(history), finished)
            }
            LayerKind::Redis => (
                Self::Redis(
                    RedisLayer::new(&config.redis_urls, &config.layer_prefix)
                        .map_err(io::Error::other)?,
                ),
                None,
            ),
        })
    }

    /// Starts what runs in the background (Redis's subscriber tasks).
    pub(crate) fn start(&self, rooms: &Arc<Rooms<Outbox>>) {
        if let Self::Redis(redis) = self {
            redis.start(rooms);
        }
    }

    /// Joins `room` with a new outbox within `limits` (plus, with
    /// history, the replay queued first); with Redis, once the room's
    /// subscription is confirmed.
    pub(crate) async fn join(
        &self,
        rooms: &Arc<Rooms<Outbox>>,
        room: RoomName,
        limits: &OutboxLimits,
    ) -> Result<Joined, Refusal> {
        let (membership, control, inbox, subscription) = match self {
            Self::Memory(history) => {
                let (membership, control, inbox) = history
                    .join(rooms, room, limits)
                    .await
                    .map_err(|_closed| Refusal::ShuttingDown)?;
                (membership, control, inbox, None)
            }
            Self::Redis(redis) => {
                let subscription = redis.subscribe(&room).await.map_err(|error| {
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
    pub(crate) async fn post(
        &self,
        room: &RoomHandle<Outbox>,
        text: String,
    ) -> Result<(), Utf8Bytes> {
        match self {
            Self::Memory(history) => history.post(room, text).await,
            Self::Redis(redis) => {
                if room.is_closed() {
                    return Err(message::encode_error(&chat_protocol::rooms::Closed));
                }
                redis
                    .publish(room.room(), &text)
                    .await
                    .map_err(|error| message::encode_error(&error))
            }
        }
    }

    /// Sends `texts`, messages that arrived together, to the room in order:
    /// in memory without history as one broadcast (each member receives
    /// them together, in one write where its socket takes them); otherwise
    /// one by one. Returns the error replies, in order, for those that
    /// failed.
    pub(crate) async fn post_all(
        &self,
        room: &RoomHandle<Outbox>,
        texts: Vec<String>,
    ) -> Vec<Utf8Bytes> {
        if let Self::Memory(history) = self
            && history.is_off()
        {
            return room.broadcast_all_replying(&texts);
        }
        // Boxed: the store's or Redis's future would otherwise sit in every
        // reader's task, idle or not, at its full size.
        Box::pin(self.post_each(room, texts)).await
    }

    /// [`Layer::post_all`] one message at a time.
    async fn post_each(&self, room: &RoomHandle<Outbox>, texts: Vec<String>) -> Vec<Utf8Bytes> {
        let mut replies = Vec::new();
        for text in texts {
            if let Err(reply) = self.post(room, text).await {
                replies.push(reply);
            }
        }
        replies
    }

    /// At shutdown, once every member has been asked to close.
    pub(crate) fn stop(&self) {
        if let Self::Redis(redis) = self {
            redis.stop();
        }
    }
}
