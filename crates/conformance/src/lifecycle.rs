//! How connections end: a slow consumer is cut off (1013) without hurting
//! the others, a silent one times out (1001), and a graceful shutdown closes
//! everyone (1001) and returns.

use std::sync::Arc;
use std::time::Duration;

use chat_protocol::ServerConfig;
use chat_protocol::close::CloseReason;
use chat_protocol::tungstenite::Message;
use chat_testkit::{Client, Connect, DeafClient, abbreviate, unique_room};

use crate::Start;
use crate::delivery::join;
use crate::server::finish_shutdown;

/// `frame` must be the close frame for `reason`.
fn assert_reason(
    client: &Client,
    frame: &chat_protocol::tungstenite::protocol::CloseFrame,
    reason: CloseReason,
) {
    assert_eq!(
        frame.reason.as_str(),
        reason.text(),
        "{}: wrong close reason",
        client.label()
    );
}

/// Outbox capacity in the slow-consumer scenario: small, so the queue fills
/// soon after the slow member's socket buffers do.
const SLOW_OUTBOX: usize = 8;
/// Size of each message in the slow-consumer scenario (under the 64 KiB
/// default limit).
const SLOW_MESSAGE_BYTES: usize = 40 * 1024;
/// Messages sent in the slow-consumer scenario: 16 MB in all, several times
/// what the kernel buffers on loopback (a send buffer of at most
/// `tcp_wmem[2]`, 4 MiB by default, and the slow member's small receive
/// buffer) plus the outbox can hold for a member that does not read (on the
/// development machine, both servers cut the slow member off after about 90
/// messages, 3.6 MB).
const SLOW_MESSAGES: usize = 400;
/// Messages the sender has in flight before it reads its own echoes: it is a
/// member too, and must not become the slow one.
const SLOW_WINDOW: usize = 4;

/// A member that does not read while the room is busy is disconnected with
/// 1013 (and a reason about its queue) once its outbound queue is full; the
/// other members, reading, receive every message. The slow member, reading
/// afterwards, finds the first messages in order, then the close frame.
pub async fn slow_consumer_is_closed_1013(start: Start) {
    let server = start(ServerConfig {
        outbox_capacity: SLOW_OUTBOX,
        // The slow member's writer blocks for the whole busy phase; it must not
        // give up on the write (a different way to end) before the queue fills.
        write_timeout_secs: 120,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("slow_consumer");
    let mut slow = Connect::room(&room)
        .name("slow")
        .recv_buffer_bytes(16 * 1024)
        .to(addr)
        .await;
    let mut sender = join(addr, &room, "sender").await;

    let messages: Arc<Vec<String>> = Arc::new(
        (0..SLOW_MESSAGES)
            .map(|i| {
                let mut text = format!("{i:06}:");
                text.push_str(&"x".repeat(SLOW_MESSAGE_BYTES - text.len()));
                text
            })
            .collect(),
    );
    let mut readers = Vec::new();
    for f in 0..2 {
        let mut fast = join(addr, &room, &format!("fast-{f}")).await;
        let messages = Arc::clone(&messages);
        readers.push(tokio::spawn(async move {
            for text in messages.iter() {
                fast.expect_message(text).await;
            }
            fast
        }));
    }
    for window in messages.chunks(SLOW_WINDOW) {
        for text in window {
            sender.send_chat(text).await;
        }
        for text in window {
            sender.expect_message(text).await;
        }
    }
    let mut fast = Vec::new();
    for reader in readers {
        fast.push(reader.await.expect("a fast member's task panicked"));
    }

    let (received, frame) = slow.recv_until_close().await;
    assert_eq!(
        u16::from(frame.code),
        1013,
        "the slow member should be closed with 1013 (reason {:?}) after {} messages",
        frame.reason.as_str(),
        received.len()
    );
    assert_reason(&slow, &frame, CloseReason::SlowConsumer);
    assert!(
        frame.reason.contains("queue"),
        "the 1013 reason should mention the queue, got {:?}",
        frame.reason.as_str()
    );
    assert!(
        !received.is_empty(),
        "the slow member should receive the messages sent before it fell behind"
    );
    assert!(
        received.len() < SLOW_MESSAGES,
        "the slow member received all {SLOW_MESSAGES} messages: it was never too slow, \
         so the scenario proves nothing (raise SLOW_MESSAGES)"
    );
    for (i, text) in received.iter().enumerate() {
        assert!(
            text == &messages[i],
            "the slow member's message {i} should be the {i}th sent, got {}",
            abbreviate(text)
        );
    }
    println!(
        "{}: the slow member received {} of {SLOW_MESSAGES} messages before 1013",
        server.label(),
        received.len()
    );

    // The room goes on without it.
    sender.send_chat("after the slow one left").await;
    sender.expect_message("after the slow one left").await;
    for member in &mut fast {
        member.expect_message("after the slow one left").await;
    }

    drop((slow, sender, fast));
    server.shutdown().await;
}

/// Idle timeout in the idle scenario.
const IDLE_TIMEOUT_SECS: u64 = 2;
/// How long the deaf client waits for its close frame: the idle timeout and
/// a generous margin.
const IDLE_WAIT: Duration = Duration::from_secs(IDLE_TIMEOUT_SECS + 10);
/// How often the chatty client pings: far more often than the idle timeout.
const PING_EVERY: Duration = Duration::from_millis(100);

/// A connection that stays silent and answers nothing (a vanished peer) is
/// closed with 1001 "idle timeout". Two connections opened earlier are still
/// open then, and chat: one that only reads (and so answers the server's
/// pings, as a browser tab does), and one that keeps pinging.
pub async fn idle_connection_is_closed_1001(start: Start) {
    let server = start(ServerConfig {
        idle_timeout_secs: IDLE_TIMEOUT_SECS,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let mut quiet = join(addr, &unique_room("idle_quiet"), "quiet").await;
    let mut chatty = join(addr, &unique_room("idle_chatty"), "chatty").await;
    let deaf_room = unique_room("idle_deaf");
    let deaf = tokio::task::spawn_blocking(move || {
        DeafClient::connect(addr, &deaf_room).wait_for_close(IDLE_WAIT)
    });
    tokio::pin!(deaf);

    let mut quiet_pings = 0;
    let mut ping_timer = tokio::time::interval(PING_EVERY);
    let end = loop {
        tokio::select! {
            end = &mut deaf => break end.expect("the deaf client panicked"),
            message = quiet.recv_any("pings from the server, or nothing") => match message {
                Message::Ping(_) => quiet_pings += 1,
                other => panic!("quiet: expected nothing but pings while idle, got {other:?}"),
            },
            _ = ping_timer.tick() => {
                chatty.send_ping(b"keep me").await;
                chatty.expect_pong(b"keep me").await;
            }
        }
    };
    assert_eq!(
        u16::from(end.close.code),
        1001,
        "the deaf client should be closed with 1001 (reason {:?})",
        end.close.reason.as_str()
    );
    assert_eq!(
        end.close.reason.as_str(),
        CloseReason::IdleTimeout.text(),
        "the deaf client: wrong close reason"
    );
    println!(
        "{}: the deaf client got {} pings before 1001; the quiet one, {quiet_pings} (answered)",
        server.label(),
        end.pings
    );
    for client in [&mut quiet, &mut chatty] {
        client.send_chat("still open").await;
        client.expect_message("still open").await;
    }

    drop((quiet, chatty));
    server.shutdown().await;
}

/// A graceful shutdown sends 1001 "server shutting down" to every client, in
/// every room, returns, and leaves nothing listening.
pub async fn graceful_shutdown_closes_everyone_1001(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let label = server.label();
    let (room_a, room_b) = (unique_room("shutdown_a"), unique_room("shutdown_b"));
    let mut a = join(addr, &room_a, "a").await;
    let mut b = join(addr, &room_b, "b").await;
    let mut b2 = join(addr, &room_b, "b2").await;
    b.send_chat("before the shutdown").await;
    b.expect_message("before the shutdown").await;
    b2.expect_message("before the shutdown").await;

    let stopping = server.begin_shutdown();
    let (fa, fb, fb2) = tokio::join!(
        a.expect_close(1001),
        b.expect_close(1001),
        b2.expect_close(1001)
    );
    assert_reason(&a, &fa, CloseReason::ServerShutdown);
    assert_reason(&b, &fb, CloseReason::ServerShutdown);
    assert_reason(&b2, &fb2, CloseReason::ServerShutdown);
    finish_shutdown(label, stopping).await;

    let after = Connect::room(&room_a).name("too-late").try_to(addr).await;
    assert!(
        after.is_err(),
        "connecting after the shutdown should fail, got {after:?}"
    );
}

/// A shutdown finishes, within its deadline, even when a client never reads
/// nor answers its close frame; the frame was sent all the same.
pub async fn shutdown_finishes_despite_an_unresponsive_client(start: Start) {
    let server = start(ServerConfig {
        shutdown_timeout_secs: 1,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let label = server.label();
    let mut deaf = join(addr, &unique_room("shutdown_deaf"), "deaf").await;

    finish_shutdown(label, server.begin_shutdown()).await;
    let frame = deaf.expect_close(1001).await;
    assert_reason(&deaf, &frame, CloseReason::ServerShutdown);
}

/// Messages the sender fires in the shutdown-in-a-burst scenario: fewer than
/// the default outbox capacity (1024), so that no member, the sender included
/// (which reads only after the burst), can be cut off as a slow consumer.
const BURST: usize = 1000;

/// A graceful shutdown in the middle of a busy room loses nothing silently:
/// every member receives the same messages, in the order sent, before its
/// 1001. The frames queued for a member are written before its close frame,
/// and a broadcast racing the shutdown either reaches every member or none
/// (its sender may then get an error reply, before its own 1001).
pub async fn shutdown_mid_burst_delivers_the_same_messages_to_all(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let label = server.label();
    let room = unique_room("shutdown_burst");
    let mut sender = join(addr, &room, "sender").await;
    let mut b = join(addr, &room, "b").await;
    let mut c = join(addr, &room, "c").await;
    let sent: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    // The sender fires the whole burst without reading (its own echoes wait
    // in its socket); the shutdown starts as soon as b sees the first one.
    let burst = sent.clone();
    let sending = tokio::spawn(async move {
        for text in &burst {
            sender.send_chat(text).await;
        }
        sender
    });
    b.expect_message(&sent[0]).await;
    let stopping = server.begin_shutdown();
    let mut sender = sending.await.expect("the sending task panicked");

    let (to_sender, errors, sender_close) = messages_and_errors_until_close(&mut sender).await;
    let ((to_b, b_close), (to_c, c_close)) =
        tokio::join!(b.recv_until_close(), c.recv_until_close());
    finish_shutdown(label, stopping).await;

    assert_eq!(
        u16::from(sender_close.code),
        1001,
        "sender: {sender_close:?}"
    );
    assert_eq!(u16::from(b_close.code), 1001, "b: {b_close:?}");
    assert_eq!(u16::from(c_close.code), 1001, "c: {c_close:?}");
    assert_eq!(
        to_sender.first(),
        Some(&sent[0]),
        "the sender should get the message b got"
    );
    assert_eq!(
        &to_sender[1..],
        to_b.as_slice(),
        "b (which had read the first message) and the sender got different messages"
    );
    assert_eq!(to_sender, to_c, "the sender and c got different messages");
    assert_eq!(
        to_sender.as_slice(),
        &sent[..to_sender.len()],
        "members should get the messages in the order sent, without gaps"
    );
    for error in &errors {
        assert!(
            error.contains("shutting down"),
            "unexpected error reply during the shutdown: {error}"
        );
    }
    println!(
        "{label}: {} of {BURST} messages delivered to all three members before the shutdown, \
         {} refused with an error reply",
        to_sender.len(),
        errors.len()
    );
}

/// Reads chat messages and error replies until the close frame.
async fn messages_and_errors_until_close(
    client: &mut Client,
) -> (
    Vec<String>,
    Vec<String>,
    chat_protocol::tungstenite::protocol::CloseFrame,
) {
    let (mut messages, mut errors) = (Vec::new(), Vec::new());
    loop {
        match client
            .recv("chat messages, error replies, then a close frame")
            .await
        {
            Message::Text(text) => match chat_protocol::message::ServerFrame::parse(&text) {
                Ok(chat_protocol::message::ServerFrame::Message { message }) => {
                    messages.push(message)
                }
                Ok(chat_protocol::message::ServerFrame::Error { error }) => errors.push(error),
                Err(error) => panic!("{}: not a server frame ({error}): {text}", client.label()),
            },
            Message::Close(Some(frame)) => {
                client.finish_close().await;
                return (messages, errors, frame);
            }
            other => panic!("{}: unexpected frame {other:?}", client.label()),
        }
    }
}
