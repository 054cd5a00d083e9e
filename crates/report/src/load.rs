//! Finding and reading a run directory, and the soak beside the runs.
//!
//! The bench script writes one directory per session, `results/<date>-<host>/`,
//! holding `runs.jsonl` (one [`Record`] per line, appended by the load
//! generator) and `README.md` (the machine, the commit, the exact commands).
//! A directory missing either is not a finished run and is ignored, so a
//! half-written session never becomes the report, and neither does any
//! other directory of `results/` (`plots/`, `soak/`).
//!
//! The soak script writes its own directories one level down,
//! `results/soak/<date>-<host>/`, holding `soak.jsonl` (one [`SoakRecord`]
//! per server) and its `README.md`. The soak is found apart from the run,
//! since the two are made by different scripts at different times, and is
//! optional: a report without one says so.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chat_loadgen::record::Record;
use chat_loadgen::soak::record::SoakRecord;

/// The raw data file of a run directory.
pub const RUNS_FILE: &str = "runs.jsonl";
/// The description of a run directory (machine, commit, commands).
pub const README_FILE: &str = "README.md";
/// The directory, under the results directory, of the soak directories.
pub const SOAK_DIR: &str = "soak";
/// The raw data file of a soak directory.
pub const SOAK_FILE: &str = "soak.jsonl";

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

/// One soak directory, read.
#[derive(Debug)]
pub struct SoakDir {
    /// Where it is.
    pub dir: PathBuf,
    /// Its `README.md`, verbatim, if it has one (the report links it).
    pub readme: Option<String>,
    /// Its records, one per server soaked, in file order.
    pub records: Vec<SoakRecord>,
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

/// Whether `dir` is a soak directory: a directory with `soak.jsonl`.
pub fn is_soak_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join(SOAK_FILE).is_file()
}

/// The soak to report on: `chosen` if given (it must be a soak directory),
/// else the newest (by name) under `results/soak/` that is not a smoke run
/// (`-quick`), else none: a missing `results/soak/` is no error.
pub fn select_soak(results: &Path, chosen: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(dir) = chosen {
        if !is_soak_dir(dir) {
            bail!(
                "{} is not a soak directory: it needs {SOAK_FILE}",
                dir.display()
            );
        }
        return Ok(Some(dir.to_path_buf()));
    }
    let parent = results.join(SOAK_DIR);
    if !parent.is_dir() {
        return Ok(None);
    }
    let entries = fs::read_dir(&parent).with_context(|| format!("reading {}", parent.display()))?;
    let mut newest: Option<PathBuf> = None;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", parent.display()))?
            .path();
        let quick = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().ends_with("-quick"));
        if is_soak_dir(&path)
            && !quick
            && newest
                .as_ref()
                .is_none_or(|n| n.file_name() < path.file_name())
        {
            newest = Some(path);
        }
    }
    Ok(newest)
}

/// Reads a soak directory, its lines parsed as strictly as `runs.jsonl`'s.
pub fn read_soak(dir: &Path) -> Result<SoakDir> {
    let path = dir.join(SOAK_FILE);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("line {} is not a soak record", i + 1))
        })
        .collect::<Result<Vec<SoakRecord>>>()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(SoakDir {
        dir: dir.to_path_buf(),
        readme: fs::read_to_string(dir.join(README_FILE)).ok(),
        records,
    })
}

/// A directory's last component, or the whole path if it has none.
fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
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
    let name = dir_name(dir);
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
    use crate::testdata::{TempDir, fanout_record, soak_record, write_run, write_soak};

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

    #[test]
    fn the_soak_is_found_apart_from_the_runs() {
        let tmp = TempDir::new("load-soak");
        let results = tmp.path();
        assert!(select_soak(results, None).expect("none").is_none());
        write_run(
            &results.join("2025-01-01-a"),
            &[fanout_record("sync", 10, 1)],
            "run",
        );
        let soak = [soak_record("sync", &[4.0, 20.0, 20.0], 10, 10)];
        write_soak(&results.join("soak/2025-02-01-a"), &soak, "old");
        write_soak(&results.join("soak/2025-03-01-a"), &soak, "new");
        write_soak(&results.join("soak/2025-04-01-a-quick"), &soak, "smoke");
        // Newer by name, but without soak.jsonl.
        fs::create_dir_all(results.join("soak/2025-05-01-a")).expect("mkdir");
        // Even with a README.md of its own, `soak/` is not a run.
        fs::write(results.join("soak/README.md"), "soaks").expect("write");

        assert_eq!(
            find_run_dirs(results).expect("find"),
            [results.join("2025-01-01-a")]
        );
        let newest = select_soak(results, None).expect("select").expect("a soak");
        assert_eq!(newest, results.join("soak/2025-03-01-a"));
        let read = read_soak(&newest).expect("read");
        assert_eq!(read.records.len(), 1);
        assert_eq!(read.readme.as_deref(), Some("new"));

        let quick = results.join("soak/2025-04-01-a-quick");
        assert_eq!(
            select_soak(results, Some(&quick)).expect("chosen"),
            Some(quick)
        );
        assert!(select_soak(results, Some(&results.join("soak/2025-05-01-a"))).is_err());
        assert!(select_soak(results, Some(&results.join("2025-01-01-a"))).is_err());
    }

    #[test]
    fn a_bad_soak_line_is_named() {
        let tmp = TempDir::new("load-soak-bad");
        let dir = tmp.path().join("soak/2025-01-01-a");
        write_soak(&dir, &[soak_record("sync", &[4.0], 1, 1)], "r");
        let good = fs::read_to_string(dir.join(SOAK_FILE)).expect("read");
        fs::write(dir.join(SOAK_FILE), format!("{good}\n{{\"server\": 1}}\n")).expect("write");
        let err = read_soak(&dir).expect_err("line 3 is bad");
        assert!(
            format!("{err:#}").contains("line 3 is not a soak record"),
            "{err:#}"
        );
    }
}
