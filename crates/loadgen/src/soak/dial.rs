//! Opening a WebSocket the way [`Target::connect`] does, but to any path
//! and with a chosen receive buffer: what the slow reader (a small
//! `SO_RCVBUF`, so that it falls behind soon) and the bad-path client need;
//! and closing one as a well-behaved client does.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use chat_protocol::tungstenite::client::IntoClientRequest;
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_protocol::tungstenite::protocol::WebSocketConfig;
use chat_protocol::tungstenite::protocol::frame::coding::CloseCode;
use chat_protocol::tungstenite::{Error as WsError, Message};
use futures_util::StreamExt;
use tokio::net::TcpSocket;

use crate::client::{Connection, Target};

/// How long a closing client waits for the server's close reply.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Opens a WebSocket to `path` of `target`, with `SO_RCVBUF` set to
/// `recv_buffer` bytes before connecting if given. A refused handshake is an
/// error holding the `tungstenite::Error` (`Http` with the response).
pub async fn connect_path(
    target: &Target,
    path: &str,
    recv_buffer: Option<u32>,
    timeout: Duration,
) -> anyhow::Result<Connection> {
    let attempt = async {
        let socket = match target.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }?;
        if let Some(bytes) = recv_buffer {
            socket.set_recv_buffer_size(bytes)?;
        }
        let stream = socket.connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let mut request = format!("ws://{}{path}", target.authority).into_client_request()?;
        request
            .headers_mut()
            .insert("Origin", format!("http://{}", target.authority).parse()?);
        let config = recv_buffer.map_or_else(WebSocketConfig::default, |bytes| {
            WebSocketConfig::default().read_buffer_size(bytes as usize)
        });
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => bail!("timed out after {} s", timeout.as_secs_f64()),
    }
}

/// Sends close 1000 and reads until the server's reply, handing every other
/// frame to `take`; says what went wrong, if anything did.
pub async fn close_politely(
    ws: &mut Connection,
    mut take: impl FnMut(Result<Message, WsError>) -> Option<String>,
) -> Option<String> {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if let Err(error) = ws.close(Some(frame)).await {
        return Some(format!("its close failed: {error}"));
    }
    let reply = async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(_)) => return None,
                Err(WsError::ConnectionClosed) => return None,
                other => {
                    if let Some(why) = take(other) {
                        return Some(why);
                    }
                }
            }
        }
        None
    };
    tokio::time::timeout(CLOSE_WAIT, reply)
        .await
        .unwrap_or_else(|_| {
            Some(format!(
                "no reply to its close within {} s",
                CLOSE_WAIT.as_secs()
            ))
        })
}

/// A close frame as a reader wants it: `1013 ("too slow: ...")`, or
/// `no code`.
pub fn describe_close(frame: Option<&CloseFrame>) -> String {
    frame.map_or_else(
        || "no code".to_owned(),
        |f| format!("{} ({:?})", u16::from(f.code), f.reason.as_str()),
    )
}
