//! Graceful shutdown, and hanging up on connections that outstay it.
//!
//! [`Shutdown`] wraps a `CancellationToken`: the acceptor and every task that
//! must react select on [`Shutdown::signal`].
//!
//! [`Sockets`] gives every connection a hang-up token, a child of one
//! server-wide token, so that a shutdown whose deadline passes can hang up on
//! them all at once: every task waiting on such a connection finishes. (The
//! sync server does the same with `shutdown(2)` on a clone of each socket.)

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A shutdown switch: clone it freely, trigger it from anywhere (a signal
/// handler task, a test).
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A switch not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the shutdown: the server stops accepting, closes every
    /// connection with 1001, and `run` returns.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether [`Self::trigger`] has been called.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the shutdown is triggered: for `select!`.
    pub fn signal(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }
}

/// Hang-up tokens for every live connection.
#[derive(Default)]
pub(crate) struct Sockets {
    all: CancellationToken,
}

impl Sockets {
    /// A hang-up token for one new connection.
    pub(crate) fn insert(&self) -> CancellationToken {
        self.all.child_token()
    }

    /// Hangs up on every live connection.
    pub(crate) fn hang_up_all(&self) {
        self.all.cancel();
    }
}
