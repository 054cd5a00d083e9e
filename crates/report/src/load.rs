//! Finding and reading a run directory.
//!
//! The bench script writes one directory per session, `results/<date>-<host>/`,
//! holding `runs.jsonl` (one [`Record`] per line, appended by the load
//! generator) and `README.md` (the machine, the commit, the exact commands).
//! A directory missing either is not a finished run and is ignored, so a
//! half-written session never becomes the report.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chat_loadgen::record::Record;

/// The raw data file of a run directory.
pub const RUNS_FILE: &str = "runs.jsonl";
/// The description of a run directory (machine, commit, commands).
pub const README_FILE: &str = "README.md";

/// One run directory, read.
#[derive(Debug)]
pub struct RunDir {
    /// Where it is.
    pub dir: PathBuf,
    /// Its directory name (`<date>-<host>`).
    pub name: String,
    /// Its `README.md`, verbatim.
    pub readme: String,
    /// Its records, in file order.
    pub records: Vec<Record>,
    /// Its `profile.tsv`, verbatim, if it has one.
    pub profile: Option<String>,
}

/// Every full run directory directly under `results`, sorted by name (the
/// names start with the date, so the last is the newest). Smoke runs
/// (`bench.sh --quick`, directories ending in `-quick`) are left out: they
/// never become the project's report unless chosen with `--run`.
pub fn find_run_dirs(results: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(results)
        .with_context(|| format!("reading the results directory {}", results.display()))?;
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", results.display()))?;
        let path = entry.path();
        let quick = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().ends_with("-quick"));
        if is_run_dir(&path) && !quick {
            dirs.push(path);
        }
    }
    dirs.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(dirs)
}

/// Whether `dir` is a finished run: a directory with both files.
pub fn is_run_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join(RUNS_FILE).is_file() && dir.join(README_FILE).is_file()
}

/// The run to report on: `chosen` if given (it must be a run directory),
/// else the newest under `results`.
pub fn select_run(results: &Path, chosen: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = chosen {
        if !is_run_dir(dir) {
            bail!(
                "{} is not a run directory: it needs both {RUNS_FILE} and {README_FILE}",
                dir.display()
            );
        }
        return Ok(dir.to_path_buf());
    }
    let dirs = find_run_dirs(results)?;
    match dirs.last() {
        Some(newest) => Ok(newest.clone()),
        None => bail!(
            "no run directory under {} (a run directory holds {RUNS_FILE} and {README_FILE})",
            results.display()
        ),
    }
}

/// Reads a run directory. Blank lines in `runs.jsonl` are skipped; any other
/// line that is not a [`Record`] is an error naming the line, since a report
/// that silently drops a run would mislead.
pub fn read_run(dir: &Path) -> Result<RunDir> {
    let runs_path = dir.join(RUNS_FILE);
    let runs = fs::read_to_string(&runs_path)
        .with_context(|| format!("reading {}", runs_path.display()))?;
    let records = parse_records(&runs).with_context(|| format!("in {}", runs_path.display()))?;
    let readme_path = dir.join(README_FILE);
    let readme = fs::read_to_string(&readme_path)
        .with_context(|| format!("reading {}", readme_path.display()))?;
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let profile = fs::read_to_string(dir.join(crate::profile::PROFILE_FILE)).ok();
    Ok(RunDir {
        dir: dir.to_path_buf(),
        name,
        readme,
        records,
        profile,
    })
}

/// Parses JSON lines into records.
pub fn parse_records(text: &str) -> Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("line {} is not a record", i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{TempDir, fanout_record, write_run};

    #[test]
    fn newest_complete_run_is_selected() {
        let tmp = TempDir::new("load-newest");
        let results = tmp.path();
        write_run(
            &results.join("2025-01-01-a"),
            &[fanout_record("sync", 10, 1)],
            "old",
        );
        write_run(
            &results.join("2025-02-01-a"),
            &[fanout_record("sync", 10, 1)],
            "new",
        );
        // Newer by name, but incomplete: no README.md.
        let incomplete = results.join("2025-03-01-a");
        fs::create_dir_all(&incomplete).expect("mkdir");
        fs::write(incomplete.join(RUNS_FILE), "").expect("write");

        let dirs = find_run_dirs(results).expect("find");
        assert_eq!(dirs.len(), 2);
        let chosen = select_run(results, None).expect("select");
        assert_eq!(chosen, results.join("2025-02-01-a"));
        let run = read_run(&chosen).expect("read");
        assert_eq!(run.name, "2025-02-01-a");
        assert_eq!(run.records.len(), 1);
        assert!(run.readme.contains("new"));

        assert!(select_run(results, Some(&incomplete)).is_err());
    }

    #[test]
    fn empty_results_is_an_error() {
        let tmp = TempDir::new("load-empty");
        assert!(select_run(tmp.path(), None).is_err());
    }

    #[test]
    fn bad_line_is_named() {
        let good = serde_json::to_string(&fanout_record("sync", 10, 1)).expect("json");
        let text = format!("{good}\n\n{{\"scenario\": 1}}\n");
        let err = parse_records(&text).expect_err("line 3 is bad");
        assert!(format!("{err:#}").contains("line 3"), "{err:#}");
        assert_eq!(parse_records(&format!("{good}\n\n")).expect("ok").len(), 1);
    }
}
