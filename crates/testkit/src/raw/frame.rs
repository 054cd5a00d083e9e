//! [`RawFrame`]: a WebSocket frame encoded field by field, so that a test
//! can put on the wire what no WebSocket library would (no mask, RSV bits,
//! reserved opcodes, fragmented or oversized control frames, any close
//! payload), and decode what the server sends back.

use chat_protocol::message;

use crate::abbreviate;

/// Opcodes (RFC 6455 section 5.2); 0x3-0x7 and 0xB-0xF are reserved.
pub mod opcode {
    /// A continuation fragment.
    pub const CONTINUATION: u8 = 0x0;
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;
}

/// The RSV1 bit, where [`RawFrame::rsv`] keeps it (the first header byte).
pub const RSV1: u8 = 0x40;
/// The RSV2 bit.
pub const RSV2: u8 = 0x20;
/// The RSV3 bit.
pub const RSV3: u8 = 0x10;

/// The masking key of client frames (any key will do; a fixed one keeps
/// failures reproducible).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame as it is on the wire, valid or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The FIN bit: the last fragment of a message.
    pub fin: bool,
    /// The RSV bits, as [`RSV1`] | [`RSV2`] | [`RSV3`] (others are ignored).
    pub rsv: u8,
    /// The opcode (4 bits; see [`opcode`]).
    pub opcode: u8,
    /// The masking key; `None` for an unmasked frame.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// A final, masked frame with no RSV bit: what a client sends.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some(MASK),
            payload: payload.into(),
        }
    }

    /// A text frame holding `payload` (UTF-8 or not).
    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::TEXT, payload)
    }

    /// A text frame holding the chat message `{"message": text}`.
    pub fn chat(text: &str) -> Self {
        Self::text(message::encode_client(text))
    }

    /// A continuation fragment.
    pub fn continuation(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::CONTINUATION, payload)
    }

    /// A ping.
    pub fn ping(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::PING, payload)
    }

    /// A close frame with `code` and `reason` (UTF-8 or not).
    pub fn close(code: u16, reason: &[u8]) -> Self {
        Self::new(opcode::CLOSE, [&code.to_be_bytes()[..], reason].concat())
    }

    /// This frame with the FIN bit set to `fin`.
    pub fn fin(self, fin: bool) -> Self {
        Self { fin, ..self }
    }

    /// This frame with the RSV bits `rsv`.
    pub fn rsv(self, rsv: u8) -> Self {
        Self { rsv, ..self }
    }

    /// This frame without a mask, as no client may send it.
    pub fn unmasked(self) -> Self {
        Self { mask: None, ..self }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![(u8::from(self.fin) << 7) | (self.rsv & 0x70) | (self.opcode & 0x0f)];
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload.len();
        match len {
            0..=125 => bytes.push(mask_bit | len as u8),
            126..=0xffff => {
                bytes.push(mask_bit | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        let key = self.mask.unwrap_or_default();
        if self.mask.is_some() {
            bytes.extend_from_slice(&key);
        }
        bytes.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        bytes
    }

    /// Decodes the frame at the start of `buf`, if it is all there; returns
    /// it and its length on the wire.
    pub(super) fn decode(buf: &[u8]) -> Option<(Self, usize)> {
        let [first, second, ..] = *buf else {
            return None;
        };
        let (len, mut at) = match second & 0x7f {
            126 => (
                u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
                4,
            ),
            127 => (
                u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
                10,
            ),
            len => (usize::from(len), 2),
        };
        let mask: Option<[u8; 4]> = if second & 0x80 != 0 {
            at += 4;
            Some(buf.get(at - 4..at)?.try_into().ok()?)
        } else {
            None
        };
        let key = mask.unwrap_or_default();
        let payload = buf.get(at..at.checked_add(len)?)?;
        let frame = Self {
            fin: first & 0x80 != 0,
            rsv: first & 0x70,
            opcode: first & 0x0f,
            mask,
            payload: payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect(),
        };
        Some((frame, at + len))
    }

    /// For a close frame: its code, or `None` if the payload is empty.
    pub fn close_code(&self) -> Option<u16> {
        let code = self.payload.get(..2)?;
        Some(u16::from_be_bytes([code[0], code[1]]))
    }

    /// For a close frame: its reason, lossily decoded.
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }

    /// The frame, described for a failure message.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.payload);
        format!(
            "a frame (opcode {:#x}, fin {}, rsv {:#x}, masked {}) holding {}",
            self.opcode,
            self.fin,
            self.rsv,
            self.mask.is_some(),
            abbreviate(&text)
        )
    }
}
