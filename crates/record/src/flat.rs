//! What a soak's samples say: each resource at the start, early in the
//! load, at its peak and at the end, and whether it stayed flat.
//!
//! A leak shows as a line that keeps climbing under a load that does not.
//! The first sample is taken before any client connects, and every server
//! grows from it as the load arrives; and a server's allocator keeps
//! growing in steps for a while after that, to the memory the load's
//! largest coincidences need (a slow reader's queue full while a churn
//! wave connects), and keeps it. So the first half of the run is the
//! warm-up, and the verdict compares the end of the run with its middle
//! ([`Level::midway`]): a leak still climbs in the second half, a warm-up
//! has stopped. The early level is shown beside them, so that a step in
//! the first half is seen, not hidden. Each level is a median over a tenth
//! of the run ([`WINDOW`]), so one sample caught in a burst does not
//! decide. Flat means within an allowance stated here once
//! ([`Check::allowed`]), so that the verdict in the text always follows the
//! numbers in the table. (This compared early with end until the first
//! full soak: `chat-async`'s RSS rose in three steps in its first 11
//! minutes, then held for 19; the warm-up is now excluded, and said so.)

use crate::soak::{SoakRecord, SoakSample};

/// The share of the run, after the first sample, that "early" covers; from
/// its middle, that "midway" covers; and before the last, that "end" covers.
pub const WINDOW: f64 = 0.1;
/// RSS may grow by this share of its early level and still be flat…
pub const RSS_SLACK_SHARE: f64 = 0.05;
/// …or by this many MiB, whichever is larger (allocators keep freed
/// memory in arenas: a small server's RSS moves by a MiB or two).
pub const RSS_SLACK_MIB: f64 = 2.0;
/// Threads and descriptors may grow by this share of their early level…
pub const COUNT_SLACK_SHARE: f64 = 0.02;
/// …plus this many (a couple of connections opening at the moment of a
/// sample: chat-sync holds two threads and one descriptor per connection).
pub const COUNT_SLACK: f64 = 4.0;

/// One resource at the four moments the tables show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// The first sample, before any load.
    pub start: f64,
    /// The median of the early window.
    pub early: f64,
    /// The median of the window that starts halfway through the run: the
    /// level after the warm-up, which the end is compared with.
    pub midway: f64,
    /// The highest sample.
    pub peak: f64,
    /// The median of the end window.
    pub end: f64,
}

impl Level {
    /// End minus midway: the growth over the second half.
    pub fn growth(&self) -> f64 {
        self.end - self.midway
    }

    /// Midway minus early: the growth during the warm-up.
    pub fn warm_up(&self) -> f64 {
        self.midway - self.early
    }
}

/// Which resource a [`Check`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Resident memory, MiB.
    Rss,
    /// Threads of the process.
    Threads,
    /// Open file descriptors.
    Fds,
}

impl Resource {
    /// Its name in a sentence.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Rss => "RSS",
            Resource::Threads => "threads",
            Resource::Fds => "file descriptors",
        }
    }
}

/// Whether one resource stayed flat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// The resource.
    pub resource: Resource,
    /// Its levels.
    pub level: Level,
}

impl Check {
    /// The growth from midway to end that still counts as flat.
    pub fn allowed(&self) -> f64 {
        let midway = self.level.midway.max(0.0);
        match self.resource {
            Resource::Rss => (midway * RSS_SLACK_SHARE).max(RSS_SLACK_MIB),
            Resource::Threads | Resource::Fds => midway * COUNT_SLACK_SHARE + COUNT_SLACK,
        }
    }

    /// Whether it ended within the allowance of its midway level.
    pub fn flat(&self) -> bool {
        self.level.growth() <= self.allowed()
    }
}

/// One server's soak, summed up.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    /// RSS, MiB.
    pub rss_mib: Level,
    /// Threads.
    pub threads: Level,
    /// File descriptors.
    pub fds: Level,
    /// The load generator's open connections, to show the load was the
    /// same early and late.
    pub clients: Level,
    /// Samples in the early window.
    pub early_samples: usize,
    /// Samples in the midway window.
    pub midway_samples: usize,
    /// Samples in the end window.
    pub end_samples: usize,
    /// Seconds between the middles of the midway and end windows: the time
    /// the growth took.
    pub between_s: f64,
    /// Seconds from the first sample to the last.
    pub span_s: f64,
    /// Cores busy from the first sample to the last (cumulative CPU).
    pub cpu_mean: f64,
    /// Cores busy from the first sample to the early window's end.
    pub cpu_early: f64,
    /// Cores busy over the end window.
    pub cpu_end: f64,
}

impl Resources {
    /// The figures of a record, if it has samples enough to tell an early
    /// window from an end one: the first and at least two more.
    pub fn of(record: &SoakRecord) -> Option<Self> {
        let mut samples = record.samples.clone();
        samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        let (first, rest) = samples.split_first()?;
        let last = *rest.last()?;
        if rest.len() < 2 {
            return None;
        }
        let span_s = last.t_s - first.t_s;
        let width = WINDOW * span_s;
        // The windows, each at least one sample.
        let early_n = rest
            .iter()
            .take_while(|s| s.t_s <= first.t_s + width)
            .count()
            .max(1);
        let end_n = rest
            .iter()
            .rev()
            .take_while(|s| s.t_s >= last.t_s - width)
            .count()
            .clamp(1, rest.len() - 1);
        let early = &rest[..early_n];
        let end = &rest[rest.len() - end_n..];
        // From halfway, as wide as the others; at least the sample nearest
        // to halfway.
        let half = first.t_s + span_s / 2.0;
        let midway_from = rest
            .iter()
            .position(|s| s.t_s >= half)
            .unwrap_or(rest.len() - 1);
        let midway_n = rest[midway_from..]
            .iter()
            .take_while(|s| s.t_s <= half + width)
            .count()
            .max(1);
        let midway = &rest[midway_from..midway_from + midway_n];
        let level = |get: fn(&SoakSample) -> f64| Level {
            start: get(first),
            early: median(early.iter().map(get)),
            midway: median(midway.iter().map(get)),
            peak: samples.iter().map(get).fold(f64::NEG_INFINITY, f64::max),
            end: median(end.iter().map(get)),
        };
        let before_end = rest
            .len()
            .checked_sub(end_n + 1)
            .map_or(*first, |i| rest[i]);
        let middle = |w: &[SoakSample]| median(w.iter().map(|s| s.t_s));
        Some(Self {
            rss_mib: level(|s| s.rss_kib as f64 / 1024.0),
            threads: level(|s| s.threads as f64),
            fds: level(|s| s.fds as f64),
            clients: level(|s| s.client_connections as f64),
            early_samples: early.len(),
            midway_samples: midway.len(),
            end_samples: end.len(),
            between_s: middle(end) - middle(midway),
            span_s,
            cpu_mean: last.cpu_since(first),
            cpu_early: early[early.len() - 1].cpu_since(first),
            cpu_end: last.cpu_since(&before_end),
        })
    }

    /// The three checks, in the tables' order.
    pub fn checks(&self) -> [Check; 3] {
        [
            (Resource::Rss, self.rss_mib),
            (Resource::Threads, self.threads),
            (Resource::Fds, self.fds),
        ]
        .map(|(resource, level)| Check { resource, level })
    }

    /// A check's growth per hour, from the midway window to the end one.
    pub fn per_hour(&self, check: &Check) -> Option<f64> {
        (self.between_s > 0.0).then(|| check.level.growth() * 3600.0 / self.between_s)
    }

    /// The fastest growth per hour a check lets pass as flat: its allowance
    /// over the time between the windows.
    pub fn allowed_per_hour(&self, check: &Check) -> Option<f64> {
        (self.between_s > 0.0).then(|| check.allowed() * 3600.0 / self.between_s)
    }
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::{SoakParams, SoakTotals};

    fn soak_record(server: &str, rss_mib: &[f64], threads: u64, fds: u64) -> SoakRecord {
        let samples: Vec<SoakSample> = rss_mib
            .iter()
            .enumerate()
            .map(|(i, &mib)| {
                let i = i as u64;
                SoakSample {
                    t_s: 60.0 * i as f64,
                    rss_kib: (mib * 1024.0).round() as u64,
                    threads: if i == 0 { 2 } else { threads },
                    fds: if i == 0 { 5 } else { fds },
                    cpu_s: 30.0 * i as f64,
                    client_connections: if i == 0 { 0 } else { 62 },
                    delivered: 6000 * i,
                }
            })
            .collect();
        let minutes = samples.len().saturating_sub(1) as u64;
        SoakRecord {
            scenario: "soak".to_owned(),
            server: server.to_owned(),
            commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            started_at: "2025-01-01T00:00:00Z".to_owned(),
            url: "ws://127.0.0.1:8000".to_owned(),
            command: format!("chat-loadgen soak --label {server} --duration 1h"),
            params: SoakParams {
                duration_s: 60.0 * minutes as f64,
                sample_interval_s: 60.0,
                room_sizes: vec![2, 10, 50],
                rate_per_room_per_s: 2.0,
                senders_per_room: 2,
                churn_per_s: 1.0,
                slow_reader_every_s: 60.0,
                bad_client_every_s: 30.0,
            },
            totals: SoakTotals {
                sent: 360 * minutes,
                expected: 6000 * minutes,
                delivered: 6000 * minutes,
                churn_cycles: 60 * minutes,
                slow_readers: minutes,
                slow_readers_closed_1013: minutes,
                bad_clients: 2 * minutes,
                bad_clients_answered: 2 * minutes,
                ..SoakTotals::default()
            },
            samples,
            passed: true,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn windows_are_a_tenth_of_the_run_after_the_first_sample() {
        // 21 samples a minute apart: 20 minutes, windows of 2 minutes.
        let rss: Vec<f64> = (0..21)
            .map(|i| if i == 0 { 5.0 } else { 20.0 + i as f64 })
            .collect();
        let r = Resources::of(&soak_record("sync", &rss, 50, 20)).expect("figures");
        assert_eq!(
            (r.early_samples, r.midway_samples, r.end_samples),
            (2, 3, 3)
        );
        assert_eq!(r.rss_mib.start, 5.0);
        assert_eq!(r.rss_mib.early, 21.5);
        // Minutes 10 to 12.
        assert_eq!(r.rss_mib.midway, 31.0);
        assert_eq!(r.rss_mib.end, 39.0);
        assert_eq!(r.rss_mib.peak, 40.0);
        assert_eq!(r.span_s, 1200.0);
        // From minute 11 to minute 19.
        assert_eq!(r.between_s, 480.0);
        assert!(!r.checks()[0].flat());
        assert!(r.checks()[1].flat() && r.checks()[2].flat());
    }

    #[test]
    fn too_few_samples_tell_nothing() {
        assert!(Resources::of(&soak_record("sync", &[5.0, 20.0], 50, 20)).is_none());
        let three = Resources::of(&soak_record("sync", &[5.0, 20.0, 21.0], 50, 20));
        assert_eq!(
            three.map(|r| (r.early_samples, r.end_samples)),
            Some((1, 1))
        );
    }

    #[test]
    fn the_allowance_is_the_larger_share_or_floor() {
        let check = |resource, midway: f64, end: f64| Check {
            resource,
            level: Level {
                start: 0.0,
                early: 0.0,
                midway,
                peak: end,
                end,
            },
        };
        // 5% of 100 MiB is 5 MiB; of 10 MiB, less than the 2 MiB floor.
        assert!(check(Resource::Rss, 100.0, 105.0).flat());
        assert!(!check(Resource::Rss, 100.0, 105.5).flat());
        assert!(check(Resource::Rss, 10.0, 12.0).flat());
        assert!(!check(Resource::Rss, 10.0, 12.1).flat());
        // 2% of 1,000 threads plus 4.
        assert!(check(Resource::Threads, 1000.0, 1024.0).flat());
        assert!(!check(Resource::Threads, 1000.0, 1025.0).flat());
        assert!(check(Resource::Fds, 10.0, 5.0).flat(), "falling is flat");
    }
}
