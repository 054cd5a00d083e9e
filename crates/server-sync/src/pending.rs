//! The handshake slots (`--max-pending-handshakes`: here each pending
//! handshake holds a thread), and eviction of the oldest pending handshake
//! when a newcomer finds every slot taken (`chat_protocol::pending` says
//! why, and keeps the list).
//!
//! Evicting shuts the connection's socket down: its thread, blocked in
//! `read`, wakes, ends, and gives its slot back. `chat-async`'s `pending`
//! module is the same with tasks and hang-up tokens.

use std::net::{Shutdown as Direction, TcpStream};
use std::sync::Arc;

use chat_protocol::pending::{Eviction, PendingHandshakes};
use crossbeam_channel::select;

use crate::listener::{Limit, Permit};
use crate::shutdown::Shutdown;

/// The pending handshakes and their slots.
pub(crate) struct Pending {
    slots: Limit,
    /// Connections reading their request head, with their sockets.
    waiting: PendingHandshakes<Arc<TcpStream>>,
}

/// One connection's place among the pending handshakes, from accept until
/// its head is read (or it ends): its slot comes back when this is dropped.
pub(crate) struct Handshake {
    id: u64,
    /// Still listed among those reading their head.
    listed: bool,
    pending: Arc<Pending>,
    _slot: Permit,
}

impl Pending {
    /// `slots` pending handshakes at most.
    pub(crate) fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Limit::new(slots),
            waiting: PendingHandshakes::with_capacity(slots),
        })
    }

    /// A slot for connection `id`, just accepted: a free one, else the slot
    /// of the oldest evictable handshake, else the first to come free. `None`
    /// if the shutdown comes first.
    pub(crate) fn admit(
        self: &Arc<Self>,
        id: u64,
        stream: &Arc<TcpStream>,
        shutdown: &Shutdown,
    ) -> Option<Handshake> {
        let slot = match self.slots.try_acquire() {
            Some(slot) => slot,
            None => self.wait_for_slot(shutdown)?,
        };
        self.waiting.push(id, Arc::clone(stream));
        Some(Handshake {
            id,
            listed: true,
            pending: Arc::clone(self),
            _slot: slot,
        })
    }

    fn wait_for_slot(&self, shutdown: &Shutdown) -> Option<Permit> {
        loop {
            let timer = match self.waiting.evict_oldest() {
                Eviction::Evict { id, age, handle } => {
                    tracing::debug!(id, ?age, "evicting the oldest pending handshake");
                    let _ = handle.shutdown(Direction::Both);
                    crossbeam_channel::never()
                }
                Eviction::NotBefore(wait) => crossbeam_channel::after(wait),
                Eviction::NoCandidate => crossbeam_channel::never(),
            };
            select! {
                recv(self.slots.take) -> _ => return Some(self.slots.permit()),
                recv(shutdown.signal()) -> _ => return None,
                recv(timer) -> _ => continue,
            }
        }
    }
}

impl Handshake {
    /// The request head has been read: from now on this connection cannot
    /// be evicted (it still holds its slot until dropped).
    pub(crate) fn head_read(&mut self) {
        self.unlist();
    }

    fn unlist(&mut self) {
        if std::mem::take(&mut self.listed) {
            self.pending.waiting.remove(self.id);
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.unlist();
    }
}
