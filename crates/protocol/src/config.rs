//! Limits, queue capacities, buffer sizes and timeouts: one [`ServerConfig`]
//! for both servers, flattened into both command lines so the flags (and their
//! defaults) cannot drift apart. What only one server has (chat-async's
//! `--workers` and `--db-bridge`) is that server's own, so the other's
//! command line never shows it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::readahead::TUNGSTENITE_READ_BYTES;
use tungstenite::protocol::WebSocketConfig;

/// How long a server waits for the peer's answer to its close frame before it
/// drops the TCP connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The pause after a failed `accept` (out of descriptors, EMFILE; or a
/// connection reset before it was taken): 1 ms, doubling after each failure
/// up to [`AcceptBackoff::MAX`], back to 1 ms after a success. Out of
/// descriptors, an acceptor retries at most once a second instead of
/// spinning, while the kernel's backlog holds new clients. Both servers'
/// accept loops use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptBackoff(Duration);

impl AcceptBackoff {
    /// The first pause.
    pub const FIRST: Duration = Duration::from_millis(1);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// Before any failure.
    pub fn new() -> Self {
        Self(Self::FIRST)
    }

    /// After a failure: the pause to take now (the next one is doubled).
    pub fn failed(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (pause * 2).min(Self::MAX);
        pause
    }

    /// After a success: the next failure pauses [`Self::FIRST`] again.
    pub fn succeeded(&mut self) {
        self.0 = Self::FIRST;
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The listen backlog: connections the kernel completes before `accept`
/// takes them. Rust's standard library uses 128, too few for a burst of
/// connects (the kernel drops the SYNs beyond it, and clients retry only
/// after a second); the kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 4096;

/// Capacity of each connection's control queue (pongs, error replies, close
/// requests from its own reader). Small: a reader that fills it waits, which
/// stops it reading, which pushes back on a client that floods pings.
pub const CONTROL_CAPACITY: usize = 16;

/// The most stored messages a joining client can be sent (`--history-replay`):
/// they are queued for it at once, so this bounds the memory a join costs
/// (`MAX_HISTORY_REPLAY` × `--max-message-bytes`).
pub const MAX_HISTORY_REPLAY: usize = 1000;

/// Where a server's rooms live (`--layer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Layer {
    /// In this process only (the default).
    #[default]
    Memory,
    /// On Redis pub/sub, shared with every process on the same Redis, in the
    /// wire format of `channels_redis`' `RedisPubSubChannelLayer`.
    Redis,
}

/// The default `--layer-prefix`, as in `channels_redis`.
pub const DEFAULT_LAYER_PREFIX: &str = "asgi";

/// Options common to both binaries: where to listen, and the shared config.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port; the first
    /// line on stdout says which).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub config: ServerConfig,
}

/// Everything that bounds a server's resources, the same for both servers.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Most WebSocket connections served at once; an upgrade beyond it is
    /// refused with 503.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one::<usize>())]
    pub max_connections: usize,

    /// Most connections still in their HTTP handshake at once; beyond it the
    /// server stops accepting until one finishes (the kernel's backlog holds
    /// the rest). Bounds the threads or tasks that unfinished handshakes hold.
    #[arg(long, default_value_t = 512, value_parser = at_least_one::<usize>())]
    pub max_pending_handshakes: usize,

    /// Most connections one client address may hold at once, pending
    /// handshakes included (an IPv6 address counts by its /64); a connection
    /// beyond it is refused with 429. Generous enough for many clients
    /// behind one NAT.
    #[arg(long, default_value_t = 256, value_parser = at_least_one::<usize>())]
    pub max_connections_per_ip: usize,

    /// New connections one client address may open per second, after a
    /// burst of --max-connections-per-ip; one beyond it is refused with 429.
    #[arg(long, default_value_t = 64, value_parser = at_least_one::<u32>())]
    pub max_handshakes_per_ip_per_sec: u32,

    /// Largest frame or message a client may send, in bytes; larger ones close
    /// the connection with 1009.
    #[arg(long, default_value_t = 64 * 1024, value_parser = at_least_one::<usize>())]
    pub max_message_bytes: usize,

    /// Largest HTTP request head, in bytes; a larger one is refused with 431.
    #[arg(long, default_value_t = 8 * 1024, value_parser = at_least_one::<usize>())]
    pub max_head_bytes: usize,

    /// Frames queued for one connection before it counts as too slow and is
    /// closed with 1013.
    #[arg(long, default_value_t = 1024, value_parser = at_least_one::<usize>())]
    pub outbox_capacity: usize,

    /// Bytes of frames queued for one connection before it counts as too
    /// slow and is closed with 1013 (whichever of this and
    /// --outbox-capacity comes first).
    #[arg(long, default_value_t = 1024 * 1024, value_parser = at_least_one::<usize>())]
    pub outbox_bytes: usize,

    /// Bytes of frames queued for all connections together; a push that
    /// would pass it first hangs up on the connection with the largest
    /// queue. (A fixed figure, not a share of the machine's memory, which a
    /// container's limit hides: a server behaves the same wherever it runs.)
    #[arg(long, default_value_t = 1024 * 1024 * 1024, value_parser = at_least_one::<usize>())]
    pub max_queued_bytes: usize,

    /// Seconds a connection may stay silent (no frame, not even a ping) before
    /// the server closes it with 1001.
    #[arg(long, default_value_t = 300, value_parser = at_least_one::<u64>())]
    pub idle_timeout_secs: u64,

    /// Seconds a client has to send its complete HTTP request head.
    #[arg(long, default_value_t = 10, value_parser = at_least_one::<u64>())]
    pub handshake_timeout_secs: u64,

    /// Seconds one write to a client may block (its socket buffer full) before
    /// the connection is dropped.
    #[arg(long, default_value_t = 10, value_parser = at_least_one::<u64>())]
    pub write_timeout_secs: u64,

    /// Seconds a graceful shutdown waits for connections to close before it
    /// drops the rest.
    #[arg(long, default_value_t = 5, value_parser = at_least_one::<u64>())]
    pub shutdown_timeout_secs: u64,

    /// Bytes read from a socket at a time, into a scratch buffer of the
    /// reading thread's (one per worker in chat-async, one per connection
    /// in chat-sync); tungstenite's own buffer per connection is a few
    /// hundred bytes (`chat_protocol::readahead`). A larger message still
    /// arrives whole.
    #[arg(long, default_value_t = 4 * 1024, value_parser = at_least_one::<usize>())]
    pub read_buffer_bytes: usize,

    /// Most queued frames a writer puts into one flush, i.e. one `write`
    /// syscall (up to the write buffer size). 1 writes each frame with its
    /// own syscall: kept for experiments, to measure what batching saves.
    #[arg(long, default_value_t = 64, value_parser = at_least_one::<usize>())]
    pub max_batch_frames: usize,

    /// Most bytes of queued frames a writer gathers into one write.
    #[arg(long, default_value_t = 64 * 1024, value_parser = at_least_one::<usize>())]
    pub write_buffer_bytes: usize,

    /// Whether a broadcast writes a chat frame to a member's socket itself
    /// when nothing is queued for it (with a write that cannot block),
    /// instead of waking the member's writer: `false` hands every frame to
    /// the writer, as before; kept for experiments, to measure what it saves.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub direct_writes: bool,

    /// An origin (`https://chat.example.com`) or host (`chat.example.com:8000`)
    /// whose pages may open WebSockets here, besides the server's own Host.
    /// Repeatable.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Keep chat history in this SQLite file (created if absent): every
    /// message is stored before it is delivered, and a joining client first
    /// receives the room's last --history-replay messages. Off by default.
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,

    /// With --history: how many stored messages a joining client receives
    /// first, oldest first (0 for none; at most 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_HISTORY_REPLAY as u64))]
    pub history_replay: usize,

    /// For experiments, with --history: every database call first sleeps this
    /// long, as a call to a slow or remote database would wait.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub db_delay_ms: u64,

    /// Where rooms live: in this process (`memory`), or on Redis
    /// (`redis`), shared with other processes, ours or Django Channels'.
    #[arg(long, value_enum, default_value_t = Layer::Memory)]
    pub layer: Layer,

    /// With --layer redis: a Redis server, `redis://HOST:PORT[/DB]`.
    /// Repeatable: several are shards, each room on one of them, chosen as
    /// channels_redis chooses (list them in the same order as Django's
    /// `hosts`).
    #[arg(long = "redis-url", value_name = "URL")]
    pub redis_urls: Vec<String>,

    /// With --layer redis: the prefix of the Redis channel names, as
    /// channels_redis' `prefix`.
    #[arg(long, default_value = DEFAULT_LAYER_PREFIX, value_name = "PREFIX")]
    pub layer_prefix: String,
}

/// Every count, size and timeout must be at least 1: a zero-capacity queue
/// would disconnect every member, a zero timeout would close at once.
fn at_least_one<T>() -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
    <T as TryFrom<u64>>::Error: std::fmt::Display + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// A [`ServerConfig`] value that no server can run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidConfig {
    /// A count, size or timeout is zero.
    #[error("invalid server configuration: {0} must be at least 1")]
    Zero(&'static str),
    /// `history_replay` is above [`MAX_HISTORY_REPLAY`].
    #[error("invalid server configuration: history_replay must be at most {MAX_HISTORY_REPLAY}")]
    ReplayTooLong,
    /// A database option was given without `history`.
    #[error("invalid server configuration: {0} needs --history")]
    NeedsHistory(&'static str),
    /// `--layer redis` without a `--redis-url`, or a Redis option without it.
    #[error("invalid server configuration: {0}")]
    Layer(&'static str),
}

impl Default for ServerConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: ServerConfig,
        }
        <Defaults as clap::Parser>::parse_from(["defaults"]).config
    }
}

/// How a connection's writer writes (see each server's `writer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writing {
    /// Most frames gathered into one write (`--max-batch-frames`).
    pub batch_frames: usize,
    /// Most bytes gathered into one write (`--write-buffer-bytes`).
    pub batch_bytes: usize,
    /// Whether the room may write a frame itself when nothing is queued
    /// (`--direct-writes`).
    pub direct: bool,
}

impl ServerConfig {
    /// Checks what the command line checks, for configs built in code.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let fields = [
            ("max_connections", self.max_connections as u64),
            ("max_pending_handshakes", self.max_pending_handshakes as u64),
            ("max_connections_per_ip", self.max_connections_per_ip as u64),
            (
                "max_handshakes_per_ip_per_sec",
                u64::from(self.max_handshakes_per_ip_per_sec),
            ),
            ("max_message_bytes", self.max_message_bytes as u64),
            ("max_head_bytes", self.max_head_bytes as u64),
            ("outbox_capacity", self.outbox_capacity as u64),
            ("outbox_bytes", self.outbox_bytes as u64),
            ("max_queued_bytes", self.max_queued_bytes as u64),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("handshake_timeout_secs", self.handshake_timeout_secs),
            ("write_timeout_secs", self.write_timeout_secs),
            ("shutdown_timeout_secs", self.shutdown_timeout_secs),
            ("read_buffer_bytes", self.read_buffer_bytes as u64),
            ("write_buffer_bytes", self.write_buffer_bytes as u64),
            ("max_batch_frames", self.max_batch_frames as u64),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, value)| *value == 0) {
            return Err(InvalidConfig::Zero(name));
        }
        if self.history_replay > MAX_HISTORY_REPLAY {
            return Err(InvalidConfig::ReplayTooLong);
        }
        match self.layer {
            Layer::Memory if !self.redis_urls.is_empty() => {
                return Err(InvalidConfig::Layer("--redis-url needs --layer redis"));
            }
            Layer::Redis if self.redis_urls.is_empty() => {
                return Err(InvalidConfig::Layer("--layer redis needs a --redis-url"));
            }
            Layer::Redis if self.history.is_some() => {
                return Err(InvalidConfig::Layer(
                    "--history works with --layer memory only (with Redis, every process would store every message)",
                ));
            }
            _ => {}
        }
        if self.history.is_none() && self.db_delay_ms > 0 {
            return Err(InvalidConfig::NeedsHistory("--db-delay-ms"));
        }
        Ok(())
    }

    /// [`Self::db_delay_ms`] as a duration.
    pub fn db_delay(&self) -> Duration {
        Duration::from_millis(self.db_delay_ms)
    }

    /// How a connection's writer writes.
    pub fn writing(&self) -> Writing {
        Writing {
            batch_frames: self.max_batch_frames,
            batch_bytes: self.write_buffer_bytes,
            direct: self.direct_writes,
        }
    }

    /// tungstenite's settings for a connection: the size limits and buffers.
    pub fn websocket_config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(TUNGSTENITE_READ_BYTES)
            .write_buffer_size(self.write_buffer_bytes)
            .max_write_buffer_size(self.write_buffer_bytes + 2 * self.max_message_bytes + 1024)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
    }

    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`Self::handshake_timeout_secs`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    /// [`Self::write_timeout_secs`] as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    /// [`Self::shutdown_timeout_secs`] as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_a_second_and_resets() {
        let mut backoff = AcceptBackoff::new();
        let pauses: Vec<u128> = (0..12).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), AcceptBackoff::FIRST);
    }

    #[test]
    fn defaults_come_from_the_flags() {
        let config = ServerConfig::default();
        assert_eq!(config.max_message_bytes, 65536);
        assert_eq!(config.outbox_capacity, 1024);
        assert!(config.allowed_origins.is_empty());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn zero_is_refused() {
        let config = ServerConfig {
            outbox_capacity: 0,
            ..ServerConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(InvalidConfig::Zero("outbox_capacity"))
        );
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ServerConfig,
        }
        assert!(<Cli as clap::Parser>::try_parse_from(["x", "--idle-timeout-secs", "0"]).is_err());
    }
}
