//! Samples a process from `/proc` during a run: threads and resident memory
//! (peak and mean, every [`INTERVAL`]), user and system CPU and context
//! switches (at the start and end of the measured window).
//!
//! CPU comes from `utime` and `stime` in `/proc/PID/stat` (clock ticks, of
//! the whole process); context switches are summed over every thread's
//! `/proc/PID/task/TID/status` (`/proc/PID/status` counts only the main
//! thread), so they miss threads that ended inside the window.
//!
//! A run samples itself, its server processes (one, or one per URL) and any
//! other process named (the Redis server its servers share, say) together:
//! [`Samplers`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use procfs::process::Process;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use chat_record::{
    Deployment, ProcessFigures, ProcessSample, ServerProcess, ServerTotal, per_1000_deliveries,
};

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
            figures.cpu_s_per_1000_deliveries = per_1000_deliveries(cpu, deliveries);
            figures.voluntary_ctxt_switches = end.voluntary.saturating_sub(start.voluntary);
            figures.involuntary_ctxt_switches = end.involuntary.saturating_sub(start.involuntary);
        }
        figures
    }
}

/// The processes a run samples besides itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// The server processes (`--server-pid`): none, one, or one per URL in
    /// the URLs' order, pid *i* serving URL *i*.
    pub servers: Vec<u32>,
    /// Other processes (`--sample-pid LABEL=PID`), by label.
    pub others: Vec<(String, u32)>,
}

impl Watch {
    /// One server process, nothing else.
    pub fn server(pid: u32) -> Self {
        Self {
            servers: vec![pid],
            others: Vec::new(),
        }
    }

    /// Checks it against a run of `urls` URLs: one server pid per URL (or
    /// none; with one URL, one), labels present and distinct.
    pub fn check(&self, urls: usize) -> anyhow::Result<()> {
        let pids = self.servers.len();
        if pids > 0 && pids != urls {
            bail!(
                "give --server-pid once per --url, in the same order ({pids} pid(s) for {urls} URL(s)); sample other processes with --sample-pid LABEL=PID"
            );
        }
        for (i, (label, _)) in self.others.iter().enumerate() {
            if label.is_empty() {
                bail!("--sample-pid needs a label: LABEL=PID");
            }
            if self.others[..i].iter().any(|(other, _)| other == label) {
                bail!("--sample-pid label {label:?} given twice");
            }
        }
        Ok(())
    }
}

/// What one URL's clients took: how many connected through it, and the
/// measured deliveries to them (fan-out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    /// Clients connected through the URL.
    pub clients: u64,
    /// Measured deliveries to them, if the scenario delivers.
    pub deliveries: Option<u64>,
}

/// A run's samplers: its server processes', the other processes', its own,
/// windowed together.
pub struct Samplers {
    servers: Vec<Sampler>,
    others: Vec<(String, Sampler)>,
    loadgen: Sampler,
}

impl Samplers {
    /// Starts sampling every process of `watch` and this one (fails if one
    /// cannot be read at all).
    pub fn start(watch: &Watch) -> anyhow::Result<Self> {
        let servers = watch
            .servers
            .iter()
            .map(|&pid| Sampler::start(pid).context("--server-pid"))
            .collect::<anyhow::Result<_>>()?;
        let others = watch
            .others
            .iter()
            .map(|(label, pid)| {
                let sampler =
                    Sampler::start(*pid).with_context(|| format!("--sample-pid {label}"))?;
                anyhow::Ok((label.clone(), sampler))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            servers,
            others,
            loadgen: Sampler::start(std::process::id())?,
        })
    }

    /// Starts the measured window of every process, at once.
    pub async fn begin_window(&mut self) {
        let all = self
            .servers
            .iter_mut()
            .chain(self.others.iter_mut().map(|(_, s)| s))
            .chain(std::iter::once(&mut self.loadgen))
            .map(Sampler::begin_window);
        futures_util::future::join_all(all).await;
    }

    /// Ends the window and the sampling of every process, at once;
    /// `deliveries` (if any) gives each CPU per 1,000 deliveries.
    pub async fn finish(self, deliveries: Option<u64>) -> Sampled {
        let others = futures_util::future::join_all(
            self.others
                .into_iter()
                .map(|(label, s)| async move { (label, s.finish(deliveries).await) }),
        );
        let servers =
            futures_util::future::join_all(self.servers.into_iter().map(|s| s.finish(deliveries)));
        let (servers, others, loadgen) =
            tokio::join!(servers, others, self.loadgen.finish(deliveries));
        Sampled {
            servers,
            others: others.into_iter().collect(),
            loadgen,
        }
    }
}

/// What a run's [`Samplers`] measured over its window.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    /// Each server process, in the order of [`Watch::servers`].
    pub servers: Vec<ProcessFigures>,
    /// The other processes, by label.
    pub others: BTreeMap<String, ProcessFigures>,
    /// The load generator itself.
    pub loadgen: ProcessFigures,
}

impl Sampled {
    /// The record's `server_process` and [`Deployment`], for a run over
    /// `urls` whose clients took `shares` (one per URL).
    ///
    /// With one server process, its figures as they are (CPU per 1,000 of
    /// every delivery). With several (one per URL), each one's CPU per
    /// 1,000 deliveries is over the deliveries to its own URL's clients,
    /// the first is the `server_process`, and all are in the deployment
    /// with their total.
    pub fn into_parts(
        self,
        urls: &[String],
        shares: &[Share],
    ) -> (Option<ProcessFigures>, ProcessFigures, Deployment) {
        let mut deployment = Deployment {
            sampled_processes: self.others,
            ..Deployment::default()
        };
        if urls.len() > 1 {
            deployment.urls = urls.to_vec();
        }
        let server = if self.servers.len() > 1 {
            deployment.server_processes = self
                .servers
                .into_iter()
                .enumerate()
                .map(|(i, mut process)| {
                    let share = shares.get(i).copied().unwrap_or_default();
                    process.cpu_s_per_1000_deliveries = per_1000_deliveries(
                        process.cpu_user_s + process.cpu_system_s,
                        share.deliveries,
                    );
                    ServerProcess {
                        url: urls.get(i).cloned().unwrap_or_default(),
                        clients: share.clients,
                        deliveries: share.deliveries,
                        process,
                    }
                })
                .collect();
            deployment.server_total = Some(ServerTotal::of(&deployment.server_processes));
            deployment
                .server_processes
                .first()
                .map(|p| p.process.clone())
        } else {
            self.servers.into_iter().next()
        };
        (server, self.loadgen, deployment)
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

    #[test]
    fn one_server_pid_per_url() {
        let watch = |servers: &[u32], others: &[(&str, u32)]| Watch {
            servers: servers.to_vec(),
            others: others.iter().map(|(l, p)| ((*l).to_owned(), *p)).collect(),
        };
        assert!(watch(&[], &[]).check(1).is_ok());
        assert!(watch(&[1], &[]).check(1).is_ok());
        assert!(watch(&[], &[]).check(3).is_ok());
        assert!(watch(&[1, 2, 3], &[("redis", 4)]).check(3).is_ok());
        assert!(watch(&[1], &[]).check(2).is_err(), "which URL's?");
        assert!(watch(&[1, 2], &[]).check(1).is_err());
        assert!(watch(&[], &[("redis", 4), ("redis", 5)]).check(1).is_err());
        assert!(watch(&[], &[("", 4)]).check(1).is_err());
    }

    fn figures(pid: u32, cpu_s: f64, threads: u64) -> ProcessFigures {
        ProcessFigures {
            pid,
            samples: 5,
            threads_peak: threads,
            rss_peak_kib: 1000 * u64::from(pid),
            cpu_user_s: cpu_s / 2.0,
            cpu_system_s: cpu_s / 2.0,
            cpu_utilization: cpu_s / 10.0,
            // Over every delivery, as `finish` counts it.
            cpu_s_per_1000_deliveries: Some(cpu_s),
            ..ProcessFigures::default()
        }
    }

    #[test]
    fn one_server_is_recorded_as_before() {
        let sampled = Sampled {
            servers: vec![figures(1, 2.0, 3)],
            others: BTreeMap::new(),
            loadgen: figures(9, 0.5, 4),
        };
        let share = Share {
            clients: 10,
            deliveries: Some(500),
        };
        let (server, loadgen, deployment) = sampled.into_parts(&["ws://a".to_owned()], &[share]);
        assert_eq!(server, Some(figures(1, 2.0, 3)), "untouched");
        assert_eq!(loadgen.pid, 9);
        assert!(deployment.is_empty(), "{deployment:?}");
    }

    #[test]
    fn several_servers_each_count_their_own_deliveries() {
        let urls = ["ws://a".to_owned(), "ws://b".to_owned()];
        let sampled = Sampled {
            servers: vec![figures(1, 2.0, 3), figures(2, 6.0, 50)],
            others: [("redis".to_owned(), figures(3, 1.0, 5))].into(),
            loadgen: figures(9, 0.5, 4),
        };
        let shares = [
            Share {
                clients: 10,
                deliveries: Some(1000),
            },
            Share {
                clients: 11,
                deliveries: Some(3000),
            },
        ];
        let (server, _, deployment) = sampled.into_parts(&urls, &shares);
        assert_eq!(deployment.urls, urls);
        let [a, b] = &deployment.server_processes[..] else {
            panic!("two server processes: {deployment:?}");
        };
        assert_eq!(
            (a.url.as_str(), a.clients, a.deliveries),
            ("ws://a", 10, Some(1000))
        );
        assert_eq!(
            (b.url.as_str(), b.clients, b.deliveries),
            ("ws://b", 11, Some(3000))
        );
        assert_eq!(a.process.cpu_s_per_1000_deliveries, Some(2.0));
        assert_eq!(b.process.cpu_s_per_1000_deliveries, Some(2.0));
        assert_eq!(server.as_ref(), Some(&a.process), "the first");
        let total = deployment.server_total.as_ref().expect("a total");
        assert_eq!(total.processes, 2);
        assert_eq!(total.cpu_user_s + total.cpu_system_s, 8.0);
        assert_eq!(total.deliveries, Some(4000));
        assert_eq!(total.cpu_s_per_1000_deliveries, Some(2.0));
        assert_eq!((total.threads_peak_sum, total.rss_peak_sum_kib), (53, 3000));
        assert_eq!(total.cpu_utilization, 0.8);
        assert_eq!(
            deployment.sampled_processes["redis"],
            figures(3, 1.0, 5),
            "over every delivery"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn samples_every_process_named() {
        let me = std::process::id();
        let watch = Watch {
            servers: vec![me, me],
            others: vec![("self".to_owned(), me)],
        };
        let mut samplers = Samplers::start(&watch).expect("own /proc entry");
        samplers.begin_window().await;
        tokio::time::sleep(INTERVAL * 2).await;
        let sampled = samplers.finish(Some(10)).await;
        assert_eq!(sampled.servers.len(), 2);
        assert!(sampled.servers.iter().all(|s| s.pid == me && s.samples > 0));
        assert_eq!(sampled.others.keys().collect::<Vec<_>>(), ["self"]);
        assert_eq!(sampled.loadgen.pid, me);

        let missing = Watch {
            servers: Vec::new(),
            others: vec![("redis".to_owned(), u32::MAX)],
        };
        let error = Samplers::start(&missing).err().expect("no such process");
        assert!(
            format!("{error:#}").contains("--sample-pid redis"),
            "{error:#}"
        );
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
