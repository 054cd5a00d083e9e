//! The HTTP side of a connection: read the request head (bounded in size and
//! time), route it with `chat_protocol::route`, and answer pages and refusals.

use std::time::Duration;

use chat_protocol::ServerConfig;
use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::route::{self, Head, Refusal, Response, Upgrade};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Reads and routes the request head. Pages and refusals are answered here
/// (and `None` returned); an upgrade is handed back to the caller.
pub(crate) async fn read_head(stream: &mut TcpStream, config: &ServerConfig) -> Option<Upgrade> {
    let deadline = Instant::now() + config.handshake_timeout();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let want = chunk.len().min(config.max_head_bytes - buf.len());
        match timeout_at(deadline, stream.read(&mut chunk[..want])).await {
            Err(_elapsed) => {
                respond(stream, &Refusal::Timeout.response()).await;
                return None;
            }
            Ok(Ok(0)) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(error)) => {
                tracing::debug!(%error, "handshake read failed");
                return None;
            }
        }
        match route::parse_head(&mut buf, config.max_head_bytes, &config.allowed_origins) {
            Head::Incomplete => continue,
            Head::Respond(response) => {
                respond(stream, &response).await;
                return None;
            }
            Head::Upgrade(upgrade) => return Some(upgrade),
        }
    }
}

/// Writes `response`, then closes our side and drains the client's for a
/// moment, so that the client reads the response instead of a reset.
pub(crate) async fn respond(stream: &mut TcpStream, response: &Response) {
    tracing::debug!(status = %response.status, "answered");
    if stream.write_all(&response.bytes).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    linger(stream, CLOSE_TIMEOUT).await;
}

/// Reads and discards what the client still sends, until it closes or
/// `timeout` passes.
pub(crate) async fn linger(stream: &mut (impl AsyncRead + Unpin), timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut sink = [0u8; 1024];
    while let Ok(Ok(n)) = timeout_at(deadline, stream.read(&mut sink)).await {
        if n == 0 {
            return;
        }
    }
}
