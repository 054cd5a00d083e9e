//! Hostile clients, one every `bad_client_every`, rotating through the kinds
//! of bad input the contract answers: bad frames get `{"error": ...}` and
//! the connection stays (proved by a ping answered), an oversized message
//! 1009, invalid UTF-8 1007, a bad path 404, a garbage request head 400.
//!
//! The WebSocket ones join the steady rooms, so that the steady members,
//! who take any frame that is not their room's chat as a failure, prove
//! that nothing of it reaches anyone else.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chat_protocol::ServerConfig;
use chat_protocol::message::encode_client;
use chat_protocol::tungstenite::protocol::frame::Frame;
use chat_protocol::tungstenite::protocol::frame::coding::{Data, OpCode};
use chat_protocol::tungstenite::{Error as WsError, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};
use tokio_util::task::TaskTracker;

use crate::client::Connection;
use crate::probe::Received;
use crate::soak::dial::close_politely;
use crate::soak::dial::{connect_path, describe_close};
use crate::soak::state::{Open, Shared, bump, first_at};

/// How long a bad client waits for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The kinds, in the order they take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text frame that is not JSON: an error reply.
    InvalidJson,
    /// JSON without a `message` field: an error reply.
    NoMessage,
    /// A binary frame: an error reply.
    Binary,
    /// A message over the server's limit: close 1009.
    Oversized,
    /// A text frame that is not UTF-8: close 1007.
    InvalidUtf8,
    /// A handshake to a path that is no endpoint: 404.
    BadPath,
    /// A request head that is not HTTP: 400.
    GarbageHead,
}

impl Kind {
    /// Every kind, in turn order.
    pub const ALL: [Kind; 7] = [
        Kind::InvalidJson,
        Kind::NoMessage,
        Kind::Binary,
        Kind::Oversized,
        Kind::InvalidUtf8,
        Kind::BadPath,
        Kind::GarbageHead,
    ];
}

/// Starts a bad client every `bad_client_every`, in turn over the kinds and
/// the steady rooms, until the load stops; waits for those under way.
pub async fn run(shared: Arc<Shared>, rooms: Vec<String>) {
    let every = shared.config.bad_client_every;
    if every.is_zero() || rooms.is_empty() {
        return;
    }
    let tracker = TaskTracker::new();
    let mut next = Instant::from_std(shared.clock) + first_at(every);
    for n in 0usize.. {
        tokio::select! {
            () = shared.load.cancelled() => break,
            () = sleep_until(next) => {}
        }
        let kind = Kind::ALL[n % Kind::ALL.len()];
        let path = format!("/ws/chat/{}/", rooms[n % rooms.len()]);
        let shared = Arc::clone(&shared);
        bump(&shared.counts.bad_clients);
        tracker.spawn(async move {
            let answer = tokio::time::timeout(ANSWER_TIMEOUT, attempt(&shared, kind, &path))
                .await
                .unwrap_or_else(|_| Err(anyhow!("no answer within {} s", ANSWER_TIMEOUT.as_secs())));
            match answer {
                Ok(()) => bump(&shared.counts.bad_answered),
                Err(error) => shared.note(format!(
                    "BAD: bad client {n} ({kind:?}, {path}) was not answered as the protocol says: {error:#}"
                )),
            }
        });
        next = (next + every).max(Instant::now());
    }
    tracker.close();
    tracker.wait().await;
}

async fn attempt(shared: &Arc<Shared>, kind: Kind, path: &str) -> anyhow::Result<()> {
    let timeout = shared.config.connect_timeout;
    match kind {
        Kind::BadPath => {
            let outcome = connect_path(&shared.target, "/ws/nowhere/", None, timeout).await;
            let status = match &outcome {
                Ok(_) => bail!("the handshake to /ws/nowhere/ succeeded"),
                Err(error) => match error.downcast_ref::<WsError>() {
                    Some(WsError::Http(response)) => response.status().as_u16(),
                    _ => bail!("the handshake failed without an HTTP status: {error:#}"),
                },
            };
            expect(status == 404, || format!("status {status} instead of 404"))
        }
        Kind::GarbageHead => garbage_head(shared).await,
        _ => {
            let mut ws = connect_path(&shared.target, path, None, timeout)
                .await
                .context("it could not connect")?;
            let _open = Open::new(shared);
            let answer = frames(&mut ws, kind).await;
            drop(ws);
            answer
        }
    }
}

/// The WebSocket kinds: sends the bad input, expects the answer.
async fn frames(ws: &mut Connection, kind: Kind) -> anyhow::Result<()> {
    let limit = ServerConfig::default().max_message_bytes;
    let bad = match kind {
        Kind::InvalidJson => Message::text(r#"{"message": "unterminated"#),
        Kind::NoMessage => Message::text(r#"{"text": "no message field"}"#),
        Kind::Binary => Message::Binary(b"\x00\x01 binary".to_vec().into()),
        Kind::Oversized => Message::text(encode_client(&"x".repeat(limit + 1024))),
        Kind::InvalidUtf8 => Message::Frame(Frame::message(
            b"{\"message\": \"\xff\xfe\"}".to_vec(),
            OpCode::Data(Data::Text),
            true,
        )),
        Kind::BadPath | Kind::GarbageHead => bail!("{kind:?} is no WebSocket kind"),
    };
    // A server may close before reading all of an oversized message; the
    // close frame is the answer, whatever became of the send.
    let sent = ws.send(bad).await;
    let want_close = match kind {
        Kind::Oversized => Some(1009),
        Kind::InvalidUtf8 => Some(1007),
        _ => {
            sent.context("its send failed")?;
            None
        }
    };
    let mut pinged = false;
    loop {
        let frame = ws.next().await;
        match (frame, want_close) {
            // The room's chat, which it receives as any member does.
            (Some(Ok(Message::Text(text))), _)
                if matches!(Received::classify(&text), Received::Probe(_)) => {}
            (Some(Ok(Message::Text(text))), None) if !pinged => {
                expect(Received::classify(&text) == Received::Error, || {
                    format!("{text:?} instead of an error reply")
                })?;
                ws.send(Message::Ping(b"still there?".to_vec().into()))
                    .await
                    .context("the connection did not stay after the error reply")?;
                pinged = true;
            }
            (Some(Ok(Message::Pong(_))), None) if pinged => {
                close_politely(ws, |_| None).await;
                return Ok(());
            }
            (Some(Ok(Message::Close(frame))), want) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                return expect(want.is_some() && code == want, || match want {
                    Some(want) => format!(
                        "closed with {} instead of {want}",
                        describe_close(frame.as_ref())
                    ),
                    None => format!(
                        "closed with {} instead of staying",
                        describe_close(frame.as_ref())
                    ),
                });
            }
            (Some(Ok(Message::Ping(_) | Message::Pong(_))), _) => {}
            (Some(Ok(other)), _) => bail!("unexpected {other:?}"),
            (Some(Err(error)), _) => bail!("its connection broke without a close frame: {error}"),
            (None, _) => bail!("its connection ended without a close frame"),
        }
    }
}

/// A request head that is not HTTP: expects `HTTP/1.1 400`.
async fn garbage_head(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(shared.target.addr)
        .await
        .context("it could not connect")?;
    let _open = Open::new(shared);
    stream
        .write_all(b"\x16\x03\x01\x02\x00 garbage \xff\r\n\r\n")
        .await
        .context("its send failed")?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).await.context("its read failed")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    expect(line.starts_with("HTTP/1.1 400"), || {
        format!("{line:?} instead of HTTP/1.1 400")
    })
}

fn expect(ok: bool, otherwise: impl FnOnce() -> String) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(anyhow!(otherwise()))
    }
}
