//! Server frames as the bytes that go on the wire, formatted once.
//!
//! A server's frames are never masked (RFC 6455 5.1), so a chat message's
//! frame is the same bytes for every member of its room. [`WireFrame::chat`]
//! formats it once, header and payload, with tungstenite's own frame types,
//! and every member's outbox shares it (a clone is a reference count). The
//! writers then write these bytes as they are, gathering a member's queued
//! frames into one vectored `write` ([`Gather`]), instead of copying each
//! frame into a per-connection buffer through tungstenite's `Sink` one
//! message at a time. tungstenite still does the handshake and reads, checks
//! and answers every client frame; only the writing of frames it has
//! formatted moves out of it.

use std::io::IoSlice;

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::{Bytes, Utf8Bytes};

use crate::message;

/// One whole server frame, header and payload, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame(Bytes);

impl WireFrame {
    /// The frame of a chat message, `{"message": text}`, as every member of
    /// the room receives it.
    pub fn chat(text: &str) -> Self {
        Self::text(message::encode_chat(text))
    }

    /// A final text frame carrying `payload`.
    pub fn text(payload: Utf8Bytes) -> Self {
        Self::format(Frame::message(payload, OpCode::Data(Data::Text), true))
    }

    /// A pong answering a ping with `data`.
    pub fn pong(data: Bytes) -> Self {
        Self::format(Frame::pong(data))
    }

    /// A ping with no payload.
    pub fn ping() -> Self {
        Self::format(Frame::ping(Bytes::new()))
    }

    /// A close frame: with a code and reason, or empty.
    pub fn close(frame: Option<CloseFrame>) -> Self {
        Self::format(Frame::close(frame))
    }

    fn format(frame: Frame) -> Self {
        let mut bytes = Vec::with_capacity(frame.len());
        frame
            .format(&mut bytes)
            .expect("formatting into a Vec cannot fail");
        Self(Bytes::from(bytes))
    }

    /// The bytes to write.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its payload: the bytes after its header (a server frame is never
    /// masked).
    pub fn payload(&self) -> &[u8] {
        let header = match self.0.get(1).map(|b| b & 0x7f) {
            Some(126) => 4,
            Some(127) => 10,
            Some(_) => 2,
            None => self.0.len(),
        };
        &self.0[header.min(self.0.len())..]
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no bytes (never, for a formatted frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is left of it after `written` bytes went out (a partial write).
    pub fn rest(&self, written: usize) -> Self {
        Self(self.0.slice(written..))
    }
}

/// Frames in a row, formatted once into one buffer: the frames of the chat
/// messages one broadcast carries, which every member receives together.
///
/// A room that is sent several messages at once (a reader that finds more
/// than one already arrived) broadcasts them as one `WireFrames`, so that a
/// member's socket takes them all in one `write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrames {
    bytes: Bytes,
    /// Where each frame ends in `bytes`.
    ends: Vec<usize>,
}

impl WireFrames {
    /// The frames of chat messages `texts`, in order.
    pub fn chats<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for text in texts {
            let frame = Frame::message(message::encode_chat(text), OpCode::Data(Data::Text), true);
            frame
                .format(&mut bytes)
                .expect("formatting into a Vec cannot fail");
            ends.push(bytes.len());
        }
        Self {
            bytes: Bytes::from(bytes),
            ends,
        }
    }

    /// One frame alone.
    pub fn one(frame: WireFrame) -> Self {
        Self {
            ends: vec![frame.len()],
            bytes: frame.0,
        }
    }

    /// Every frame's bytes, in order.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes of all the frames.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there is no frame.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// How many frames.
    pub fn count(&self) -> usize {
        self.ends.len()
    }

    /// The frames, each alone (sharing this buffer).
    pub fn frames(&self) -> impl Iterator<Item = WireFrame> + '_ {
        self.rest(0)
    }

    /// What is left after `written` bytes went out: the first frame not
    /// written whole (its unwritten part), then the frames after it.
    pub fn rest(&self, written: usize) -> impl Iterator<Item = WireFrame> + '_ {
        let mut start = 0;
        self.ends.iter().filter_map(move |&end| {
            let from = start.max(written);
            start = end;
            (from < end).then(|| WireFrame(self.bytes.slice(from..end)))
        })
    }
}

/// A batch of frames for one vectored write, and how much of it went out.
///
/// A writer pushes the frames it takes from its queue (up to its batch
/// limits), then writes [`Gather::slices`] and reports each write with
/// [`Gather::advance`] until [`Gather::is_done`].
#[derive(Debug, Default)]
pub struct Gather {
    frames: Vec<WireFrame>,
    /// Bytes of all frames.
    bytes: usize,
    /// Frames already written whole.
    done_frames: usize,
    /// Bytes written of the first frame not yet written whole.
    done_in_frame: usize,
}

/// At most this many slices go into one vectored write (the rest follows in
/// the next write): the default `--max-batch-frames`, and the slices sit in
/// an array on the writer's stack (1 KiB), not in an allocation per write.
const MAX_SLICES: usize = 64;

impl Gather {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a frame to the batch.
    pub fn push(&mut self, frame: WireFrame) {
        self.bytes += frame.len();
        self.frames.push(frame);
    }

    /// Frames in the batch.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Bytes of the batch's frames, written or not.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether every byte of the batch has been written (or it is empty).
    pub fn is_done(&self) -> bool {
        self.done_frames == self.frames.len()
    }

    /// Calls `write` with the bytes still to write, as slices for
    /// `write_vectored` (at most [`MAX_SLICES`] of them), and returns what it
    /// returns.
    pub fn with_slices<R>(&self, write: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        for (slot, (i, frame)) in slices
            .iter_mut()
            .zip(self.frames[self.done_frames..].iter().enumerate())
        {
            let skip = if i == 0 { self.done_in_frame } else { 0 };
            *slot = IoSlice::new(&frame.as_bytes()[skip..]);
            count += 1;
        }
        write(&slices[..count])
    }

    /// Records that a write took `written` more bytes.
    pub fn advance(&mut self, mut written: usize) {
        while written > 0 && !self.is_done() {
            let left = self.frames[self.done_frames].len() - self.done_in_frame;
            if written >= left {
                written -= left;
                self.done_frames += 1;
                self.done_in_frame = 0;
            } else {
                self.done_in_frame += written;
                written = 0;
            }
        }
    }

    /// Empties the batch for the next one, keeping its allocation.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.done_frames = 0;
        self.done_in_frame = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Reads `bytes` back as tungstenite reads a frame.
    fn parse(bytes: &[u8]) -> Frame {
        use tungstenite::protocol::frame::FrameHeader;
        let mut cursor = Cursor::new(bytes);
        let (header, length) = FrameHeader::parse(&mut cursor)
            .expect("a valid header")
            .expect("a whole header");
        let start = cursor.position() as usize;
        assert_eq!(
            bytes.len() - start,
            length as usize,
            "nothing but the frame"
        );
        Frame::from_payload(header, Bytes::copy_from_slice(&bytes[start..]))
    }

    #[test]
    fn a_chat_frame_is_the_servers_unmasked_text_frame() {
        let frame = parse(WireFrame::chat("héllo").as_bytes());
        assert!(frame.header().is_final);
        assert_eq!(frame.header().opcode, OpCode::Data(Data::Text));
        assert!(frame.header().mask.is_none(), "servers never mask");
        assert_eq!(frame.payload(), message::encode_chat("héllo").as_bytes());
    }

    #[test]
    fn lengths_past_125_and_65535_take_the_longer_headers() {
        for (text_len, header_len) in [(100, 2), (1_000, 4), (70_000, 10)] {
            let payload = message::encode_chat(&"x".repeat(text_len));
            let frame = WireFrame::text(payload.clone());
            assert_eq!(frame.len(), payload.len() + header_len);
            assert_eq!(parse(frame.as_bytes()).payload(), payload.as_bytes());
            assert_eq!(frame.payload(), payload.as_bytes());
        }
    }

    #[test]
    fn control_frames_parse_back() {
        let pong = parse(WireFrame::pong(Bytes::from_static(b"abc")).as_bytes());
        assert_eq!(
            pong.header().opcode,
            OpCode::Control(tungstenite::protocol::frame::coding::Control::Pong)
        );
        assert_eq!(pong.payload(), b"abc");
        let close = WireFrame::close(Some(crate::close::CloseReason::SlowConsumer.frame()));
        assert_eq!(&close.as_bytes()[2..4], &1013u16.to_be_bytes());
    }

    #[test]
    fn a_gather_resumes_after_partial_writes_where_it_stopped() {
        let frames = [
            WireFrame::chat("a"),
            WireFrame::chat("bb"),
            WireFrame::chat("ccc"),
        ];
        let whole: Vec<u8> = frames.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
        for step in 1..=whole.len() {
            let mut gather = Gather::new();
            for frame in &frames {
                gather.push(frame.clone());
            }
            assert_eq!(gather.bytes(), whole.len());
            let mut out = Vec::new();
            while !gather.is_done() {
                // A write that takes at most `step` bytes of the slices.
                let took = gather.with_slices(|slices| {
                    let mut took = 0;
                    for slice in slices {
                        let n = slice.len().min(step - took);
                        out.extend_from_slice(&slice[..n]);
                        took += n;
                        if took == step {
                            break;
                        }
                    }
                    took
                });
                gather.advance(took);
            }
            assert_eq!(out, whole, "step {step}");
            gather.clear();
            assert!(gather.is_done() && gather.frames() == 0);
        }
    }

    #[test]
    fn frames_in_a_row_split_where_a_write_stopped() {
        let texts = ["a", "bb", "ccc"];
        let frames = WireFrames::chats(texts);
        let alone: Vec<WireFrame> = texts.iter().map(|t| WireFrame::chat(t)).collect();
        let whole: Vec<u8> = alone.iter().flat_map(|f| f.as_bytes().to_vec()).collect();
        assert_eq!(frames.as_bytes(), whole.as_slice());
        assert_eq!(frames.count(), 3);
        assert_eq!(frames.frames().collect::<Vec<_>>(), alone);
        for written in 0..=whole.len() {
            let rest: Vec<u8> = frames
                .rest(written)
                .flat_map(|f| f.as_bytes().to_vec())
                .collect();
            assert_eq!(rest, whole[written..], "after {written} bytes");
        }
        // A frame cut in the middle comes back as its tail, then the others.
        let cut = alone[0].len() + 1;
        let rest: Vec<WireFrame> = frames.rest(cut).collect();
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0], alone[1].rest(1));
        assert_eq!(
            WireFrames::one(alone[2].clone())
                .frames()
                .collect::<Vec<_>>(),
            [alone[2].clone()]
        );
    }

    #[test]
    fn the_rest_of_a_frame_is_its_tail() {
        let frame = WireFrame::chat("hello");
        assert_eq!(frame.rest(3).as_bytes(), &frame.as_bytes()[3..]);
        assert_eq!(frame.payload(), message::encode_chat("hello").as_bytes());
        assert!(frame.rest(frame.len()).is_empty());
    }
}
