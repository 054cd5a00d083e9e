//! A connection's queues to its writer thread, all bounded.
//!
//! * `frames` (capacity `--outbox-capacity` frames and `--outbox-bytes`,
//!   plus the replay queued in it at join with `--history`, and within the
//!   server's `--max-queued-bytes`: `chat_protocol::queued`): chat frames
//!   from the room. The room pushes without blocking; a full queue gets the
//!   member closed with 1013 (see `chat_protocol::rooms`). The bound is checked here, on a
//!   channel that allocates as it fills (crossbeam's list channel, blocks of
//!   31): crossbeam's bounded channel allocates, and stamps, every slot up
//!   front, which at 1,024 slots was 40 KiB of every connection's memory,
//!   idle or not. (Pushes to one member come under its room's lock, so the
//!   check and the push are not raced.)
//! * `control` (capacity `CONTROL_CAPACITY`): from the connection's own
//!   reader thread: pongs, error replies, close requests. The reader blocks
//!   when it is full, which stops it reading: backpressure on its client.
//! * `close` (capacity 1): the room's or the shutdown's request to close now,
//!   ahead of anything queued. A second request while one is pending is moot.
//!
//! Over the server's budget, the connection with the largest queue is
//! evicted: asked to close with 1013, and hung up on (`shutdown(2)`), which
//! ends a writer blocked in `write` at once, and with it the queue.
//!
//! A chat frame skips the queue when it can: with nothing queued and nobody
//! writing, the room writes it to the socket itself with one `send` that
//! cannot block (`MSG_DONTWAIT`), on the sending connection's thread, and
//! the member's writer thread is not woken (`chat_protocol::gate`). The
//! thread still blocks where its model says: the reader in `read`, the
//! writer in `write` once a backlog forms.

use std::io;
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::{Arc, OnceLock, Weak};

use chat_protocol::close::CloseReason;
use chat_protocol::config::CONTROL_CAPACITY;
use chat_protocol::gate::WriteGate;
use chat_protocol::queued::{Evict, OutboxLimits, QueuedBytes};
use chat_protocol::rooms::{self, PushError};
use chat_protocol::session::Control;
use chat_protocol::wire::{WireFrame, WireFrames};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use rustix::net::{SendFlags, send};

/// The room's handle on a connection's queues.
pub struct Outbox {
    frames: Sender<WireFrame>,
    /// Most frames `frames` holds.
    capacity: usize,
    direct: Arc<Direct>,
}

/// The writer's ends of the queues.
pub struct Inbox {
    /// Chat frames from the room.
    pub frames: Receiver<WireFrame>,
    /// Requests from the connection's reader.
    pub control: Receiver<Control>,
    /// Close requests from the room or the shutdown.
    pub close: Receiver<CloseReason>,
    /// The socket's write gate, shared with the room's handle.
    pub(crate) direct: Arc<Direct>,
}

/// What the room needs to write straight to the socket, or to have the
/// connection closed.
pub(crate) struct Direct {
    /// Who may write now.
    pub(crate) gate: WriteGate,
    /// The socket, set by the writer before it opens the gate.
    pub(crate) socket: OnceLock<Arc<TcpStream>>,
    /// Bytes queued in `frames`, and in the batch being written.
    pub(crate) queued: QueuedBytes,
    /// The room's or the shutdown's request to close.
    close: Sender<CloseReason>,
}

impl Direct {
    /// Asks the writer to close with `reason`, ahead of queued frames.
    fn close(&self, reason: CloseReason) {
        // Full means a close is already pending; disconnected means the
        // writer is gone. Either way there is nothing more to do.
        let _ = self.close.try_send(reason);
    }
}

impl Evict for Direct {
    fn queued(&self) -> &QueuedBytes {
        &self.queued
    }

    fn evict(&self) {
        self.close(CloseReason::SlowConsumer);
        if let Some(socket) = self.socket.get() {
            let _ = socket.shutdown(Direction::Both);
        }
    }
}

/// Makes a connection's queues, within `limits`: the room's outbox, the
/// reader's control sender, and the writer's inbox.
pub fn outbox(limits: &OutboxLimits) -> (Outbox, Sender<Control>, Inbox) {
    let (frames, frames_rx) = crossbeam_channel::unbounded();
    let (control, control_rx) = crossbeam_channel::bounded(CONTROL_CAPACITY);
    let (close, close_rx) = crossbeam_channel::bounded(1);
    let direct = Arc::new(Direct {
        gate: WriteGate::default(),
        socket: OnceLock::new(),
        queued: QueuedBytes::new(limits.bytes, &limits.budget),
        close,
    });
    limits
        .budget
        .register(Arc::downgrade(&direct) as Weak<dyn Evict>);
    let inbox = Inbox {
        frames: frames_rx,
        control: control_rx,
        close: close_rx,
        direct: Arc::clone(&direct),
    };
    (
        Outbox {
            frames,
            capacity: limits.frames,
            direct,
        },
        control,
        inbox,
    )
}

impl Outbox {
    /// Queues `frames` for the writer thread, one entry each.
    fn queue(&self, frames: impl Iterator<Item = WireFrame>) -> Result<(), PushError> {
        for frame in frames {
            if self.frames.len() >= self.capacity {
                return Err(PushError::Full);
            }
            let bytes = frame.len();
            self.direct.queued.reserve(bytes)?;
            self.direct.gate.queueing();
            self.frames.try_send(frame).map_err(|error| {
                self.direct.gate.not_queued();
                self.direct.queued.release(bytes);
                match error {
                    TrySendError::Full(_) => PushError::Full,
                    TrySendError::Disconnected(_) => PushError::Gone,
                }
            })?;
        }
        Ok(())
    }
}

impl rooms::Outbox for Outbox {
    /// Writes `frames` to the socket at once when nothing is queued and the
    /// socket takes them without blocking; otherwise queues them (or their
    /// rest) for the writer thread, which this wakes.
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
fn send_now(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    send(socket, bytes, flags).map_err(io::Error::from)
}
