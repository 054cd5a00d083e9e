//! The write floor under criterion: `write()` of the servers' 80-byte chat
//! frame to loopback TCP sockets, one frame per call against 16
//! concatenated frames per call, round-robin over 1,000 connection pairs
//! opened and drained by `chat_loadgen::floor` (the sockets and the frame
//! of `chat-loadgen floor`).
//!
//! Measures: the wall time of one `write_all` of b frames to the next
//! socket, the kernel's whole loopback TCP path included (the sender's
//! stack, and the receiver's, which runs on the writer's CPU), per frame
//! through the throughput. Does not measure: CPU time, which is what
//! `chat-loadgen floor` reads (the writer thread's own, from /proc) and
//! what the report uses; here wall time is close to it only while the
//! readers have a core of their own. Nor encoding (the frame is built
//! once), a server's queues and wake-ups, or the readers' work.

use std::io::Write;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat_loadgen::floor::{self, Pairs};

/// Connection pairs written to, round-robin: as many as `chat-loadgen
/// floor` uses by default.
const CONNECTIONS: usize = floor::DEFAULT_CONNECTIONS;
/// Frames concatenated into one write.
const FRAMES_PER_WRITE: [usize; 2] = [1, 16];
/// The message text's size, as the bench script's fan-out runs send.
const PAYLOAD_BYTES: usize = 64;

fn write_floor(c: &mut Criterion) {
    let frame = floor::frame(PAYLOAD_BYTES);
    let mut pairs = Pairs::open(CONNECTIONS, 1).expect("open loopback connection pairs");
    let mut group = c.benchmark_group("write_to_loopback");
    for frames in FRAMES_PER_WRITE {
        let batch = frame.repeat(frames);
        let writers = pairs.writers();
        let mut next = 0;
        group.throughput(Throughput::Elements(frames as u64));
        group.bench_with_input(
            BenchmarkId::new("frames_per_write", frames),
            &frames,
            |b, _| {
                b.iter(|| {
                    writers[next]
                        .write_all(&batch)
                        .expect("write to a drained socket");
                    next = (next + 1) % writers.len();
                })
            },
        );
    }
    group.finish();
    pairs.close().expect("the readers read every byte");
}

criterion_group!(benches, write_floor);
criterion_main!(benches);
