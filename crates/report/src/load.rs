//! Finding and reading a run directory, and the soak beside the runs.
//!
//! The bench script writes one directory per session, `results/<date>-<host>/`,
//! holding `runs.jsonl` (one [`Record`] per line, appended by the load
//! generator), `README.md` (the exact commands, and how each ended) and
//! `machine.json` (the [`Machine`]: cores, limits, commit; absent from runs
//! made before it existed, and then the report says so), and, from the
//! sweep of issue 14 on, `servers.json` (the [`Servers`]: what each server
//! is, how it was started, its admission check; absent from older runs).
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
use chat_record::Record;
use chat_record::machine::Machine;
use chat_record::servers::Servers;
use chat_record::soak::SoakRecord;

/// The raw data file of a run directory.
pub const RUNS_FILE: &str = "runs.jsonl";
/// The description of a run directory (machine, commit, commands).
pub const README_FILE: &str = "README.md";
/// The machine of a run directory, as data.
pub const MACHINE_FILE: &str = "machine.json";
/// The servers of a run directory, as data.
pub const SERVERS_FILE: &str = "servers.json";
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
    /// Its machine, if recorded.
    pub machine: Option<Machine>,
    /// Its servers, if recorded.
    pub servers: Option<Servers>,
    /// Its records, in file order.
    pub records: Vec<Record>,
    /// Its `profile.tsv`, verbatim, if it has one.
    pub profile: Option<String>,
    /// Its `memory.tsv`, verbatim, if it has one.
    pub memory: Option<String>,
}

/// One soak directory, read.
#[derive(Debug)]
pub struct SoakDir {
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
    Ok(SoakDir { records })
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
    let machine = read_optional(&dir.join(MACHINE_FILE), "a machine record")?;
    let servers = read_optional(&dir.join(SERVERS_FILE), "a servers record")?;
    let profile = fs::read_to_string(dir.join(crate::floor::PROFILE_FILE)).ok();
    let memory = fs::read_to_string(dir.join(crate::memory::MEMORY_FILE)).ok();
    Ok(RunDir {
        dir: dir.to_path_buf(),
        name: dir_name(dir),
        machine,
        servers,
        records,
        profile,
        memory,
    })
}

/// A JSON file that older runs lack: `None` when it is absent, an error
/// when it is there and not `what`.
fn read_optional<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is not {what}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
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
    use crate::testdata::fanout_record;

    fn write_run(dir: &Path, machine: Option<&str>) {
        fs::create_dir_all(dir).expect("mkdir");
        let line =
            serde_json::to_string(&fanout_record("sync", 10, 1, 100.0, 1000.0)).expect("json");
        fs::write(dir.join(RUNS_FILE), format!("{line}\n")).expect("write");
        fs::write(dir.join(README_FILE), "run").expect("write");
        if let Some(m) = machine {
            fs::write(dir.join(MACHINE_FILE), m).expect("write");
        }
    }

    #[test]
    fn the_newest_complete_full_run_is_selected() {
        let tmp = tempfile::tempdir().expect("tmp");
        let results = tmp.path();
        write_run(&results.join("2025-01-01-a"), None);
        write_run(
            &results.join("2025-02-01-a"),
            Some(
                r#"{"commit":"abc","clean":true,"started_at":"","command":"","mode":"full","host":"h","cpu_model":"","cores_online":2,"cores_usable":2,"memory_kib":1,"kernel":"","rustc":"","pinning":{"server_cpus":null,"loadgen_cpus":null},"limits":{},"raised":[],"crates":{}}"#,
            ),
        );
        fs::write(
            results.join("2025-02-01-a").join(SERVERS_FILE),
            r#"{"servers":[{"label":"uws","name":"uWebSockets.js","kind":"reference","command":"node server.js","settings":"","cores":"one thread","admission":{"outcome":"failed","detail":"crossed rooms"}}]}"#,
        )
        .expect("write");
        write_run(&results.join("2025-03-01-a-quick"), None);
        // Newer by name, but incomplete: no README.md.
        let incomplete = results.join("2025-04-01-a");
        fs::create_dir_all(&incomplete).expect("mkdir");
        fs::write(incomplete.join(RUNS_FILE), "").expect("write");

        let chosen = select_run(results, None).expect("select");
        assert_eq!(chosen, results.join("2025-02-01-a"));
        let run = read_run(&chosen).expect("read");
        assert_eq!(run.records.len(), 1);
        assert_eq!(run.machine.map(|m| m.cores_online), Some(2));
        let servers = run.servers.expect("servers.json read");
        assert!(!servers.get("uws").expect("listed").admission.passed());
        let older = read_run(&results.join("2025-01-01-a")).expect("read");
        assert!(older.machine.is_none());
        assert!(older.servers.is_none(), "older runs have no servers.json");
        assert!(select_run(results, Some(&incomplete)).is_err());
    }

    #[test]
    fn a_bad_line_is_named() {
        let good =
            serde_json::to_string(&fanout_record("sync", 10, 1, 100.0, 1000.0)).expect("json");
        let err = parse_records(&format!("{good}\n\n{{\"scenario\": 1}}\n")).expect_err("bad");
        assert!(format!("{err:#}").contains("line 3"), "{err:#}");
    }
}
