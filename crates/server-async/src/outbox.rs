//! A connection's queues to its writer task, all bounded.
//!
//! * `frames` (capacity `--outbox-capacity`, plus the replay queued in it at
//!   join with `--history`): chat frames from the room. The
//!   room pushes without blocking; a full queue gets the member closed with
//!   1013 (see `chat_protocol::rooms`).
//! * `control` (capacity `CONTROL_CAPACITY`): from the connection's own
//!   reader task: pongs, error replies, close requests. The reader waits
//!   when it is full, which stops it reading: backpressure on its client.
//! * `close` (capacity 1): the room's or the shutdown's request to close now,
//!   ahead of anything queued. A second request while one is pending is moot.

use chat_protocol::close::CloseReason;
use chat_protocol::config::CONTROL_CAPACITY;
use chat_protocol::rooms::{self, PushError};
use chat_protocol::session::Control;
use chat_protocol::tungstenite::Utf8Bytes;
use tokio::sync::mpsc::{self, Receiver, Sender, error::TrySendError};

/// The room's handle on a connection's queues.
pub struct Outbox {
    frames: Sender<Utf8Bytes>,
    close: Sender<CloseReason>,
}

/// The writer's ends of the queues.
pub struct Inbox {
    /// Chat frames from the room.
    pub frames: Receiver<Utf8Bytes>,
    /// Requests from the connection's reader.
    pub control: Receiver<Control>,
    /// Close requests from the room or the shutdown.
    pub close: Receiver<CloseReason>,
}

/// Makes a connection's queues: the room's outbox, the reader's control
/// sender, and the writer's inbox.
pub fn outbox(capacity: usize) -> (Outbox, Sender<Control>, Inbox) {
    let (frames, frames_rx) = mpsc::channel(capacity);
    let (control, control_rx) = mpsc::channel(CONTROL_CAPACITY);
    let (close, close_rx) = mpsc::channel(1);
    let inbox = Inbox {
        frames: frames_rx,
        control: control_rx,
        close: close_rx,
    };
    (Outbox { frames, close }, control, inbox)
}

impl rooms::Outbox for Outbox {
    fn try_push(&self, frame: Utf8Bytes) -> Result<(), PushError> {
        self.frames.try_send(frame).map_err(|error| match error {
            TrySendError::Full(_) => PushError::Full,
            TrySendError::Closed(_) => PushError::Gone,
        })
    }

    fn close(&self, reason: CloseReason) {
        // Full means a close is already pending; closed means the writer is
        // gone. Either way there is nothing more to do.
        let _ = self.close.try_send(reason);
    }
}
