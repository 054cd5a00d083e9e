//! Hostile clients: what a buggy or malicious peer can send, and the standard
//! answer to each (RFC 9110 statuses at the handshake, RFC 6455 close codes
//! after it).
//!
//! Every scenario proves three things: the hostile client gets the standard
//! answer; the server stays up (a normal client joins and chats at the end);
//! and the well-behaved members of the room the hostile client went for lose
//! nothing and see nothing of it (the `Witnesses`: a barrier message after each
//! attack, and, at the end, every message received exactly once, in order).
//! The hostile clients are `chat_testkit`'s [`RawClient`] (frames built field
//! by field) and bare `TcpStream`s.
//!
//! * [`slowloris`]: a request head trickled byte by byte (408).
//! * [`handshake`]: oversized heads (431), HTTP/1.0,
//!   non-HTTP, bad keys (400), bad versions (426), frames pipelined behind
//!   the request head.
//! * [`flood`]: two thousand silent connections against a small handshake limit.
//! * [`per_ip`]: two thousand upgrades from one address (429 beyond its
//!   share), and new connections from one address faster than its rate.
//! * [`frames`]: every framing violation (1002), UTF-8 across fragments
//!   (delivered, or 1007), tiny fragments past the size limit and a huge
//!   announced length (1009, before the message ends).
//! * [`close`]: bad close codes (1002), valid ones echoed, data after a close.
//! * [`tcp`]: a reset in the middle of a frame, a half-closed socket.
//!
//! (A member that never reads while the room is busy is
//! `lifecycle::slow_consumer_is_closed_1013`, which already proves the others
//! receive every message.)

pub mod close;
pub mod flood;
pub mod frames;
pub mod handshake;
pub mod per_ip;
pub mod slowloris;
pub mod tcp;

use chat_protocol::close::CloseReason;
use chat_testkit::{Client, RawClient};

use crate::TestServer;
use crate::delivery::join;
pub(crate) use crate::handshake::still_serves;

pub use close::{
    bad_close_codes_are_answered_1002, data_after_a_close_never_reaches_the_room,
    valid_close_codes_are_echoed,
};
pub use flood::silent_connection_flood_blocks_no_one;
pub use frames::{
    invalid_utf8_across_fragments_closes_1007, oversized_messages_close_1009_before_they_end,
    protocol_violations_close_1002, utf8_split_across_fragments_is_delivered_whole,
};
pub use handshake::{
    bad_websocket_keys_are_refused_400, bad_websocket_versions_are_refused_426,
    frames_pipelined_after_the_head_are_delivered, http_1_0_upgrades_are_refused_400,
    non_http_requests_are_refused_400, oversized_heads_are_refused_431,
};
pub use per_ip::{handshake_rate_is_limited_per_address, one_address_cannot_take_every_slot};
pub use slowloris::slowloris_head_is_refused_408;
pub use tcp::{half_closed_client_is_served_then_ended, reset_mid_frame_frees_the_slot};

/// Two well-behaved members of the room under attack.
///
/// The speaker reads as it goes: each message it sends, or that another
/// member sends, must be its very next frame (a barrier: nothing the hostile
/// client sent before reached it). The listener reads nothing until
/// [`Witnesses::finish`], then must find every one of those messages, in
/// order, and nothing else.
pub(crate) struct Witnesses {
    speaker: Client,
    listener: Client,
    /// Every message the room carried, in order.
    expected: Vec<String>,
    /// The server, for the report.
    label: &'static str,
}

impl Witnesses {
    /// Joins the speaker and the listener to `room` on `server`.
    pub(crate) async fn join(server: &TestServer, room: &str) -> Self {
        Self {
            speaker: join(server.addr(), room, "witness-speaker").await,
            listener: join(server.addr(), room, "witness-listener").await,
            expected: Vec::new(),
            label: server.label(),
        }
    }

    /// The speaker sends `text`, which must be its next frame.
    pub(crate) async fn barrier(&mut self, text: &str) {
        self.speaker.send_chat(text).await;
        self.expect_from_others(text).await;
    }

    /// Someone else sent `text` to the room: it must be the speaker's next
    /// frame (and, at the end, in the listener's).
    pub(crate) async fn expect_from_others(&mut self, text: &str) {
        self.speaker.expect_message(text).await;
        self.expected.push(text.to_owned());
    }

    /// A last barrier, then the listener's count: every message, once, in
    /// order, with nothing in between.
    pub(crate) async fn finish(mut self) {
        self.barrier("the last barrier").await;
        for text in &self.expected {
            self.listener.expect_message(text).await;
        }
        println!(
            "{}: the witnesses received all {} messages of the room, and nothing else",
            self.label,
            self.expected.len()
        );
    }
}

/// The hostile client must get a close frame for `reason` (code and text)
/// next; it answers it, and the server then ends the connection.
pub(crate) async fn expect_closed_for(hostile: &mut RawClient, reason: CloseReason, what: &str) {
    let code = u16::from(reason.code());
    let close = hostile
        .expect_close_frame(&format!("a close frame with code {code} for {what}"))
        .await;
    assert_eq!(
        close.close_code(),
        Some(code),
        "{what}: wrong close code (reason {:?})",
        close.close_reason()
    );
    assert_eq!(
        close.close_reason(),
        reason.text(),
        "{what}: wrong close reason"
    );
    hostile.answer_close(&close).await;
}

/// Raises this process's open-files limit to `wanted` descriptors (a flood
/// holds both ends of every connection here), or fails the test saying why.
pub(crate) fn raise_open_files(wanted: u64) {
    let limit = rlimit::increase_nofile_limit(wanted).expect("raising RLIMIT_NOFILE should work");
    assert!(
        limit >= wanted,
        "RLIMIT_NOFILE is {limit}, the flood needs {wanted}"
    );
}
