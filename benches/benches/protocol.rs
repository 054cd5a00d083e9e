//! The protocol's per-message work, shared by both servers: decoding a
//! client frame and encoding the frame every member receives, for a small
//! and a 4 KiB message.
//!
//! Measures: the CPU of `chat_protocol::message` alone. Does not measure:
//! any I/O, queueing, or tungstenite's framing (the servers' other costs).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat_protocol::message::{decode_client_text, encode_chat, encode_client};

fn sizes() -> [(&'static str, String); 2] {
    [
        ("small", "hello, room".to_owned()),
        ("4KiB", "x".repeat(4096)),
    ]
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_client_frame");
    for (name, text) in sizes() {
        let frame = encode_client(&text);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &frame, |b, frame| {
            b.iter(|| decode_client_text(black_box(frame)))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_server_frame");
    for (name, text) in sizes() {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, text| {
            b.iter(|| encode_chat(black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
