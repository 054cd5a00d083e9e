//! One connection, from accept to close, on its own tasks.
//!
//! The task spawned at accept becomes the reader: it reads the request head,
//! joins the room, writes the 101, spawns the writer task (`writer`), and then
//! waits in `read` for the rest of the connection, turning each client frame
//! into a broadcast, an error reply, a pong or a close.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::per_ip::IpSlot;
use chat_protocol::readahead::ReadAhead;
use chat_protocol::route::Refusal;
use chat_protocol::session::{self, Control, Incoming, Silence};
use chat_protocol::tungstenite::protocol::Role;
use chat_protocol::tungstenite::{self, Message};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::OwnedSemaphorePermit;
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
/// write. Reads go through the worker's scratch buffer
/// (`chat_protocol::readahead`).
struct ReadHalf {
    stream: OwnedReadHalf,
    ahead: ReadAhead,
    /// Bytes read from the socket at a time (`--read-buffer-bytes`).
    scratch_bytes: usize,
}

thread_local! {
    /// The worker's scratch buffer, for every connection it reads.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(n) = this.ahead.take(buf.initialize_unfilled()) {
            buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= this.scratch_bytes {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.resize(this.scratch_bytes, 0);
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.stream).poll_read(cx, &mut read))?;
            let n = this.ahead.split(read.filled(), buf.initialize_unfilled());
            buf.advance(n);
            Poll::Ready(Ok(()))
        })
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
    handshake: Handshake,
    _ip_slot: IpSlot,
    shared: Arc<Shared>,
    hang_up: CancellationToken,
) {
    // Boxed: the handshake's futures are done before the connection
    // settles, and inline they would stay in its task for its whole life,
    // at their full size.
    let upgraded = Box::pin(upgrade(&mut stream, handshake, &shared, &hang_up)).await;
    let Some(Upgraded {
        leftover,
        joined: Joined {
            member,
            control,
            inbox,
        },
        _connection_slot,
    }) = upgraded
    else {
        return;
    };
    tracing::debug!(id, room = %member.membership.room(), "joined");

    let config = &shared.config;
    let (read_half, write_half) = stream.into_split();
    let writer = writer::spawn(
        Arc::new(write_half),
        inbox,
        config.write_timeout(),
        config.writing(),
        hang_up.clone(),
    );
    read_frames(read_half, leftover, member, control, &shared, &hang_up).await;
    let _ = writer.await;
    tracing::debug!(id, "closed");
}

/// A connection that is upgraded: the 101 is written, and it is a member.
struct Upgraded {
    /// What the client sent after its request head.
    leftover: Vec<u8>,
    joined: Joined,
    /// Its place under `--max-connections`.
    _connection_slot: OwnedSemaphorePermit,
}

/// The handshake: reads the request head, takes a connection slot, joins
/// the room and writes the 101. Pages and refusals are answered here (and
/// `None` returned).
async fn upgrade(
    stream: &mut TcpStream,
    mut handshake: Handshake,
    shared: &Arc<Shared>,
    hang_up: &CancellationToken,
) -> Option<Upgraded> {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let head = tokio::select! {
        head = handshake::read_head(stream, config) => head,
        () = hang_up.cancelled() => None,
    };
    let Upgrade {
        room,
        response,
        leftover,
    } = head?;
    handshake.head_read();
    let Ok(connection_slot) = Arc::clone(&shared.connections).try_acquire_owned() else {
        handshake::respond(stream, &Refusal::ServerFull.response()).await;
        return None;
    };
    let joined = match shared
        .layer
        .join(&shared.rooms, room, &shared.outbox_limits)
        .await
    {
        Ok(joined) => joined,
        Err(refusal) => {
            handshake::respond(stream, &refusal.response()).await;
            return None;
        }
    };
    match timeout(config.write_timeout(), stream.write_all(&response)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not write the 101 response");
            return None;
        }
        Err(_elapsed) => {
            tracing::debug!("timed out writing the 101 response");
            return None;
        }
    }
    Some(Upgraded {
        leftover,
        joined,
        _connection_slot: connection_slot,
    })
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
        ReadHalf {
            stream,
            ahead: ReadAhead::default(),
            scratch_bytes: shared.config.read_buffer_bytes,
        },
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
            () = Box::pin(handshake::linger(&mut socket.get_mut().stream, CLOSE_TIMEOUT)) => {}
            () = hang_up.cancelled() => {}
        }
    }
}
