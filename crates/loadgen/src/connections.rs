//! The `connections` scenario: open N idle connections as fast as the server
//! accepts them, hold them, close them; what each connection costs the
//! server in threads and memory, and where it stops accepting.
//!
//! One source address has about 28,000 ephemeral ports toward one server
//! port, so connections are spread over `--source-addrs` loopback addresses
//! (127.0.0.1, 127.0.0.2, ...). The caller raises the open-files limit.
//!
//! Against several URLs, connections are spread over them as fan-out's
//! members are ([`spread`]), and the servers' threads and memory per
//! connection are those of every server process added up.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chat_protocol::RoomName;
use chat_protocol::tungstenite::Message;
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Connection, Target, spread};
use crate::fanout::run_tag;
use crate::progress::Progress;
use crate::sampler::{self, Reading, Samplers, Share, Watch};
use crate::tally::SharedHistogram;
use chat_record::{ConnectionsResults, Deployment, ProcessFigures};

/// Members per room: idle connections are spread over rooms of this size.
const ROOM_SIZE: u64 = 100;

/// What a connections run does.
#[derive(Debug, Clone)]
pub struct ConnectionsParams {
    /// Connections to open.
    pub count: u64,
    /// How long to hold them once open.
    pub hold: Duration,
    /// Loopback source addresses to spread them over (1 to 254).
    pub source_addrs: u8,
    /// Longest wait for one connection.
    pub connect_timeout: Duration,
    /// Connections opened at once.
    pub concurrency: usize,
    /// Failures after which no new connection is tried.
    pub max_failures: u64,
}

/// What a connections run measured.
#[derive(Debug, Clone)]
pub struct ConnectionsOutcome {
    /// The figures.
    pub results: ConnectionsResults,
    /// The server process, if sampled (the first, if several).
    pub server: Option<ProcessFigures>,
    /// The load generator itself.
    pub loadgen: ProcessFigures,
    /// The URLs and processes beyond the first, and the others sampled.
    pub deployment: Deployment,
}

/// Runs the scenario against `targets` (one, or several server processes),
/// sampling the processes of `watch`.
pub async fn run(
    targets: &[Target],
    params: &ConnectionsParams,
    watch: &Watch,
    progress: &Progress,
) -> anyhow::Result<ConnectionsOutcome> {
    if params.source_addrs == 0 || params.source_addrs == 255 {
        bail!("--source-addrs must be between 1 and 254");
    }
    if targets.is_empty() {
        bail!("no URL to drive");
    }
    watch.check(targets.len())?;
    let urls: Vec<String> = targets.iter().map(|t| t.url.clone()).collect();
    let tag = run_tag();
    let before = read_servers(&watch.servers)?;
    let mut samplers = Samplers::start(watch)?;
    samplers.begin_window().await;

    progress.phase(
        &format!("opening {} connections", params.count),
        params.count,
    );
    let connect_us = SharedHistogram::default();
    let failures = AtomicU64::new(0);
    let gave_up = AtomicBool::new(false);
    let first_failure = std::sync::Mutex::new(None::<String>);
    let closed_by_server = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut last_opened = started;
    let mut holders = Vec::new();
    let rooms = params.count.div_ceil(ROOM_SIZE);
    let mut attempts = futures_util::stream::iter(0..params.count)
        .map(|i| {
            let (failures, gave_up, first_failure) = (&failures, &gave_up, &first_failure);
            let tag = &tag;
            async move {
                if gave_up.load(Ordering::Relaxed) {
                    return None;
                }
                let url = spread(i % rooms, i / rooms, targets.len());
                let room = RoomName::new(&format!("{tag}_{}", i % rooms)).ok()?;
                let source = (params.source_addrs > 1).then(|| {
                    IpAddr::V4(Ipv4Addr::new(
                        127,
                        0,
                        0,
                        1 + (i % u64::from(params.source_addrs)) as u8,
                    ))
                });
                match targets[url]
                    .connect(&room, source, params.connect_timeout)
                    .await
                {
                    Ok((ws, took)) => Some((ws, took, url)),
                    Err(error) => {
                        let failed = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        if failed >= params.max_failures {
                            gave_up.store(true, Ordering::Relaxed);
                        }
                        let mut first = first_failure
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        first.get_or_insert_with(|| format!("after {i} attempts: {error:#}"));
                        None
                    }
                }
            }
        })
        .buffer_unordered(params.concurrency.max(1));
    let mut shares = vec![Share::default(); targets.len()];
    while let Some(attempt) = attempts.next().await {
        progress.inc();
        if let Some((ws, took, url)) = attempt {
            shares[url].clients += 1;
            connect_us.record_all(&[took.as_micros() as u64]);
            last_opened = Instant::now();
            holders.push(tokio::spawn(hold(
                ws,
                stop.clone(),
                Arc::clone(&closed_by_server),
            )));
        }
    }
    drop(attempts);
    let opened = holders.len() as u64;
    let opening_secs = last_opened.duration_since(started).as_secs_f64();
    let loaded = read_servers(&watch.servers).context("server gone")?;

    progress.phase(
        &format!("holding {opened} connections"),
        params.hold.as_secs().max(1),
    );
    let ticker = progress.tick_every_second();
    tokio::time::sleep(params.hold).await;
    ticker.abort();
    let closed = closed_by_server.load(Ordering::Relaxed);
    let (server, loadgen, deployment) = samplers.finish(None).await.into_parts(&urls, &shares);

    progress.phase("closing", 1);
    stop.cancel();
    for holder in holders {
        let _ = holder.await;
    }
    progress.finish();

    let mut results = ConnectionsResults {
        target: params.count,
        opened,
        failed: failures.load(Ordering::Relaxed),
        first_failure: first_failure
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        held: opened - closed,
        connect_us: connect_us.summary(),
        handshakes_per_s: if opening_secs > 0.0 {
            opened as f64 / opening_secs
        } else {
            0.0
        },
        server_before: before.map(|r| r.sample()),
        server_loaded: loaded.map(|r| r.sample()),
        ..ConnectionsResults::default()
    };
    if let (Some(before), Some(loaded)) = (before, loaded)
        && opened > 0
    {
        results.threads_per_connection =
            Some((loaded.threads as f64 - before.threads as f64) / opened as f64);
        results.rss_per_connection_kib =
            Some((loaded.rss_kib as f64 - before.rss_kib as f64) / opened as f64);
    }
    Ok(ConnectionsOutcome {
        results,
        server,
        loadgen,
        deployment,
    })
}

/// The server processes' threads and RSS, added up; none without a pid.
fn read_servers(pids: &[u32]) -> anyhow::Result<Option<Reading>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = Reading::default();
    for &pid in pids {
        let reading = sampler::read(pid)?;
        total.threads += reading.threads;
        total.rss_kib += reading.rss_kib;
        total.cpu_user_s += reading.cpu_user_s;
        total.cpu_system_s += reading.cpu_system_s;
    }
    Ok(Some(total))
}

/// Holds one idle connection (answering pings) until stopped; counts it if
/// the server closes it first.
async fn hold(mut ws: Connection, stop: CancellationToken, closed_by_server: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
            next = ws.next() => match next {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    closed_by_server.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
        }
    }
}
