//! The `chat-async` binary as a process: it prints its address first, serves
//! chat, keeps a fixed pool of threads however many connections it holds
//! (`--workers 2`: 200 connections, a handful of threads), and on `SIGTERM`
//! closes every client with 1001 and exits 0.

use std::time::Duration;

use chat_testkit::{
    Client, ServerProcess, assert_refused, assert_version_names, connect_crowd, unique_room,
};

const BIN: &str = env!("CARGO_BIN_EXE_chat-async");

/// Clients in the thread-count test.
const CLIENTS: usize = 200;

/// Worker threads in the thread-count test.
const WORKERS: u64 = 2;

/// Threads the server may have besides its workers (the main thread, a
/// signal or accept thread, tokio's blocking pool), whatever the number of
/// connections.
const OTHER_THREADS: u64 = 8;

/// How long the server may take to exit after `SIGTERM`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_its_address_chats_and_stops_on_sigterm() {
    let server = ServerProcess::start(BIN, &["--addr", "127.0.0.1:0"]);
    let addr = server.addr();
    assert_ne!(
        addr.port(),
        0,
        "the printed address should have the bound port"
    );
    let room = unique_room("async_binary_chat");
    let mut alice = Client::connect(addr, &room).await;
    let mut bob = Client::connect(addr, &room).await;

    alice.send_chat("hello through chat-async").await;
    alice.expect_message("hello through chat-async").await;
    bob.expect_message("hello through chat-async").await;

    server.stop_gracefully(vec![alice, bob], EXIT_TIMEOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_a_fixed_thread_pool() {
    let workers = WORKERS.to_string();
    let server = ServerProcess::start(BIN, &["--addr", "127.0.0.1:0", "--workers", &workers]);
    let idle = server.status();
    let clients = connect_crowd(server.addr(), "async_threads", CLIENTS, 4).await;
    let busy = server.status();
    println!(
        "chat-async --workers {WORKERS}: {} threads and {} KiB RSS idle; {} threads and {} KiB \
         RSS with {CLIENTS} connections",
        idle.threads, idle.vm_rss_kib, busy.threads, busy.vm_rss_kib
    );
    assert!(
        busy.threads <= WORKERS + OTHER_THREADS,
        "chat-async --workers {WORKERS} should stay at its pool plus a few threads: {} threads \
         for {CLIENTS} connections",
        busy.threads
    );

    server.stop_gracefully(clients, EXIT_TIMEOUT).await;
}

/// A configuration that cannot run is refused before anything listens,
/// with one line that says why.
#[test]
fn refuses_a_configuration_that_cannot_run_before_it_listens() {
    let args = ["--addr", "127.0.0.1:0", "--db-bridge", "inline"];
    assert_refused(BIN, "chat-async", &args, "--history", EXIT_TIMEOUT);
}

/// `--version` names the binary, not its crate.
#[test]
fn version_names_the_binary() {
    assert_version_names(BIN, "chat-async", EXIT_TIMEOUT);
}
