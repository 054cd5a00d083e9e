//! The Django Channels tutorial chat on the Redis channel layer
//! (`RedisPubSubChannelLayer`): the base of the interoperability test
//! between it and our servers. Needs `redis-server` (bash
//! .ci/install-redis.sh) and PyPI for the Django venv (the first start
//! creates it, about 10 s).

use chat_testkit::{DjangoServer, RedisServer};

/// The seed's consumer publishes each message on the room's Redis channel,
/// `asgi__group__chat_<room>`, as msgpack `{"type": "chat_message",
/// "message": ...}`, and delivers what is published there to its room.
#[tokio::test]
async fn django_tutorial_shares_a_room_through_redis() {
    let redis = RedisServer::start();
    let django = DjangoServer::start(&[redis.url()]).expect("the Django server should start");
    let mut watcher = redis.subscribe("asgi__group__chat_lobby");

    let mut alice = django.connect("lobby", "alice").await;
    let mut bob = django.connect("lobby", "bob").await;
    alice.send_chat("hello from alice").await;
    alice.expect_message("hello from alice").await;
    bob.expect_message("hello from alice").await;

    // What went over Redis: one PUBLISH of the seed's event on the room's
    // channel.
    let (channel, payload) = watcher.recv();
    assert_eq!(channel, "asgi__group__chat_lobby");
    assert_eq!(
        payload, b"\x82\xa4type\xacchat_message\xa7message\xb0hello from alice",
        "msgpack {{\"type\": \"chat_message\", \"message\": \"hello from alice\"}}"
    );

    // And what another process publishes there reaches both Django clients
    // (the tutorial's own spelling of the type, `chat.message`, as a Rust
    // server may send it). Two subscribers: Django's process and ours.
    let receivers = redis.publish(
        "asgi__group__chat_lobby",
        &chat_event("chat.message", "from elsewhere"),
    );
    assert_eq!(receivers, 2, "subscribers of asgi__group__chat_lobby");
    alice.expect_message("from elsewhere").await;
    bob.expect_message("from elsewhere").await;

    let status = django.stop().expect("Django should stop on SIGTERM");
    assert!(
        status.success(),
        "Daphne should exit 0 on SIGTERM, got {status}"
    );
}

/// A URL that is not a Redis URL stops Django at start-up (settings.py),
/// and the fixture reports that it exited instead of waiting for an address.
#[test]
fn django_refuses_a_channel_layer_url_that_is_not_redis() {
    let error = match DjangoServer::start(&["http://127.0.0.1:1".to_owned()]) {
        Ok(django) => panic!(
            "Django started at {} with an http:// layer URL",
            django.addr()
        ),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("without printing its address"),
        "unexpected error: {error}"
    );
}

/// msgpack of `{"type": kind, "message": message}`, keys in that order, as
/// Python's `msgpack.packb` writes the seed's event; short strings only
/// (fixstr, under 32 bytes), which is all this test sends.
fn chat_event(kind: &str, message: &str) -> Vec<u8> {
    let mut bytes = vec![0x82];
    for text in ["type", kind, "message", message] {
        let len = u8::try_from(text.len())
            .ok()
            .filter(|len| *len < 32)
            .unwrap_or_else(|| panic!("{text:?} is too long for a fixstr"));
        bytes.push(0xa0 | len);
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}
