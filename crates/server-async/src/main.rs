//! `chat-async`: the tokio chat server.

use std::io::Write;

use anyhow::Context;
use chat_protocol::CommonArgs;
use chat_server_async::Shutdown;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Chat server on tokio tasks (tokio-tungstenite), with a fixed pool of worker
/// threads.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// Worker threads of the tokio runtime [default: the number of cores].
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let workers = cli
        .workers
        .unwrap_or_else(chat_server_async::default_workers);
    anyhow::ensure!(workers > 0, "--workers must be at least 1");
    let listener = chat_server_async::bind(&cli.common.addr)
        .with_context(|| format!("cannot listen on {}", cli.common.addr))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let addr = listener.local_addr().context("no local address")?;
    let runtime = chat_server_async::runtime(workers).context("cannot start the tokio runtime")?;

    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).context("cannot register the listener")?;
        let shutdown = Shutdown::new();
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install signal handlers")?;
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install signal handlers")?;
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
            on_signal.trigger();
        });

        // Last, once a signal would be handled: a script may send one as
        // soon as it has read this line.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")?;
        stdout.flush()?;
        drop(stdout);

        chat_server_async::run(listener, cli.common.config, shutdown)
            .await
            .context("server failed")
    })
}
