//! A WebSocket client with no manners, for hostile-client tests.
//!
//! A WebSocket library refuses to send what a hostile client sends: unmasked
//! frames, RSV bits, reserved opcodes, fragmented or oversized control frames,
//! bad close codes. [`RawClient`] does the upgrade by hand over a tokio
//! `TcpStream` and then writes whatever bytes it is given; [`RawFrame`]
//! encodes frames field by field, valid or not. It reads the server's frames
//! back, and sees how the connection ends ([`End`]): every wait is bounded by
//! [`STEP_TIMEOUT`] and panics with what it waited for.

mod frame;

use std::io;
use std::net::SocketAddr;

use chat_protocol::message::ServerFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{STEP_TIMEOUT, abbreviate, http};

pub use frame::{RSV1, RSV2, RSV3, RawFrame, opcode};

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it (a FIN: the read returned 0).
    Eof,
    /// The server reset it (`ECONNRESET`).
    Reset,
}

/// What the client received next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A frame.
    Frame(RawFrame),
    /// The end of the connection.
    End(End),
}

/// A client that upgrades by hand, then writes any bytes and reads frames.
pub struct RawClient {
    stream: TcpStream,
    /// Bytes read and not yet decoded into frames.
    received: Vec<u8>,
    label: String,
}

impl RawClient {
    /// Connects `name` to `room` with a valid upgrade request; panics unless
    /// the server answers 101.
    pub async fn connect(addr: SocketAddr, room: &str, name: &str) -> Self {
        Self::connect_then(addr, room, name, &[]).await
    }

    /// Like [`RawClient::connect`], with `then` (frames, say) written in the
    /// same write as the request head: pipelined before the 101 arrives.
    pub async fn connect_then(addr: SocketAddr, room: &str, name: &str, then: &[u8]) -> Self {
        let path = format!("{}{room}/", chat_protocol::room::WS_PATH_PREFIX);
        let label = format!("{name} (raw, {path})");
        let request = [http::upgrade_request(addr, &path, &[]).as_bytes(), then].concat();
        let stream = timeout(STEP_TIMEOUT, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{label}: no TCP connect within {} s",
                    STEP_TIMEOUT.as_secs()
                )
            })
            .unwrap_or_else(|error| panic!("{label}: TCP connect failed: {error}"));
        let mut client = Self {
            stream,
            received: Vec::new(),
            label,
        };
        client.write(&request).await;
        let head_end = loop {
            if let Some(end) = client.received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if let Some(end) = client.read_more("the 101 response").await {
                panic!(
                    "{}: the connection ended ({end:?}) during the handshake",
                    client.label
                );
            }
        };
        let head = String::from_utf8_lossy(&client.received[..head_end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "{}: refused: {head:?}",
            client.label
        );
        client.received.drain(..head_end);
        client
    }

    /// The client's name and path, as failure messages show them.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Writes `bytes`, bounded; returns the error if the server is gone.
    pub async fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match timeout(STEP_TIMEOUT, self.stream.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Writes `bytes`; panics if that fails or takes longer than
    /// [`STEP_TIMEOUT`].
    pub async fn write(&mut self, bytes: &[u8]) {
        if let Err(error) = self.try_write(bytes).await {
            panic!(
                "{}: writing {} bytes failed: {error}",
                self.label,
                bytes.len()
            );
        }
    }

    /// Writes `frames`, all in one write.
    pub async fn send(&mut self, frames: &[RawFrame]) {
        let bytes: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
        self.write(&bytes).await;
    }

    /// Reads once more from the socket; returns how it ended, if it did.
    async fn read_more(&mut self, waiting_for: &str) -> Option<End> {
        let mut chunk = [0u8; 4096];
        match timeout(STEP_TIMEOUT, self.stream.read(&mut chunk)).await {
            Err(_) => panic!(
                "{}: waiting for {waiting_for}, nothing arrived within {} s",
                self.label,
                STEP_TIMEOUT.as_secs()
            ),
            Ok(Ok(0)) => Some(End::Eof),
            Ok(Ok(n)) => {
                self.received.extend_from_slice(&chunk[..n]);
                None
            }
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionReset => Some(End::Reset),
            Ok(Err(error)) => panic!(
                "{}: waiting for {waiting_for}, read failed: {error}",
                self.label
            ),
        }
    }

    /// The next frame from the server, or the end of the connection.
    pub async fn next_event(&mut self, waiting_for: &str) -> Event {
        loop {
            if let Some((frame, len)) = RawFrame::decode(&self.received) {
                self.received.drain(..len);
                return Event::Frame(frame);
            }
            if let Some(end) = self.read_more(waiting_for).await {
                assert!(
                    self.received.is_empty(),
                    "{}: the connection ended ({end:?}) in the middle of a frame",
                    self.label
                );
                return Event::End(end);
            }
        }
    }

    /// The next frame; panics if the connection ends instead.
    pub async fn recv_frame(&mut self, waiting_for: &str) -> RawFrame {
        match self.next_event(waiting_for).await {
            Event::Frame(frame) => frame,
            Event::End(end) => panic!(
                "{}: waiting for {waiting_for}, the connection ended ({end:?})",
                self.label
            ),
        }
    }

    /// The next frame must be the chat message `text`, in an unmasked, final
    /// text frame.
    pub async fn expect_message(&mut self, text: &str) {
        let waiting_for = format!("the chat message {}", abbreviate(text));
        let frame = self.recv_frame(&waiting_for).await;
        let parsed = std::str::from_utf8(&frame.payload)
            .ok()
            .and_then(|t| ServerFrame::parse(t).ok());
        let ok = frame.opcode == opcode::TEXT && frame.fin && frame.mask.is_none();
        match parsed {
            Some(ServerFrame::Message { message }) if ok && message == text => {}
            _ => panic!(
                "{}: waiting for {waiting_for}, got {}",
                self.label,
                frame.describe()
            ),
        }
    }

    /// The next frame must be a close frame (unmasked); returns it.
    pub async fn expect_close_frame(&mut self, waiting_for: &str) -> RawFrame {
        let frame = self.recv_frame(waiting_for).await;
        assert!(
            frame.opcode == opcode::CLOSE && frame.fin && frame.mask.is_none(),
            "{}: waiting for {waiting_for}, got {}",
            self.label,
            frame.describe()
        );
        frame
    }

    /// Reads until the connection ends; panics if a frame comes first or the
    /// end does not come in time.
    pub async fn expect_end(&mut self, after: &str) -> End {
        let waiting_for = format!("the end of the connection after {after}");
        match self.next_event(&waiting_for).await {
            Event::End(end) => end,
            Event::Frame(frame) => {
                panic!("{}: after {after}, got {}", self.label, frame.describe())
            }
        }
    }

    /// Answers the server's close frame `close` with the same code, as a
    /// client must, then waits for the end of the connection.
    pub async fn answer_close(&mut self, close: &RawFrame) -> End {
        let answer = RawFrame::new(opcode::CLOSE, close.payload.get(..2).unwrap_or_default());
        // The server may already have hung up: the answer is a courtesy.
        let _ = self.try_write(&answer.encode()).await;
        self.expect_end("the server's close frame").await
    }

    /// Closes the sending side (`shutdown(SHUT_WR)`): a half-closed socket.
    pub async fn shutdown_write(&mut self) {
        if let Err(error) = self.stream.shutdown().await {
            panic!("{}: shutdown(Write) failed: {error}", self.label);
        }
    }

    /// Resets the connection: `SO_LINGER` 0, then close, so the kernel sends
    /// an RST instead of a FIN.
    pub fn reset(self) {
        if let Err(error) = self.stream.set_zero_linger() {
            panic!("{}: setting SO_LINGER to 0 failed: {error}", self.label);
        }
    }
}
