//! The handshake slots (`--max-pending-handshakes`: here each pending
//! handshake holds a task), and eviction of the oldest pending handshake
//! when a newcomer finds every slot taken (`chat_protocol::pending` says
//! why, and keeps the list).
//!
//! Evicting cancels the connection's hang-up token: its task, waiting in
//! `read`, wakes, ends, and gives its slot back. `chat-sync`'s `pending`
//! module is the same with threads and sockets.

use std::sync::Arc;

use chat_protocol::pending::{Eviction, PendingHandshakes};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::shutdown::Shutdown;

/// The pending handshakes and their slots.
pub(crate) struct Pending {
    slots: Arc<Semaphore>,
    /// Connections reading their request head, with their hang-up tokens.
    waiting: PendingHandshakes<CancellationToken>,
}

/// One connection's place among the pending handshakes, from accept until
/// its head is read (or it ends): its slot comes back when this is dropped.
pub(crate) struct Handshake {
    id: u64,
    /// Still listed among those reading their head.
    listed: bool,
    pending: Arc<Pending>,
    _slot: OwnedSemaphorePermit,
}

impl Pending {
    /// `slots` pending handshakes at most.
    pub(crate) fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: PendingHandshakes::with_capacity(slots),
        })
    }

    /// A slot for connection `id`, just accepted: a free one, else the slot
    /// of the oldest evictable handshake, else the first to come free. `None`
    /// if the shutdown comes first.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        id: u64,
        hang_up: &CancellationToken,
        shutdown: &Shutdown,
    ) -> Option<Handshake> {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => self.wait_for_slot(shutdown).await?,
        };
        self.waiting.push(id, hang_up.clone());
        Some(Handshake {
            id,
            listed: true,
            pending: Arc::clone(self),
            _slot: slot,
        })
    }

    async fn wait_for_slot(&self, shutdown: &Shutdown) -> Option<OwnedSemaphorePermit> {
        loop {
            let wait = match self.waiting.evict_oldest() {
                Eviction::Evict { id, age, handle } => {
                    tracing::debug!(id, ?age, "evicting the oldest pending handshake");
                    handle.cancel();
                    None
                }
                Eviction::NotBefore(wait) => Some(wait),
                Eviction::NoCandidate => None,
            };
            let timer = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                slot = Arc::clone(&self.slots).acquire_owned() => return slot.ok(),
                () = shutdown.signal() => return None,
                () = timer => continue,
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
