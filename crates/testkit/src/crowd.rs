//! Many clients at once: connect a crowd, and see them all closed.

use std::net::SocketAddr;

use chat_protocol::tungstenite::protocol::CloseFrame;

use crate::{Client, Connect, unique_room};

/// Connects `clients` clients spread over `rooms` fresh rooms (round robin),
/// then proves every one of them live: one message is sent in each room and
/// every member receives it.
pub async fn connect_crowd(
    addr: SocketAddr,
    prefix: &str,
    clients: usize,
    rooms: usize,
) -> Vec<Client> {
    let rooms: Vec<String> = (0..rooms.max(1)).map(|_| unique_room(prefix)).collect();
    let mut crowd = Vec::with_capacity(clients);
    for i in 0..clients {
        let room = &rooms[i % rooms.len()];
        crowd.push(
            Connect::room(room)
                .name(&format!("crowd-{i}"))
                .to(addr)
                .await,
        );
    }
    for (r, room) in rooms.iter().enumerate().take(crowd.len()) {
        crowd[r].send_chat(&format!("roll call in {room}")).await;
    }
    for (i, client) in crowd.iter_mut().enumerate() {
        let room = &rooms[i % rooms.len()];
        client.expect_message(&format!("roll call in {room}")).await;
    }
    crowd
}

/// Reads every client's close frame, all at once (each on its own task, so
/// none waits for another), and checks its code; returns the frames in the
/// clients' order.
pub async fn expect_all_closed(clients: Vec<Client>, code: u16) -> Vec<CloseFrame> {
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| tokio::spawn(async move { client.expect_close(code).await }))
        .collect();
    let mut frames = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(frame) => frames.push(frame),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("a client's task was cancelled: {error}"),
        }
    }
    frames
}
