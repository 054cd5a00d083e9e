//! `chat-sync`: the thread-per-connection chat server.

use std::io::Write;

use anyhow::Context;
use chat_protocol::CommonArgs;
use chat_server_sync::Shutdown;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Chat server, thread per connection (blocking tungstenite, crossbeam queues).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let listener = chat_server_sync::bind(&cli.common.addr)
        .with_context(|| format!("cannot listen on {}", cli.common.addr))?;
    let addr = listener.local_addr().context("no local address")?;

    let shutdown = Shutdown::new();
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let on_signal = shutdown.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "signal received");
                on_signal.trigger();
            }
        })
        .context("cannot start the signal thread")?;

    // Last, once a signal would be handled: a script may send one as soon as
    // it has read this line.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    chat_server_sync::run(listener, cli.common.config, shutdown).context("server failed")
}
