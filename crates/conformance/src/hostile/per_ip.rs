//! One client address against the limits per address
//! (`--max-connections-per-ip`, `--max-handshakes-per-ip-per-sec`;
//! `chat_protocol::per_ip`): it may take its share and no more, while
//! clients from other addresses are served at once.
//!
//! Every address of 127.0.0.0/8 is this machine's, so a test connects from
//! 127.0.0.2 or 127.0.0.3 to look like another client. That an address's
//! connections are given back when they end is proved by the churn test
//! (`chat_testkit::limits::churn_leaves_no_trace`): 100,000 connections
//! from one address, far beyond its limit, one after the other.

use std::net::{IpAddr, Ipv4Addr};

use chat_protocol::ServerConfig;
use chat_protocol::route::Refusal;
use chat_testkit::{Connect, http, refusal_status, unique_room};
use futures_util::StreamExt;

use super::{Witnesses, still_serves};
use crate::Start;
use crate::delivery::join;

/// Connections the flood opens from one address.
const FLOOD: usize = 2000;
/// Flood connections in flight at once.
const FLOOD_CONCURRENCY: usize = 64;

/// The address `127.0.0.<last>`.
fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Two thousand WebSocket upgrades from 127.0.0.2, each held once it is let
/// in: exactly `--max-connections-per-ip` (256) are, every other is refused
/// with 429 and the reason; meanwhile a client from 127.0.0.1 joins and
/// chats at once, and the room's members lose nothing.
pub async fn one_address_cannot_take_every_slot(start: Start) {
    super::raise_open_files(2 * FLOOD as u64 + 256);
    let config = ServerConfig::default();
    let share = config.max_connections_per_ip;
    let server = start(config);
    let addr = server.addr();
    let room = unique_room("per_ip_flood");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let flood_room = unique_room("per_ip_flood_room");
    let attempts: Vec<_> = futures_util::stream::iter(0..FLOOD)
        .map(|i| {
            Connect::room(&flood_room)
                .name(&format!("flood-{i}"))
                .from(loopback(2))
                .try_to(addr)
        })
        .buffer_unordered(FLOOD_CONCURRENCY)
        .collect()
        .await;
    let mut held = Vec::new();
    for attempt in attempts {
        match attempt {
            Ok(client) => held.push(client),
            Err(error) => assert_eq!(
                refusal_status(&error),
                Some(429),
                "a connection beyond its address's share should get 429, got: {error:#}"
            ),
        }
    }
    assert_eq!(
        held.len(),
        share,
        "127.0.0.2 should hold exactly its share of {share} connections"
    );
    let refused = http::try_exchange_from(
        addr,
        Some(loopback(2)),
        &http::upgrade_request(addr, &format!("/ws/chat/{flood_room}/"), &[]),
    )
    .await
    .expect("an HTTP answer");
    assert_eq!(refused.status, 429, "one more from 127.0.0.2");
    assert_eq!(
        refused.body.trim_end(),
        Refusal::TooManyFromAddress.to_string(),
        "the 429's one-line reason"
    );

    let mut newcomer = join(addr, &room, "from-127.0.0.1").await;
    witnesses.barrier("despite 127.0.0.2").await;
    newcomer.expect_message("despite 127.0.0.2").await;
    newcomer.send_chat("served at once").await;
    witnesses.expect_from_others("served at once").await;
    newcomer.expect_message("served at once").await;

    drop(held);
    drop(newcomer);
    witnesses.finish().await;
    still_serves(addr, "after_per_ip_flood").await;
    server.shutdown().await;
}

/// New connections from 127.0.0.3 one after the other, each closed before
/// the next: the first `--max-connections-per-ip` (the burst) are served,
/// then the rate (one a second here) refuses them with 429 and
/// `Retry-After`, while 127.0.0.4's first is served at once and a client
/// from 127.0.0.1 joins and chats.
pub async fn handshake_rate_is_limited_per_address(start: Start) {
    const BURST: usize = 32;
    const BEYOND: usize = 16;
    let server = start(ServerConfig {
        max_connections_per_ip: BURST,
        max_handshakes_per_ip_per_sec: 1,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let page = http::get_request(addr, "/");
    let mut statuses = Vec::new();
    let mut too_fast = None;
    for i in 0..BURST + BEYOND {
        let response = http::try_exchange_from(addr, Some(loopback(3)), &page)
            .await
            .unwrap_or_else(|error| panic!("request {i} from 127.0.0.3: {error:#}"));
        if response.status == 429 {
            too_fast.get_or_insert(response.clone());
        }
        statuses.push(response.status);
    }
    assert!(
        statuses[..BURST].iter().all(|&s| s == 200),
        "the burst of {BURST} should be served: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "every answer should be the page or 429: {statuses:?}"
    );
    // At one a second, the {BEYOND} requests after the burst could all be
    // served only if they took over {BEYOND} seconds: far beyond a step.
    let refusal = too_fast.unwrap_or_else(|| {
        panic!("requests beyond the rate should be refused with 429: {statuses:?}")
    });
    assert_eq!(
        refusal.body.trim_end(),
        Refusal::TooFastFromAddress.to_string(),
        "the 429's one-line reason"
    );
    assert_eq!(refusal.header("Retry-After"), Some("1"));

    let other = http::try_exchange_from(addr, Some(loopback(4)), &page)
        .await
        .expect("an HTTP answer");
    assert_eq!(other.status, 200, "another address's first request");
    let room = unique_room("per_ip_rate");
    let mut client = join(addr, &room, "from-127.0.0.1").await;
    client.send_chat("still served").await;
    client.expect_message("still served").await;
    drop(client);
    server.shutdown().await;
}
