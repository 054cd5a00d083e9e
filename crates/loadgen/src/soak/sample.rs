//! The server process, read from `/proc` every sample interval: resident
//! memory, threads, open descriptors and cumulative CPU, beside the load
//! generator's own connection and delivery counts, with one progress line
//! on stderr per sample (a soak runs for half an hour: its log shows it is
//! alive and how it goes).
//!
//! Descriptors are the entries of `/proc/<pid>/fd`: a server that leaks a
//! socket per churn cycle shows it there long before it hits its limit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::{Instant, sleep, sleep_until};

use crate::sampler;
use crate::soak::state::{Shared, get};
use chat_record::soak::SoakSample;

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> anyhow::Result<u64> {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))?;
    Ok(entries.count() as u64)
}

/// Reads `pid` now, with the run's counts.
pub async fn take(shared: &Shared, pid: u32) -> anyhow::Result<SoakSample> {
    let t_s = shared.t_s();
    let (reading, fds) = tokio::task::spawn_blocking(move || {
        let reading = sampler::read(pid)?;
        anyhow::Ok((reading, fds(pid)?))
    })
    .await
    .context("the /proc reader panicked")??;
    Ok(SoakSample {
        t_s,
        rss_kib: reading.rss_kib,
        threads: reading.threads,
        fds,
        cpu_s: reading.cpu_user_s + reading.cpu_system_s,
        client_connections: get(&shared.counts.connections),
        delivered: get(&shared.counts.delivered),
    })
}

/// How often, and how long at most, [`settled`] reads the server.
const SETTLE_POLL: Duration = Duration::from_millis(250);
/// See [`SETTLE_POLL`].
const SETTLE_MAX: Duration = Duration::from_secs(5);

/// The server once every client has gone: read until its threads and
/// descriptors are the same twice in a row (a thread-per-connection server
/// takes a moment to end its threads), at most [`SETTLE_MAX`], so that the
/// last sample compares with the first.
pub async fn settled(shared: &Shared, pid: u32) -> anyhow::Result<SoakSample> {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut last = take(shared, pid).await?;
    while Instant::now() < deadline {
        sleep(SETTLE_POLL).await;
        let next = take(shared, pid).await?;
        if (next.threads, next.fds) == (last.threads, last.fds) {
            return Ok(next);
        }
        last = next;
    }
    Ok(last)
}

/// Takes a sample every interval from the first one's time on, into
/// `samples`, until the run closes its members. If the server cannot be
/// read (it died), notes it and stops the load.
pub async fn run(shared: Arc<Shared>, pid: u32, mut samples: Vec<SoakSample>) -> Vec<SoakSample> {
    let interval = shared.config.sample_interval;
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            () = shared.close.cancelled() => break,
            () = sleep_until(next) => {}
        }
        match take(&shared, pid).await {
            Ok(sample) => {
                let previous = samples.last().copied();
                progress(&shared, &sample, previous.as_ref());
                samples.push(sample);
            }
            Err(error) => {
                shared.note(format!(
                    "SERVER: cannot read the server process {pid}: {error:#}; the load stops"
                ));
                shared.load.cancel();
                break;
            }
        }
        next = (next + interval).max(Instant::now());
    }
    samples
}

/// One line on stderr: the sample, and what the run counted so far.
pub fn progress(shared: &Shared, sample: &SoakSample, previous: Option<&SoakSample>) {
    let c = &shared.counts;
    let cores = previous.map_or(0.0, |p| sample.cpu_since(p));
    eprintln!(
        "soak [{label}] {t:>6.0} s  rss {rss:>8.1} MiB  threads {threads:>5}  fds {fds:>5}  cpu {cpu:>7.1} s ({cores:.2} cores)  clients {clients:>4}  delivered {delivered:>9}  churn {cycles}/{churn_failed} failed  slow {slow_1013}/{slow} 1013  bad {answered}/{bad} answered",
        label = shared.config.label,
        t = sample.t_s,
        rss = sample.rss_kib as f64 / 1024.0,
        threads = sample.threads,
        fds = sample.fds,
        cpu = sample.cpu_s,
        clients = sample.client_connections,
        delivered = sample.delivered,
        cycles = get(&c.churn_cycles),
        churn_failed = get(&c.churn_failures),
        slow_1013 = get(&c.slow_1013),
        slow = get(&c.slow_readers),
        answered = get(&c.bad_answered),
        bad = get(&c.bad_clients),
    );
}
