//! A server under test, whichever it is.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chat_protocol::ServerConfig;
use tokio::task::JoinHandle;

/// How long a server may take to shut down: its own deadline
/// (`--shutdown-timeout-secs`, 5 s by default) plus the close handshakes and
/// a margin for a loaded machine.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts a server with a config: what the [`conformance!`](crate::conformance)
/// macro hands every scenario.
pub type Start = fn(ServerConfig) -> TestServer;

type ShutdownFn = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// A running server: its address, and how to shut it down.
///
/// Dropped without [`TestServer::shutdown`] (a scenario failed), it is shut
/// down on a detached thread, so the failure is reported at once and the
/// server's threads still end.
pub struct TestServer {
    label: &'static str,
    addr: SocketAddr,
    shutdown: Option<ShutdownFn>,
}

impl TestServer {
    /// Wraps a server listening on `addr`; `shutdown` is its blocking
    /// shutdown-and-join.
    pub fn new(
        label: &'static str,
        addr: SocketAddr,
        shutdown: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> Self {
        Self {
            label,
            addr,
            shutdown: Some(Box::new(shutdown)),
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which server this is (`sync`, `async_`), for failure messages.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Starts the graceful shutdown on a blocking thread, and returns at once
    /// with a handle to its result, so a scenario can watch its clients meanwhile.
    pub fn begin_shutdown(mut self) -> JoinHandle<io::Result<()>> {
        let shutdown = self
            .shutdown
            .take()
            .expect("a server is shut down only once");
        tokio::task::spawn_blocking(shutdown)
    }

    /// Shuts the server down and waits for it, up to [`SHUTDOWN_TIMEOUT`].
    /// Panics if it fails or takes longer. Drop the clients first, or the
    /// server waits for their close handshakes.
    pub async fn shutdown(self) {
        let label = self.label;
        finish_shutdown(label, self.begin_shutdown()).await;
    }
}

/// Waits, up to [`SHUTDOWN_TIMEOUT`], for a shutdown started with
/// [`TestServer::begin_shutdown`]; panics if it fails or takes longer.
pub(crate) async fn finish_shutdown(label: &str, stopping: JoinHandle<io::Result<()>>) {
    match tokio::time::timeout(SHUTDOWN_TIMEOUT, stopping).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => panic!("the {label} server's shutdown failed: {error}"),
        Ok(Err(panic)) => panic!("the {label} server's shutdown panicked: {panic}"),
        Err(_) => panic!(
            "the {label} server did not shut down within {} s",
            SHUTDOWN_TIMEOUT.as_secs()
        ),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // A scenario failed before shutting the server down: do it on a
            // thread nobody waits for, so the panic is reported now.
            let _ = std::thread::Builder::new()
                .name("abandoned-server".into())
                .spawn(shutdown);
        }
    }
}
