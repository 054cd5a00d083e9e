//! What a load-generator message carries inside the tutorial's `message`
//! string: `<sender>:<seq>:<intended_us>:` then padding up to the payload
//! size. The wire format stays the tutorial's `{"message": "..."}`, so any
//! server that speaks the protocol can be driven. [`Received::classify`]
//! tells a receiver what a server frame is: one of these, an error reply, or
//! something else.

use std::borrow::Cow;
use std::fmt::Write;

use chat_protocol::message::ServerFrame;
use serde::Deserialize;

/// One message's identity and intended send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The sender's id (unique in the run).
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u32,
    /// When the schedule meant it to be sent, in µs on the run's clock.
    pub intended_us: u64,
}

impl Probe {
    /// The message text: the fields, then `x` up to `payload_bytes` (never
    /// shorter than the fields themselves).
    pub fn encode(&self, payload_bytes: usize) -> String {
        let mut text = String::with_capacity(payload_bytes.max(32));
        let _ = write!(text, "{}:{}:{}:", self.sender, self.seq, self.intended_us);
        while text.len() < payload_bytes {
            text.push('x');
        }
        text
    }

    /// Parses a message text made by [`Probe::encode`]; `None` for anything
    /// else (another client's chat, say).
    pub fn decode(text: &str) -> Option<Self> {
        // Each field ends at a `:`; a byte scan of these few digits is
        // cheaper than a general `str` split.
        let mut rest = text;
        let mut field = || {
            let end = rest.bytes().position(|b| b == b':')?;
            let field = &rest[..end];
            rest = &rest[end + 1..];
            Some(field)
        };
        let sender = field()?.parse().ok()?;
        let seq = field()?.parse().ok()?;
        let intended_us = field()?.parse().ok()?;
        Some(Self {
            sender,
            seq,
            intended_us,
        })
    }
}

/// A server text frame, as the load generator counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A chat message carrying one of our probes.
    Probe(Probe),
    /// An `{"error": ...}` reply.
    Error,
    /// Anything else: another client's chat, or not a server frame at all.
    Foreign,
}

/// The common frame, `{"message": "<text>"}`, read in place. The protocol's [`ServerFrame`] is an
/// untagged enum, which serde reads by buffering the whole object first;
/// per frame, that was a tenth of the load generator's CPU.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chat<'a> {
    /// The text: borrowed from the frame unless it has escapes.
    #[serde(borrow)]
    message: Cow<'a, str>,
}

impl Received {
    /// Classifies a server text frame exactly as [`ServerFrame::parse`]
    /// would: whatever the quick read of `{"message": ...}` does not accept
    /// goes through `ServerFrame::parse`.
    pub fn classify(text: &str) -> Self {
        match Self::read_chat(text) {
            Some(chat) => Self::of_chat(&chat.message),
            None => Self::classify_slowly(text),
        }
    }

    /// The quick read. Objects only: serde would also read a struct from a
    /// JSON array, which `ServerFrame` refuses.
    fn read_chat(text: &str) -> Option<Chat<'_>> {
        let json = text.trim_start_matches([' ', '\t', '\n', '\r']);
        if !json.starts_with('{') {
            return None;
        }
        serde_json::from_str(json).ok()
    }

    /// Classifies through [`ServerFrame::parse`] alone.
    fn classify_slowly(text: &str) -> Self {
        match ServerFrame::parse(text) {
            Ok(ServerFrame::Message { message }) => Self::of_chat(&message),
            Ok(ServerFrame::Error { .. }) => Self::Error,
            Err(_) => Self::Foreign,
        }
    }

    fn of_chat(message: &str) -> Self {
        Probe::decode(message).map_or(Self::Foreign, Self::Probe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_protocol::message::{encode_chat, encode_error};

    #[test]
    fn round_trips_and_pads() {
        let probe = Probe {
            sender: 7,
            seq: 42,
            intended_us: 1_234_567,
        };
        let text = probe.encode(64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("7:42:1234567:x"));
        assert_eq!(Probe::decode(&text), Some(probe));
        assert_eq!(Probe::decode(&probe.encode(0)), Some(probe));
        assert_eq!(Probe::decode("hello"), None);
        assert_eq!(Probe::decode("1:2:x:"), None);
        assert_eq!(
            Probe::decode("1:2:3"),
            None,
            "the third field ends with `:`"
        );
        assert_eq!(Probe::decode(":1:2:3:"), None);
        assert_eq!(Probe::decode("1:-2:3:"), None);
        assert_eq!(Probe::decode("4294967296:2:3:"), None, "past u32");
        assert_eq!(
            Probe::decode("1:2:3::é:"),
            Some(Probe {
                sender: 1,
                seq: 2,
                intended_us: 3
            })
        );
    }

    /// Every input the quick read accepts, `ServerFrame::parse` accepts as
    /// the same message; so both classify every input alike.
    #[test]
    fn the_quick_read_classifies_as_the_protocol_does() {
        let probe = Probe {
            sender: 3,
            seq: 9,
            intended_us: 77,
        };
        let chat = |text: &str| encode_chat(text).to_string();
        let inputs = [
            // Messages: ours (escaped, spaced, with an escaped key), then
            // foreign ones.
            chat(&probe.encode(64)),
            chat(&probe.encode(0)),
            r#"{"message":"3:9:77:\"q\" \u00e9 \n"}"#.to_owned(),
            r#"{"message":"3\u003a9:77:"}"#.to_owned(),
            r#" { "message" : "3:9:77:xx" } "#.to_owned(),
            r#"{"messag\u0065":"3:9:77:"}"#.to_owned(),
            "\r\n\t{\"message\":\"3:9:77:\"}\n".to_owned(),
            chat("hello"),
            chat("ünï \"code\" \n 🎉"),
            chat(""),
            // Errors.
            encode_error(&"bad input").to_string(),
            r#"{"error":"3:9:77:"}"#.to_owned(),
            // Neither, or not one of the two shapes.
            r#"["3:9:77:"]"#.to_owned(),
            r#"{"error":"e","message":"3:9:77:"}"#.to_owned(),
            r#"{"message":"3:9:77:","error":"e"}"#.to_owned(),
            r#"{"message":"3:9:77:","x":1}"#.to_owned(),
            r#"{"message":"a","message":"3:9:77:"}"#.to_owned(),
            r#"{"message":null}"#.to_owned(),
            r#"{"message":1}"#.to_owned(),
            r#"{"message":["3:9:77:"]}"#.to_owned(),
            r#"{"message":"3:9:77:"} x"#.to_owned(),
            r#"{"message":"3:9:77:"#.to_owned(),
            r#"["3:9:77:","e"]"#.to_owned(),
            r#"{"message":"3:9:77:\ud800"}"#.to_owned(),
            "{\"message\":\"3:9:77:\u{1}\"}".to_owned(),
            r#"{"MESSAGE":"3:9:77:"}"#.to_owned(),
            "{}".to_owned(),
            "[]".to_owned(),
            "\"3:9:77:\"".to_owned(),
            "3:9:77:".to_owned(),
            String::new(),
        ];
        let mut seen = [0; 3];
        for text in &inputs {
            if let Some(quick) = Received::read_chat(text) {
                assert_eq!(
                    ServerFrame::parse(text).ok(),
                    Some(ServerFrame::Message {
                        message: quick.message.to_string()
                    }),
                    "{text}"
                );
            }
            let received = Received::classify(text);
            assert_eq!(received, Received::classify_slowly(text), "{text}");
            seen[match received {
                Received::Probe(p) => {
                    assert_eq!(p, probe, "{text}");
                    0
                }
                Received::Error => 1,
                Received::Foreign => 2,
            }] += 1;
        }
        assert_eq!(seen, [7, 2, 22], "each kind is exercised");
    }
}
