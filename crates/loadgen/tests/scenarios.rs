//! Every scenario, briefly, against both servers, through the library: the
//! counts must add up (every expected delivery delivered, nothing lost,
//! duplicated or out of order; connections opened and held) and the server
//! process must have been sampled. No timing is asserted.

use std::time::Duration;

use chat_loadgen::capacity::{self, CapacityParams};
use chat_loadgen::client::Target;
use chat_loadgen::connections::{self, ConnectionsParams};
use chat_loadgen::fanout::{self, BusyRoom, FanoutParams};
use chat_loadgen::progress::Progress;
use chat_protocol::ServerConfig;

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

async fn target(addr: std::net::SocketAddr) -> Target {
    Target::resolve(&format!("ws://{addr}"))
        .await
        .expect("the test server's URL resolves")
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
                    Some(std::process::id()),
                    &Progress::hidden(),
                )
                .await
                .expect("fanout runs");
                let r = &outcome.results;
                assert!(r.sent > 0, "{r:?}");
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
                let outcome = fanout::run(&target, &params, None, &Progress::hidden())
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
                let outcome = capacity::run(&target, &params, None, &Progress::hidden())
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
                    Some(std::process::id()),
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
