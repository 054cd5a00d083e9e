//! Property tests of the protocol's parsers and encoders, on arbitrary input
//! and on arbitrary well-formed input: they never panic, they accept exactly
//! what SPEC.md accepts, and everything the servers encode decodes back.

use chat_protocol::layer;
use chat_protocol::message::{self, ServerFrame};
use chat_protocol::room::{MAX_ROOM_NAME_LEN, RoomName, WS_PATH_PREFIX, room_in_path};
use chat_protocol::route::{Head, parse_head};
use proptest::prelude::*;

/// A valid room name: 1 to 94 ASCII word characters.
fn room_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,94}"
}

/// A well-formed upgrade request for `room`.
fn upgrade_head(room: &str) -> String {
    format!(
        "GET {WS_PATH_PREFIX}{room}/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

proptest! {
    /// A room name is accepted exactly when SPEC.md says: 1 to 94 ASCII
    /// letters, digits or `_`.
    #[test]
    fn room_names_follow_the_rule(name in any::<String>()) {
        let valid = (1..=MAX_ROOM_NAME_LEN).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        prop_assert_eq!(RoomName::new(&name).is_ok(), valid);
    }

    /// Every valid name is accepted, kept as given, and found in its path.
    #[test]
    fn valid_room_names_round_trip(name in room_name()) {
        let room = RoomName::new(&name).expect("valid");
        prop_assert_eq!(room.as_str(), name.as_str());
        let path = format!("{WS_PATH_PREFIX}{name}/");
        prop_assert_eq!(room_in_path(&path, WS_PATH_PREFIX), Some(Ok(room)));
    }

    /// Any bytes, any limit: the request-head router answers, never panics.
    #[test]
    fn the_router_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                               limit in 1usize..4096) {
        let mut buf = bytes;
        let _ = parse_head(&mut buf, limit, &[]);
    }

    /// A well-formed upgrade for any valid room is an upgrade to that room,
    /// and whatever follows the head is handed on, not lost.
    #[test]
    fn well_formed_upgrades_are_routed(name in room_name(),
                                       after in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = upgrade_head(&name).into_bytes();
        buf.extend_from_slice(&after);
        match parse_head(&mut buf, 8192, &[]) {
            Head::Upgrade(upgrade) => {
                prop_assert_eq!(upgrade.room.as_str(), name.as_str());
                prop_assert_eq!(upgrade.leftover, after);
            }
            Head::Incomplete => prop_assert!(false, "a complete head read as incomplete"),
            Head::Respond(_) => prop_assert!(false, "a well-formed upgrade was refused"),
        }
    }

    /// Any text: the client-message decoder answers, never panics.
    #[test]
    fn the_decoder_never_panics(text in any::<String>()) {
        let _ = message::decode_client_text(&text);
    }

    /// `{"message": <any string>}`, with or without other fields, decodes to
    /// that string.
    #[test]
    fn well_formed_messages_decode(text in any::<String>(), extra in any::<Option<i64>>()) {
        let json = match extra {
            Some(n) => serde_json::json!({ "x": n, "message": text }),
            None => serde_json::json!({ "message": text }),
        };
        prop_assert_eq!(message::decode_client_text(&json.to_string()), Ok(text));
    }

    /// Every frame the servers encode parses back to what was encoded.
    #[test]
    fn server_frames_round_trip(text in any::<String>()) {
        let chat = message::encode_chat(&text);
        prop_assert_eq!(
            ServerFrame::parse(&chat).expect("a chat frame parses"),
            ServerFrame::Message { message: text.clone() }
        );
        let error = message::encode_error(&text);
        prop_assert_eq!(
            ServerFrame::parse(&error).expect("an error frame parses"),
            ServerFrame::Error { error: text }
        );
    }

    /// The Redis layer's payload decodes back to its text, and arbitrary
    /// bytes on a group channel never panic the decoder.
    #[test]
    fn layer_payloads_round_trip(text in any::<String>(),
                                 bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert_eq!(layer::decode_chat(&layer::encode_chat(&text)), Ok(text));
        let _ = layer::decode_chat(&bytes);
    }
}
