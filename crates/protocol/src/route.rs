//! From an HTTP request head to what the server does with it.
//!
//! tungstenite's server handshake refuses a request without upgrade headers
//! before any callback sees it, so serving the page on the same port, and
//! refusing with a status and a one-line body, means reading the head first,
//! routing it here, and only then handing the upgrade over. One function
//! decides for both servers: [`parse_head`].

use http::StatusCode;
use tungstenite::handshake::server::{create_response, write_response};

use crate::page;
use crate::room::{self, PAGE_PATH_PREFIX, RoomName, WS_PATH_PREFIX};

/// Most headers a request head may carry; more is refused with 431.
pub const MAX_HEADERS: usize = 64;

/// What to do with the request head at the start of a buffer.
#[derive(Debug)]
pub enum Head {
    /// The head is not complete yet: read more (the buffer is below the limit).
    Incomplete,
    /// Write this response and close the connection (a page or a refusal).
    Respond(Response),
    /// A WebSocket upgrade: join the room, then write the 101 and speak
    /// WebSocket.
    Upgrade(Upgrade),
}

/// A routed WebSocket upgrade.
#[derive(Debug)]
pub struct Upgrade {
    /// The room to join.
    pub room: RoomName,
    /// The 101 response, to write once joined.
    pub response: Vec<u8>,
    /// Bytes the client sent after its head (already WebSocket frames).
    pub leftover: Vec<u8>,
}

/// What to do with one complete request head.
enum Route {
    Respond(Response),
    Upgrade { room: RoomName, response: Vec<u8> },
}

/// A complete HTTP response, ready to write, after which the server closes.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (for logs and tests).
    pub status: StatusCode,
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
}

/// Why a request is refused, with its standard status and one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The head is not valid HTTP/1.x (400).
    #[error("malformed HTTP request")]
    Malformed,
    /// No such page or endpoint (404).
    #[error("not found")]
    NotFound,
    /// The room name in the path is invalid (404).
    #[error("invalid room name: {0}")]
    InvalidRoom(room::InvalidRoomName),
    /// Only GET is served (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The WebSocket endpoint was asked for without a valid upgrade (400).
    #[error("bad WebSocket upgrade: {0}")]
    BadUpgrade(String),
    /// The client asked for another WebSocket version than 13 (426).
    #[error("unsupported WebSocket version: only 13 is supported")]
    UnsupportedVersion,
    /// The `Origin` is neither this server nor an allowed origin (403).
    #[error("origin not allowed")]
    ForeignOrigin,
    /// The server is at its connection limit (503).
    #[error("server full: too many connections")]
    ServerFull,
    /// The client's address holds `--max-connections-per-ip` connections
    /// already (429).
    #[error("too many connections from your address")]
    TooManyFromAddress,
    /// The client's address opens connections faster than
    /// `--max-handshakes-per-ip-per-sec` (429, retry after a second).
    #[error("too many new connections from your address: try again later")]
    TooFastFromAddress,
    /// The server could not start a thread for the connection: the machine's
    /// or the process's thread limit is reached (503; `chat-sync` only).
    #[error("server busy: no thread for this connection, try again later")]
    OutOfThreads,
    /// The server is shutting down (503).
    #[error("server shutting down")]
    ShuttingDown,
    /// The room's Redis subscription could not be confirmed (503).
    #[error("chat layer unavailable: try again later")]
    LayerUnavailable,
    /// The request head is larger than the limit (431).
    #[error("request head too large")]
    HeadTooLarge,
    /// The request head did not arrive within the handshake timeout (408).
    #[error("request head not received in time")]
    Timeout,
}

impl Refusal {
    /// The status code of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed | Self::BadUpgrade(_) => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::InvalidRoom(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::ForeignOrigin => StatusCode::FORBIDDEN,
            Self::ServerFull | Self::OutOfThreads | Self::ShuttingDown | Self::LayerUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::TooManyFromAddress | Self::TooFastFromAddress => StatusCode::TOO_MANY_REQUESTS,
            Self::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The response: the status, and the reason as a one-line plain-text body.
    pub fn response(&self) -> Response {
        let extra: &[(&str, &str)] = match self {
            Self::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            Self::MethodNotAllowed => &[("Allow", "GET")],
            Self::TooFastFromAddress => &[("Retry-After", "1")],
            _ => &[],
        };
        let body = format!("{self}\n");
        http_response(
            self.status(),
            "text/plain; charset=utf-8",
            extra,
            body.as_bytes(),
        )
    }
}

/// Builds a complete `Connection: close` response.
fn http_response(
    status: StatusCode,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n",
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Response { status, bytes }
}

fn page_response(html: &str) -> Response {
    http_response(
        StatusCode::OK,
        "text/html; charset=utf-8",
        &[
            ("Cache-Control", "no-cache"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
        ],
        html.as_bytes(),
    )
}

/// Parses and routes the request head at the start of `buf`.
///
/// `max_head_bytes` is the limit: a head still incomplete at that length is
/// refused with 431. `allowed_origins` are the configured extra origins. For
/// an upgrade, the bytes after the head are moved out of `buf` into
/// [`Upgrade::leftover`].
pub fn parse_head(buf: &mut Vec<u8>, max_head_bytes: usize, allowed_origins: &[String]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let (len, route) = match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= max_head_bytes => {
            return Head::Respond(Refusal::HeadTooLarge.response());
        }
        Ok(httparse::Status::Partial) => return Head::Incomplete,
        Err(httparse::Error::TooManyHeaders) => {
            return Head::Respond(Refusal::HeadTooLarge.response());
        }
        Err(_) => return Head::Respond(Refusal::Malformed.response()),
        Ok(httparse::Status::Complete(len)) => (len, route(&request, allowed_origins)),
    };
    match route {
        Ok(Route::Respond(response)) => Head::Respond(response),
        Err(refusal) => Head::Respond(refusal.response()),
        Ok(Route::Upgrade { room, response }) => Head::Upgrade(Upgrade {
            room,
            response,
            leftover: buf.split_off(len),
        }),
    }
}

fn route(
    request: &httparse::Request<'_, '_>,
    allowed_origins: &[String],
) -> Result<Route, Refusal> {
    let method = request.method.ok_or(Refusal::Malformed)?;
    let full_path = request.path.ok_or(Refusal::Malformed)?;
    let path = full_path
        .split_once('?')
        .map_or(full_path, |(path, _query)| path);

    if let Some(room) = room::room_in_path(path, WS_PATH_PREFIX) {
        let room = room.map_err(Refusal::InvalidRoom)?;
        let response = upgrade_response(request, allowed_origins)?;
        return Ok(Route::Upgrade { room, response });
    }

    let html = if path == "/" {
        page::INDEX_HTML
    } else if let Some(room) = room::room_in_path(path, PAGE_PATH_PREFIX) {
        room.map_err(Refusal::InvalidRoom)?;
        page::ROOM_HTML
    } else {
        return Err(Refusal::NotFound);
    };
    if method != "GET" {
        return Err(Refusal::MethodNotAllowed);
    }
    Ok(Route::Respond(page_response(html)))
}

fn header<'a>(request: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// Validates the upgrade (tungstenite's own checks) and the origin, and
/// builds the 101 response.
fn upgrade_response(
    request: &httparse::Request<'_, '_>,
    allowed_origins: &[String],
) -> Result<Vec<u8>, Refusal> {
    let version = match request.version {
        Some(1) => http::Version::HTTP_11,
        _ => http::Version::HTTP_10,
    };
    let mut builder = http::Request::builder()
        .method(request.method.unwrap_or_default())
        .uri(request.path.unwrap_or("/"))
        .version(version);
    for h in request.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let http_request = builder.body(()).map_err(|_| Refusal::Malformed)?;
    let response = create_response(&http_request).map_err(|e| match e {
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::MissingSecWebSocketVersionHeader,
        ) if header(request, "Sec-WebSocket-Version").is_some() => Refusal::UnsupportedVersion,
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::WrongHttpMethod) => {
            Refusal::MethodNotAllowed
        }
        other => Refusal::BadUpgrade(other.to_string()),
    })?;
    if let Some(origin) = header(request, "Origin")
        && !origin_allowed(origin, header(request, "Host"), allowed_origins)
    {
        return Err(Refusal::ForeignOrigin);
    }
    let mut bytes = Vec::with_capacity(160);
    write_response(&mut bytes, &response).map_err(|e| Refusal::BadUpgrade(e.to_string()))?;
    Ok(bytes)
}

/// Whether a page at `origin` may open a WebSocket on a server reached as
/// `host`: same host (and port), or one of the allowed origins.
pub fn origin_allowed(origin: &str, host: Option<&str>, allowed_origins: &[String]) -> bool {
    let authority = origin
        .split_once("://")
        .map_or(origin, |(_scheme, rest)| rest)
        .trim_end_matches('/');
    let same_host = host.is_some_and(|host| host.eq_ignore_ascii_case(authority));
    same_host
        || allowed_origins.iter().any(|allowed| {
            allowed.eq_ignore_ascii_case(origin) || allowed.eq_ignore_ascii_case(authority)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn upgrade(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: localhost:8000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
        )
    }

    fn status_of(head: &str) -> StatusCode {
        let mut buf = head.as_bytes().to_vec();
        match parse_head(&mut buf, 8192, &["https://trusted.example".into()]) {
            Head::Respond(r) => r.status,
            Head::Upgrade(_) => StatusCode::SWITCHING_PROTOCOLS,
            Head::Incomplete => panic!("incomplete: {head}"),
        }
    }

    #[test]
    fn upgrades_a_valid_request_with_the_accept_key() {
        let head = upgrade("/ws/chat/lobby/?token=1", "");
        let mut buf = [head.as_bytes(), b"\x81\x80"].concat();
        let Head::Upgrade(Upgrade {
            room,
            response,
            leftover,
        }) = parse_head(&mut buf, 8192, &[])
        else {
            panic!("not an upgrade");
        };
        assert_eq!(leftover, b"\x81\x80");
        assert_eq!(room.as_str(), "lobby");
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 101"), "{response}");
        assert!(
            response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{response}"
        );
    }

    #[test]
    fn serves_pages_and_refuses_the_rest() {
        assert_eq!(
            status_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            StatusCode::OK
        );
        assert_eq!(
            status_of("GET /chat/lobby/ HTTP/1.1\r\n\r\n"),
            StatusCode::OK
        );
        assert_eq!(
            status_of("GET /chat/lo-by/ HTTP/1.1\r\n\r\n"),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of("GET /nope HTTP/1.1\r\n\r\n"),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of("POST / HTTP/1.1\r\n\r\n"),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status_of(&upgrade("/ws/chat/a%2F/", "")),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of(&upgrade("/ws/chat/lobby", "")),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status_of("GET /ws/chat/lobby/ HTTP/1.1\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of("\x00\x01garbage\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        let v8 = upgrade("/ws/chat/lobby/", "").replace("Version: 13", "Version: 8");
        assert_eq!(status_of(&v8), StatusCode::UPGRADE_REQUIRED);
        let http10 = upgrade("/ws/chat/lobby/", "").replace("HTTP/1.1", "HTTP/1.0");
        assert_eq!(status_of(&http10), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn checks_the_origin() {
        let path = "/ws/chat/lobby/";
        let same = upgrade(path, "Origin: http://localhost:8000\r\n");
        assert_eq!(status_of(&same), StatusCode::SWITCHING_PROTOCOLS);
        let allowed = upgrade(path, "Origin: https://trusted.example\r\n");
        assert_eq!(status_of(&allowed), StatusCode::SWITCHING_PROTOCOLS);
        let foreign = upgrade(path, "Origin: https://evil.example\r\n");
        assert_eq!(status_of(&foreign), StatusCode::FORBIDDEN);
        let other_port = upgrade(path, "Origin: http://localhost:9000\r\n");
        assert_eq!(status_of(&other_port), StatusCode::FORBIDDEN);
        let null = upgrade(path, "Origin: null\r\n");
        assert_eq!(status_of(&null), StatusCode::FORBIDDEN);
    }

    #[test]
    fn bounds_the_head() {
        let mut partial = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        let len = partial.len();
        assert!(matches!(
            parse_head(&mut partial, 8192, &[]),
            Head::Incomplete
        ));
        assert!(matches!(
            parse_head(&mut partial, len, &[]),
            Head::Respond(r) if r.status == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ));
    }
}
