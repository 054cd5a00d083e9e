//! The Redis layer (`--layer redis`) across processes: our two servers,
//! several processes of each, one Redis or two shards, Redis stopped and
//! restarted, and the Django Channels tutorial in the same room.
//!
//! Each test starts its own Redis (`chat_testkit::RedisServer`: a free port,
//! a temporary directory, no persistence; it fails saying how to install
//! `redis-server` if it is missing) and its own servers, in process, on port
//! 0. Every wait is bounded; absence is proved with a barrier message.

use std::net::SocketAddr;

use chat_protocol::ServerConfig;
use chat_protocol::config::Layer;
use chat_protocol::layer;
use chat_protocol::room::RoomName;
use chat_testkit::{Client, DjangoServer, RedisServer, refusal_status, unique_room};

/// A server process of either kind, on the Redis layer.
struct Process {
    label: &'static str,
    addr: SocketAddr,
    stop: Box<dyn FnOnce() -> std::io::Result<()> + Send>,
}

fn config(redis_urls: &[String]) -> ServerConfig {
    ServerConfig {
        layer: Layer::Redis,
        redis_urls: redis_urls.to_vec(),
        ..ServerConfig::default()
    }
}

fn start_sync(redis_urls: &[String]) -> Process {
    let handle = chat_server_sync::spawn(config(redis_urls)).expect("chat-sync should start");
    Process {
        label: "sync",
        addr: handle.local_addr(),
        stop: Box::new(move || handle.shutdown_and_join()),
    }
}

fn start_async(redis_urls: &[String]) -> Process {
    let handle = chat_server_async::spawn(config(redis_urls)).expect("chat-async should start");
    Process {
        label: "async",
        addr: handle.local_addr(),
        stop: Box::new(move || handle.shutdown_and_join()),
    }
}

/// Two of each, on the same Redis shards.
fn four_processes(redis_urls: &[String]) -> Vec<Process> {
    vec![
        start_sync(redis_urls),
        start_async(redis_urls),
        start_sync(redis_urls),
        start_async(redis_urls),
    ]
}

async fn stop_all(processes: Vec<Process>) {
    for process in processes {
        let label = process.label;
        tokio::task::spawn_blocking(process.stop)
            .await
            .expect("the shutdown thread panicked")
            .unwrap_or_else(|error| panic!("{label} did not shut down cleanly: {error}"));
    }
}

async fn connect(process: &Process, room: &str, name: &str) -> Client {
    chat_testkit::Connect::room(room)
        .name(&format!("{name}@{}:{}", process.label, process.addr.port()))
        .to(process.addr)
        .await
}

/// Reads `count` chat messages.
async fn read_messages(client: &mut Client, count: usize) -> Vec<String> {
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        messages.push(client.recv_message().await);
    }
    messages
}

/// Members spread over four processes (two sync, two async) on one Redis,
/// one sender in each, all sending at once: every member receives every
/// message exactly once, all in one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_one_redis_one_order() {
    let redis = RedisServer::start();
    let processes = four_processes(&[redis.url()]);
    one_order_across(&processes, &unique_room("four_processes")).await;
    stop_all(processes).await;
}

/// The same with two Redis shards, for a room on each shard (chosen by
/// channels_redis' hash), and each room's messages go through its shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_one_order_per_room() {
    let shards = [RedisServer::start(), RedisServer::start()];
    let urls: Vec<String> = shards.iter().map(RedisServer::url).collect();
    let processes = four_processes(&urls);
    for (index, shard) in shards.iter().enumerate() {
        let room = room_on_shard(index, urls.len());
        let channel = layer::group_channel("asgi", &RoomName::new(&room).expect("room"));
        let mut watcher = shard.subscribe(&channel);
        one_order_across(&processes, &room).await;
        let (seen_on, payload) = watcher.recv();
        assert_eq!(seen_on, channel, "shard {index} carried the room's channel");
        layer::decode_chat(&payload).expect("a chat event on the shard");
    }
    stop_all(processes).await;
}

/// A unique room whose channel lands on shard `index` of `shards`.
fn room_on_shard(index: usize, shards: usize) -> String {
    loop {
        let room = unique_room("shard");
        let channel = layer::group_channel("asgi", &RoomName::new(&room).expect("room"));
        if layer::shard(&channel, shards) == index {
            return room;
        }
    }
}

/// Two members per process in `room`, one sender per process sending
/// [`PER_SENDER`] messages at once; checks exactly-once and one order.
async fn one_order_across(processes: &[Process], room: &str) {
    const PER_SENDER: usize = 25;
    let mut members = Vec::new();
    for (p, process) in processes.iter().enumerate() {
        for m in 0..2 {
            members.push(connect(process, room, &format!("member{p}.{m}")).await);
        }
    }
    let total = PER_SENDER * processes.len();
    for round in 0..PER_SENDER {
        for (p, sender) in members.iter_mut().step_by(2).enumerate() {
            sender.send_chat(&format!("p{p}-{round}")).await;
        }
    }
    let mut orders = Vec::new();
    for member in &mut members {
        orders.push((
            member.label().to_owned(),
            read_messages(member, total).await,
        ));
    }
    let (first_label, first) = &orders[0];
    let mut sorted = first.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        total,
        "{first_label}: every message exactly once"
    );
    for (label, order) in &orders[1..] {
        assert_eq!(
            order, first,
            "{label} and {first_label} saw different orders"
        );
    }
}

/// Rooms stay separate across processes: a member of another room, on
/// another process, receives nothing of this room's (its next message is
/// its own room's barrier).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_stay_separate_across_processes() {
    let redis = RedisServer::start();
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    let (one, two) = (unique_room("separate_one"), unique_room("separate_two"));
    let mut speaker = connect(&processes[0], &one, "speaker").await;
    let mut listener = connect(&processes[1], &one, "listener").await;
    let mut other = connect(&processes[1], &two, "other").await;
    let mut other_sync = connect(&processes[0], &two, "other-sync").await;
    speaker.send_chat("for room one").await;
    listener.expect_message("for room one").await;
    speaker.expect_message("for room one").await;
    other_sync.send_chat("barrier").await;
    other.expect_message("barrier").await;
    other_sync.expect_message("barrier").await;
    drop((speaker, listener, other, other_sync));
    stop_all(processes).await;
}

/// What another process publishes on a room's channel that is not a chat
/// event (garbage, another `type`, a `message` that is not text) is skipped
/// by both servers, which go on: their members' next message is the valid
/// event published after it, in Django's spelling of the type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_group_messages_are_skipped() {
    let redis = RedisServer::start();
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    let room = unique_room("undecodable");
    let channel = layer::group_channel("asgi", &RoomName::new(&room).expect("room"));
    let mut members = Vec::new();
    for process in &processes {
        members.push(connect(process, &room, "member").await);
    }
    let garbage: [&[u8]; 3] = [
        b"\xc1garbage",
        // {"type": "rust.presence", "message": "x"}
        b"\x82\xa4type\xadrust.presence\xa7message\xa1x",
        // {"type": "chat_message", "message": 7}
        b"\x82\xa4type\xacchat_message\xa7message\x07",
    ];
    for payload in garbage {
        assert_eq!(
            redis.publish(&channel, payload),
            2,
            "both processes subscribed"
        );
    }
    // {"type": "chat.message", "message": "valid"}
    redis.publish(
        &channel,
        b"\x82\xa4type\xacchat.message\xa7message\xa5valid",
    );
    for member in &mut members {
        member.expect_message("valid").await;
    }
    drop(members);
    stop_all(processes).await;
}

/// Redis refusing a publish (here, its ACL: no `PUBLISH` for anyone) gets
/// the sender an error reply, nobody the message, and the server goes on
/// once Redis takes messages again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_gets_an_error_reply() {
    let redis = RedisServer::start();
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    let room = unique_room("refused_publish");
    let mut members = Vec::new();
    for process in &processes {
        members.push(connect(process, &room, "member").await);
    }
    acl(&redis, "-publish");
    for member in &mut members {
        member.send_chat("refused").await;
        let error = member.expect_error().await;
        assert!(
            error.contains("Redis"),
            "{}: error {error:?}",
            member.label()
        );
    }
    acl(&redis, "+publish");
    members[0].send_chat("accepted").await;
    for member in &mut members {
        // The next message is the accepted one: the refused ones reached no
        // one.
        member.expect_message("accepted").await;
    }
    drop(members);
    stop_all(processes).await;
}

/// `ACL SETUSER default <rule>` on `redis`.
fn acl(redis: &RedisServer, rule: &str) {
    let client = redis::Client::open(redis.url()).expect("Redis URL");
    let mut connection = client.get_connection().expect("connect to Redis");
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg(rule)
        .query::<()>(&mut connection)
        .expect("ACL SETUSER");
}

/// Redis stopped: every member of both servers is closed with 1012 (it may
/// have missed messages); Redis restarted: new clients are served again,
/// without restarting our servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_closes_members_1012_and_service_returns() {
    let mut redis = RedisServer::start();
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    let room = unique_room("restart");
    let mut members = Vec::new();
    for process in &processes {
        members.push(connect(process, &room, "before").await);
    }
    redis.stop();
    for member in &mut members {
        let frame = member.expect_close(1012).await;
        assert!(frame.reason.contains("Redis"), "reason {:?}", frame.reason);
    }
    redis.restart();
    let mut after = Vec::new();
    for process in &processes {
        after.push(connect(process, &room, "after").await);
    }
    after[1].send_chat("back").await;
    for member in &mut after {
        member.expect_message("back").await;
    }
    drop(after);
    stop_all(processes).await;
}

/// Polls `PUBSUB NUMSUB channel` until it reaches `count`, up to
/// [`chat_testkit::STEP_TIMEOUT`].
async fn wait_for_subscribers(redis: &RedisServer, channel: &str, count: i64) {
    let client = redis::Client::open(redis.url()).expect("Redis URL");
    let mut connection = client.get_connection().expect("connect to Redis");
    let deadline = std::time::Instant::now() + chat_testkit::STEP_TIMEOUT;
    loop {
        let (_, subscribers): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut connection)
            .expect("PUBSUB NUMSUB");
        if subscribers >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{channel} has {subscribers} subscribers, not {count}"
        );
        tokio::time::sleep(chat_testkit::POLL_INTERVAL).await;
    }
}

/// A Redis that does not answer at start-up: neither server starts.
#[test]
fn unreachable_redis_fails_the_start() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let urls = [format!("redis://127.0.0.1:{port}")];
    let sync = chat_server_sync::spawn(config(&urls)).err();
    let async_ = chat_server_async::spawn(config(&urls)).err();
    for (label, error) in [("sync", sync), ("async", async_)] {
        let error = error.unwrap_or_else(|| panic!("{label} started without Redis"));
        assert!(
            error.to_string().contains("cannot reach Redis"),
            "{label}: {error}"
        );
    }
}

/// While its Redis is down, a joining client is refused with 503 once the
/// subscription cannot be confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_while_redis_is_down_is_refused_503() {
    let mut redis = RedisServer::start();
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    redis.stop();
    for process in &processes {
        let refused = chat_testkit::Connect::room(&unique_room("down"))
            .try_to(process.addr)
            .await
            .err()
            .unwrap_or_else(|| panic!("{} let a client in without Redis", process.label));
        assert_eq!(refusal_status(&refused), Some(503), "{refused:#}");
    }
    stop_all(processes).await;
}

/// The Django Channels tutorial (channels 4.3.2, channels-redis 4.3.0,
/// `RedisPubSubChannelLayer`, under Daphne) and both of our servers on one
/// Redis, one client each in one room: each receives every message, in one
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_and_both_servers_share_a_room() {
    let redis = RedisServer::start();
    let django = DjangoServer::start(&[redis.url()]).expect("the Django server should start");
    let processes = vec![start_sync(&[redis.url()]), start_async(&[redis.url()])];
    let room = unique_room("django");
    let mut rust_sync = connect(&processes[0], &room, "rust").await;
    let mut rust_async = connect(&processes[1], &room, "rust").await;
    let mut python = django.connect(&room, "django").await;
    // Django's consumer subscribes without waiting for Redis's
    // confirmation, so its client may be in the room before its process is:
    // wait (bounded) until Redis counts three subscribed processes.
    let channel = layer::group_channel("asgi", &RoomName::new(&room).expect("room"));
    wait_for_subscribers(&redis, &channel, 3).await;
    let texts = ["from sync", "from async", "from django"];
    rust_sync.send_chat(texts[0]).await;
    rust_async.send_chat(texts[1]).await;
    python.send_chat(texts[2]).await;
    let mut orders = Vec::new();
    for client in [&mut rust_sync, &mut rust_async, &mut python] {
        let mut got = read_messages(client, texts.len()).await;
        orders.push(got.clone());
        got.sort_unstable();
        let mut want = texts.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{}: every message once", client.label());
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "one order: {orders:?}"
    );
    drop((rust_sync, rust_async, python));
    stop_all(processes).await;
    django.stop().expect("Django should stop");
}
