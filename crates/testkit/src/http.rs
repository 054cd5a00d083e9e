//! Raw HTTP over a `TcpStream`: requests a WebSocket client library would
//! not send (a plain `GET` on the WebSocket path, a wrong version) and the
//! plain responses of refused handshakes and pages.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

use crate::STEP_TIMEOUT;

/// A `Sec-WebSocket-Key` for hand-made upgrade requests (RFC 6455's sample).
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Largest response head read; a server sending more is broken.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// One HTTP response as received.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header lines, as `(name, value)` pairs in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for a 101; as much as `Content-Length` says otherwise,
    /// or everything up to the end of the connection without one).
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A complete, valid WebSocket upgrade request for `path` on the server at
/// `addr` (with `Host: <addr>`), plus `extra` headers.
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n"
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// A plain `GET path` request (no upgrade) to the server at `addr`.
pub fn get_request(addr: SocketAddr, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n\r\n")
}

/// A TCP connection to `addr` from the local address `source`, or the
/// system's choice.
pub async fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(addr).await
}

/// Sends `request` to `addr` and reads the response: its head, then a body of
/// `Content-Length` bytes (none after a 101). Each step is bounded by
/// [`STEP_TIMEOUT`]. Panics, with `request`'s first line, on any failure.
pub async fn exchange(addr: SocketAddr, request: &str) -> HttpResponse {
    let first_line = request.lines().next().unwrap_or_default();
    try_exchange(addr, request)
        .await
        .unwrap_or_else(|error| panic!("HTTP {first_line:?} to {addr} failed: {error:#}"))
}

/// Sends `request` to `addr` and returns the response's status code (see
/// [`exchange`]).
pub async fn status(addr: SocketAddr, request: &str) -> u16 {
    exchange(addr, request).await.status
}

/// [`exchange`], returning failures instead of panicking.
pub async fn try_exchange(addr: SocketAddr, request: &str) -> anyhow::Result<HttpResponse> {
    try_exchange_from(addr, None, request).await
}

/// [`try_exchange`] from the local address `source` (127.0.0.2, ...: see
/// [`crate::Connect::from`]), or the system's choice.
pub async fn try_exchange_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
    request: &str,
) -> anyhow::Result<HttpResponse> {
    let mut stream = timeout(STEP_TIMEOUT, connect_from(addr, source))
        .await
        .context("connect timed out")?
        .context("connect failed")?;
    timeout(STEP_TIMEOUT, stream.write_all(request.as_bytes()))
        .await
        .context("sending the request timed out")?
        .context("sending the request failed")?;

    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            bail!("response head larger than {MAX_HEAD_BYTES} bytes");
        }
        if read_some(&mut stream, &mut buf).await? == 0 {
            bail!(
                "connection closed before a complete response head; got {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    };
    let head = std::str::from_utf8(&buf[..head_len]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let mut response = HttpResponse {
        status,
        headers,
        body: String::new(),
    };

    let mut body = buf.split_off(head_len);
    if status == 101 {
        body.clear();
    } else if let Some(length) = response.header("Content-Length") {
        let length: usize = length
            .parse()
            .with_context(|| format!("bad Content-Length {length:?}"))?;
        while body.len() < length {
            if read_some(&mut stream, &mut body).await? == 0 {
                bail!(
                    "connection closed after {} of {length} body bytes",
                    body.len()
                );
            }
        }
        body.truncate(length);
    } else {
        while read_some(&mut stream, &mut body).await? > 0 {}
    }
    response.body = String::from_utf8(body).context("response body is not UTF-8")?;
    Ok(response)
}

async fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = timeout(STEP_TIMEOUT, stream.read(&mut chunk))
        .await
        .with_context(|| format!("no response bytes within {} s", STEP_TIMEOUT.as_secs()))?
        .context("reading the response failed")?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
