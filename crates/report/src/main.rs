//! `chat-report`: turns a benchmark run's raw data into `REPORT.md`, the
//! run's `RUNS.md` and SVG plots.
//!
//! The report is generated, never edited: every figure comes from the run's
//! `runs.jsonl` (and `machine.json`, `profile.tsv`, `memory.tsv`, and the newest soak),
//! and every judgement on a run (kept up or fell behind, lost, like for
//! like) from `chat_record::verdict`. The modules follow the report:
//!
//! * `load`: find and read the run and the soak;
//! * `data`: each fan-out run judged once ([`data::Fan`]);
//! * `headline`: the first screen's table and the verdict's figures;
//! * `fanout`, `connections`, `memory`, `cores`, `history`, `layers`,
//!   `soak`, `floor`, `variants`: one section each;
//! * `plots`: the SVG plots; `render`: the templates (all the words);
//! * `report`: put them together and write the files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

mod connections;
mod cores;
mod data;
mod fanout;
mod floor;
mod format;
mod headline;
mod history;
mod layers;
mod load;
mod memory;
mod plots;
mod render;
mod report;
mod soak;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
mod variants;

/// Writes `REPORT.md`, the run's `RUNS.md` and SVG plots from a benchmark
/// run and the newest soak.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The results directory: run directories (`<date>-<host>/`) inside.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// The run directory to report on, instead of the newest full run under
    /// `--results`.
    #[arg(long)]
    run: Option<PathBuf>,
    /// The soak directory to report on, instead of the newest under
    /// `--results`/soak.
    #[arg(long)]
    soak: Option<PathBuf>,
    /// Where `REPORT.md` and `plots/` go [default: `--results`].
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat-report: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let run = load::select_run(&args.results, args.run.as_deref())?;
    let soak = load::select_soak(&args.results, args.soak.as_deref())?;
    let out = args.out.clone().unwrap_or_else(|| args.results.clone());
    let mut command = format!(
        "cargo run --release -p chat-report -- --results {}",
        args.results.display()
    );
    for (flag, value) in [
        ("--run", &args.run),
        ("--soak", &args.soak),
        ("--out", &args.out),
    ] {
        if let Some(v) = value {
            command.push_str(&format!(" {flag} {}", v.display()));
        }
    }
    let written = report::generate(&report::Paths {
        run,
        soak,
        out,
        command,
    })?;
    println!("{}", written.report.display());
    println!("{}", written.runs.display());
    for plot in &written.plots {
        println!("{}", plot.display());
    }
    Ok(())
}
