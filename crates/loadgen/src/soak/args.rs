//! `chat-loadgen soak`: its options, and the run from the command line to
//! the printed summary and the JSON line. It fails (non-zero exit, the
//! reason on stderr) when the soak does not pass, so that a script or CI
//! cannot miss it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::client::Target;
use crate::soak::{SoakConfig, SoakRun};
use crate::{current_commit, now_rfc3339};
use chat_record::soak::{SoakRecord, SoakSample};

/// Options of the soak. The defaults are [`SoakConfig::default`]'s.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// The server, ws://HOST:PORT; clients connect to /ws/chat/<room>/.
    #[arg(long)]
    pub url: String,
    /// The server's process id: its memory, threads, descriptors and CPU
    /// are read from /proc every sample interval.
    #[arg(long)]
    pub server_pid: u32,
    /// The server's name in the output.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Append the run's record, as one JSON line, to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The commit to record [default: `git rev-parse HEAD`].
    #[arg(long)]
    pub commit: Option<String>,
    /// Minutes of load.
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// Seconds of load, instead of --minutes (for tests).
    #[arg(long, conflicts_with = "minutes")]
    pub duration_secs: Option<f64>,
    /// Seconds between two samples of the server.
    #[arg(long, default_value_t = 5.0)]
    pub sample_interval_secs: f64,
    /// Members of each steady room, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2,5,20,50")]
    pub room_sizes: Vec<u32>,
    /// Senders of each steady room (its first members).
    #[arg(long, default_value_t = 2)]
    pub senders_per_room: u32,
    /// Messages per second in each steady room, its senders together.
    #[arg(long, default_value_t = 20.0)]
    pub rate_per_room: f64,
    /// Bytes of each steady message's text.
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Connect-join-send-close cycles started per second.
    #[arg(long, default_value_t = 20.0)]
    pub churn_per_sec: f64,
    /// Seconds between two slow readers (0: none); the first at half that.
    #[arg(long, default_value_t = 60.0)]
    pub slow_reader_every_secs: f64,
    /// Well-behaved members of the slow room.
    #[arg(long, default_value_t = 2)]
    pub slow_members: u32,
    /// Messages of each burst in the slow room: enough to outgrow the
    /// kernel's buffers and the server's outbox for a member that does not
    /// read.
    #[arg(long, default_value_t = 3000)]
    pub slow_burst: u64,
    /// Bytes of each burst message's text.
    #[arg(long, default_value_t = 8192)]
    pub slow_message_bytes: usize,
    /// Seconds between two bad clients (0: none); the first at half that.
    #[arg(long, default_value_t = 5.0)]
    pub bad_client_every_secs: f64,
    /// Seconds to wait for one connection.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Worker threads of the load generator [default: the number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
}

fn secs(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("--{flag} must be a non-negative number of seconds"))
}

impl SoakArgs {
    /// The load asked for.
    pub fn config(&self) -> anyhow::Result<SoakConfig> {
        let duration = match self.duration_secs {
            Some(s) => secs(s, "duration-secs")?,
            None => secs(self.minutes * 60.0, "minutes")?,
        };
        Ok(SoakConfig {
            label: self.label.clone(),
            duration,
            sample_interval: secs(self.sample_interval_secs, "sample-interval-secs")?,
            room_sizes: self.room_sizes.clone(),
            senders_per_room: self.senders_per_room,
            rate_per_room_per_s: self.rate_per_room,
            payload_bytes: self.payload,
            churn_per_s: self.churn_per_sec,
            slow_reader_every: secs(self.slow_reader_every_secs, "slow-reader-every-secs")?,
            slow_members: self.slow_members,
            slow_burst: self.slow_burst,
            slow_message_bytes: self.slow_message_bytes,
            bad_client_every: secs(self.bad_client_every_secs, "bad-client-every-secs")?,
            connect_timeout: secs(self.connect_timeout, "connect-timeout")?,
            ..SoakConfig::default()
        })
    }
}

/// Runs the soak of `args`; `command` is the command line, for the record.
pub fn main(args: &SoakArgs, command: String) -> anyhow::Result<()> {
    let config = args.config()?;
    config.validate()?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-files limit raised"),
        Err(error) => tracing::warn!(%error, "could not raise the open-files limit"),
    }
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let started_at = now_rfc3339();
    let run = runtime.block_on(async {
        let target = Target::resolve(&args.url).await?;
        target.check_reachable(config.connect_timeout).await?;
        crate::soak::run(target, config.clone(), args.server_pid).await
    })?;
    let record = SoakRecord {
        scenario: "soak".to_owned(),
        server: args.label.clone(),
        commit: args.commit.clone().unwrap_or_else(current_commit),
        started_at,
        url: args.url.clone(),
        command,
        params: config.params(),
        samples: run.samples.clone(),
        totals: run.totals.clone(),
        passed: run.passed,
        warnings: run.warnings.clone(),
    };
    print!("{}", render(&record, &run));
    if let Some(path) = &args.json {
        crate::append_json(path, &record)?;
    }
    if !record.passed {
        for warning in &record.warnings {
            eprintln!("chat-loadgen: {warning}");
        }
        bail!("the soak of {} did not pass", record.server);
    }
    Ok(())
}

/// The summary printed at the end.
pub fn render(record: &SoakRecord, run: &SoakRun) -> String {
    let t = &record.totals;
    let verdict = if record.passed { "PASSED" } else { "FAILED" };
    let mut out = format!(
        "soak of {} at {} for {:.0} s: {verdict}\n",
        record.server, record.url, record.params.duration_s
    );
    out += &format!(
        "  sent {} messages; deliveries owed {}, delivered {}, lost {}, duplicated {}, out of order {}\n",
        t.sent, t.expected, t.delivered, t.lost, t.duplicates, t.out_of_order
    );
    out += &format!(
        "  unexpected closes {}, junk frames received {}\n",
        t.unexpected_closes, t.foreign_frames
    );
    out += &format!(
        "  churn cycles {} ({} failed); slow readers {} ({} closed 1013); bad clients {} ({} answered)\n",
        t.churn_cycles,
        t.churn_failures,
        t.slow_readers,
        t.slow_readers_closed_1013,
        t.bad_clients,
        t.bad_clients_answered
    );
    let l = &run.latency;
    out += &format!(
        "  latency from send: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n",
        l.p50_us as f64 / 1e3,
        l.p99_us as f64 / 1e3,
        l.p999_us as f64 / 1e3,
        l.max_us as f64 / 1e3
    );
    if let (Some(first), Some(last)) = (record.samples.first(), record.samples.last()) {
        let peak = |f: fn(&SoakSample) -> u64| record.samples.iter().map(f).max().unwrap_or(0);
        out += &format!(
            "  server: rss {:.1} -> {:.1} MiB (peak {:.1}), threads {} -> {} (peak {}), fds {} -> {} (peak {}), cpu {:.1} s ({:.2} cores) over {} samples\n",
            first.rss_kib as f64 / 1024.0,
            last.rss_kib as f64 / 1024.0,
            peak(|s| s.rss_kib) as f64 / 1024.0,
            first.threads,
            last.threads,
            peak(|s| s.threads),
            first.fds,
            last.fds,
            peak(|s| s.fds),
            last.cpu_s - first.cpu_s,
            last.cpu_since(first),
            record.samples.len()
        );
    }
    for warning in &record.warnings {
        out += &format!("  warning: {warning}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakArgs,
    }

    #[test]
    fn the_flags_default_to_the_config_defaults() {
        let cli = Cli::try_parse_from(["soak", "--url", "ws://a:1", "--server-pid", "1"])
            .expect("parses");
        let config = cli.soak.config().expect("valid");
        let defaults = SoakConfig::default();
        assert_eq!(
            format!("{config:?}"),
            format!(
                "{:?}",
                SoakConfig {
                    label: "server".to_owned(),
                    ..defaults
                }
            )
        );
        let short = Cli::try_parse_from([
            "soak",
            "--url",
            "ws://a:1",
            "--server-pid",
            "1",
            "--duration-secs",
            "7",
        ])
        .expect("parses");
        assert_eq!(
            short.soak.config().expect("valid").duration,
            Duration::from_secs(7)
        );
        assert!(
            Cli::try_parse_from([
                "soak",
                "--url",
                "ws://a:1",
                "--server-pid",
                "1",
                "--minutes",
                "1",
                "--duration-secs",
                "7",
            ])
            .is_err()
        );
    }
}
