//! What a connection does with each frame its client sends: the same logic
//! in both servers, whose reader loops only add the waiting.
//!
//! A connection has a reader and a writer. The reader handles each frame with
//! [`on_message`]: a chat message is to be posted to the room (each server
//! posts it the way its history settings say: see their `history` modules);
//! anything that needs an answer to this client becomes a [`Control`] request
//! for the writer, which owns every write.

use std::time::Duration;

use tungstenite::protocol::CloseFrame;
use tungstenite::{Bytes, Message, Utf8Bytes};

use crate::close::CloseReason;
use crate::message::{self, BadInput};

/// What a reader asks its writer to send.
#[derive(Debug)]
pub enum Control {
    /// Answer a ping.
    Pong(Bytes),
    /// Ping the client: it has been silent for half the idle timeout.
    Ping,
    /// A frame for this client only (an error reply).
    Reply(Utf8Bytes),
    /// Close the connection with this reason.
    Close(CloseReason),
    /// The client sent a close frame: echo it and finish.
    PeerClosed(Option<CloseFrame>),
}

/// What a reader does with one message from its client.
#[derive(Debug)]
pub enum Incoming {
    /// A chat message, decoded: post it to the room.
    Chat(String),
    /// Ask the writer to send this.
    Answer(Control),
}

/// Handles one message from the client: decodes a chat message, or says what
/// the writer must send, if anything.
pub fn on_message(message: Message) -> Option<Incoming> {
    let answer = match message {
        Message::Text(text) => match message::decode_client_text(&text) {
            Ok(chat) => return Some(Incoming::Chat(chat)),
            Err(bad) => Control::Reply(message::encode_error(&bad)),
        },
        Message::Binary(_) => Control::Reply(message::encode_error(&BadInput::BinaryFrame)),
        Message::Ping(data) => Control::Pong(data),
        Message::Pong(_) | Message::Frame(_) => return None,
        Message::Close(frame) => Control::PeerClosed(frame),
    };
    Some(Incoming::Answer(answer))
}

/// Handles a read error: logs it (quietly when it is an expected way for a
/// client to leave or misbehave) and returns the reason to close with, or
/// `None` when the peer is already gone.
pub fn on_read_error(error: &tungstenite::Error) -> Option<CloseReason> {
    use tungstenite::Error;
    match error {
        Error::ConnectionClosed | Error::AlreadyClosed | Error::Io(_) => {
            tracing::debug!(%error, "connection ended");
        }
        Error::Protocol(_) | Error::Capacity(_) | Error::Utf8(_) => {
            tracing::debug!(%error, "client broke the protocol");
        }
        _ => tracing::warn!(%error, "read failed"),
    }
    CloseReason::for_read_error(error)
}

/// Keeps a silent client from being closed while it is alive, and closes it
/// when it is not.
///
/// The reader waits for a frame at most [`Silence::period`] (half the idle
/// timeout) at a time. After one silent period the server pings; a live
/// client (a browser tab that only reads, say) answers with a pong, which
/// counts as a frame. After two silent periods, the idle timeout, the server
/// closes with 1001; after three it stops waiting for the answer.
#[derive(Debug, Default)]
pub struct Silence {
    periods: u8,
}

impl Silence {
    /// How long the reader waits for a frame at a time.
    pub fn period(idle_timeout: Duration) -> Duration {
        (idle_timeout / 2).max(Duration::from_millis(1))
    }

    /// The client sent a frame.
    pub fn heard(&mut self) {
        self.periods = 0;
    }

    /// A period passed without a frame: what to ask the writer for, or
    /// `None` to stop reading.
    pub fn timed_out(&mut self) -> Option<Control> {
        self.periods = self.periods.saturating_add(1);
        match self.periods {
            1 => Some(Control::Ping),
            2 => Some(Control::Close(CloseReason::IdleTimeout)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_pings_then_closes_then_gives_up() {
        let mut silence = Silence::default();
        assert!(matches!(silence.timed_out(), Some(Control::Ping)));
        silence.heard();
        assert!(matches!(silence.timed_out(), Some(Control::Ping)));
        assert!(matches!(
            silence.timed_out(),
            Some(Control::Close(CloseReason::IdleTimeout))
        ));
        assert!(silence.timed_out().is_none());
        assert_eq!(
            Silence::period(Duration::from_secs(300)),
            Duration::from_secs(150)
        );
    }
}
