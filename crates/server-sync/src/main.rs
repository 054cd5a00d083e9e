//! `chat-sync`: the thread-per-connection chat server.

use std::io::{self, Write};

use anyhow::Context;
use chat_protocol::CommonArgs;
use chat_server_sync::{Server, Shutdown};
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Chat server, thread per connection (blocking tungstenite, crossbeam queues).
#[derive(Parser)]
#[command(name = "chat-sync", version, about)]
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

    // Everything the configuration names is checked and opened before
    // anything listens: a script waiting for `listening on` never sees it
    // from a server that cannot run.
    let shutdown = Shutdown::new();
    let server = Server::open(cli.common.config, shutdown.clone()).unwrap_or_else(|e| refuse(&e));
    let listener = chat_server_sync::bind(&cli.common.addr)
        .with_context(|| format!("cannot listen on {}", cli.common.addr))?;
    let addr = listener.local_addr().context("no local address")?;

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

    server.run(listener).context("server failed")
}

/// Ends the process with one line: exit status 2 for a configuration that
/// is refused (as clap's own errors), 1 for what could not be opened.
fn refuse(error: &io::Error) -> ! {
    eprintln!("chat-sync: {error}");
    let refused = error.kind() == io::ErrorKind::InvalidInput;
    std::process::exit(if refused { 2 } else { 1 })
}
