//! The unit of concurrency of each model: spawning and joining an OS thread
//! against a tokio task, and one wake-up across threads (a crossbeam
//! send/recv ping-pong between two threads) against one across tasks (a
//! tokio mpsc ping-pong between two tasks on a multi-thread runtime).
//!
//! Measures: what a connection's start costs each server, and what each
//! delivery's wake-up costs. Does not measure: memory per unit (see the
//! report's connections runs).

use std::thread;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Round trips per measured batch of the ping-pong.
const ROUND_TRIPS: u64 = 1_000;

fn spawn_and_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_and_join");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("sync", "thread"), |b| {
        b.iter(|| {
            thread::Builder::new()
                .stack_size(chat_server_sync::THREAD_STACK_BYTES)
                .spawn(|| 1)
                .expect("spawn")
                .join()
                .expect("join")
        })
    });
    let runtime = chat_server_async::runtime(2).expect("runtime");
    group.bench_function(BenchmarkId::new("async", "task"), |b| {
        // Timed inside a task on a worker, as a server's accept loop spawns,
        // so that entering the runtime from the bench thread is not counted.
        b.iter_custom(|iters| {
            runtime.block_on(async {
                tokio::spawn(async move {
                    let started = Instant::now();
                    for _ in 0..iters {
                        tokio::spawn(async { 1 }).await.expect("join");
                    }
                    started.elapsed()
                })
                .await
                .expect("timing task")
            })
        })
    });
    group.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("wake_up_ping_pong");
    group.throughput(Throughput::Elements(ROUND_TRIPS));
    group.bench_function(BenchmarkId::new("sync", "threads"), |b| {
        let (to_echo, echo_in) = crossbeam_channel::bounded::<u64>(1);
        let (echo_out, from_echo) = crossbeam_channel::bounded::<u64>(1);
        let echo = thread::spawn(move || {
            for n in echo_in {
                if echo_out.send(n).is_err() {
                    return;
                }
            }
        });
        b.iter(|| {
            for n in 0..ROUND_TRIPS {
                to_echo.send(n).expect("echo alive");
                from_echo.recv().expect("echo alive");
            }
        });
        drop(to_echo);
        echo.join().expect("echo thread");
    });
    let runtime = chat_server_async::runtime(2).expect("runtime");
    group.bench_function(BenchmarkId::new("async", "tasks"), |b| {
        b.iter(|| {
            runtime.block_on(async {
                let (to_echo, mut echo_in) = tokio::sync::mpsc::channel::<u64>(1);
                let (echo_out, mut from_echo) = tokio::sync::mpsc::channel::<u64>(1);
                let echo = tokio::spawn(async move {
                    while let Some(n) = echo_in.recv().await {
                        if echo_out.send(n).await.is_err() {
                            return;
                        }
                    }
                });
                let pinger = tokio::spawn(async move {
                    for n in 0..ROUND_TRIPS {
                        to_echo.send(n).await.expect("echo alive");
                        from_echo.recv().await.expect("echo alive");
                    }
                });
                pinger.await.expect("pinger");
                echo.await.expect("echo");
            })
        })
    });
    group.finish();
}

criterion_group!(benches, spawn_and_join, ping_pong);
criterion_main!(benches);
