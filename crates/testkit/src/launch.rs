//! Any chat server as a child process, its logs in files: what the
//! benchmark's driver starts (ours, the reference servers, Daphne), and what
//! [`ServerProcess`](crate::ServerProcess) builds on.
//!
//! Every server of this project, and every reference server of `peers/`,
//! prints `listening on http://HOST:PORT` as its first line once it
//! listens, so one launcher serves them all: it waits (bounded) for that
//! line, keeps the rest of stdout drained (a chatty server, Daphne's access
//! log, never blocks on a full pipe), and stops the process with `SIGTERM`,
//! then `SIGKILL` past a deadline, to its own process group when it has one
//! (`bash run.sh` and what it started).

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{POLL_INTERVAL, STEP_TIMEOUT};

/// What the servers print first: `listening on http://HOST:PORT`.
pub const LISTENING_PREFIX: &str = "listening on http://";

/// How to start one server.
#[derive(Debug, Clone)]
pub struct Launch {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    logs: Option<PathBuf>,
    ready_timeout: Duration,
    own_group: bool,
}

impl Launch {
    /// Starts `program` (looked up on `PATH`), with no arguments yet.
    pub fn new(program: impl Into<OsString>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            logs: None,
            ready_timeout: STEP_TIMEOUT,
            own_group: false,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((name.into(), value.into()));
        self
    }

    /// Writes its stdout to `<stem>.out` and its stderr to `<stem>.err`
    /// (without it, stdout is dropped and stderr is the caller's).
    pub fn logs(mut self, stem: impl Into<PathBuf>) -> Self {
        self.logs = Some(stem.into());
        self
    }

    /// How long it may take to print its address [default: `STEP_TIMEOUT`].
    pub fn ready_within(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Runs it in a process group of its own, so that stopping it reaches
    /// every process it starts (a shell script and its server).
    pub fn own_process_group(mut self) -> Self {
        self.own_group = true;
        self
    }

    /// The command line, for a log: program and arguments, space-separated.
    pub fn command_line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts it and waits for its `listening on` line. The error says
    /// what went wrong, with its exit status if it exited.
    pub fn start(self) -> anyhow::Result<Launched> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut stdout_log = None;
        if let Some(stem) = &self.logs {
            let err = with_extension(stem, "err");
            command.stderr(
                File::create(&err).with_context(|| format!("cannot create {}", err.display()))?,
            );
            let out = with_extension(stem, "out");
            stdout_log = Some(
                File::create(&out).with_context(|| format!("cannot create {}", out.display()))?,
            );
        } else {
            command.stderr(Stdio::inherit());
        }
        if self.own_group {
            command.process_group(0);
        }
        let name = self.program.to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.command_line()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut launched = Launched {
            child: Some(child),
            // Replaced below once the first line has been read.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            name,
            own_group: self.own_group,
        };
        let line = first_line(stdout, stdout_log, self.ready_timeout);
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                let status = launched.stop(Duration::ZERO).ok();
                return Err(match status {
                    Some(status) => error.context(format!("{} ended: {status}", launched.name)),
                    None => error,
                });
            }
        };
        let addr = line.strip_prefix(LISTENING_PREFIX).with_context(|| {
            format!("first line {line:?} does not start with {LISTENING_PREFIX:?}")
        })?;
        launched.addr = addr
            .trim()
            .parse()
            .with_context(|| format!("first line {line:?} holds no HOST:PORT"))?;
        Ok(launched)
    }
}

/// `stem` with `.ext` appended (a stem may hold dots of its own).
fn with_extension(stem: &std::path::Path, ext: &str) -> PathBuf {
    let mut path = stem.as_os_str().to_owned();
    path.push(".");
    path.push(ext);
    PathBuf::from(path)
}

/// Reads the first line of `stdout` within `timeout`, and keeps the pipe
/// drained (into `log` when given) on a thread until the process closes it.
fn first_line(
    stdout: std::process::ChildStdout,
    mut log: Option<File>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let (first, first_rx) = mpsc::channel();
    thread::Builder::new()
        .name("server-stdout".into())
        .spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let line = lines.next();
            if let (Some(log), Some(Ok(line))) = (log.as_mut(), &line) {
                let _ = writeln!(log, "{line}");
            }
            let _ = first.send(line);
            for line in lines.map_while(Result::ok) {
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
        })
        .context("cannot start the stdout reader")?;
    match first_rx.recv_timeout(timeout) {
        Ok(Some(Ok(line))) => Ok(line),
        Ok(Some(Err(error))) => bail!("reading its stdout failed: {error}"),
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            bail!("it closed its stdout without printing its address")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("it printed no line within {} s", timeout.as_secs_f64())
        }
    }
}

/// A started server. Dropping it kills it (and its group) if it still runs.
#[derive(Debug)]
pub struct Launched {
    /// `None` once stopped.
    child: Option<Child>,
    addr: SocketAddr,
    name: String,
    own_group: bool,
}

/// How a [`Launched::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had to be killed: it was still running at the deadline.
    pub killed: bool,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.killed {
            write!(f, "killed after the deadline ({})", self.status)
        } else {
            write!(f, "{}", self.status)
        }
    }
}

impl Launched {
    /// The address it printed.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Its process id (a script that `exec`s its server keeps it).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `SIGTERM` (to its group, if it has one) and waits up to
    /// `deadline` for it to exit; then `SIGKILL`s it and waits.
    pub fn stop(&mut self, deadline: Duration) -> anyhow::Result<Stopped> {
        let mut child = self
            .child
            .take()
            .with_context(|| format!("{} is already stopped", self.name))?;
        if let Some(status) = child.try_wait()? {
            return Ok(Stopped {
                status,
                killed: false,
            });
        }
        self.signal(&child, "TERM");
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(status) = child.try_wait()? {
                return Ok(Stopped {
                    status,
                    killed: false,
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
        self.signal(&child, "KILL");
        let _ = child.kill();
        let status = child.wait().context("waiting for a killed server")?;
        Ok(Stopped {
            status,
            killed: true,
        })
    }

    /// Sends `SIGname` to the process, or to its group (`kill -NAME -PGID`).
    fn signal(&self, child: &Child, name: &str) {
        let target = if self.own_group {
            format!("-{}", child.id())
        } else {
            child.id().to_string()
        };
        // A process already gone is not an error here: `stop` waits next.
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg("--")
            .arg(target)
            .stderr(Stdio::null())
            .status();
    }

    /// The child, while it runs, for [`ServerProcess`](crate::ServerProcess).
    pub(crate) fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(None) = child.try_wait()
        {
            let _ = self.stop(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_the_address_and_stops_the_group() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stem = dir.path().join("server");
        let mut server = Launch::new("bash")
            .args([
                "-c",
                "echo 'listening on http://127.0.0.1:4321'; echo more; sleep 60 & wait",
            ])
            .logs(&stem)
            .own_process_group()
            .start()
            .expect("it prints its address");
        assert_eq!(server.url(), "ws://127.0.0.1:4321");
        let stopped = server.stop(STEP_TIMEOUT).expect("it stops");
        assert!(!stopped.killed, "SIGTERM to the group ends it: {stopped}");
        let out = std::fs::read_to_string(with_extension(&stem, "out")).expect("its stdout");
        assert!(
            out.starts_with("listening on http://127.0.0.1:4321\n"),
            "{out:?}"
        );
    }

    #[test]
    fn a_server_that_never_listens_is_an_error() {
        let error = Launch::new("bash")
            .args(["-c", "echo 'Error: bad flag' >&2; exit 2"])
            .start()
            .expect_err("it exits first");
        assert!(format!("{error:#}").contains("exit status: 2"), "{error:#}");
        let error = Launch::new("bash")
            .args(["-c", "sleep 60"])
            .ready_within(Duration::from_millis(200))
            .start()
            .expect_err("it prints nothing");
        assert!(
            format!("{error:#}").contains("printed no line"),
            "{error:#}"
        );
    }
}
