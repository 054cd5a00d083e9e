//! The JSON frames, in both directions.
//!
//! Client to server: a text frame holding a JSON object with a string field
//! `message` (other fields are ignored). Server to client: `{"message": text}`
//! for every chat message, `{"error": what}` for bad input. These shapes are
//! the Django Channels tutorial's, so its page and ours are interchangeable.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tungstenite::Utf8Bytes;

/// Bad input from a client: answered with `{"error": ...}`, the connection stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadInput {
    /// The text is not JSON.
    #[error("invalid JSON")]
    InvalidJson,
    /// The JSON is not an object.
    #[error("expected a JSON object")]
    NotAnObject,
    /// The object has no `message` field.
    #[error("missing field \"message\"")]
    MissingMessage,
    /// The `message` field is not a string.
    #[error("field \"message\" must be a string")]
    MessageNotString,
    /// A binary frame: the chat speaks text.
    #[error("binary frames are not supported; send text")]
    BinaryFrame,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    /// Raw, so that `null` counts as present (and not a string), not missing.
    #[serde(borrow, default, deserialize_with = "present")]
    message: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Decodes a client text frame into the chat message it carries.
pub fn decode_client_text(text: &str) -> Result<String, BadInput> {
    // serde would also read a struct from a JSON array; only objects count.
    let json = text.trim_start_matches([' ', '\t', '\n', '\r']);
    if !json.starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(json) {
            Ok(_) => BadInput::NotAnObject,
            Err(_) => BadInput::InvalidJson,
        });
    }
    let incoming: Incoming<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            BadInput::NotAnObject
        } else {
            BadInput::InvalidJson
        }
    })?;
    let raw = incoming.message.ok_or(BadInput::MissingMessage)?;
    serde_json::from_str::<String>(raw.get()).map_err(|_| BadInput::MessageNotString)
}

#[derive(Serialize)]
struct Outgoing<'a> {
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorReply<'a> {
    error: &'a str,
}

/// Encodes a chat message as the frame every room member receives.
///
/// Encoded once per message and shared (cheap clones) by every member's outbox.
pub fn encode_chat(message: &str) -> Utf8Bytes {
    to_frame(&Outgoing { message })
}

/// Encodes an error reply (bad input, or a message the server refused).
pub fn encode_error(error: &dyn std::fmt::Display) -> Utf8Bytes {
    to_frame(&ErrorReply {
        error: &error.to_string(),
    })
}

/// A server frame as the client sees it: exactly one of the two fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ServerFrame {
    /// A chat message of the room.
    Message {
        /// The text.
        message: String,
    },
    /// The reply to bad input.
    Error {
        /// What was wrong.
        error: String,
    },
}

impl ServerFrame {
    /// Parses a server text frame (used by clients and tests).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn to_frame<T: Serialize>(value: &T) -> Utf8Bytes {
    // Serializing a struct of string fields cannot fail.
    serde_json::to_string(value)
        .expect("a struct of strings always serializes")
        .into()
}

/// Encodes a client frame `{"message": text}` (used by clients and tests).
pub fn encode_client(message: &str) -> String {
    serde_json::to_string(&Outgoing { message }).expect("a struct of strings always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_message_field_and_ignores_others() {
        assert_eq!(decode_client_text(r#"{"message":"hi"}"#), Ok("hi".into()));
        assert_eq!(
            decode_client_text(r#"{"x":[1,{"y":2}],"message":"h\u00e9 \"q\""}"#),
            Ok("hé \"q\"".into())
        );
    }

    #[test]
    fn classifies_bad_input() {
        assert_eq!(decode_client_text("{"), Err(BadInput::InvalidJson));
        assert_eq!(decode_client_text("hello"), Err(BadInput::InvalidJson));
        assert_eq!(decode_client_text("[1]"), Err(BadInput::NotAnObject));
        assert_eq!(decode_client_text("\"m\""), Err(BadInput::NotAnObject));
        assert_eq!(decode_client_text("{}"), Err(BadInput::MissingMessage));
        assert_eq!(
            decode_client_text(r#"{"message":null}"#),
            Err(BadInput::MessageNotString)
        );
        assert_eq!(
            decode_client_text(r#"{"message":1}"#),
            Err(BadInput::MessageNotString)
        );
    }

    #[test]
    fn encodes_round_trip() {
        let text = "ünï \"code\" \n 🎉";
        let frame = encode_chat(text);
        assert_eq!(
            ServerFrame::parse(&frame).unwrap(),
            ServerFrame::Message {
                message: text.into()
            }
        );
        assert_eq!(decode_client_text(&encode_client(text)), Ok(text.into()));
        assert_eq!(
            ServerFrame::parse(&encode_error(&BadInput::BinaryFrame)).unwrap(),
            ServerFrame::Error {
                error: BadInput::BinaryFrame.to_string()
            }
        );
    }
}
