//! Bad input: answered with `{"error": ...}` while the connection stays, or,
//! for what breaks the WebSocket itself, closed with the matching code. Bad
//! input never reaches the other members.

use chat_protocol::ServerConfig;
use chat_protocol::close::CloseReason;
use chat_protocol::message::{self, BadInput};
use chat_protocol::tungstenite::protocol::frame::Frame;
use chat_protocol::tungstenite::protocol::frame::coding::{Data, OpCode};
use chat_testkit::{Client, unique_room};

use crate::Start;
use crate::delivery::join;

/// A bad frame a client can send.
enum Bad {
    Text(&'static str),
    Binary(&'static [u8]),
}

/// Every kind of bad input, with the error the protocol answers it with.
const BAD_INPUTS: &[(&str, Bad, BadInput)] = &[
    ("plain text", Bad::Text("hello"), BadInput::InvalidJson),
    (
        "truncated JSON",
        Bad::Text(r#"{"message": "hi""#),
        BadInput::InvalidJson,
    ),
    ("an empty text frame", Bad::Text(""), BadInput::InvalidJson),
    (
        "JSON with a trailing comma",
        Bad::Text(r#"{"message": "hi",}"#),
        BadInput::InvalidJson,
    ),
    (
        "a JSON array",
        Bad::Text(r#"[{"message": "hi"}]"#),
        BadInput::NotAnObject,
    ),
    ("a JSON string", Bad::Text(r#""hi""#), BadInput::NotAnObject),
    ("a JSON number", Bad::Text("42"), BadInput::NotAnObject),
    ("JSON null", Bad::Text("null"), BadInput::NotAnObject),
    ("an empty object", Bad::Text("{}"), BadInput::MissingMessage),
    (
        "an object without message",
        Bad::Text(r#"{"msg": "hi"}"#),
        BadInput::MissingMessage,
    ),
    (
        "a number message",
        Bad::Text(r#"{"message": 42}"#),
        BadInput::MessageNotString,
    ),
    (
        "a null message",
        Bad::Text(r#"{"message": null}"#),
        BadInput::MessageNotString,
    ),
    (
        "a boolean message",
        Bad::Text(r#"{"message": true}"#),
        BadInput::MessageNotString,
    ),
    (
        "an array message",
        Bad::Text(r#"{"message": ["hi"]}"#),
        BadInput::MessageNotString,
    ),
    (
        "an object message",
        Bad::Text(r#"{"message": {"text": "hi"}}"#),
        BadInput::MessageNotString,
    ),
    (
        "a binary frame",
        Bad::Binary(br#"{"message": "hi"}"#),
        BadInput::BinaryFrame,
    ),
    (
        "an empty binary frame",
        Bad::Binary(b""),
        BadInput::BinaryFrame,
    ),
];

/// Each kind of bad input gets the protocol's error reply, the connection
/// stays usable (the next chat message goes through), and the other member
/// sees nothing of it (that chat message is its next frame).
pub async fn bad_input_gets_an_error_and_the_connection_stays(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("bad_input");
    let mut sender = join(addr, &room, "sender").await;
    let mut other = join(addr, &room, "other").await;

    for (what, bad, expected) in BAD_INPUTS {
        match bad {
            Bad::Text(text) => sender.send_text(text).await,
            Bad::Binary(data) => sender.send_binary(data).await,
        }
        let error = sender.expect_error().await;
        assert_eq!(
            error,
            expected.to_string(),
            "{what} got the wrong error reply"
        );
        let after = format!("still usable after {what}");
        sender.send_chat(&after).await;
        sender.expect_message(&after).await;
        other.expect_message(&after).await;
    }

    drop((sender, other));
    server.shutdown().await;
}

/// Fields besides `message` are ignored, wherever they are.
pub async fn extra_fields_are_ignored(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("extra_fields");
    let mut sender = join(addr, &room, "sender").await;
    let mut other = join(addr, &room, "other").await;

    sender
        .send_text(r#"{"type": "chat", "message": "with extras", "n": [1, {"x": null}]}"#)
        .await;
    sender.expect_message("with extras").await;
    other.expect_message("with extras").await;

    drop((sender, other));
    server.shutdown().await;
}

/// The next frame of `client` must be the close frame for `reason`.
async fn expect_closed_for(client: &mut Client, reason: CloseReason) {
    let frame = client.expect_close(u16::from(reason.code())).await;
    assert_eq!(
        frame.reason.as_str(),
        reason.text(),
        "{}: wrong close reason",
        client.label()
    );
}

/// A text or binary message over `max_message_bytes` closes that connection
/// with 1009; the room goes on for the others.
pub async fn oversized_message_closes_1009(start: Start) {
    let limit = 1024;
    let server = start(ServerConfig {
        max_message_bytes: limit,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("oversized");
    let mut big_text = join(addr, &room, "big-text").await;
    let mut big_binary = join(addr, &room, "big-binary").await;
    let mut other = join(addr, &room, "other").await;

    let overhead = message::encode_client("").len();
    big_text.send_chat(&"x".repeat(limit + 1 - overhead)).await;
    expect_closed_for(&mut big_text, CloseReason::MessageTooBig).await;
    big_binary.send_binary(&vec![b'x'; 4 * limit]).await;
    expect_closed_for(&mut big_binary, CloseReason::MessageTooBig).await;

    other.send_chat("still fine").await;
    other.expect_message("still fine").await;

    drop((big_text, big_binary, other));
    server.shutdown().await;
}

/// A text frame that is not UTF-8 closes that connection with 1007.
pub async fn invalid_utf8_closes_1007(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("invalid_utf8");
    let mut bad = join(addr, &room, "bad").await;
    let mut other = join(addr, &room, "other").await;

    let not_utf8 = b"{\"message\": \"\xff\xfe\"}".to_vec();
    bad.send_raw_frame(Frame::message(not_utf8, OpCode::Data(Data::Text), true))
        .await;
    expect_closed_for(&mut bad, CloseReason::InvalidUtf8).await;

    other.send_chat("still fine").await;
    other.expect_message("still fine").await;

    drop((bad, other));
    server.shutdown().await;
}

/// A WebSocket protocol violation (a reserved opcode) closes that connection
/// with 1002.
pub async fn protocol_violation_closes_1002(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("protocol_violation");
    let mut bad = join(addr, &room, "bad").await;
    let mut other = join(addr, &room, "other").await;

    bad.send_raw_frame(Frame::message(
        b"??".to_vec(),
        OpCode::Data(Data::Reserved(3)),
        true,
    ))
    .await;
    expect_closed_for(&mut bad, CloseReason::ProtocolError).await;

    other.send_chat("still fine").await;
    other.expect_message("still fine").await;

    drop((bad, other));
    server.shutdown().await;
}

/// A ping is answered with a pong carrying its payload, to the pinger only,
/// and the connection goes on.
pub async fn ping_gets_pong(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("ping");
    let mut pinger = join(addr, &room, "pinger").await;
    let mut other = join(addr, &room, "other").await;

    pinger.send_ping(b"are you there?").await;
    pinger.expect_pong(b"are you there?").await;
    pinger.send_ping(b"").await;
    pinger.expect_pong(b"").await;
    pinger.send_chat("after the pings").await;
    pinger.expect_message("after the pings").await;
    other.expect_message("after the pings").await;

    drop((pinger, other));
    server.shutdown().await;
}
