//! A server binary run as a child process.

use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use chat_protocol::close::CloseReason;

use crate::launch::{Launch, Launched};

use crate::procfs::{ProcStatus, proc_status};
use crate::{Client, expect_all_closed};
use crate::{POLL_INTERVAL, STEP_TIMEOUT};

/// A server binary started as a child process.
///
/// Its first line on stdout gives its address; the rest of its stdout is read
/// and dropped on a thread, so it never blocks on a full pipe; its stderr is
/// the test's. Dropping it kills the process if it is still running, so a
/// failed test leaves nothing behind. Started through [`Launch`].
pub struct ServerProcess {
    launched: Launched,
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
        let launched = Launch::new(program)
            .args(args)
            .ready_within(STEP_TIMEOUT)
            .start()?;
        Ok(Self {
            launched,
            program: program.to_owned(),
        })
    }

    /// The address the server printed.
    pub fn addr(&self) -> SocketAddr {
        self.launched.addr()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.launched
            .pid()
            .unwrap_or_else(|| panic!("{} has already exited", self.program))
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
        let program = self.program.clone();
        let pid = self.pid();
        let child = self
            .launched
            .child_mut()
            .unwrap_or_else(|| panic!("{program} has already exited"));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{program} ({pid}) still running {} s after it was asked to stop; killed it",
                        timeout.as_secs()
                    );
                }
                Err(error) => panic!("waiting for {program} failed: {error}"),
            }
        }
    }
}

/// Runs `program` with `args` to its end, for a command that should not
/// serve (`--version`, a refused configuration), and returns its exit
/// status and what it printed. Panics, killing it, if it is still running
/// after `timeout`.
pub fn run_to_exit(program: &str, args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {program} {args:?}: {error}"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} {args:?} still running after {timeout:?}; killed it");
            }
        }
    }
    child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("cannot read what {program} printed: {error}"))
}

/// Asserts that `program` (the binary called `name`) refuses `args` before
/// anything listens: no `listening on` line (a script waiting for it must
/// not believe the server started), exit status 2 as for clap's own
/// errors, and one line on stderr, `NAME: ...`, that contains `reason`.
pub fn assert_refused(program: &str, name: &str, args: &[&str], reason: &str, timeout: Duration) {
    let out = run_to_exit(program, args, timeout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing may listen: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        stderr.starts_with(&format!("{name}: ")) && stderr.contains(reason),
        "the binary's name and the reason ({reason}): {stderr:?}"
    );
}

/// Asserts that `program --version` names the binary (`name`), not its
/// crate.
pub fn assert_version_names(program: &str, name: &str, timeout: Duration) {
    let out = run_to_exit(program, &["--version"], timeout);
    assert!(out.status.success(), "--version: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!("{name} ")),
        "--version should start with the binary's name: {stdout:?}"
    );
}
