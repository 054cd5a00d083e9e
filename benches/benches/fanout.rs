//! Fan-out of one message to N members (10, 100, 1,000) through each
//! server's actual room registry and outbox: `chat_protocol::rooms` over the
//! sync server's crossbeam queues, and over the async server's tokio
//! channels.
//!
//! Measures: one broadcast (encode once, push to every member's bounded
//! queue under the room's lock) plus taking the frame out of every queue.
//! Does not measure: waking a blocked writer (no writer is waiting here; see
//! `concurrency`), nor the `write` that follows in a real server.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat_protocol::RoomName;
use chat_protocol::rooms::Rooms;

const MEMBERS: [usize; 3] = [10, 100, 1_000];
const CAPACITY: usize = 1024;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_one_message");
    let room = RoomName::new("bench").expect("valid room name");
    for members in MEMBERS {
        group.throughput(Throughput::Elements(members as u64));

        let rooms = Rooms::new();
        let mut inboxes = Vec::new();
        let mut keep = Vec::new();
        let mut joined = Vec::new();
        for _ in 0..members {
            let (outbox, control, inbox) = chat_server_sync::outbox::outbox(CAPACITY);
            joined.push(rooms.join(room.clone(), outbox).expect("open registry"));
            inboxes.push(inbox);
            keep.push(control);
        }
        group.bench_with_input(BenchmarkId::new("sync", members), &members, |b, _| {
            b.iter(|| {
                joined[0].broadcast("hello, room").expect("open registry");
                for inbox in &inboxes {
                    inbox.frames.try_recv().expect("queued");
                }
            })
        });
        drop((joined, inboxes, keep));

        let rooms = Rooms::new();
        let mut inboxes = Vec::new();
        let mut keep = Vec::new();
        let mut joined = Vec::new();
        for _ in 0..members {
            let (outbox, control, inbox) = chat_server_async::outbox::outbox(CAPACITY);
            joined.push(rooms.join(room.clone(), outbox).expect("open registry"));
            inboxes.push(inbox);
            keep.push(control);
        }
        group.bench_with_input(BenchmarkId::new("async", members), &members, |b, _| {
            b.iter(|| {
                joined[0].broadcast("hello, room").expect("open registry");
                for inbox in &mut inboxes {
                    inbox.frames.try_recv().expect("queued");
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
