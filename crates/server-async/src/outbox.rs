//! A connection's queues to its writer task, all bounded.
//!
//! * `frames` (capacity `--outbox-capacity` frames and `--outbox-bytes`,
//!   plus the replay queued in it at join with `--history`, and within the
//!   server's `--max-queued-bytes`: `chat_protocol::queued`): chat frames
//!   from the room. The room pushes without blocking; a full queue gets the
//!   member closed with 1013 (see `chat_protocol::rooms`).
//! * `control` (capacity `CONTROL_CAPACITY`): from the connection's own
//!   reader task: pongs, error replies, close requests. The reader waits
//!   when it is full, which stops it reading: backpressure on its client.
//! * `close` (one reason, and a `Notify`): the room's or the shutdown's
//!   request to close now, ahead of anything queued. The first request
//!   stands; a later one is moot. (Not a channel: tokio's allocates a block
//!   of 32 slots and a 512-byte header up front, 1.5 KiB of every
//!   connection for a message sent at most once.)
//!
//! Over the server's budget, the connection with the largest queue is
//! evicted: asked to close with 1013, and hung up on (`shutdown(2)`), which
//! ends a writer waiting for room in the socket at once, and with it the
//! queue.
//!
//! A chat frame skips the queue when it can: with nothing queued and nobody
//! writing, the room writes it to the socket itself with a `send` that
//! cannot wait (`MSG_DONTWAIT`), from the task that broadcasts, and the
//! member's writer task is not woken (`chat_protocol::gate`).

use std::io;
use std::net::Shutdown as Direction;
use std::sync::{Arc, OnceLock, Weak};

use chat_protocol::close::CloseReason;
use chat_protocol::config::CONTROL_CAPACITY;
use chat_protocol::gate::WriteGate;
use chat_protocol::queued::{Evict, OutboxLimits, QueuedBytes};
use chat_protocol::rooms::{self, PushError};
use chat_protocol::session::Control;
use chat_protocol::wire::{WireFrame, WireFrames};
use rustix::net::{SendFlags, send};
use socket2::SockRef;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio::sync::mpsc::{self, Receiver, Sender, error::TrySendError};

/// The room's handle on a connection's queues.
pub struct Outbox {
    frames: Sender<WireFrame>,
    direct: Arc<Direct>,
}

/// The writer's ends of the queues.
pub struct Inbox {
    /// Chat frames from the room.
    pub frames: Receiver<WireFrame>,
    /// Requests from the connection's reader.
    pub control: Receiver<Control>,
    /// The socket's write gate, and the close request, shared with the
    /// room's handle.
    pub(crate) direct: Arc<Direct>,
}

/// What the room needs to write straight to the socket, or to have the
/// connection closed.
pub(crate) struct Direct {
    /// Who may write now.
    pub(crate) gate: WriteGate,
    /// The socket, set by the writer before it opens the gate.
    pub(crate) socket: OnceLock<Arc<OwnedWriteHalf>>,
    /// Bytes queued in `frames`, and in the batch being written.
    pub(crate) queued: QueuedBytes,
    /// The room's or the shutdown's request to close, the first one.
    close: OnceLock<CloseReason>,
    /// Wakes the writer for `close` (keeping the wake-up if it is busy).
    closing: Notify,
}

impl Direct {
    /// Waits for a request to close, and returns its reason.
    pub(crate) async fn close_requested(&self) -> CloseReason {
        loop {
            if let Some(reason) = self.close.get() {
                return *reason;
            }
            self.closing.notified().await;
        }
    }

    /// Asks the writer to close with `reason`, ahead of queued frames.
    fn close(&self, reason: CloseReason) {
        // A close already requested stands.
        if self.close.set(reason).is_ok() {
            self.closing.notify_one();
        }
    }
}

impl Evict for Direct {
    fn queued(&self) -> &QueuedBytes {
        &self.queued
    }

    fn evict(&self) {
        self.close(CloseReason::SlowConsumer);
        if let Some(socket) = self.socket.get() {
            let stream: &TcpStream = socket.as_ref().as_ref();
            let _ = SockRef::from(stream).shutdown(Direction::Both);
        }
    }
}

/// Makes a connection's queues, within `limits`: the room's outbox, the
/// reader's control sender, and the writer's inbox.
pub fn outbox(limits: &OutboxLimits) -> (Outbox, Sender<Control>, Inbox) {
    let (frames, frames_rx) = mpsc::channel(limits.frames);
    let (control, control_rx) = mpsc::channel(CONTROL_CAPACITY);
    let direct = Arc::new(Direct {
        gate: WriteGate::default(),
        socket: OnceLock::new(),
        queued: QueuedBytes::new(limits.bytes, &limits.budget),
        close: OnceLock::new(),
        closing: Notify::new(),
    });
    limits
        .budget
        .register(Arc::downgrade(&direct) as Weak<dyn Evict>);
    let inbox = Inbox {
        frames: frames_rx,
        control: control_rx,
        direct: Arc::clone(&direct),
    };
    (Outbox { frames, direct }, control, inbox)
}

impl Outbox {
    /// Queues `frames` for the writer task, one entry each.
    fn queue(&self, frames: impl Iterator<Item = WireFrame>) -> Result<(), PushError> {
        for frame in frames {
            let bytes = frame.len();
            self.direct.queued.reserve(bytes)?;
            self.direct.gate.queueing();
            self.frames.try_send(frame).map_err(|error| {
                self.direct.gate.not_queued();
                self.direct.queued.release(bytes);
                match error {
                    TrySendError::Full(_) => PushError::Full,
                    TrySendError::Closed(_) => PushError::Gone,
                }
            })?;
        }
        Ok(())
    }
}

impl rooms::Outbox for Outbox {
    /// Writes `frames` to the socket at once when nothing is queued and the
    /// socket takes them without waiting; otherwise queues them (or their
    /// rest) for the writer task, which this wakes.
    fn try_push(&self, frames: &WireFrames) -> Result<(), PushError> {
        let Some(_direct) = self.direct.gate.try_direct() else {
            return self.queue(frames.frames());
        };
        let Some(socket) = self.direct.socket.get() else {
            return self.queue(frames.frames());
        };
        match send_now(socket, frames.as_bytes()) {
            Ok(written) if written == frames.len() => Ok(()),
            // The rest is queued while the gate is still held: nothing can
            // come between the two parts.
            Ok(written) => self.queue(frames.rest(written)),
            // Full socket buffer, or a broken connection: the writer waits
            // for room, or meets the error and ends the connection.
            Err(_) => self.queue(frames.frames()),
        }
    }

    fn close(&self, reason: CloseReason) {
        self.direct.close(reason);
    }
}

/// One `send` that returns at once, with what the socket's buffer took.
/// The same call tokio's `try_write` makes, without tokio's readiness
/// bookkeeping: a readiness check first (a cache miss per member of a large
/// room, 7% of the server's CPU in a profile of 1,000 members), and on a
/// full buffer a cleared readiness, which the writer's own `try_write`
/// clears in its turn before it waits.
fn send_now(socket: &OwnedWriteHalf, bytes: &[u8]) -> io::Result<usize> {
    let socket: &TcpStream = socket.as_ref();
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    send(socket, bytes, flags).map_err(io::Error::from)
}
