//! The accept loop, and the limits it enforces.
//!
//! One task accepts. An accepted connection whose address holds
//! `--max-connections-per-ip` already, or opens them faster than
//! `--max-handshakes-per-ip-per-sec` (`chat_protocol::per_ip`), is refused
//! with 429 at once, from this task, before it can take anything else.
//! Each other connection takes a handshake slot
//! (`--max-pending-handshakes`, the `pending` module): a free one, or one
//! taken from the oldest handshake still silent, or the first to come free,
//! while later clients wait in the kernel's backlog. This bounds the tasks
//! that unfinished handshakes hold. The connection then gets its own task,
//! which does the handshake and then reads.

use std::io;
use std::net::{Shutdown, ToSocketAddrs};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use chat_protocol::config::{AcceptBackoff, LISTEN_BACKLOG};
use chat_protocol::route::Refusal;
use rustix::net::{SendFlags, send};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

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
        let ip_slot = match shared.per_ip.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(id, %peer, %refusal, "refused");
                refuse_at_once(&stream, &refusal);
                continue;
            }
        };
        let hang_up = shared.sockets.insert();
        let Some(handshake) = shared.pending.admit(id, &hang_up, &shared.shutdown).await else {
            return;
        };
        alive.spawn(connection::serve(
            stream,
            id,
            handshake,
            ip_slot,
            Arc::clone(shared),
            hang_up,
        ));
    }
}

/// Refuses a client from the accept loop, which must not wait: one `send`
/// that cannot wait (the response fits in the new socket's empty buffer),
/// then our side closed. The same call as tokio's `try_write`, without its
/// readiness check, which a socket just accepted has not passed yet. The
/// client's request is not read, so closing may reset the connection after
/// the response (the client reads the response first).
fn refuse_at_once(stream: &TcpStream, refusal: &Refusal) {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    let _ = send(stream, &refusal.response().bytes, flags);
    let _ = SockRef::from(stream).shutdown(Shutdown::Write);
}
