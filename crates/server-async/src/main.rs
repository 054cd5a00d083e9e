//! `chat-async`: the tokio chat server.

use std::io::{self, Write};

use anyhow::Context;
use chat_protocol::CommonArgs;
use chat_server_async::{DbBridge, Server, Shutdown};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Chat server on tokio tasks (tokio-tungstenite), with a fixed pool of worker
/// threads.
#[derive(Parser)]
#[command(name = "chat-async", version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,

    /// Worker threads of the tokio runtime [default: the number of cores].
    #[arg(long)]
    workers: Option<usize>,

    /// With --history: how database calls are kept off the async workers
    /// [default: writer].
    #[arg(long, value_enum)]
    db_bridge: Option<DbBridge>,
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
    if workers == 0 {
        refuse(&io::Error::new(
            io::ErrorKind::InvalidInput,
            "--workers must be at least 1",
        ));
    }
    let runtime = chat_server_async::runtime(workers).context("cannot start the tokio runtime")?;

    runtime.block_on(async move {
        // Everything the configuration names is checked and opened before
        // anything listens: a script waiting for `listening on` never sees
        // it from a server that cannot run.
        let shutdown = Shutdown::new();
        let server = Server::open_with_bridge(cli.common.config, cli.db_bridge, shutdown.clone())
            .unwrap_or_else(|e| refuse(&e));
        let listener = chat_server_async::bind(&cli.common.addr)
            .with_context(|| format!("cannot listen on {}", cli.common.addr))?;
        listener
            .set_nonblocking(true)
            .context("cannot make the listener non-blocking")?;
        let addr = listener.local_addr().context("no local address")?;
        let listener =
            tokio::net::TcpListener::from_std(listener).context("cannot register the listener")?;
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

        server.run(listener).await.context("server failed")
    })
}

/// Ends the process with one line: exit status 2 for a configuration that
/// is refused (as clap's own errors), 1 for what could not be opened.
fn refuse(error: &io::Error) -> ! {
    eprintln!("chat-async: {error}");
    let refused = error.kind() == io::ErrorKind::InvalidInput;
    std::process::exit(if refused { 2 } else { 1 })
}
