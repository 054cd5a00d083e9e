//! The writer thread: writes what the room could not write at once, and
//! everything else the connection sends.
//!
//! A blocking socket cannot wait for reading and writing at once, so each
//! connection has two threads: the reader (blocked in `read`) and this
//! writer (blocked on its queues, or in `write`). Every byte after the
//! handshake but the chat frames the room writes itself (see `outbox`)
//! leaves through here, pongs and close frames included; the write gate
//! keeps the two from interleaving.
//!
//! Frames arrive formatted ([`WireFrame`]: a chat frame is formatted once per
//! message, for every member), and the writer writes their bytes as they are.
//! Batching: after the first frame, the writer takes up to
//! `--max-batch-frames` that are already queued (and up to
//! `--write-buffer-bytes`), and writes them with one vectored `write`.

use std::io::{self, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use chat_protocol::close::CloseReason;
use chat_protocol::config::{CLOSE_TIMEOUT, Writing};
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_protocol::wire::{Gather, WireFrame};
use crossbeam_channel::{RecvTimeoutError, select};

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

/// The writer's socket (shared with the reader, and with the room for
/// writes that skip the queue: one descriptor per connection), and the batch
/// it is writing.
struct Socket {
    stream: Arc<TcpStream>,
    direct: Arc<Direct>,
    gather: Gather,
    writing: Writing,
}

impl Socket {
    /// Writes one frame of the writer's own (a control frame) now.
    fn send(&mut self, frame: WireFrame) -> io::Result<()> {
        let _hold = self.direct.gate.writer();
        self.gather.push(frame);
        write_gathered(&self.stream, &mut self.gather)
    }

    /// Writes `first`, then as many of the frames already queued as the
    /// batch limits allow, in as few `write`s as the socket takes them.
    fn send_batch(
        &mut self,
        first: WireFrame,
        queued: impl Iterator<Item = WireFrame>,
    ) -> io::Result<()> {
        let Self {
            stream,
            direct,
            gather,
            writing,
        } = self;
        let hold = direct.gate.writer();
        gather.push(first);
        for frame in queued.take(writing.batch_frames - 1) {
            gather.push(frame);
            if gather.bytes() >= writing.batch_bytes {
                break;
            }
        }
        let (frames, bytes) = (gather.frames(), gather.bytes());
        write_gathered(stream, gather)?;
        hold.written(frames);
        direct.queued.release(bytes);
        Ok(())
    }
}

/// Writes the whole batch, blocking while the socket is full.
fn write_gathered(stream: &TcpStream, gather: &mut Gather) -> io::Result<()> {
    while !gather.is_done() {
        match gather.with_slices(|slices| (&*stream).write_vectored(slices)) {
            Ok(0) => {
                gather.clear();
                return Err(io::ErrorKind::WriteZero.into());
            }
            Ok(written) => gather.advance(written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                gather.clear();
                return Err(error);
            }
        }
    }
    gather.clear();
    Ok(())
}

/// Runs the writer until the connection is over, then hangs up the socket.
pub(crate) fn run(stream: Arc<TcpStream>, inbox: Inbox, writing: Writing) {
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
    let end = match serve(&mut socket, &inbox) {
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
    // Nothing but the writer writes from now on: a close frame is the last.
    inbox.direct.gate.writer().close();
    if let Some(frame) = close {
        if let Err(error) = socket.send(WireFrame::close(frame)) {
            tracing::debug!(%error, "could not send the close frame");
        }
        // Nothing may follow a close frame: half-close now, so that a client
        // waiting for the server to end the TCP connection first (RFC 6455
        // 7.1.1) sees the end at once and closes its side.
        let _ = socket.stream.shutdown(Direction::Write);
        wait_for_reader(&inbox);
    }
    // Wakes the reader if it is still blocked, and ends the TCP connection
    // from our side first, as RFC 6455 asks of servers.
    let _ = socket.stream.shutdown(Direction::Both);
}

fn serve(socket: &mut Socket, inbox: &Inbox) -> io::Result<End> {
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
                Ok(Control::Pong(data)) => socket.send(WireFrame::pong(data))?,
                Ok(Control::Ping) => socket.send(WireFrame::ping())?,
                Ok(Control::Reply(text)) => socket.send(WireFrame::text(text))?,
                Ok(Control::Close(reason)) => return closing(socket, inbox, reason),
                Ok(Control::PeerClosed(frame)) => return Ok(End::PeerClosed(frame)),
                Err(_) => {
                    write_queued(socket, inbox)?;
                    return Ok(End::ReaderGone);
                }
            },
            recv(frames) -> frame => match frame {
                Ok(frame) => socket.send_batch(frame, frames.try_iter())?,
                Err(_) => frames = &no_frames,
            },
        }
    }
}

/// Ends the connection with `reason`: writes the frames still queued first,
/// unless the reason is that the client could not keep up with them.
fn closing(socket: &mut Socket, inbox: &Inbox, reason: CloseReason) -> io::Result<End> {
    if reason.sends_queued_frames_first() {
        write_queued(socket, inbox)?;
    }
    Ok(End::Close(reason))
}

/// Writes the frames already queued. When the reader is gone without a
/// close handshake (the client half-closed its socket, or vanished), these
/// are what it was sent before: a half-closed client can still read them.
fn write_queued(socket: &mut Socket, inbox: &Inbox) -> io::Result<()> {
    while let Ok(frame) = inbox.frames.try_recv() {
        socket.send_batch(frame, inbox.frames.try_iter())?;
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
