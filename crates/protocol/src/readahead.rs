//! Reading a socket through a scratch buffer that is not the connection's.
//!
//! tungstenite reads into a buffer of its own, one per connection, and an
//! idle connection keeps it: at 4 KiB it was a third of an idle chat-async
//! connection's memory. So tungstenite's buffer is kept small
//! ([`TUNGSTENITE_READ_BYTES`], growing for a larger frame as before), and
//! the socket is read through a larger scratch buffer that belongs to the
//! thread, not the connection: chat-async's workers each have one for all
//! their connections; in chat-sync every connection has its own reader
//! thread, so there it is one per connection, the model's cost.
//!
//! What one read brings beyond what tungstenite takes at once is kept here
//! ([`ReadAhead`]) until it is taken, and freed then: an idle connection
//! holds no read buffer but tungstenite's few hundred bytes. A kept byte is
//! one that has arrived, so a reader taking only what has arrived (chat-sync
//! with `MSG_DONTWAIT`, chat-async polling once) sees it first.

/// Bytes of tungstenite's own read buffer per connection.
pub const TUNGSTENITE_READ_BYTES: usize = 256;

/// What a read into the scratch buffer brought beyond what its caller took.
#[derive(Debug, Default)]
pub struct ReadAhead {
    kept: Vec<u8>,
    taken: usize,
}

impl ReadAhead {
    /// Copies into `buf` what is kept, freeing the store once it is all
    /// taken; `None` when nothing is kept (the caller then reads the socket).
    pub fn take(&mut self, buf: &mut [u8]) -> Option<usize> {
        let kept = &self.kept[self.taken..];
        if kept.is_empty() {
            return None;
        }
        let n = kept.len().min(buf.len());
        buf[..n].copy_from_slice(&kept[..n]);
        self.taken += n;
        if self.taken == self.kept.len() {
            *self = Self::default();
        }
        Some(n)
    }

    /// Hands out `read`, what one read into the scratch buffer brought: as
    /// much as fits into `buf`, the rest kept for the next calls. Returns
    /// the bytes copied into `buf`.
    pub fn split(&mut self, read: &[u8], buf: &mut [u8]) -> usize {
        let n = read.len().min(buf.len());
        buf[..n].copy_from_slice(&read[..n]);
        self.kept.extend_from_slice(&read[n..]);
        n
    }

    /// Whether anything is kept.
    pub fn is_empty(&self) -> bool {
        self.taken == self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes come out in order, across reads smaller than what was read,
    /// and the store is freed once drained.
    #[test]
    fn hands_out_in_order_and_frees_when_drained() {
        let mut ahead = ReadAhead::default();
        let mut buf = [0u8; 3];
        assert_eq!(ahead.take(&mut buf), None);
        assert_eq!(ahead.split(b"abcdefgh", &mut buf), 3);
        assert_eq!(&buf, b"abc");
        assert!(!ahead.is_empty());
        let mut out = Vec::new();
        while let Some(n) = ahead.take(&mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, b"defgh");
        assert!(ahead.is_empty());
        assert_eq!(ahead.kept.capacity(), 0);
    }

    /// A read that fits keeps nothing.
    #[test]
    fn a_read_that_fits_keeps_nothing() {
        let mut ahead = ReadAhead::default();
        let mut buf = [0u8; 8];
        assert_eq!(ahead.split(b"abc", &mut buf), 3);
        assert!(ahead.is_empty());
        assert_eq!(ahead.kept.capacity(), 0);
    }
}
