//! The well-behaved members: connected for the whole run, in the steady
//! rooms and the slow room, each checking every delivery.
//!
//! A member is one task owning its whole connection (no split): it reads,
//! sends on its schedule if it is one of its room's senders, and pings every
//! [`KEEPALIVE`], since a member that only listens is silent and the server
//! would close it after its idle timeout (300 s by default): a real client
//! keeps itself alive too. Each counts what it got in a [`ReceiverTally`]
//! (exactly once, per-sender order, and a hash of its room's order); any
//! frame that is not one of its room's messages is junk that reached it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chat_protocol::RoomName;
use chat_protocol::message::encode_client;
use chat_protocol::tungstenite::Message;
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, sleep_until};

use crate::client::Connection;
use crate::probe::Probe;
use crate::schedule::Schedule;
use crate::soak::SoakConfig;
use crate::soak::dial::close_politely;
use crate::soak::heard::Heard;
use crate::soak::state::{Open, Shared};
use crate::tally::{ReceiverTally, SharedHistogram, Window};

/// How often every member pings: well inside the servers' default idle
/// timeout (300 s).
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// Sender ids of the slow room's burst senders start here; steady senders'
/// ids are below, so a member tells its room's messages from others'.
pub const BURST_ID_BASE: u32 = 1 << 30;

/// Every message counts (the soak has no warm-up).
pub const WINDOW: Window = Window {
    start_us: 0,
    end_us: u64::MAX,
};

/// A room whose members stay for the whole run.
pub struct Room {
    /// Its name.
    pub name: RoomName,
    /// Its members, senders included.
    pub members: u32,
    /// Its steady senders, its first members (none in the slow room).
    pub senders: Vec<SenderSlot>,
    /// The slow room: its messages come from the burst senders.
    pub slow: bool,
}

/// One steady sender.
pub struct SenderSlot {
    /// Its id, in every message it sends.
    pub id: u32,
    /// Messages sent so far: sequence numbers `0..sent`.
    pub sent: AtomicU64,
    /// Its rate, messages per second.
    pub rate_per_s: f64,
    /// Its place among all the run's steady senders, and how many there
    /// are: their phases are spread evenly over one interval.
    pub place: (u32, u32),
}

impl SenderSlot {
    /// When each message is meant to leave, sending from `start_us`.
    pub fn schedule(&self, start_us: u64) -> Schedule {
        let (index, of) = self.place;
        Schedule::new(start_us, self.rate_per_s, u64::from(index), u64::from(of))
    }
}

/// The rooms of `config`: the steady rooms, then the slow room.
pub fn plan(config: &SoakConfig, tag: &str) -> anyhow::Result<Vec<Room>> {
    let per_room: Vec<u32> = config
        .room_sizes
        .iter()
        .map(|&size| config.senders_per_room.min(size))
        .collect();
    let total: u32 = per_room.iter().sum();
    let mut next_id = 0;
    let mut rooms = Vec::new();
    for (r, (&size, &senders)) in config.room_sizes.iter().zip(&per_room).enumerate() {
        let rate = config.rate_per_room_per_s / f64::from(senders.max(1));
        let senders = (0..senders)
            .map(|_| {
                let id = next_id;
                next_id += 1;
                SenderSlot {
                    id,
                    sent: AtomicU64::new(0),
                    rate_per_s: rate,
                    place: (id, total),
                }
            })
            .collect();
        rooms.push(Room {
            name: RoomName::new(&format!("{tag}_r{r}")).context("steady room name")?,
            members: size,
            senders,
            slow: false,
        });
    }
    rooms.push(Room {
        name: RoomName::new(&format!("{tag}_slow")).context("slow room name")?,
        members: config.slow_members,
        senders: Vec::new(),
        slow: true,
    });
    Ok(rooms)
}

/// What one member got, and how it ended.
pub struct MemberEnd {
    /// Its room, an index of the plan.
    pub room: usize,
    /// Its place in the room.
    pub member: u32,
    /// What it received.
    pub tally: ReceiverTally,
    /// Why it ended before it asked to, if it did.
    pub ended: Option<String>,
}

/// One member.
pub struct Member {
    /// The run.
    pub shared: Arc<Shared>,
    /// The plan.
    pub rooms: Arc<Vec<Room>>,
    /// Its room.
    pub room: usize,
    /// Its place in the room: below the room's sender count, a sender.
    pub member: u32,
    /// When the senders start, µs on the run's clock.
    pub start_us: u64,
    /// Where latencies go (printed in the summary).
    pub latency: SharedHistogram,
    /// Counts it among the open connections.
    pub open: Open,
}

impl Member {
    /// Receives (and sends, if a sender) until told to close or closed.
    pub async fn run(self, mut ws: Connection) -> MemberEnd {
        let shared = Arc::clone(&self.shared);
        let rooms = Arc::clone(&self.rooms);
        let slot = rooms[self.room].senders.get(self.member as usize);
        let schedule = slot.map(|s| s.schedule(self.start_us));
        let mut state = Heard::new(&self);
        let mut sending = slot.is_some();
        let mut seq = 0u64;
        let mut next_ping = Instant::now() + KEEPALIVE;
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        let mut ended = loop {
            let next_send = schedule.map_or(far, |s| shared.at(s.intended_us(seq)).into());
            tokio::select! {
                biased;
                () = shared.close.cancelled() => break None,
                frame = ws.next() => {
                    if let Some(why) = state.take(frame) {
                        break Some(why);
                    }
                }
                () = shared.load.cancelled(), if sending => {
                    sending = false;
                    shared.counts.senders_sending.fetch_sub(1, Ordering::Relaxed);
                }
                () = sleep_until(next_send), if sending => {
                    let (Some(slot), Some(schedule)) = (slot, schedule) else { continue };
                    let probe = Probe {
                        sender: slot.id,
                        seq: seq as u32,
                        intended_us: schedule.intended_us(seq),
                    };
                    let text = encode_client(&probe.encode(shared.config.payload_bytes));
                    if let Err(error) = ws.send(Message::text(text)).await {
                        break Some(format!("its send failed: {error}"));
                    }
                    seq += 1;
                    slot.sent.store(seq, Ordering::Relaxed);
                }
                () = sleep_until(next_ping) => {
                    if let Err(error) = ws.send(Message::Ping(b"soak".to_vec().into())).await {
                        break Some(format!("its ping failed: {error}"));
                    }
                    next_ping += KEEPALIVE;
                }
            }
        };
        if sending {
            shared
                .counts
                .senders_sending
                .fetch_sub(1, Ordering::Relaxed);
        }
        if ended.is_none() {
            ended = close_politely(&mut ws, |frame| state.take(Some(frame))).await;
        }
        let mut tally = state.into_tally();
        tally.flush(&self.latency);
        MemberEnd {
            room: self.room,
            member: self.member,
            tally,
            ended,
        }
    }
}
