//! The accept loop, and the limits it enforces.
//!
//! One task accepts. Before each accept it takes a handshake slot
//! (`--max-pending-handshakes`); while none is free it does not accept, and
//! new clients wait in the kernel's backlog. This bounds the tasks that
//! unfinished handshakes hold. Each accepted connection gets its own task at
//! once, which does the handshake and then reads.

use std::io;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use chat_protocol::config::LISTEN_BACKLOG;
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
    let mut backoff = Duration::from_millis(1);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&shared.handshakes).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => return,
            },
            () = shared.shutdown.signal() => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.signal() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before we
                // took it: back off a little and go on.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(1);
        next_id += 1;
        let id = next_id;
        tracing::debug!(id, %peer, "accepted");
        let hang_up = shared.sockets.insert();
        let task_shared = Arc::clone(shared);
        alive.spawn(async move {
            connection::serve(stream, id, slot, &task_shared, hang_up).await;
        });
    }
}
