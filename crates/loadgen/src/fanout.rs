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
//!
//! With a [`BusyRoom`], one more room joins the run, with senders of its own
//! (posting hard, say), and is accounted apart: the other rooms' figures are
//! what one room's traffic costs another (the stall experiment of issue 5,
//! where a server that blocks on its database makes a quiet room wait for a
//! busy one).
//!
//! Against several URLs (server processes sharing rooms through a channel
//! layer), member *k* of room *r* connects to URL (*r* + *k*) mod *n*
//! ([`spread`]): every room has members behind every URL and the senders
//! are spread too, so the counts above, and the one order per room, are
//! checked across processes; each URL's members are also counted apart.

use std::collections::BTreeMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use anyhow::{Context, bail};
use chat_protocol::RoomName;
use chat_protocol::message::encode_client;
use chat_protocol::tungstenite::Message;
use futures_util::future::Either;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::time::Instant;

use crate::arrivals::{ARRIVAL_SLOTS, Arrivals, PUBLISH_EVERY, Stop, Unpublished};
use crate::client::{Connection, Target, spread};
use crate::probe::{Probe, Received};
use crate::progress::Progress;
use crate::sampler::{Samplers, Share, Watch};
use crate::schedule::Schedule;
use crate::tally::{self, ReceiverTally, SharedHistogram, Window};
use chat_record::{Deployment, FanoutResults, ProcessFigures, UrlResults};

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
    /// One more room, measured apart, if any.
    pub busy: Option<BusyRoom>,
}

/// The extra room of a fan-out run: its own clients and senders, not among
/// [`FanoutParams::rooms`], its deliveries measured apart.
#[derive(Debug, Clone, PartialEq)]
pub struct BusyRoom {
    /// Clients in the room, its senders included.
    pub clients: u64,
    /// Senders among them.
    pub senders: u64,
    /// Messages per second, per sender.
    pub rate_per_s: f64,
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
        if let Some(busy) = &self.busy {
            if busy.senders == 0 || busy.senders > busy.clients {
                bail!(
                    "--busy-senders ({}) must be between 1 and --busy-clients ({})",
                    busy.senders,
                    busy.clients
                );
            }
            if !(busy.rate_per_s > 0.0 && busy.rate_per_s.is_finite()) {
                bail!("--busy-rate must be a positive number of messages per second");
            }
        }
        Ok(())
    }

    /// Every room of the run, the `rooms` first, then the busy one.
    fn plan(&self) -> Vec<RoomPlan> {
        let mut plan: Vec<RoomPlan> = (0..self.rooms)
            .map(|_| RoomPlan {
                group: Group::Rooms,
                senders: self.senders_per_room,
                rate_per_s: self.rate_per_s,
            })
            .collect();
        if let Some(busy) = &self.busy {
            plan.push(RoomPlan {
                group: Group::Busy,
                senders: busy.senders,
                rate_per_s: busy.rate_per_s,
            });
        }
        plan
    }

    /// Clients in all, the busy room's included.
    fn all_clients(&self) -> u64 {
        self.clients + self.busy.as_ref().map_or(0, |b| b.clients)
    }

    /// The room of client `i` (of [`Self::all_clients`]) and its place
    /// among the room's members: the first `clients` spread evenly over
    /// `rooms` (round-robin), the rest in the busy room.
    fn member_of(&self, i: u64) -> (usize, u64) {
        if i < self.clients {
            ((i % self.rooms) as usize, i / self.rooms)
        } else {
            (self.rooms as usize, i - self.clients)
        }
    }
}

/// Which figures a room's deliveries count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// The `--rooms`: the run's results.
    Rooms,
    /// The busy room: its own results, beside them.
    Busy,
}

/// One room of a run.
#[derive(Debug, Clone, Copy)]
struct RoomPlan {
    group: Group,
    /// Senders in it.
    senders: u64,
    /// Messages per second, per sender.
    rate_per_s: f64,
}

/// What the receivers of one [`Group`] share.
#[derive(Clone, Default)]
struct Measures {
    /// Latencies, one histogram per URL (the group's are their sum).
    latency: Vec<SharedHistogram>,
    arrivals: Arc<Arrivals>,
    connect_us: SharedHistogram,
}

impl Measures {
    fn new(urls: usize) -> Self {
        Self {
            latency: (0..urls).map(|_| SharedHistogram::default()).collect(),
            ..Self::default()
        }
    }
}

/// What a fan-out run measured.
#[derive(Debug, Clone)]
pub struct FanoutOutcome {
    /// The counts and latencies.
    pub results: FanoutResults,
    /// The server process, if sampled (the first, if several).
    pub server: Option<ProcessFigures>,
    /// The load generator itself.
    pub loadgen: ProcessFigures,
    /// The URLs and processes beyond the first, and the others sampled.
    pub deployment: Deployment,
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
    /// The URL it is connected to.
    url: usize,
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

/// Runs the scenario against `targets` (one, or several server processes
/// sharing rooms), sampling the processes of `watch`.
pub async fn run(
    targets: &[Target],
    params: &FanoutParams,
    watch: &Watch,
    progress: &Progress,
) -> anyhow::Result<FanoutOutcome> {
    params.validate()?;
    if targets.is_empty() {
        bail!("no URL to drive");
    }
    watch.check(targets.len())?;
    let urls: Vec<String> = targets.iter().map(|t| t.url.clone()).collect();
    let tag = run_tag();
    let plan = params.plan();
    let rooms: Vec<RoomName> = (0..plan.len())
        .map(|r| match plan[r].group {
            Group::Rooms => RoomName::new(&format!("{tag}_{r}")),
            Group::Busy => RoomName::new(&format!("{tag}_busy")),
        })
        .map(|name| name.context("room name"))
        .collect::<anyhow::Result<_>>()?;
    let measures = [Measures::new(urls.len()), Measures::new(urls.len())];
    let of = |group: Group| &measures[group as usize];

    let mut samplers = Samplers::start(watch)?;

    // 1. Connect.
    let all_clients = params.all_clients();
    progress.phase(&format!("connecting {all_clients} clients"), all_clients);
    // Each room's members with their place in it and their URL.
    let mut members: Vec<Vec<(u64, usize, Connection)>> =
        (0..rooms.len()).map(|_| Vec::new()).collect();
    // Per group, per URL.
    let mut connect_failures = [vec![0; urls.len()], vec![0; urls.len()]];
    let mut first_failure = None;
    let mut connects = futures_util::stream::iter(0..all_clients)
        .map(|i| {
            let (room, member) = params.member_of(i);
            let url = spread(room as u64, member, targets.len());
            let name = &rooms[room];
            async move {
                let connected = targets[url]
                    .connect(name, None, params.connect_timeout)
                    .await;
                (room, member, url, connected)
            }
        })
        .buffer_unordered(params.connect_concurrency.max(1));
    while let Some((room, member, url, connected)) = connects.next().await {
        progress.inc();
        let group = plan[room].group;
        match connected {
            Ok((ws, took)) => {
                of(group).connect_us.record_all(&[took.as_micros() as u64]);
                members[room].push((member, url, ws));
            }
            Err(error) => {
                connect_failures[group as usize][url] += 1;
                first_failure.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    drop(connects);
    // In their places, so that a room's senders (its first members) are
    // spread over the URLs as `spread` says, whatever order they connected
    // in.
    for room in &mut members {
        room.sort_unstable_by_key(|(member, _, _)| *member);
    }
    if members
        .iter()
        .zip(&plan)
        .any(|(m, room)| (m.len() as u64) < room.senders)
    {
        bail!(
            "too few clients connected ({} failed; first: {})",
            connect_failures.iter().flatten().sum::<u64>(),
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
    let stop = Arc::new(Stop::default());
    // Senders per group: each group's senders spread their phases over one
    // interval of their own rate.
    let group_senders = |group: Group| -> u64 {
        plan.iter()
            .filter(|r| r.group == group)
            .map(|r| r.senders)
            .sum()
    };
    let mut next_in_group = [0u64, 0];
    let room_sizes: Vec<u64> = members.iter().map(|m| m.len() as u64).collect();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (room, connections) in members.into_iter().enumerate() {
        let RoomPlan {
            group,
            senders: room_senders,
            rate_per_s,
        } = plan[room];
        for (k, (_, url, mut ws)) in connections.into_iter().enumerate() {
            let receiver = Receiver {
                room,
                url,
                window,
                latency: of(group).latency[url].clone(),
                arrivals: Arc::clone(&of(group).arrivals),
                slot: receivers.len() % ARRIVAL_SLOTS,
                clock,
                stop: Arc::clone(&stop),
            };
            if (k as u64) < room_senders {
                // A sender's connection is split: the sending task takes
                // the sink.
                let (sink, mut stream) = ws.split();
                receivers.push(tokio::spawn(async move {
                    (receiver.run(&mut stream).await, None)
                }));
                let index = &mut next_in_group[group as usize];
                let schedule = Schedule::new(start_us, rate_per_s, *index, group_senders(group));
                *index += 1;
                let sender = Sender {
                    id: senders.len() as u32,
                    room,
                    url,
                    schedule,
                    window,
                    payload_bytes: params.payload_bytes,
                    clock,
                };
                senders.push(tokio::spawn(sender.run(sink)));
            } else {
                // A member that only receives keeps its connection whole
                // (a split takes a lock shared with the sink per frame),
                // and hands it back to be closed.
                receivers.push(tokio::spawn(async move {
                    let tally = receiver.run(&mut ws).await;
                    (tally, Some(ws))
                }));
            }
        }
    }

    let run_secs = (params.warmup + params.duration).as_secs();
    progress.phase(&format!("{} s of load", run_secs), run_secs.max(1));
    let ticker = progress.tick_every_second();
    tokio::time::sleep_until(clock.at(window.start_us)).await;
    samplers.begin_window().await;

    let mut sender_tallies = Vec::new();
    let mut sinks = Vec::new();
    for sender in senders {
        let (tally, sink) = sender.await.context("a sender task panicked")?;
        sender_tallies.push(tally);
        sinks.push(sink);
    }
    ticker.abort();

    // 3. Drain, then account.
    let expected_of = |group: Group| -> u64 {
        sender_tallies
            .iter()
            .filter(|s| plan[s.room].group == group)
            .map(|s| u64::from(s.hi - s.lo) * room_sizes[s.room])
            .sum()
    };
    let expected = expected_of(Group::Rooms) + expected_of(Group::Busy);
    let all_arrivals = [&*measures[0].arrivals, &*measures[1].arrivals];
    progress.phase("draining", 1);
    let drain_start = Instant::now();
    let drain = drain(&all_arrivals, expected, params.drain, params.drain_max).await;
    let drain_end_us = clock.now_us();
    let drain_s = drain_start.elapsed().as_secs_f64();
    let delivered_count = all_arrivals.iter().map(|a| a.measured()).sum();
    let sampled = samplers.finish(Some(delivered_count)).await;
    stop.stop();
    let mut tallies = Vec::new();
    let mut idle = Vec::new();
    for receiver in receivers {
        let (tally, ws) = receiver.await.context("a receiver task panicked")?;
        tallies.push(tally);
        idle.extend(ws);
    }
    let connections = sinks.into_iter().map(Either::Left);
    close_all(connections.chain(idle.into_iter().map(Either::Right))).await;
    progress.finish();

    let results_of = |group: Group| -> FanoutResults {
        let in_group = |room: usize| plan[room].group == group;
        let senders: Vec<&SenderTally> =
            sender_tallies.iter().filter(|s| in_group(s.room)).collect();
        let receivers: Vec<&Heard> = tallies.iter().filter(|h| in_group(h.room)).collect();
        let measures = of(group);
        let mut results = account(
            &senders,
            &receivers,
            expected_of(group),
            params.duration,
            measures
                .arrivals
                .last_measured_us()
                .saturating_sub(window.start_us) as f64
                / 1e6,
            (drain == Drain::Capped).then_some(drain_end_us),
            &measures.latency,
        );
        results.drain_s = drain_s;
        results.latency_us = tally::summary_of(&measures.latency);
        results.connect_us = measures.connect_us.summary();
        let failures = &connect_failures[group as usize];
        results.connect_failures = failures.iter().sum();
        for ((at_url, failed), url) in results.per_url.iter_mut().zip(failures).zip(&urls) {
            at_url.url.clone_from(url);
            at_url.connect_failures = *failed;
        }
        let mut lag = tally::new_histogram();
        for value in senders.iter().flat_map(|s| &s.lag_us) {
            lag.saturating_record((*value).max(1));
        }
        results.send_lag_us = tally::summarize(&lag);
        results
    };
    let mut results = results_of(Group::Rooms);
    if params.busy.is_some() {
        results.busy_room = Some(Box::new(results_of(Group::Busy)));
    }
    let mut warnings = Vec::new();
    let failed = sender_tallies.iter().filter(|s| s.failed).count();
    if failed > 0 {
        warnings.push(format!(
            "{failed} sender(s) could not send (connection closed by the server)"
        ));
    }
    if let Some(first_failure) = first_failure {
        warnings.push(format!(
            "{} client(s) could not connect; first: {first_failure}",
            connect_failures.iter().flatten().sum::<u64>()
        ));
    }
    // Each URL's share of the work: its members' measured deliveries, every
    // room's (the busy one's too, as the server's CPU is).
    let mut shares = vec![
        Share {
            clients: 0,
            deliveries: Some(0),
        };
        urls.len()
    ];
    for heard in &tallies {
        let share = &mut shares[heard.url];
        share.clients += 1;
        share.deliveries = share.deliveries.map(|d| d + heard.tally.measured);
    }
    let (server, loadgen, deployment) = sampled.into_parts(&urls, &shares);
    Ok(FanoutOutcome {
        results,
        server,
        loadgen,
        deployment,
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

/// Waits until the measured deliveries (over every group's `arrivals`)
/// reach `expected`, or deliveries stop arriving for `stall`, or `cap`
/// passes.
async fn drain(arrivals: &[&Arrivals], expected: u64, stall: Duration, cap: Duration) -> Drain {
    let measured = || arrivals.iter().map(|a| a.measured()).sum::<u64>();
    let any = || arrivals.iter().map(|a| a.any()).sum::<u64>();
    let started = Instant::now();
    let mut last = any();
    let mut last_moved = started;
    loop {
        if measured() >= expected {
            return Drain::Complete;
        }
        let now = any();
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

/// Adds up what the senders sent and the receivers got, in all and, with
/// several URLs, per URL (`latency` has one histogram per URL; the URLs'
/// names and connect failures are the caller's to fill in). With
/// `late_at_us` (the drain was capped), deliveries missing to connected
/// members are late, and recorded in `latency` as arriving then.
fn account(
    senders: &[&SenderTally],
    receivers: &[&Heard],
    expected: u64,
    duration: Duration,
    delivering_s: f64,
    late_at_us: Option<u64>,
    latency: &[SharedHistogram],
) -> FanoutResults {
    let mut results = FanoutResults {
        sent: senders.iter().map(|s| u64::from(s.hi - s.lo)).sum(),
        expected_deliveries: expected,
        ..FanoutResults::default()
    };
    let mut per_url = vec![UrlResults::default(); latency.len()];
    for sender in senders {
        per_url[sender.url].senders += 1;
    }
    let mut room_loss: BTreeMap<usize, u64> = BTreeMap::new();
    let mut arrived_in_window = 0;
    for heard in receivers {
        let (room, url, tally) = (heard.room, heard.url, &heard.tally);
        let at_url = &mut per_url[url];
        at_url.clients += 1;
        results.delivered += tally.measured;
        at_url.delivered += tally.measured;
        arrived_in_window += tally.arrived_in_window;
        results.duplicated += tally.duplicated;
        at_url.duplicated += tally.duplicated;
        results.out_of_order += tally.out_of_order;
        at_url.out_of_order += tally.out_of_order;
        results.error_replies += tally.error_replies;
        if let Some(code) = tally.close_code {
            *results.close_codes.entry(code.to_string()).or_default() += 1;
        }
        for sender in senders.iter().filter(|s| s.room == room) {
            let owed = u64::from(sender.hi - sender.lo);
            at_url.expected_deliveries += owed;
            let missing = owed - tally.received_of(sender.id, sender.lo, sender.hi);
            *room_loss.entry(room).or_default() += missing;
            if tally.close_code.is_some() {
                results.missed_by_closed += missing;
                at_url.missed_by_closed += missing;
            } else if let Some(late_at_us) = late_at_us {
                results.late += missing;
                at_url.late += missing;
                let bounds: Vec<u64> = tally
                    .missing_of(sender.id, sender.lo, sender.hi)
                    .map(|seq| {
                        late_at_us.saturating_sub(sender.schedule.intended_us(u64::from(seq)))
                    })
                    .collect();
                latency[url].record_all(&bounds);
            } else {
                results.lost += missing;
                at_url.lost += missing;
            }
        }
    }
    // One total order per room: every member's order hash must equal the
    // first member's (only meaningful when the room lost nothing), whatever
    // URL, so whatever server process, each is behind.
    let mut first_hash: BTreeMap<usize, u64> = BTreeMap::new();
    for heard in receivers {
        if room_loss.get(&heard.room).copied().unwrap_or(0) > 0 {
            continue;
        }
        let reference = *first_hash
            .entry(heard.room)
            .or_insert(heard.tally.order_hash);
        if heard.tally.order_hash != reference {
            results.order_mismatches += 1;
            per_url[heard.url].order_mismatches += 1;
        }
    }
    let secs = duration.as_secs_f64();
    results.messages_per_s = results.sent as f64 / secs;
    // Over the time the server took to deliver the window's messages: the
    // window, or longer if it was still delivering them afterwards.
    results.deliveries_per_s = results.delivered as f64 / delivering_s.max(secs);
    results.window_deliveries_per_s = Some(arrived_in_window as f64 / secs);
    if latency.len() > 1 {
        for (at_url, latency) in per_url.iter_mut().zip(latency) {
            at_url.latency_us = latency.summary();
        }
        results.per_url = per_url;
    }
    results
}

type Sink = SplitSink<Connection, Message>;

/// What one member of a room heard, and where it was.
struct Heard {
    /// Its room.
    room: usize,
    /// The URL it connected to.
    url: usize,
    /// What it got.
    tally: ReceiverTally,
}

/// One client's receiving side.
struct Receiver {
    /// The client's room, returned with its tally.
    room: usize,
    /// The URL it connected to, returned with its tally.
    url: usize,
    /// Which messages are measured.
    window: Window,
    /// Where the measured latencies go.
    latency: SharedHistogram,
    /// Where the drain sees progress.
    arrivals: Arc<Arrivals>,
    /// This receiver's slot of `arrivals`.
    slot: usize,
    /// Arrival times.
    clock: Clock,
    /// When to stop receiving.
    stop: Arc<Stop>,
}

impl Receiver {
    /// The receiving loop, until stopped or closed.
    async fn run<S, E>(self, stream: &mut S) -> Heard
    where
        S: Stream<Item = Result<Message, E>> + Unpin,
    {
        let Self {
            room,
            url,
            window,
            latency,
            arrivals,
            slot,
            clock,
            stop,
        } = self;
        let slot = &arrivals.slots[slot];
        let mut tally = ReceiverTally::default();
        let mut unpublished = Unpublished::default();
        let mut in_a_row = 0;
        // Created now, so that it sees a stop from now on, even before its
        // first poll; polled only when the task goes idle with a new waker.
        let mut stopped = pin!(stop.wake.notified());
        let mut registered: Option<Waker> = None;
        loop {
            let next = poll_fn(|cx| {
                if stop.is_stopped() {
                    return Poll::Ready(None);
                }
                if let Poll::Ready(next) = stream.poll_next_unpin(cx) {
                    return Poll::Ready(Some(next));
                }
                in_a_row = 0;
                unpublished.publish(slot);
                if registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                    if stopped.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    registered = Some(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
            let Some(next) = next else { break };
            match next {
                Some(Ok(Message::Text(text))) => {
                    let arrival_us = clock.now_us();
                    match Received::classify(&text) {
                        Received::Probe(probe) => {
                            let before = tally.measured;
                            tally.on_probe(probe, arrival_us, window, &latency);
                            unpublished.count(tally.measured > before, arrival_us);
                        }
                        Received::Error => tally.error_replies += 1,
                        Received::Foreign => tally.foreign += 1,
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
            in_a_row += 1;
            if in_a_row == PUBLISH_EVERY {
                in_a_row = 0;
                unpublished.publish(slot);
            }
        }
        unpublished.publish(slot);
        tally.flush(&latency);
        Heard { room, url, tally }
    }
}

/// One client's sending side.
struct Sender {
    /// Its number in the run, in every message it sends.
    id: u32,
    /// Its room, returned with its tally.
    room: usize,
    /// The URL it connected to, returned with its tally.
    url: usize,
    /// When each message is meant to leave.
    schedule: Schedule,
    /// Which messages are measured; it stops at the window's end.
    window: Window,
    /// Bytes of each message's text.
    payload_bytes: usize,
    /// Send times.
    clock: Clock,
}

impl Sender {
    /// The open-loop schedule, until the window ends.
    async fn run(self, mut sink: Sink) -> (SenderTally, Sink) {
        let Self {
            id,
            room,
            url,
            schedule,
            window,
            payload_bytes,
            clock,
        } = self;
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
            url,
            schedule,
            lo,
            hi: seq as u32,
            lag_us,
            failed,
        };
        (tally, sink)
    }
}

/// Closes every connection politely, bounded in time.
async fn close_all<S: futures_util::Sink<Message> + Unpin>(sinks: impl Iterator<Item = S>) {
    futures_util::stream::iter(sinks)
        .for_each_concurrent(256, |mut sink| async move {
            let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
        })
        .await;
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use chat_protocol::message::{encode_chat, encode_error};
    use futures_util::stream;

    use super::*;

    fn receiver(arrivals: &Arc<Arrivals>, stop: &Arc<Stop>, slot: usize) -> Receiver {
        Receiver {
            room: 3,
            url: 1,
            window: Window {
                start_us: 1_000,
                end_us: 2_000,
            },
            latency: SharedHistogram::default(),
            arrivals: Arc::clone(arrivals),
            slot,
            clock: Clock(Instant::now()),
            stop: Arc::clone(stop),
        }
    }

    fn chat(sender: u32, seq: u32, intended_us: u64) -> Result<Message, Infallible> {
        let probe = Probe {
            sender,
            seq,
            intended_us,
        };
        Ok(Message::Text(encode_chat(&probe.encode(16))))
    }

    fn params(busy: Option<BusyRoom>) -> FanoutParams {
        FanoutParams {
            clients: 10,
            rooms: 2,
            senders_per_room: 1,
            rate_per_s: 20.0,
            payload_bytes: 64,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            drain: Duration::from_secs(2),
            drain_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            connect_concurrency: 8,
            busy,
        }
    }

    #[test]
    fn the_busy_room_comes_after_the_rooms() {
        let busy = BusyRoom {
            clients: 3,
            senders: 2,
            rate_per_s: 100.0,
        };
        let p = params(Some(busy.clone()));
        assert!(p.validate().is_ok());
        assert_eq!(p.all_clients(), 13);
        let rooms: Vec<usize> = (0..13).map(|i| p.member_of(i).0).collect();
        assert_eq!(rooms, [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 2]);
        let plan = p.plan();
        assert_eq!(plan.len(), 3);
        assert!(
            plan[..2]
                .iter()
                .all(|r| r.group == Group::Rooms && r.senders == 1)
        );
        assert_eq!((plan[2].group, plan[2].senders), (Group::Busy, 2));
        assert_eq!(plan[2].rate_per_s, 100.0);

        let none = params(None);
        assert_eq!((none.all_clients(), none.plan().len()), (10, 2));
        for bad in [
            BusyRoom {
                senders: 4,
                ..busy.clone()
            },
            BusyRoom {
                senders: 0,
                ..busy.clone()
            },
            BusyRoom {
                rate_per_s: 0.0,
                ..busy
            },
        ] {
            assert!(params(Some(bad.clone())).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_room_has_members_and_senders_behind_every_url() {
        // 100 clients in 2 rooms, 2 senders each, over 2 URLs (the sample
        // run), and 30 in 3 rooms over 4 URLs with a busy room.
        for (p, urls) in [
            (
                FanoutParams {
                    clients: 100,
                    senders_per_room: 2,
                    ..params(None)
                },
                2,
            ),
            (
                FanoutParams {
                    clients: 30,
                    rooms: 3,
                    ..params(Some(BusyRoom {
                        clients: 8,
                        senders: 4,
                        rate_per_s: 100.0,
                    }))
                },
                4,
            ),
        ] {
            let plan = p.plan();
            // (members, senders) per room, per URL.
            let mut behind = vec![vec![(0u64, 0u64); urls]; plan.len()];
            for i in 0..p.all_clients() {
                let (room, member) = p.member_of(i);
                let at = &mut behind[room][spread(room as u64, member, urls)];
                at.0 += 1;
                at.1 += u64::from(member < plan[room].senders);
            }
            for (room, per_url) in behind.iter().enumerate() {
                let members: Vec<u64> = per_url.iter().map(|(m, _)| *m).collect();
                let (most, least) = (members.iter().max(), members.iter().min());
                assert!(
                    least > Some(&0) && most.zip(least).is_some_and(|(a, b)| a - b <= 1),
                    "room {room}: members per URL {members:?}"
                );
                let senders: Vec<u64> = per_url.iter().map(|(_, s)| *s).collect();
                assert!(
                    senders.iter().all(|&s| s <= 1),
                    "room {room}: senders per URL {senders:?}"
                );
                assert_eq!(senders.iter().sum::<u64>(), plan[room].senders);
            }
        }
        // The sample run: each URL has 25 members of each room, and one of
        // its two senders.
        let p = FanoutParams {
            clients: 100,
            senders_per_room: 2,
            ..params(None)
        };
        let of_room_0: Vec<usize> = (0..100)
            .map(|i| p.member_of(i))
            .filter(|(room, _)| *room == 0)
            .map(|(room, member)| spread(room as u64, member, 2))
            .collect();
        assert_eq!(of_room_0.iter().filter(|&&u| u == 1).count(), 25);
        assert_eq!(of_room_0[..2], [0, 1], "the senders");
    }

    #[tokio::test]
    async fn every_delivery_reaches_the_arrivals_exactly() {
        let (arrivals, stop) = Default::default();
        // 1,000 measured messages, 300 of the warm-up, a duplicate, an
        // error and a foreign chat; then the connection ends.
        let frames = (0..1_000)
            .map(|seq| chat(1, seq, 1_500))
            .chain((0..300).map(|seq| chat(2, seq, 10)))
            .chain([
                chat(1, 7, 1_500),
                Ok(Message::Text(encode_error(&"bad"))),
                Ok(Message::text(encode_chat("hello").to_string())),
            ]);
        let Heard { room, url, tally } = receiver(&arrivals, &stop, 5)
            .run(&mut stream::iter(frames))
            .await;
        assert_eq!((room, url), (3, 1));
        assert_eq!(tally.close_code, Some(1006));
        assert_eq!((tally.measured, tally.duplicated), (1_000, 1));
        assert_eq!((tally.error_replies, tally.foreign), (1, 1));
        assert_eq!(arrivals.measured(), 1_000);
        assert_eq!(arrivals.any(), 1_301);
        assert!(arrivals.last_measured_us() > 0);
    }

    #[tokio::test]
    async fn a_stop_wakes_an_idle_receiver() {
        let (arrivals, stop): (Arc<Arrivals>, Arc<Stop>) = Default::default();
        let mut frames = stream::iter([chat(1, 0, 1_500)]).chain(stream::pending());
        let task = tokio::spawn({
            let receiver = receiver(&arrivals, &stop, 0);
            async move { receiver.run(&mut frames).await }
        });
        while arrivals.any() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(arrivals.measured(), 1, "published before going idle");
        stop.stop();
        let Heard { tally, .. } = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the receiver stops")
            .expect("the receiver does not panic");
        assert_eq!((tally.measured, tally.close_code), (1, None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_ends_a_receiver_that_never_waits() {
        let (arrivals, stop): (Arc<Arrivals>, Arc<Stop>) = Default::default();
        let mut seq = 0;
        let mut frames = stream::repeat_with(move || {
            seq += 1;
            chat(1, seq, 1_500)
        });
        let task = tokio::spawn({
            let receiver = receiver(&arrivals, &stop, 0);
            async move { receiver.run(&mut frames).await }
        });
        while arrivals.any() < 10 * PUBLISH_EVERY {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.stop();
        let Heard { tally, .. } = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the receiver stops")
            .expect("the receiver does not panic");
        assert_eq!(arrivals.measured(), tally.measured);
    }
}
