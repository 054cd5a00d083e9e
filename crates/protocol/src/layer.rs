//! The wire format of the Redis channel layer, defined once.
//!
//! Servers in several processes can share rooms through Redis pub/sub. They
//! speak the format of Django Channels' own Redis layer so that
//! a Rust server and the Django tutorial can serve the same room side by
//! side: `channels_redis.pubsub.RedisPubSubChannelLayer` (channels_redis
//! 4.3.0) with its default msgpack serializer and no
//! `symmetric_encryption_keys`. That layer is plain Redis pub/sub:
//!
//! - a room's group `chat_<room>` ([`group`]) is the Redis channel
//!   `<prefix>__group__chat_<room>` ([`group_channel`]), prefix `asgi` by
//!   default ([`DEFAULT_PREFIX`]), with nothing between prefix and `__group__`;
//! - `group_send` is one `PUBLISH <channel> <payload>` on the host that
//!   `channels_redis.utils._consistent_hash` picks for the channel name
//!   ([`shard`]); `group_add` is a `SUBSCRIBE` on that host, once per
//!   process and group;
//! - the payload is exactly `msgpack.packb(message)`: no random prefix, no
//!   envelope, no encryption ([`encode_chat`], [`decode_chat`]).
//!
//! Everything here is a pure function, so the sync and the async server
//! agree on every byte by construction and the tests need no Redis. The
//! Redis connections themselves are each server's business.
//!
//! Django is unforgiving: a payload its consumer cannot handle (not msgpack,
//! no `type`, an unknown `type`, no `message`, a `message` that is not
//! JSON-serialisable) raises in every Django consumer of the room, and Daphne
//! closes their sockets with 1011. So servers publish only what
//! [`encode_chat`] builds, and treat anything [`decode_chat`] rejects as
//! noise to log and skip, never as fatal.

use crate::RoomName;
use rmpv::ValueRef;

/// The default channel-name prefix of channels_redis (`prefix="asgi"`).
pub const DEFAULT_PREFIX: &str = "asgi";

/// The `type` this crate publishes: the name of the consumer's handler
/// method, `chat_message`, as the seed post spells it.
pub const CHAT_MESSAGE_TYPE: &str = "chat_message";

/// The `type` the Django tutorial publishes. Channels maps `.` to `_` to
/// find the handler, so it means the same as [`CHAT_MESSAGE_TYPE`].
pub const TUTORIAL_CHAT_MESSAGE_TYPE: &str = "chat.message";

/// What channels_redis puts between its prefix and the group name.
const GROUP_INFIX: &str = "__group__";

/// The Django Channels group of a room: the tutorial's `chat_<room>`.
pub fn group(room: &RoomName) -> String {
    room.group()
}

/// The Redis pub/sub channel of a room's group: `<prefix>__group__chat_<room>`,
/// as `RedisPubSubLoopLayer._get_group_channel_name` builds it.
pub fn group_channel(prefix: &str, room: &RoomName) -> String {
    format!("{prefix}{GROUP_INFIX}{}", room.group())
}

/// The room whose group channel `channel` is, if it is one: the inverse of
/// [`group_channel`], for routing what a subscription receives.
///
/// `None` for anything else: another prefix, a consumer's own channel
/// (`asgispecific.<hex>`), a group that is not `chat_<room>`, or a room name
/// this crate would refuse.
pub fn room_of_channel(prefix: &str, channel: &str) -> Option<RoomName> {
    let group = channel.strip_prefix(prefix)?.strip_prefix(GROUP_INFIX)?;
    let name = group.strip_prefix("chat_")?;
    RoomName::new(name).ok()
}

/// Which of `shards` Redis hosts carries `channel`, as
/// `channels_redis.utils._consistent_hash` decides it.
///
/// The name hashed is the whole Redis channel (prefix included), and the
/// index is a position in the hosts list, so Rust and Django must list the
/// same hosts in the same order. The formula is Python's, float division
/// included: CRC-32 of the UTF-8 name, its low 12 bits as a slot of a
/// 4096-slot ring, divided by `4096 / shards` and truncated. The integer form
/// `slot * shards / 4096` differs for some rings of 186 hosts or more.
///
/// # Panics
///
/// If `shards` is 0 (Python raises `ZeroDivisionError`): there is no host to
/// pick.
pub fn shard(channel: &str, shards: usize) -> usize {
    assert!(shards > 0, "a Redis channel layer needs at least one host");
    if shards == 1 {
        return 0;
    }
    let slot = f64::from(crc32fast::hash(channel.as_bytes()) & 0xFFF);
    let ring_divisor = 4096.0 / shards as f64;
    // Truncation toward zero, as Python's `int()`; the quotient is below
    // `shards`, so the cast is exact.
    (slot / ring_divisor) as usize
}

/// The payload a server publishes for a chat message: the msgpack map
/// `{"type": "chat_message", "message": text}`, byte-identical to Python's
/// `msgpack.packb({"type": "chat_message", "message": text})` (keys in that
/// order, the shortest string forms).
pub fn encode_chat(text: &str) -> Vec<u8> {
    let event = ValueRef::Map(vec![
        (ValueRef::from("type"), ValueRef::from(CHAT_MESSAGE_TYPE)),
        (ValueRef::from("message"), ValueRef::from(text)),
    ]);
    // fixmap + "type" + "chat_message" + "message" take 27 bytes, the text at
    // most 5 more than its length.
    let mut payload = Vec::with_capacity(32 + text.len());
    rmpv::encode::write_value_ref(&mut payload, &event)
        .expect("writing msgpack into a Vec cannot fail");
    payload
}

/// Decodes a payload received on a group channel into the chat text.
///
/// Accepts what a Django chat consumer accepts, as long as its `message` is
/// text: a msgpack map whose `type` is `chat_message` or `chat.message` and
/// whose `message` is a string; other keys are ignored. If a key appears
/// twice, the last one counts, as in a Python dict. Like Python's
/// `msgpack.unpackb` as channels_redis calls it, it refuses the reserved
/// byte 0xc1, trailing bytes, a str that is not UTF-8 where it reads one, and
/// map keys other than str or bin. It does not check the UTF-8 of keys it
/// ignores, nor look inside their values, where Python would refuse the same
/// things.
///
/// # Errors
///
/// [`LayerDecodeError`] says what was wrong, checked in the order Django
/// would trip over it. The caller logs it and skips the payload.
pub fn decode_chat(payload: &[u8]) -> Result<String, LayerDecodeError> {
    // rmpv reads the reserved byte 0xc1 as nil; msgpack says it never
    // appears, and Python's unpackb refuses it.
    if payload.first() == Some(&0xc1) {
        return Err(LayerDecodeError::NotMsgpack(
            "reserved byte 0xc1".to_owned(),
        ));
    }
    let mut rest = payload;
    let value = rmpv::decode::read_value_ref(&mut rest)
        .map_err(|e| LayerDecodeError::NotMsgpack(e.to_string()))?;
    if !rest.is_empty() {
        return Err(LayerDecodeError::NotMsgpack(format!(
            "{} bytes after the value",
            rest.len()
        )));
    }
    let ValueRef::Map(entries) = value else {
        return Err(LayerDecodeError::NotAMap(MsgpackKind::of(&value)));
    };
    // channels_redis unpacks with `strict_map_key=True`.
    if let Some((key, _)) = entries
        .iter()
        .find(|(k, _)| !matches!(k, ValueRef::String(_) | ValueRef::Binary(_)))
    {
        return Err(LayerDecodeError::NotMsgpack(format!(
            "a map key that is a msgpack {}, not a str or bin",
            MsgpackKind::of(key)
        )));
    }
    let field = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, ValueRef::String(s) if s.as_bytes() == key.as_bytes()))
            .map(|(_, v)| v)
    };
    let kind = match field("type") {
        None => return Err(LayerDecodeError::NoType),
        Some(ValueRef::String(kind)) => kind.as_str().ok_or_else(invalid_utf8)?,
        Some(other) => return Err(LayerDecodeError::TypeNotAString(MsgpackKind::of(other))),
    };
    if kind != CHAT_MESSAGE_TYPE && kind != TUTORIAL_CHAT_MESSAGE_TYPE {
        return Err(LayerDecodeError::OtherType(kind.to_owned()));
    }
    match field("message") {
        None => Err(LayerDecodeError::NoMessage),
        Some(ValueRef::String(text)) => Ok(text.as_str().ok_or_else(invalid_utf8)?.to_owned()),
        Some(other) => Err(LayerDecodeError::MessageNotAString(MsgpackKind::of(other))),
    }
}

/// Python's `unpackb(raw=False)` refuses a str that is not UTF-8.
fn invalid_utf8() -> LayerDecodeError {
    LayerDecodeError::NotMsgpack("a str that is not UTF-8".to_owned())
}

/// Why a payload on a group channel is not a chat message.
///
/// Every variant means the same to a server: log it (`warn!`, it came from
/// another process, not from a client) and skip the payload; the
/// subscription goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerDecodeError {
    /// The bytes are not one msgpack value that Python's `unpackb` would
    /// take (truncated, the reserved byte 0xc1, bytes left over, a str that
    /// is not UTF-8, a map key that is not a str or bin, nesting deeper than
    /// 1024). Someone else publishes on the channel, or with another
    /// serializer or encryption.
    #[error("payload is not msgpack: {0}")]
    NotMsgpack(String),
    /// The payload is msgpack but not a map.
    #[error("payload is a msgpack {0}, not a map")]
    NotAMap(MsgpackKind),
    /// The map has no `"type"` key.
    #[error("payload has no \"type\"")]
    NoType,
    /// The `"type"` value is not a string.
    #[error("payload \"type\" is a msgpack {0}, not a str")]
    TypeNotAString(MsgpackKind),
    /// The `"type"` is a string other than `chat_message` / `chat.message`:
    /// another kind of event on the group, which this server does not handle.
    #[error("payload type {0:?} is not a chat message")]
    OtherType(String),
    /// A chat message without a `"message"` key.
    #[error("chat message has no \"message\"")]
    NoMessage,
    /// A chat message whose `"message"` is not a string. (The Django tutorial
    /// relays any JSON value a browser sends; this crate's clients send text.)
    #[error("chat message \"message\" is a msgpack {0}, not a str")]
    MessageNotAString(MsgpackKind),
}

/// The kind of a msgpack value, for saying what was found instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgpackKind {
    /// `nil` (Python `None`).
    Nil,
    /// `true` / `false`.
    Bool,
    /// An integer.
    Int,
    /// A float32 or float64.
    Float,
    /// A str (Python `str`).
    Str,
    /// A bin (Python `bytes`).
    Bin,
    /// An array (Python `list` / `tuple`).
    Array,
    /// A map (Python `dict`).
    Map,
    /// An extension type.
    Ext,
}

impl MsgpackKind {
    fn of(value: &ValueRef<'_>) -> Self {
        match value {
            ValueRef::Nil => Self::Nil,
            ValueRef::Boolean(_) => Self::Bool,
            ValueRef::Integer(_) => Self::Int,
            ValueRef::F32(_) | ValueRef::F64(_) => Self::Float,
            ValueRef::String(_) => Self::Str,
            ValueRef::Binary(_) => Self::Bin,
            ValueRef::Array(_) => Self::Array,
            ValueRef::Map(_) => Self::Map,
            ValueRef::Ext(..) => Self::Ext,
        }
    }
}

impl std::fmt::Display for MsgpackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Nil => "nil",
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Float => "float",
            Self::Str => "str",
            Self::Bin => "bin",
            Self::Array => "array",
            Self::Map => "map",
            Self::Ext => "ext",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// msgpack str header + bytes, as Python writes a str.
    fn mp_str(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value_ref(&mut out, &ValueRef::from(s)).unwrap();
        out
    }

    /// A msgpack map from already-encoded keys and values, in order.
    fn mp_map(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        assert!(entries.len() < 16);
        let mut out = vec![0x80 | entries.len() as u8];
        for (k, v) in entries {
            out.extend_from_slice(k);
            out.extend_from_slice(v);
        }
        out
    }

    // From the research note: verified against Python's msgpack.packb and
    // `redis-cli MONITOR` of a real channels_redis 4.3.0 group_send.
    const HI_CHAT_MESSAGE: &str = "82a474797065ac636861745f6d657373616765a76d657373616765a26869";
    const HI_TUTORIAL: &str = "82a474797065ac636861742e6d657373616765a76d657373616765a26869";

    #[test]
    fn group_and_channel_names() {
        let lobby = room("lobby");
        assert_eq!(group(&lobby), "chat_lobby");
        assert_eq!(
            group_channel(DEFAULT_PREFIX, &lobby),
            "asgi__group__chat_lobby"
        );
        assert_eq!(group_channel("bench", &lobby), "bench__group__chat_lobby");
    }

    #[test]
    fn room_of_channel_inverts_group_channel() {
        for name in ["lobby", "room1", "a", "_", "chat_x", &"z".repeat(94)] {
            for prefix in [DEFAULT_PREFIX, "", "bench", "asgi__group__chat_"] {
                let channel = group_channel(prefix, &room(name));
                assert_eq!(
                    room_of_channel(prefix, &channel),
                    Some(room(name)),
                    "{channel}"
                );
            }
        }
    }

    #[test]
    fn room_of_channel_rejects_other_channels() {
        for channel in [
            // a consumer's own channel
            "asgispecific.0123456789abcdef0123456789abcdef",
            // a group that is not a chat room
            "asgi__group__other_x",
            // another prefix
            "bench__group__chat_lobby",
            "asg__group__chat_lobby",
            "asgi___group__chat_lobby",
            // room names this crate refuses
            "asgi__group__chat_",
            "asgi__group__chat_a-b",
            "asgi__group__chat_a.b",
            "asgi__group__chat_é",
            &format!("asgi__group__chat_{}", "z".repeat(95)),
            // not a channel at all
            "",
            "asgi",
            "?",
        ] {
            assert_eq!(
                room_of_channel(DEFAULT_PREFIX, channel),
                None,
                "{channel:?}"
            );
        }
    }

    #[test]
    fn shard_matches_the_note() {
        // binascii.crc32 == zlib.crc32 == crc32fast::hash
        assert_eq!(crc32fast::hash(b"asgi__group__chat_lobby"), 0xdcd5_1131);
        for hosts in 1..=4 {
            assert_eq!(shard("asgi__group__chat_lobby", hosts), 0, "{hosts} hosts");
        }
        assert_eq!(shard("asgi__group__chat_room1", 1), 0);
        assert_eq!(shard("asgi__group__chat_room1", 2), 1);
        assert_eq!(shard("asgi__group__chat_room1", 4), 3);
        // The room, not the channel, would land elsewhere: the prefix counts.
        assert_eq!(shard("chat_lobby", 2), 1);
    }

    #[test]
    fn shard_uses_python_float_division() {
        // Expected values from channels_redis.utils._consistent_hash, run in
        // Python 3 (`int(bigval / (4096 / float(n)))`); the integer formula
        // `bigval * n // 4096` gives the value in the comment instead.
        let cases = [
            // crc32 & 0xFFF == 2048
            ("asgi__group__chat_r857", 2, 1),
            ("asgi__group__chat_r857", 186, 92),  // integer: 93
            ("asgi__group__chat_r857", 198, 98),  // integer: 99
            ("asgi__group__chat_r857", 372, 185), // integer: 186
            ("asgi__group__chat_r857", 1000, 500),
            ("asgi__group__chat_r857", 4096, 2048),
            // crc32 & 0xFFF == 1024
            ("asgi__group__chat_r1175", 186, 46),
            ("asgi__group__chat_r1175", 372, 92), // integer: 93
            // crc32 & 0xFFF == 3072
            ("asgi__group__chat_r3998", 300, 224), // integer: 225
            ("asgi__group__chat_r3998", 5000, 3750),
        ];
        for (channel, hosts, expected) in cases {
            assert_eq!(shard(channel, hosts), expected, "{channel} on {hosts}");
        }
    }

    #[test]
    fn shard_is_in_range() {
        for hosts in 1..=5000 {
            for channel in ["asgi__group__chat_lobby", "asgi__group__chat_room1", ""] {
                assert!(shard(channel, hosts) < hosts, "{channel} on {hosts}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one host")]
    fn shard_of_no_hosts_panics() {
        shard("asgi__group__chat_lobby", 0);
    }

    #[test]
    fn encodes_byte_identical_to_python() {
        assert_eq!(hex(&encode_chat("hi")), HI_CHAT_MESSAGE);
    }

    #[test]
    fn encodes_str8_and_non_ascii_as_python() {
        // msgpack.packb({"type": "chat_message", "message": "x" * 40})
        let long = encode_chat(&"x".repeat(40));
        let expected = format!(
            "82a474797065ac636861745f6d657373616765a76d657373616765d928{}",
            "78".repeat(40)
        );
        assert_eq!(hex(&long), expected);
        // "héllo" is 6 UTF-8 bytes: fixstr a6
        let accent = encode_chat("héllo");
        assert!(hex(&accent).ends_with("a76d657373616765a668c3a96c6c6f"));
        assert_eq!(
            hex(&encode_chat("héllo 😀")),
            "82a474797065ac636861745f6d657373616765a76d657373616765ab68c3a96c6c6f20f09f9880"
        );
        // Python's headers for 256 bytes (str16) and 70000 bytes (str32)
        let big = encode_chat(&"y".repeat(256));
        assert_eq!(&big[27..30], &[0xda, 0x01, 0x00]);
        let huge = encode_chat(&"y".repeat(70_000));
        assert_eq!(&huge[27..32], &[0xdb, 0x00, 0x01, 0x11, 0x70]);
    }

    #[test]
    fn decodes_both_spellings() {
        assert_eq!(decode_chat(&unhex(HI_CHAT_MESSAGE)).as_deref(), Ok("hi"));
        assert_eq!(decode_chat(&unhex(HI_TUTORIAL)).as_deref(), Ok("hi"));
    }

    #[test]
    fn round_trips() {
        for text in [
            "",
            "hi",
            "héllo 😀",
            &"x".repeat(40),
            &"y".repeat(70_000),
            "\0",
        ] {
            assert_eq!(decode_chat(&encode_chat(text)).as_deref(), Ok(text));
        }
    }

    #[test]
    fn ignores_extra_keys_and_their_order() {
        // {"message": "hi", "sender": "rust", "type": "chat.message"}
        let payload = mp_map(&[
            (&mp_str("message"), &mp_str("hi")),
            (&mp_str("sender"), &mp_str("rust")),
            (b"\xc4\x03raw", &[0xc0]), // a bin key with a nil value
            (&mp_str("type"), &mp_str("chat.message")),
        ]);
        assert_eq!(decode_chat(&payload).as_deref(), Ok("hi"));
    }

    #[test]
    fn the_last_duplicate_key_counts() {
        let payload = mp_map(&[
            (&mp_str("type"), &mp_str("rust.presence")),
            (&mp_str("message"), &mp_str("old")),
            (&mp_str("type"), &mp_str("chat_message")),
            (&mp_str("message"), &mp_str("new")),
        ]);
        assert_eq!(decode_chat(&payload).as_deref(), Ok("new"));
    }

    #[test]
    fn rejects_what_is_not_msgpack() {
        for payload in [
            &b"\xc1garbage"[..],
            b"\xc1",
            b"",
            // truncated: the note's payload minus its last byte
            &unhex(&HI_CHAT_MESSAGE[..HI_CHAT_MESSAGE.len() - 2]),
            // a valid payload followed by one more byte
            &unhex(&format!("{HI_CHAT_MESSAGE}00")),
            // an int key: Python's unpackb(strict_map_key=True) refuses it
            &mp_map(&[
                (&mp_str("type"), &mp_str("chat_message")),
                (&mp_str("message"), &mp_str("hi")),
                (&[0x01], &[0xc0]),
            ]),
            // a str that is not UTF-8 as the message
            &mp_map(&[
                (&mp_str("type"), &mp_str("chat_message")),
                (&mp_str("message"), &[0xa2, 0xff, 0xfe]),
            ]),
        ] {
            assert!(
                matches!(decode_chat(payload), Err(LayerDecodeError::NotMsgpack(_))),
                "{payload:02x?}: {:?}",
                decode_chat(payload)
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_map() {
        // ["chat_message", "hi"]: what rmp_serde::to_vec makes of a struct
        let array = unhex("92ac636861745f6d657373616765a26869");
        assert_eq!(
            decode_chat(&array),
            Err(LayerDecodeError::NotAMap(MsgpackKind::Array))
        );
        assert_eq!(
            decode_chat(&mp_str("hi")),
            Err(LayerDecodeError::NotAMap(MsgpackKind::Str))
        );
        assert_eq!(
            decode_chat(&[0x2a]),
            Err(LayerDecodeError::NotAMap(MsgpackKind::Int))
        );
    }

    #[test]
    fn rejects_a_missing_or_other_type() {
        let no_type = mp_map(&[(&mp_str("message"), &mp_str("hi"))]);
        assert_eq!(decode_chat(&no_type), Err(LayerDecodeError::NoType));
        // a bin key b"type" is not the str key "type"
        let bin_key = mp_map(&[(b"\xc4\x04type", &mp_str("chat_message"))]);
        assert_eq!(decode_chat(&bin_key), Err(LayerDecodeError::NoType));

        let presence = mp_map(&[
            (&mp_str("type"), &mp_str("rust.presence")),
            (&mp_str("message"), &mp_str("hi")),
        ]);
        assert_eq!(
            decode_chat(&presence),
            Err(LayerDecodeError::OtherType("rust.presence".to_owned()))
        );
        let int_type = mp_map(&[(&mp_str("type"), &[0x07])]);
        assert_eq!(
            decode_chat(&int_type),
            Err(LayerDecodeError::TypeNotAString(MsgpackKind::Int))
        );
    }

    #[test]
    fn rejects_a_missing_or_non_str_message() {
        let no_message = mp_map(&[(&mp_str("type"), &mp_str("chat.message"))]);
        assert_eq!(decode_chat(&no_message), Err(LayerDecodeError::NoMessage));

        for (value, kind) in [
            (&b"\xc4\x02hi"[..], MsgpackKind::Bin), // Python bytes
            (b"\x2a", MsgpackKind::Int),
            (b"\xd1\x01\x00", MsgpackKind::Int),
            (b"\xc0", MsgpackKind::Nil), // None
            (b"\xc3", MsgpackKind::Bool),
            (b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", MsgpackKind::Float),
            (b"\x91\xa2hi", MsgpackKind::Array),
            (b"\x81\xa1a\x01", MsgpackKind::Map),
            (b"\xd4\x01\x00", MsgpackKind::Ext),
        ] {
            let payload = mp_map(&[
                (&mp_str("type"), &mp_str("chat_message")),
                (&mp_str("message"), value),
            ]);
            assert_eq!(
                decode_chat(&payload),
                Err(LayerDecodeError::MessageNotAString(kind)),
                "{value:02x?}"
            );
        }
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let presence = mp_map(&[(&mp_str("type"), &mp_str("rust.presence"))]);
        let error = decode_chat(&presence).unwrap_err().to_string();
        assert!(error.contains("rust.presence"), "{error}");
        let bin = mp_map(&[
            (&mp_str("type"), &mp_str("chat.message")),
            (&mp_str("message"), b"\xc4\x00"),
        ]);
        let error = decode_chat(&bin).unwrap_err().to_string();
        assert!(error.contains("bin"), "{error}");
    }
}
