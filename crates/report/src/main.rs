//! `chat-report`: turns the load generator's raw runs into
//! `results/REPORT.md` and `results/plots/*.svg`.
//!
//! The report is generated, never edited: every number in it, prose
//! included, is computed from `runs.jsonl`, so it can be regenerated after a
//! new run (or a fix to this program) without anyone re-reading the data by
//! hand. The modules follow the report's making:
//!
//! * `load`: find the run directories, read `runs.jsonl` and `README.md`,
//!   and find and read the soak (`results/soak/<dir>/soak.jsonl`);
//! * `readme`: the machine's cores and thread limits, from that README;
//! * `data`: sort the records by scenario and server, derive figures;
//! * `tables`, `plots`: the markdown tables, the SVG plots;
//! * `text`, `discussion`, `scoreboard`, `compare`: the prose around the
//!   numbers, the discussion, its closing scoreboard, and the comparison
//!   words both choose from the data;
//! * `history`: the history experiments (SQLite, the database bridges, a
//!   quiet room beside a busy one), their tables, plot and explanation;
//! * `layers`: the channel-layer experiments (rooms in memory or on Redis,
//!   several processes, Redis shards, a room shared with Django), their
//!   tables, plots and explanation;
//! * `soak`: the endurance section: each server under a long steady load,
//!   what it lost, and whether its memory, threads and descriptors stayed
//!   flat, with their plot;
//! * `report`: put them together and write the files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

mod compare;
mod data;
mod discussion;
mod experiments;
mod format;
mod history;
mod layers;
mod load;
mod plots;
mod profile;
mod readme;
mod report;
mod scoreboard;
mod soak;
mod tables;
mod targets;
#[cfg(test)]
mod testdata;
mod text;

/// Writes `REPORT.md` and SVG plots from the newest benchmark run and soak.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The results directory: run directories (`<date>-<host>/`, each with
    /// `runs.jsonl` and `README.md`) inside; `REPORT.md` and `plots/` are
    /// written here.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// The run directory to report on, instead of the newest (by name)
    /// under `--results`.
    #[arg(long)]
    run: Option<PathBuf>,
    /// The soak directory to report on (one with `soak.jsonl`), instead of
    /// the newest (by name) under `--results`/soak.
    #[arg(long)]
    soak: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat-report: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let generated =
        report::generate_with(&args.results, args.run.as_deref(), args.soak.as_deref())?;
    println!(
        "{} written from {}",
        generated.report.display(),
        generated.run.display()
    );
    match &generated.soak {
        Some(soak) => println!("soak from {}", soak.display()),
        None => println!("no soak found (bash scripts/soak.sh makes one)"),
    }
    for plot in &generated.plots {
        println!("{}", plot.display());
    }
    Ok(())
}
