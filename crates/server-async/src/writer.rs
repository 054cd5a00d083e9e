//! The writer task: writes what the room could not write at once, and
//! everything else the connection sends.
//!
//! Each connection has two tasks, mirroring the sync server's two threads:
//! the reader (waiting in `read`) and this writer (waiting on its queues, or
//! in `write`). Every byte after the handshake but the chat frames the room
//! writes itself (see `outbox`) leaves through here, pongs and close frames
//! included; the write gate keeps the two from interleaving.
//!
//! Frames arrive formatted ([`WireFrame`]: a chat frame is formatted once per
//! message, for every member), and the writer writes their bytes as they are.
//! Batching: after the first frame, the writer takes up to
//! `--max-batch-frames` that are already queued (and up to
//! `--write-buffer-bytes`), and writes them with one vectored `write`.

use std::io;
use std::net::Shutdown as Direction;
use std::sync::Arc;
use std::time::Duration;

use chat_protocol::close::CloseReason;
use chat_protocol::config::{CLOSE_TIMEOUT, Writing};
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_protocol::wire::{Gather, WireFrame};
use futures_util::FutureExt;
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};
use tokio_util::sync::CancellationToken;

use chat_protocol::session::Control;

use crate::outbox::{Direct, Inbox};

/// How the writer's main loop ended.
enum End {
    /// We close, for this reason.
    Close(CloseReason),
    /// The client closed: echo its close frame.
    PeerClosed(Option<CloseFrame>),
    /// The reader is gone without a close handshake (peer vanished).
    ReaderGone,
}

/// The writer's half of the socket (shared with the room for writes that
/// skip the queue), and the batch it is writing.
struct Socket {
    stream: Arc<OwnedWriteHalf>,
    direct: Arc<Direct>,
    gather: Gather,
    writing: Writing,
}

impl Socket {
    /// Writes one frame of the writer's own (a control frame) now.
    async fn send(&mut self, frame: WireFrame) -> io::Result<()> {
        let _hold = self.direct.gate.writer();
        self.gather.push(frame);
        write_gathered(&self.stream, &mut self.gather).await
    }

    /// Writes `first`, then as many of the frames already queued as the
    /// batch limits allow, in as few `write`s as the socket takes them.
    async fn send_batch(&mut self, first: WireFrame, inbox: &mut Inbox) -> io::Result<()> {
        let Self {
            stream,
            direct,
            gather,
            writing,
        } = self;
        let hold = direct.gate.writer();
        gather.push(first);
        while gather.frames() < writing.batch_frames && gather.bytes() < writing.batch_bytes {
            let Ok(frame) = inbox.frames.try_recv() else {
                break;
            };
            gather.push(frame);
        }
        let (frames, bytes) = (gather.frames(), gather.bytes());
        write_gathered(stream, gather).await?;
        hold.written(frames);
        direct.queued.release(bytes);
        Ok(())
    }
}

/// Writes the whole batch, waiting for room while the socket is full.
async fn write_gathered(stream: &OwnedWriteHalf, gather: &mut Gather) -> io::Result<()> {
    while !gather.is_done() {
        match gather.with_slices(|slices| stream.try_write_vectored(slices)) {
            Ok(0) => {
                gather.clear();
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(written) => gather.advance(written),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if let Err(error) = stream.writable().await {
                    gather.clear();
                    return Err(error);
                }
            }
            Err(error) => {
                gather.clear();
                return Err(error);
            }
        }
    }
    gather.clear();
    Ok(())
}

/// Spawns the writer task. (Not an `async fn`: the writer's future would
/// then be kept, at its full size, in the caller's.)
pub(crate) fn spawn(
    stream: Arc<OwnedWriteHalf>,
    inbox: Inbox,
    write_timeout: Duration,
    writing: Writing,
    hang_up: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(run(stream, inbox, write_timeout, writing, hang_up))
}

/// Runs the writer until the connection is over, then hangs up.
async fn run(
    stream: Arc<OwnedWriteHalf>,
    mut inbox: Inbox,
    write_timeout: Duration,
    writing: Writing,
    hang_up: CancellationToken,
) {
    // From now on (the 101 is written), the room may write to the socket
    // itself when nothing is queued.
    let _ = inbox.direct.socket.set(Arc::clone(&stream));
    if writing.direct {
        inbox.direct.gate.writer().open();
    }
    let mut socket = Socket {
        stream,
        direct: Arc::clone(&inbox.direct),
        gather: Gather::new(),
        writing,
    };
    let bounds = Bounds {
        write_timeout,
        hang_up: &hang_up,
    };
    let end = serve(&mut socket, &mut inbox, &bounds).await;
    let end = end.unwrap_or_else(|error| {
        tracing::debug!(%error, "write failed");
        End::ReaderGone
    });
    let close = match end {
        End::Close(reason) => Some(Some(reason.frame())),
        End::PeerClosed(frame) => Some(frame),
        End::ReaderGone => None,
    };
    // Nothing but the writer writes from now on: a close frame is the last.
    inbox.direct.gate.writer().close();
    if let Some(frame) = close {
        // The closing futures are boxed, here and in `serve`: they run once,
        // and inline they would sit at full size in every writer's task.
        if let Err(error) = Box::pin(bounds.write(socket.send(WireFrame::close(frame)))).await {
            tracing::debug!(%error, "could not send the close frame");
        }
        // Nothing may follow a close frame: half-close now, so that a client
        // waiting for the server to end the TCP connection first (RFC 6455
        // 7.1.1) sees the end at once and closes its side.
        shutdown(&socket.stream, Direction::Write);
        Box::pin(wait_for_reader(&mut inbox)).await;
    }
    // Ends the TCP connection from our side first, as RFC 6455 asks of
    // servers, and wakes the reader if it is still waiting.
    shutdown(&socket.stream, Direction::Both);
    hang_up.cancel();
}

async fn serve(socket: &mut Socket, inbox: &mut Inbox, bounds: &Bounds<'_>) -> io::Result<End> {
    let mut frames_open = true;
    loop {
        // A pending close goes first, ahead of queued frames.
        tokio::select! {
            biased;
            reason = socket.direct.close_requested() => {
                return Box::pin(closing(socket, inbox, reason, bounds)).await;
            }
            control = inbox.control.recv() => match control {
                Some(Control::Pong(data)) => bounds.write(socket.send(WireFrame::pong(data))).await?,
                Some(Control::Ping) => bounds.write(socket.send(WireFrame::ping())).await?,
                Some(Control::Reply(text)) => bounds.write(socket.send(WireFrame::text(text))).await?,
                Some(Control::Close(reason)) => return Box::pin(closing(socket, inbox, reason, bounds)).await,
                Some(Control::PeerClosed(frame)) => return Ok(End::PeerClosed(frame)),
                None => {
                    Box::pin(write_queued(socket, inbox, bounds)).await?;
                    return Ok(End::ReaderGone);
                }
            },
            frame = inbox.frames.recv(), if frames_open => match frame {
                Some(frame) => bounds.write(socket.send_batch(frame, inbox)).await?,
                None => frames_open = false,
            },
        }
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
    async fn write(&self, operation: impl Future<Output = io::Result<()>>) -> io::Result<()> {
        let mut operation = std::pin::pin!(operation);
        if let Some(done) = operation.as_mut().now_or_never() {
            return done;
        }
        // Boxed: only a write that waits needs the timer and the token, and
        // inline they would sit in every writer's task.
        let cut_short = Box::pin(async {
            tokio::select! {
                biased;
                () = sleep(self.write_timeout) => io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
                () = self.hang_up.cancelled() => io::Error::new(io::ErrorKind::ConnectionAborted, "hung up"),
            }
        });
        tokio::select! {
            biased;
            done = operation => done,
            error = cut_short => Err(error),
        }
    }
}

/// Ends the connection with `reason`: writes the frames still queued first,
/// unless the reason is that the client could not keep up with them.
async fn closing(
    socket: &mut Socket,
    inbox: &mut Inbox,
    reason: CloseReason,
    bounds: &Bounds<'_>,
) -> io::Result<End> {
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
) -> io::Result<()> {
    while let Ok(frame) = inbox.frames.try_recv() {
        bounds.write(socket.send_batch(frame, inbox)).await?;
    }
    Ok(())
}

/// Shuts the socket down in `direction` (the write half is shared, so this
/// cannot wait for its drop).
fn shutdown(stream: &OwnedWriteHalf, direction: Direction) {
    let stream: &TcpStream = stream.as_ref();
    let _ = SockRef::from(stream).shutdown(direction);
}

/// After our close frame, waits (bounded) for the reader to see the client's
/// answer and finish.
async fn wait_for_reader(inbox: &mut Inbox) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while let Ok(Some(_)) = timeout_at(deadline, inbox.control.recv()).await {}
}
