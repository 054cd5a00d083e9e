//! Close codes and reasons the servers send, in one place.
//!
//! Every way a server ends a WebSocket is one of these, so both servers close
//! for the same reasons with the same code and text, and a client (or the load
//! generator) can count them.

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// Why the server closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The server is shutting down (1001).
    ServerShutdown,
    /// The client sent nothing for longer than the idle timeout (1001).
    IdleTimeout,
    /// The client's outbound queue was full: it did not read fast enough (1013).
    SlowConsumer,
    /// A frame or message was larger than the limit (1009).
    MessageTooBig,
    /// A text message was not valid UTF-8 (1007).
    InvalidUtf8,
    /// The client broke the WebSocket protocol (1002).
    ProtocolError,
    /// The server lost its Redis subscription for the client's room, so the
    /// client may have missed messages: reconnect (1012, service restart).
    LayerLost,
}

impl CloseReason {
    /// The close code sent on the wire.
    pub fn code(self) -> CloseCode {
        match self {
            Self::ServerShutdown | Self::IdleTimeout => CloseCode::Away,
            Self::SlowConsumer => CloseCode::Again,
            Self::MessageTooBig => CloseCode::Size,
            Self::InvalidUtf8 => CloseCode::Invalid,
            Self::ProtocolError => CloseCode::Protocol,
            Self::LayerLost => CloseCode::Restart,
        }
    }

    /// The human-readable reason sent with the code.
    pub fn text(self) -> &'static str {
        match self {
            Self::ServerShutdown => "server shutting down",
            Self::IdleTimeout => "idle timeout",
            Self::SlowConsumer => "too slow: outbound queue full",
            Self::MessageTooBig => "message too big",
            Self::InvalidUtf8 => "invalid UTF-8 in text message",
            Self::ProtocolError => "WebSocket protocol error",
            Self::LayerLost => {
                "lost the room's Redis subscription: messages may be missing, reconnect"
            }
        }
    }

    /// Whether the frames already queued for the client go out before the
    /// close frame. Yes, except for a slow consumer, which is cut off at once
    /// (its queue is what it could not keep up with).
    pub fn sends_queued_frames_first(self) -> bool {
        self != Self::SlowConsumer
    }

    /// The close frame for this reason.
    pub fn frame(self) -> CloseFrame {
        CloseFrame {
            code: self.code(),
            reason: self.text().into(),
        }
    }

    /// The reason to close with after a read error from tungstenite, or `None`
    /// when the error means the peer is already gone (nothing left to send).
    pub fn for_read_error(error: &tungstenite::Error) -> Option<Self> {
        use tungstenite::Error;
        match error {
            Error::Capacity(_) => Some(Self::MessageTooBig),
            Error::Utf8(_) => Some(Self::InvalidUtf8),
            Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
                None
            }
            Error::Protocol(_) => Some(Self::ProtocolError),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc_6455() {
        assert_eq!(u16::from(CloseReason::ServerShutdown.code()), 1001);
        assert_eq!(u16::from(CloseReason::IdleTimeout.code()), 1001);
        assert_eq!(u16::from(CloseReason::SlowConsumer.code()), 1013);
        assert_eq!(u16::from(CloseReason::MessageTooBig.code()), 1009);
        assert_eq!(u16::from(CloseReason::InvalidUtf8.code()), 1007);
        assert_eq!(u16::from(CloseReason::ProtocolError.code()), 1002);
        assert_eq!(u16::from(CloseReason::LayerLost.code()), 1012);
        for reason in [CloseReason::LayerLost, CloseReason::SlowConsumer] {
            assert!(
                reason.text().len() <= 123,
                "a close reason fits a control frame"
            );
        }
    }
}
