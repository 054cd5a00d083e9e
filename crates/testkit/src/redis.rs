//! A Redis server of a test's own: a `redis-server` child process on a free
//! port of 127.0.0.1, in a temporary directory, with no persistence, that a
//! test can stop and restart on the same port; and a raw pub/sub client
//! (RESP2 over a `TcpStream`, no Redis crate) to watch and inject what the
//! channel layers publish.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Instant;

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::{POLL_INTERVAL, STEP_TIMEOUT};

/// The program started, looked up on `PATH`.
const PROGRAM: &str = "redis-server";

/// What a test sees when [`PROGRAM`] is missing: it fails, never skips.
const NOT_FOUND: &str = "redis-server not found: install it \
     (Debian: apt-get install redis-server, or bash .ci/install-redis.sh)";

/// How many free ports [`RedisServer::start`] tries when another process
/// takes the one it picked before Redis binds it.
const PORT_ATTEMPTS: usize = 3;

/// Lines of Redis's log quoted in a failure message.
const LOG_TAIL_LINES: usize = 20;

/// A `redis-server` child process listening on `127.0.0.1:<port>`.
///
/// It runs in its own temporary directory (its working directory and log
/// file, removed on drop) with no persistence (`--save '' --appendonly no`),
/// so nothing survives a [`RedisServer::stop`]: a restart is an empty Redis,
/// as after a crash. Every wait is bounded by [`STEP_TIMEOUT`]; failures
/// panic with Redis's log attached. Dropping it kills the process.
///
/// ```no_run
/// let mut redis = chat_testkit::RedisServer::start();
/// let url = redis.url(); // redis://127.0.0.1:PORT, for --redis-url
/// redis.stop(); // connections to it are now refused
/// redis.restart(); // the same port, accepting again
/// ```
pub struct RedisServer {
    /// `None` while stopped.
    child: Option<Child>,
    port: u16,
    /// Its working directory and log file; declared after `child` so that
    /// `Drop` has killed the process before the directory goes.
    dir: TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and returns once it answers
    /// `PING`. Panics if the program is not installed (saying how to install
    /// it), or if it does not come up within [`STEP_TIMEOUT`].
    pub fn start() -> Self {
        Self::start_program(PROGRAM).unwrap_or_else(|error| panic!("{error:#}"))
    }

    /// [`RedisServer::start`], returning failures instead of panicking: for
    /// a program (the benchmark's driver) that must carry on and say why.
    pub fn try_start() -> anyhow::Result<Self> {
        Self::start_program(PROGRAM)
    }

    fn start_program(program: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("chat-redis-")
            .tempdir()
            .context("cannot create a directory for Redis")?;
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match launch(program, dir.path(), port) {
                Ok(child) => {
                    return Ok(Self {
                        child: Some(child),
                        port,
                        dir,
                    });
                }
                Err(Launch::NotFound) => bail!("{NOT_FOUND}"),
                // Most likely another process took the port first: try
                // another one.
                Err(Launch::Exited(error)) => failures.push(format!("port {port}: {error:#}")),
                Err(Launch::Failed(error)) => {
                    bail!("Redis on port {port} did not start: {error:#}")
                }
            }
        }
        bail!(
            "Redis did not start on any of {PORT_ATTEMPTS} free ports:\n{}",
            failures.join("\n")
        )
    }

    /// Its process id while it runs, to sample its CPU and memory.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port it listens on, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Whether it is running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills it (`SIGKILL`: a crash, every client connection drops) and
    /// waits for it to be gone, so that connecting is refused when this
    /// returns. Panics if it is already stopped.
    pub fn stop(&mut self) {
        let mut child = self
            .child
            .take()
            .unwrap_or_else(|| panic!("Redis on port {} is already stopped", self.port));
        if let Err(error) = kill_and_wait(&mut child) {
            panic!("stopping Redis on port {} failed: {error:#}", self.port);
        }
    }

    /// Starts it again on the same port (an empty Redis) and returns once it
    /// answers `PING`. Panics if it is running, or does not come up within
    /// [`STEP_TIMEOUT`] (for instance because another process took the
    /// port while it was stopped).
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "Redis on port {} is running: stop it before restarting it",
            self.port
        );
        match launch(PROGRAM, self.dir.path(), self.port) {
            Ok(child) => self.child = Some(child),
            Err(Launch::NotFound) => panic!("{NOT_FOUND}"),
            Err(Launch::Exited(error) | Launch::Failed(error)) => {
                panic!("Redis did not restart on port {}: {error:#}", self.port)
            }
        }
    }

    /// Publishes `payload` on `channel` (`PUBLISH`), as another process of
    /// the channel layer would; returns how many subscribers (processes, for
    /// Channels) received it. Panics if Redis does not answer in time.
    pub fn publish(&self, channel: &str, payload: &[u8]) -> i64 {
        let what = format!("PUBLISH {channel:?} on {}", self.url());
        let result = (|| {
            let mut connection = Resp::connect(self.port)?;
            connection.send(&[b"PUBLISH", channel.as_bytes(), payload])?;
            match connection.read()? {
                Value::Integer(receivers) => Ok(receivers),
                other => bail!("unexpected reply {other:?}"),
            }
        })();
        result.unwrap_or_else(|error| panic!("{what} failed: {error:#}"))
    }

    /// Subscribes to `channel` on a connection of its own and returns once
    /// Redis has confirmed the subscription: every later `PUBLISH` on
    /// `channel` reaches the [`Subscriber`]. Panics if Redis does not answer
    /// in time.
    pub fn subscribe(&self, channel: &str) -> Subscriber {
        let what = format!("SUBSCRIBE {channel:?} on {}", self.url());
        let result = (|| {
            let mut connection = Resp::connect(self.port)?;
            connection.send(&[b"SUBSCRIBE", channel.as_bytes()])?;
            match connection.read()? {
                Value::Array(items) if items.first() == Some(&Value::bulk("subscribe")) => {
                    Ok(Subscriber {
                        connection,
                        label: what.clone(),
                    })
                }
                other => bail!("unexpected reply {other:?}"),
            }
        })();
        result.unwrap_or_else(|error| panic!("{what} failed: {error:#}"))
    }
}

/// A connection subscribed to one Redis channel ([`RedisServer::subscribe`]).
/// Its reads block the calling thread (each up to [`STEP_TIMEOUT`]).
pub struct Subscriber {
    connection: Resp,
    label: String,
}

impl Subscriber {
    /// The next message published on the channel: its channel name and its
    /// payload bytes. Panics if none arrives within [`STEP_TIMEOUT`] or the
    /// connection fails.
    pub fn recv(&mut self) -> (String, Vec<u8>) {
        let result = (|| match self.connection.read()? {
            Value::Array(items) => match <[Value; 3]>::try_from(items) {
                Ok([kind, Value::Bulk(channel), Value::Bulk(payload)])
                    if kind == Value::bulk("message") =>
                {
                    Ok((String::from_utf8_lossy(&channel).into_owned(), payload))
                }
                Ok(items) => bail!("unexpected push {items:?}"),
                Err(items) => bail!("unexpected push {items:?}"),
            },
            other => bail!("unexpected reply {other:?}"),
        })();
        result.unwrap_or_else(|error| panic!("{}: waiting for a message: {error:#}", self.label))
    }
}

/// A RESP2 value, as far as PING, PUBLISH and SUBSCRIBE need.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Simple(String),
    Error(String),
    Integer(i64),
    /// A bulk string (a null bulk string is an error here).
    Bulk(Vec<u8>),
    Array(Vec<Value>),
}

impl Value {
    fn bulk(text: &str) -> Self {
        Self::Bulk(text.as_bytes().to_vec())
    }
}

/// A raw RESP2 connection to 127.0.0.1, every read and write bounded by
/// [`STEP_TIMEOUT`].
struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    fn connect(port: u16) -> anyhow::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(STEP_TIMEOUT))?;
        stream.set_write_timeout(Some(STEP_TIMEOUT))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command, an array of bulk strings (binary-safe).
    fn send(&mut self, args: &[&[u8]]) -> anyhow::Result<()> {
        let mut command = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            command.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            command.extend_from_slice(arg);
            command.extend_from_slice(b"\r\n");
        }
        self.reader
            .get_mut()
            .write_all(&command)
            .context("sending a command")
    }

    /// Reads one value.
    fn read(&mut self) -> anyhow::Result<Value> {
        let line = self.line()?;
        let (kind, rest) = line.split_at_checked(1).context("empty reply line")?;
        let number = || -> anyhow::Result<i64> {
            rest.parse()
                .with_context(|| format!("bad length or integer in {line:?}"))
        };
        Ok(match kind {
            "+" => Value::Simple(rest.to_owned()),
            "-" => Value::Error(rest.to_owned()),
            ":" => Value::Integer(number()?),
            "$" => {
                let len = usize::try_from(number()?)
                    .with_context(|| format!("null bulk string {line:?}"))?;
                let mut data = vec![0; len + 2];
                self.reader.read_exact(&mut data).map_err(read_error)?;
                if !data.ends_with(b"\r\n") {
                    bail!("bulk string of {len} bytes not followed by CRLF");
                }
                data.truncate(len);
                Value::Bulk(data)
            }
            "*" => {
                let len =
                    usize::try_from(number()?).with_context(|| format!("null array {line:?}"))?;
                (0..len)
                    .map(|_| self.read())
                    .collect::<anyhow::Result<_>>()
                    .map(Value::Array)?
            }
            _ => bail!("unknown reply type in {line:?}"),
        })
    }

    /// One line without its CRLF.
    fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).map_err(read_error)?;
        if read == 0 {
            bail!("connection closed");
        }
        line.strip_suffix("\r\n")
            .map(str::to_owned)
            .with_context(|| format!("incomplete reply line {line:?}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill_and_wait(&mut child);
        }
    }
}

/// A failed read of a reply, saying so plainly when it timed out.
fn read_error(error: io::Error) -> anyhow::Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            anyhow::anyhow!("nothing arrived within {} s", STEP_TIMEOUT.as_secs())
        }
        _ => anyhow::Error::new(error).context("reading a reply failed"),
    }
}

/// Why [`launch`] failed.
enum Launch {
    /// The program is not on `PATH`.
    NotFound,
    /// It exited before accepting (the port was taken, most likely).
    Exited(anyhow::Error),
    /// Anything else: it could not be spawned, or did not answer in time.
    Failed(anyhow::Error),
}

/// Starts `program` on `port` with `dir` as its working directory, and waits
/// until it answers `PING` there.
fn launch(program: &str, dir: &Path, port: u16) -> Result<Child, Launch> {
    let log = dir.join("redis.log");
    // A fresh log per launch, so a failure quotes this launch's lines only.
    let _ = fs::remove_file(&log);
    let mut child = Command::new(program)
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => Launch::NotFound,
            _ => Launch::Failed(anyhow::Error::new(error).context(format!("cannot run {program}"))),
        })?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Err(Launch::Exited(anyhow::anyhow!(
                    "{program} exited ({status}) before accepting connections; its log:\n{}",
                    log_tail(&log)
                )));
            }
            Ok(None) => {}
            Err(error) => {
                let _ = kill_and_wait(&mut child);
                return Err(Launch::Failed(
                    anyhow::Error::new(error).context("waiting for redis-server failed"),
                ));
            }
        }
        let last_error = match ping(port) {
            Ok(reply) if reply == "+PONG" => return Ok(child),
            Ok(reply) => format!("it answered PING with {reply:?}"),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            let _ = kill_and_wait(&mut child);
            return Err(Launch::Failed(anyhow::anyhow!(
                "no PONG on port {port} within {} s ({last_error}); killed it; its log:\n{}",
                STEP_TIMEOUT.as_secs(),
                log_tail(&log)
            )));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Sends `PING` (inline command) to 127.0.0.1:`port` on a new connection and
/// returns the reply line without its `\r\n`, each step bounded by
/// [`STEP_TIMEOUT`].
fn ping(port: u16) -> anyhow::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT)?;
    stream.set_read_timeout(Some(STEP_TIMEOUT))?;
    stream.set_write_timeout(Some(STEP_TIMEOUT))?;
    stream.write_all(b"PING\r\n").context("sending PING")?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .context("reading the reply to PING")?;
    if !reply.ends_with("\r\n") {
        bail!("incomplete reply to PING: {reply:?}");
    }
    reply.truncate(reply.len() - 2);
    Ok(reply)
}

/// Kills `child` and waits (up to [`STEP_TIMEOUT`]) until it is reaped.
fn kill_and_wait(child: &mut Child) -> anyhow::Result<()> {
    child.kill().context("kill failed")?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if child.try_wait().context("wait failed")?.is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "pid {} still running {} s after SIGKILL",
                child.id(),
                STEP_TIMEOUT.as_secs()
            );
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// A port of 127.0.0.1 that is free right now (the kernel's pick for port
/// 0). Redis binds it a moment later; a lost race ends in a retry.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("cannot find a free port on 127.0.0.1: {error}"))
}

/// The last lines of the log at `path`, for a failure message.
fn log_tail(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            lines[start..].join("\n")
        }
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect_pong(redis: &RedisServer, when: &str) {
        match ping(redis.port()) {
            Ok(reply) => assert_eq!(reply, "+PONG", "{when}: PING on {}", redis.url()),
            Err(error) => panic!("{when}: PING on {} failed: {error:#}", redis.url()),
        }
    }

    fn expect_refused(redis: &RedisServer, when: &str) {
        match TcpStream::connect_timeout(&redis.addr(), STEP_TIMEOUT) {
            Ok(_) => panic!("{when}: {} still accepts connections", redis.url()),
            Err(error) => assert_eq!(
                error.kind(),
                io::ErrorKind::ConnectionRefused,
                "{when}: connecting to {}: {error}",
                redis.url()
            ),
        }
    }

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let mut redis = RedisServer::start();
        let port = redis.port();
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert!(redis.is_running());
        expect_pong(&redis, "after start");

        redis.stop();
        assert!(!redis.is_running());
        expect_refused(&redis, "after stop");

        redis.restart();
        assert_eq!(redis.port(), port, "a restart keeps the port");
        expect_pong(&redis, "after restart");

        // Twice, as a fault test may do.
        redis.stop();
        expect_refused(&redis, "after the second stop");
        redis.restart();
        expect_pong(&redis, "after the second restart");
    }

    #[test]
    fn has_no_persistence() {
        let redis = RedisServer::start();
        let mut stream =
            TcpStream::connect_timeout(&redis.addr(), STEP_TIMEOUT).expect("connect to Redis");
        stream
            .set_read_timeout(Some(STEP_TIMEOUT))
            .expect("set a read timeout");
        stream
            .write_all(b"CONFIG GET save\r\nCONFIG GET appendonly\r\n")
            .expect("send CONFIG GET");
        let mut reader = BufReader::new(stream);
        let mut lines = Vec::new();
        // Two replies, each an array of 2 bulk strings: 5 lines apiece.
        for _ in 0..10 {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read a CONFIG reply");
            lines.push(line.trim_end().to_owned());
        }
        assert_eq!(
            lines,
            [
                "*2",
                "$4",
                "save",
                "$0",
                "",
                "*2",
                "$10",
                "appendonly",
                "$2",
                "no"
            ]
        );
    }

    #[test]
    fn each_server_has_its_own_port_and_drop_kills_it() {
        let first = RedisServer::start();
        let second = RedisServer::start();
        assert_ne!(first.port(), second.port());
        expect_pong(&first, "first");
        expect_pong(&second, "second");
        let addr = first.addr();
        let dir = first.dir.path().to_owned();
        drop(first);
        assert!(
            TcpStream::connect_timeout(&addr, STEP_TIMEOUT).is_err(),
            "{addr} still accepts after the drop"
        );
        assert!(!dir.exists(), "{} is left behind", dir.display());
        expect_pong(&second, "second, after the first was dropped");
    }

    #[test]
    fn publish_reaches_a_subscriber_byte_for_byte() {
        let redis = RedisServer::start();
        let channel = "asgi__group__chat_lobby";
        let mut subscriber = redis.subscribe(channel);
        // msgpack {"type": "chat.message", "message": "hi"}, then bytes
        // that a text protocol would trip on.
        let payloads: [&[u8]; 2] = [
            b"\x82\xa4type\xacchat.message\xa7message\xa2hi",
            b"\r\n\0$3\r\n*1\r\n\xff",
        ];
        for payload in payloads {
            assert_eq!(redis.publish(channel, payload), 1, "one subscriber");
            assert_eq!(subscriber.recv(), (channel.to_owned(), payload.to_vec()));
        }
        assert_eq!(redis.publish("asgi__group__chat_elsewhere", b"x"), 0);
    }

    #[test]
    fn a_missing_program_fails_saying_how_to_install_it() {
        let Err(error) = RedisServer::start_program("/nonexistent/redis-server") else {
            panic!("a missing program started");
        };
        assert!(
            error
                .to_string()
                .starts_with("redis-server not found: install it"),
            "{error:#}"
        );
    }
}
