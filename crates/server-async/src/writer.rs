//! The writer task: the only code that writes to a connection's socket.
//!
//! Each connection has two tasks, mirroring the sync server's two threads:
//! the reader (waiting in `read`) and this writer (waiting on its queues, or
//! in `write`). Every byte after the handshake leaves through here, pongs and
//! close frames included, so frames never interleave.
//!
//! Batching: after the first frame, the writer takes up to `--max-batch-frames`
//! that are already queued, then flushes once: one `write` carries them all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use chat_protocol::close::CloseReason;
use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use chat_protocol::tungstenite::{self, Bytes, Message};
use futures_util::{FutureExt, SinkExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use chat_protocol::session::Control;

use crate::outbox::Inbox;

/// The writer's side of the socket: tokio-tungstenite's `WebSocketStream`
/// wants a stream that reads too, but the writer never reads (the reader
/// task does).
pub(crate) struct WriteHalf(pub(crate) OwnedWriteHalf);

impl AsyncRead for WriteHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::other("the writer half never reads")))
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// How the writer's main loop ended.
enum End {
    /// We close, for this reason.
    Close(CloseReason),
    /// The client closed: echo its close frame.
    PeerClosed(Option<CloseFrame>),
    /// The reader is gone without a close handshake (peer vanished).
    ReaderGone,
}

type Socket = WebSocketStream<WriteHalf>;

/// Runs the writer until the connection is over, then hangs up.
pub(crate) async fn run(
    stream: OwnedWriteHalf,
    mut inbox: Inbox,
    config: WebSocketConfig,
    write_timeout: Duration,
    batch: usize,
    hang_up: CancellationToken,
) {
    // The writer never reads: no read buffer (tungstenite allocates
    // `read_buffer_size` bytes up front, per connection).
    let config = config.read_buffer_size(0);
    let mut socket =
        WebSocketStream::from_raw_socket(WriteHalf(stream), Role::Server, Some(config)).await;
    let bounds = Bounds {
        write_timeout,
        hang_up: &hang_up,
    };
    let end = serve(&mut socket, &mut inbox, batch, &bounds).await;
    let end = end.unwrap_or_else(|error| {
        tracing::debug!(%error, "write failed");
        End::ReaderGone
    });
    let close = match end {
        End::Close(reason) => Some(Some(reason.frame())),
        End::PeerClosed(frame) => Some(frame),
        End::ReaderGone => None,
    };
    if let Some(frame) = close {
        if let Err(error) = bounds.write(socket.close(frame)).await {
            tracing::debug!(%error, "could not send the close frame");
        }
        // Nothing may follow a close frame: half-close now, so that a client
        // waiting for the server to end the TCP connection first (RFC 6455
        // 7.1.1) sees the end at once and closes its side.
        let _ = socket.get_mut().0.shutdown().await;
        wait_for_reader(&mut inbox).await;
    }
    // Wakes the reader if it is still waiting; dropping the socket ends the
    // TCP connection from our side first, as RFC 6455 asks of servers.
    hang_up.cancel();
}

async fn serve(
    socket: &mut Socket,
    inbox: &mut Inbox,
    batch: usize,
    bounds: &Bounds<'_>,
) -> tungstenite::Result<End> {
    let mut close_open = true;
    let mut frames_open = true;
    loop {
        // A pending close goes first, ahead of queued frames.
        tokio::select! {
            biased;
            reason = inbox.close.recv(), if close_open => match reason {
                Some(reason) => return closing(socket, inbox, reason, bounds).await,
                // The room let go of us (we left it): keep serving control.
                None => close_open = false,
            },
            control = inbox.control.recv() => match control {
                Some(Control::Pong(data)) => feed(socket, Message::Pong(data), bounds).await?,
                Some(Control::Ping) => feed(socket, Message::Ping(Bytes::new()), bounds).await?,
                Some(Control::Reply(text)) => feed(socket, Message::Text(text), bounds).await?,
                Some(Control::Close(reason)) => return closing(socket, inbox, reason, bounds).await,
                Some(Control::PeerClosed(frame)) => return Ok(End::PeerClosed(frame)),
                None => {
                    write_queued(socket, inbox, bounds).await?;
                    bounds.write(socket.flush()).await?;
                    return Ok(End::ReaderGone);
                }
            },
            frame = inbox.frames.recv(), if frames_open => match frame {
                Some(frame) => {
                    feed(socket, Message::Text(frame), bounds).await?;
                    for _ in 1..batch {
                        let Ok(frame) = inbox.frames.try_recv() else { break };
                        feed(socket, Message::Text(frame), bounds).await?;
                    }
                }
                None => frames_open = false,
            },
        }
        bounds.write(socket.flush()).await?;
    }
}

/// What cuts a write short: the write timeout, and a hang-up (the reader
/// is gone, or the shutdown's deadline passed).
struct Bounds<'a> {
    write_timeout: Duration,
    hang_up: &'a CancellationToken,
}

impl Bounds<'_> {
    /// Runs one write operation within the bounds. This is the writer's hot
    /// path: an operation that completes at once, as a write to a socket with
    /// room in its buffer does, reads no clock and never touches the hang-up
    /// token (each poll of which takes a lock); only one that has to wait
    /// gets the timeout and the hang-up.
    async fn write(
        &self,
        operation: impl Future<Output = tungstenite::Result<()>>,
    ) -> tungstenite::Result<()> {
        let mut operation = std::pin::pin!(operation);
        if let Some(done) = operation.as_mut().now_or_never() {
            return done;
        }
        tokio::select! {
            biased;
            done = timeout(self.write_timeout, operation) => match done {
                Ok(done) => done,
                Err(_elapsed) => Err(io_error(io::ErrorKind::TimedOut, "write timed out")),
            },
            () = self.hang_up.cancelled() => Err(io_error(io::ErrorKind::ConnectionAborted, "hung up")),
        }
    }
}

/// Queues `message` in the write buffer (writing to the socket only if the
/// buffer is full), within the bounds.
async fn feed(
    socket: &mut Socket,
    message: Message,
    bounds: &Bounds<'_>,
) -> tungstenite::Result<()> {
    bounds.write(socket.feed(message)).await
}

fn io_error(kind: io::ErrorKind, what: &str) -> tungstenite::Error {
    tungstenite::Error::Io(io::Error::new(kind, what.to_owned()))
}

/// Ends the connection with `reason`: writes the frames still queued first,
/// unless the reason is that the client could not keep up with them.
async fn closing(
    socket: &mut Socket,
    inbox: &mut Inbox,
    reason: CloseReason,
    bounds: &Bounds<'_>,
) -> tungstenite::Result<End> {
    if reason.sends_queued_frames_first() {
        write_queued(socket, inbox, bounds).await?;
    }
    Ok(End::Close(reason))
}

/// Writes the frames already queued. When the reader is gone without a
/// close handshake (the client half-closed its socket, or vanished), these
/// are what it was sent before: a half-closed client can still read them.
async fn write_queued(
    socket: &mut Socket,
    inbox: &mut Inbox,
    bounds: &Bounds<'_>,
) -> tungstenite::Result<()> {
    while let Ok(frame) = inbox.frames.try_recv() {
        feed(socket, Message::Text(frame), bounds).await?;
    }
    Ok(())
}

/// After our close frame, waits (bounded) for the reader to see the client's
/// answer and finish.
async fn wait_for_reader(inbox: &mut Inbox) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while let Ok(Some(_)) = timeout_at(deadline, inbox.control.recv()).await {}
}
