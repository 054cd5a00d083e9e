//! One connection, from accept to close, on its own threads.
//!
//! The thread that accepted the handshake becomes the reader: it reads the
//! request head, joins the room, writes the 101, starts the writer thread
//! (`writer`), and then blocks in `read` for the rest of the connection,
//! turning each client frame into a broadcast, an error reply, a pong or a
//! close.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;

use chat_protocol::config::CLOSE_TIMEOUT;
use chat_protocol::readahead::ReadAhead;
use chat_protocol::route::Refusal;
use chat_protocol::session::{self, Control, Incoming, Silence};
use chat_protocol::tungstenite;
use chat_protocol::tungstenite::Message;
use chat_protocol::tungstenite::protocol::{Role, WebSocket};
use crossbeam_channel::Sender;
use rustix::net::{RecvFlags, recv};

use chat_protocol::route::Upgrade;

use crate::handshake;
use crate::layer::{Joined, Member};
use crate::outbox::Inbox;
use crate::pending::Handshake;
use crate::{Shared, THREAD_STACK_BYTES, writer};

/// The reader's side of the socket (shared with the writer: one descriptor
/// per connection). tungstenite answers pings and close frames by writing
/// from inside `read`; here those writes are swallowed, and the reader
/// forwards the same answers to the writer thread, which owns every write.
/// Reads go through the thread's scratch buffer (`chat_protocol::readahead`).
struct ReadHalf {
    stream: Arc<TcpStream>,
    /// Reading only what has already arrived: a read that would block
    /// fails with `WouldBlock` instead (`MSG_DONTWAIT`; the socket itself
    /// stays blocking, for the writer's sake too).
    arrived_only: bool,
    ahead: ReadAhead,
    /// Bytes read from the socket at a time (`--read-buffer-bytes`).
    scratch_bytes: usize,
}

thread_local! {
    /// The thread's scratch buffer: one thread reads one connection, so in
    /// this model it is the connection's.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl ReadHalf {
    fn read_socket(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.arrived_only {
            return recv(&*self.stream, buf, RecvFlags::DONTWAIT)
                .map(|(read, _)| read)
                .map_err(io::Error::from);
        }
        (&*self.stream).read(buf)
    }
}

impl Read for ReadHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(n) = self.ahead.take(buf) {
            return Ok(n);
        }
        if buf.len() >= self.scratch_bytes {
            return self.read_socket(buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.resize(self.scratch_bytes, 0);
            let read = self.read_socket(scratch)?;
            Ok(self.ahead.split(&scratch[..read], buf))
        })
    }
}

impl Write for ReadHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves one accepted connection to its end, on the calling thread.
pub(crate) fn serve(
    stream: Arc<TcpStream>,
    id: u64,
    mut handshake: Handshake,
    shared: &Arc<Shared>,
) {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.write_timeout()));
    let Some(Upgrade {
        room,
        response,
        leftover,
    }) = handshake::read_head(&stream, config)
    else {
        return;
    };
    handshake.head_read();
    let Some(_connection_slot) = shared.connections.try_acquire() else {
        handshake::respond(&stream, &Refusal::ServerFull.response());
        return;
    };
    // The writer thread is started before the client is let in, so that a
    // thread limit refuses the client with 503 instead of breaking it after
    // its 101; it waits for the inbox until then.
    let (start_writer, inbox_for_writer) = crossbeam_channel::bounded::<Inbox>(1);
    let writer_stream = Arc::clone(&stream);
    let writing = shared.config.writing();
    let writer = thread::Builder::new()
        .name(format!("ws-write-{id}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            if let Ok(inbox) = inbox_for_writer.recv() {
                writer::run(writer_stream, inbox, writing);
            }
        });
    let writer = match writer {
        Ok(writer) => writer,
        Err(error) => {
            tracing::warn!(%error, "could not start a writer thread: refused with 503");
            handshake::respond(&stream, &Refusal::OutOfThreads.response());
            return;
        }
    };
    let Joined {
        member,
        control,
        inbox,
    } = match shared
        .layer
        .join(&shared.rooms, room, &shared.outbox_limits)
    {
        Ok(joined) => joined,
        Err(refusal) => {
            drop(start_writer);
            handshake::respond(&stream, &refusal.response());
            let _ = writer.join();
            return;
        }
    };
    if let Err(error) = (&*stream).write_all(&response) {
        tracing::debug!(%error, "could not write the 101 response");
        drop(start_writer);
        let _ = writer.join();
        return;
    }
    drop(handshake);
    tracing::debug!(id, room = %member.membership.room(), "joined");
    let _ = start_writer.send(inbox);
    read_frames(stream, leftover, member, control, shared);
    let _ = writer.join();
    tracing::debug!(id, "closed");
}

/// Chat messages that have already arrived after `first`, read without
/// blocking, up to `limit` in all: the room then sends them together, and
/// each member's socket takes them in one write. The first thing read that
/// is not a chat message (or an error) is returned, to be handled next.
fn gather(
    socket: &mut WebSocket<ReadHalf>,
    first: String,
    limit: usize,
) -> (Vec<String>, Option<tungstenite::Result<Message>>) {
    let mut texts = vec![first];
    let mut after = None;
    socket.get_mut().arrived_only = true;
    while texts.len() < limit {
        match socket.read() {
            Ok(message) => {
                if let Some(Incoming::Chat(text)) = session::on_message(message.clone()) {
                    texts.push(text);
                    continue;
                }
                after = Some(Ok(message));
            }
            // Nothing more has arrived.
            Err(tungstenite::Error::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => after = Some(Err(error)),
        }
        break;
    }
    socket.get_mut().arrived_only = false;
    (texts, after)
}

/// The reader loop: blocks in `read` until the connection ends.
fn read_frames(
    stream: Arc<TcpStream>,
    leftover: Vec<u8>,
    member: Member,
    control: Sender<Control>,
    shared: &Shared,
) {
    let _ = stream.set_read_timeout(Some(Silence::period(shared.config.idle_timeout())));
    let mut socket = WebSocket::from_partially_read(
        ReadHalf {
            stream,
            arrived_only: false,
            ahead: ReadAhead::default(),
            scratch_bytes: shared.config.read_buffer_bytes,
        },
        leftover,
        Role::Server,
        Some(shared.ws_config),
    );
    let mut silence = Silence::default();
    // What the reader read while gathering, to handle next.
    let mut held = None;
    let failure = 'reading: loop {
        let next = held.take().unwrap_or_else(|| socket.read());
        let request = match next {
            Ok(message) => {
                silence.heard();
                match session::on_message(message) {
                    Some(Incoming::Chat(text)) => {
                        let texts;
                        (texts, held) = gather(&mut socket, text, shared.config.max_batch_frames);
                        let handle = member.membership.handle();
                        for reply in shared.layer.post_all(handle, &texts) {
                            if control.send(Control::Reply(reply)).is_err() {
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
            Err(tungstenite::Error::Io(error)) if handshake::is_timeout(&error) => {
                match silence.timed_out() {
                    Some(request) => request,
                    // Silent even after our close frame: give up.
                    None => break None,
                }
            }
            Err(error) => break session::on_read_error(&error),
        };
        if control.send(request).is_err() {
            // The writer is gone (write failed): nothing more to do.
            break None;
        }
    };
    drop(member);
    if let Some(reason) = failure
        && control.send(Control::Close(reason)).is_ok()
    {
        // Read (and discard) until the client answers our close frame by
        // closing, so it reads the close frame instead of a reset.
        handshake::linger(&socket.get_ref().stream, CLOSE_TIMEOUT);
    }
}
