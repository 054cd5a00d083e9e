//! The acceptor thread, and the limits it enforces.
//!
//! One thread blocks in `accept`. An accepted connection whose address holds
//! `--max-connections-per-ip` already, or opens them faster than
//! `--max-handshakes-per-ip-per-sec` (`chat_protocol::per_ip`), is refused
//! with 429 at once, from this thread, before it can take anything else.
//! Each other connection takes a handshake
//! slot (`--max-pending-handshakes`, the `pending` module): a free one, or
//! one taken from the oldest handshake still silent, or the first to come
//! free, while later clients wait in the kernel's backlog. This bounds the
//! threads that unfinished handshakes hold. The connection then gets its own
//! thread (named `ws-read-<id>`), which does the handshake and then reads.
//! If that thread cannot be created (the machine's or the process's thread
//! limit), the client is refused with 503 and the server goes on.

use std::io;
use std::net::ToSocketAddrs;
use std::net::{Shutdown as Direction, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};

use chat_protocol::config::{AcceptBackoff, LISTEN_BACKLOG};
use chat_protocol::route::Refusal;
use rustix::net::{SendFlags, send};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{Shared, THREAD_STACK_BYTES, connection};

/// A counting semaphore made of a bounded channel pre-filled with tokens:
/// taking a token is a `recv`, and a [`Permit`] gives it back when dropped.
pub(crate) struct Limit {
    give: Sender<()>,
    /// Ready when a permit is free: for `select!`.
    pub(crate) take: Receiver<()>,
}

/// One unit of a [`Limit`], returned on drop.
pub(crate) struct Permit {
    give: Sender<()>,
}

impl Limit {
    /// A limit of `n` permits.
    pub(crate) fn new(n: usize) -> Self {
        let (give, take) = crossbeam_channel::bounded(n);
        for _ in 0..n {
            let _ = give.send(());
        }
        Self { give, take }
    }

    /// Takes a permit if one is free.
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        self.take.try_recv().ok().map(|()| self.permit())
    }

    /// The permit for a token just received from [`Self::take`].
    pub(crate) fn permit(&self) -> Permit {
        Permit {
            give: self.give.clone(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let _ = self.give.try_send(());
    }
}

/// Binds `addr` (`HOST:PORT`) with a listen backlog of `LISTEN_BACKLOG`.
pub fn bind(addr: &str) -> io::Result<std::net::TcpListener> {
    let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no address for {addr}"),
        )
    })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Accepts connections until the shutdown is triggered.
///
/// Every connection thread holds a clone of `alive` until it ends, so the
/// caller learns that all have ended when its receiver disconnects.
pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, alive: Sender<()>) {
    let mut next_id: u64 = 0;
    let mut backoff = AcceptBackoff::new();
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors (EMFILE), or a connection reset
                // before we took it: back off and go on; the kernel's
                // backlog holds the clients meanwhile.
                let pause = backoff.failed();
                tracing::warn!(%error, retry_in = ?pause, "accept failed");
                if shared
                    .shutdown
                    .signal()
                    .recv_timeout(pause)
                    .is_err_and(|e| e.is_disconnected())
                {
                    return;
                }
                continue;
            }
        };
        backoff.succeeded();
        if shared.shutdown.is_triggered() {
            return;
        }
        next_id += 1;
        let id = next_id;
        tracing::debug!(id, %peer, "accepted");
        let ip_slot = match shared.per_ip.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(id, %peer, %refusal, "refused");
                refuse_at_once(&stream, &refusal);
                continue;
            }
        };
        let stream = Arc::new(stream);
        let Some(handshake) = shared.pending.admit(id, &stream, &shared.shutdown) else {
            return;
        };
        shared.sockets.insert(id, &stream);
        let thread_shared = Arc::clone(shared);
        let thread_stream = Arc::clone(&stream);
        let alive = alive.clone();
        let spawned = thread::Builder::new()
            .name(format!("ws-read-{id}"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let _ip_slot = ip_slot;
                connection::serve(thread_stream, id, handshake, &thread_shared);
                thread_shared.sockets.remove(id);
                drop(alive);
            });
        if let Err(error) = spawned {
            shared.sockets.remove(id);
            tracing::warn!(%error, "could not start a connection thread: refused with 503");
            refuse_at_once(&stream, &Refusal::OutOfThreads);
        }
    }
}

/// Refuses a client from the acceptor itself, which must not block: one
/// `send` that cannot wait (the response fits in the new socket's empty
/// buffer), then our side closed. The client's request is not read, so
/// closing may reset the connection after the response (the client reads
/// the response first).
fn refuse_at_once(stream: &TcpStream, refusal: &Refusal) {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let _ = send(stream, &refusal.response().bytes, flags);
    let _ = stream.shutdown(Direction::Write);
}
