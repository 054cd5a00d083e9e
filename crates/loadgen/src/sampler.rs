//! Samples a process from `/proc` during a run: threads and resident memory
//! (peak and mean, every [`INTERVAL`]), user and system CPU and context
//! switches (at the start and end of the measured window).
//!
//! CPU comes from `utime` and `stime` in `/proc/PID/stat` (clock ticks, of
//! the whole process); context switches are summed over every thread's
//! `/proc/PID/task/TID/status` (`/proc/PID/status` counts only the main
//! thread), so they miss threads that ended inside the window.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use procfs::process::Process;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::record::{ProcessFigures, ProcessSample};

/// How often threads and RSS are read.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// Threads.
    pub threads: u64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// User CPU since the process started, seconds.
    pub cpu_user_s: f64,
    /// System CPU since the process started, seconds.
    pub cpu_system_s: f64,
}

impl Reading {
    /// Threads and RSS only.
    pub fn sample(&self) -> ProcessSample {
        ProcessSample {
            threads: self.threads,
            rss_kib: self.rss_kib,
        }
    }
}

/// Reads `pid`'s threads, RSS and CPU.
pub fn read(pid: u32) -> anyhow::Result<Reading> {
    let stat = Process::new(pid as i32)
        .and_then(|process| process.stat())
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let ticks = procfs::ticks_per_second() as f64;
    Ok(Reading {
        threads: stat.num_threads.max(0) as u64,
        rss_kib: stat.rss * procfs::page_size() / 1024,
        cpu_user_s: stat.utime as f64 / ticks,
        cpu_system_s: stat.stime as f64 / ticks,
    })
}

/// Voluntary and involuntary context switches of every live thread of `pid`.
pub fn context_switches(pid: u32) -> (u64, u64) {
    let Ok(tasks) = Process::new(pid as i32).and_then(|p| p.tasks()) else {
        return (0, 0);
    };
    tasks.flatten().filter_map(|task| task.status().ok()).fold(
        (0, 0),
        |(voluntary, involuntary), status| {
            (
                voluntary + status.voluntary_ctxt_switches.unwrap_or(0),
                involuntary + status.nonvoluntary_ctxt_switches.unwrap_or(0),
            )
        },
    )
}

#[derive(Default)]
struct Accumulated {
    samples: u64,
    threads_peak: u64,
    threads_sum: u64,
    rss_peak_kib: u64,
    rss_sum_kib: u64,
}

/// A window's starting point.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    reading: Reading,
    voluntary: u64,
    involuntary: u64,
}

/// Samples one process in the background until finished.
pub struct Sampler {
    pid: u32,
    accumulated: Arc<Mutex<Accumulated>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    mark: Option<Mark>,
}

impl Sampler {
    /// Starts sampling `pid` (fails if it cannot be read at all).
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        read(pid)?;
        let accumulated = Arc::new(Mutex::new(Accumulated::default()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample_until(pid, Arc::clone(&accumulated), stop.clone()));
        Ok(Self {
            pid,
            accumulated,
            stop,
            task,
            mark: None,
        })
    }

    /// The process sampled.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Starts the measured window now: CPU and context switches count from
    /// here, and peaks and means restart.
    pub async fn begin_window(&mut self) {
        let pid = self.pid;
        let mark = tokio::task::spawn_blocking(move || mark(pid))
            .await
            .ok()
            .flatten();
        *self
            .accumulated
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Accumulated::default();
        self.mark = mark;
    }

    /// Ends the window and the sampling. `deliveries` (if any) gives CPU per
    /// 1,000 deliveries.
    pub async fn finish(self, deliveries: Option<u64>) -> ProcessFigures {
        let pid = self.pid;
        let end = tokio::task::spawn_blocking(move || mark(pid))
            .await
            .ok()
            .flatten();
        self.stop.cancel();
        let _ = self.task.await;
        let accumulated = self
            .accumulated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut figures = ProcessFigures {
            pid,
            samples: accumulated.samples,
            threads_peak: accumulated.threads_peak,
            rss_peak_kib: accumulated.rss_peak_kib,
            ..ProcessFigures::default()
        };
        if accumulated.samples > 0 {
            figures.threads_mean = accumulated.threads_sum as f64 / accumulated.samples as f64;
            figures.rss_mean_kib = accumulated.rss_sum_kib as f64 / accumulated.samples as f64;
        }
        if let (Some(start), Some(end)) = (self.mark, end) {
            figures.cpu_user_s = end.reading.cpu_user_s - start.reading.cpu_user_s;
            figures.cpu_system_s = end.reading.cpu_system_s - start.reading.cpu_system_s;
            let wall = end.at.duration_since(start.at).as_secs_f64();
            let cpu = figures.cpu_user_s + figures.cpu_system_s;
            if wall > 0.0 {
                figures.cpu_utilization = cpu / wall;
            }
            figures.cpu_s_per_1000_deliveries = deliveries
                .filter(|&d| d > 0)
                .map(|d| cpu * 1000.0 / d as f64);
            figures.voluntary_ctxt_switches = end.voluntary.saturating_sub(start.voluntary);
            figures.involuntary_ctxt_switches = end.involuntary.saturating_sub(start.involuntary);
        }
        figures
    }
}

fn mark(pid: u32) -> Option<Mark> {
    let reading = read(pid).ok()?;
    let (voluntary, involuntary) = context_switches(pid);
    Some(Mark {
        at: Instant::now(),
        reading,
        voluntary,
        involuntary,
    })
}

async fn sample_until(pid: u32, accumulated: Arc<Mutex<Accumulated>>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = stop.cancelled() => return,
        }
        let Ok(reading) = read(pid) else { return };
        let mut acc = accumulated.lock().unwrap_or_else(PoisonError::into_inner);
        acc.samples += 1;
        acc.threads_peak = acc.threads_peak.max(reading.threads);
        acc.threads_sum += reading.threads;
        acc.rss_peak_kib = acc.rss_peak_kib.max(reading.rss_kib);
        acc.rss_sum_kib += reading.rss_kib;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let reading = read(std::process::id()).expect("own /proc entry");
        assert!(reading.threads >= 1);
        assert!(reading.rss_kib > 0);
        let (voluntary, _) = context_switches(std::process::id());
        let _ = voluntary;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_threads_and_cpu_over_a_window() {
        let mut sampler = Sampler::start(std::process::id()).expect("own /proc entry");
        sampler.begin_window().await;
        // Burn CPU for a few sampling intervals (the sampler runs on the
        // other worker meanwhile).
        let mut x = 0u64;
        let until = Instant::now() + INTERVAL * 3;
        while Instant::now() < until {
            x = x.wrapping_add(1);
        }
        std::hint::black_box(x);
        let figures = sampler.finish(Some(1000)).await;
        assert!(figures.samples > 0);
        assert!(figures.threads_peak >= 1);
        assert!(figures.rss_peak_kib > 0);
        assert!(figures.cpu_user_s + figures.cpu_system_s > 0.0);
        assert!(figures.cpu_s_per_1000_deliveries.is_some());
    }
}
