//! The soak, for a few seconds, against both servers in this process: it
//! must pass (everything delivered once and in order, every slow reader
//! closed 1013, every bad client answered), and its record must be
//! complete (a sample before the load, samples during it, one after).
//!
//! The servers run with a small outbox (64 frames) so that a short burst
//! outgrows it: this is a debug build, and the default burst sized for the
//! default outbox of 1,024 frames would take most of the test's time.

use std::time::Duration;

use chat_loadgen::client::Target;
use chat_loadgen::soak::{self, SoakConfig};
use chat_protocol::ServerConfig;
use chat_record::soak::SoakRecord;

/// A few seconds of every part of the load.
fn config(label: &str) -> SoakConfig {
    SoakConfig {
        label: label.to_owned(),
        duration: Duration::from_secs(6),
        sample_interval: Duration::from_secs(1),
        room_sizes: vec![2, 5, 10],
        churn_per_s: 10.0,
        // Episodes at 1.5 and 4.5 s.
        slow_reader_every: Duration::from_secs(3),
        // 600 of 16 KiB: ~9.4 MiB, past a 4 MiB send buffer and 64 frames.
        slow_burst: 600,
        slow_message_bytes: 16 * 1024,
        // 12 bad clients: every kind at least once.
        bad_client_every: Duration::from_millis(500),
        ..SoakConfig::default()
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        outbox_capacity: 64,
        ..ServerConfig::default()
    }
}

async fn soak_passes(label: &str, addr: std::net::SocketAddr) {
    let target = Target::resolve(&format!("ws://{addr}"))
        .await
        .expect("the test server's URL resolves");
    let config = config(label);
    let run = soak::run(target, config.clone(), std::process::id())
        .await
        .expect("the soak runs");
    let t = &run.totals;
    assert!(run.passed, "{label}: {:#?}\n{t:#?}", run.warnings);
    assert!(t.sent > 0 && t.expected > t.sent, "{t:?}");
    assert_eq!((t.delivered, t.lost), (t.expected, 0), "{t:?}");
    assert_eq!((t.duplicates, t.out_of_order), (0, 0), "{t:?}");
    assert_eq!((t.unexpected_closes, t.foreign_frames), (0, 0), "{t:?}");
    assert!(t.churn_cycles >= 30 && t.churn_failures == 0, "{t:?}");
    assert_eq!(
        (t.slow_readers, t.slow_readers_closed_1013),
        (2, 2),
        "{t:?}"
    );
    assert!(t.bad_clients >= 7, "every kind at least once: {t:?}");
    assert_eq!(t.bad_clients_answered, t.bad_clients, "{t:?}");

    // A sample before the load (no client yet), one a second, one after.
    let samples = &run.samples;
    assert!(samples.len() >= 6, "{samples:?}");
    assert_eq!(samples[0].client_connections, 0, "{samples:?}");
    assert_eq!(samples[0].delivered, 0, "{samples:?}");
    assert!(
        samples.windows(2).all(|w| w[0].t_s < w[1].t_s),
        "{samples:?}"
    );
    assert!(
        samples
            .iter()
            .all(|s| s.rss_kib > 0 && s.threads > 0 && s.fds > 0)
    );
    assert!(
        samples.iter().any(|s| s.client_connections > 17),
        "{samples:?}"
    );
    let last = samples.last().expect("samples");
    assert_eq!(last.delivered, t.delivered, "{samples:?}");
    assert!(last.cpu_s >= samples[0].cpu_s);

    // The record round-trips as one JSON line.
    let record = SoakRecord {
        scenario: "soak".into(),
        server: label.into(),
        commit: "test".into(),
        started_at: "now".into(),
        url: format!("ws://{addr}"),
        command: "cargo test".into(),
        params: config.params(),
        samples: run.samples.clone(),
        totals: run.totals.clone(),
        passed: run.passed,
        warnings: run.warnings.clone(),
    };
    let line = serde_json::to_string(&record).expect("encodes");
    assert!(!line.contains('\n'));
    let back: SoakRecord = serde_json::from_str(&line).expect("reads back");
    assert_eq!(back.totals, record.totals);
    assert_eq!(back.params.senders_per_room, 2);
    assert_eq!(back.params.room_sizes, [2, 5, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_passes_against_sync() {
    let server = chat_server_sync::spawn(server_config()).expect("chat-sync starts");
    soak_passes("sync", server.local_addr()).await;
    tokio::task::spawn_blocking(move || server.shutdown_and_join())
        .await
        .expect("join")
        .expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_passes_against_async() {
    let server = chat_server_async::spawn(server_config()).expect("chat-async starts");
    soak_passes("async", server.local_addr()).await;
    tokio::task::spawn_blocking(move || server.shutdown_and_join())
        .await
        .expect("join")
        .expect("clean shutdown");
}
