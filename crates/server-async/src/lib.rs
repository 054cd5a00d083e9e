//! The chat server as Django's `AsyncWebsocketConsumer` would be in Rust:
//! **tokio tasks on a fixed pool of worker threads.**
//!
//! # Execution model, counted
//!
//! * **Threads:** the runtime's worker threads (`--workers`, default: the
//!   number of cores), named `chat-worker`, plus the thread that runs [`run`]
//!   (the binary's main thread). Constant, whatever the number of clients. No
//!   blocking pool is used.
//! * **Tasks:** one accept loop, plus **two tasks per connection**: the
//!   reader, which does the HTTP handshake and then waits in `read`, and the
//!   writer, which waits on the connection's queues and in `write`. A task
//!   that waits holds no thread: its state is a few hundred bytes of future.
//! * **Why two:** the same split as the sync server, so the two differ only
//!   in their concurrency model. The reader never writes (tungstenite's
//!   automatic pong and close replies are swallowed and forwarded instead);
//!   the writer owns every write, so frames never interleave.
//! * **Where it waits:** never blocks a worker. The accept loop waits for a
//!   handshake slot and in `accept`; a reader in `read` (bounded by the
//!   handshake and idle timeouts); a writer on its queues, or in `write`
//!   (bounded by the write timeout).
//! * **Queues, all bounded** (`tokio::sync::mpsc`): per connection, the
//!   outbox of `--outbox-capacity` chat frames, a control queue of
//!   `CONTROL_CAPACITY` (pongs, error replies), and a close slot of 1.
//! * **Fan-out:** the sender's reader task encodes the frame once and pushes
//!   it, without waiting, into every member's outbox under the room's lock
//!   (`chat_protocol::rooms`); each member's writer task wakes and writes.
//! * **Slow consumer:** a member whose outbox is full is removed from the room
//!   and closed with 1013; nobody else waits for it.
//! * **Limits:** `--max-connections` WebSockets (503 beyond), and
//!   `--max-pending-handshakes` connections in their handshake (the accept
//!   loop waits beyond).
//!
//! The [`run`] function serves an already-bound listener until a [`Shutdown`]
//! is triggered; [`spawn`] binds `127.0.0.1:0` and runs it on a runtime of its
//! own, on a thread.

mod connection;
mod handshake;
mod listener;
pub mod outbox;
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
use chat_protocol::rooms::Rooms;
use chat_protocol::tungstenite::protocol::WebSocketConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::task::TaskTracker;

pub use listener::bind;
use outbox::Outbox;
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
    /// WebSocket connections (`--max-connections`).
    connections: Arc<Semaphore>,
    /// Connections in their handshake (`--max-pending-handshakes`).
    handshakes: Arc<Semaphore>,
    sockets: Sockets,
    shutdown: Shutdown,
}

/// Serves chat on `listener` until `shutdown` is triggered, then closes every
/// connection with 1001 and returns once they are closed (or, past
/// `--shutdown-timeout-secs`, once they have been hung up on).
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: Shutdown,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        ws_config: config.websocket_config(),
        connections: Arc::new(Semaphore::new(config.max_connections)),
        handshakes: Arc::new(Semaphore::new(config.max_pending_handshakes)),
        rooms: Rooms::new(),
        sockets: Sockets::default(),
        shutdown,
        config,
    });
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
    let stats = shared.rooms.stats();
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
    let listener = listener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = runtime(workers)?;
    let shutdown = Shutdown::new();
    let thread_shutdown = shutdown.clone();
    let thread = thread::Builder::new()
        .name("chat-accept".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                run(listener, config, thread_shutdown).await
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
