//! The chat server as Django's sync `WebsocketConsumer` would be in Rust:
//! **a thread per connection, blocking I/O, no event loop.**
//!
//! # Execution model, counted
//!
//! * **Threads:** one acceptor thread (`chat-accept`), plus **two threads per
//!   connection**: `ws-read-<id>`, which does the HTTP handshake and then blocks
//!   in `read`, and `ws-write-<id>`, which blocks on the connection's queues
//!   and in `write`. With *n* clients: *2n + 1* threads (plus the caller's).
//!   Each has a [`THREAD_STACK_BYTES`] stack. The two share the socket (one
//!   file descriptor per connection) through an `Arc<TcpStream>`.
//! * **Why two:** tungstenite cannot split a blocking socket, and a single
//!   thread cannot wait for both the client and the room without polling. The
//!   reader never writes (tungstenite's automatic pong and close replies are
//!   swallowed and forwarded instead); the writer writes everything but the
//!   chat frames the room can write at once (below), and the connection's
//!   write gate (`chat_protocol::gate`) keeps the two from interleaving.
//! * **Where it blocks:** the acceptor in `accept` (and while all handshake
//!   slots are taken); a reader in `read` (bounded by the handshake and idle
//!   timeouts); a writer in `select!` on its queues, or in `write` (bounded by
//!   the write timeout).
//! * **Queues, all bounded** (`crossbeam-channel`): per connection, the
//!   outbox of `--outbox-capacity` chat frames and `--outbox-bytes`, a
//!   control queue of `CONTROL_CAPACITY` (pongs, error replies), and a close
//!   slot of 1; all outboxes together within `--max-queued-bytes`, over
//!   which the largest is hung up on (`chat_protocol::queued`).
//! * **Fan-out:** the sender's reader thread formats the frame once (with the
//!   messages that have already arrived behind it, read with `MSG_DONTWAIT`)
//!   and, under the room's lock (`chat_protocol::rooms`), writes it to each
//!   member's socket with one `send(MSG_DONTWAIT)` when nothing is queued
//!   for that member; only what a socket does not take at once goes to the
//!   member's outbox, and only then does its writer thread wake and write.
//! * **History** (`--history`): the sender's reader thread stores the message
//!   in SQLite and then fans it out, in one critical section per room (the
//!   `history` module); no extra thread. It blocks meanwhile, as a sync
//!   consumer blocks in the ORM.
//! * **Redis layer** (`--layer redis`, the `pubsub` module): per shard, one
//!   subscriber connection and its reader thread (`redis-sub-<n>`), and up to
//!   four blocking publishing connections. A post is published, not
//!   broadcast: the sender's own message comes back through Redis, in the
//!   room's one order.
//! * **Slow consumer:** a member whose outbox is full is removed from the room
//!   and closed with 1013; nobody else waits for it.
//! * **Limits:** `--max-connections` WebSockets (503 beyond), and
//!   `--max-pending-handshakes` connections in their handshake (beyond, a
//!   newcomer evicts the oldest handshake silent for 250 ms, or waits in
//!   the backlog: the `pending` module). The machine caps threads too
//!   ([`ThreadBudget`]): each thread costs four memory mappings, so
//!   `vm.max_map_count` (65,530 by default) allows about 16,000 threads,
//!   8,000 connections, before `pid_max` does; the server reads these limits
//!   at start-up and refuses upgrades beyond them with 503, since running out
//!   of mappings aborts the process. A thread that cannot be created anyway
//!   (another limit: `RLIMIT_NPROC`, a cgroup's `pids.max`) gets its client a
//!   503 too, and the server goes on.
//!
//! The [`run`] function serves an already-bound listener until a [`Shutdown`]
//! is triggered; [`spawn`] binds `127.0.0.1:0` and runs it on a thread.

mod budget;
mod connection;
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
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use chat_protocol::ServerConfig;
use chat_protocol::close::CloseReason;
use chat_protocol::per_ip::PerIpLimits;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::rooms::Rooms;
use chat_protocol::tungstenite::protocol::WebSocketConfig;
use crossbeam_channel::RecvTimeoutError;

pub use budget::ThreadBudget;
use layer::Layer;
use listener::Limit;
pub use listener::bind;
use outbox::Outbox;
use pending::Pending;
pub use shutdown::Shutdown;
use shutdown::Sockets;

/// Stack size of every connection thread: twice the smallest that every
/// test suite passed with in a debug build, where frames are largest (64
/// KiB; at 32 KiB a reader publishing to Redis overflowed). The size is
/// address space only: an idle thread touches about 12 KiB of it, and only
/// touched pages count in RSS.
pub const THREAD_STACK_BYTES: usize = 128 * 1024;

/// How long, after the shutdown deadline, to wait for threads once their
/// sockets are shut down.
const HANG_UP_GRACE: Duration = Duration::from_secs(1);

/// State shared by every thread of one server.
pub(crate) struct Shared {
    config: ServerConfig,
    ws_config: WebSocketConfig,
    rooms: Arc<Rooms<Outbox>>,
    layer: Layer,
    /// WebSocket connections (`--max-connections`).
    connections: Limit,
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
pub fn run(listener: TcpListener, config: ServerConfig, shutdown: Shutdown) -> io::Result<()> {
    Server::open(config, shutdown)?.run(listener)
}

/// A server ready to serve: its configuration checked, its history opened,
/// Redis answering. The binary opens it before it binds, so that a
/// configuration that cannot run is refused before anything listens.
pub struct Server(Arc<Shared>);

impl Server {
    /// Checks `config` and opens what it names.
    ///
    /// # Errors
    ///
    /// An invalid `config` (`io::ErrorKind::InvalidInput`), a history
    /// database that cannot be opened, or a Redis server that does not
    /// answer.
    pub fn open(config: ServerConfig, shutdown: Shutdown) -> io::Result<Self> {
        Shared::new(config, shutdown).map(Self)
    }

    /// Serves chat on `listener`, as [`run`] does.
    ///
    /// # Errors
    ///
    /// A listener without a local address.
    pub fn run(self, listener: TcpListener) -> io::Result<()> {
        serve(listener, self.0)
    }
}

impl Shared {
    /// Checks `config`, opens the history and reads the machine's limits.
    fn new(config: ServerConfig, shutdown: Shutdown) -> io::Result<Arc<Self>> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let rooms = Rooms::new();
        let layer = Layer::open(&config, &rooms, &shutdown)?;
        let max_connections = match ThreadBudget::of_this_machine() {
            Some(budget) => {
                let fit = budget.connections(config.max_pending_handshakes);
                if fit < config.max_connections {
                    tracing::warn!(
                        max_connections = config.max_connections,
                        fit,
                        threads = budget.threads,
                        limited_by = %budget.limited_by,
                        "this machine's thread limits allow fewer connections: beyond them, upgrades get 503"
                    );
                }
                fit.min(config.max_connections)
            }
            None => config.max_connections,
        };
        Ok(Arc::new(Self {
            ws_config: config.websocket_config(),
            connections: Limit::new(max_connections),
            pending: Pending::new(config.max_pending_handshakes),
            per_ip: PerIpLimits::new(&config),
            outbox_limits: OutboxLimits::new(&config),
            rooms,
            layer,
            sockets: Sockets::default(),
            shutdown,
            config,
        }))
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> io::Result<()> {
    let addr = listener.local_addr()?;
    shared.shutdown.watch_listener(addr);
    tracing::info!(%addr, "serving (thread per connection)");
    let (alive, all_done) = crossbeam_channel::bounded::<()>(0);
    listener::accept_loop(&listener, &shared, alive);
    drop(listener);

    tracing::info!("shutting down: closing every connection with 1001");
    shared.rooms.close_all(CloseReason::ServerShutdown);
    let deadline = Instant::now() + shared.config.shutdown_timeout();
    if let Err(RecvTimeoutError::Timeout) = all_done.recv_deadline(deadline) {
        tracing::warn!("connections still open at the shutdown deadline: hanging up");
        shared.sockets.hang_up_all();
        if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(HANG_UP_GRACE) {
            tracing::warn!("some connection threads did not finish");
        }
    }
    shared.layer.stop();
    let stats = shared.rooms.stats();
    tracing::info!(
        messages = stats.messages.load(Ordering::Relaxed),
        deliveries = stats.deliveries.load(Ordering::Relaxed),
        slow_consumers = stats.slow_consumers.load(Ordering::Relaxed),
        "stopped"
    );
    Ok(())
}

/// A server running on its own thread, as [`spawn`] returns it.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: thread::JoinHandle<io::Result<()>>,
}

/// Binds `127.0.0.1:0` and runs the server on a thread named `chat-accept`.
pub fn spawn(config: ServerConfig) -> io::Result<ServerHandle> {
    let listener = listener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    let shared = Shared::new(config, shutdown.clone())?;
    let thread = thread::Builder::new()
        .name("chat-accept".into())
        .spawn(move || serve(listener, shared))?;
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
