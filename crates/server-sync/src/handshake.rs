//! The HTTP side of a connection: read the request head (bounded in size and
//! time), route it with `chat_protocol::route`, and answer pages and refusals.

use std::io::{self, Read, Write};
use std::net::{Shutdown as Direction, TcpStream};
use std::time::{Duration, Instant};

use chat_protocol::ServerConfig;
use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::route::{self, Head, Refusal, Response, Upgrade};

/// Reads and routes the request head. Pages and refusals are answered here
/// (and `None` returned); an upgrade is handed back to the caller.
pub(crate) fn read_head(stream: &TcpStream, config: &ServerConfig) -> Option<Upgrade> {
    let mut stream = stream;
    let deadline = Instant::now() + config.handshake_timeout();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            respond(stream, &Refusal::Timeout.response());
            return None;
        }
        let want = chunk.len().min(config.max_head_bytes - buf.len());
        let read = stream
            .set_read_timeout(Some(remaining))
            .and_then(|()| stream.read(&mut chunk[..want]));
        match read {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => continue,
            Err(error) => {
                tracing::debug!(%error, "handshake read failed");
                return None;
            }
        }
        match route::parse_head(&mut buf, config.max_head_bytes, &config.allowed_origins) {
            Head::Incomplete => continue,
            Head::Respond(response) => {
                respond(stream, &response);
                return None;
            }
            Head::Upgrade(upgrade) => return Some(upgrade),
        }
    }
}

/// Writes `response`, then closes our side and drains the client's for a
/// moment, so that the client reads the response instead of a reset.
pub(crate) fn respond(stream: &TcpStream, response: &Response) {
    let mut stream = stream;
    tracing::debug!(status = %response.status, "answered");
    if stream.write_all(&response.bytes).is_err() {
        return;
    }
    let _ = stream.shutdown(Direction::Write);
    linger(stream, CLOSE_TIMEOUT);
}

/// Reads and discards what the client still sends, until it closes or
/// `timeout` passes.
pub(crate) fn linger(stream: &TcpStream, timeout: Duration) {
    let mut stream = stream;
    let deadline = Instant::now() + timeout;
    let mut sink = [0u8; 1024];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return,
        }
    }
}

/// Whether a read error is a socket timeout (`SO_RCVTIMEO` gives `WouldBlock`
/// on Unix).
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
