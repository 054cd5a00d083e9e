//! Hostile frames after a good handshake: every way to break RFC 6455's
//! framing (1002), UTF-8 cut across fragments (fine when the pieces join up,
//! 1007 when they do not), and messages that grow past the size limit one
//! tiny fragment at a time, or announce a huge length (1009 before the end).

use chat_protocol::ServerConfig;
use chat_protocol::close::CloseReason;
use chat_protocol::message::{self, ServerFrame};
use chat_testkit::raw::{RSV1, RSV2, RSV3, opcode};
use chat_testkit::{RawClient, RawFrame, unique_room};

use super::{Witnesses, expect_closed_for, still_serves};
use crate::Start;

/// Every frame sequence RFC 6455 forbids, with what it breaks.
fn violations() -> Vec<(String, Vec<RawFrame>)> {
    let junk = || RawFrame::chat("junk that must not reach the room");
    let start = || RawFrame::text(&b"{\"message\": \"interrupted"[..]).fin(false);
    let mut cases = vec![
        ("an unmasked frame".to_owned(), vec![junk().unmasked()]),
        ("RSV1 set".to_owned(), vec![junk().rsv(RSV1)]),
        ("RSV2 set".to_owned(), vec![junk().rsv(RSV2)]),
        ("RSV3 set".to_owned(), vec![junk().rsv(RSV3)]),
        (
            "RSV1 on a ping".to_owned(),
            vec![RawFrame::ping(b"p".to_vec()).rsv(RSV1)],
        ),
        (
            "a ping of 126 bytes".to_owned(),
            vec![RawFrame::ping(vec![b'p'; 126])],
        ),
        (
            "a close frame of 126 bytes".to_owned(),
            vec![RawFrame::close(1000, &[b'c'; 124])],
        ),
        (
            "a fragmented ping".to_owned(),
            vec![RawFrame::ping(b"half".to_vec()).fin(false)],
        ),
        (
            "a new message inside a fragmented one".to_owned(),
            vec![start(), junk()],
        ),
        (
            "a continuation without a start".to_owned(),
            vec![RawFrame::continuation(junk().payload)],
        ),
    ];
    for code in (0x3..=0x7).chain(0xB..=0xF) {
        cases.push((
            format!("reserved opcode {code:#x}"),
            vec![RawFrame::new(code, junk().payload)],
        ));
    }
    cases
}

/// Each framing violation closes that connection with 1002 and the protocol
/// error's reason; none of it reaches the room.
pub async fn protocol_violations_close_1002(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("violations");
    let mut witnesses = Witnesses::join(&server, &room).await;

    for (what, frames) in violations() {
        let mut hostile = RawClient::connect(addr, &room, "violator").await;
        hostile.send(&frames).await;
        expect_closed_for(&mut hostile, CloseReason::ProtocolError, &what).await;
        witnesses.barrier(&format!("after {what}")).await;
    }

    witnesses.finish().await;
    still_serves(addr, "after_violations").await;
    server.shutdown().await;
}

/// A text message in five fragments, cut inside a three-byte character and
/// twice inside a four-byte one, with an empty fragment and a ping among
/// them (control frames may come between fragments), is one valid message:
/// delivered whole to the sender and the room, and the ping is answered.
pub async fn utf8_split_across_fragments_is_delivered_whole(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("utf8_split");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let text = "5 €, then 😀, whole";
    let payload = message::encode_client(text).into_bytes();
    let euro = find(&payload, "€".as_bytes());
    let smiley = find(&payload, "😀".as_bytes());
    let cuts = [
        0,
        euro + 1,
        smiley + 1,
        smiley + 1,
        smiley + 3,
        payload.len(),
    ];
    let mut frames: Vec<RawFrame> = cuts
        .windows(2)
        .map(|cut| RawFrame::continuation(payload[cut[0]..cut[1]].to_vec()).fin(false))
        .collect();
    frames[0].opcode = opcode::TEXT;
    if let Some(last) = frames.last_mut() {
        last.fin = true;
    }
    frames.insert(2, RawFrame::ping(b"between fragments".to_vec()));
    let mut hostile = RawClient::connect(addr, &room, "fragmenter").await;
    hostile.send(&frames).await;

    // The pong and the message may come in either order: one is the answer
    // to this client, the other the room's broadcast.
    let (mut pongs, mut messages) = (0, 0);
    for _ in 0..2 {
        let frame = hostile.recv_frame("the pong and the message").await;
        let parsed = std::str::from_utf8(&frame.payload)
            .ok()
            .and_then(|payload| ServerFrame::parse(payload).ok());
        match parsed {
            _ if frame.opcode == opcode::PONG && frame.payload == b"between fragments" => {
                pongs += 1
            }
            Some(ServerFrame::Message { message }) if message == text => messages += 1,
            _ => panic!(
                "expected the pong and the message, got {}",
                frame.describe()
            ),
        }
    }
    assert_eq!((pongs, messages), (1, 1), "one pong and one message");
    witnesses.expect_from_others(text).await;
    witnesses.barrier("after the fragments").await;
    hostile.expect_message("after the fragments").await;

    drop(hostile);
    witnesses.finish().await;
    still_serves(addr, "after_utf8_split").await;
    server.shutdown().await;
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the needle is in the message")
}

/// Fragments whose bytes, joined, are not UTF-8 close that connection with
/// 1007; none of it reaches the room.
pub async fn invalid_utf8_across_fragments_closes_1007(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("utf8_fragments");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let open = b"{\"message\": \"a".to_vec();
    let cases: [(&str, &[&[u8]]); 5] = [
        (
            "an invalid byte in a middle fragment",
            &[&open, b"\xff", b"\"}"],
        ),
        (
            "a character cut short by the next fragment",
            &[&[&open[..], b"\xe2\x82"].concat(), b"\"}"],
        ),
        (
            "a message ending inside a character",
            &[b"{\"message\": \"a\"}", b"\xe2\x82"],
        ),
        (
            "an encoded surrogate, split",
            &[&[&open[..], b"\xed"].concat(), b"\xa0\x80\"}"],
        ),
        (
            "an overlong encoding, split",
            &[&[&open[..], b"\xc0"].concat(), b"\xaf\"}"],
        ),
    ];
    for (what, pieces) in cases {
        let mut frames: Vec<RawFrame> = pieces
            .iter()
            .map(|piece| RawFrame::continuation(piece.to_vec()).fin(false))
            .collect();
        frames[0].opcode = opcode::TEXT;
        if let Some(last) = frames.last_mut() {
            last.fin = true;
        }
        let mut hostile = RawClient::connect(addr, &room, "bad-utf8").await;
        hostile.send(&frames).await;
        expect_closed_for(&mut hostile, CloseReason::InvalidUtf8, what).await;
        witnesses.barrier(&format!("after {what}")).await;
    }

    witnesses.finish().await;
    still_serves(addr, "after_utf8_fragments").await;
    server.shutdown().await;
}

/// A message that passes `max_message_bytes` one 1-byte fragment at a time,
/// its final fragment never sent, closes with 1009: the server counts as it
/// goes instead of buffering until the end. So does a frame header
/// announcing 4 EiB, its payload never sent.
pub async fn oversized_messages_close_1009_before_they_end(start: Start) {
    let limit = 1024;
    let server = start(ServerConfig {
        max_message_bytes: limit,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("tiny_fragments");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let mut fragments = vec![RawFrame::text(b"{".to_vec()).fin(false)];
    fragments.extend((0..2 * limit).map(|_| RawFrame::continuation(b"x".to_vec()).fin(false)));
    let mut hostile = RawClient::connect(addr, &room, "tiny-fragments").await;
    hostile.send(&fragments).await;
    let what = format!("{} fragments of 1 byte, unfinished", fragments.len());
    expect_closed_for(&mut hostile, CloseReason::MessageTooBig, &what).await;
    witnesses.barrier("after the tiny fragments").await;

    // FIN + text, masked, 64-bit length 2^62, then the masking key only.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let mut hostile = RawClient::connect(addr, &room, "huge-length").await;
    hostile.write(&header).await;
    expect_closed_for(&mut hostile, CloseReason::MessageTooBig, "a 4 EiB length").await;
    witnesses.barrier("after the huge length").await;

    witnesses.finish().await;
    still_serves(addr, "after_1009").await;
    server.shutdown().await;
}
