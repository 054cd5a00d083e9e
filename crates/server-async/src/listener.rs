//! The accept loop, and the limits it enforces.
//!
//! One task accepts. Each accepted connection takes a handshake slot
//! (`--max-pending-handshakes`, the `pending` module): a free one, or one
//! taken from the oldest handshake still silent, or the first to come free,
//! while later clients wait in the kernel's backlog. This bounds the tasks
//! that unfinished handshakes hold. The connection then gets its own task,
//! which does the handshake and then reads.

use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use chat_protocol::config::{AcceptBackoff, LISTEN_BACKLOG};
use socket2::{Domain, Protocol, Socket, Type};

use crate::{Shared, connection};

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
/// Every connection task is spawned on `alive`, so the caller learns that all
/// have ended when it is empty.
pub(crate) async fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, alive: &TaskTracker) {
    let mut next_id: u64 = 0;
    let mut backoff = AcceptBackoff::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.signal() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors (EMFILE), or a connection reset
                // before we took it: back off and go on; the kernel's
                // backlog holds the clients meanwhile.
                let pause = backoff.failed();
                tracing::warn!(%error, retry_in = ?pause, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.shutdown.signal() => return,
                }
                continue;
            }
        };
        backoff.succeeded();
        next_id += 1;
        let id = next_id;
        tracing::debug!(id, %peer, "accepted");
        let hang_up = shared.sockets.insert();
        let Some(handshake) = shared.pending.admit(id, &hang_up, &shared.shutdown).await else {
            return;
        };
        alive.spawn(connection::serve(
            stream,
            id,
            handshake,
            Arc::clone(shared),
            hang_up,
        ));
    }
}
