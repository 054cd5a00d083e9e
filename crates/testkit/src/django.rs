//! The Django Channels tutorial chat (`scripts/django/run.sh`: the seed's
//! `ChatConsumer` under Daphne) as a test's child process, on the Redis
//! channel layer.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::{Client, Connect, POLL_INTERVAL, STEP_TIMEOUT};

/// What `run.sh` prints first, as our servers do.
const LISTENING_PREFIX: &str = "listening on http://";

/// How long creating the venv may take (`run.sh --setup-only`: a venv and
/// `pip install` of the pinned requirements from PyPI; about 10 s on a fast
/// network, much more on a slow one).
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

/// How long Daphne may take to print its address once the venv exists
/// (`run.sh` itself gives up after 60 s; Django's start takes about a second).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Lines of `run.sh --setup-only`'s output quoted when it fails.
const SETUP_TAIL_LINES: usize = 40;

/// The Django Channels tutorial chat served by Daphne, started with
/// `bash scripts/django/run.sh --port 0`.
///
/// With Redis URLs it runs on `channels_redis`' `RedisPubSubChannelLayer`
/// (`CHAT_REDIS_URLS`, `CHAT_LAYER_PREFIX`; see `scripts/django/README.md`),
/// so its rooms are shared with every process on the same Redis servers.
/// Its consumer is the seed's: `group_add` before `accept`, a
/// `group_send` of type `chat_message` per `{"message": ...}`. Note that
/// redis-py sends `SUBSCRIBE` without waiting for Redis's confirmation, so
/// "in the room once the handshake completed" holds only as far as Redis
/// reads the subscription before a message published later.
///
/// Its origin check refuses WebSocket clients without an `Origin` header
/// naming its host: connect with [`DjangoServer::connect`] or
/// [`DjangoServer::origin`].
///
/// Dropping it stops it: `SIGTERM` to its process group, then `SIGKILL` if
/// it is still running after [`STEP_TIMEOUT`]. Daphne's log (its stderr)
/// becomes part of the test's captured output, lines prefixed `django: `,
/// shown when the test fails; its access log (stdout) is read and dropped.
pub struct DjangoServer {
    /// `None` once stopped.
    child: Option<Child>,
    addr: SocketAddr,
}

impl DjangoServer {
    /// Starts the tutorial chat on the Redis layer of `redis_urls` (one per
    /// shard, in shard order), with the layer's default prefix `asgi`; with
    /// no URL, on the tutorial's `InMemoryChannelLayer`. Returns once it
    /// accepts connections.
    ///
    /// The first start of a test process creates or checks the venv
    /// (`run.sh --setup-only`, up to 300 s; the other starts of
    /// the process wait for it); a failure there, such as PyPI being
    /// unreachable, is an error holding pip's output. It blocks the calling
    /// thread meanwhile.
    pub fn start(redis_urls: &[String]) -> anyhow::Result<Self> {
        Self::start_with_prefix(redis_urls, None)
    }

    /// [`DjangoServer::start`] with the Redis layer's prefix `prefix`
    /// (`CHAT_LAYER_PREFIX`; `None`: the default, `asgi`).
    pub fn start_with_prefix(redis_urls: &[String], prefix: Option<&str>) -> anyhow::Result<Self> {
        let run_sh = run_sh()?;
        ensure_venv(&run_sh)?;
        for url in redis_urls {
            if url.contains(',') {
                bail!("Redis URL {url:?} holds a comma, which separates CHAT_REDIS_URLS");
            }
        }
        let mut command = Command::new("bash");
        command
            .arg(&run_sh)
            .args(["--port", "0"])
            .env_remove("CHAT_REDIS_URLS")
            .env_remove("CHAT_LAYER_PREFIX")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that stopping it reaches whatever
            // run.sh has started, not only Daphne.
            .process_group(0);
        if !redis_urls.is_empty() {
            command.env("CHAT_REDIS_URLS", redis_urls.join(","));
        }
        if let Some(prefix) = prefix {
            command.env("CHAT_LAYER_PREFIX", prefix);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run bash {}", run_sh.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        // From here on, dropping `server` stops the process.
        let mut server = Self {
            child: Some(child),
            // Replaced below once the first line has been read.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        forward_stderr(stderr)?;
        let child = server.child.as_mut().context("no child")?;
        let line = first_line(child, stdout, START_TIMEOUT).with_context(|| {
            format!(
                "bash {} --port 0 (CHAT_REDIS_URLS={:?}) did not start; its log is in the \
                 test's output",
                run_sh.display(),
                redis_urls.join(",")
            )
        })?;
        let addr = line.strip_prefix(LISTENING_PREFIX).with_context(|| {
            format!("first line {line:?} does not start with {LISTENING_PREFIX:?}")
        })?;
        server.addr = addr
            .trim()
            .parse()
            .with_context(|| format!("first line {line:?} holds no HOST:PORT"))?;
        Ok(server)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`: the `Origin` its origin check lets in.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Daphne's process id (`run.sh` ends by exec'ing Daphne).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Connects a client named `name` to `room`, with the `Origin` header
    /// the origin check requires. Panics as [`Connect::to`] does.
    pub async fn connect(&self, room: &str, name: &str) -> Client {
        Connect::room(room)
            .name(name)
            .origin(&self.origin())
            .to(self.addr)
            .await
    }

    /// Sends `SIGTERM` to its process group and waits (up to
    /// [`STEP_TIMEOUT`]) for Daphne to exit; returns its exit status (0 on
    /// a clean shutdown). If it is still running then, kills it and fails.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        stop_group(&mut child)
    }
}

impl Drop for DjangoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_group(&mut child);
        }
    }
}

/// `scripts/django/run.sh` of this workspace.
fn run_sh() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run_sh = root.join("scripts/django/run.sh");
    run_sh
        .canonicalize()
        .with_context(|| format!("{} not found", run_sh.display()))
}

/// Runs `run.sh --setup-only` once per test process (later calls, even
/// concurrent ones, share its outcome): creates the venv, or checks that it
/// is current.
fn ensure_venv(run_sh: &Path) -> anyhow::Result<()> {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    SETUP
        .get_or_init(|| setup(run_sh).map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn setup(run_sh: &Path) -> anyhow::Result<()> {
    let what = format!("bash {} --setup-only", run_sh.display());
    let mut child = Command::new("bash")
        .arg(run_sh)
        .arg("--setup-only")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    // pip's output, kept for the error message.
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let (output_tx, output) = mpsc::channel();
    thread::Builder::new()
        .name("django-setup".into())
        .spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            let _ = output_tx.send(text);
        })
        .context("cannot start the reader of its stderr")?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().context("wait failed")? {
            break status;
        }
        if Instant::now() >= deadline {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
            bail!(
                "{what} did not finish within {} s (creating the venv with pip); killed it",
                SETUP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(POLL_INTERVAL);
    };
    if status.success() {
        return Ok(());
    }
    // The pipe closes once every process holding it has exited.
    let text = output
        .recv_timeout(STEP_TIMEOUT)
        .unwrap_or_else(|_| String::from("(its output could not be read)"));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(SETUP_TAIL_LINES)..].join("\n");
    bail!(
        "{what} failed ({status}): the venv of the Django server could not be created \
         (needs python3 with venv, and PyPI); its output:\n{tail}"
    )
}

/// Reads the first line of `child`'s `stdout` within `timeout`, then keeps
/// reading (and dropping) the rest on a thread, so that the process never
/// blocks on a full pipe. Meanwhile it reaps `child` if it exits, and fails
/// at once then (run.sh's own readiness check, waiting for Daphne, would
/// otherwise take an unreaped Daphne for a live one until its deadline).
fn first_line(
    child: &mut Child,
    stdout: impl Read + Send + 'static,
    timeout: Duration,
) -> anyhow::Result<String> {
    let (first_tx, first_rx) = mpsc::channel();
    thread::Builder::new()
        .name("django-stdout".into())
        .spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_tx.send(lines.next());
            for _ in lines {}
        })
        .context("cannot start the reader of its stdout")?;
    let deadline = Instant::now() + timeout;
    loop {
        match first_rx.recv_timeout(POLL_INTERVAL) {
            Ok(Some(Ok(line))) => return Ok(line),
            Ok(Some(Err(error))) => bail!("reading its stdout failed: {error}"),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("it closed its stdout without printing its address")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(status) = child.try_wait().context("wait failed")? {
            bail!("it exited ({status}) without printing its address");
        }
        if Instant::now() >= deadline {
            bail!("it printed no line within {} s", timeout.as_secs());
        }
    }
}

/// Copies `stderr` (Daphne's log) line by line to this process's stderr with
/// `eprintln!`, on a thread that the test harness captures as it captures the
/// test's own output (it inherits the capture of the thread that starts it):
/// shown with a failing test, hidden with a passing one.
fn forward_stderr(stderr: impl Read + Send + 'static) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("django-stderr".into())
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(line) => eprintln!("django: {line}"),
                    Err(_) => break,
                }
            }
        })
        .context("cannot start the reader of its stderr")?;
    Ok(())
}

/// `SIGTERM` to the process group led by `child`, a bounded wait, then
/// `SIGKILL` to the group.
fn stop_group(child: &mut Child) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait().context("wait failed")? {
        return Ok(status);
    }
    signal_group(child.id(), "TERM");
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("wait failed")? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
            bail!(
                "Daphne ({}) still running {} s after SIGTERM; killed it",
                child.id(),
                STEP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Sends `SIGname` to process group `pgid` (`kill -name -- -pgid`). Errors
/// are ignored: the group may be gone already.
fn signal_group(pgid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
