//! Every scenario, briefly, against both servers, through the library: the
//! counts must add up (every expected delivery delivered, nothing lost,
//! duplicated or out of order; connections opened and held) and the server
//! process must have been sampled. No timing is asserted.
//!
//! And fan-out across two servers sharing rooms through a Redis of the
//! test's own (each server its own instance in this process, with its own
//! Redis connections, as two processes would be): two of each server, and
//! one of each together.

use std::net::SocketAddr;
use std::time::Duration;

use chat_loadgen::capacity::{self, CapacityParams};
use chat_loadgen::client::Target;
use chat_loadgen::connections::{self, ConnectionsParams};
use chat_loadgen::fanout::{self, BusyRoom, FanoutOutcome, FanoutParams};
use chat_loadgen::progress::Progress;
use chat_loadgen::sampler::Watch;
use chat_protocol::ServerConfig;
use chat_protocol::config::Layer;
use chat_testkit::RedisServer;

fn traffic(clients: u64, rooms: u64, senders: u64) -> FanoutParams {
    FanoutParams {
        clients,
        rooms,
        senders_per_room: senders,
        rate_per_s: 50.0,
        payload_bytes: 100,
        warmup: Duration::from_millis(200),
        duration: Duration::from_millis(800),
        drain: Duration::from_secs(10),
        drain_max: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        connect_concurrency: 32,
        busy: None,
    }
}

async fn target(addr: SocketAddr) -> Vec<Target> {
    targets(&[addr]).await
}

async fn targets(addrs: &[SocketAddr]) -> Vec<Target> {
    let mut targets = Vec::new();
    for addr in addrs {
        let target = Target::resolve(&format!("ws://{addr}"))
            .await
            .expect("the test server's URL resolves");
        targets.push(target);
    }
    targets
}

/// A server's config with its rooms on `redis`.
fn on_redis(redis: &RedisServer) -> ServerConfig {
    ServerConfig {
        layer: Layer::Redis,
        redis_urls: vec![redis.url()],
        ..ServerConfig::default()
    }
}

/// Runs fan-out over `addrs` (servers sharing rooms), both "server
/// processes" being this one, and checks every delivery was made once, in
/// one order per room, with members and senders behind both URLs.
async fn fanout_across(addrs: [SocketAddr; 2]) {
    let targets = targets(&addrs).await;
    let urls: Vec<String> = targets.iter().map(|t| t.url.clone()).collect();
    let pid = std::process::id();
    let watch = Watch {
        servers: vec![pid, pid],
        others: vec![("redis".to_owned(), pid)],
    };
    // 4 rooms of 10, 2 senders each.
    let FanoutOutcome {
        results: r,
        server,
        deployment,
        ..
    } = fanout::run(&targets, &traffic(40, 4, 2), &watch, &Progress::hidden())
        .await
        .expect("fanout runs");
    assert!(r.sent > 0, "{r:?}");
    assert_eq!(r.expected_deliveries, r.sent * 10, "{r:?}");
    assert_eq!(r.delivered, r.expected_deliveries, "{r:?}");
    assert_eq!(
        (
            r.lost,
            r.late,
            r.duplicated,
            r.out_of_order,
            r.order_mismatches
        ),
        (0, 0, 0, 0, 0),
        "{r:?}"
    );
    assert_eq!((r.error_replies, r.connect_failures), (0, 0), "{r:?}");
    assert!(r.close_codes.is_empty(), "{r:?}");
    // Spread evenly: each URL has 5 members of every room, one of its 2
    // senders.
    assert_eq!(r.per_url.len(), 2, "{r:?}");
    for (at_url, url) in r.per_url.iter().zip(&urls) {
        assert_eq!(&at_url.url, url);
        assert_eq!((at_url.clients, at_url.senders), (20, 4), "{at_url:?}");
        assert_eq!(at_url.expected_deliveries, r.sent * 5, "{at_url:?}");
        assert_eq!(at_url.delivered, at_url.expected_deliveries, "{at_url:?}");
        assert_eq!(at_url.order_mismatches, 0, "{at_url:?}");
        assert_eq!(at_url.latency_us.count, at_url.delivered, "{at_url:?}");
    }
    assert_eq!(r.latency_us.count, r.delivered, "{r:?}");
    // Both server processes sampled, each with its own URL's share.
    assert_eq!(deployment.urls, urls);
    assert_eq!(deployment.server_processes.len(), 2, "{deployment:?}");
    for (process, url) in deployment.server_processes.iter().zip(&urls) {
        assert_eq!(&process.url, url);
        assert_eq!(process.clients, 20);
        assert_eq!(process.deliveries, Some(r.delivered / 2), "{process:?}");
        assert!(process.process.samples > 0, "{process:?}");
    }
    assert_eq!(
        server.as_ref(),
        Some(&deployment.server_processes[0].process)
    );
    let total = deployment.server_total.as_ref().expect("a total");
    assert_eq!((total.processes, total.deliveries), (2, Some(r.delivered)));
    assert!(deployment.sampled_processes["redis"].samples > 0);
}

macro_rules! scenarios {
    ($server:ident, $spawn:path) => {
        mod $server {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fanout_counts_add_up() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let target = target(server.local_addr()).await;
                let outcome = fanout::run(
                    &target,
                    &traffic(40, 4, 2),
                    &Watch::server(std::process::id()),
                    &Progress::hidden(),
                )
                .await
                .expect("fanout runs");
                let r = &outcome.results;
                assert!(r.sent > 0, "{r:?}");
                assert!(r.per_url.is_empty(), "one URL: {r:?}");
                assert!(outcome.deployment.is_empty(), "{:?}", outcome.deployment);
                // 4 rooms of 10, 2 senders each: every message to 10 members.
                assert_eq!(r.expected_deliveries, r.sent * 10, "{r:?}");
                assert_eq!(r.delivered, r.expected_deliveries, "{r:?}");
                assert_eq!(
                    (r.lost, r.duplicated, r.out_of_order, r.order_mismatches),
                    (0, 0, 0, 0),
                    "{r:?}"
                );
                assert_eq!(r.latency_us.count, r.delivered, "{r:?}");
                assert_eq!(r.connect_us.count, 40, "{r:?}");
                let sampled = outcome.server.expect("server sampled");
                assert!(
                    sampled.samples > 0 && sampled.threads_peak > 0,
                    "{sampled:?}"
                );
                tokio::task::spawn_blocking(move || server.shutdown_and_join())
                    .await
                    .expect("join")
                    .expect("clean shutdown");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_busy_room_is_counted_apart() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let target = target(server.local_addr()).await;
                let params = FanoutParams {
                    busy: Some(BusyRoom {
                        clients: 6,
                        senders: 3,
                        rate_per_s: 100.0,
                    }),
                    ..traffic(10, 1, 1)
                };
                let outcome = fanout::run(&target, &params, &Watch::default(), &Progress::hidden())
                    .await
                    .expect("fanout runs");
                let quiet = &outcome.results;
                let busy = quiet.busy_room.as_deref().expect("the busy room's figures");
                // The quiet room: 1 sender, 10 members; the busy room: 3
                // senders at twice the rate, 6 members.
                assert_eq!(quiet.expected_deliveries, quiet.sent * 10, "{quiet:?}");
                assert_eq!(busy.expected_deliveries, busy.sent * 6, "{busy:?}");
                assert!(busy.sent > 4 * quiet.sent, "{quiet:?} {busy:?}");
                for r in [quiet, busy] {
                    assert_eq!(r.delivered, r.expected_deliveries, "{r:?}");
                    assert_eq!(
                        (r.lost, r.duplicated, r.order_mismatches),
                        (0, 0, 0),
                        "{r:?}"
                    );
                    assert_eq!(r.latency_us.count, r.delivered, "{r:?}");
                }
                assert_eq!((quiet.connect_us.count, busy.connect_us.count), (10, 6));
                assert_eq!(busy.send_lag_us.count, busy.sent);
                assert!(
                    busy.window_deliveries_per_s.is_some_and(|d| d > 0.0),
                    "{busy:?}"
                );
                tokio::task::spawn_blocking(move || server.shutdown_and_join())
                    .await
                    .expect("join")
                    .expect("clean shutdown");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn capacity_steps_up_and_holds() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let target = target(server.local_addr()).await;
                let params = CapacityParams {
                    start: 5,
                    step: 5,
                    max: 15,
                    slo: Duration::from_secs(60),
                    // Two senders, in every step.
                    fanout: traffic(5, 1, 2),
                };
                let outcome =
                    capacity::run(&target, &params, &Watch::default(), &Progress::hidden())
                        .await
                        .expect("capacity runs");
                let steps: Vec<u64> = outcome.results.steps.iter().map(|s| s.clients).collect();
                assert_eq!(steps, [5, 10, 15]);
                for step in &outcome.results.steps {
                    let f = &step.fanout;
                    // Both senders at 50 msg/s for 0.8 s measured.
                    assert!(f.sent > 40, "{f:?}");
                    assert_eq!(f.expected_deliveries, f.sent * step.clients, "{f:?}");
                }
                assert_eq!(outcome.results.capacity_clients, Some(15));
                tokio::task::spawn_blocking(move || server.shutdown_and_join())
                    .await
                    .expect("join")
                    .expect("clean shutdown");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fanout_across_two_servers_on_one_redis() {
                let redis = RedisServer::start();
                let one = $spawn(on_redis(&redis)).expect("server starts");
                let two = $spawn(on_redis(&redis)).expect("server starts");
                fanout_across([one.local_addr(), two.local_addr()]).await;
                for server in [one, two] {
                    tokio::task::spawn_blocking(move || server.shutdown_and_join())
                        .await
                        .expect("join")
                        .expect("clean shutdown");
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn connections_open_and_hold() {
                let server = $spawn(ServerConfig::default()).expect("server starts");
                let target = target(server.local_addr()).await;
                let params = ConnectionsParams {
                    count: 150,
                    hold: Duration::from_millis(300),
                    source_addrs: 3,
                    connect_timeout: Duration::from_secs(10),
                    concurrency: 32,
                    max_failures: 1,
                };
                let outcome = connections::run(
                    &target,
                    &params,
                    &Watch::server(std::process::id()),
                    &Progress::hidden(),
                )
                .await
                .expect("connections runs");
                let r = &outcome.results;
                assert_eq!((r.opened, r.failed, r.held), (150, 0, 150), "{r:?}");
                assert!(r.threads_per_connection.is_some(), "{r:?}");
                assert!(outcome.server.expect("sampled").threads_peak > 0);
                tokio::task::spawn_blocking(move || server.shutdown_and_join())
                    .await
                    .expect("join")
                    .expect("clean shutdown");
            }
        }
    };
}

scenarios!(sync, chat_server_sync::spawn);
scenarios!(async_, chat_server_async::spawn);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_across_sync_and_async_on_one_redis() {
    let redis = RedisServer::start();
    let sync = chat_server_sync::spawn(on_redis(&redis)).expect("chat-sync starts");
    let async_ = chat_server_async::spawn(on_redis(&redis)).expect("chat-async starts");
    fanout_across([sync.local_addr(), async_.local_addr()]).await;
    tokio::task::spawn_blocking(move || {
        sync.shutdown_and_join()
            .expect("chat-sync shuts down cleanly");
        async_
            .shutdown_and_join()
            .expect("chat-async shuts down cleanly");
    })
    .await
    .expect("join");
}
