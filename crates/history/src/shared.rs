//! One [`History`] for a whole server, shared by the threads that store and
//! replay, with what both servers need around it: the replay as ready-made
//! frames, errors logged once, and the experiment's artificial delay.
//!
//! SQLite serialises writers to a file anyway, so a server keeps a single
//! connection behind a mutex rather than one per thread (thousands, for the
//! sync server) with sequence caches that would disagree.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use chat_protocol::message;
use chat_protocol::room::RoomName;
use chat_protocol::wire::WireFrame;

use crate::{History, HistoryError, Stored};

/// A server's history: storing and replaying, callable from any thread.
/// Every method blocks (file I/O, the mutex, the delay).
#[derive(Debug)]
pub struct SharedHistory {
    history: Mutex<History>,
    /// Slept before every call (`--db-delay-ms`), outside the mutex: it
    /// models the wait for a slow or remote database, which callers on other
    /// connections would not queue behind.
    delay: Duration,
    /// Messages replayed to a joining client (`--history-replay`).
    replay: usize,
}

impl SharedHistory {
    /// Opens (or creates) the database at `path`; see [`History::open`].
    ///
    /// # Errors
    ///
    /// [`HistoryError::Open`], if the file cannot be used.
    pub fn open(path: &Path, replay: usize, delay: Duration) -> Result<Self, HistoryError> {
        Ok(Self {
            history: Mutex::new(History::open(path)?),
            delay,
            replay,
        })
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        if !self.delay.is_zero() {
            thread::sleep(self.delay);
        }
        // A panic inside rusqlite leaves the connection usable: SQLite rolls
        // back an unfinished transaction when the next one begins.
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores one message; see [`History::append`]. A failure is logged.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Store`]: nothing was stored.
    pub fn append(&self, room: &RoomName, text: &str) -> Result<Stored, HistoryError> {
        self.lock()
            .append(room.as_str(), text)
            .inspect_err(|error| tracing::error!(%error, "history: message not stored"))
    }

    /// Stores messages in one transaction; see [`History::append_batch`]. A
    /// failure is logged.
    ///
    /// # Errors
    ///
    /// As [`History::append_batch`]: nothing was stored.
    pub fn append_batch(&self, items: &[(&str, &str)]) -> Result<Vec<Stored>, HistoryError> {
        self.lock()
            .append_batch(items)
            .inspect_err(|error| tracing::warn!(%error, "history: batch not stored"))
    }

    /// The frames a client joining `room` receives first: the room's last
    /// `--history-replay` messages, oldest first; or, if they cannot be read,
    /// one error frame saying so (the failure is logged).
    pub fn replay_frames(&self, room: &RoomName) -> Vec<WireFrame> {
        if self.replay == 0 {
            return Vec::new();
        }
        match self.lock().recent(room.as_str(), self.replay) {
            Ok(stored) => stored
                .iter()
                .map(|message| WireFrame::chat(&message.text))
                .collect(),
            Err(error) => {
                tracing::error!(%error, "history: no replay for a joining client");
                vec![WireFrame::text(message::encode_error(&error))]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_frames_and_reports_a_read_failure_as_one_error_frame() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shared =
            SharedHistory::open(&dir.path().join("h.sqlite"), 2, Duration::ZERO).expect("open");
        let room = RoomName::new("lobby").expect("room");
        for text in ["a", "b", "c"] {
            shared.append(&room, text).expect("append");
        }
        let text = |frame: &WireFrame| String::from_utf8(frame.payload().to_vec()).expect("text");
        let frames = shared.replay_frames(&room);
        assert_eq!(
            frames.iter().map(text).collect::<Vec<_>>(),
            [r#"{"message":"b"}"#, r#"{"message":"c"}"#]
        );
        shared
            .lock()
            .conn
            .execute_batch("DROP TABLE messages")
            .expect("drop");
        let frames = shared.replay_frames(&room);
        assert_eq!(frames.len(), 1);
        assert!(
            text(&frames[0]).starts_with(r#"{"error":"#),
            "{}",
            text(&frames[0])
        );
    }
}
