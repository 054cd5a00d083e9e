//! `chat-loadgen verdict`: whether the last run of a `runs.jsonl` kept up,
//! as [`chat_record::verdict::judge_record`] decides it, for a script that
//! climbs a ladder (`scripts/bench.sh`), so that the sweep holds no rule of
//! its own.
//!
//! It prints one line, `VERDICT DELIVERED_PER_S OFFERED_PER_S` (the verdict
//! as serde names it: `kept_up 99614.2 100000`), and exits 0 if the run
//! kept up, 1 if it did not, 2 if there is no verdict to give (no file, no
//! record, not a fan-out record).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chat_record::Record;
use chat_record::verdict::{Judgement, judge_record};
use clap::Args;

/// Options of `chat-loadgen verdict`.
#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// The runs file (one JSON record per line); its last record is judged.
    #[arg(long)]
    pub runs: PathBuf,
}

/// Judges the last record, prints its line; the exit status says.
pub fn main(args: &VerdictArgs) -> ExitCode {
    match judge_last(&args.runs) {
        Ok(judgement) => {
            println!("{}", line(&judgement));
            if judgement.kept_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("chat-loadgen verdict: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// The judgement of the last record in `runs`.
pub fn judge_last(runs: &Path) -> anyhow::Result<Judgement> {
    let text =
        std::fs::read_to_string(runs).with_context(|| format!("cannot read {}", runs.display()))?;
    let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        bail!("{} holds no record", runs.display());
    };
    let record: Record = serde_json::from_str(last)
        .with_context(|| format!("the last line of {} is not a run record", runs.display()))?;
    judge_record(&record).with_context(|| {
        format!(
            "the last record of {} is a {} run, not a fan-out: no verdict",
            runs.display(),
            record.scenario
        )
    })
}

/// `kept_up 99614.2 100000`: the verdict as serde names it, the deliveries
/// per second made, and those offered.
pub fn line(judgement: &Judgement) -> String {
    let verdict = serde_json::to_value(judgement.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", judgement.verdict));
    format!(
        "{verdict} {:.1} {}",
        judgement.delivered_per_s, judgement.offered_per_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_record::verdict::Verdict;

    #[test]
    fn the_line_names_the_verdict_as_serde_does() {
        let judgement = Judgement {
            verdict: Verdict::FellBehind,
            offered_per_s: 100_000.0,
            delivered_per_s: 71_883.04,
        };
        assert_eq!(line(&judgement), "fell_behind 71883.0 100000");
        let half = Judgement {
            verdict: Verdict::KeptUp,
            offered_per_s: 2.5,
            delivered_per_s: 2.5,
        };
        assert_eq!(line(&half), "kept_up 2.5 2.5");
    }
}
