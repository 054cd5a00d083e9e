//! Hostile handshakes: heads too large, HTTP/1.0, requests that are not
//! HTTP, bad `Sec-WebSocket-Key`s and versions, and frames pipelined behind
//! the request head. Each is answered with its RFC 9110 / RFC 6455 status,
//! and harms no one in the room.

use std::net::SocketAddr;

use chat_protocol::ServerConfig;
use chat_protocol::route::MAX_HEADERS;
use chat_testkit::http::{self, HttpResponse, SAMPLE_KEY};
use chat_testkit::{RawClient, RawFrame, unique_room};

use super::{Witnesses, still_serves};
use crate::Start;
use crate::handshake::assert_refused;

/// Sends `request` and checks it is refused with `status`.
async fn expect_refused(addr: SocketAddr, request: &str, status: u16, what: &str) -> HttpResponse {
    let response = http::exchange(addr, request).await;
    assert_refused(&response, status, what);
    response
}

/// The path of `room`'s WebSocket endpoint.
pub(super) fn ws_path(room: &str) -> String {
    format!("{}{room}/", chat_protocol::room::WS_PATH_PREFIX)
}

/// A request head over `max_head_bytes` (one huge header, or a head that
/// never ends), or with more than `MAX_HEADERS` headers, is refused with 431,
/// upgrade or page.
pub async fn oversized_heads_are_refused_431(start: Start) {
    let limit = 4096;
    let server = start(ServerConfig {
        max_head_bytes: limit,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("oversized_head");
    let mut witnesses = Witnesses::join(&server, &room).await;
    let path = ws_path(&room);

    let big = "b".repeat(2 * limit);
    let big_upgrade = http::upgrade_request(addr, &path, &[("X-Big", &big)]);
    expect_refused(addr, &big_upgrade, 431, "an upgrade with a huge header").await;
    let big_page = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {big}\r\n\r\n");
    expect_refused(addr, &big_page, 431, "a page request with a huge header").await;
    let endless = big_upgrade.trim_end().to_owned();
    expect_refused(addr, &endless, 431, "a head without an end").await;
    let names: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("X-H{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "1")).collect();
    let crowded = http::upgrade_request(addr, &path, &many);
    assert!(
        crowded.len() < limit,
        "the crowded head must be under the byte limit"
    );
    expect_refused(addr, &crowded, 431, "a head with too many headers").await;
    witnesses.barrier("after the oversized heads").await;

    witnesses.finish().await;
    still_serves(addr, "after_431").await;
    server.shutdown().await;
}

/// An upgrade in HTTP/1.0 is refused with 400 (RFC 6455 4.1: the version
/// must be at least 1.1); a page in HTTP/1.0 is served.
pub async fn http_1_0_upgrades_are_refused_400(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("http_1_0");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let upgrade =
        http::upgrade_request(addr, &ws_path(&room), &[]).replacen("HTTP/1.1", "HTTP/1.0", 1);
    expect_refused(addr, &upgrade, 400, "an HTTP/1.0 upgrade").await;
    let page = http::get_request(addr, "/").replacen("HTTP/1.1", "HTTP/1.0", 1);
    assert_eq!(
        http::status(addr, &page).await,
        200,
        "an HTTP/1.0 page request"
    );
    witnesses.barrier("after HTTP/1.0").await;

    witnesses.finish().await;
    still_serves(addr, "after_http_1_0").await;
    server.shutdown().await;
}

/// Requests that are not HTTP/1.x are refused with 400, at once.
pub async fn non_http_requests_are_refused_400(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("non_http");
    let mut witnesses = Witnesses::join(&server, &room).await;
    let path = ws_path(&room);

    let cases = [
        ("a bare word", "hello\r\n\r\n".to_owned()),
        ("a method alone", "GET\r\n\r\n".to_owned()),
        ("another protocol", format!("GET {path} FTP/1.1\r\n\r\n")),
        ("an SSH banner", "SSH-2.0-OpenSSH_9.6\r\n\r\n".to_owned()),
        (
            "chat JSON without a handshake",
            "{\"message\": \"hi\"}\r\n\r\n".to_owned(),
        ),
        ("NUL bytes", "\0\0\0\0\r\n\r\n".to_owned()),
        (
            "a header without a colon",
            format!("GET {path} HTTP/1.1\r\nUpgrade websocket\r\n\r\n"),
        ),
    ];
    for (what, request) in cases {
        expect_refused(addr, &request, 400, what).await;
        witnesses.barrier(&format!("after {what}")).await;
    }

    witnesses.finish().await;
    still_serves(addr, "after_non_http").await;
    server.shutdown().await;
}

/// A `Sec-WebSocket-Key` that is not the base64 of 16 bytes is refused with
/// 400 (RFC 6455 4.2.1).
pub async fn bad_websocket_keys_are_refused_400(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("bad_key");
    let mut witnesses = Witnesses::join(&server, &room).await;
    let request = http::upgrade_request(addr, &ws_path(&room), &[]);

    let keys = [
        ("not base64", "!!!!!!!!!!!!!!!!!!!!!!=="),
        ("the base64 of 15 bytes", "AAAAAAAAAAAAAAAAAAAA"),
        ("the base64 of 17 bytes", "AAAAAAAAAAAAAAAAAAAAAAA="),
        ("16 bytes, not encoded", "0123456789abcdef"),
        ("empty", ""),
    ];
    for (what, key) in keys {
        let bad = request.replace(SAMPLE_KEY, key);
        expect_refused(
            addr,
            &bad,
            400,
            &format!("a Sec-WebSocket-Key that is {what}"),
        )
        .await;
        witnesses
            .barrier(&format!("after a key that is {what}"))
            .await;
    }

    witnesses.finish().await;
    still_serves(addr, "after_bad_keys").await;
    server.shutdown().await;
}

/// A `Sec-WebSocket-Version` other than 13 is refused with 426 naming 13
/// (RFC 6455 4.2.2); a missing one with 400 (a required field is missing,
/// 4.2.1).
pub async fn bad_websocket_versions_are_refused_426(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("bad_version");
    let mut witnesses = Witnesses::join(&server, &room).await;
    let request = http::upgrade_request(addr, &ws_path(&room), &[]);

    for version in ["12", "14", "13, 8", "", "thirteen"] {
        let what = format!("Sec-WebSocket-Version: {version:?}");
        let bad = request.replace(
            "Sec-WebSocket-Version: 13",
            &format!("Sec-WebSocket-Version: {version}"),
        );
        let response = expect_refused(addr, &bad, 426, &what).await;
        assert_eq!(
            response.header("Sec-WebSocket-Version"),
            Some("13"),
            "{what}: a 426 names 13"
        );
        witnesses.barrier(&format!("after {what}")).await;
    }
    let missing = request.replace("Sec-WebSocket-Version: 13\r\n", "");
    expect_refused(addr, &missing, 400, "no Sec-WebSocket-Version").await;
    witnesses.barrier("after no version").await;

    witnesses.finish().await;
    still_serves(addr, "after_bad_versions").await;
    server.shutdown().await;
}

/// Frames written in the same write as the request head, before the 101
/// comes back, are the connection's first frames: a whole chat message, and
/// the start of another finished later, are delivered to the sender and the
/// room.
pub async fn frames_pipelined_after_the_head_are_delivered(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("pipelined");
    let mut witnesses = Witnesses::join(&server, &room).await;

    let (one, two) = ("pipelined one", "pipelined two, finished later");
    let second = RawFrame::chat(two).encode();
    let (second_start, second_rest) = second.split_at(3);
    let pipelined = [RawFrame::chat(one).encode().as_slice(), second_start].concat();
    let mut hostile = RawClient::connect_then(addr, &room, "pipelining", &pipelined).await;
    hostile.expect_message(one).await;
    witnesses.expect_from_others(one).await;
    hostile.write(second_rest).await;
    hostile.expect_message(two).await;
    witnesses.expect_from_others(two).await;
    witnesses.barrier("after the pipelined frames").await;
    hostile.expect_message("after the pipelined frames").await;

    drop(hostile);
    witnesses.finish().await;
    still_serves(addr, "after_pipelined").await;
    server.shutdown().await;
}
