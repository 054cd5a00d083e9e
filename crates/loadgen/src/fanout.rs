//! The `fanout` scenario: clients spread evenly over rooms, open-loop
//! senders in each room, and every delivery accounted for.
//!
//! 1. Connect every client (bounded concurrency), timing each handshake.
//! 2. Start one receiving task per client and one sending task per sender.
//!    Senders follow their [`Schedule`] from a common start; the first
//!    `--warmup` seconds are not measured.
//! 3. When the senders are done, wait (bounded) until every measured message
//!    has reached every member of its room, then stop and account: sent,
//!    expected, delivered, lost, duplicated, out of order, the order of each
//!    room, error replies and close codes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use chat_protocol::RoomName;
use chat_protocol::message::{ServerFrame, encode_client};
use chat_protocol::tungstenite::Message;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Connection, Target};
use crate::probe::Probe;
use crate::progress::Progress;
use crate::record::{FanoutResults, ProcessFigures};
use crate::sampler::Sampler;
use crate::schedule::Schedule;
use crate::tally::{self, ReceiverTally, SharedHistogram, Window};

/// Time between connecting the last client and the first scheduled send.
const START_DELAY: Duration = Duration::from_millis(200);

/// How often the drain checks whether everything has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// What a fan-out run does.
#[derive(Debug, Clone)]
pub struct FanoutParams {
    /// Clients in all.
    pub clients: u64,
    /// Rooms, the clients spread evenly over them.
    pub rooms: u64,
    /// Senders per room (they receive too).
    pub senders_per_room: u64,
    /// Messages per second, per sender.
    pub rate_per_s: f64,
    /// Bytes of each message's text.
    pub payload_bytes: usize,
    /// Load before measuring.
    pub warmup: Duration,
    /// Measured load.
    pub duration: Duration,
    /// After the senders stop, the wait for the last deliveries ends when
    /// none has arrived for this long (what is missing then is lost)...
    pub drain: Duration,
    /// ...or at this cap, while deliveries still arrive (what is missing
    /// then is late).
    pub drain_max: Duration,
    /// Longest wait for one connection.
    pub connect_timeout: Duration,
    /// Connections opened at once.
    pub connect_concurrency: usize,
}

impl FanoutParams {
    /// Checks the parameters against each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.rooms == 0 || self.clients < self.rooms {
            bail!(
                "--clients ({}) must be at least --rooms ({}), and rooms at least 1",
                self.clients,
                self.rooms
            );
        }
        if self.senders_per_room == 0 || self.senders_per_room > self.clients / self.rooms {
            bail!(
                "--senders ({}) must be between 1 and the clients per room ({})",
                self.senders_per_room,
                self.clients / self.rooms
            );
        }
        if !(self.rate_per_s > 0.0 && self.rate_per_s.is_finite()) {
            bail!("--rate must be a positive number of messages per second");
        }
        if self.duration.is_zero() {
            bail!("--duration must be positive");
        }
        Ok(())
    }
}

/// What a fan-out run measured.
#[derive(Debug, Clone)]
pub struct FanoutOutcome {
    /// The counts and latencies.
    pub results: FanoutResults,
    /// The server process, if sampled.
    pub server: Option<ProcessFigures>,
    /// The load generator itself.
    pub loadgen: ProcessFigures,
    /// Failures to report.
    pub warnings: Vec<String>,
}

/// The run's clock: µs since its start.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_us(self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }

    fn at(self, us: u64) -> Instant {
        self.0 + Duration::from_micros(us)
    }
}

/// What a sender did.
struct SenderTally {
    id: u32,
    room: usize,
    schedule: Schedule,
    /// Measured messages: sequence numbers `lo..hi`, all sent.
    lo: u32,
    hi: u32,
    lag_us: Vec<u64>,
    failed: bool,
}

/// A unique prefix for this run's room names, so runs never share rooms.
pub fn run_tag() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "lg{}_{}_{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// Runs the scenario against `target`.
pub async fn run(
    target: &Target,
    params: &FanoutParams,
    server_pid: Option<u32>,
    progress: &Progress,
) -> anyhow::Result<FanoutOutcome> {
    params.validate()?;
    let tag = run_tag();
    let rooms: Vec<RoomName> = (0..params.rooms)
        .map(|r| RoomName::new(&format!("{tag}_{r}")).context("room name"))
        .collect::<anyhow::Result<_>>()?;

    let mut server = server_pid.map(Sampler::start).transpose()?;
    let mut loadgen = Sampler::start(std::process::id())?;

    // 1. Connect.
    progress.phase(
        &format!("connecting {} clients", params.clients),
        params.clients,
    );
    let connect_us = SharedHistogram::default();
    let mut members: Vec<Vec<Connection>> = (0..rooms.len()).map(|_| Vec::new()).collect();
    let mut connect_failures = 0;
    let mut first_failure = None;
    let mut connects = futures_util::stream::iter(0..params.clients as usize)
        .map(|i| {
            let room = &rooms[i % rooms.len()];
            async move { (i, target.connect(room, None, params.connect_timeout).await) }
        })
        .buffer_unordered(params.connect_concurrency.max(1));
    while let Some((i, connected)) = connects.next().await {
        progress.inc();
        match connected {
            Ok((ws, took)) => {
                connect_us.record_all(&[took.as_micros() as u64]);
                members[i % rooms.len()].push(ws);
            }
            Err(error) => {
                connect_failures += 1;
                first_failure.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    drop(connects);
    if members
        .iter()
        .any(|m| (m.len() as u64) < params.senders_per_room)
    {
        bail!(
            "too few clients connected ({connect_failures} failed; first: {})",
            first_failure.unwrap_or_default()
        );
    }

    // 2. Receive and send.
    let clock = Clock(Instant::now());
    let start_us = clock.now_us() + START_DELAY.as_micros() as u64;
    let window = Window {
        start_us: start_us + params.warmup.as_micros() as u64,
        end_us: start_us + (params.warmup + params.duration).as_micros() as u64,
    };
    let latency = SharedHistogram::default();
    let arrivals = Arc::new(Arrivals::default());
    let stop = CancellationToken::new();
    let total_senders = params.rooms * params.senders_per_room;
    let room_sizes: Vec<u64> = members.iter().map(|m| m.len() as u64).collect();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let mut idle_sinks = Vec::new();
    for (room, connections) in members.into_iter().enumerate() {
        for (k, ws) in connections.into_iter().enumerate() {
            let (sink, stream) = ws.split();
            receivers.push(tokio::spawn(receive(
                stream,
                room,
                window,
                latency.clone(),
                Arc::clone(&arrivals),
                clock,
                stop.clone(),
            )));
            if (k as u64) < params.senders_per_room {
                let id = room as u64 * params.senders_per_room + k as u64;
                let schedule = Schedule::new(start_us, params.rate_per_s, id, total_senders);
                senders.push(tokio::spawn(send(
                    sink,
                    id as u32,
                    room,
                    schedule,
                    window,
                    params.payload_bytes,
                    clock,
                )));
            } else {
                idle_sinks.push(sink);
            }
        }
    }

    let run_secs = (params.warmup + params.duration).as_secs();
    progress.phase(&format!("{} s of load", run_secs), run_secs.max(1));
    let ticker = progress.tick_every_second();
    tokio::time::sleep_until(clock.at(window.start_us)).await;
    if let Some(server) = server.as_mut() {
        server.begin_window().await;
    }
    loadgen.begin_window().await;

    let mut sender_tallies = Vec::new();
    let mut sinks = Vec::new();
    for sender in senders {
        let (tally, sink) = sender.await.context("a sender task panicked")?;
        sender_tallies.push(tally);
        sinks.push(sink);
    }
    ticker.abort();

    // 3. Drain, then account.
    let expected: u64 = sender_tallies
        .iter()
        .map(|s| u64::from(s.hi - s.lo) * room_sizes[s.room])
        .sum();
    progress.phase("draining", 1);
    let drain_start = Instant::now();
    let drain = drain(&arrivals, expected, params.drain, params.drain_max).await;
    let drain_end_us = clock.now_us();
    let delivered_count = arrivals.measured.load(Ordering::Relaxed);
    let server = match server {
        Some(server) => Some(server.finish(Some(delivered_count)).await),
        None => None,
    };
    let loadgen = loadgen.finish(Some(delivered_count)).await;
    stop.cancel();
    let mut tallies = Vec::new();
    for receiver in receivers {
        tallies.push(receiver.await.context("a receiver task panicked")?);
    }
    close_all(sinks.into_iter().chain(idle_sinks)).await;
    progress.finish();

    let mut results = account(
        &sender_tallies,
        &tallies,
        expected,
        params.duration,
        arrivals
            .last_measured_us
            .load(Ordering::Relaxed)
            .saturating_sub(window.start_us) as f64
            / 1e6,
        (drain == Drain::Capped).then_some(drain_end_us),
        &latency,
    );
    results.drain_s = drain_start.elapsed().as_secs_f64();
    results.latency_us = latency.summary();
    results.connect_us = connect_us.summary();
    results.connect_failures = connect_failures;
    let mut lag = tally::new_histogram();
    for sender in &sender_tallies {
        for &value in &sender.lag_us {
            lag.saturating_record(value.max(1));
        }
    }
    results.send_lag_us = tally::summarize(&lag);
    let mut warnings = Vec::new();
    let failed = sender_tallies.iter().filter(|s| s.failed).count();
    if failed > 0 {
        warnings.push(format!(
            "{failed} sender(s) could not send (connection closed by the server)"
        ));
    }
    if let Some(first_failure) = first_failure {
        warnings.push(format!(
            "{connect_failures} client(s) could not connect; first: {first_failure}"
        ));
    }
    Ok(FanoutOutcome {
        results,
        server,
        loadgen,
        warnings,
    })
}

/// How the wait for the last deliveries ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// Everything arrived.
    Complete,
    /// Nothing arrived for the stall time: what is missing is lost.
    Stalled,
    /// The cap passed while deliveries still arrived: what is missing is
    /// late.
    Capped,
}

/// Deliveries so far, counted by every receiver.
#[derive(Default)]
struct Arrivals {
    /// Measured deliveries (first copies of messages of the window).
    measured: AtomicU64,
    /// Every delivery of a load-generator message, warm-up included: a
    /// server still working through its backlog is making progress.
    any: AtomicU64,
    /// When the last measured delivery arrived, µs on the run's clock.
    last_measured_us: AtomicU64,
}

/// Waits until the measured deliveries reach `expected`, or deliveries stop
/// arriving for `stall`, or `cap` passes.
async fn drain(arrivals: &Arrivals, expected: u64, stall: Duration, cap: Duration) -> Drain {
    let started = Instant::now();
    let mut last = arrivals.any.load(Ordering::Relaxed);
    let mut last_moved = started;
    loop {
        if arrivals.measured.load(Ordering::Relaxed) >= expected {
            return Drain::Complete;
        }
        let now = arrivals.any.load(Ordering::Relaxed);
        if now > last {
            (last, last_moved) = (now, Instant::now());
        } else if last_moved.elapsed() >= stall {
            return Drain::Stalled;
        }
        if started.elapsed() >= cap {
            return Drain::Capped;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// Adds up what the senders sent and the receivers got. With `late_at_us`
/// (the drain was capped), deliveries missing to connected members are
/// late, and recorded in `latency` as arriving then.
fn account(
    senders: &[SenderTally],
    receivers: &[(usize, ReceiverTally)],
    expected: u64,
    duration: Duration,
    delivering_s: f64,
    late_at_us: Option<u64>,
    latency: &SharedHistogram,
) -> FanoutResults {
    let mut results = FanoutResults {
        sent: senders.iter().map(|s| u64::from(s.hi - s.lo)).sum(),
        expected_deliveries: expected,
        ..FanoutResults::default()
    };
    let mut room_loss: BTreeMap<usize, u64> = BTreeMap::new();
    for (room, tally) in receivers {
        results.delivered += tally.measured;
        results.duplicated += tally.duplicated;
        results.out_of_order += tally.out_of_order;
        results.error_replies += tally.error_replies;
        if let Some(code) = tally.close_code {
            *results.close_codes.entry(code.to_string()).or_default() += 1;
        }
        for sender in senders.iter().filter(|s| s.room == *room) {
            let got = tally.received_of(sender.id, sender.lo, sender.hi);
            let missing = u64::from(sender.hi - sender.lo) - got;
            *room_loss.entry(*room).or_default() += missing;
            if tally.close_code.is_some() {
                results.missed_by_closed += missing;
            } else if let Some(late_at_us) = late_at_us {
                results.late += missing;
                let bounds: Vec<u64> = tally
                    .missing_of(sender.id, sender.lo, sender.hi)
                    .map(|seq| {
                        late_at_us.saturating_sub(sender.schedule.intended_us(u64::from(seq)))
                    })
                    .collect();
                latency.record_all(&bounds);
            } else {
                results.lost += missing;
            }
        }
    }
    // One total order per room: every member's order hash must equal the
    // first member's (only meaningful when the room lost nothing).
    let mut first_hash: BTreeMap<usize, u64> = BTreeMap::new();
    for (room, tally) in receivers {
        if room_loss.get(room).copied().unwrap_or(0) > 0 {
            continue;
        }
        let reference = *first_hash.entry(*room).or_insert(tally.order_hash);
        if tally.order_hash != reference {
            results.order_mismatches += 1;
        }
    }
    let secs = duration.as_secs_f64();
    results.messages_per_s = results.sent as f64 / secs;
    // Over the time the server took to deliver the window's messages: the
    // window, or longer if it was still delivering them afterwards.
    results.deliveries_per_s = results.delivered as f64 / delivering_s.max(secs);
    results
}

type Sink = SplitSink<Connection, Message>;

/// One client's receiving loop, until stopped or closed.
async fn receive(
    mut stream: SplitStream<Connection>,
    room: usize,
    window: Window,
    latency: SharedHistogram,
    arrivals: Arc<Arrivals>,
    clock: Clock,
    stop: CancellationToken,
) -> (usize, ReceiverTally) {
    let mut tally = ReceiverTally::default();
    loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(Message::Text(text))) => {
                let arrival_us = clock.now_us();
                match ServerFrame::parse(&text) {
                    Ok(ServerFrame::Message { message }) => match Probe::decode(&message) {
                        Some(probe) => {
                            let before = tally.measured;
                            tally.on_probe(probe, arrival_us, window, &latency);
                            arrivals.any.fetch_add(1, Ordering::Relaxed);
                            if tally.measured > before {
                                arrivals.measured.fetch_add(1, Ordering::Relaxed);
                                arrivals
                                    .last_measured_us
                                    .fetch_max(arrival_us, Ordering::Relaxed);
                            }
                        }
                        None => tally.foreign += 1,
                    },
                    Ok(ServerFrame::Error { .. }) => tally.error_replies += 1,
                    Err(_) => tally.foreign += 1,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                tally.close_code = Some(frame.map_or(1005, |f| f.code.into()));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                tally.close_code.get_or_insert(1006);
                break;
            }
        }
    }
    tally.flush(&latency);
    (room, tally)
}

/// One sender's open-loop schedule, until the window ends.
async fn send(
    mut sink: Sink,
    id: u32,
    room: usize,
    schedule: Schedule,
    window: Window,
    payload_bytes: usize,
    clock: Clock,
) -> (SenderTally, Sink) {
    let mut seq: u64 = 0;
    let mut lag_us = Vec::new();
    let mut failed = false;
    loop {
        let intended_us = schedule.intended_us(seq);
        if intended_us >= window.end_us {
            break;
        }
        tokio::time::sleep_until(clock.at(intended_us)).await;
        let probe = Probe {
            sender: id,
            seq: seq as u32,
            intended_us,
        };
        if window.contains(intended_us) {
            lag_us.push(clock.now_us().saturating_sub(intended_us));
        }
        let frame = encode_client(&probe.encode(payload_bytes));
        if sink.send(Message::text(frame)).await.is_err() {
            failed = true;
            break;
        }
        seq += 1;
    }
    let lo = schedule.first_seq_at(window.start_us).min(seq) as u32;
    let tally = SenderTally {
        id,
        room,
        schedule,
        lo,
        hi: seq as u32,
        lag_us,
        failed,
    };
    (tally, sink)
}

/// Closes every connection politely, bounded in time.
async fn close_all(sinks: impl Iterator<Item = Sink>) {
    futures_util::stream::iter(sinks)
        .for_each_concurrent(256, |mut sink| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        })
        .await;
}
