//! Chat history storage: every chat message, per room, in an embedded SQLite
//! database.
//!
//! Both servers, started with `--history PATH`, hand each message to
//! [`History::append`] (or [`History::append_batch`]) and a joining client
//! is first sent [`History::recent`]. This crate is only the storage half:
//! no async, no server code, a blocking API.
//!
//! Why it looks like this:
//!
//! - **A sequence number per room.** Each room counts its own messages from
//!   1, so a client can tell where a replay ends and the live stream starts,
//!   and a gap is visible. `(room, seq)` is the primary key: a second writer
//!   that raced ahead makes the insert fail instead of silently reusing a
//!   number. The next number is looked up once per room (`MAX(seq)`) and then
//!   cached; the cache only moves after a successful commit, so a failed store
//!   leaves no hole and no duplicate. Restarting on the same file therefore
//!   continues each room's sequence.
//! - **WAL journal mode** (`synchronous = NORMAL`): readers replaying history
//!   to a joining client do not block the writer storing new messages, and a
//!   commit costs one append to the log instead of a rewrite of the database.
//!   A busy timeout of [`BUSY_TIMEOUT`] absorbs short lock contention instead
//!   of failing at once.
//! - **Stored before delivery.** The servers store a message and only then
//!   deliver it, so a shutdown or crash never loses a message that some client
//!   has already seen. When storing fails (not writable, disk full, locked
//!   past the timeout) the caller gets a [`HistoryError`], tells the sender,
//!   and keeps running; nothing in here panics on a database error.
//! - **Blocking only.** Every call does file I/O and may wait on a lock. The
//!   thread-per-connection server calls it directly; the async server must
//!   call it from a blocking context (`spawn_blocking` or a dedicated
//!   thread), never on a runtime worker.
//!
//! One [`History`] should own a file per process: the sequence cache assumes
//! it is the only writer (another writer causes errors, never duplicates).
//!
//! ```
//! # fn main() -> Result<(), chat_history::HistoryError> {
//! # let dir = tempfile::tempdir().expect("temp dir");
//! # let path = dir.path().join("history.sqlite");
//! let mut history = chat_history::History::open(&path)?;
//! let stored = history.append("lobby", "hello")?; // store, then deliver
//! assert_eq!(stored.seq, 1);
//! history.append("lobby", "again")?;
//! let replay = history.recent("lobby", 10)?; // for a joining client
//! assert_eq!(replay.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod shared;

pub use shared::SharedHistory;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// How long a statement waits for a lock held by another connection before
/// failing with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, created if absent. `WITHOUT ROWID` stores rows in primary key
/// order, which is exactly the order `recent` reads them in.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID";

const INSERT: &str = "INSERT INTO messages (room, seq, text, at_ms) VALUES (?1, ?2, ?3, ?4)";

const LAST_SEQ: &str = "SELECT MAX(seq) FROM messages WHERE room = ?1";

const RECENT: &str = "SELECT room, seq, text, at_ms FROM (
    SELECT room, seq, text, at_ms FROM messages WHERE room = ?1 ORDER BY seq DESC LIMIT ?2
) ORDER BY seq ASC";

/// A message as stored: what a joining client is replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The room the message was sent to.
    pub room: String,
    /// Its number within the room: 1 for the room's first message, then
    /// consecutive.
    pub seq: u64,
    /// The message text, as the sender sent it.
    pub text: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A history operation failed; the message says what was being done and why.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database could not be opened or set up: report it and start
    /// without history (or exit), the file is unusable.
    #[error("opening history database {}: {cause}", path.display())]
    Open {
        /// The path given to [`History::open`].
        path: PathBuf,
        /// What SQLite reported.
        cause: rusqlite::Error,
    },
    /// A message was not stored (nothing was): tell the sender and do not
    /// deliver it; later messages may succeed.
    #[error("storing a message in room {room}: {cause}")]
    Store {
        /// The room the message was for.
        room: String,
        /// What SQLite reported.
        cause: rusqlite::Error,
    },
    /// A batch was not stored (none of it was): tell the senders and do not
    /// deliver any of it.
    #[error("storing a batch of {len} messages: {cause}")]
    StoreBatch {
        /// How many messages the batch held.
        len: usize,
        /// What SQLite reported.
        cause: rusqlite::Error,
    },
    /// The history could not be read: let the client join without replay.
    #[error("reading room {room}'s history: {cause}")]
    Read {
        /// The room whose history was asked for.
        room: String,
        /// What SQLite reported.
        cause: rusqlite::Error,
    },
}

/// The chat history in one SQLite file. Blocking; see the crate docs.
#[derive(Debug)]
pub struct History {
    /// The one connection: writes and reads of this process go through it.
    conn: Connection,
    /// Each room's last committed sequence number, filled on a room's first
    /// append and only advanced after a commit.
    last_seq: HashMap<String, i64>,
}

impl History {
    /// Opens or creates the database at `path` in WAL mode and creates the
    /// `messages` table if absent.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Open`] if the file cannot be opened or created (for
    /// example, its parent is not a directory), is not a database, or cannot
    /// be switched to WAL mode or given the table.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        let setup = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        let conn = setup().map_err(|cause| HistoryError::Open {
            path: path.to_owned(),
            cause,
        })?;
        Ok(Self {
            conn,
            last_seq: HashMap::new(),
        })
    }

    /// Stores one message in `room` with the room's next sequence number.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Store`] if it could not be stored; then nothing was
    /// stored and the room's next sequence number is unchanged.
    pub fn append(&mut self, room: &str, text: &str) -> Result<Stored, HistoryError> {
        let at_ms = now_ms();
        let Self { conn, last_seq } = self;
        let mut store = || -> rusqlite::Result<i64> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq = next_seq(&tx, last_seq, &HashMap::new(), room)?;
            tx.prepare_cached(INSERT)?
                .execute(params![room, seq, text, at_ms])?;
            tx.commit()?;
            Ok(seq)
        };
        let seq = store().map_err(|cause| HistoryError::Store {
            room: room.to_owned(),
            cause,
        })?;
        last_seq.insert(room.to_owned(), seq);
        Ok(stored(room, seq, text, at_ms))
    }

    /// Stores `(room, text)` pairs in order in one transaction: all of them
    /// or none. Messages to the same room get consecutive numbers.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Store`] naming the room of the message that could not
    /// be inserted, or [`HistoryError::StoreBatch`] if the transaction could
    /// not start or commit. Either way nothing was stored and every room's
    /// next sequence number is unchanged.
    pub fn append_batch(&mut self, items: &[(&str, &str)]) -> Result<Vec<Stored>, HistoryError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at_ms = now_ms();
        let batch_error = |cause| HistoryError::StoreBatch {
            len: items.len(),
            cause,
        };
        let Self { conn, last_seq } = self;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(batch_error)?;
        // Sequence numbers taken by this batch, merged into the cache only
        // once the commit succeeded.
        let mut taken: HashMap<String, i64> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for &(room, text) in items {
            let insert = || -> rusqlite::Result<i64> {
                let seq = next_seq(&tx, last_seq, &taken, room)?;
                tx.prepare_cached(INSERT)?
                    .execute(params![room, seq, text, at_ms])?;
                Ok(seq)
            };
            // Dropping `tx` on the error path rolls the batch back.
            let seq = insert().map_err(|cause| HistoryError::Store {
                room: room.to_owned(),
                cause,
            })?;
            taken.insert(room.to_owned(), seq);
            out.push(stored(room, seq, text, at_ms));
        }
        tx.commit().map_err(batch_error)?;
        last_seq.extend(taken);
        Ok(out)
    }

    /// The last `n` messages stored in `room`, oldest first; fewer if the
    /// room has fewer, none for an unknown room or `n == 0`.
    ///
    /// # Errors
    ///
    /// [`HistoryError::Read`] if the history could not be read.
    pub fn recent(&self, room: &str, n: usize) -> Result<Vec<Stored>, HistoryError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let read = || -> rusqlite::Result<Vec<Stored>> {
            let mut stmt = self.conn.prepare_cached(RECENT)?;
            let rows = stmt.query_map(params![room, limit], |row| {
                Ok(Stored {
                    room: row.get(0)?,
                    seq: unsigned(row, 1)?,
                    text: row.get(2)?,
                    at_ms: unsigned(row, 3)?,
                })
            })?;
            rows.collect()
        };
        read().map_err(|cause| HistoryError::Read {
            room: room.to_owned(),
            cause,
        })
    }

    /// The connection, for tests that need to break the database on purpose.
    #[cfg(test)]
    fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// The sequence number for the next message in `room`: after the ones this
/// batch `taken`, else after the cached `last`, else after the stored ones.
fn next_seq(
    conn: &Connection,
    last: &HashMap<String, i64>,
    taken: &HashMap<String, i64>,
    room: &str,
) -> rusqlite::Result<i64> {
    let prev = match taken.get(room).or_else(|| last.get(room)) {
        Some(&seq) => seq,
        None => conn
            .prepare_cached(LAST_SEQ)?
            .query_row(params![room], |row| row.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .unwrap_or(0),
    };
    prev.checked_add(1)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(1, prev))
}

/// Reads column `idx` as a non-negative integer.
fn unsigned(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

fn stored(room: &str, seq: i64, text: &str, at_ms: i64) -> Stored {
    Stored {
        room: room.to_owned(),
        // Sequence numbers start at 1 and times are clamped at 0: never negative.
        seq: seq.unsigned_abs(),
        text: text.to_owned(),
        at_ms: at_ms.unsigned_abs(),
    }
}

/// Milliseconds since the Unix epoch; 0 for a clock set before it.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.sqlite");
        (dir, path)
    }

    fn seqs(stored: &[Stored]) -> Vec<u64> {
        stored.iter().map(|s| s.seq).collect()
    }

    fn texts(stored: &[Stored]) -> Vec<&str> {
        stored.iter().map(|s| s.text.as_str()).collect()
    }

    /// Makes every insert of the text `poison` fail, mid-transaction.
    fn poison(history: &History) {
        history
            .conn()
            .execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.text = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
            )
            .expect("create trigger");
    }

    #[test]
    fn opens_in_wal_mode() {
        let (_dir, path) = db();
        let history = History::open(&path).expect("open");
        let mode: String = history
            .conn()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn sequences_start_at_one_per_room_and_are_independent() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        let a1 = history.append("a", "first in a").expect("a1");
        let a2 = history.append("a", "second in a").expect("a2");
        let b1 = history.append("b", "first in b").expect("b1");
        let a3 = history.append("a", "third in a").expect("a3");
        assert_eq!((a1.seq, a2.seq, b1.seq, a3.seq), (1, 2, 1, 3));
        assert_eq!(b1.room, "b");
        assert_eq!(b1.text, "first in b");
        assert!(a1.at_ms > 0 && a1.at_ms <= a3.at_ms);
    }

    #[test]
    fn sequences_continue_after_reopening() {
        let (_dir, path) = db();
        {
            let mut history = History::open(&path).expect("open");
            history.append("a", "1").expect("a1");
            history.append("a", "2").expect("a2");
            history.append("b", "1").expect("b1");
        }
        let mut history = History::open(&path).expect("reopen");
        assert_eq!(history.append("a", "3").expect("a3").seq, 3);
        assert_eq!(history.append("b", "2").expect("b2").seq, 2);
        assert_eq!(history.append("c", "1").expect("c1").seq, 1);
        assert_eq!(
            texts(&history.recent("a", 10).expect("recent")),
            ["1", "2", "3"]
        );
    }

    #[test]
    fn recent_returns_the_last_n_oldest_first() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        for i in 1..=5 {
            history.append("a", &format!("a{i}")).expect("append a");
        }
        history.append("b", "b1").expect("append b");

        let last3 = history.recent("a", 3).expect("recent 3");
        assert_eq!(seqs(&last3), [3, 4, 5]);
        assert_eq!(texts(&last3), ["a3", "a4", "a5"]);
        assert!(last3.iter().all(|s| s.room == "a"));

        assert_eq!(
            seqs(&history.recent("a", 50).expect("more")),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(texts(&history.recent("b", 3).expect("b")), ["b1"]);
        assert!(history.recent("a", 0).expect("zero").is_empty());
        assert!(history.recent("nobody", 3).expect("unknown").is_empty());
        assert!(history.recent("a", usize::MAX).expect("huge").len() == 5);
    }

    #[test]
    fn recent_returns_what_append_returned() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        let stored = history
            .append("a", "hello \u{1F600} 'quoted'")
            .expect("append");
        assert_eq!(history.recent("a", 1).expect("recent"), [stored]);
    }

    #[test]
    fn batch_numbers_rooms_in_order() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        history.append("a", "a1").expect("a1");
        let batch = history
            .append_batch(&[("a", "a2"), ("b", "b1"), ("a", "a3"), ("b", "b2")])
            .expect("batch");
        let got: Vec<(&str, u64)> = batch.iter().map(|s| (s.room.as_str(), s.seq)).collect();
        assert_eq!(got, [("a", 2), ("b", 1), ("a", 3), ("b", 2)]);
        assert_eq!(history.append("a", "a4").expect("a4").seq, 4);
        assert_eq!(history.append("b", "b3").expect("b3").seq, 3);
        assert!(history.append_batch(&[]).expect("empty").is_empty());
    }

    #[test]
    fn failed_batch_stores_nothing_and_keeps_sequences() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        history.append("a", "a1").expect("a1");
        history.append("b", "b1").expect("b1");
        poison(&history);

        let err = history
            .append_batch(&[("a", "a2"), ("b", "b2"), ("c", "c1"), ("b", "poison")])
            .expect_err("poisoned batch must fail");
        assert!(
            matches!(&err, HistoryError::Store { room, .. } if room == "b"),
            "{err:?}"
        );

        // Nothing of the batch is stored ...
        assert_eq!(texts(&history.recent("a", 10).expect("a")), ["a1"]);
        assert_eq!(texts(&history.recent("b", 10).expect("b")), ["b1"]);
        assert!(history.recent("c", 10).expect("c").is_empty());
        // ... and the next numbers are the ones the batch would have used.
        assert_eq!(history.append("a", "a2").expect("a2").seq, 2);
        assert_eq!(history.append("b", "b2").expect("b2").seq, 2);
        assert_eq!(history.append("c", "c1").expect("c1").seq, 1);
    }

    #[test]
    fn failed_append_keeps_the_sequence_and_the_history_usable() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        history.append("a", "a1").expect("a1");
        poison(&history);

        let err = history.append("a", "poison").expect_err("must fail");
        assert!(matches!(&err, HistoryError::Store { room, .. } if room == "a"));
        let err = history.append("new", "poison").expect_err("must fail");
        assert!(matches!(&err, HistoryError::Store { room, .. } if room == "new"));

        assert_eq!(history.append("a", "a2").expect("a2").seq, 2);
        assert_eq!(history.append("new", "n1").expect("n1").seq, 1);
        assert_eq!(texts(&history.recent("a", 10).expect("a")), ["a1", "a2"]);
    }

    #[test]
    fn read_only_database_refuses_writes_with_an_error() {
        let (_dir, path) = db();
        let mut history = History::open(&path).expect("open");
        history.append("a", "a1").expect("a1");
        history
            .conn()
            .pragma_update(None, "query_only", true)
            .expect("query_only on");

        let err = history.append("a", "a2").expect_err("read-only append");
        assert!(matches!(err, HistoryError::Store { .. }), "{err:?}");
        let err = history
            .append_batch(&[("a", "a2"), ("b", "b1")])
            .expect_err("read-only batch");
        assert!(
            matches!(
                err,
                HistoryError::Store { .. } | HistoryError::StoreBatch { .. }
            ),
            "{err:?}"
        );
        // Reading still works.
        assert_eq!(texts(&history.recent("a", 10).expect("read")), ["a1"]);

        history
            .conn()
            .pragma_update(None, "query_only", false)
            .expect("query_only off");
        assert_eq!(history.append("a", "a2").expect("a2").seq, 2);
        assert_eq!(history.append("b", "b1").expect("b1").seq, 1);
    }

    #[test]
    fn open_fails_when_the_parent_is_not_a_directory() {
        let (dir, _) = db();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"not a directory").expect("write file");
        let path = file.join("history.sqlite");

        let err = History::open(&path).expect_err("open under a file");
        match &err {
            HistoryError::Open { path: p, .. } => assert_eq!(p, &path),
            other => panic!("expected Open, got {other:?}"),
        }
        let shown = err.to_string();
        assert!(shown.starts_with("opening history database "), "{shown}");
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(!shown.contains('\n'), "{shown}");
    }

    #[test]
    fn open_fails_on_a_file_that_is_not_a_database() {
        let (_dir, path) = db();
        std::fs::write(&path, vec![0x42_u8; 4096]).expect("write junk");
        let err = History::open(&path).expect_err("open junk");
        assert!(matches!(err, HistoryError::Open { .. }), "{err:?}");
    }
}
