//! Now and then a slow reader: a client joins the slow room with a small
//! receive buffer and stops reading, while a burst sender in the same room
//! sends fast; the server must cut it off with 1013 once its outbound queue
//! is full, and the slow room's members, reading, must lose nothing.
//!
//! The burst must outgrow what can hold a member's frames without a drop:
//! the kernel's buffers (the server's send buffer autotunes up to
//! `tcp_wmem[2]`, 4 MiB by default) plus the server's outbox (1,024 frames
//! by default): about 1,600 frames of 8 KiB. The default burst (3,000 of
//! 8 KiB) is about twice that, and short enough to be over well within the
//! servers' default write timeout (10 s), which would end the slow reader
//! another way. The burst sender keeps [`BURST_WINDOW`] messages in flight
//! and reads its own echoes: it is a member too and must not be the slow
//! one. Once the burst is over, the slow reader reads again: the frames
//! queued before it fell behind, then the 1013.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chat_protocol::RoomName;
use chat_protocol::message::encode_client;
use chat_protocol::tungstenite::Message;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until};

use crate::probe::{Probe, Received};
use crate::soak::dial::connect_path;
use crate::soak::dial::{close_politely, describe_close};
use crate::soak::member::BURST_ID_BASE;
use crate::soak::state::{Open, Shared, bump, first_at};
use crate::tally::{ReceiverTally, SharedHistogram};

/// The slow reader's `SO_RCVBUF` (the kernel doubles it).
pub const SLOW_RECV_BUFFER: u32 = 4 * 1024;

/// Messages the burst sender has sent and not yet received back, at most.
pub const BURST_WINDOW: u64 = 8;

/// How long the burst sender waits for its next echo.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the slow reader, reading again, waits for its close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// One burst: its sender's id and the messages it sent, `0..sent`, owed to
/// every member of the slow room.
pub type Burst = (u32, u64);

/// Runs an episode every `slow_reader_every` until the load stops; returns
/// the bursts sent.
pub async fn run(shared: Arc<Shared>, room: RoomName) -> Vec<Burst> {
    let every = shared.config.slow_reader_every;
    let mut bursts = Vec::new();
    if every.is_zero() {
        return bursts;
    }
    let mut next = Instant::from_std(shared.clock) + first_at(every);
    for k in 0.. {
        tokio::select! {
            () = shared.load.cancelled() => break,
            () = sleep_until(next) => {}
        }
        bump(&shared.counts.slow_readers);
        match episode(&shared, &room, k, &mut bursts).await {
            Ok(()) => bump(&shared.counts.slow_1013),
            Err(error) => shared.note(format!(
                "SLOW: slow reader {k} was not closed with 1013: {error:#}"
            )),
        }
        next = (next + every).max(Instant::now());
    }
    bursts
}

async fn episode(
    shared: &Arc<Shared>,
    room: &RoomName,
    k: u32,
    bursts: &mut Vec<Burst>,
) -> anyhow::Result<()> {
    let timeout = shared.config.connect_timeout;
    let mut slow = connect_path(
        &shared.target,
        &room.ws_path(),
        Some(SLOW_RECV_BUFFER),
        timeout,
    )
    .await
    .context("it could not connect")?;
    let _open = Open::new(shared);
    let id = BURST_ID_BASE + k;
    let sent = burst(shared, room, id).await;
    bursts.push((id, sent));
    let mut received = 0u64;
    let read = async {
        loop {
            match slow.next().await {
                Some(Ok(Message::Text(_))) => {
                    received += 1;
                    if received >= sent {
                        bail!(
                            "it received all {sent} messages of the burst: it was never too slow (raise --slow-burst)"
                        );
                    }
                }
                Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == 1013 => {
                    return Ok(());
                }
                Some(Ok(Message::Close(frame))) => {
                    bail!(
                        "closed with {} after {received} of the burst's {sent} messages",
                        describe_close(frame.as_ref())
                    )
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!(
                    "its connection broke, without a close frame, after {received} of the burst's {sent} messages: {error}"
                ),
                None => bail!(
                    "its connection ended, without a close frame, after {received} of the burst's {sent} messages"
                ),
            }
        }
    };
    tokio::time::timeout(CLOSE_TIMEOUT, read)
        .await
        .map_err(|_| {
            anyhow!(
                "no close within {} s of reading again",
                CLOSE_TIMEOUT.as_secs()
            )
        })?
}

/// Sends the burst from a new member of `room` with sender id `id`, reading
/// its own echoes; accounts for what it got. Returns the messages sent.
async fn burst(shared: &Arc<Shared>, room: &RoomName, id: u32) -> u64 {
    let counts = &shared.counts;
    let mut tally = ReceiverTally::default();
    let mut sent = 0u64;
    let outcome = async {
        let (mut ws, _) = shared
            .target
            .connect(room, None, shared.config.connect_timeout)
            .await
            .context("the burst sender could not connect")?;
        let _open = Open::new(shared);
        let latency = SharedHistogram::default();
        let n = shared.config.slow_burst;
        while tally.measured < n {
            while sent < n && sent - tally.measured < BURST_WINDOW {
                let probe = Probe {
                    sender: id,
                    seq: sent as u32,
                    intended_us: shared.now_us(),
                };
                let text = encode_client(&probe.encode(shared.config.slow_message_bytes));
                ws.feed(Message::text(text))
                    .await
                    .context("the burst sender's send failed")?;
                sent += 1;
                bump(&counts.burst_sent);
            }
            ws.flush().await.context("the burst sender's send failed")?;
            let frame = tokio::time::timeout(ECHO_TIMEOUT, ws.next())
                .await
                .map_err(|_| {
                    anyhow!(
                        "the burst sender got no echo for {} s",
                        ECHO_TIMEOUT.as_secs()
                    )
                })?;
            match frame {
                Some(Ok(Message::Text(text))) => match Received::classify(&text) {
                    Received::Probe(probe) if probe.sender == id => {
                        let before = tally.measured;
                        tally.on_probe(probe, shared.now_us(), super::member::WINDOW, &latency);
                        if tally.measured > before {
                            bump(&counts.delivered);
                        }
                    }
                    _ => {
                        bump(&counts.other_foreign);
                        bail!("the burst sender received a frame not its own: {text:?}");
                    }
                },
                Some(Ok(Message::Close(frame))) => bail!(
                    "the burst sender was closed: {}",
                    describe_close(frame.as_ref())
                ),
                Some(Ok(_)) => {}
                Some(Err(error)) => bail!("the burst sender's connection broke: {error}"),
                None => bail!("the burst sender's connection ended"),
            }
        }
        if let Some(why) = close_politely(&mut ws, |_| None).await {
            bail!("the burst sender, closing: {why}");
        }
        anyhow::Ok(())
    }
    .await;
    counts
        .burst_duplicates
        .fetch_add(tally.duplicated, std::sync::atomic::Ordering::Relaxed);
    counts
        .burst_out_of_order
        .fetch_add(tally.out_of_order, std::sync::atomic::Ordering::Relaxed);
    if let Err(error) = outcome {
        bump(&counts.other_unexpected_closes);
        let lost = sent - tally.measured;
        counts
            .burst_lost
            .fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        shared.note(format!(
            "SLOW: burst {id}: {error:#} ({lost} of its {sent} messages never came back to it)"
        ));
    }
    sent
}
