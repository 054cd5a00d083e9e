//! The chat server as Django's `AsyncWebsocketConsumer` would be in Rust:
//! **tokio tasks on a fixed pool of worker threads.**
//!
//! # Execution model, counted
//!
//! * **Threads:** the runtime's worker threads (`--workers`, default: the
//!   number of cores), named `chat-worker`, plus the thread that runs [`run`]
//!   (the binary's main thread). Constant, whatever the number of clients.
//!   Without `--history`, no blocking pool is used. With it, the
//!   `--db-bridge` adds: `writer`, one database thread (`chat-db`);
//!   `spawn-blocking`, tokio's blocking pool, one thread per database call in
//!   flight (at most one per connection, up to tokio's 512, idle ones exit
//!   after 10 s); `inline`, none, because the workers block instead.
//! * **Tasks:** one accept loop, plus **two tasks per connection**: the
//!   reader, which does the HTTP handshake and then waits in `read`, and the
//!   writer, which waits on the connection's queues and in `write`. A task
//!   that waits holds no thread: its state is a few hundred bytes of future.
//! * **Why two:** the same split as the sync server, so the two differ only
//!   in their concurrency model. The reader never writes (tungstenite's
//!   automatic pong and close replies are swallowed and forwarded instead);
//!   the writer writes everything but the chat frames the room can write at
//!   once (below), and the connection's write gate (`chat_protocol::gate`)
//!   keeps the two from interleaving.
//! * **Where it waits:** never blocks a worker. The accept loop waits for a
//!   handshake slot and in `accept`; a reader in `read` (bounded by the
//!   handshake and idle timeouts); a writer on its queues, or in `write`
//!   (bounded by the write timeout).
//! * **Queues, all bounded** (`tokio::sync::mpsc`): per connection, the
//!   outbox of `--outbox-capacity` chat frames and `--outbox-bytes`, a
//!   control queue of `CONTROL_CAPACITY` (pongs, error replies), and a close
//!   slot of 1; all outboxes together within `--max-queued-bytes`, over
//!   which the largest is hung up on (`chat_protocol::queued`).
//! * **Fan-out:** the sender's reader task formats the frame once (with the
//!   messages that have already arrived behind it) and, under the room's
//!   lock (`chat_protocol::rooms`), writes it to each member's socket with
//!   `send(MSG_DONTWAIT)` when nothing is queued for that member; only what a socket
//!   does not take at once goes to the member's outbox, and only then is its
//!   writer task woken to write it.
//! * **History** (`--history`): a message is stored, then fanned out, in one
//!   critical section per room, off the workers (the `history` module); the
//!   reader task waits for the outcome before it reads the next frame, as the
//!   sync server's reader thread does.
//! * **Redis layer** (`--layer redis`, the `pubsub` module): per shard, one
//!   subscriber connection read by one task, which also sends the
//!   subscription commands, and one multiplexed publishing connection. A
//!   post is published, not broadcast: the sender's own message comes back
//!   through Redis, in the room's one order.
//! * **Slow consumer:** a member whose outbox is full is removed from the room
//!   and closed with 1013; nobody else waits for it.
//! * **Limits:** `--max-connections` WebSockets (503 beyond), and
//!   `--max-pending-handshakes` connections in their handshake (beyond, a
//!   newcomer evicts the oldest handshake silent for 250 ms, or waits in
//!   the backlog: the `pending` module). Tasks never run out: a connection
//!   costs memory, not a thread.
//!
//! The [`run`] function serves an already-bound listener until a [`Shutdown`]
//! is triggered; [`spawn`] binds `127.0.0.1:0` and runs it on a runtime of its
//! own, on a thread.

mod connection;
mod db_thread;
mod handshake;
mod history;
mod layer;
mod listener;
pub mod outbox;
mod pending;
mod pubsub;
mod shutdown;
mod writer;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use chat_protocol::ServerConfig;
use chat_protocol::close::CloseReason;
use chat_protocol::per_ip::PerIpLimits;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::rooms::Rooms;
use chat_protocol::tungstenite::protocol::WebSocketConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::task::TaskTracker;

pub use history::DbBridge;
use layer::Layer;
pub use listener::bind;
use outbox::Outbox;
use pending::Pending;
pub use shutdown::Shutdown;
use shutdown::Sockets;

/// How long, after the shutdown deadline, to wait for tasks once their
/// connections are hung up on.
const HANG_UP_GRACE: Duration = Duration::from_secs(1);

/// State shared by every task of one server.
pub(crate) struct Shared {
    config: ServerConfig,
    ws_config: WebSocketConfig,
    rooms: Arc<Rooms<Outbox>>,
    layer: Layer,
    /// WebSocket connections (`--max-connections`).
    connections: Arc<Semaphore>,
    /// Connections in their handshake (`--max-pending-handshakes`).
    pending: Arc<Pending>,
    /// Connections per client address, and their rate.
    per_ip: Arc<PerIpLimits>,
    /// Each outbox's bounds, and the server's budget of queued bytes.
    outbox_limits: OutboxLimits,
    sockets: Sockets,
    shutdown: Shutdown,
}

/// Serves chat on `listener` until `shutdown` is triggered, then closes every
/// connection with 1001 and returns once they are closed (or, past
/// `--shutdown-timeout-secs`, once they have been hung up on).
///
/// # Errors
///
/// An invalid `config`, a history database that cannot be opened, or a
/// listener without a local address.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    Server::open(config, shutdown)?.run(listener).await
}

/// A server ready to serve: its configuration checked, its history opened,
/// Redis answering. The binary opens it before it binds, so that a
/// configuration that cannot run is refused before anything listens.
pub struct Server {
    shared: Arc<Shared>,
    history_finished: Option<history::Finished>,
}

impl Server {
    /// Checks `config` and opens what it names.
    ///
    /// # Errors
    ///
    /// An invalid `config` (`io::ErrorKind::InvalidInput`), a history
    /// database that cannot be opened, or a Redis server that does not
    /// answer.
    pub fn open(config: ServerConfig, shutdown: Shutdown) -> io::Result<Self> {
        Self::open_with_bridge(config, None, shutdown)
    }

    /// [`Server::open`], reaching the history through `bridge` (`None`:
    /// the default, [`DbBridge::Writer`]); a bridge needs `config.history`.
    ///
    /// # Errors
    ///
    /// As [`Server::open`].
    pub fn open_with_bridge(
        config: ServerConfig,
        bridge: Option<DbBridge>,
        shutdown: Shutdown,
    ) -> io::Result<Self> {
        let (shared, history_finished) = Shared::new(config, bridge, shutdown)?;
        Ok(Self {
            shared,
            history_finished,
        })
    }

    /// Serves chat on `listener`, as [`run`] does.
    ///
    /// # Errors
    ///
    /// A listener without a local address.
    pub async fn run(self, listener: TcpListener) -> io::Result<()> {
        serve(listener, self.shared, self.history_finished).await
    }
}

impl Shared {
    /// Checks `config` and opens the history, reached through `bridge`.
    fn new(
        config: ServerConfig,
        bridge: Option<DbBridge>,
        shutdown: Shutdown,
    ) -> io::Result<(Arc<Self>, Option<history::Finished>)> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if bridge.is_some() && config.history.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid server configuration: --db-bridge needs --history",
            ));
        }
        let (layer, history_finished) = Layer::open(&config, bridge)?;
        let shared = Arc::new(Self {
            ws_config: config.websocket_config(),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            pending: Pending::new(config.max_pending_handshakes),
            per_ip: PerIpLimits::new(&config),
            outbox_limits: OutboxLimits::new(&config),
            rooms: Rooms::new(),
            layer,
            sockets: Sockets::default(),
            shutdown,
            config,
        });
        Ok((shared, history_finished))
    }
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    history_finished: Option<history::Finished>,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    shared.layer.start(&shared.rooms);
    tracing::info!(%addr, "serving (tokio tasks)");
    let alive = TaskTracker::new();
    listener::accept_loop(&listener, &shared, &alive).await;
    drop(listener);

    tracing::info!("shutting down: closing every connection with 1001");
    shared.rooms.close_all(CloseReason::ServerShutdown);
    alive.close();
    if timeout(shared.config.shutdown_timeout(), alive.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the shutdown deadline: hanging up");
        shared.sockets.hang_up_all();
        if timeout(HANG_UP_GRACE, alive.wait()).await.is_err() {
            tracing::warn!("some connection tasks did not finish");
        }
    }
    shared.layer.stop();
    let grace = shared.config.shutdown_timeout();
    let stats = Arc::clone(&shared.rooms);
    // The last reference to the database thread's queue: it stores what it
    // holds, closes the database and ends.
    drop(shared);
    if let Some(finished) = history_finished
        && timeout(grace, finished).await.is_err()
    {
        tracing::warn!("the history database thread did not finish");
    }
    let stats = stats.stats();
    tracing::info!(
        messages = stats.messages.load(Ordering::Relaxed),
        deliveries = stats.deliveries.load(Ordering::Relaxed),
        slow_consumers = stats.slow_consumers.load(Ordering::Relaxed),
        "stopped"
    );
    Ok(())
}

/// The default number of worker threads: the number of cores.
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// A multi-thread runtime with exactly `workers` worker threads.
pub fn runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("chat-worker")
        .enable_all()
        .build()
}

/// A server running on its own runtime and thread, as [`spawn`] returns it.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: thread::JoinHandle<io::Result<()>>,
}

/// Binds `127.0.0.1:0` and runs the server on a runtime of
/// [`default_workers`] workers, driven from a thread named `chat-accept`.
pub fn spawn(config: ServerConfig) -> io::Result<ServerHandle> {
    spawn_with_workers(config, default_workers())
}

/// [`spawn`], with `workers` worker threads.
pub fn spawn_with_workers(config: ServerConfig, workers: usize) -> io::Result<ServerHandle> {
    spawn_with(config, None, workers)
}

/// [`spawn`], reaching the history through `bridge` (see
/// [`Server::open_with_bridge`]).
pub fn spawn_with_bridge(config: ServerConfig, bridge: DbBridge) -> io::Result<ServerHandle> {
    spawn_with(config, Some(bridge), default_workers())
}

fn spawn_with(
    config: ServerConfig,
    bridge: Option<DbBridge>,
    workers: usize,
) -> io::Result<ServerHandle> {
    let listener = listener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    // Before the runtime: one dropped on this error path must not be dropped
    // inside the caller's runtime (a test's).
    let (shared, history_finished) = Shared::new(config, bridge, shutdown.clone())?;
    let runtime = runtime(workers)?;
    let thread = thread::Builder::new()
        .name("chat-accept".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                serve(listener, shared, history_finished).await
            })
        })?;
    Ok(ServerHandle {
        addr,
        shutdown,
        thread,
    })
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts the server down gracefully and waits for it to finish.
    pub fn shutdown_and_join(self) -> io::Result<()> {
        self.shutdown.trigger();
        self.thread
            .join()
            .map_err(|_| io::Error::other("the server thread panicked"))?
    }
}
