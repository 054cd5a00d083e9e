//! The Redis layer (`--layer redis`), with blocking I/O and threads: rooms
//! shared by every process on the same Redis, in the wire format of
//! channels_redis' `RedisPubSubChannelLayer` (`chat_protocol::layer`).
//!
//! Per shard (`--redis-url`), counted:
//!
//! * **one subscriber connection and its reader thread** (`redis-sub-<n>`),
//!   blocked in `read`. It parses what Redis pushes with the `redis` crate's
//!   RESP parser: subscription confirmations, and room messages, which it
//!   fans out to the room's local members (`Rooms::broadcast_in`), never
//!   waiting for any of them. Joining and leaving threads write `SUBSCRIBE`
//!   and `UNSUBSCRIBE` on the same socket themselves, under the shard's lock,
//!   so nothing polls: the connection is split between one reading thread
//!   and writers taking turns, like a WebSocket connection in this server.
//! * **up to [`PUBLISHERS`] publishing connections**, a small pool of blocking
//!   `redis::Connection`s: a sender's reader thread takes one, `PUBLISH`es,
//!   and puts it back.
//!
//! A member's own messages come back to it through Redis too: Redis orders
//! a room's messages, for every process alike.
//!
//! When the subscriber connection fails, every room of the shard loses its
//! subscription: their local members may have missed messages, so they are
//! closed with 1012 and their clients reconnect; the reader thread reconnects
//! with backoff and resubscribes the rooms that (again) have members. A join
//! waits at most [`SUBSCRIBE_TIMEOUT`] for its room's subscription; then it is
//! refused with 503.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown as Direction, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use chat_protocol::close::CloseReason;
use chat_protocol::layer;
use chat_protocol::room::RoomName;
use chat_protocol::subscriptions::{Command, Subscriptions};
use crossbeam_channel::{Receiver, Sender};
use redis::{ConnectionAddr, Value};

use crate::Shutdown;
use crate::outbox::Outbox;
use chat_protocol::rooms::Rooms;

/// Publishing connections per shard.
pub(crate) const PUBLISHERS: usize = 4;

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
    /// Every publishing connection stayed busy.
    #[error("message not sent: Redis at {url} busy")]
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
}

/// One Redis server.
struct Shard {
    url: String,
    client: redis::Client,
    state: Mutex<State>,
    /// Signalled when a subscription is confirmed or lost.
    changed: Condvar,
    /// The publishing connections (`None`: to be connected when taken).
    pool: (
        Sender<Option<redis::Connection>>,
        Receiver<Option<redis::Connection>>,
    ),
}

struct State {
    subscriptions: Subscriptions,
    /// The subscriber connection's writing side, while it is up.
    writer: Option<TcpStream>,
}

/// A member's hold on its room's subscription: dropping it may unsubscribe.
pub(crate) struct Subscription {
    shard: Arc<Shard>,
    channel: String,
}

impl RedisLayer {
    /// Connects to every shard, subscriber and one publisher each, and starts
    /// the reader threads; fails if any shard cannot be reached.
    pub(crate) fn start(
        urls: &[String],
        prefix: &str,
        rooms: &Arc<Rooms<Outbox>>,
        shutdown: &Shutdown,
    ) -> Result<Self, LayerError> {
        let mut shards = Vec::with_capacity(urls.len());
        for (index, url) in urls.iter().enumerate() {
            let bad_url = |cause: String| LayerError::BadUrl {
                url: url.clone(),
                cause,
            };
            let client = redis::Client::open(url.as_str()).map_err(|e| bad_url(e.to_string()))?;
            let (give, take) = crossbeam_channel::bounded(PUBLISHERS);
            for _ in 0..PUBLISHERS {
                let _ = give.send(None);
            }
            let shard = Arc::new(Shard {
                url: url.clone(),
                client,
                state: Mutex::new(State {
                    subscriptions: Subscriptions::default(),
                    writer: None,
                }),
                changed: Condvar::new(),
                pool: (give, take),
            });
            let stream = shard.connect().map_err(|cause| LayerError::Unreachable {
                url: url.clone(),
                cause,
            })?;
            let reader = Reader {
                shard: Arc::clone(&shard),
                prefix: prefix.to_owned(),
                rooms: Arc::clone(rooms),
                shutdown: shutdown.clone(),
            };
            thread::Builder::new()
                .name(format!("redis-sub-{index}"))
                .spawn(move || reader.run(stream))
                .map_err(|cause| LayerError::Unreachable {
                    url: url.clone(),
                    cause,
                })?;
            shards.push(shard);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            shards,
        })
    }

    fn shard_of(&self, room: &RoomName) -> (&Arc<Shard>, String) {
        let channel = layer::group_channel(&self.prefix, room);
        let shard = &self.shards[layer::shard(&channel, self.shards.len())];
        (shard, channel)
    }

    /// Subscribes this process to `room`'s channel if it is the first local
    /// member, and waits (at most [`SUBSCRIBE_TIMEOUT`]) until the
    /// subscription is confirmed.
    pub(crate) fn subscribe(&self, room: &RoomName) -> Result<Subscription, LayerError> {
        let (shard, channel) = self.shard_of(room);
        let mut state = shard.lock();
        let command = state.subscriptions.join(&channel);
        state.send(command);
        let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
        while !state.subscriptions.is_ready(&channel) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let command = state.subscriptions.leave(&channel);
                state.send(command);
                return Err(LayerError::NotSubscribed {
                    url: shard.url.clone(),
                });
            }
            state = shard
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        Ok(Subscription {
            shard: Arc::clone(shard),
            channel,
        })
    }

    /// Publishes `text` to `room`'s channel; it reaches the room's members,
    /// here and in every other process, when Redis sends it back.
    pub(crate) fn publish(&self, room: &RoomName, text: &str) -> Result<(), LayerError> {
        let (shard, channel) = self.shard_of(room);
        shard.publish(&channel, &layer::encode_chat(text))
    }

    /// Stops the reader threads (at shutdown): they stop reconnecting.
    pub(crate) fn stop(&self) {
        for shard in &self.shards {
            if let Some(writer) = &shard.lock().writer {
                let _ = writer.shutdown(Direction::Both);
            }
        }
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
    /// Writes `command` on the subscriber connection, if there is one and it
    /// is up. A failed write is the reader's business: it will see the
    /// connection fail, and resubscribe what needs it.
    fn send(&mut self, command: Option<Command>) {
        let (Some(command), Some(writer)) = (command, &self.writer) else {
            return;
        };
        let packed = match &command {
            Command::Subscribe(channel) => {
                redis::cmd("SUBSCRIBE").arg(channel).get_packed_command()
            }
            Command::Unsubscribe(channel) => {
                redis::cmd("UNSUBSCRIBE").arg(channel).get_packed_command()
            }
        };
        if let Err(error) = (&*writer).write_all(&packed) {
            tracing::debug!(%error, ?command, "could not write to the Redis subscriber connection");
        }
    }
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the subscriber connection: TCP, then `AUTH` if the URL has a
    /// password (pub/sub ignores the database number).
    fn connect(&self) -> io::Result<TcpStream> {
        let info = self.client.get_connection_info();
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "only redis://HOST:PORT (plain TCP) is supported",
            ));
        };
        let addr = (host.as_str(), *port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = TcpStream::connect_timeout(&addr, REDIS_TIMEOUT)?;
        stream.set_nodelay(true)?;
        // A command written under the shard's lock never blocks for long.
        stream.set_write_timeout(Some(REDIS_TIMEOUT))?;
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(username) = settings.username() {
                auth.arg(username);
            }
            auth.arg(password);
            (&stream).write_all(&auth.get_packed_command())?;
            stream.set_read_timeout(Some(REDIS_TIMEOUT))?;
            let reply = redis::Parser::new()
                .parse_value(&stream)
                .map_err(io::Error::other)?;
            stream.set_read_timeout(None)?;
            if let Value::ServerError(error) = reply {
                return Err(io::Error::other(format!("AUTH: {error:?}")));
            }
        }
        Ok(stream)
    }

    fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), LayerError> {
        let Ok(slot) = self.pool.1.recv_timeout(REDIS_TIMEOUT) else {
            tracing::warn!(url = %self.url, "Redis: every publishing connection busy: message not published");
            return Err(LayerError::Busy {
                url: self.url.clone(),
            });
        };
        let mut connection = match slot {
            Some(connection) => connection,
            None => match self.open_publisher() {
                Ok(connection) => connection,
                Err(cause) => {
                    let _ = self.pool.0.send(None);
                    return Err(self.publish_error(cause));
                }
            },
        };
        let published: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query(&mut connection);
        match published {
            Ok(_receivers) => {
                let _ = self.pool.0.send(Some(connection));
                Ok(())
            }
            Err(cause) => {
                // Reconnect on next use rather than trust this connection.
                let _ = self.pool.0.send(None);
                Err(self.publish_error(cause))
            }
        }
    }

    fn open_publisher(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self.client.get_connection_with_timeout(REDIS_TIMEOUT)?;
        connection.set_read_timeout(Some(REDIS_TIMEOUT))?;
        connection.set_write_timeout(Some(REDIS_TIMEOUT))?;
        Ok(connection)
    }

    fn publish_error(&self, cause: redis::RedisError) -> LayerError {
        tracing::warn!(url = %self.url, %cause, "Redis: message not published");
        LayerError::Publish {
            url: self.url.clone(),
            cause,
        }
    }
}

/// The reader thread of one shard's subscriber connection.
struct Reader {
    shard: Arc<Shard>,
    prefix: String,
    rooms: Arc<Rooms<Outbox>>,
    shutdown: Shutdown,
}

impl Reader {
    fn run(self, first: TcpStream) {
        let mut stream = Some(first);
        let mut backoff = BACKOFF.0;
        loop {
            if let Some(connected) = stream.take() {
                backoff = BACKOFF.0;
                self.serve(connected);
                if self.shutdown.is_triggered() {
                    return;
                }
                self.lost();
            }
            if self.shutdown.signal().recv_timeout(backoff).is_err() && self.shutdown.is_triggered()
            {
                return;
            }
            match self.shard.connect() {
                Ok(connected) => {
                    tracing::info!(url = %self.shard.url, "Redis subscriber connection back");
                    stream = Some(connected);
                }
                Err(error) => {
                    tracing::warn!(url = %self.shard.url, %error, ?backoff, "Redis unreachable: retrying");
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }

    /// Subscribes what has members, then reads until the connection fails.
    fn serve(&self, stream: TcpStream) {
        let reader = match stream.try_clone() {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%error, "cannot clone the Redis subscriber socket");
                return;
            }
        };
        {
            let mut state = self.shard.lock();
            state.writer = Some(stream);
            for command in state.subscriptions.connected() {
                state.send(Some(command));
            }
        }
        let mut reader = BufReader::new(reader);
        let mut parser = redis::Parser::new();
        loop {
            match parser.parse_value(&mut reader) {
                Ok(value) => self.on_push(value),
                Err(error) => {
                    if !self.shutdown.is_triggered() {
                        tracing::warn!(url = %self.shard.url, %error, "Redis subscriber connection lost");
                    }
                    return;
                }
            }
        }
    }

    /// Every room of the shard lost its subscription: its members may have
    /// missed messages.
    fn lost(&self) {
        let lost = {
            let mut state = self.shard.lock();
            state.writer = None;
            state.subscriptions.lost()
        };
        self.shard.changed.notify_all();
        for channel in lost {
            if let Some(room) = layer::room_of_channel(&self.prefix, &channel) {
                self.rooms.close_room(&room, CloseReason::LayerLost);
            }
        }
    }

    fn on_push(&self, value: Value) {
        let Value::Array(items) = value else {
            tracing::warn!(
                ?value,
                "Redis: unexpected reply on the subscriber connection"
            );
            return;
        };
        match items.as_slice() {
            [Value::BulkString(kind), Value::BulkString(channel), payload] => {
                let channel = String::from_utf8_lossy(channel);
                match (kind.as_slice(), payload) {
                    (b"message", Value::BulkString(payload)) => self.deliver(&channel, payload),
                    (b"subscribe", _) => {
                        self.shard.lock().subscriptions.confirmed(&channel);
                        self.shard.changed.notify_all();
                    }
                    (b"unsubscribe", _) => {}
                    _ => tracing::warn!(?items, "Redis: unexpected push"),
                }
            }
            _ => tracing::warn!(?items, "Redis: unexpected push"),
        }
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        let Some(room) = layer::room_of_channel(&self.prefix, channel) else {
            tracing::warn!(
                channel,
                "Redis: a message on a channel that is no room's: skipped"
            );
            return;
        };
        match layer::decode_chat(payload) {
            Ok(text) => {
                self.rooms.broadcast_in(&room, &text);
            }
            Err(error) => {
                tracing::warn!(%room, %error, "Redis: undecodable group message skipped");
            }
        }
    }
}
