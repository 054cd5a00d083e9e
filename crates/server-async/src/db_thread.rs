//! The `writer` database bridge: one thread owns every history call, fed by
//! a bounded queue, storing what waits in the queue in one transaction.
//!
//! The thread is also the history's sequencer: it stores a batch, then
//! delivers its messages in the order stored, and it serves joins (replay
//! and registration) between batches, so a joiner's replay ends exactly
//! where its live messages begin.

use std::io;
use std::sync::Arc;
use std::thread;

use chat_history::SharedHistory;
use chat_protocol::message;
use chat_protocol::queued::OutboxLimits;
use chat_protocol::room::RoomName;
use chat_protocol::rooms::{Closed, RoomHandle, Rooms};
use chat_protocol::tungstenite::Utf8Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::history::{Finished, Joined, join_blocking, not_stored};
use crate::outbox::Outbox;

/// Requests waiting for the database thread; a reader task that finds the
/// queue full waits, which stops it reading.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

/// The most requests taken from the queue at once (and so the most messages
/// stored in one transaction).
pub(crate) const MAX_BATCH: usize = 256;

/// A request to the database thread, answered on `done`.
pub(crate) enum Job {
    /// Store `text` and send it to `room`.
    Post {
        room: RoomHandle<Outbox>,
        text: String,
        done: oneshot::Sender<Result<(), Utf8Bytes>>,
    },
    /// Join `room` with its replay.
    Join {
        rooms: Arc<Rooms<Outbox>>,
        room: RoomName,
        limits: OutboxLimits,
        done: oneshot::Sender<Result<Joined, Closed>>,
    },
}

struct Post {
    room: RoomHandle<Outbox>,
    text: String,
    done: oneshot::Sender<Result<(), Utf8Bytes>>,
}

/// Starts the database thread; it ends, closing the database, once every
/// sender of the returned queue is dropped.
pub(crate) fn start(shared: SharedHistory) -> io::Result<(mpsc::Sender<Job>, Finished)> {
    let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
    let (finished, on_finished) = oneshot::channel();
    thread::Builder::new()
        .name("chat-db".into())
        .spawn(move || {
            run(&shared, queue);
            drop(shared);
            let _ = finished.send(());
        })?;
    Ok((jobs, on_finished))
}

fn run(shared: &SharedHistory, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut posts = Vec::new();
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH
            && let Ok(job) = queue.try_recv()
        {
            batch.push(job);
        }
        for job in batch.drain(..) {
            match job {
                Job::Post { room, text, done } => posts.push(Post { room, text, done }),
                Job::Join {
                    rooms,
                    room,
                    limits,
                    done,
                } => {
                    // Messages queued before the join are stored and sent
                    // first: they are in its replay, not live.
                    store_and_send(shared, std::mem::take(&mut posts));
                    let _ = done.send(join_blocking(Some(shared), &rooms, room, &limits));
                }
            }
        }
        store_and_send(shared, std::mem::take(&mut posts));
    }
}

/// Stores `posts` in one transaction, then sends them in order. If the
/// transaction fails, each is tried alone, so only the messages that cannot
/// be stored are refused.
fn store_and_send(shared: &SharedHistory, posts: Vec<Post>) {
    let (refused, posts): (Vec<Post>, Vec<Post>) =
        posts.into_iter().partition(|post| post.room.is_closed());
    for post in refused {
        let _ = post.done.send(Err(message::encode_error(&Closed)));
    }
    if posts.is_empty() {
        return;
    }
    let items: Vec<(&str, &str)> = posts
        .iter()
        .map(|post| (post.room.room().as_str(), post.text.as_str()))
        .collect();
    let stored = shared.append_batch(&items);
    drop(items);
    match stored {
        Ok(_) => {
            for post in posts {
                post.room.broadcast_stored(&post.text);
                let _ = post.done.send(Ok(()));
            }
        }
        Err(error) if posts.len() == 1 => {
            if let Some(post) = posts.into_iter().next() {
                let _ = post.done.send(Err(not_stored(error)));
            }
        }
        Err(_) => {
            for post in posts {
                let outcome = match shared.append(post.room.room(), &post.text) {
                    Ok(_) => {
                        post.room.broadcast_stored(&post.text);
                        Ok(())
                    }
                    Err(error) => Err(not_stored(error)),
                };
                let _ = post.done.send(outcome);
            }
        }
    }
}
