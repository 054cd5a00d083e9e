//! `chat-loadgen verdict` and `chat-loadgen machine`, run as the sweep runs
//! them: the binary, on files.
//!
//! The fixtures are records of the run of 2026-11-27 (its `runs.jsonl`,
//! committed with 1acc899): chat-sync at 1,000 clients in one room,
//! 100 msg/s, which delivered everything at 72% of the rate offered (fell
//! behind); chat-sync at 100 rooms of 10, which kept up; and the
//! write floor, which is no fan-out.

use std::path::Path;
use std::process::{Command, Output};

use chat_record::machine::Machine;

const BIN: &str = env!("CARGO_BIN_EXE_chat-loadgen");
const KEPT_UP: &str = include_str!("fixtures/fanout-kept-up.jsonl");
const FELL_BEHIND: &str = include_str!("fixtures/fanout-fell-behind.jsonl");
const FLOOR: &str = include_str!("fixtures/floor.jsonl");

/// `chat-loadgen verdict --runs` on a file of `lines`.
fn verdict_of(lines: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runs = dir.path().join("runs.jsonl");
    std::fs::write(&runs, lines.concat()).expect("the runs file is written");
    verdict_of_file(&runs)
}

fn verdict_of_file(runs: &Path) -> Output {
    Command::new(BIN)
        .args(["verdict", "--runs"])
        .arg(runs)
        .output()
        .expect("chat-loadgen runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_last_record_is_judged() {
    let out = verdict_of(&[FELL_BEHIND, KEPT_UP]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = stdout(&out);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{line:?}");
    assert_eq!((fields[0], fields[2]), ("kept_up", "100000"), "{line:?}");
    let delivered: f64 = fields[1].parse().expect("a number");
    assert!((99_000.0..100_000.0).contains(&delivered), "{line:?}");

    let out = verdict_of(&[KEPT_UP, FELL_BEHIND, "\n"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.starts_with("fell_behind 71882.8 "), "{line:?}");
    assert!(line.ends_with(" 100000\n"), "{line:?}");
}

#[test]
fn no_fanout_record_is_an_error() {
    let out = verdict_of(&[KEPT_UP, FLOOR]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("floor run, not a fan-out"),
        "{}",
        stderr(&out)
    );

    let out = verdict_of(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("holds no record"), "{}", stderr(&out));

    let out = verdict_of(&["{\"scenario\":\n"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a run record"),
        "{}",
        stderr(&out)
    );

    let out = verdict_of_file(Path::new("/nonexistent/runs.jsonl"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}

#[test]
fn the_machine_is_written_as_json() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("machine.json");
    let out = Command::new(BIN)
        .arg("machine")
        .arg("--out")
        .arg(&path)
        .args(["--command", "bash scripts/bench.sh --pin", "--mode", "full"])
        .args(["--server-cpus", "1", "--loadgen-cpus", "0"])
        .args([
            "--raised",
            "open files: soft limit raised from 1024 to 20000.",
        ])
        .args(["--crate", "tokio=1.54.1", "--crate", "tungstenite=0.30.0"])
        .output()
        .expect("chat-loadgen runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).expect("machine.json is written");
    let machine: Machine = serde_json::from_str(&text).expect("machine.json reads back");
    assert_eq!(machine.command, "bash scripts/bench.sh --pin");
    assert_eq!(machine.mode, "full");
    assert_eq!(machine.pinning.server_cpus.as_deref(), Some("1"));
    assert_eq!(machine.pinning.loadgen_cpus.as_deref(), Some("0"));
    assert_eq!(
        machine.raised,
        ["open files: soft limit raised from 1024 to 20000."]
    );
    assert_eq!(machine.crates.len(), 2);
    assert!(machine.cores_usable >= 1, "{text}");

    let bad = Command::new(BIN)
        .arg("machine")
        .arg("--out")
        .arg(&path)
        .args(["--command", "x", "--mode", "slow"])
        .output()
        .expect("chat-loadgen runs");
    assert_eq!(bad.status.code(), Some(2), "a mode is quick or full");
}
