//! Slowloris: a valid request head trickled one byte at a time, so that a
//! server waiting for the whole head holds its thread or task (and a pending
//! handshake slot) for as long as the client likes. The handshake timeout
//! ends it with 408 (RFC 9110 15.5.9), and the room goes on meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use chat_protocol::ServerConfig;
use chat_testkit::{STEP_TIMEOUT, http, unique_room};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::handshake::ws_path;
use super::{Witnesses, still_serves};
use crate::Start;
use crate::delivery::join;

/// One byte of the slowloris head every this often.
const TRICKLE_EVERY: Duration = Duration::from_millis(50);
/// Padding in the slowloris head: with it, trickling the whole head takes
/// over 15 s, longer than [`STEP_TIMEOUT`] and far longer than the 1 s
/// handshake timeout.
const TRICKLE_PADDING: usize = 300;

/// A valid upgrade head trickled one byte at a time is answered 408 once the
/// handshake timeout has passed, before the trickle ends; meanwhile the room
/// chats and a newcomer joins it.
pub async fn slowloris_head_is_refused_408(start: Start) {
    let server = start(ServerConfig {
        handshake_timeout_secs: 1,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("slowloris");
    let mut witnesses = Witnesses::join(&server, &room).await;
    let padding = "p".repeat(TRICKLE_PADDING);
    let head = http::upgrade_request(addr, &ws_path(&room), &[("X-Padding", &padding)]);
    let total = head.len();
    let trickling = tokio::spawn(trickle(addr, head.into_bytes()));

    witnesses.barrier("while the slowloris trickles").await;
    let mut newcomer = join(addr, &room, "newcomer").await;
    witnesses.barrier("with a newcomer").await;
    newcomer.expect_message("with a newcomer").await;

    let (sent, response) = trickling.await.expect("the slowloris task panicked");
    assert!(
        sent < total,
        "the server read the whole trickled head ({total} bytes) instead of timing out"
    );
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(
        head.starts_with("HTTP/1.1 408 "),
        "the slowloris should get 408, got {response:?}"
    );
    assert!(
        body.ends_with('\n') && body.trim_end().lines().count() == 1,
        "the 408 body should be a one-line reason, got {body:?}"
    );
    println!("{}: 408 after {sent} of {total} bytes", server.label());

    drop(newcomer);
    witnesses.finish().await;
    still_serves(addr, "after_slowloris").await;
    server.shutdown().await;
}

/// Writes `head` to a new connection one byte per [`TRICKLE_EVERY`], reading
/// all the while, until the server ends the connection; returns how many
/// bytes were written by then, and what the server sent. Panics if that
/// takes longer than [`STEP_TIMEOUT`].
async fn trickle(addr: SocketAddr, head: Vec<u8>) -> (usize, String) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("the slowloris should connect");
    let (mut reader, mut writer) = stream.into_split();
    let mut tick = tokio::time::interval(TRICKLE_EVERY);
    let (mut sent, mut writing) = (0, true);
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    let ended = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            tokio::select! {
                _ = tick.tick(), if writing && sent < head.len() => {
                    match writer.write_all(&head[sent..=sent]).await {
                        Ok(()) => sent += 1,
                        // The server has hung up: read what it said.
                        Err(_) => writing = false,
                    }
                }
                read = reader.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => response.extend_from_slice(&chunk[..n]),
                },
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the slowloris: the server did not end the connection within {} s \
         ({sent} of {} bytes trickled; got {:?})",
        STEP_TIMEOUT.as_secs(),
        head.len(),
        String::from_utf8_lossy(&response)
    );
    (sent, String::from_utf8_lossy(&response).into_owned())
}
