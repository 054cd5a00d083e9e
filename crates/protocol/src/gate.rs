//! Who may write to a connection's socket: its writer, or the broadcast
//! itself when nothing is waiting.
//!
//! Handing every frame to a connection's writer (a thread, or a task) costs
//! a wake-up per delivery: a futex and a context switch for the sync server,
//! a task schedule for the async one, several microseconds of CPU where the
//! `write` itself takes three to six. When the member's queue is empty and
//! nobody is writing to its socket, the broadcast can write the frame itself
//! with a write that cannot block (`send` with `MSG_DONTWAIT`),
//! and queue only what the socket does not take at once; the writer then
//! runs only for a backlog, control frames and the close. Both servers keep
//! their model: the sync server's threads still block in `read` and in the
//! writer's `write`; the async server's tasks still wait on tokio.
//!
//! The order of a member's frames stays the room's order, because a frame
//! goes straight to the socket only when nothing is queued or being written
//! ([`WriteGate::try_direct`]), and a frame that goes only partly out has its
//! rest queued before the gate is released. The gate is closed until the
//! writer opens it, after the 101 response, so that nothing is written ahead
//! of the handshake (a joiner's replay and the messages of the meantime wait
//! in its queue), and closed for good before the close frame, after which
//! nothing may be written.
//!
//! This is bookkeeping only (two atomics); each server's `outbox` module does
//! the writing.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The gate is open: frames may go straight to the socket.
const OPEN: u8 = 1;
/// Someone is writing to the socket.
const BUSY: u8 = 2;

/// One connection's write gate. Shared by the room's outbox handle (which
/// pushes frames) and the connection's writer.
#[derive(Debug, Default)]
pub struct WriteGate {
    state: AtomicU8,
    /// Frames queued for the writer, or taken by it and not yet written.
    backlog: AtomicUsize,
}

impl WriteGate {
    /// A closed gate: every frame is queued until the writer opens it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The right to write one frame to the socket now, if the gate is open,
    /// nobody is writing, and nothing is queued. Never waits.
    pub fn try_direct(&self) -> Option<Direct<'_>> {
        if self.backlog.load(Ordering::Acquire) != 0 {
            return None;
        }
        self.state
            .compare_exchange(OPEN, OPEN | BUSY, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let direct = Direct { gate: self };
        // The writer may have taken a frame between the first look and the
        // exchange: it holds BUSY then, so the exchange failed; a frame
        // queued meanwhile comes from a push, and pushes to one member are
        // serialised by its room. Looking again costs nothing and keeps the
        // order without that argument.
        (self.backlog.load(Ordering::Acquire) == 0).then_some(direct)
    }

    /// A frame is about to be queued for the writer (call before sending it,
    /// so that the writer never sees a frame the backlog does not count).
    pub fn queueing(&self) {
        self.backlog.fetch_add(1, Ordering::AcqRel);
    }

    /// The frame announced by [`WriteGate::queueing`] could not be queued.
    pub fn not_queued(&self) {
        self.backlog.fetch_sub(1, Ordering::AcqRel);
    }

    /// The writer takes the socket: waits while a push is writing (one
    /// non-blocking write, so a few microseconds at most).
    pub fn writer(&self) -> Writer<'_> {
        let mut spins = 0u32;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & BUSY == 0
                && self
                    .state
                    .compare_exchange_weak(
                        state,
                        state | BUSY,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                return Writer { gate: self };
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Whether frames may go straight to the socket.
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) & OPEN != 0
    }

    /// Frames queued for the writer and not yet written.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Acquire)
    }
}

/// A push's right to write one frame; released when dropped. Whatever part
/// of the frame the socket does not take must be queued before the drop.
#[derive(Debug)]
pub struct Direct<'a> {
    gate: &'a WriteGate,
}

impl Drop for Direct<'_> {
    fn drop(&mut self) {
        self.gate.state.fetch_and(!BUSY, Ordering::Release);
    }
}

/// The writer's hold on the socket; released when dropped.
#[derive(Debug)]
pub struct Writer<'a> {
    gate: &'a WriteGate,
}

impl Writer<'_> {
    /// Lets pushes write straight to the socket from now on (after the 101
    /// response).
    pub fn open(&self) {
        self.gate.state.fetch_or(OPEN, Ordering::AcqRel);
    }

    /// Closes the gate for good: nothing but the writer writes from now on
    /// (before the close frame, or when the connection is over).
    pub fn close(&self) {
        self.gate.state.fetch_and(!OPEN, Ordering::AcqRel);
    }

    /// `frames` taken from the queue are written whole.
    pub fn written(&self, frames: usize) {
        self.gate.backlog.fetch_sub(frames, Ordering::AcqRel);
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.gate.state.fetch_and(!BUSY, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_queues_until_the_writer_opens_it() {
        let gate = WriteGate::new();
        assert!(gate.try_direct().is_none(), "closed until the 101");
        gate.writer().open();
        assert!(gate.try_direct().is_some());
        gate.writer().close();
        assert!(gate.try_direct().is_none(), "closed for good");
    }

    #[test]
    fn a_backlog_or_a_writer_at_work_sends_frames_to_the_queue() {
        let gate = WriteGate::new();
        gate.writer().open();
        gate.queueing();
        assert!(gate.try_direct().is_none(), "behind a queued frame");
        {
            let writer = gate.writer();
            assert!(gate.try_direct().is_none(), "while the writer writes");
            writer.written(1);
        }
        assert_eq!(gate.backlog(), 0);
        let direct = gate.try_direct().expect("idle, open, nothing queued");
        assert!(gate.try_direct().is_none(), "one writer at a time");
        drop(direct);
        gate.queueing();
        gate.not_queued();
        assert!(gate.try_direct().is_some());
    }

    /// Two threads, a pusher and a writer, each appending to one shared
    /// "socket" only while holding the gate: every frame lands once and in
    /// order, whichever path it took.
    #[test]
    fn frames_keep_their_order_across_both_paths() {
        use std::sync::{Arc, Mutex, mpsc};
        const FRAMES: u64 = 20_000;
        let gate = Arc::new(WriteGate::new());
        let socket = Arc::new(Mutex::new(Vec::<u64>::new()));
        let (queue, inbox) = mpsc::channel::<u64>();
        gate.writer().open();
        let writer = {
            let (gate, socket) = (Arc::clone(&gate), Arc::clone(&socket));
            std::thread::spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let hold = gate.writer();
                    let mut batch = vec![first];
                    batch.extend(inbox.try_iter());
                    socket.lock().unwrap().extend(&batch);
                    hold.written(batch.len());
                }
            })
        };
        for frame in 0..FRAMES {
            match gate.try_direct() {
                // A socket that takes only some frames at once.
                Some(_direct) if frame % 7 != 0 => socket.lock().unwrap().push(frame),
                _direct => {
                    gate.queueing();
                    queue.send(frame).unwrap();
                }
            }
        }
        drop(queue);
        writer.join().unwrap();
        let written = socket.lock().unwrap().clone();
        assert_eq!(written, (0..FRAMES).collect::<Vec<_>>());
        assert_eq!(gate.backlog(), 0);
    }
}
