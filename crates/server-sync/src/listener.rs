//! The acceptor thread, and the limits it enforces.
//!
//! One thread blocks in `accept`. Before each accept it takes a handshake
//! slot (`--max-pending-handshakes`); while none is free it does not accept,
//! and new clients wait in the kernel's backlog. This bounds the threads that
//! unfinished handshakes hold. Each accepted connection gets its own thread
//! at once (named `ws-read-<id>`), which does the handshake and then reads.

use std::io;
use std::net::TcpListener;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};

use chat_protocol::config::LISTEN_BACKLOG;
use socket2::{Domain, Protocol, Socket, Type};

use crate::{Shared, THREAD_STACK_BYTES, connection};

/// A counting semaphore made of a bounded channel pre-filled with tokens:
/// taking a token is a `recv`, and a [`Permit`] gives it back when dropped.
pub(crate) struct Limit {
    give: Sender<()>,
    take: Receiver<()>,
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

    fn permit(&self) -> Permit {
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
    let mut backoff = Duration::from_millis(1);
    loop {
        let slot = select! {
            recv(shared.handshakes.take) -> _ => shared.handshakes.permit(),
            recv(shared.shutdown.signal()) -> _ => return,
        };
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before we
                // took it: back off a little and go on.
                tracing::warn!(%error, "accept failed");
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(1);
        if shared.shutdown.is_triggered() {
            return;
        }
        next_id += 1;
        let id = next_id;
        tracing::debug!(id, %peer, "accepted");
        let stream = Arc::new(stream);
        shared.sockets.insert(id, &stream);
        let thread_shared = Arc::clone(shared);
        let alive = alive.clone();
        let spawned = thread::Builder::new()
            .name(format!("ws-read-{id}"))
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                connection::serve(stream, id, slot, &thread_shared);
                thread_shared.sockets.remove(id);
                drop(alive);
            });
        if let Err(error) = spawned {
            log_spawn_failure(&error);
            shared.sockets.remove(id);
        }
    }
}

fn log_spawn_failure(error: &io::Error) {
    tracing::warn!(%error, "could not start a connection thread; connection dropped");
}
