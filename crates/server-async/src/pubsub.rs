//! The Redis layer (`--layer redis`), on tokio: rooms shared by every process
//! on the same Redis, in the wire format of channels_redis'
//! `RedisPubSubChannelLayer` (`chat_protocol::layer`).
//!
//! Per shard (`--redis-url`), counted:
//!
//! * **one subscriber connection** (the `redis` crate's `aio::PubSub`, split
//!   in two) and **one task** that reads its message stream, fanning each
//!   room message out to the room's local members (`Rooms::broadcast_in`),
//!   never waiting for any of them, while it sends the `SUBSCRIBE` and
//!   `UNSUBSCRIBE` commands that joins and leaves queue for it, in order, and
//!   records their confirmations.
//! * **one publishing connection**, a multiplexed `ConnectionManager` that
//!   every sender's reader task shares (and that reconnects by itself).
//!
//! A member's own messages come back to it through Redis too: Redis orders
//! a room's messages, for every process alike.
//!
//! When the subscriber connection fails, every room of the shard loses its
//! subscription: their local members may have missed messages, so they are
//! closed with 1012 and their clients reconnect; the task reconnects with
//! backoff and resubscribes the rooms that (again) have members. A join waits
//! at most [`SUBSCRIBE_TIMEOUT`] for its room's subscription; then it is
//! refused with 503.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chat_protocol::close::CloseReason;
use chat_protocol::layer;
use chat_protocol::room::RoomName;
use chat_protocol::rooms::Rooms;
use chat_protocol::subscriptions::{Command, Subscriptions};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSubSink, PubSubStream};
use tokio::sync::{Notify, OnceCell, mpsc};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// How long a join waits for its room's subscription to be confirmed.
pub(crate) const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting to Redis, and each command, may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Reconnection backoff of a lost subscriber connection: from the first to
/// the last, doubling.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// Why a message was not published, or a room not joined.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LayerError {
    /// Redis did not take the message.
    #[error("message not sent: Redis at {url} unavailable: {cause}")]
    Publish {
        url: String,
        cause: redis::RedisError,
    },
    /// Redis did not answer in time.
    #[error("message not sent: Redis at {url} did not answer")]
    Busy { url: String },
    /// The room's subscription was not confirmed in time.
    #[error("Redis at {url} did not confirm the room's subscription")]
    NotSubscribed { url: String },
    /// Redis cannot be reached at start-up.
    #[error("cannot reach Redis at {url}: {cause}")]
    Unreachable { url: String, cause: io::Error },
    /// A URL that is not `redis://HOST:PORT[/DB]`.
    #[error("--redis-url {url}: {cause}")]
    BadUrl { url: String, cause: String },
}

/// Every shard of the layer.
pub(crate) struct RedisLayer {
    prefix: String,
    shards: Vec<Arc<Shard>>,
    /// Cancelled at shutdown: the subscriber tasks end.
    stop: CancellationToken,
}

/// One Redis server.
struct Shard {
    url: String,
    client: redis::Client,
    state: Mutex<State>,
    /// Woken when a subscription is confirmed or lost.
    changed: Notify,
    /// The publishing connection, made on first use.
    publisher: OnceCell<ConnectionManager>,
}

struct State {
    subscriptions: Subscriptions,
    /// The subscriber connection's queue of commands, while it is up.
    commands: Option<mpsc::UnboundedSender<Command>>,
}

/// A member's hold on its room's subscription: dropping it may unsubscribe.
pub(crate) struct Subscription {
    shard: Arc<Shard>,
    channel: String,
}

impl RedisLayer {
    /// Checks that every shard answers (`PING`, blocking, at start-up, before
    /// the server serves anyone); [`RedisLayer::start`] then connects.
    pub(crate) fn new(urls: &[String], prefix: &str) -> Result<Self, LayerError> {
        let mut shards = Vec::with_capacity(urls.len());
        for url in urls {
            let client = redis::Client::open(url.as_str()).map_err(|e| LayerError::BadUrl {
                url: url.clone(),
                cause: e.to_string(),
            })?;
            let unreachable = |cause: redis::RedisError| LayerError::Unreachable {
                url: url.clone(),
                cause: io::Error::other(cause),
            };
            let mut check = client
                .get_connection_with_timeout(REDIS_TIMEOUT)
                .map_err(unreachable)?;
            redis::cmd("PING")
                .query::<String>(&mut check)
                .map_err(unreachable)?;
            shards.push(Arc::new(Shard {
                url: url.clone(),
                client,
                state: Mutex::new(State {
                    subscriptions: Subscriptions::default(),
                    commands: None,
                }),
                changed: Notify::new(),
                publisher: OnceCell::new(),
            }));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            shards,
            stop: CancellationToken::new(),
        })
    }

    /// Starts each shard's subscriber task, until [`RedisLayer::stop`].
    pub(crate) fn start(&self, rooms: &Arc<Rooms<Outbox>>) {
        for shard in &self.shards {
            let subscriber = Subscriber {
                shard: Arc::clone(shard),
                prefix: self.prefix.clone(),
                rooms: Arc::clone(rooms),
                stop: self.stop.clone(),
            };
            tokio::spawn(subscriber.run());
        }
    }

    fn shard_of(&self, room: &RoomName) -> (&Arc<Shard>, String) {
        let channel = layer::group_channel(&self.prefix, room);
        let shard = &self.shards[layer::shard(&channel, self.shards.len())];
        (shard, channel)
    }

    /// Subscribes this process to `room`'s channel if it is the first local
    /// member, and waits (at most [`SUBSCRIBE_TIMEOUT`]) until the
    /// subscription is confirmed.
    pub(crate) async fn subscribe(&self, room: &RoomName) -> Result<Subscription, LayerError> {
        let (shard, channel) = self.shard_of(room);
        {
            let mut state = shard.lock();
            let command = state.subscriptions.join(&channel);
            state.send(command);
        }
        // Dropped (and so leaving) if this join times out or is cancelled.
        let subscription = Subscription {
            shard: Arc::clone(shard),
            channel,
        };
        let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
        loop {
            let changed = shard.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if shard.lock().subscriptions.is_ready(&subscription.channel) {
                return Ok(subscription);
            }
            if timeout_at(deadline, changed).await.is_err() {
                return Err(LayerError::NotSubscribed {
                    url: shard.url.clone(),
                });
            }
        }
    }

    /// Stops the subscriber tasks (at shutdown).
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Publishes `text` to `room`'s channel; it reaches the room's members,
    /// here and in every other process, when Redis sends it back.
    pub(crate) async fn publish(&self, room: &RoomName, text: &str) -> Result<(), LayerError> {
        let (shard, channel) = self.shard_of(room);
        shard.publish(&channel, &layer::encode_chat(text)).await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.shard.lock();
        let command = state.subscriptions.leave(&self.channel);
        state.send(command);
    }
}

impl State {
    /// Queues `command` for the subscriber connection, if it is up. If it
    /// fails meanwhile, the reconnection resubscribes what needs it.
    fn send(&mut self, command: Option<Command>) {
        if let (Some(command), Some(commands)) = (command, &self.commands) {
            let _ = commands.send(command);
        }
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), LayerError> {
        let publish = async {
            let publisher = self
                .publisher
                .get_or_try_init(|| {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(REDIS_TIMEOUT))
                        .set_response_timeout(Some(REDIS_TIMEOUT))
                        .set_number_of_retries(1);
                    self.client.get_connection_manager_with_config(config)
                })
                .await?;
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(&mut publisher.clone())
                .await
        };
        match timeout(REDIS_TIMEOUT, publish).await {
            Ok(Ok(_receivers)) => Ok(()),
            Ok(Err(cause)) => {
                tracing::warn!(url = %self.url, %cause, "Redis: message not published");
                Err(LayerError::Publish {
                    url: self.url.clone(),
                    cause,
                })
            }
            Err(_elapsed) => {
                tracing::warn!(url = %self.url, "Redis: no answer to PUBLISH");
                Err(LayerError::Busy {
                    url: self.url.clone(),
                })
            }
        }
    }
}

/// The task of one shard's subscriber connection.
struct Subscriber {
    shard: Arc<Shard>,
    prefix: String,
    rooms: Arc<Rooms<Outbox>>,
    stop: CancellationToken,
}

impl Subscriber {
    async fn run(self) {
        let mut backoff = BACKOFF.0;
        loop {
            let connect = timeout(REDIS_TIMEOUT, self.shard.client.get_async_pubsub());
            let connected = tokio::select! {
                connected = connect => connected,
                () = self.stop.cancelled() => return,
            };
            match connected {
                Ok(Ok(pubsub)) => {
                    backoff = BACKOFF.0;
                    let (sink, stream) = pubsub.split();
                    let (commands, queue) = mpsc::unbounded_channel();
                    {
                        let mut state = self.shard.lock();
                        state.commands = Some(commands);
                        for command in state.subscriptions.connected() {
                            state.send(Some(command));
                        }
                    }
                    tokio::select! {
                        () = self.execute(sink, queue) => {}
                        () = self.read(stream) => {}
                        () = self.stop.cancelled() => return,
                    }
                    tracing::warn!(url = %self.shard.url, "Redis subscriber connection lost");
                    self.lost();
                }
                Ok(Err(error)) => {
                    tracing::warn!(url = %self.shard.url, %error, ?backoff, "Redis unreachable: retrying");
                }
                Err(_elapsed) => {
                    tracing::warn!(url = %self.shard.url, ?backoff, "Redis did not answer: retrying");
                }
            }
            tokio::select! {
                () = sleep(backoff) => {}
                () = self.stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// Sends the queued commands in order, recording each confirmation;
    /// returns when one fails (the connection is gone).
    async fn execute(&self, mut sink: PubSubSink, mut queue: mpsc::UnboundedReceiver<Command>) {
        while let Some(command) = queue.recv().await {
            let sent = match &command {
                Command::Subscribe(channel) => sink.subscribe(channel).await,
                Command::Unsubscribe(channel) => sink.unsubscribe(channel).await,
            };
            if let Err(error) = sent {
                tracing::debug!(%error, ?command, "Redis: command failed");
                return;
            }
            if let Command::Subscribe(channel) = command {
                self.shard.lock().subscriptions.confirmed(&channel);
                self.shard.changed.notify_waiters();
            }
        }
    }

    /// Fans every room message out to the room's local members; returns
    /// when the connection is gone.
    async fn read(&self, mut stream: PubSubStream) {
        while let Some(message) = stream.next().await {
            let channel = message.get_channel_name();
            let Some(room) = layer::room_of_channel(&self.prefix, channel) else {
                tracing::warn!(
                    channel,
                    "Redis: a message on a channel that is no room's: skipped"
                );
                continue;
            };
            match layer::decode_chat(message.get_payload_bytes()) {
                Ok(text) => {
                    self.rooms.broadcast_in(&room, &text);
                }
                Err(error) => {
                    tracing::warn!(%room, %error, "Redis: undecodable group message skipped");
                }
            }
        }
    }

    /// Every room of the shard lost its subscription: its members may have
    /// missed messages.
    fn lost(&self) {
        let lost = {
            let mut state = self.shard.lock();
            state.commands = None;
            state.subscriptions.lost()
        };
        self.shard.changed.notify_waiters();
        for channel in lost {
            if let Some(room) = layer::room_of_channel(&self.prefix, &channel) {
                self.rooms.close_room(&room, CloseReason::LayerLost);
            }
        }
    }
}
