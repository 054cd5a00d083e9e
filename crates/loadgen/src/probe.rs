//! What a load-generator message carries inside the tutorial's `message`
//! string: `<sender>:<seq>:<intended_us>:` then padding up to the payload
//! size. The wire format stays the tutorial's `{"message": "..."}`, so any
//! server that speaks the protocol can be driven.

use std::fmt::Write;

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
        let mut fields = text.splitn(4, ':');
        let sender = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let intended_us = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(Self {
            sender,
            seq,
            intended_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
