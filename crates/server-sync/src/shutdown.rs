//! Graceful shutdown, and hanging up on connections that outstay it.
//!
//! A blocking `accept` cannot wait on a channel, so [`Shutdown::trigger`]
//! wakes the acceptor by connecting to the listener; the acceptor checks the
//! flag after every accept. Threads that wait on channels select on
//! [`Shutdown::signal`], which disconnects when triggered.
//!
//! [`Sockets`] holds a handle on every live connection's socket, so that a
//! shutdown whose deadline passes can `shutdown(2)` them all: that wakes every
//! thread blocked in `read` or `write` on them, and they finish.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown as Direction, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

/// A shutdown switch: clone it freely, trigger it from anywhere (a signal
/// handler thread, a test).
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    triggered: AtomicBool,
    /// Dropped on trigger, which disconnects `signal`.
    sender: Mutex<Option<Sender<()>>>,
    signal: Receiver<()>,
    /// The listener to wake, once `run` has one.
    listener: Mutex<Option<SocketAddr>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A switch not yet triggered.
    pub fn new() -> Self {
        let (sender, signal) = crossbeam_channel::bounded(0);
        Self {
            inner: Arc::new(Inner {
                triggered: AtomicBool::new(false),
                sender: Mutex::new(Some(sender)),
                signal,
                listener: Mutex::new(None),
            }),
        }
    }

    /// Starts the shutdown: the server stops accepting, closes every
    /// connection with 1001, and `run` returns.
    pub fn trigger(&self) {
        if self.inner.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&self.inner.sender).take();
        if let Some(addr) = *lock(&self.inner.listener) {
            wake(addr);
        }
    }

    /// Whether [`Self::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// A channel that disconnects when the shutdown is triggered: for `select!`.
    pub fn signal(&self) -> &Receiver<()> {
        &self.inner.signal
    }

    /// Registers the listener that [`Self::trigger`] must wake.
    pub(crate) fn watch_listener(&self, addr: SocketAddr) {
        *lock(&self.inner.listener) = Some(addr);
        if self.is_triggered() {
            wake(addr);
        }
    }
}

/// Unblocks an `accept` on `addr` by connecting to it.
fn wake(addr: SocketAddr) {
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    if let Err(error) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
        tracing::warn!(%error, "could not wake the acceptor");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every live connection's socket, to hang up on them all at once.
#[derive(Default)]
pub(crate) struct Sockets {
    live: Mutex<HashMap<u64, Arc<TcpStream>>>,
}

impl Sockets {
    /// Keeps a handle on connection `id`'s socket until [`Self::remove`].
    pub(crate) fn insert(&self, id: u64, stream: &Arc<TcpStream>) {
        lock(&self.live).insert(id, Arc::clone(stream));
    }

    /// Forgets connection `id`.
    pub(crate) fn remove(&self, id: u64) {
        lock(&self.live).remove(&id);
    }

    /// Shuts down every live socket, waking the threads blocked on them.
    pub(crate) fn hang_up_all(&self) {
        for stream in lock(&self.live).values() {
            let _ = stream.shutdown(Direction::Both);
        }
    }
}
