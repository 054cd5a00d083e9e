//! A WebSocket chat client whose every wait is bounded.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chat_protocol::message::{self, ServerFrame};
use chat_protocol::tungstenite::client::IntoClientRequest;
use chat_protocol::tungstenite::http::HeaderValue;
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_protocol::tungstenite::protocol::frame::Frame;
use chat_protocol::tungstenite::protocol::frame::coding::CloseCode;
use chat_protocol::tungstenite::{Bytes, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;

use crate::{STEP_TIMEOUT, abbreviate};

static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// How to connect: the room (or a raw path), extra headers, socket options.
///
/// ```no_run
/// # async fn f(addr: std::net::SocketAddr) {
/// use chat_testkit::Connect;
/// let client = Connect::room("lobby")
///     .name("alice")
///     .origin(&format!("http://{addr}"))
///     .to(addr)
///     .await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Connect {
    path: String,
    name: Option<String>,
    headers: Vec<(String, String)>,
    recv_buffer_bytes: Option<u32>,
    source: Option<IpAddr>,
}

impl Connect {
    /// Connects to room `room`, at `/ws/chat/<room>/`.
    pub fn room(room: &str) -> Self {
        Self::path(&format!("{}{room}/", chat_protocol::room::WS_PATH_PREFIX))
    }

    /// Connects to `path` (with any query string) instead of a room's path.
    pub fn path(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            name: None,
            headers: Vec::new(),
            recv_buffer_bytes: None,
            source: None,
        }
    }

    /// Names the client in failure messages (default: `client-<n>`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends `Origin: origin`, as a browser would.
    pub fn origin(self, origin: &str) -> Self {
        self.header("Origin", origin)
    }

    /// Sets the socket's receive buffer (`SO_RCVBUF`) before connecting, so a
    /// client that does not read makes the server's writes block sooner.
    pub fn recv_buffer_bytes(mut self, bytes: u32) -> Self {
        self.recv_buffer_bytes = Some(bytes);
        self
    }

    /// Connects from `source`, a local address (127.0.0.2, 127.0.0.3, ...
    /// are all this machine's), so that the server sees another client
    /// address; by default the system picks 127.0.0.1.
    pub fn from(mut self, source: IpAddr) -> Self {
        self.source = Some(source);
        self
    }

    /// Connects to the server at `addr`, panicking if the handshake fails or
    /// takes longer than [`STEP_TIMEOUT`].
    pub async fn to(self, addr: SocketAddr) -> Client {
        let what = format!("{} connecting to ws://{addr}{}", self.label(), self.path);
        self.try_to(addr)
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error:#}"))
    }

    /// Connects to the server at `addr`; a refused handshake is an error
    /// (for a status, see [`refusal_status`]).
    pub async fn try_to(self, addr: SocketAddr) -> anyhow::Result<Client> {
        let label = self.label();
        let url = format!("ws://{addr}{}", self.path);
        let mut request = url
            .as_str()
            .into_client_request()
            .with_context(|| format!("bad URL {url}"))?;
        for (name, value) in &self.headers {
            let name: chat_protocol::tungstenite::http::HeaderName = name
                .parse()
                .with_context(|| format!("bad header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("bad header value {value:?}"))?;
            request.headers_mut().append(name, value);
        }
        let connect = async {
            let socket = TcpSocket::new_v4().context("cannot create a socket")?;
            if let Some(bytes) = self.recv_buffer_bytes {
                socket
                    .set_recv_buffer_size(bytes)
                    .context("cannot set SO_RCVBUF")?;
            }
            if let Some(source) = self.source {
                socket
                    .bind(SocketAddr::new(source, 0))
                    .with_context(|| format!("cannot bind to {source}"))?;
            }
            let stream = socket.connect(addr).await.context("TCP connect failed")?;
            stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
            let (ws, _response) = tokio_tungstenite::client_async(request, stream)
                .await
                .context("WebSocket handshake failed")?;
            anyhow::Ok(ws)
        };
        let ws = timeout(STEP_TIMEOUT, connect)
            .await
            .with_context(|| format!("no handshake within {} s", STEP_TIMEOUT.as_secs()))??;
        Ok(Client {
            ws,
            label,
            timeout: STEP_TIMEOUT,
            pings_received: 0,
        })
    }

    fn label(&self) -> String {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("client-{}", NEXT_CLIENT.fetch_add(1, Ordering::Relaxed)));
        format!("{name} ({})", self.path)
    }
}

/// The HTTP status with which a server refused a WebSocket handshake, from
/// the error of [`Connect::try_to`], or `None` for any other failure.
pub fn refusal_status(error: &anyhow::Error) -> Option<u16> {
    error.chain().find_map(|cause| {
        match cause.downcast_ref::<chat_protocol::tungstenite::Error>()? {
            chat_protocol::tungstenite::Error::Http(response) => Some(response.status().as_u16()),
            _ => None,
        }
    })
}

/// A connected chat client. Every method that waits panics, naming this
/// client and what it waited for, when the wait exceeds its timeout
/// ([`STEP_TIMEOUT`] unless changed with [`Client::set_timeout`]).
///
/// Pings from the server are answered automatically (by tungstenite) while
/// the client reads; the receiving methods other than [`Client::recv_any`]
/// skip them and count them ([`Client::pings_received`]).
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    label: String,
    timeout: Duration,
    pings_received: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("label", &self.label)
            .finish()
    }
}

impl Client {
    /// Connects to `room` on the server at `addr` (see [`Connect`] for more
    /// options). Returns once the handshake has completed: the client is in
    /// the room.
    pub async fn connect(addr: SocketAddr, room: &str) -> Self {
        Connect::room(room).to(addr).await
    }

    /// The client's name and path, as failure messages show them.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Pings received from the server so far (answered automatically).
    pub fn pings_received(&self) -> usize {
        self.pings_received
    }

    /// Changes how long each wait of this client may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Sends `{"message": text}`.
    pub async fn send_chat(&mut self, text: &str) {
        self.send(
            Message::text(message::encode_client(text)),
            "a chat message",
        )
        .await;
    }

    /// Sends a text frame holding exactly `text`.
    pub async fn send_text(&mut self, text: &str) {
        self.send(Message::text(text), "a text frame").await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.send(Message::binary(data.to_vec()), "a binary frame")
            .await;
    }

    /// Sends a ping with `payload`.
    pub async fn send_ping(&mut self, payload: &[u8]) {
        self.send(Message::Ping(Bytes::copy_from_slice(payload)), "a ping")
            .await;
    }

    /// Sends a frame as given (masked, as every client frame is): for frames
    /// a well-behaved client never sends, such as invalid UTF-8 in a text
    /// frame or a reserved opcode.
    pub async fn send_raw_frame(&mut self, frame: Frame) {
        self.send(Message::Frame(frame), "a raw frame").await;
    }

    /// Starts the closing handshake with `code` and `reason`. Read the
    /// server's answer with [`Client::expect_close`].
    pub async fn send_close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.send(Message::Close(Some(frame)), "a close frame")
            .await;
    }

    async fn send(&mut self, message: Message, what: &str) {
        match timeout(self.timeout, self.ws.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("{}: sending {what} failed: {error}", self.label),
            Err(_) => panic!(
                "{}: sending {what} took longer than {} s",
                self.label,
                self.timeout.as_secs()
            ),
        }
    }

    /// The next frame from the server other than a ping (pings are answered
    /// automatically, and counted). Panics if none comes in time, or the
    /// connection ends or fails.
    pub async fn recv(&mut self, waiting_for: &str) -> Message {
        loop {
            match self.recv_any(waiting_for).await {
                Message::Ping(_) => self.pings_received += 1,
                message => return message,
            }
        }
    }

    /// The next frame from the server, whatever it is, pings included. Panics
    /// if none comes in time, or the connection ends or fails.
    pub async fn recv_any(&mut self, waiting_for: &str) -> Message {
        match timeout(self.timeout, self.ws.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(error))) => panic!(
                "{}: waiting for {waiting_for}, the connection failed: {error}",
                self.label
            ),
            Ok(None) => panic!(
                "{}: waiting for {waiting_for}, the connection ended",
                self.label
            ),
            Err(_) => panic!(
                "{}: waiting for {waiting_for}, nothing arrived within {} s",
                self.label,
                self.timeout.as_secs()
            ),
        }
    }

    /// The next frame, which must be a text frame holding a server frame.
    pub async fn recv_frame(&mut self, waiting_for: &str) -> ServerFrame {
        let message = self.recv(waiting_for).await;
        let Message::Text(text) = message else {
            panic!(
                "{}: waiting for {waiting_for}, got {} instead of a text frame",
                self.label,
                describe(&message)
            );
        };
        ServerFrame::parse(&text).unwrap_or_else(|error| {
            panic!(
                "{}: waiting for {waiting_for}, got a text frame that is not a server frame \
                 ({error}): {}",
                self.label,
                abbreviate(&text)
            )
        })
    }

    /// The next frame, which must be a chat message; returns its text.
    pub async fn recv_message(&mut self) -> String {
        match self.recv_frame("a chat message").await {
            ServerFrame::Message { message } => message,
            ServerFrame::Error { error } => panic!(
                "{}: expected a chat message, got the error reply {error:?}",
                self.label
            ),
        }
    }

    /// The next frame must be the chat message `text`.
    pub async fn expect_message(&mut self, text: &str) {
        let waiting_for = format!("the chat message {}", abbreviate(text));
        match self.recv_frame(&waiting_for).await {
            ServerFrame::Message { message } if message == text => {}
            ServerFrame::Message { message } => panic!(
                "{}: expected the chat message {}, got the chat message {}",
                self.label,
                abbreviate(text),
                abbreviate(&message)
            ),
            ServerFrame::Error { error } => panic!(
                "{}: expected the chat message {}, got the error reply {error:?}",
                self.label,
                abbreviate(text)
            ),
        }
    }

    /// The next frame must be an error reply `{"error": ...}`; returns its text.
    pub async fn expect_error(&mut self) -> String {
        match self.recv_frame("an error reply").await {
            ServerFrame::Error { error } => error,
            ServerFrame::Message { message } => panic!(
                "{}: expected an error reply, got the chat message {}",
                self.label,
                abbreviate(&message)
            ),
        }
    }

    /// The next frame must be a pong with `payload`.
    pub async fn expect_pong(&mut self, payload: &[u8]) {
        match self.recv("a pong").await {
            Message::Pong(data) if data == payload => {}
            other => panic!(
                "{}: expected a pong with {} bytes, got {}",
                self.label,
                payload.len(),
                describe(&other)
            ),
        }
    }

    /// The next frame must be a close frame with `code`; returns it. Then
    /// answers it and reads until the server ends the connection, so the
    /// server sees a clean closing handshake.
    pub async fn expect_close(&mut self, code: u16) -> CloseFrame {
        let waiting_for = format!("a close frame with code {code}");
        let message = self.recv(&waiting_for).await;
        let Message::Close(Some(frame)) = message else {
            panic!(
                "{}: expected a close frame with code {code}, got {}",
                self.label,
                describe(&message)
            );
        };
        assert_eq!(
            u16::from(frame.code),
            code,
            "{}: close frame has the wrong code (reason {:?})",
            self.label,
            frame.reason.as_str()
        );
        self.finish_close().await;
        frame
    }

    /// Reads chat messages until a close frame arrives; returns the messages
    /// and the close frame (answered, as in [`Client::expect_close`]). Panics
    /// on anything else, or if the connection ends without a close frame.
    pub async fn recv_until_close(&mut self) -> (Vec<String>, CloseFrame) {
        match self.recv_until_gone().await {
            (messages, Some(frame)) => (messages, frame),
            (messages, None) => panic!(
                "{}: expected chat messages then a close frame, the connection ended without one after {} messages",
                self.label,
                messages.len()
            ),
        }
    }

    /// Reads chat messages until the connection ends, by a close frame
    /// (answered) or without one (end of stream, or reset); returns the
    /// messages and the close frame, if any. Panics on anything else, or if
    /// the connection does not end in time.
    pub async fn recv_until_gone(&mut self) -> (Vec<String>, Option<CloseFrame>) {
        let mut messages = Vec::new();
        loop {
            let next = timeout(self.timeout, self.ws.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(None | Some(Err(_))) => return (messages, None),
                Err(_) => panic!(
                    "{}: the connection did not end within {} s ({} messages so far)",
                    self.label,
                    self.timeout.as_secs(),
                    messages.len()
                ),
            };
            match message {
                Message::Text(text) => match ServerFrame::parse(&text) {
                    Ok(ServerFrame::Message { message }) => messages.push(message),
                    _ => panic!(
                        "{}: expected chat messages, got the text frame {}",
                        self.label,
                        abbreviate(&text)
                    ),
                },
                Message::Ping(_) => self.pings_received += 1,
                Message::Close(frame) => {
                    self.finish_close().await;
                    return (messages, frame);
                }
                other => panic!(
                    "{}: expected chat messages, got {} after {} messages",
                    self.label,
                    describe(&other),
                    messages.len()
                ),
            }
        }
    }

    /// After a close frame: reads (answering it on the way) until the
    /// connection ends. A reset at this point is fine: the server has said
    /// what it had to say.
    pub async fn finish_close(&mut self) {
        loop {
            match timeout(self.timeout, self.ws.next()).await {
                Ok(None | Some(Err(_))) => return,
                Ok(Some(Ok(Message::Ping(_)))) => self.pings_received += 1,
                Ok(Some(Ok(message))) => panic!(
                    "{}: after the close frame, got {}",
                    self.label,
                    describe(&message)
                ),
                Err(_) => panic!(
                    "{}: the server did not end the connection within {} s of its close frame",
                    self.label,
                    self.timeout.as_secs()
                ),
            }
        }
    }
}

/// A frame, described for a failure message.
fn describe(message: &Message) -> String {
    match message {
        Message::Text(text) => format!("the text frame {}", abbreviate(text)),
        Message::Binary(data) => format!("a binary frame of {} bytes", data.len()),
        Message::Ping(data) => format!("a ping of {} bytes", data.len()),
        Message::Pong(data) => format!("a pong of {} bytes", data.len()),
        Message::Close(Some(frame)) => format!(
            "a close frame with code {} ({:?})",
            u16::from(frame.code),
            frame.reason.as_str()
        ),
        Message::Close(None) => "a close frame without a code".to_owned(),
        Message::Frame(_) => "a raw frame".to_owned(),
    }
}
