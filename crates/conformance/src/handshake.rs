//! The HTTP side: the pages, and every refused handshake with its status and
//! a one-line reason. A refused or stalled handshake harms no one: a normal
//! client still gets in afterwards.

use std::net::SocketAddr;
use std::time::Instant;

use chat_protocol::ServerConfig;
use chat_protocol::page;
use chat_protocol::room::MAX_ROOM_NAME_LEN;
use chat_testkit::http::{self, HttpResponse};
use chat_testkit::{Connect, POLL_INTERVAL, POLL_TIMEOUT, refusal_status, unique_room};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::Start;
use crate::delivery::join;

/// `response` must have `status` and a one-line plain-text body.
pub(crate) fn assert_refused(response: &HttpResponse, status: u16, what: &str) {
    assert_eq!(
        response.status, status,
        "{what}: wrong status (body {:?})",
        response.body
    );
    assert!(
        response.body.ends_with('\n') && response.body.trim_end().lines().count() == 1,
        "{what}: the body should be a one-line reason, got {:?}",
        response.body
    );
    let content_type = response.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain"),
        "{what}: Content-Type should be text/plain, got {content_type:?}"
    );
}

/// A normal client still gets in and chats: the server survived whatever
/// came before.
pub(crate) async fn still_serves(addr: SocketAddr, prefix: &str) {
    let room = unique_room(prefix);
    let mut client = join(addr, &room, "afterwards").await;
    client.send_chat("still serving").await;
    client.expect_message("still serving").await;
}

/// `GET /` serves the room picker and `GET /chat/<room>/` the room page, as
/// HTML; a room page for an invalid room is 404.
pub async fn serves_the_pages(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("page");

    let cases = [
        (
            "/".to_owned(),
            page::INDEX_HTML,
            &["room-name-input", "room-name-submit"][..],
        ),
        (
            format!("/chat/{room}/"),
            page::ROOM_HTML,
            &["chat-log", "chat-message-input", "chat-message-submit"][..],
        ),
        (
            format!("/chat/{room}/?from=test"),
            page::ROOM_HTML,
            &["chat-log"][..],
        ),
    ];
    for (path, html, ids) in cases {
        let response = http::exchange(addr, &http::get_request(addr, &path)).await;
        assert_eq!(response.status, 200, "GET {path}: wrong status");
        let content_type = response.header("Content-Type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/html"),
            "GET {path}: Content-Type should be text/html, got {content_type:?}"
        );
        for id in ids {
            assert!(
                response.body.contains(&format!("id=\"{id}\"")),
                "GET {path}: the page has no element #{id}"
            );
        }
        assert!(response.body == html, "GET {path}: not the protocol's page");
    }
    let bad_room = http::exchange(addr, &http::get_request(addr, "/chat/no-dashes/")).await;
    assert_refused(&bad_room, 404, "GET /chat/no-dashes/");
    let unknown = http::exchange(addr, &http::get_request(addr, "/favicon.ico")).await;
    assert_refused(&unknown, 404, "GET /favicon.ico");

    server.shutdown().await;
}

/// An upgrade to an unknown path, or to a room whose name is invalid, is
/// refused with 404; a room name of the maximum length is fine.
pub async fn refuses_unknown_paths_and_invalid_rooms(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();

    let too_long = format!("/ws/chat/{}/", "a".repeat(MAX_ROOM_NAME_LEN + 1));
    let paths = [
        "/nope",
        "/ws/",
        "/ws/chat/",
        "/ws/chat//",
        "/ws/chat/lobby",
        "/ws/chat/lobby/extra/",
        "/ws/other/lobby/",
        "/ws/chat/no-dashes/",
        "/ws/chat/no%20spaces/",
        "/ws/chat/caf%C3%A9/",
        "/ws/chat/../lobby/",
        too_long.as_str(),
    ];
    for path in paths {
        let response = http::exchange(addr, &http::upgrade_request(addr, path, &[])).await;
        assert_refused(&response, 404, &format!("upgrade to {path}"));
    }

    let longest = unique_room(&"l".repeat(MAX_ROOM_NAME_LEN));
    assert_eq!(longest.len(), MAX_ROOM_NAME_LEN);
    let mut client = join(addr, &longest, "longest-name").await;
    client.send_chat("a long room name").await;
    client.expect_message("a long room name").await;

    drop(client);
    still_serves(addr, "after_404").await;
    server.shutdown().await;
}

/// A foreign `Origin` is refused with 403; the server's own origin, a
/// configured allowed origin, and no `Origin` at all are let in.
pub async fn checks_the_origin(start: Start) {
    let allowed = "https://chat.example.com";
    let server = start(ServerConfig {
        allowed_origins: vec![allowed.to_owned()],
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("origin");
    let path = format!("/ws/chat/{room}/");

    let other_port = format!("http://{}:{}", addr.ip(), addr.port() ^ 1);
    for foreign in [
        "https://evil.example",
        "http://chat.example.com.evil.example",
        other_port.as_str(),
        "null",
    ] {
        let request = http::upgrade_request(addr, &path, &[("Origin", foreign)]);
        let response = http::exchange(addr, &request).await;
        assert_refused(&response, 403, &format!("Origin: {foreign}"));
        let refused = Connect::room(&room).origin(foreign).try_to(addr).await;
        let status = refused.as_ref().err().and_then(refusal_status);
        assert_eq!(
            status,
            Some(403),
            "a client with Origin: {foreign} got {refused:?}"
        );
    }

    let mut same_origin = Connect::room(&room)
        .name("same-origin")
        .origin(&format!("http://{addr}"))
        .to(addr)
        .await;
    let mut allowed_origin = Connect::room(&room)
        .name("allowed-origin")
        .origin(allowed)
        .to(addr)
        .await;
    let mut no_origin = Connect::room(&room).name("no-origin").to(addr).await;
    same_origin.send_chat("three origins, one room").await;
    for client in [&mut same_origin, &mut allowed_origin, &mut no_origin] {
        client.expect_message("three origins, one room").await;
    }

    drop((same_origin, allowed_origin, no_origin));
    server.shutdown().await;
}

/// A plain `GET` on the WebSocket path is 400, a missing key is 400, a wrong
/// `Sec-WebSocket-Version` is 426 (naming version 13), a `POST` is 405,
/// garbage is 400.
pub async fn refuses_malformed_upgrades(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let path = format!("/ws/chat/{}/", unique_room("malformed"));

    let plain = http::exchange(addr, &http::get_request(addr, &path)).await;
    assert_refused(&plain, 400, "a plain GET on the WebSocket path");

    let no_key = http::upgrade_request(addr, &path, &[])
        .replace(&format!("Sec-WebSocket-Key: {}\r\n", http::SAMPLE_KEY), "");
    assert_refused(
        &http::exchange(addr, &no_key).await,
        400,
        "no Sec-WebSocket-Key",
    );

    let version_8 = http::upgrade_request(addr, &path, &[])
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    let response = http::exchange(addr, &version_8).await;
    assert_refused(&response, 426, "Sec-WebSocket-Version: 8");
    assert_eq!(
        response.header("Sec-WebSocket-Version"),
        Some("13"),
        "a 426 should name the supported version"
    );

    let post = http::upgrade_request(addr, &path, &[]).replacen("GET", "POST", 1);
    assert_refused(&http::exchange(addr, &post).await, 405, "a POST upgrade");

    let garbage = "\x16\x03\x01\x02\x00\x01\x00\x01\r\n\r\n";
    assert_refused(&http::exchange(addr, garbage).await, 400, "garbage");

    still_serves(addr, "after_400").await;
    server.shutdown().await;
}

/// At `max_connections`, a further upgrade is refused with 503 while pages
/// are still served; once a connection leaves, a new one gets in.
pub async fn refuses_upgrades_beyond_max_connections(start: Start) {
    let server = start(ServerConfig {
        max_connections: 1,
        ..ServerConfig::default()
    });
    let addr = server.addr();
    let room = unique_room("full");
    let mut first = join(addr, &room, "first").await;

    let path = format!("/ws/chat/{room}/");
    let response = http::exchange(addr, &http::upgrade_request(addr, &path, &[])).await;
    assert_refused(&response, 503, "an upgrade beyond max_connections");
    let refused = Connect::room(&room).name("second").try_to(addr).await;
    let status = refused.as_ref().err().and_then(refusal_status);
    assert_eq!(
        status,
        Some(503),
        "a client beyond max_connections got {refused:?}"
    );
    let page = http::exchange(addr, &http::get_request(addr, "/")).await;
    assert_eq!(
        page.status, 200,
        "pages should be served while WebSockets are full"
    );

    first.send_close(1000, "making room").await;
    first.expect_close(1000).await;
    // The slot is given back when the server has finished with the
    // connection, which it may do just after the close handshake: poll.
    let deadline = Instant::now() + POLL_TIMEOUT;
    let mut second = loop {
        match Connect::room(&room).name("second").try_to(addr).await {
            Ok(client) => break client,
            Err(error) if refusal_status(&error) == Some(503) && Instant::now() < deadline => {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err(error) => panic!(
                "no connection slot came free within {} s of the only client leaving: {error:#}",
                POLL_TIMEOUT.as_secs()
            ),
        }
    };
    second.send_chat("got in").await;
    second.expect_message("got in").await;

    drop((first, second));
    server.shutdown().await;
}

/// A query string on the WebSocket path is ignored: same room.
pub async fn ignores_the_query_string(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();
    let room = unique_room("query");
    let mut plain = join(addr, &room, "plain").await;
    let mut with_query = Connect::path(&format!("/ws/chat/{room}/?token=abc&x=%2F"))
        .name("with-query")
        .to(addr)
        .await;

    with_query.send_chat("same room").await;
    with_query.expect_message("same room").await;
    plain.expect_message("same room").await;

    drop((plain, with_query));
    server.shutdown().await;
}

/// Connections that send nothing, or half a request head, and stay, do not
/// keep others from connecting and chatting.
pub async fn stalled_handshakes_block_no_one(start: Start) {
    let server = start(ServerConfig::default());
    let addr = server.addr();

    let mut stalled = Vec::new();
    for _ in 0..4 {
        let silent = TcpStream::connect(addr)
            .await
            .expect("a raw TCP connect should succeed");
        let mut half = TcpStream::connect(addr)
            .await
            .expect("a raw TCP connect should succeed");
        half.write_all(format!("GET /ws/chat/stalled/ HTTP/1.1\r\nHost: {addr}\r\nUpg").as_bytes())
            .await
            .expect("writing half a head should succeed");
        stalled.push(silent);
        stalled.push(half);
    }
    still_serves(addr, "despite_stalled").await;
    let page = http::exchange(addr, &http::get_request(addr, "/")).await;
    assert_eq!(
        page.status, 200,
        "the page should be served despite stalled handshakes"
    );

    drop(stalled);
    server.shutdown().await;
}
