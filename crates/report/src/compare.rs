//! Comparing one figure between two servers, in words chosen from the
//! numbers: which is better, by what factor, or a tie.
//!
//! The discussion and the scoreboard both speak through these, so "lower",
//! "fewer" or "better on" is never fixed text: a run where the numbers go
//! the other way says so.

use crate::data::Fanout;
use crate::format;

/// Two values closer than this fraction are reported as a tie.
pub const TIE: f64 = 0.05;

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Latency, cost, threads, memory.
    Lower,
    /// Throughput, capacity, connections held.
    Higher,
}

/// The outcome of comparing one figure between two servers.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Within [`TIE`] of each other.
    Tie,
    /// This server is better, by this factor (≥ 1).
    Wins(String, f64),
}

/// Compares one figure of two servers: a tie under [`TIE`], else the
/// better one and by what factor.
pub fn outcome(a: (&str, f64), b: (&str, f64), better: Better) -> Outcome {
    let (hi, lo) = if a.1 >= b.1 { (a, b) } else { (b, a) };
    if hi.1 <= 0.0 || (hi.1 - lo.1) / hi.1 < TIE {
        return Outcome::Tie;
    }
    let factor = if lo.1 > 0.0 {
        hi.1 / lo.1
    } else {
        f64::INFINITY
    };
    let winner = match better {
        Better::Higher => hi.0,
        Better::Lower => lo.0,
    };
    Outcome::Wins(winner.to_owned(), factor)
}

/// The tie threshold as a percentage: `5%`.
pub fn tie_text() -> String {
    format!("{}%", format::plain(TIE * 100.0))
}

/// `2.50×`, or `the other is zero`.
pub fn factor_text(factor: f64) -> String {
    if factor.is_finite() {
        format!("{}×", format::sig(factor))
    } else {
        "the other is zero".to_owned()
    }
}

/// The figures of one fan-out run that the discussion compares.
pub struct FanoutFigures {
    /// p99 latency, milliseconds.
    pub p99_ms: f64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// Server CPU seconds per 1,000 deliveries.
    pub cpu_per_1000: Option<f64>,
    /// Server voluntary context switches per delivery.
    pub switches: Option<f64>,
    /// System time's share of the server's CPU time.
    pub system_share: Option<f64>,
}

impl FanoutFigures {
    /// The figures of a run.
    pub fn of(run: Fanout<'_>) -> Self {
        let process = run.server_process();
        let cpu = process.map(|p| p.cpu_user_s + p.cpu_system_s);
        Self {
            p99_ms: run.results.latency_us.p99_us as f64 / 1000.0,
            deliveries_per_s: run.results.deliveries_per_s,
            cpu_per_1000: process.and_then(|p| p.cpu_s_per_1000_deliveries),
            switches: run.voluntary_switches_per_delivery(),
            system_share: process
                .zip(cpu)
                .and_then(|(p, cpu)| (cpu > 0.0).then(|| p.cpu_system_s / cpu)),
        }
    }
}

/// A comparison sentence's verdict: the winner and the comparative that
/// describes it (`async lower, by 2.50×`), or `about the same`.
pub fn verdict(o: &Outcome, word: &str) -> String {
    match o {
        Outcome::Tie => format!("about the same (within {})", tie_text()),
        Outcome::Wins(w, f) if f.is_finite() => format!("{w} {word}, by {}", factor_text(*f)),
        Outcome::Wins(w, f) => format!("{w} {word} ({})", factor_text(*f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_pick_the_better_and_call_ties() {
        assert_eq!(
            outcome(("a", 2.0), ("b", 1.0), Better::Lower),
            Outcome::Wins("b".to_owned(), 2.0)
        );
        assert_eq!(
            outcome(("a", 2.0), ("b", 1.0), Better::Higher),
            Outcome::Wins("a".to_owned(), 2.0)
        );
        assert_eq!(
            outcome(("a", 1.0), ("b", 1.02), Better::Lower),
            Outcome::Tie
        );
        assert_eq!(outcome(("a", 0.0), ("b", 0.0), Better::Lower), Outcome::Tie);
    }
}
