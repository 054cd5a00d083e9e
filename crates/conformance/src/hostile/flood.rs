//! A flood of TCP connections that never send a byte, against a small
//! handshake limit: the cheapest attack on a server that holds a thread or a
//! task per pending handshake.
//!
//! The servers bound pending handshakes (`max_pending_handshakes`). When all
//! are taken, the acceptor keeps accepting and ends the oldest pending
//! handshake pending for over 250 ms to make room: so a real client arriving
//! after the flood waits about 2.5 s here (2,000 connections, 200 at a time
//! every 250 ms), instead of queueing behind every silent connection for
//! its handshake timeout (ten rounds of 2 s, longer than a step may take).
//! The flood comes from ten addresses, each within its share
//! (`--max-connections-per-ip`): from one, all but its share would be
//! refused at once with 429 (`per_ip`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chat_protocol::ServerConfig;
use chat_testkit::{STEP_TIMEOUT, http, unique_room};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::{Witnesses, still_serves};
use crate::Start;
use crate::delivery::join;

/// Silent connections in the flood.
const FLOOD: usize = 2000;
/// Pending handshakes the server allows: a tenth of the flood.
const PENDING: usize = 200;
/// The handshake timeout during the flood.
const HANDSHAKE_TIMEOUT_SECS: u64 = 2;

/// Addresses the flood comes from: within each one's share of connections
/// (`--max-connections-per-ip`), as a flood from many machines is, so that
/// what meets it is the handshake slots and their eviction.
const SOURCES: usize = 10;

/// The address silent connection `i` comes from: 127.0.0.10 to 127.0.0.19.
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + (i % SOURCES) as u8))
}

/// How the server ended one silent connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Closed without a word (evicted).
    Eof,
    /// Reset.
    Reset,
    /// Answered 408, then closed (its handshake timed out).
    Timeout408,
}

/// Two thousand silent connections, ten times the handshake limit, neither
/// keep a normal client from joining and chatting within one step, nor a
/// page from being served; and the server ends every one of them (evicted,
/// or timed out with 408) within the handshake timeout and one step.
pub async fn silent_connection_flood_blocks_no_one(start: Start) {
    // Both ends of every connection live in this process.
    super::raise_open_files(2 * FLOOD as u64 + 256);
    let server = start(ServerConfig {
        max_pending_handshakes: PENDING,
        handshake_timeout_secs: HANDSHAKE_TIMEOUT_SECS,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("flood");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let mut silent = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let stream = tokio::time::timeout(STEP_TIMEOUT, http::connect_from(addr, Some(source(i))))
            .await
            .unwrap_or_else(|_| panic!("silent connection {i}: no TCP connect within a step"))
            .unwrap_or_else(|error| panic!("silent connection {i}: TCP connect failed: {error}"));
        silent.push(stream);
    }

    let mut newcomer = join(addr, &room, "after-the-flood").await;
    witnesses.barrier("despite the flood").await;
    newcomer.expect_message("despite the flood").await;
    let page = http::exchange(addr, &http::get_request(addr, "/")).await;
    assert_eq!(
        page.status, 200,
        "the page should be served despite the flood"
    );

    let deadline = Instant::now() + Duration::from_secs(HANDSHAKE_TIMEOUT_SECS) + STEP_TIMEOUT;
    let mut ending = JoinSet::new();
    for (i, stream) in silent.into_iter().enumerate() {
        ending.spawn(async move { (i, wait_for_end(stream, deadline).await) });
    }
    let mut counts = [0usize; 3];
    while let Some(joined) = ending.join_next().await {
        let (i, ended) = joined.expect("a silent connection's task panicked");
        match ended {
            Ok(ended) => counts[ended as usize] += 1,
            Err(error) => panic!("silent connection {i}: {error}"),
        }
    }
    println!(
        "{}: of {FLOOD} silent connections, {} closed, {} reset, {} answered 408",
        server.label(),
        counts[Ended::Eof as usize],
        counts[Ended::Reset as usize],
        counts[Ended::Timeout408 as usize]
    );

    witnesses.barrier("after the flood").await;
    newcomer.expect_message("after the flood").await;
    drop(newcomer);
    witnesses.finish().await;
    still_serves(addr, "after_flood").await;
    server.shutdown().await;
}

/// Reads a silent connection until the server ends it, or `deadline`.
async fn wait_for_end(mut stream: TcpStream, deadline: Instant) -> Result<Ended, String> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => {
                return Err(format!(
                    "not ended by the server within the handshake timeout and a step \
                     (received {:?})",
                    String::from_utf8_lossy(&received)
                ));
            }
            Ok(Ok(0)) => break Ended::Eof,
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                break Ended::Reset;
            }
            Ok(Err(error)) => return Err(format!("read failed: {error}")),
        }
    };
    if received.is_empty() {
        Ok(end)
    } else if received.starts_with(b"HTTP/1.1 408 ") {
        Ok(Ended::Timeout408)
    } else {
        Err(format!(
            "the server sent something other than a 408: {:?}",
            String::from_utf8_lossy(&received)
        ))
    }
}
