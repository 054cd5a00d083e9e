//! What a member hears, frame by frame: its room's messages counted in a
//! [`ReceiverTally`] (exactly once, per-sender order, the room's order
//! hash), anything else counted as junk that reached it, a close or a
//! broken connection said in words for the verdict.

use chat_protocol::tungstenite::{Error as WsError, Message};

use crate::probe::Received;
use crate::soak::dial::describe_close;
use crate::soak::member::{BURST_ID_BASE, Member, WINDOW};
use crate::soak::state::bump;
use crate::tally::ReceiverTally;

/// A member's accounting of what it receives.
pub struct Heard<'a> {
    member: &'a Member,
    tally: ReceiverTally,
    junk_noted: bool,
}

impl<'a> Heard<'a> {
    /// Nothing heard yet.
    pub fn new(member: &'a Member) -> Self {
        Self {
            member,
            tally: ReceiverTally::default(),
            junk_noted: false,
        }
    }

    /// What was heard.
    pub fn into_tally(self) -> ReceiverTally {
        self.tally
    }

    /// Whether `sender`'s messages belong in this member's room.
    fn accepts(&self, sender: u32) -> bool {
        let room = &self.member.rooms[self.member.room];
        if room.slow {
            sender >= BURST_ID_BASE
        } else {
            room.senders.iter().any(|s| s.id == sender)
        }
    }

    /// Accounts for one frame (`None`: the stream ended); says why the
    /// connection ended, if it did.
    pub fn take(&mut self, frame: Option<Result<Message, WsError>>) -> Option<String> {
        let shared = &self.member.shared;
        match frame {
            Some(Ok(Message::Text(text))) => {
                match Received::classify(&text) {
                    Received::Probe(probe) if self.accepts(probe.sender) => {
                        let before = self.tally.measured;
                        let now = shared.now_us();
                        self.tally
                            .on_probe(probe, now, WINDOW, &self.member.latency);
                        if self.tally.measured > before {
                            bump(&shared.counts.delivered);
                            bump(&shared.counts.member_delivered);
                        }
                    }
                    Received::Error => {
                        self.tally.error_replies += 1;
                        self.junk(&text);
                    }
                    Received::Probe(_) | Received::Foreign => {
                        self.tally.foreign += 1;
                        self.junk(&text);
                    }
                }
                None
            }
            Some(Ok(Message::Binary(data))) => {
                self.tally.foreign += 1;
                self.junk(&format!("a binary frame of {} bytes", data.len()));
                None
            }
            Some(Ok(Message::Close(frame))) => Some(format!(
                "closed by the server with {}",
                describe_close(frame.as_ref())
            )),
            Some(Ok(_)) => None,
            Some(Err(error)) => Some(format!("its connection broke: {error}")),
            None => Some("its connection ended without a close frame".to_owned()),
        }
    }

    /// Notes the first junk frame of this member.
    fn junk(&mut self, what: &str) {
        if std::mem::replace(&mut self.junk_noted, true) {
            return;
        }
        let room = &self.member.rooms[self.member.room];
        let shown: String = what.chars().take(120).collect();
        self.member.shared.note(format!(
            "JUNK: member {} of room {} received a frame that is not one of its room's messages: {shown}",
            self.member.member, room.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_protocol::message::{encode_chat, encode_error};
    use chat_protocol::tungstenite::protocol::CloseFrame;
    use chat_protocol::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;
    use crate::client::Target;
    use crate::probe::Probe;
    use crate::soak::SoakConfig;
    use crate::soak::member::plan;
    use crate::soak::state::{Open, Shared, get};
    use crate::tally::SharedHistogram;

    fn chat(sender: u32, seq: u32) -> Option<Result<Message, WsError>> {
        let probe = Probe {
            sender,
            seq,
            intended_us: 0,
        };
        Some(Ok(Message::Text(encode_chat(&probe.encode(16)))))
    }

    #[test]
    fn only_its_rooms_messages_count_the_rest_is_junk() {
        let target = Target::at(([127, 0, 0, 1], 1).into());
        let shared = Shared::new(target, SoakConfig::default(), "t".into());
        let rooms = Arc::new(plan(&shared.config, "t").expect("a plan"));
        // Rooms of 2, 5, 20, 50, two senders each: room 1's are 2 and 3.
        let ids: Vec<u32> = rooms[1].senders.iter().map(|s| s.id).collect();
        assert_eq!(ids, [2, 3]);
        assert!(rooms[4].slow && rooms[4].senders.is_empty());
        let member = Member {
            shared: Arc::clone(&shared),
            rooms,
            room: 1,
            member: 3,
            start_us: 0,
            latency: SharedHistogram::default(),
            open: Open::new(&shared),
        };
        let mut heard = Heard::new(&member);
        for frame in [chat(2, 0), chat(3, 0), chat(2, 1), chat(2, 1)] {
            assert_eq!(heard.take(frame), None);
        }
        // Another room's sender, a burst, an error reply, a stranger's
        // chat, a binary frame: junk, and the connection goes on.
        for frame in [
            chat(0, 0),
            chat(BURST_ID_BASE, 0),
            Some(Ok(Message::Text(encode_error(&"bad")))),
            Some(Ok(Message::Text(encode_chat("hello")))),
            Some(Ok(Message::Binary(b"x".to_vec().into()))),
            Some(Ok(Message::Pong(b"soak".to_vec().into()))),
        ] {
            assert_eq!(heard.take(frame), None);
        }
        let close = CloseFrame {
            code: CloseCode::Again,
            reason: "too slow".into(),
        };
        let ended = heard.take(Some(Ok(Message::Close(Some(close)))));
        assert!(ended.is_some_and(|why| why.contains("1013")));
        assert!(heard.take(None).is_some());
        let tally = heard.into_tally();
        assert_eq!((tally.measured, tally.duplicated), (3, 1));
        assert_eq!((tally.error_replies, tally.foreign), (1, 4));
        assert_eq!(get(&shared.counts.member_delivered), 3);
        let (notes, _) = shared.notes();
        assert_eq!(notes.len(), 1, "the first junk frame only: {notes:?}");
    }
}
