//! A run directory: `runs.jsonl` (one record per load-generator run),
//! `machine.json`, `servers.json`, and `README.md`, the same facts in
//! words: the command, the machine, the limits raised, and every run's
//! equivalent `chat-loadgen` command with how it ended.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chat_record::Record;

/// The files of one sweep.
#[derive(Debug)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    readme: File,
}

impl RunDir {
    /// Creates the directory; refuses one that holds a `runs.jsonl`
    /// already, so that two sweeps never mix in one file.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if path.join("runs.jsonl").exists() {
            anyhow::bail!(
                "{}/runs.jsonl exists: remove {}, or pass --out DIR, so that two runs never mix in one file",
                path.display(),
                path.display()
            );
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        File::create(path.join("runs.jsonl")).context("cannot create runs.jsonl")?;
        let readme = File::create(path.join("README.md")).context("cannot create README.md")?;
        Ok(Self {
            path: path.to_owned(),
            readme,
        })
    }

    /// Opens a finished run's directory to add to it: its README is
    /// appended to, its records are kept.
    pub fn reopen(path: &Path) -> anyhow::Result<Self> {
        if !path.join("runs.jsonl").exists() {
            anyhow::bail!(
                "{}/runs.jsonl does not exist: not a run directory",
                path.display()
            );
        }
        let readme = OpenOptions::new()
            .append(true)
            .open(path.join("README.md"))
            .context("cannot open README.md")?;
        Ok(Self {
            path: path.to_owned(),
            readme,
        })
    }

    /// `runs.jsonl`.
    pub fn runs(&self) -> PathBuf {
        self.path.join("runs.jsonl")
    }

    /// Appends lines to the README.
    pub fn note(&mut self, lines: &[&str]) {
        for line in lines {
            // A README that cannot be written loses words, not runs: say so.
            if let Err(error) = writeln!(self.readme, "{line}") {
                eprintln!("chat-bench: cannot write README.md: {error}");
                return;
            }
        }
    }

    /// Appends a record to `runs.jsonl`.
    pub fn append(&self, record: &Record) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(record).context("cannot encode a record")?;
        line.push('\n');
        OpenOptions::new()
            .append(true)
            .open(self.runs())
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .context("cannot append to runs.jsonl")
    }

    /// Writes `value` as pretty JSON to `name` in the directory.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(value).context("cannot encode")?;
        text.push('\n');
        std::fs::write(self.path.join(name), text).with_context(|| format!("cannot write {name}"))
    }
}
