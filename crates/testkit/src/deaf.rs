//! A client that never answers: it completes the handshake, then only reads
//! frames, without the automatic pong or close reply a WebSocket library
//! would send. A peer that has vanished without closing its TCP connection
//! looks like this to a server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_protocol::tungstenite::protocol::frame::FrameSocket;
use chat_protocol::tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};

use crate::{STEP_TIMEOUT, http};

/// A client that never answers pings or close frames. Blocking: run it on a
/// blocking thread (`tokio::task::spawn_blocking`) from async tests.
pub struct DeafClient {
    socket: FrameSocket<TcpStream>,
    label: String,
}

/// What a [`DeafClient`] saw before the server closed it.
#[derive(Debug, Clone)]
pub struct DeafEnd {
    /// Pings received (and not answered).
    pub pings: usize,
    /// Other data frames received (chat messages, error replies).
    pub data_frames: usize,
    /// The close frame.
    pub close: CloseFrame,
}

impl DeafClient {
    /// Connects to `room` on the server at `addr`, doing the handshake by
    /// hand. Panics if it fails or takes longer than [`STEP_TIMEOUT`].
    pub fn connect(addr: SocketAddr, room: &str) -> Self {
        let path = format!("{}{room}/", chat_protocol::room::WS_PATH_PREFIX);
        let label = format!("deaf client ({path})");
        Self::try_connect(addr, &path, label.clone())
            .unwrap_or_else(|error| panic!("{label} connecting to {addr} failed: {error:#}"))
    }

    fn try_connect(addr: SocketAddr, path: &str, label: String) -> anyhow::Result<Self> {
        let mut stream =
            TcpStream::connect_timeout(&addr, STEP_TIMEOUT).context("TCP connect failed")?;
        stream.set_read_timeout(Some(STEP_TIMEOUT))?;
        stream.set_write_timeout(Some(STEP_TIMEOUT))?;
        stream
            .write_all(http::upgrade_request(addr, path, &[]).as_bytes())
            .context("sending the upgrade request failed")?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let n = stream
                .read(&mut chunk)
                .context("reading the response failed")?;
            if n == 0 {
                bail!("connection closed during the handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]);
        if !head.starts_with("HTTP/1.1 101") {
            bail!("handshake refused: {head:?}");
        }
        let leftover = buf.split_off(head_end);
        Ok(Self {
            socket: FrameSocket::from_partially_read(stream, leftover),
            label,
        })
    }

    /// Reads frames, answering none, until a close frame arrives or `timeout`
    /// passes (then it panics). Panics too if the connection ends without a
    /// close frame.
    pub fn wait_for_close(&mut self, timeout: Duration) -> DeafEnd {
        let deadline = Instant::now() + timeout;
        let (mut pings, mut data_frames) = (0, 0);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                panic!(
                    "{}: no close frame within {} s ({pings} pings, {data_frames} other frames)",
                    self.label,
                    timeout.as_secs()
                );
            }
            self.socket
                .get_mut()
                .set_read_timeout(Some(remaining))
                .expect("setting a read timeout should work");
            let frame = match self.socket.read(None) {
                Ok(Some(frame)) => frame,
                Ok(None) => panic!(
                    "{}: the connection ended without a close frame ({pings} pings)",
                    self.label
                ),
                Err(chat_protocol::tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(error) => panic!("{}: reading failed: {error}", self.label),
            };
            match frame.header().opcode {
                OpCode::Control(Control::Ping) => pings += 1,
                OpCode::Control(Control::Close) => {
                    let payload = frame.payload();
                    let close = match payload {
                        [high, low, reason @ ..] => CloseFrame {
                            code: CloseCode::from(u16::from_be_bytes([*high, *low])),
                            reason: String::from_utf8_lossy(reason).into_owned().into(),
                        },
                        _ => panic!("{}: a close frame without a code", self.label),
                    };
                    return DeafEnd {
                        pings,
                        data_frames,
                        close,
                    };
                }
                _ => data_frames += 1,
            }
        }
    }
}
