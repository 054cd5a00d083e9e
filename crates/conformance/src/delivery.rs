//! Delivery: every member of a room, and only they, receive every message
//! sent to it, exactly once, in one order; texts round-trip exactly; a client
//! leaving harms no one.

use std::net::SocketAddr;
use std::sync::Arc;

use chat_protocol::ServerConfig;
use chat_protocol::message;
use chat_testkit::{Client, Connect, unique_room};
use tokio::sync::Barrier;

use crate::Start;

/// Connects `name` to `room`.
pub(crate) async fn join(addr: SocketAddr, room: &str, name: &str) -> Client {
    Connect::room(room).name(name).to(addr).await
}

/// A message reaches every member of the room, the sender included, and the
/// next message does too, from another sender.
pub async fn same_room_delivery_includes_sender(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("same_room");
    let mut alice = join(addr, &room, "alice").await;
    let mut bob = join(addr, &room, "bob").await;
    let mut carol = join(addr, &room, "carol").await;

    alice.send_chat("hello from alice").await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect_message("hello from alice").await;
    }
    bob.send_chat("hello from bob").await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect_message("hello from bob").await;
    }

    drop((alice, bob, carol));
    server.shutdown().await;
}

/// A message to one room reaches no member of another. Proved with barriers:
/// once every member of room A has the message, a barrier sent in room B is
/// the next frame B's member receives (anything queued for it before would
/// come first), and the other way round.
pub async fn no_cross_room_delivery(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let (room_a, room_b) = (unique_room("cross_a"), unique_room("cross_b"));
    let mut a1 = join(addr, &room_a, "a1").await;
    let mut a2 = join(addr, &room_a, "a2").await;
    let mut b1 = join(addr, &room_b, "b1").await;

    a1.send_chat("only for room A").await;
    a1.expect_message("only for room A").await;
    a2.expect_message("only for room A").await;
    b1.send_chat("barrier in room B").await;
    b1.expect_message("barrier in room B").await;

    // And B's barrier did not reach room A.
    a2.send_chat("barrier in room A").await;
    a1.expect_message("barrier in room A").await;
    a2.expect_message("barrier in room A").await;

    drop((a1, a2, b1));
    server.shutdown().await;
}

/// Senders sending at once.
const SENDERS: usize = 4;
/// Members that only listen.
const LISTENERS: usize = 2;
/// Messages per sender.
const PER_SENDER: usize = 50;

/// Several senders at once: every member (senders included) receives every
/// message exactly once, all members see the same order, and each sender's
/// messages keep the order it sent them in.
pub async fn concurrent_senders_same_order_for_all(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("concurrent");
    let total = SENDERS * PER_SENDER;
    let go = Arc::new(Barrier::new(SENDERS));

    // Everyone joins before anyone sends.
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        senders.push(join(addr, &room, &format!("sender-{s}")).await);
    }
    let mut listeners = Vec::new();
    for l in 0..LISTENERS {
        listeners.push(join(addr, &room, &format!("listener-{l}")).await);
    }
    let mut members = Vec::new();
    for (s, mut client) in senders.into_iter().enumerate() {
        let go = Arc::clone(&go);
        members.push(tokio::spawn(async move {
            go.wait().await;
            for i in 0..PER_SENDER {
                client.send_chat(&format!("s{s}-{i}")).await;
            }
            let mut seen = Vec::with_capacity(total);
            for _ in 0..total {
                seen.push(client.recv_message().await);
            }
            (client, seen)
        }));
    }
    for mut client in listeners {
        members.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(total);
            for _ in 0..total {
                seen.push(client.recv_message().await);
            }
            (client, seen)
        }));
    }
    let mut clients = Vec::new();
    let mut orders = Vec::new();
    for member in members {
        let (client, seen) = member.await.expect("a member's task panicked");
        clients.push(client);
        orders.push(seen);
    }

    let mut expected: Vec<String> = (0..SENDERS)
        .flat_map(|s| (0..PER_SENDER).map(move |i| format!("s{s}-{i}")))
        .collect();
    expected.sort();
    for (member, seen) in orders.iter().enumerate() {
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(
            sorted, expected,
            "member {member} did not receive every message exactly once"
        );
        assert_eq!(
            seen, &orders[0],
            "member {member} saw another order than member 0"
        );
    }
    for s in 0..SENDERS {
        let from_s: Vec<&String> = orders[0]
            .iter()
            .filter(|m| m.starts_with(&format!("s{s}-")))
            .collect();
        let sent: Vec<String> = (0..PER_SENDER).map(|i| format!("s{s}-{i}")).collect();
        assert!(
            from_s.iter().copied().eq(sent.iter()),
            "sender {s}'s messages arrived out of the order it sent them in"
        );
    }
    // Nothing more was queued for anyone: the barrier is everyone's next frame.
    clients[0].send_chat("the end").await;
    for client in &mut clients {
        client.expect_message("the end").await;
    }

    drop(clients);
    server.shutdown().await;
}

/// Texts that a careless encoder would mangle.
const TRICKY_TEXTS: &[&str] = &[
    "안녕하세요, 채팅방에 오신 것을 환영합니다",
    "emoji 🎉👍🏽 and a family 👨‍👩‍👧 and a flag 🇰🇷",
    "\"double\" and 'single' quotes, a \\ backslash, and \\n (not a newline)",
    "line one\nline two\r\n\ttabbed",
    "controls \u{0} \u{1} \u{1f} \u{7f} and a BOM \u{feff}",
    "</script><script>alert(\"x\")</script> & &amp; <b>",
    "{\"message\": \"nested JSON as text\"}",
    "\u{2028}line separator\u{2029}paragraph separator",
    "",
    " ",
];

/// Unicode, quotes, escapes, control characters and newlines round-trip
/// exactly, whether the client escapes them (`\uXXXX`, surrogate pairs) or not.
pub async fn unicode_round_trips(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("unicode");
    let mut sender = join(addr, &room, "sender").await;
    let mut other = join(addr, &room, "other").await;

    for text in TRICKY_TEXTS {
        sender.send_chat(text).await;
        sender.expect_message(text).await;
        other.expect_message(text).await;
    }
    // The same kind of text, escaped by the client instead.
    let escaped = r#"{"message": "\ud55c\uAE00 \ud83c\udf89 \"q\" \\ \/ \b\f\n\r\t \u0000"}"#;
    let decoded = "한글 🎉 \"q\" \\ / \u{8}\u{c}\n\r\t \u{0}";
    sender.send_text(escaped).await;
    sender.expect_message(decoded).await;
    other.expect_message(decoded).await;

    drop((sender, other));
    server.shutdown().await;
}

/// A client frame exactly `max_message_bytes` long is accepted (only a frame
/// *over* the limit is refused) and its message round-trips.
pub async fn message_at_the_size_limit_round_trips(start: Start) {
    let limit = 4096;
    let server = start(ServerConfig {
        max_message_bytes: limit,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("size_limit");
    let mut sender = join(addr, &room, "sender").await;
    let mut other = join(addr, &room, "other").await;

    let overhead = message::encode_client("").len();
    let text = "é".repeat((limit - overhead) / 2) + &"x".repeat((limit - overhead) % 2);
    assert_eq!(message::encode_client(&text).len(), limit);
    sender.send_chat(&text).await;
    sender.expect_message(&text).await;
    other.expect_message(&text).await;

    drop((sender, other));
    server.shutdown().await;
}

/// A client closing normally (1000) gets its close frame echoed, and the room
/// goes on for the others, newcomers included.
pub async fn client_close_is_echoed_and_room_goes_on(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("client_close");
    let mut leaver = join(addr, &room, "leaver").await;
    let mut stayer = join(addr, &room, "stayer").await;

    leaver.send_close(1000, "bye").await;
    leaver.expect_close(1000).await;

    stayer.send_chat("still here").await;
    stayer.expect_message("still here").await;
    let mut newcomer = join(addr, &room, "newcomer").await;
    newcomer.send_chat("hello after the leaver left").await;
    stayer.expect_message("hello after the leaver left").await;
    newcomer.expect_message("hello after the leaver left").await;

    drop((leaver, stayer, newcomer));
    server.shutdown().await;
}
