//! One connection, from accept to close, on its own tasks.
//!
//! The task spawned at accept becomes the reader: it reads the request head,
//! joins the room, writes the 101, spawns the writer task (`writer`), and then
//! waits in `read` for the rest of the connection, turning each client frame
//! into a broadcast, an error reply, a pong or a close.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::route::Refusal;
use chat_protocol::session::{self, Control, Incoming, Silence};
use chat_protocol::tungstenite::protocol::Role;
use chat_protocol::tungstenite::{self, Message};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc::Sender;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use chat_protocol::route::Upgrade;

use crate::handshake;
use crate::layer::{Joined, Member};
use crate::pending::Handshake;
use crate::{Shared, writer};

/// The reader's side of the socket. tungstenite answers pings and close
/// frames by writing from inside `read`; here those writes are swallowed, and
/// the reader forwards the same answers to the writer task, which owns every
/// write.
struct ReadHalf(OwnedReadHalf);

impl AsyncRead for ReadHalf {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves one accepted connection to its end, on the calling task.
pub(crate) async fn serve(
    mut stream: TcpStream,
    id: u64,
    mut handshake: Handshake,
    shared: &Arc<Shared>,
    hang_up: CancellationToken,
) {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let head = tokio::select! {
        head = handshake::read_head(&mut stream, config) => head,
        () = hang_up.cancelled() => None,
    };
    let Some(Upgrade {
        room,
        response,
        leftover,
    }) = head
    else {
        return;
    };
    handshake.head_read();
    let Ok(_connection_slot) = Arc::clone(&shared.connections).try_acquire_owned() else {
        handshake::respond(&mut stream, &Refusal::ServerFull.response()).await;
        return;
    };
    let joined = shared
        .layer
        .join(&shared.rooms, room, config.outbox_capacity)
        .await;
    let Joined {
        member,
        control,
        inbox,
    } = match joined {
        Ok(joined) => joined,
        Err(refusal) => {
            handshake::respond(&mut stream, &refusal.response()).await;
            return;
        }
    };
    match timeout(config.write_timeout(), stream.write_all(&response)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not write the 101 response");
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("timed out writing the 101 response");
            return;
        }
    }
    drop(handshake);
    tracing::debug!(id, room = %member.membership.room(), "joined");

    let (read_half, write_half) = stream.into_split();
    let writer = tokio::spawn(writer::run(
        Arc::new(write_half),
        inbox,
        config.write_timeout(),
        config.writing(),
        hang_up.clone(),
    ));
    read_frames(read_half, leftover, member, control, shared, &hang_up).await;
    let _ = writer.await;
    tracing::debug!(id, "closed");
}

/// The reader's socket.
type Socket = WebSocketStream<ReadHalf>;

/// Chat messages that have already arrived after `first`, read without
/// waiting, up to `limit` in all: the room then sends them together, and
/// each member's socket takes them in one write. The first thing read that
/// is not a chat message (or the end, or an error) is returned, to be
/// handled next.
#[allow(clippy::type_complexity)]
fn gather(
    socket: &mut Socket,
    first: String,
    limit: usize,
) -> (Vec<String>, Option<Option<tungstenite::Result<Message>>>) {
    let mut texts = vec![first];
    while texts.len() < limit {
        let Some(next) = socket.next().now_or_never() else {
            break;
        };
        if let Some(Ok(message)) = &next
            && let Some(Incoming::Chat(text)) = session::on_message(message.clone())
        {
            texts.push(text);
            continue;
        }
        return (texts, Some(next));
    }
    (texts, None)
}

/// The reader loop: waits in `read` until the connection ends.
async fn read_frames(
    stream: OwnedReadHalf,
    leftover: Vec<u8>,
    member: Member,
    control: Sender<Control>,
    shared: &Shared,
    hang_up: &CancellationToken,
) {
    let mut socket: Socket = WebSocketStream::from_partially_read(
        ReadHalf(stream),
        leftover,
        Role::Server,
        Some(shared.ws_config),
    )
    .await;
    let period = Silence::period(shared.config.idle_timeout());
    let mut silence = Silence::default();
    // What the reader read while gathering, to handle next.
    let mut held = None;
    let failure = 'reading: loop {
        let next = match held.take() {
            Some(next) => Ok(next),
            None => tokio::select! {
                next = timeout(period, socket.next()) => next,
                () = hang_up.cancelled() => break None,
            },
        };
        let request = match next {
            Ok(Some(Ok(message))) => {
                silence.heard();
                match session::on_message(message) {
                    Some(Incoming::Chat(text)) => {
                        let texts;
                        (texts, held) = gather(&mut socket, text, shared.config.max_batch_frames);
                        let handle = member.membership.handle();
                        for reply in shared.layer.post_all(handle, texts).await {
                            if control.send(Control::Reply(reply)).await.is_err() {
                                // The writer is gone (write failed).
                                break 'reading None;
                            }
                        }
                        continue;
                    }
                    Some(Incoming::Answer(request)) => request,
                    None => continue,
                }
            }
            Err(_elapsed) => match silence.timed_out() {
                Some(request) => request,
                // Silent even after our close frame: give up.
                None => break None,
            },
            Ok(None) => break None,
            Ok(Some(Err(error))) => break session::on_read_error(&error),
        };
        if control.send(request).await.is_err() {
            // The writer is gone (write failed): nothing more to do.
            break None;
        }
    };
    drop(member);
    if let Some(reason) = failure
        && control.send(Control::Close(reason)).await.is_ok()
    {
        // Read (and discard) until the client answers our close frame by
        // closing, so it reads the close frame instead of a reset.
        tokio::select! {
            () = handshake::linger(&mut socket.get_mut().0, CLOSE_TIMEOUT) => {}
            () = hang_up.cancelled() => {}
        }
    }
}
