//! Chat history (`--history PATH`): every message is stored before anyone
//! receives it; a joining client is first replayed the room's last
//! `--history-replay` messages, then the live ones, with no gap and no
//! duplicate between them; a restart continues each room's sequence; a
//! graceful shutdown loses nothing that anyone received; a database failure
//! is answered with an error reply and the server goes on; and the
//! configurations no server can run with are refused by `spawn`.
//!
//! Each scenario takes a [`HistoryServer`]: how to start the server (for
//! chat-async, with one of its `--db-bridge`s). Every scenario keeps its database in a fresh
//! temporary directory and reads it back with `chat_history` once the server
//! has shut down. To make the database fail on purpose while the server runs,
//! a scenario changes the schema through a second SQLite connection (a
//! trigger that aborts some inserts, a renamed table): SQLite connections see
//! each other's schema changes, so the server's own connection meets the
//! failure on its next statement, as it would meet a full disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chat_history::{History, Stored};
use chat_protocol::ServerConfig;
use chat_protocol::message::ServerFrame;
use chat_protocol::tungstenite::Message;
use chat_protocol::tungstenite::protocol::CloseFrame;
use chat_testkit::{Client, STEP_TIMEOUT, abbreviate, unique_room};
use tempfile::TempDir;
use tokio::sync::watch;

use crate::delivery::join;
use crate::server::finish_shutdown;
use crate::{Start, TestServer};

/// Starts a server with a config, or says why it cannot: for the
/// configurations a server must refuse.
pub type TryStart = fn(ServerConfig) -> io::Result<TestServer>;

/// A server to run the history scenarios against: what the
/// [`conformance!`](crate::conformance) macro hands every history scenario.
#[derive(Debug, Clone, Copy)]
pub struct HistoryServer {
    /// The test module, such as `async_::inline`, for messages.
    pub name: &'static str,
    /// Starts the server, panicking if it cannot.
    pub start: Start,
    /// Starts the server, or returns the error its `spawn` returned.
    pub try_start: TryStart,
}

impl HistoryServer {
    /// The default config, keeping the history in `path`.
    pub fn config(&self, path: &Path) -> ServerConfig {
        ServerConfig {
            history: Some(path.to_owned()),
            ..ServerConfig::default()
        }
    }

    /// Starts the server with [`HistoryServer::config`].
    fn start_with(&self, path: &Path) -> TestServer {
        (self.start)(self.config(path))
    }
}

/// A fresh directory for one scenario's database (deleted when dropped), and
/// the database's path in it.
fn database() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let path = dir.path().join("history.sqlite");
    (dir, path)
}

/// Everything stored for `room` in the database at `path`, oldest first.
fn stored(path: &Path, room: &str) -> Vec<Stored> {
    assert!(
        path.exists(),
        "the server created no database at {}",
        path.display()
    );
    let history = History::open(path)
        .unwrap_or_else(|error| panic!("the test cannot open the server's database: {error}"));
    history
        .recent(room, usize::MAX)
        .unwrap_or_else(|error| panic!("the test cannot read the server's database: {error}"))
}

/// The database at `path` must hold exactly `texts` for `room`, in this
/// order, numbered 1, 2, 3, ...
fn assert_stored<T: AsRef<str>>(server: &HistoryServer, path: &Path, room: &str, texts: &[T]) {
    let rows = stored(path, room);
    for row in &rows {
        assert_eq!(row.room, room, "{}: a row of another room", server.name);
    }
    let got: Vec<(u64, &str)> = rows.iter().map(|r| (r.seq, r.text.as_str())).collect();
    let want: Vec<(u64, &str)> = (1..).zip(texts.iter().map(AsRef::as_ref)).collect();
    if got != want {
        let at = got
            .iter()
            .zip(&want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        let show = |rows: &[(u64, &str)]| match rows.get(at) {
            Some((seq, text)) => format!("seq {seq} {}", abbreviate(text)),
            None => "nothing".to_owned(),
        };
        panic!(
            "{}: room {room} should hold {} messages, numbered from 1, and holds {}; \
             the first difference is at row {at}: stored {}, expected {}",
            server.name,
            want.len(),
            got.len(),
            show(&got),
            show(&want)
        );
    }
}

/// Runs `sql` on a second connection to the database at `path`, as an
/// operator (or a failing disk) might change it under the running server.
fn meddle(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path)
        .unwrap_or_else(|error| panic!("the test cannot open the server's database: {error}"));
    conn.busy_timeout(chat_history::BUSY_TIMEOUT)
        .expect("setting a busy timeout should work");
    conn.execute_batch(sql)
        .unwrap_or_else(|error| panic!("the test could not run {sql:?}: {error}"));
}

/// Reads chat messages until `barrier` arrives; returns the ones before it.
async fn messages_until(client: &mut Client, barrier: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let message = client.recv_message().await;
        if message == barrier {
            return seen;
        }
        seen.push(message);
    }
}

/// What a client got before its close frame: chat messages, error replies,
/// and the close frame.
struct UntilClose {
    messages: Vec<String>,
    errors: Vec<String>,
    close: CloseFrame,
}

/// Reads chat messages and error replies until the close frame.
async fn until_close(client: &mut Client) -> UntilClose {
    let (mut messages, mut errors) = (Vec::new(), Vec::new());
    loop {
        match client
            .recv("chat messages, error replies, then a close frame")
            .await
        {
            Message::Text(text) => match ServerFrame::parse(&text) {
                Ok(ServerFrame::Message { message }) => messages.push(message),
                Ok(ServerFrame::Error { error }) => errors.push(error),
                Err(error) => panic!("{}: not a server frame ({error}): {text}", client.label()),
            },
            Message::Close(Some(close)) => {
                client.finish_close().await;
                return UntilClose {
                    messages,
                    errors,
                    close,
                };
            }
            other => panic!("{}: unexpected frame {other:?}", client.label()),
        }
    }
}

/// Waits, up to [`STEP_TIMEOUT`], until `count` reaches `at_least`.
async fn wait_for_count(count: &mut watch::Receiver<usize>, at_least: usize, what: &str) {
    match tokio::time::timeout(STEP_TIMEOUT, count.wait_for(|&n| n >= at_least)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => panic!("waiting for {what}: the task counting it stopped (it panicked?)"),
        Err(_) => panic!(
            "waiting for {what}: not within {} s",
            STEP_TIMEOUT.as_secs()
        ),
    }
}

/// Messages each of the two senders of a room sends in
/// [`history_messages_are_stored`].
const STORED_PER_SENDER: usize = 10;

/// Every chat message is stored in its room, as sent (unicode, quotes,
/// newlines included), numbered from 1 in the one order every member of the
/// room received them in, with nothing else stored. Two rooms, each with two
/// members sending at once.
pub async fn history_messages_are_stored(server: HistoryServer) {
    let (_dir, path) = database();
    let live = server.start_with(&path);
    let addr = live.addr();
    let rooms = [
        (unique_room("history_stored_a"), ["alice", "bob"]),
        (
            unique_room("history_stored_b"),
            ["carol", "dávid 🎉 \"q\" \\ \n\t"],
        ),
    ];
    let total = 2 * STORED_PER_SENDER;
    // Everyone joins before anyone sends.
    let mut members = Vec::new();
    for (room, senders) in &rooms {
        for sender in senders {
            let client = join(addr, room, &format!("sender-{}", members.len())).await;
            members.push((client, *sender));
        }
    }
    let mut tasks = Vec::new();
    for (mut client, sender) in members {
        let texts: Vec<String> = (0..STORED_PER_SENDER)
            .map(|i| format!("{sender} {i}"))
            .collect();
        tasks.push(tokio::spawn(async move {
            for text in &texts {
                client.send_chat(text).await;
            }
            let mut seen = Vec::with_capacity(total);
            for _ in 0..total {
                seen.push(client.recv_message().await);
            }
            (client, seen)
        }));
    }
    let mut clients = Vec::new();
    let mut orders = Vec::new();
    for task in tasks {
        let (client, seen) = task.await.expect("a member's task panicked");
        clients.push(client);
        orders.push(seen);
    }
    drop(clients);
    live.shutdown().await;

    for (r, (room, senders)) in rooms.iter().enumerate() {
        let (first, second) = (&orders[2 * r], &orders[2 * r + 1]);
        assert_eq!(
            first, second,
            "{}: the two members of room {room} received different orders",
            server.name
        );
        let mut sorted = first.clone();
        sorted.sort();
        let mut sent: Vec<String> = senders
            .iter()
            .flat_map(|sender| (0..STORED_PER_SENDER).map(move |i| format!("{sender} {i}")))
            .collect();
        sent.sort();
        assert_eq!(
            sorted, sent,
            "{}: the members of room {room} did not receive every message once",
            server.name
        );
        assert_stored(&server, &path, room, first);
    }
}

/// Messages the poster sends in the replay scenarios.
const POSTS: usize = 400;
/// Messages the poster has in flight before it reads their echoes: enough to
/// keep the room busy while a joiner joins, few enough for any outbox.
const POST_WINDOW: usize = 16;
/// Clients joining while the poster posts.
const JOINERS: usize = 3;
/// Joiner `j` (from 1) starts joining once the poster has had the echoes of
/// its first `j * JOIN_EVERY` messages.
const JOIN_EVERY: usize = 100;
/// The barrier the poster sends after its last message.
const END: &str = "the end";

/// A joiner of the replay scenarios: how many messages were stored (echoed
/// to the poster) before it started joining, and the messages it received
/// before [`END`].
struct Joiner {
    after: usize,
    seen: Vec<String>,
}

/// The poster's `i`th message.
fn post(i: usize) -> String {
    format!("m{i}")
}

/// One poster posts `m0` .. `m399` in windows of [`POST_WINDOW`] while
/// [`JOINERS`] clients join, one after another, at different points of the
/// stream (the poster waits for the last joiner before its last window, so
/// every joiner has live messages as well as a replay); then the poster sends
/// [`END`]. Returns what each joiner received before `END`, after checking
/// that the database holds every post and `END`, in order.
async fn replay_while_posting(server: HistoryServer, replay: usize, name: &str) -> Vec<Joiner> {
    let (_dir, path) = database();
    let live = (server.start)(ServerConfig {
        history_replay: replay,
        ..server.config(&path)
    });
    let addr = live.addr();
    let room = unique_room(name);
    let mut poster = join(addr, &room, "poster").await;
    let (progress_tx, mut progress) = watch::channel(0usize);
    let (joined_tx, mut joined) = watch::channel(0usize);

    let posting = tokio::spawn(async move {
        let posts: Vec<String> = (0..POSTS).map(post).collect();
        for (w, window) in posts.chunks(POST_WINDOW).enumerate() {
            let first = w * POST_WINDOW;
            if first + POST_WINDOW >= POSTS {
                wait_for_count(&mut joined, JOINERS, "every joiner to have joined").await;
            }
            for text in window {
                poster.send_chat(text).await;
            }
            for text in window {
                poster.expect_message(text).await;
            }
            progress_tx.send_replace(first + window.len());
        }
        poster
    });

    let mut readers = Vec::new();
    for j in 1..=JOINERS {
        let after = j * JOIN_EVERY;
        wait_for_count(
            &mut progress,
            after,
            &format!("the poster to have {after} messages echoed"),
        )
        .await;
        let mut joiner = join(addr, &room, &format!("joiner-{j}")).await;
        joined_tx.send_replace(j);
        readers.push((
            after,
            tokio::spawn(async move {
                let seen = messages_until(&mut joiner, END).await;
                (joiner, seen)
            }),
        ));
    }
    let mut poster = posting.await.expect("the poster's task panicked");
    poster.send_chat(END).await;
    poster.expect_message(END).await;
    let mut clients = vec![poster];
    let mut joiners = Vec::new();
    for (after, reader) in readers {
        let (client, seen) = reader.await.expect("a joiner's task panicked");
        clients.push(client);
        joiners.push(Joiner { after, seen });
    }
    drop(clients);
    live.shutdown().await;

    let mut expected: Vec<String> = (0..POSTS).map(post).collect();
    expected.push(END.to_owned());
    assert_stored(&server, &path, &room, &expected);
    joiners
}

/// With a replay long enough for the whole room (`--history-replay 1000`),
/// every client joining while a poster posts receives exactly the room's
/// messages: each once, in order, the replayed ones then the live ones, with
/// no gap and no duplicate where they meet.
pub async fn history_replay_on_join_is_exact_under_concurrent_posting(server: HistoryServer) {
    let joiners = replay_while_posting(server, 1000, "history_replay_exact").await;
    let expected: Vec<String> = (0..POSTS).map(post).collect();
    for (j, joiner) in joiners.iter().enumerate() {
        if joiner.seen != expected {
            let at = joiner
                .seen
                .iter()
                .zip(&expected)
                .position(|(s, e)| s != e)
                .unwrap_or(joiner.seen.len().min(expected.len()));
            panic!(
                "{}: joiner {} (joined after {} posts) should receive m0..m{} exactly, \
                 and received {} messages; the first difference is at {at}: got {:?}, expected {:?}",
                server.name,
                j + 1,
                joiner.after,
                POSTS - 1,
                joiner.seen.len(),
                joiner.seen.get(at),
                expected.get(at)
            );
        }
    }
}

/// Messages replayed in [`history_short_replay_joins_the_live_stream_without_gap`].
const SHORT_REPLAY: usize = 10;

/// With a short replay (`--history-replay 10`), every client joining while a
/// poster posts receives a run of consecutive messages ending with the last:
/// the 10 stored last before it joined, then every live one, with no gap and
/// no duplicate where they meet.
pub async fn history_short_replay_joins_the_live_stream_without_gap(server: HistoryServer) {
    let joiners = replay_while_posting(server, SHORT_REPLAY, "history_replay_short").await;
    let mut starts = Vec::new();
    for (j, joiner) in joiners.iter().enumerate() {
        let who = format!(
            "{}: joiner {} (joined after {} posts)",
            server.name,
            j + 1,
            joiner.after
        );
        let numbers: Vec<usize> = joiner
            .seen
            .iter()
            .map(|text| {
                text.strip_prefix('m')
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{who}: received {}", abbreviate(text)))
            })
            .collect();
        if let Some(w) = numbers.windows(2).position(|w| w[1] != w[0] + 1) {
            panic!(
                "{who}: received m{} then m{} (a gap or a duplicate; {} messages from m{})",
                numbers[w],
                numbers[w + 1],
                numbers.len(),
                numbers[0]
            );
        }
        assert_eq!(
            numbers.last(),
            Some(&(POSTS - 1)),
            "{who}: should receive every message up to the last"
        );
        // It joined once `after` messages were stored and before the last
        // window was sent: its replay starts within these bounds, and the
        // last window at least is live.
        let first = numbers[0];
        assert!(
            first + SHORT_REPLAY >= joiner.after,
            "{who}: the replay started at m{first}, more than {SHORT_REPLAY} before the \
             {} messages stored when it joined",
            joiner.after
        );
        assert!(
            numbers.len() >= SHORT_REPLAY + POST_WINDOW,
            "{who}: received only m{first}..m{}: fewer than the {SHORT_REPLAY} replayed \
             plus the last {POST_WINDOW} sent after it joined",
            POSTS - 1
        );
        starts.push(format!("after {} posts, from m{first}", joiner.after));
    }
    println!(
        "{}: joiners (replay {SHORT_REPLAY}) started joining {}",
        server.name,
        starts.join("; ")
    );
}

/// A server restarted on the same database replays what the first one
/// stored, and goes on numbering each room where it stopped (a new room
/// starts at 1).
pub async fn history_sequence_continues_across_a_restart(server: HistoryServer) {
    let (_dir, path) = database();
    let room = unique_room("history_restart");
    let new_room = unique_room("history_restart_new");

    let first = server.start_with(&path);
    let mut alice = join(first.addr(), &room, "alice").await;
    for text in ["before the restart a", "before the restart b"] {
        alice.send_chat(text).await;
        alice.expect_message(text).await;
    }
    drop(alice);
    first.shutdown().await;

    let second = server.start_with(&path);
    let mut bob = join(second.addr(), &room, "bob").await;
    bob.expect_message("before the restart a").await;
    bob.expect_message("before the restart b").await;
    // The next frame is bob's own message: nothing more was replayed.
    bob.send_chat("after the restart c").await;
    bob.expect_message("after the restart c").await;
    let mut carol = join(second.addr(), &new_room, "carol").await;
    carol.send_chat("first in a new room").await;
    carol.expect_message("first in a new room").await;
    drop((bob, carol));
    second.shutdown().await;

    assert_stored(
        &server,
        &path,
        &room,
        &[
            "before the restart a",
            "before the restart b",
            "after the restart c",
        ],
    );
    assert_stored(&server, &path, &new_room, &["first in a new room"]);
}

/// Clients sending at once in the shutdown scenario.
const SHUTDOWN_SENDERS: usize = 3;
/// Messages each of them fires without reading: all of them together stay
/// under the default outbox capacity (1024), so no member, a sender reading
/// only after its burst included, can be cut off as a slow consumer.
const SHUTDOWN_BURST: usize = 250;
/// Messages the listener receives before the shutdown starts: a quarter of
/// all, so that it lands while the server is storing and delivering the rest.
const SHUTDOWN_AFTER: usize = SHUTDOWN_SENDERS * SHUTDOWN_BURST / 4;

/// A graceful shutdown in the middle of bursts from several senders (once a
/// quarter of the messages reached a listener) loses nothing that anyone
/// received: every member's messages are the database's first ones, in the
/// database's order; each sender's stored messages are the first it sent, in
/// order; and a sender told that some failed (error replies, which do not
/// say which message they answer) had at most the rest of its burst stored.
pub async fn history_graceful_shutdown_loses_nothing_received(server: HistoryServer) {
    let (_dir, path) = database();
    let live = server.start_with(&path);
    let addr = live.addr();
    let label = live.label();
    let room = unique_room("history_shutdown");
    let mut senders = Vec::new();
    for s in 0..SHUTDOWN_SENDERS {
        senders.push(join(addr, &room, &format!("sender-{s}")).await);
    }
    let mut listener = join(addr, &room, "listener").await;
    let bursts: Vec<Vec<String>> = (0..SHUTDOWN_SENDERS)
        .map(|s| (0..SHUTDOWN_BURST).map(|i| format!("s{s}-{i}")).collect())
        .collect();
    let bursts = Arc::new(bursts);
    let mut sending = Vec::new();
    for (s, mut sender) in senders.into_iter().enumerate() {
        let bursts = Arc::clone(&bursts);
        sending.push(tokio::spawn(async move {
            for text in &bursts[s] {
                sender.send_chat(text).await;
            }
            until_close(&mut sender).await
        }));
    }
    // The shutdown starts once the listener has a quarter of the messages.
    let mut to_listener = Vec::new();
    for _ in 0..SHUTDOWN_AFTER {
        to_listener.push(listener.recv_message().await);
    }
    let stopping = live.begin_shutdown();
    let (rest, listener_close) = listener.recv_until_close().await;
    to_listener.extend(rest);
    let mut ends = Vec::new();
    for task in sending {
        ends.push(task.await.expect("a sender's task panicked"));
    }
    finish_shutdown(label, stopping).await;

    let rows = stored(&path, &room);
    let stored_texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row.seq,
            i as u64 + 1,
            "{}: the stored messages should be numbered 1, 2, 3, ...",
            server.name
        );
    }
    assert_eq!(
        u16::from(listener_close.code),
        1001,
        "listener: {listener_close:?}"
    );
    let mut received = vec![("the listener".to_owned(), &to_listener)];
    for (s, end) in ends.iter().enumerate() {
        assert_eq!(
            u16::from(end.close.code),
            1001,
            "sender {s}: {:?}",
            end.close
        );
        received.push((format!("sender {s}"), &end.messages));
    }
    for (who, messages) in &received {
        let len = messages.len().min(stored_texts.len());
        if let Some(at) = (0..len).find(|&i| messages[i] != stored_texts[i]) {
            panic!(
                "{}: {who}'s message {at} was {}, the database's is {}",
                server.name,
                abbreviate(&messages[at]),
                abbreviate(stored_texts[at])
            );
        }
        assert!(
            messages.len() <= stored_texts.len(),
            "{}: {who} received {} messages, the database holds only {}: {} was lost",
            server.name,
            messages.len(),
            stored_texts.len(),
            abbreviate(&messages[stored_texts.len()])
        );
    }
    for (s, end) in ends.iter().enumerate() {
        let prefix = format!("s{s}-");
        let from_s: Vec<&str> = stored_texts
            .iter()
            .copied()
            .filter(|text| text.starts_with(&prefix))
            .collect();
        assert!(
            from_s
                .iter()
                .copied()
                .eq(bursts[s][..from_s.len()].iter().map(String::as_str)),
            "{}: sender {s}'s stored messages are not the first it sent, in order",
            server.name
        );
        assert!(
            from_s.len() + end.errors.len() <= SHUTDOWN_BURST,
            "{}: sender {s} had {} messages stored and {} error replies, for {SHUTDOWN_BURST} \
             sent: a message it was told failed was stored (errors: {:?})",
            server.name,
            from_s.len(),
            end.errors.len(),
            end.errors.first()
        );
    }
    println!(
        "{}: {} of {} messages stored before the shutdown, {} delivered to the listener, \
         {} refused with an error reply",
        server.name,
        rows.len(),
        SHUTDOWN_SENDERS * SHUTDOWN_BURST,
        to_listener.len(),
        ends.iter().map(|end| end.errors.len()).sum::<usize>()
    );
}

/// Makes the server's every insert of a text starting with `poison` fail, as
/// a full disk would.
const POISON_TRIGGER: &str = "CREATE TRIGGER poison BEFORE INSERT ON messages \
     WHEN NEW.text LIKE 'poison%' \
     BEGIN SELECT RAISE(ABORT, 'disk full (simulated by the test)'); END;";

/// A message the database fails to store gets its sender an error reply and
/// reaches no one (not the sender, not another member: the next message is
/// the next frame of both, nor a newcomer's replay); the connection and the
/// server go on, and the next messages are stored, numbered without a hole.
pub async fn history_store_failure_gets_an_error_and_the_server_goes_on(server: HistoryServer) {
    let (_dir, path) = database();
    let live = server.start_with(&path);
    let addr = live.addr();
    let room = unique_room("history_store_failure");
    let mut alice = join(addr, &room, "alice").await;
    let mut bob = join(addr, &room, "bob").await;
    // A first message, stored: the table exists for the trigger.
    alice.send_chat("ok-0").await;
    alice.expect_message("ok-0").await;
    bob.expect_message("ok-0").await;
    meddle(&path, POISON_TRIGGER);

    alice.send_chat("poison-1").await;
    let error = alice.expect_error().await;
    assert!(
        !error.trim().is_empty(),
        "{}: the error reply for a message not stored is empty",
        server.name
    );
    alice.send_chat("ok-1").await;
    alice.expect_message("ok-1").await;
    bob.expect_message("ok-1").await;

    bob.send_chat("poison-2").await;
    let error_2 = bob.expect_error().await;
    assert!(
        !error_2.trim().is_empty(),
        "{}: empty error reply",
        server.name
    );
    bob.send_chat("ok-2").await;
    bob.expect_message("ok-2").await;
    alice.expect_message("ok-2").await;

    // A newcomer is replayed what was stored, and nothing else: its next
    // frame is the next live message.
    let mut carol = join(addr, &room, "carol").await;
    for text in ["ok-0", "ok-1", "ok-2"] {
        carol.expect_message(text).await;
    }
    carol.send_chat("ok-3").await;
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect_message("ok-3").await;
    }
    drop((alice, bob, carol));
    live.shutdown().await;

    assert_stored(&server, &path, &room, &["ok-0", "ok-1", "ok-2", "ok-3"]);
    println!(
        "{}: the error reply for a message not stored: {error:?}",
        server.name
    );
}

/// A client joining while the history cannot be read still joins: its first
/// frame is an error reply, and it then receives the room's live messages.
/// (The history is made unreadable by renaming its table, and readable
/// again by renaming it back.)
pub async fn history_read_failure_at_join_still_joins(server: HistoryServer) {
    let (_dir, path) = database();
    let live = server.start_with(&path);
    let addr = live.addr();
    let room = unique_room("history_read_failure");
    let mut alice = join(addr, &room, "alice").await;
    alice.send_chat("before").await;
    alice.expect_message("before").await;

    meddle(
        &path,
        "ALTER TABLE messages RENAME TO messages_hidden_by_the_test;",
    );
    let mut newcomer = join(addr, &room, "newcomer").await;
    let error = newcomer.expect_error().await;
    assert!(
        !error.trim().is_empty(),
        "{}: the error reply for an unreadable history is empty",
        server.name
    );
    meddle(
        &path,
        "ALTER TABLE messages_hidden_by_the_test RENAME TO messages;",
    );

    alice.send_chat("after").await;
    alice.expect_message("after").await;
    newcomer.expect_message("after").await;
    drop((alice, newcomer));
    live.shutdown().await;

    assert_stored(&server, &path, &room, &["before", "after"]);
    println!(
        "{}: the error reply for an unreadable history: {error:?}",
        server.name
    );
}

/// `spawn` returns an error, and does not panic, when the history database
/// cannot be opened: a path in a directory that does not exist, a directory,
/// a file that is not a SQLite database (which is left as it was).
pub async fn history_unopenable_database_fails_the_start(server: HistoryServer) {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let missing_dir = dir.path().join("missing");
    let not_a_database = dir.path().join("notes.txt");
    let notes = "this is a text file, not a SQLite database\n".repeat(200);
    std::fs::write(&not_a_database, &notes).expect("cannot write a file");
    let cases = [
        (
            "in a directory that does not exist",
            missing_dir.join("history.sqlite"),
        ),
        ("a directory", dir.path().to_owned()),
        ("a file that is not a database", not_a_database.clone()),
    ];
    for (what, path) in cases {
        match (server.try_start)(server.config(&path)) {
            Ok(live) => {
                live.shutdown().await;
                panic!(
                    "{}: with a history path that is {what} ({}), spawn should fail, \
                     and the server started",
                    server.name,
                    path.display()
                );
            }
            Err(error) => {
                assert!(
                    !error.to_string().is_empty(),
                    "{}: an empty error",
                    server.name
                );
                println!("{}: history path {what}: {error}", server.name);
            }
        }
    }
    assert!(
        !missing_dir.exists(),
        "{}: the server created the missing directory",
        server.name
    );
    assert_eq!(
        std::fs::read_to_string(&not_a_database).expect("cannot read the file back"),
        notes,
        "{}: the server changed a file that is not a database",
        server.name
    );
}

/// `spawn` must refuse `config`, which is `what`.
async fn expect_refused(server: &HistoryServer, what: &str, config: ServerConfig) {
    match (server.try_start)(config) {
        Ok(live) => {
            live.shutdown().await;
            panic!("{}: spawn should refuse {what}, and started", server.name);
        }
        Err(error) => println!("{}: {what} refused: {error}", server.name),
    }
}

/// The database options need `--history`: `spawn` refuses `db_delay_ms`
/// without it. With a history and a delay, the server runs and stores.
pub async fn history_db_options_are_checked(server: HistoryServer) {
    let (_dir, path) = database();
    expect_refused(
        &server,
        "db_delay_ms without a history",
        ServerConfig {
            db_delay_ms: 5,
            ..ServerConfig::default()
        },
    )
    .await;

    let live = (server.start)(ServerConfig {
        db_delay_ms: 2,
        ..server.config(&path)
    });
    let room = unique_room("history_db_delay");
    let mut alice = join(live.addr(), &room, "alice").await;
    alice.send_chat("slow but stored").await;
    alice.expect_message("slow but stored").await;
    drop(alice);
    live.shutdown().await;
    assert_stored(&server, &path, &room, &["slow but stored"]);
}
