//! One message through each real server on loopback: a client sends
//! `{"message": "hello, room"}` and blocks until it reads back the frame the
//! server broadcasts to the room (the sender is a member, so it receives its
//! own message), with 1 and 100 members in the room.
//!
//! Each server is started once, with the default `ServerConfig`, through its
//! `spawn` (`127.0.0.1:0`), as the conformance tests start it. The sending
//! client is a blocking tungstenite client over a `TcpStream` with
//! `TCP_NODELAY`; the other 99 members are the same clients, each read on a
//! thread of its own until the last message, so none falls behind its outbox.
//! Every member must have received every message when the room closes.
//!
//! Measures: a round trip through the whole server (handshaken socket,
//! tungstenite's framing, decode, fan-out under the room's lock, the
//! writer's wake-up and `write`, and the client's own framing), with the
//! other members' deliveries competing for the same cores. Throughput counts
//! deliveries (members per message): in steady state every member receives
//! every message, or it would be closed as a slow consumer. Does not measure:
//! latency under load or across many rooms (that is the load generator's
//! job), connection set-up, or a network beyond loopback.

use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat_protocol::message::{encode_chat, encode_client};
use chat_protocol::tungstenite::{self, Message, Utf8Bytes, WebSocket};
use chat_protocol::{RoomName, ServerConfig};

/// Members of the room, the sender included.
const MEMBERS: [usize; 2] = [1, 100];
/// The message sent on every iteration.
const TEXT: &str = "hello, room";
/// The message that ends a room: each member closes once it has read it.
const LAST: &str = "that was the last one";
/// Longest wait for a connect, a handshake, a write, or the sender's echo:
/// a broken server fails the bench instead of hanging it.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a draining member waits for a frame. Longer than a step, since
/// it waits while criterion analyses a benchmark before the room closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

type Client = WebSocket<TcpStream>;

/// Connects a blocking client to `room`, with `read_timeout` on its socket.
fn connect(addr: SocketAddr, room: &RoomName, read_timeout: Duration) -> Client {
    let stream = TcpStream::connect_timeout(&addr, STEP_TIMEOUT).expect("TCP connect");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
        .set_read_timeout(Some(read_timeout))
        .expect("set the read timeout");
    stream
        .set_write_timeout(Some(STEP_TIMEOUT))
        .expect("set the write timeout");
    let url = format!("ws://{addr}{}", room.ws_path());
    let (ws, _response) = tungstenite::client(url.as_str(), stream)
        .unwrap_or_else(|error| panic!("handshake with {url} failed: {error}"));
    ws
}

/// Reads the next text frame; panics on a timeout, a close, or a binary frame.
fn next_text(ws: &mut Client) -> Utf8Bytes {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => return text,
            // tungstenite answers pings itself.
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("expected a chat frame, got {other:?}"),
            Err(error) => panic!("reading a chat frame failed: {error}"),
        }
    }
}

/// Closes `ws` with a close handshake and waits for the server to hang up.
fn close(mut ws: Client) {
    ws.close(None).expect("send a close frame");
    loop {
        match ws.read() {
            // The server's close reply (or frames it sent before seeing ours).
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(error) => panic!("closing failed: {error}"),
        }
    }
}

/// A member that only reads: counts the frames before `last`, then closes.
fn drain(mut ws: Client, last: Utf8Bytes) -> u64 {
    let mut frames = 0;
    while next_text(&mut ws) != last {
        frames += 1;
    }
    close(ws);
    frames
}

/// A room on one server: the sending client, and the draining members.
struct Room {
    sender: Client,
    drainers: Vec<JoinHandle<u64>>,
    /// Messages sent (and received back) by the sender.
    sent: u64,
}

impl Room {
    /// Connects `members` clients to a room of their own on `addr`.
    fn open(addr: SocketAddr, server: &str, members: usize) -> Self {
        let room = RoomName::new(&format!("roundtrip_{server}_{members}")).expect("valid room");
        let drainers = (1..members)
            .map(|i| {
                let (ws, last) = (connect(addr, &room, DRAIN_TIMEOUT), encode_chat(LAST));
                thread::Builder::new()
                    .name(format!("drain-{i}"))
                    .spawn(move || drain(ws, last))
                    .expect("spawn a draining thread")
            })
            .collect();
        // Every member is in the room once its handshake has completed.
        let sender = connect(addr, &room, STEP_TIMEOUT);
        Self {
            sender,
            drainers,
            sent: 0,
        }
    }

    /// Sends `frame` and blocks until the broadcast `echo` comes back.
    fn round_trip(&mut self, frame: &Utf8Bytes, echo: &Utf8Bytes) {
        self.sender
            .send(Message::Text(frame.clone()))
            .expect("send the message");
        assert_eq!(
            &next_text(&mut self.sender),
            echo,
            "the sender's own message"
        );
        self.sent += 1;
    }

    /// Sends the last message, closes every member, and checks that each
    /// received every message.
    fn close(mut self) {
        let last = encode_chat(LAST);
        self.round_trip(&encode_client(LAST).into(), &last);
        close(self.sender);
        for drainer in self.drainers {
            let frames = drainer.join().expect("a draining member failed");
            assert_eq!(frames, self.sent - 1, "a member missed messages");
        }
    }
}

fn roundtrip(c: &mut Criterion) {
    let sync = chat_server_sync::spawn(ServerConfig::default()).expect("start the sync server");
    let async_ = chat_server_async::spawn(ServerConfig::default()).expect("start the async server");
    let servers = [("sync", sync.local_addr()), ("async", async_.local_addr())];
    let (frame, echo) = (Utf8Bytes::from(encode_client(TEXT)), encode_chat(TEXT));

    let mut group = c.benchmark_group("roundtrip_one_message");
    for members in MEMBERS {
        group.throughput(Throughput::Elements(members as u64));
        for (server, addr) in servers {
            let mut room = Room::open(addr, server, members);
            group.bench_with_input(BenchmarkId::new(server, members), &members, |b, _| {
                b.iter(|| room.round_trip(&frame, &echo))
            });
            room.close();
        }
    }
    group.finish();

    sync.shutdown_and_join().expect("shut the sync server down");
    async_
        .shutdown_and_join()
        .expect("shut the async server down");
}

criterion_group!(benches, roundtrip);
criterion_main!(benches);
