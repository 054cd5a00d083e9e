//! The writer thread: the only code that writes to a connection's socket.
//!
//! tungstenite cannot split a blocking socket, so each connection has two
//! threads: the reader (blocked in `read`) and this writer (blocked on its
//! queues, or in `write`). Every byte after the handshake leaves through here,
//! pongs and close frames included, so frames never interleave.
//!
//! Batching: after the first frame, the writer takes up to `--max-batch-frames`
//! that are already queued, then flushes once: one `write` carries them all.

use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use chat_protocol::close::CloseReason;
use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::tungstenite::protocol::{CloseFrame, Role, WebSocket, WebSocketConfig};
use chat_protocol::tungstenite::{self, Bytes, Message};
use crossbeam_channel::{RecvTimeoutError, select};

use chat_protocol::session::Control;

use crate::outbox::Inbox;

/// The writer's side of the socket (shared with the reader: one descriptor
/// per connection). tungstenite's `WebSocket` wants a stream that reads too,
/// but the writer never reads (the reader thread does).
pub(crate) struct WriteHalf(pub(crate) Arc<TcpStream>);

impl Read for WriteHalf {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("the writer half never reads"))
    }
}

impl Write for WriteHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
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

/// Runs the writer until the connection is over, then hangs up the socket.
pub(crate) fn run(stream: Arc<TcpStream>, inbox: Inbox, config: WebSocketConfig, batch: usize) {
    let mut socket = // The writer never reads: no read buffer (tungstenite allocates
    // `read_buffer_size` bytes up front, per connection).
    WebSocket::from_raw_socket(WriteHalf(stream), Role::Server, Some(config.read_buffer_size(0)));
    let end = match serve(&mut socket, &inbox, batch) {
        Ok(end) => end,
        Err(error) => {
            tracing::debug!(%error, "write failed");
            End::ReaderGone
        }
    };
    let close = match end {
        End::Close(reason) => Some(Some(reason.frame())),
        End::PeerClosed(frame) => Some(frame),
        End::ReaderGone => None,
    };
    if let Some(frame) = close {
        if let Err(error) = socket.close(frame) {
            tracing::debug!(%error, "could not send the close frame");
        }
        // Nothing may follow a close frame: half-close now, so that a client
        // waiting for the server to end the TCP connection first (RFC 6455
        // 7.1.1) sees the end at once and closes its side.
        let _ = socket.get_ref().0.shutdown(Direction::Write);
        wait_for_reader(&inbox);
    }
    // Wakes the reader if it is still blocked, and ends the TCP connection
    // from our side first, as RFC 6455 asks of servers.
    let _ = socket.get_ref().0.shutdown(Direction::Both);
}

fn serve(
    socket: &mut WebSocket<WriteHalf>,
    inbox: &Inbox,
    batch: usize,
) -> tungstenite::Result<End> {
    let (no_frames, no_close) = (crossbeam_channel::never(), crossbeam_channel::never());
    let mut frames = &inbox.frames;
    let mut close = &inbox.close;
    loop {
        // A pending close goes first, ahead of queued frames.
        if let Ok(reason) = close.try_recv() {
            return closing(socket, inbox, reason);
        }
        select! {
            recv(close) -> reason => match reason {
                Ok(reason) => return closing(socket, inbox, reason),
                // The room let go of us (we left it): keep serving control.
                Err(_) => close = &no_close,
            },
            recv(inbox.control) -> control => match control {
                Ok(Control::Pong(data)) => socket.write(Message::Pong(data))?,
                Ok(Control::Ping) => socket.write(Message::Ping(Bytes::new()))?,
                Ok(Control::Reply(text)) => socket.write(Message::Text(text))?,
                Ok(Control::Close(reason)) => return closing(socket, inbox, reason),
                Ok(Control::PeerClosed(frame)) => return Ok(End::PeerClosed(frame)),
                Err(_) => {
                    write_queued(socket, inbox)?;
                    socket.flush()?;
                    return Ok(End::ReaderGone);
                }
            },
            recv(frames) -> frame => match frame {
                Ok(frame) => {
                    socket.write(Message::Text(frame))?;
                    for frame in frames.try_iter().take(batch - 1) {
                        socket.write(Message::Text(frame))?;
                    }
                }
                Err(_) => frames = &no_frames,
            },
        }
        socket.flush()?;
    }
}

/// Ends the connection with `reason`: writes the frames still queued first,
/// unless the reason is that the client could not keep up with them.
fn closing(
    socket: &mut WebSocket<WriteHalf>,
    inbox: &Inbox,
    reason: CloseReason,
) -> tungstenite::Result<End> {
    if reason.sends_queued_frames_first() {
        write_queued(socket, inbox)?;
    }
    Ok(End::Close(reason))
}

/// Writes the frames already queued. When the reader is gone without a
/// close handshake (the client half-closed its socket, or vanished), these
/// are what it was sent before: a half-closed client can still read them.
fn write_queued(socket: &mut WebSocket<WriteHalf>, inbox: &Inbox) -> tungstenite::Result<()> {
    for frame in inbox.frames.try_iter() {
        socket.write(Message::Text(frame))?;
    }
    Ok(())
}

/// After our close frame, waits (bounded) for the reader to see the client's
/// answer and finish.
fn wait_for_reader(inbox: &Inbox) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        match inbox.control.recv_deadline(deadline) {
            Ok(_) => continue,
            Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => return,
        }
    }
}
