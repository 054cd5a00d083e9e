//! A progress bar on stderr, only when stderr is a terminal (scripts and CI
//! get clean logs).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// The run's progress display (a no-op when hidden).
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar if `wanted` and stderr is a terminal; hidden otherwise.
    pub fn new(wanted: bool) -> Self {
        let bar = if wanted && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg:32} [{bar:40}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar }
    }

    /// A hidden bar.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// Starts a phase of `len` steps.
    pub fn phase(&self, message: &str, len: u64) {
        self.bar.set_message(message.to_owned());
        self.bar.set_length(len);
        self.bar.set_position(0);
    }

    /// One step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Advances one step a second until the handle is aborted.
    pub fn tick_every_second(&self) -> JoinHandle<()> {
        let bar = self.bar.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                bar.inc(1);
            }
        })
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
