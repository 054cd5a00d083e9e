//! Queued bytes under stalled readers, for either server binary: each
//! outbox bounded by `--outbox-bytes`, the server by `--max-queued-bytes`.
//!
//! Like [`crate::limits`], they need the server in a process of its own, so
//! that its peak memory (`VmHWM`) can be read from `/proc`; each server
//! crate calls them from its `tests/limits.rs`.

use std::net::SocketAddr;

use crate::limits::{EXIT_TIMEOUT, name, usage};
use crate::{Client, Connect, ServerProcess, unique_room};

/// `--max-message-bytes` in these tests; messages are a little shorter.
const MESSAGE_BYTES: u64 = 32 * 1024;
/// Room the server's own buffers may take beyond the queues: the
/// connections' read and write buffers (sized for 32 KiB messages), the
/// allocator's slack, the threads' stacks touched meanwhile.
const MARGIN_KIB: u64 = 24 * 1024;
/// What a stalled member's socket buffers can hold on loopback, at most (a
/// few MB): a sender must send that much more to fill a queue.
const SOCKET_SLACK_BYTES: u64 = 8 * 1024 * 1024;

/// Rooms with a stalled member in [`full_queues_stay_within_the_bound`].
const STALLED_ROOMS: u64 = 8;
/// `--outbox-bytes` there.
const STALLED_OUTBOX_BYTES: u64 = 1024 * 1024;
/// `--outbox-capacity` there: 16 MiB of such messages, so that the bytes
/// are what bound the queue.
const STALLED_OUTBOX_FRAMES: u64 = 512;

/// Memory under many full queues is bounded in bytes: in each of
/// `STALLED_ROOMS` rooms a member stops reading while another sends
/// messages near the size limit until the stalled member's outbox passes
/// `--outbox-bytes`. The stalled members are closed with 1013, every sender
/// gets all its messages back, and the server's peak RSS (`VmHWM`) stays
/// within `rooms × --outbox-bytes` plus [`MARGIN_KIB`] (the same messages
/// under the frame bound alone could queue 16 MiB per room).
///
/// Returns the peak growth and the worst case, in KiB, for the README.
pub async fn full_queues_stay_within_the_bound(bin: &str) -> (u64, u64) {
    let server = start(
        bin,
        STALLED_OUTBOX_BYTES,
        1024 * 1024 * 1024,
        STALLED_OUTBOX_FRAMES,
    );
    let (addr, pid) = (server.addr(), server.pid());
    let idle_kib = usage(pid).rss_kib;

    let mut rooms = tokio::task::JoinSet::new();
    for _ in 0..STALLED_ROOMS {
        rooms.spawn(fill_a_stalled_member(addr));
    }
    let mut senders = Vec::new();
    while let Some(room) = rooms.join_next().await {
        senders.push(room.expect("a stalled room failed"));
    }
    let worst_kib = STALLED_ROOMS * STALLED_OUTBOX_BYTES / 1024;
    let growth = peak_growth(bin, pid, idle_kib, worst_kib);
    server.stop_gracefully(senders, EXIT_TIMEOUT).await;
    (growth, worst_kib)
}

/// One room: a member that never reads, and a sender that sends (reading
/// each message back) until the stalled member's outbox, and the socket
/// buffers before it, must have overflowed. Checks that the stalled member
/// is closed with 1013; returns the sender, still connected.
async fn fill_a_stalled_member(addr: SocketAddr) -> Client {
    let room = unique_room("stalled");
    let stalled_room = room.clone();
    let mut stalled =
        tokio::task::spawn_blocking(move || crate::DeafClient::connect(addr, &stalled_room))
            .await
            .expect("connecting the stalled member");
    let mut sender = Client::connect(addr, &room).await;
    let sends = (STALLED_OUTBOX_BYTES + SOCKET_SLACK_BYTES) / MESSAGE_BYTES;
    send_echoed(&mut sender, "fill", sends).await;
    let end = tokio::task::spawn_blocking(move || stalled.wait_for_close(crate::STEP_TIMEOUT))
        .await
        .expect("reading the stalled member");
    assert_eq!(
        u16::from(end.close.code),
        1013,
        "the stalled member should be closed as too slow: {end:?}"
    );
    sender
}

/// `--max-queued-bytes` in [`the_largest_queue_goes_first`].
const BUDGET_BYTES: u64 = 32 * 1024 * 1024;
/// `--outbox-bytes` there: above every queue the test builds.
const BUDGET_OUTBOX_BYTES: u64 = 40 * 1024 * 1024;
/// Messages sent in the three rooms (24, 7 and 16 MiB): the first two fit
/// the budget together, the third takes the total past it however much the
/// sockets absorb (the server's send buffer grows to `tcp_wmem`'s 4 MiB on
/// loopback), and the first stays the largest.
const ROOM_SENDS: [u64; 3] = [768, 224, 512];
/// The stalled members' receive buffers: small, so that the server's queue
/// holds nearly all they are sent.
const STALLED_RECV_BUFFER: u32 = 4096;

/// The server's budget: in three rooms a member stops reading while a
/// sender fills its queue, the first room's most (24 MiB), then the
/// second's and the third's (7 and 16 MiB), each below `--outbox-bytes` but together
/// past `--max-queued-bytes`. The first room's stalled member, the largest
/// queue, is hung up on; the other two, reading at last, get every message
/// once and in order, then a barrier; the server's peak RSS stays within
/// the budget plus [`MARGIN_KIB`].
pub async fn the_largest_queue_goes_first(bin: &str) {
    let server = start(bin, BUDGET_OUTBOX_BYTES, BUDGET_BYTES, 1024);
    let (addr, pid) = (server.addr(), server.pid());
    let idle_kib = usage(pid).rss_kib;

    let mut rooms = Vec::new();
    for sends in ROOM_SENDS {
        let room = unique_room("budget");
        let stalled = Connect::room(&room)
            .name("stalled")
            .recv_buffer_bytes(STALLED_RECV_BUFFER)
            .to(addr)
            .await;
        let mut sender = Client::connect(addr, &room).await;
        send_echoed(&mut sender, &room, sends).await;
        rooms.push((room, stalled, sender, sends));
    }
    peak_growth(bin, pid, idle_kib, BUDGET_BYTES / 1024);

    let mut rooms = rooms.into_iter();
    let (_, mut largest, first_sender, sends) = rooms.next().expect("three rooms");
    let (heard, close) = largest.recv_until_gone().await;
    assert!(
        (heard.len() as u64) < sends,
        "the largest queue should have been dropped, yet its member heard all {sends} messages (close: {close:?})"
    );
    let mut senders = vec![first_sender];
    for (room, mut stalled, mut sender, sends) in rooms {
        for i in 0..sends {
            stalled.expect_message(&message(&room, i)).await;
        }
        let barrier = format!("barrier in {room}");
        sender.send_chat(&barrier).await;
        sender.expect_message(&barrier).await;
        stalled.expect_message(&barrier).await;
        senders.extend([stalled, sender]);
    }
    server.stop_gracefully(senders, EXIT_TIMEOUT).await;
}

/// Starts `bin` with 32 KiB messages and these queue bounds; writers wait
/// for a stalled member as long as the test lasts (on a loaded machine the
/// default 10 s could end them, without a close frame, before the test
/// reads).
fn start(bin: &str, outbox_bytes: u64, max_queued_bytes: u64, outbox_frames: u64) -> ServerProcess {
    let (outbox_bytes, max_queued_bytes) = (outbox_bytes.to_string(), max_queued_bytes.to_string());
    let (outbox_frames, max_message) = (outbox_frames.to_string(), MESSAGE_BYTES.to_string());
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--max-message-bytes",
        &max_message,
        "--outbox-capacity",
        &outbox_frames,
        "--outbox-bytes",
        &outbox_bytes,
        "--max-queued-bytes",
        &max_queued_bytes,
        "--write-timeout-secs",
        "600",
    ];
    ServerProcess::start(bin, &args)
}

/// Message `i` of `tag`, a little under the message limit.
fn message(tag: &str, i: u64) -> String {
    let prefix = format!("{tag} {i} ");
    let fill = MESSAGE_BYTES as usize - 64 - prefix.len();
    format!("{prefix}{}", "x".repeat(fill))
}

/// Sends `sends` messages, each read back before the next: each is then
/// queued at (or written to) every member of the room.
async fn send_echoed(sender: &mut Client, tag: &str, sends: u64) {
    for i in 0..sends {
        let text = message(tag, i);
        sender.send_chat(&text).await;
        sender.expect_message(&text).await;
    }
}

/// The server's peak RSS above `idle_kib`, checked against `bound_kib` plus
/// [`MARGIN_KIB`].
fn peak_growth(bin: &str, pid: u32, idle_kib: u64, bound_kib: u64) -> u64 {
    let peak_kib: u64 = crate::proc_status_field(pid, "VmHWM")
        .expect("VmHWM")
        .split_whitespace()
        .next()
        .and_then(|kib| kib.parse().ok())
        .expect("VmHWM in kB");
    let growth = peak_kib.saturating_sub(idle_kib);
    eprintln!(
        "{}: queues: peak RSS {peak_kib} KiB, {growth} KiB above idle; bound {bound_kib} KiB",
        name(bin)
    );
    assert!(
        growth <= bound_kib + MARGIN_KIB,
        "peak RSS grew by {growth} KiB, beyond the bound {bound_kib} KiB + {MARGIN_KIB} KiB"
    );
    growth
}
