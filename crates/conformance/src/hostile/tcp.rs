//! Hostile TCP: a client that resets its connection in the middle of a
//! frame, and one that half-closes its socket after a message. The server
//! must let go of both (their connection slots come back) and the room must
//! go on as if nothing happened.

use std::net::SocketAddr;

use chat_protocol::ServerConfig;
use chat_protocol::message::ServerFrame;
use chat_testkit::raw::Event;
use chat_testkit::{
    Client, Connect, POLL_INTERVAL, POLL_TIMEOUT, RawClient, RawFrame, refusal_status, unique_room,
};
use tokio::time::Instant;

use crate::Start;
use crate::delivery::join;

/// Joins `room` as `name` once a connection slot is free, polling while the
/// server answers 503 (it frees a slot when it has finished with a
/// connection, which may be just after the client is gone).
async fn join_when_a_slot_is_free(addr: SocketAddr, room: &str, name: &str) -> Client {
    let deadline = Instant::now() + POLL_TIMEOUT;
    loop {
        match Connect::room(room).name(name).try_to(addr).await {
            Ok(client) => return client,
            Err(error) if refusal_status(&error) == Some(503) && Instant::now() < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err(error) => panic!(
                "{name}: no connection slot came free within {} s: {error:#}",
                POLL_TIMEOUT.as_secs()
            ),
        }
    }
}

/// Both slots are taken: a third client is refused with 503.
async fn expect_full(addr: SocketAddr, room: &str) {
    let refused = Connect::room(room).name("third").try_to(addr).await;
    let status = refused.as_ref().err().and_then(refusal_status);
    assert_eq!(
        status,
        Some(503),
        "with both slots taken, a third client got {refused:?}"
    );
}

/// A client that resets its connection (an RST, `SO_LINGER` 0) with half a
/// frame sent is let go: its slot comes back for a newcomer, and the member
/// that stayed receives the newcomer's message as its next frame.
pub async fn reset_mid_frame_frees_the_slot(start: Start) {
    let server = start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("reset");
    let mut member = join(addr, &room, "member").await;
    let mut hostile = RawClient::connect(addr, &room, "resetter").await;
    expect_full(addr, &room).await;
    member.send_chat("before the reset").await;
    member.expect_message("before the reset").await;
    hostile.expect_message("before the reset").await;

    let frame = RawFrame::chat(&"r".repeat(90)).encode();
    hostile.write(&frame[..frame.len() / 2]).await;
    hostile.reset();

    let mut newcomer = join_when_a_slot_is_free(addr, &room, "newcomer").await;
    newcomer.send_chat("in the freed slot").await;
    newcomer.expect_message("in the freed slot").await;
    member.expect_message("in the freed slot").await;

    drop((member, newcomer));
    server.shutdown().await;
}

/// A client that sends a message and then half-closes its socket
/// (`shutdown(SHUT_WR)`): the message reaches the room, the client still
/// reads what was queued for it (its echo), then the server ends the
/// connection without a close frame (the client never sent one: the
/// WebSocket is over, abnormally), and the slot comes back.
pub async fn half_closed_client_is_served_then_ended(start: Start) {
    let server = start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("half_closed");
    let mut member = join(addr, &room, "member").await;
    let mut hostile = RawClient::connect(addr, &room, "half-closer").await;
    expect_full(addr, &room).await;

    let text = "then I stop talking";
    hostile.send(&[RawFrame::chat(text)]).await;
    hostile.shutdown_write().await;
    member.expect_message(text).await;

    let frame = match hostile.next_event("its echo").await {
        Event::Frame(frame) => frame,
        Event::End(end) => panic!("half-closer: the connection ended ({end:?}) before its echo"),
    };
    let parsed = std::str::from_utf8(&frame.payload)
        .ok()
        .and_then(|payload| ServerFrame::parse(payload).ok());
    assert!(
        matches!(&parsed, Some(ServerFrame::Message { message }) if message == text),
        "half-closer: expected its echo, got {}",
        frame.describe()
    );
    match hostile.next_event("the end of the connection").await {
        Event::End(_) => {}
        Event::Frame(frame) => panic!("half-closer: after its echo, got {}", frame.describe()),
    }

    let mut newcomer = join_when_a_slot_is_free(addr, &room, "newcomer").await;
    newcomer.send_chat("in the freed slot").await;
    newcomer.expect_message("in the freed slot").await;
    member.expect_message("in the freed slot").await;

    drop((member, newcomer));
    server.shutdown().await;
}
