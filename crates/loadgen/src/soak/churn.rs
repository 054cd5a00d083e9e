//! Constant connection churn: connect, join a room of its own, send one
//! message, receive its echo, close 1000; again, `churn_per_s` times a
//! second, for the whole run.
//!
//! Each cycle's room is new (`<tag>_c<n>`), so a server that keeps
//! anything per room after its last member leaves (a registry entry, a
//! channel) grows with every cycle, and the samples show it. The cycles are
//! open-loop (started on the clock, not after the previous one), with at
//! most [`MAX_IN_FLIGHT`] at once, so a server that stalls makes them queue
//! rather than the load generator's memory grow.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chat_protocol::RoomName;
use chat_protocol::message::{ServerFrame, encode_client};
use chat_protocol::tungstenite::Message;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until};
use tokio_util::task::TaskTracker;

use crate::soak::dial::{close_politely, describe_close};
use crate::soak::state::{Open, Shared, bump};

/// Cycles under way at once, at most.
pub const MAX_IN_FLIGHT: usize = 64;

/// How long a cycle waits for its echo.
pub const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs cycles until the load stops, then waits for those under way.
pub async fn run(shared: Arc<Shared>) {
    let rate = shared.config.churn_per_s;
    if rate <= 0.0 {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let tracker = TaskTracker::new();
    let mut next = Instant::now();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            () = shared.load.cancelled() => break,
            () = sleep_until(next) => {}
        }
        let permit = tokio::select! {
            () = shared.load.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let shared = Arc::clone(&shared);
        tracker.spawn(async move {
            cycle(&shared, n).await;
            drop(permit);
        });
        n += 1;
        // Behind by more than a second (a stalled server): start again
        // from now rather than fire the backlog at once.
        next = (next + interval).max(Instant::now() - Duration::from_secs(1));
    }
    tracker.close();
    tracker.wait().await;
}

/// One cycle, counted.
async fn cycle(shared: &Arc<Shared>, n: u64) {
    match attempt(shared, n).await {
        Ok(()) => bump(&shared.counts.churn_cycles),
        Err(error) => {
            bump(&shared.counts.churn_failures);
            shared.note(format!("CHURN: cycle {n} failed: {error:#}"));
        }
    }
}

async fn attempt(shared: &Arc<Shared>, n: u64) -> anyhow::Result<()> {
    let room = RoomName::new(&format!("{}_c{n}", shared.tag)).context("churn room name")?;
    let (mut ws, _) = shared
        .target
        .connect(&room, None, shared.config.connect_timeout)
        .await
        .with_context(|| format!("cannot connect to room {room}"))?;
    let _open = Open::new(shared);
    let text = format!("churn {n}");
    ws.send(Message::text(encode_client(&text)))
        .await
        .context("cannot send its message")?;
    bump(&shared.counts.churn_sent);
    let echo = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(frame))) => match ServerFrame::parse(&frame) {
                    Ok(ServerFrame::Message { message }) if message == text => return Ok(()),
                    _ => {
                        bump(&shared.counts.other_foreign);
                        bail!("received {frame:?} instead of its echo");
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    bump(&shared.counts.other_unexpected_closes);
                    bail!(
                        "closed by the server before its echo: {}",
                        describe_close(frame.as_ref())
                    );
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    bump(&shared.counts.other_unexpected_closes);
                    return Err(error).context("its connection broke before its echo");
                }
                None => {
                    bump(&shared.counts.other_unexpected_closes);
                    bail!("its connection ended before its echo");
                }
            }
        }
    };
    tokio::time::timeout(ECHO_TIMEOUT, echo)
        .await
        .with_context(|| format!("no echo within {} s", ECHO_TIMEOUT.as_secs()))??;
    bump(&shared.counts.churn_echoed);
    bump(&shared.counts.delivered);
    let trouble = close_politely(&mut ws, |frame| match frame {
        Ok(Message::Text(frame)) => {
            bump(&shared.counts.other_foreign);
            Some(format!("received {frame:?} after its echo"))
        }
        Ok(_) => None,
        Err(error) => Some(format!("its connection broke while closing: {error}")),
    })
    .await;
    if let Some(why) = trouble {
        bump(&shared.counts.other_unexpected_closes);
        bail!("{why}");
    }
    Ok(())
}
