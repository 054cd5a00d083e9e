//! The soak: a steady mixed load for a long time, with the server's memory,
//! threads and descriptors sampled throughout.
//!
//! A benchmark says how fast a server is for ten seconds; a soak says
//! whether it is still right, and still the same size, after half an hour
//! of what a real deployment sees at once: rooms of different sizes chatting
//! steadily ([`member`]), clients coming and going all the time
//! ([`churn`]), now and then a client too slow to keep up ([`slow`]), and
//! junk ([`bad`]). Every delivery to a well-behaved client is checked
//! (exactly once, one order per room), every hostile client must get the
//! answer the contract promises, and the samples ([`sample`]) show whether
//! memory, threads or descriptors creep up. The load is moderate on
//! purpose: on two cores shared with the server, a load generator pushed
//! hard would find its own limits, not the server's leaks.

pub mod args;
pub mod bad;
pub mod churn;
pub mod dial;
mod heard;
pub mod member;

pub mod sample;
pub mod slow;
pub mod state;
pub mod verdict;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::time::{Instant, sleep};

use crate::client::Target;
use crate::fanout::run_tag;
use crate::soak::member::{Member, MemberEnd};
use crate::soak::state::{Open, Shared, get};
use crate::tally::SharedHistogram;
use chat_record::Latency;
use chat_record::soak::{SoakParams, SoakSample, SoakTotals};

/// From the last member's connection to the first message, µs: time for
/// every member task to be waiting on its socket.
const START_DELAY_US: u64 = 100_000;

/// The soak's load.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The server's name in progress lines and the record.
    pub label: String,
    /// How long the load runs.
    pub duration: Duration,
    /// Time between two samples of the server.
    pub sample_interval: Duration,
    /// Members of each steady room.
    pub room_sizes: Vec<u32>,
    /// Senders of each steady room (its first members).
    pub senders_per_room: u32,
    /// Messages per second in each steady room, its senders together.
    pub rate_per_room_per_s: f64,
    /// Bytes of each steady message's text.
    pub payload_bytes: usize,
    /// Churn cycles started per second.
    pub churn_per_s: f64,
    /// Time between two slow readers (zero: none).
    pub slow_reader_every: Duration,
    /// Well-behaved members of the slow room, who must lose nothing.
    pub slow_members: u32,
    /// Messages of each burst in the slow room.
    pub slow_burst: u64,
    /// Bytes of each burst message's text.
    pub slow_message_bytes: usize,
    /// Time between two bad clients (zero: none).
    pub bad_client_every: Duration,
    /// Longest wait for one connection.
    pub connect_timeout: Duration,
    /// Once the load stops, how long without any delivery before the
    /// deliveries still owed count as lost.
    pub drain: Duration,
    /// Once the load stops, the longest wait for the deliveries still owed.
    pub drain_max: Duration,
}

impl Default for SoakConfig {
    /// 77 steady members in rooms of 2, 5, 20 and 50, two senders each at
    /// 20 msg/s a room: 80 msg/s, ~1,500 deliveries/s; 20 churn cycles a
    /// second; a slow reader a minute; a bad client every 5 s. A few
    /// percent of one core for either server: an endurance load, not a
    /// throughput one.
    fn default() -> Self {
        Self {
            label: "server".to_owned(),
            duration: Duration::from_secs(30 * 60),
            sample_interval: Duration::from_secs(5),
            room_sizes: vec![2, 5, 20, 50],
            senders_per_room: 2,
            rate_per_room_per_s: 20.0,
            payload_bytes: 64,
            churn_per_s: 20.0,
            slow_reader_every: Duration::from_secs(60),
            slow_members: 2,
            slow_burst: 3000,
            slow_message_bytes: 8 * 1024,
            bad_client_every: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            drain_max: Duration::from_secs(60),
        }
    }
}

impl SoakConfig {
    /// Refuses a load that cannot run.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.room_sizes.is_empty() || self.room_sizes.contains(&0) {
            bail!("every steady room needs at least one member");
        }
        if self.senders_per_room == 0 || self.slow_members == 0 || self.slow_burst == 0 {
            bail!("senders per room, slow-room members and the burst must be at least 1");
        }
        if !(self.rate_per_room_per_s > 0.0 && self.churn_per_s >= 0.0) {
            bail!("the rate must be positive and the churn not negative");
        }
        if self.duration.is_zero() || self.sample_interval.is_zero() {
            bail!("the duration and the sample interval must be positive");
        }
        if self.slow_message_bytes > 60 * 1024 || self.payload_bytes > 60 * 1024 {
            bail!("messages must stay under the servers' 64 KiB limit");
        }
        Ok(())
    }

    /// As the record states it.
    pub fn params(&self) -> SoakParams {
        SoakParams {
            duration_s: self.duration.as_secs_f64(),
            sample_interval_s: self.sample_interval.as_secs_f64(),
            room_sizes: self.room_sizes.clone(),
            rate_per_room_per_s: self.rate_per_room_per_s,
            senders_per_room: self.senders_per_room,
            churn_per_s: self.churn_per_s,
            slow_reader_every_s: self.slow_reader_every.as_secs_f64(),
            bad_client_every_s: self.bad_client_every.as_secs_f64(),
        }
    }
}

/// What a soak found.
#[derive(Debug, Clone)]
pub struct SoakRun {
    /// The server, oldest first: before the load, during it, and once every
    /// client has closed.
    pub samples: Vec<SoakSample>,
    /// What it counted.
    pub totals: SoakTotals,
    /// Whether everything was delivered and answered as the contract says.
    pub passed: bool,
    /// Where anything went wrong.
    pub warnings: Vec<String>,
    /// Steady and slow-room deliveries, from each message's send time.
    pub latency: Latency,
}

/// Runs the soak of `config` against `target`, whose process is `pid`.
pub async fn run(target: Target, config: SoakConfig, pid: u32) -> anyhow::Result<SoakRun> {
    config.validate()?;
    let shared = Shared::new(target, config, format!("{}_soak", run_tag()));
    let first = sample::take(&shared, pid)
        .await
        .context("cannot read the server process (--server-pid)")?;
    sample::progress(&shared, &first, None);

    // The members, all in before anyone sends.
    let rooms = Arc::new(member::plan(&shared.config, &shared.tag)?);
    let latency = SharedHistogram::default();
    let places: Vec<(usize, u32)> = rooms
        .iter()
        .enumerate()
        .flat_map(|(r, room)| (0..room.members).map(move |m| (r, m)))
        .collect();
    let mut connects = futures_util::stream::iter(places)
        .map(|(r, m)| {
            let shared = &shared;
            let name = &rooms[r].name;
            async move {
                let connected = shared
                    .target
                    .connect(name, None, shared.config.connect_timeout)
                    .await;
                (r, m, connected)
            }
        })
        .buffer_unordered(16);
    let mut connected = Vec::new();
    while let Some((r, m, outcome)) = connects.next().await {
        let (ws, _) = outcome
            .with_context(|| format!("member {m} of room {} could not connect", rooms[r].name))?;
        connected.push((r, m, ws, Open::new(&shared)));
    }
    drop(connects);
    let start_us = shared.now_us() + START_DELAY_US;
    let mut members = Vec::new();
    for (r, m, ws, open) in connected {
        let member = Member {
            shared: Arc::clone(&shared),
            rooms: Arc::clone(&rooms),
            room: r,
            member: m,
            start_us,
            latency: latency.clone(),
            open,
        };
        if (m as usize) < rooms[r].senders.len() {
            shared
                .counts
                .senders_sending
                .fetch_add(1, Ordering::Relaxed);
        }
        members.push(tokio::spawn(member.run(ws)));
    }
    eprintln!(
        "soak [{}] {} members in {} rooms; load for {:.0} s",
        shared.config.label,
        members.len(),
        rooms.len(),
        shared.config.duration.as_secs_f64()
    );

    // The load.
    let sampler = tokio::spawn(sample::run(Arc::clone(&shared), pid, vec![first]));
    let churn = tokio::spawn(churn::run(Arc::clone(&shared)));
    let slow_room = rooms
        .last()
        .map(|r| r.name.clone())
        .context("no slow room")?;
    let slow = tokio::spawn(slow::run(Arc::clone(&shared), slow_room));
    let steady: Vec<String> = rooms
        .iter()
        .filter(|r| !r.slow)
        .map(|r| r.name.to_string())
        .collect();
    let bad = tokio::spawn(bad::run(Arc::clone(&shared), steady));
    tokio::select! {
        () = shared.load.cancelled() => {}
        () = tokio::time::sleep_until(Instant::from_std(shared.at(start_us)) + shared.config.duration) => {}
    }
    shared.load.cancel();
    let _ = churn.await;
    let bursts = slow.await.unwrap_or_default();
    let _ = bad.await;

    // Every owed delivery, or as many as come in time.
    drain(&shared, &rooms).await;
    shared.close.cancel();
    let mut samples = sampler.await.unwrap_or_default();
    let mut ends: Vec<MemberEnd> = Vec::new();
    for member in members {
        if let Ok(end) = member.await {
            ends.push(end);
        }
    }
    match sample::settled(&shared, pid).await {
        Ok(last) => {
            sample::progress(&shared, &last, samples.last());
            samples.push(last);
        }
        Err(error) => shared.note(format!(
            "SERVER: cannot read the server process {pid} after the run: {error:#}"
        )),
    }
    let verdict = verdict::judge(&shared, &rooms, &ends, &bursts, &samples);
    Ok(SoakRun {
        samples,
        totals: verdict.totals,
        passed: verdict.passed,
        warnings: verdict.warnings,
        latency: latency.summary(),
    })
}

/// Waits until the senders have stopped, then until the members have every
/// delivery owed to them: at most `drain_max`, and no longer than `drain`
/// without any progress.
async fn drain(shared: &Shared, rooms: &[member::Room]) {
    const POLL: Duration = Duration::from_millis(20);
    let started = Instant::now();
    while get(&shared.counts.senders_sending) > 0 && started.elapsed() < Duration::from_secs(5) {
        sleep(POLL).await;
    }
    let owed = verdict::owed_to_members(shared, rooms);
    let mut last = get(&shared.counts.member_delivered);
    let mut progress_at = Instant::now();
    loop {
        let now = get(&shared.counts.member_delivered);
        if now >= owed {
            return;
        }
        if now != last {
            last = now;
            progress_at = Instant::now();
        }
        if progress_at.elapsed() >= shared.config.drain
            || started.elapsed() >= shared.config.drain_max
        {
            shared.note(format!(
                "DRAIN: stopped waiting with {} of {owed} deliveries owed to the members in",
                now
            ));
            return;
        }
        sleep(POLL).await;
    }
}
