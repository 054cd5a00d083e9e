//! The open-loop send schedule.
//!
//! Each sender sends at fixed intervals from a start time, whatever the
//! server does: message `k` is *meant* to leave at `start + phase + k *
//! interval`. Latency is measured from that intended time, so a server that
//! stalls (and makes the sender's socket block) is charged for the whole
//! stall, not flattered by a sender that waited for it: no coordinated
//! omission. Senders' phases are spread evenly over one interval, so the
//! aggregate load is smooth rather than a burst per tick.

/// One sender's schedule, in µs on the run's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    first_us: u64,
    interval_us: f64,
}

impl Schedule {
    /// Sender `index` of `senders`, sending `rate_per_s` messages a second
    /// from `start_us`.
    pub fn new(start_us: u64, rate_per_s: f64, index: u64, senders: u64) -> Self {
        let interval_us = 1e6 / rate_per_s;
        let phase_us = interval_us * index as f64 / senders.max(1) as f64;
        Self {
            first_us: start_us + phase_us as u64,
            interval_us,
        }
    }

    /// When message `seq` is meant to be sent.
    pub fn intended_us(&self, seq: u64) -> u64 {
        self.first_us + (seq as f64 * self.interval_us) as u64
    }

    /// The first sequence number meant to be sent at or after `time_us`.
    pub fn first_seq_at(&self, time_us: u64) -> u64 {
        if time_us <= self.first_us {
            return 0;
        }
        let seq = ((time_us - self.first_us) as f64 / self.interval_us).ceil() as u64;
        // Float rounding: step back while the previous one still qualifies.
        let mut seq = seq;
        while seq > 0 && self.intended_us(seq - 1) >= time_us {
            seq -= 1;
        }
        while self.intended_us(seq) < time_us {
            seq += 1;
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_evenly_spaced_and_senders_spread() {
        let a = Schedule::new(1_000, 100.0, 0, 4);
        let b = Schedule::new(1_000, 100.0, 1, 4);
        assert_eq!(a.intended_us(0), 1_000);
        assert_eq!(a.intended_us(3), 31_000);
        assert_eq!(b.intended_us(0), 3_500);
        assert_eq!(b.intended_us(1), 13_500);
    }

    #[test]
    fn finds_the_first_message_of_a_window() {
        let s = Schedule::new(0, 3.0, 0, 1);
        for t in [0, 1, 333_333, 333_334, 1_000_000, 2_500_000] {
            let seq = s.first_seq_at(t);
            assert!(s.intended_us(seq) >= t);
            assert!(seq == 0 || s.intended_us(seq - 1) < t);
        }
    }
}
