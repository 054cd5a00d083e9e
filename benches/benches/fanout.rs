//! Fan-out of one message to N members (10, 100, 1,000) through each
//! server's actual room registry and outbox: `chat_protocol::rooms` over the
//! sync server's crossbeam queues, and over the async server's tokio
//! channels.
//!
//! Measures: one broadcast (encode once, push to every member's bounded
//! queue under the room's lock) plus taking the frame out of every queue.
//! Does not measure: waking a blocked writer (no writer is waiting here; see
//! `concurrency`), nor the `write` that follows in a real server.

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};

use chat_protocol::RoomName;
use chat_protocol::queued::{OutboxLimits, QueueBudget};
use chat_protocol::rooms::{Outbox, Rooms};

const MEMBERS: [usize; 3] = [10, 100, 1_000];
const CAPACITY: usize = 1024;

/// Benchmarks one server's outbox: `make` builds a member's queues (the
/// room's end, the reader's control sender, the writer's inbox), `take`
/// takes one frame out of an inbox.
fn bench_outbox<O: Outbox + 'static, C, I>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    server: &str,
    members: usize,
    make: impl Fn(&OutboxLimits) -> (O, C, I),
    take: impl Fn(&mut I),
) {
    let rooms = Rooms::new();
    let room = RoomName::new("bench").expect("valid room name");
    let (mut joined, mut controls, mut inboxes) = (Vec::new(), Vec::new(), Vec::new());
    // Bytes taken here without a writer are never given back: bounds that
    // the benchmark cannot reach, so that it measures the bookkeeping only.
    let limits = OutboxLimits {
        frames: CAPACITY,
        bytes: usize::MAX / 4,
        budget: QueueBudget::new(usize::MAX / 2),
    };
    for _ in 0..members {
        let (outbox, control, inbox) = make(&limits);
        joined.push(rooms.join(room.clone(), outbox).expect("open registry"));
        controls.push(control);
        inboxes.push(inbox);
    }
    group.bench_with_input(BenchmarkId::new(server, members), &members, |b, _| {
        b.iter(|| {
            joined[0].broadcast("hello, room").expect("open registry");
            inboxes.iter_mut().for_each(&take);
        })
    });
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_one_message");
    for members in MEMBERS {
        group.throughput(Throughput::Elements(members as u64));
        bench_outbox(
            &mut group,
            "sync",
            members,
            chat_server_sync::outbox::outbox,
            |inbox| {
                inbox.frames.try_recv().expect("queued");
            },
        );
        bench_outbox(
            &mut group,
            "async",
            members,
            chat_server_async::outbox::outbox,
            |inbox| {
                inbox.frames.try_recv().expect("queued");
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
