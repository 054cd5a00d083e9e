//! Putting the report together: read the run (and the soak, if any), write
//! the plots, write `REPORT.md`.
//!
//! The output depends only on the run and soak directories' files (no
//! clock, no machine probing), so regenerating gives the same bytes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::Data;
use crate::discussion;
use crate::history;
use crate::layers;
use crate::load::{self, README_FILE, RUNS_FILE, RunDir};
use crate::plots::{self, PLOTS_DIR, Written};
use crate::profile;
use crate::soak;
use crate::tables::{self, FLAG, NOT_MEASURED};
use crate::targets;
use crate::text;

/// The report's file name, in the results directory.
pub const REPORT_FILE: &str = "REPORT.md";

/// What one generation wrote.
#[derive(Debug)]
pub struct Generated {
    /// The run directory reported on.
    pub run: PathBuf,
    /// The soak directory reported on, if any.
    pub soak: Option<PathBuf>,
    /// `REPORT.md`.
    pub report: PathBuf,
    /// The plots written.
    pub plots: Vec<PathBuf>,
}

/// Builds `results/REPORT.md` and `results/plots/` from the chosen run (the
/// newest under `results` if none is given) and the newest soak: the
/// tests' shorthand for [`generate_with`].
#[cfg(test)]
pub fn generate(results: &Path, run: Option<&Path>) -> Result<Generated> {
    generate_with(results, run, None)
}

/// Builds `results/REPORT.md` and `results/plots/` from the chosen run and
/// soak (the newest under `results` and `results/soak` if not given; no
/// soak is no error).
pub fn generate_with(results: &Path, run: Option<&Path>, soak: Option<&Path>) -> Result<Generated> {
    let run_dir = load::select_run(results, run)?;
    let run = load::read_run(&run_dir)?;
    let soak = load::select_soak(results, soak)?
        .map(|dir| load::read_soak(&dir))
        .transpose()?;
    let data = Data::new(&run.records);
    let plots_dir = results.join(PLOTS_DIR);
    let mut written = plots::write_all(&data, &plots_dir)?;
    written.extend(soak::write_plot(soak.as_ref(), &plots_dir)?);
    let link = link_from(results, &run.dir);
    // How the report names its source: `results/<run>/runs.jsonl`.
    let results_name = results
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| results.display().to_string());
    // And the soak's: `results/soak/<dir>`, linked as `soak/<dir>`.
    let soak_link = soak
        .as_ref()
        .map(|s| link_from(results, &s.dir))
        .unwrap_or_default();
    let soak_shown = shown_from(&results_name, &soak_link);
    let soak_source = soak.as_ref().map(|soak| soak::Source {
        soak,
        shown: &soak_shown,
        link: &soak_link,
    });
    let markdown = render(
        &data,
        &run,
        soak_source.as_ref(),
        &results_name,
        &link,
        &written,
    );
    let report = results.join(REPORT_FILE);
    fs::write(&report, markdown).with_context(|| format!("writing {}", report.display()))?;
    Ok(Generated {
        run: run.dir,
        soak: soak.map(|s| s.dir),
        report,
        plots: written.iter().map(|w| plots_dir.join(w.file)).collect(),
    })
}

/// How a reader finds `link` (relative to the results directory, or
/// absolute) from the workspace root: under the results directory's name
/// when relative.
fn shown_from(results_name: &str, link: &str) -> String {
    if link.starts_with('/') {
        link.to_owned()
    } else {
        format!("{results_name}/{link}")
    }
}

/// A link from the results directory (where the report is) to `dir`:
/// relative when `dir` is inside it, absolute otherwise.
fn link_from(results: &Path, dir: &Path) -> String {
    let relative = dir
        .strip_prefix(results)
        .ok()
        .map(Path::to_path_buf)
        .or_else(|| {
            let results = results.canonicalize().ok()?;
            let dir = dir.canonicalize().ok()?;
            dir.strip_prefix(results).ok().map(Path::to_path_buf)
        });
    let path = relative.unwrap_or_else(|| dir.to_path_buf());
    // Markdown links use forward slashes.
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
        .replace("//", "/")
}

/// The whole of `REPORT.md`: `results_name` is the results directory's name
/// (to name the source), `run_link` the run directory relative to it,
/// `soak` the soak, if there is one.
pub fn render(
    data: &Data<'_>,
    run: &RunDir,
    soak: Option<&soak::Source<'_>>,
    results_name: &str,
    run_link: &str,
    plots: &[Written],
) -> String {
    let runs_link = format!("{run_link}/{RUNS_FILE}");
    let readme_link = format!("{run_link}/{README_FILE}");
    let mut out = text::header(&format!("{results_name}/{runs_link}"), &runs_link);
    out.push('\n');
    out.push_str(&text::summary(data, &run.name));

    out.push_str("\n## Summary\n\n");
    let _ = writeln!(
        out,
        "One column per server. \"{NOT_MEASURED}\" means the run has no record for it; \
         {FLAG} marks a run that lost, duplicated or reordered deliveries (details in the \
         caveats). Latencies are from a message's intended send time to its arrival, in \
         milliseconds. The machine, the commit and the exact commands are in \
         [`{readme_link}`]({readme_link}).\n"
    );
    if data.main_records().next().is_none() {
        let _ = if data.variants.is_empty() {
            writeln!(out, "The run has no records: nothing was measured.")
        } else {
            writeln!(
                out,
                "The run has only variant runs, with no normal run to compare them with: \
                 nothing to summarise."
            )
        };
    } else {
        out.push_str(&tables::summary(data));
    }

    out.push_str("\n## Targets\n\n");
    out.push_str(&targets::targets(data, &run.readme));

    out.push_str("\n## Every fan-out run\n\n");
    if data.fanouts.is_empty() {
        let _ = writeln!(out, "Fan-out: {NOT_MEASURED}.");
    } else {
        out.push_str(
            "CPU is in cores (1.0 = one core busy) over the measured window; RSS and threads \
             are the peaks sampled during the run.\n\n",
        );
        out.push_str(&tables::fanout_runs(data));
    }
    out.push_str("\n### Capacity search\n\n");
    if data.capacities.is_empty() {
        let _ = writeln!(out, "Capacity: {NOT_MEASURED}.");
    } else {
        out.push_str(&tables::capacity_steps(data));
    }
    out.push_str("\n### Idle connections\n\n");
    if data.connections.is_empty() {
        let _ = writeln!(out, "Connections: {NOT_MEASURED}.");
    } else {
        out.push_str(&tables::connections_runs(data));
    }

    if !data.variants.is_empty() {
        out.push_str("\n## Before and after\n\n");
        out.push_str(&text::before_after(data));
    }

    out.push_str("\n## History (SQLite) and the database bridges\n\n");
    out.push_str(&history::section(data, plots));

    out.push_str("\n## Rooms on Redis\n\n");
    out.push_str(&layers::section(
        data,
        crate::readme::cores(&run.readme),
        plots,
    ));

    out.push_str("\n## Write floor\n\n");
    out.push_str(&text::write_floor(data));

    out.push_str("\n## Where the CPU goes\n\n");
    out.push_str(&profile::render(&profile::parse(
        run.profile.as_deref().unwrap_or_default(),
    )));

    out.push_str("\n## Endurance (soak)\n\n");
    out.push_str(&soak::section(soak, results_name, plots));

    out.push_str("\n## Plots\n\n");
    for (file, what) in [
        (
            plots::LATENCY_PLOT,
            "Fan-out latency against clients (one room)",
        ),
        (
            plots::THROUGHPUT_PLOT,
            "Fan-out throughput against clients (one room)",
        ),
        (plots::CAPACITY_PLOT, "Capacity search"),
        (plots::THREADS_PLOT, "Server threads against connections"),
        (plots::RSS_PLOT, "Server RSS against connections"),
    ] {
        match plots.iter().find(|w| w.file == file) {
            Some(w) => {
                let _ = writeln!(out, "![{}]({PLOTS_DIR}/{file})\n", w.title);
            }
            None => {
                let _ = writeln!(out, "- {what}: {NOT_MEASURED}.\n");
            }
        }
    }

    out.push_str("## Method\n\n");
    out.push_str(&text::method(data));
    out.push_str("\n## Caveats\n\n");
    out.push_str(&text::caveats(data, &run.readme));
    out.push_str("\n## Discussion\n\n");
    out.push_str(&discussion::discussion(data, &run.readme));

    let _ = writeln!(
        out,
        "## The run: machine, commit, commands\n\n\
         From [`{readme_link}`]({readme_link}), written by the bench script; raw data in \
         [`{runs_link}`]({runs_link}).\n"
    );
    out.push_str(&demote_headings(&run.readme, 2));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Markdown with every heading `levels` deeper (outside code blocks), so
/// an embedded document nests under the report's own heading.
fn demote_headings(markdown: &str, levels: usize) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            _ => {}
        }
        let is_heading = fence.is_none()
            && line.starts_with('#')
            && line
                .trim_start_matches('#')
                .chars()
                .next()
                .is_none_or(char::is_whitespace);
        if is_heading {
            out.push_str(&"#".repeat(levels));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{
        TempDir, capacity_record, connections_record, fanout_record, floor_record, variant,
        write_run,
    };
    use chat_loadgen::record::Results;

    const README: &str = "# Bench run\n\n- nproc: 2\n\n\
        | limit | value |\n|---|---|\n| `/proc/sys/kernel/threads-max` | 63405 |\n\n\
        ```sh\n# a comment\nbash scripts/bench.sh\n```\n";

    fn full_run() -> Vec<chat_loadgen::record::Record> {
        let mut lossy = fanout_record("sync", 1000, 1);
        if let Results::Fanout(f) = &mut lossy.results {
            f.lost = 10;
            f.delivered -= 10;
        }
        lossy
            .warnings
            .push("load generator CPU above 90%".to_owned());
        vec![
            fanout_record("sync", 100, 1),
            fanout_record("async", 100, 1),
            lossy,
            fanout_record("async", 1000, 1),
            fanout_record("django", 100, 1),
            fanout_record("sync", 1000, 10),
            fanout_record("async", 1000, 10),
            capacity_record("sync", &[(100, true), (200, false)]),
            capacity_record("async", &[(100, true), (200, true)]),
            connections_record(
                "sync",
                2000,
                1500,
                Some("os error 11: Resource temporarily unavailable"),
            ),
            connections_record("sync", 1000, 1000, None),
            connections_record("async", 2000, 2000, None),
        ]
    }

    #[test]
    fn report_from_the_newest_run() {
        let tmp = TempDir::new("report-full");
        let results = tmp.path();
        write_run(
            &results.join("2025-01-01-old"),
            &[fanout_record("sync", 5, 1)],
            README,
        );
        write_run(&results.join("2025-06-01-box"), &full_run(), README);

        let generated = generate(results, None).expect("generate");
        assert_eq!(generated.run, results.join("2025-06-01-box"));
        let md = fs::read_to_string(&generated.report).expect("report");

        assert!(
            md.starts_with("# Thread per connection or async tasks: results\n"),
            "{md}"
        );
        let dir_name = results
            .canonicalize()
            .expect("canonical")
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(md.contains(&format!(
            "_Generated by `chat-report` from [`{dir_name}/2025-06-01-box/runs.jsonl`](2025-06-01-box/runs.jsonl); do not edit."
        )), "{md}");
        assert!(md.contains("|  | sync | async | django |"), "{md}");
        // Peak throughput: 1,000 clients × 1,000 messages / 10 s.
        assert!(md.contains("| **Peak fan-out throughput**, deliveries/s (max over fan-out runs) | 100,000 | 100,000 | 10,000 |"), "{md}");
        assert!(md.contains("| 1.20 / 4.80 / 9.60 ⚠ lost 10 of 1,000,000 deliveries (0.00100%) | 0.650 / 2.60 / 5.20 | not measured |"), "{md}");
        assert!(md.contains("1,000 clients in 10 rooms, 1 sender/room @ 100 msg/s, 32 B"));
        assert!(md.contains("1,500 of 2,000; at target 2,000: 500 failed, first: `os error 11"));
        // The sections, in order.
        let order = [
            "## Summary",
            "## Every fan-out run",
            "### Capacity search",
            "### Idle connections",
            "## Plots",
            "## Method",
            "## Caveats",
            "## Discussion",
            "## The run: machine, commit, commands",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|h| md.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // Plots are linked and exist.
        for file in plots::ALL_PLOTS {
            assert!(md.contains(&format!("](plots/{file})")), "{file}");
            let svg = fs::read_to_string(results.join("plots").join(file)).expect("plot");
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        }
        // Loss and warnings are loud; cores are read from the README.
        assert!(md.contains("**⚠ 1 fan-out run lost deliveries: see the caveats.**"));
        assert!(md.contains("- **⚠ sync fan-out, 1,000 clients in 1 room"));
        assert!(md.contains("load generator CPU above 90%"));
        assert!(md.contains("compete for the same 2 cores"));
        // The README is embedded with its headings nested, code untouched.
        assert!(md.contains("\n### Bench run\n"));
        assert!(md.contains("\n# a comment\n"));
        // The failed connections run reaches the discussion.
        assert!(
            md.contains("Asked for 2,000, it opened 1,500 and held 1,500 (500 failed)"),
            "{md}"
        );
        assert!(
            md.contains(
                "The smallest, `threads-max`, allows at most about 31,702 sync connections"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "The failing run stopped at 1,500 connections, about 3,000 threads \
                 (4.73% of that limit)"
            ),
            "{md}"
        );

        // Idempotent.
        let first_svg = fs::read(results.join("plots").join(plots::LATENCY_PLOT)).expect("svg");
        generate(results, None).expect("again");
        assert_eq!(fs::read_to_string(&generated.report).expect("report"), md);
        assert_eq!(
            fs::read(results.join("plots").join(plots::LATENCY_PLOT)).expect("svg"),
            first_svg
        );
    }

    #[test]
    fn missing_scenarios_say_not_measured() {
        let tmp = TempDir::new("report-sparse");
        let results = tmp.path();
        let run = results.join("2025-06-01-box");
        write_run(&run, &[fanout_record("async", 100, 1)], "# run\n");
        let generated = generate(results, Some(&run)).expect("generate");
        let md = fs::read_to_string(&generated.report).expect("report");
        assert!(md.contains("Capacity: not measured."));
        assert!(md.contains("Connections: not measured."));
        assert!(md.contains("Write floor: not measured."));
        assert!(md.contains("- Server threads against connections: not measured."));
        assert!(md.contains("only `async` of the two"));
        assert!(md.contains("compete for the same cores"));
        assert_eq!(generated.plots.len(), 2);
    }

    #[test]
    fn headings_are_demoted_outside_code() {
        let md = "# A\ntext #not\n```\n# code\n```\n## B\n#hashtag\n";
        assert_eq!(
            demote_headings(md, 2),
            "### A\ntext #not\n```\n# code\n```\n#### B\n#hashtag\n"
        );
    }

    #[test]
    fn links_are_relative_to_the_results_directory() {
        assert_eq!(
            link_from(Path::new("results"), Path::new("results/2025-x")),
            "2025-x"
        );
        assert_eq!(
            link_from(Path::new("/r"), Path::new("/elsewhere/run")),
            "/elsewhere/run"
        );
    }

    #[test]
    fn floor_runs_get_their_section_and_no_column() {
        let tmp = TempDir::new("report-floor");
        let results = tmp.path();
        let run = results.join("2025-06-01-box");
        let mut records = vec![floor_record(5.0)];
        records.extend(full_run());
        records.push(floor_record(5.0));
        write_run(&run, &records, README);
        let generated = generate(results, Some(&run)).expect("generate");
        let md = fs::read_to_string(&generated.report).expect("report");
        assert!(md.contains("|  | sync | async | django |"), "{md}");
        assert!(!md.contains("| floor |"), "{md}");
        let order = ["### Idle connections", "## Write floor", "## Plots"];
        let positions: Vec<usize> = order
            .iter()
            .map(|h| md.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert!(md.contains("**5.00 µs of CPU per frame** (the mean of 2 floor runs"));
        assert!(md.contains("Server CPU per delivery at the peak-throughput run, as a multiple"));
        assert!(
            md.contains("14 runs (7 fan-out, 2 capacity, 3 connections, 2 write-floor)"),
            "{md}"
        );
        // The floor's busy load generator is not the servers' caveat.
        assert!(!md.contains("peaked at 1.90 cores"), "{md}");
    }

    #[test]
    fn variant_runs_appear_only_before_and_after() {
        let tmp = TempDir::new("report-variants");
        let results = tmp.path();
        let run = results.join("2025-06-01-box");
        let mut records = vec![floor_record(5.0)];
        records.extend(full_run());
        let mut baseline = variant(
            fanout_record("async", 1000, 1),
            "baseline",
            "built from commit fe44d3d, before the performance work",
        );
        if let Results::Fanout(f) = &mut baseline.results {
            // A throughput no normal run has, and a loss no normal run had.
            f.deliveries_per_s = 777_777.0;
            f.lost = 3;
        }
        baseline.loadgen_process.cpu_utilization = 3.5;
        baseline
            .warnings
            .push("LOSS: 3 of 1,000,000 expected deliveries never arrived".to_owned());
        records.push(baseline);
        records.push(variant(
            connections_record("async", 2000, 2000, None),
            "batch-1",
            "`--max-batch-frames 1`: one frame per write",
        ));
        write_run(&run, &records, README);
        let generated = generate(results, Some(&run)).expect("generate");
        let md = fs::read_to_string(&generated.report).expect("report");

        let order = [
            "### Idle connections",
            "## Before and after",
            "### Fan-out: before and after",
            "### Idle connections: before and after",
            "## Write floor",
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|h| md.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        let (main, rest) = md.split_at(positions[1]);
        let section = &rest[..positions[4] - positions[1]];
        assert!(
            section.contains(
                "Before and after were measured in the same run, on the same machine, minutes \
                 apart: ratios, not absolute numbers, are the finding."
            ),
            "{section}"
        );
        assert!(
            section.contains("| ⚠ **`baseline`** | built from commit fe44d3d"),
            "{section}"
        );
        assert!(section.contains("777,777 → 100,000"), "{section}");
        assert!(
            section.contains("| `batch-1` | `--max-batch-frames 1`: one frame per write | async"),
            "{section}"
        );
        assert!(
            section.contains("- ⚠ `baseline`, async fan-out, 1,000 clients"),
            "{section}"
        );
        assert!(section.contains("before: lost 3 of"), "{section}");
        assert!(
            section.contains("the load generator warned: LOSS: 3 of"),
            "{section}"
        );
        // Nowhere else: not a peak, not a caveat, not counted as a fan-out.
        let after_section = &rest[positions[4] - positions[1]..];
        for text in [main, after_section] {
            assert!(!text.contains("777,777"));
            assert!(!text.contains("baseline"));
            assert!(!text.contains("3.50 cores"));
        }
        assert!(
            md.contains("15 runs (7 fan-out, 2 capacity, 3 connections, 1 write-floor, 2 variant)"),
            "{md}"
        );
        assert!(md.contains("**⚠ 1 fan-out run lost deliveries: see the caveats.**"));
    }
}
