//! A server binary run as a child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_protocol::close::CloseReason;

use crate::procfs::{ProcStatus, proc_status};
use crate::{Client, expect_all_closed};
use crate::{POLL_INTERVAL, STEP_TIMEOUT};

/// What the servers print first: `listening on http://HOST:PORT`.
const LISTENING_PREFIX: &str = "listening on http://";

/// A server binary started as a child process.
///
/// Its first line on stdout gives its address; the rest of its stdout is read
/// and dropped on a thread, so it never blocks on a full pipe; its stderr is
/// the test's. Dropping it kills the process if it is still running, so a
/// failed test leaves nothing behind.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    program: String,
}

impl ServerProcess {
    /// Starts `program` with `args` and waits (up to [`STEP_TIMEOUT`]) for its
    /// first line. Panics if it does not start or says something else.
    pub fn start(program: &str, args: &[&str]) -> Self {
        Self::try_start(program, args)
            .unwrap_or_else(|error| panic!("could not start {program} {args:?}: {error:#}"))
    }

    /// [`ServerProcess::start`], returning failures instead of panicking.
    pub fn try_start(program: &str, args: &[&str]) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawn failed")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (first_line, first_line_rx) = mpsc::channel();
        thread::Builder::new()
            .name("server-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let _ = first_line.send(lines.next());
                // Keep the pipe drained until the server exits.
                for _ in lines {}
            })
            .context("cannot start the stdout reader")?;
        let mut server = Self {
            child,
            // Replaced below once the first line has been read.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            program: program.to_owned(),
        };
        let line = match first_line_rx.recv_timeout(STEP_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(error))) => bail!("reading its stdout failed: {error}"),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.child.wait().context("wait failed")?;
                bail!("it exited ({status}) without printing its address");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("it printed no line within {} s", STEP_TIMEOUT.as_secs())
            }
        };
        let addr = line.strip_prefix(LISTENING_PREFIX).with_context(|| {
            format!("first line {line:?} does not start with {LISTENING_PREFIX:?}")
        })?;
        server.addr = addr
            .trim()
            .parse()
            .with_context(|| format!("first line {line:?} holds no HOST:PORT"))?;
        Ok(server)
    }

    /// The address the server printed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's thread count and resident memory, now. Panics if the
    /// process is gone.
    pub fn status(&self) -> ProcStatus {
        proc_status(self.pid()).unwrap_or_else(|error| {
            panic!(
                "cannot read the status of {} ({}): {error:#}",
                self.program,
                self.pid()
            )
        })
    }

    /// Sends `SIGTERM` (with `kill -TERM <pid>`).
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends `SIGINT` (with `kill -INT <pid>`).
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|error| panic!("could not run kill -{name}: {error}"));
        assert!(
            status.success(),
            "kill -{name} {} ({}) failed: {status}",
            self.pid(),
            self.program
        );
    }

    /// Sends `SIGTERM`, then waits (up to `timeout`) for the server to exit on
    /// a blocking thread, so that the caller can meanwhile read what its
    /// clients receive. The handle gives the exit status.
    pub fn stop_in_background(mut self, timeout: Duration) -> tokio::task::JoinHandle<ExitStatus> {
        self.terminate();
        tokio::task::spawn_blocking(move || self.wait_for_exit(timeout))
    }

    /// Sends `SIGTERM` and checks the graceful shutdown: every one of
    /// `clients` receives close 1001 "server shutting down", and the server
    /// exits 0 within `timeout`.
    pub async fn stop_gracefully(self, clients: Vec<Client>, timeout: Duration) {
        let program = self.program.clone();
        let exit = self.stop_in_background(timeout);
        for frame in expect_all_closed(clients, 1001).await {
            assert_eq!(frame.reason.as_str(), CloseReason::ServerShutdown.text());
        }
        let status = exit.await.expect("waiting for the server panicked");
        assert!(
            status.success(),
            "{program} should exit 0 after SIGTERM, got {status}"
        );
    }

    /// Waits up to `timeout` for the server to exit; returns its exit status.
    /// Panics (and kills it) if it is still running then.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "{} ({}) still running {} s after it was asked to stop; killed it",
                        self.program,
                        self.pid(),
                        timeout.as_secs()
                    );
                }
                Err(error) => panic!("waiting for {} failed: {error}", self.program),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
