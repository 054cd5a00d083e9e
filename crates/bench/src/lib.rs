//! `chat-bench`: the benchmark's driver.
//!
//! The sweep is data (`scripts/sweep/full.toml`, `quick.toml`, and the
//! servers in `servers.toml`): experiments, the servers each runs, a base
//! load with a ladder of steps, a stop rule, and settings that run a ladder
//! again as a variant (flags, the baseline's binaries, cores, Redis
//! deployments). This crate walks it:
//!
//! 1. raises the open-files and process limits every server inherits
//!    ([`limits`]), and builds the baseline's binaries with `--baseline`;
//! 2. admits each server ([`setup::admit`]): installed, started, and
//!    speaking the protocol exactly (delivery to every member including the
//!    sender, nothing across rooms, one order with two senders); a server
//!    that fails is reported as failing, not measured;
//! 3. measures the write floor, then runs every experiment ([`driver`]):
//!    each run on fresh processes started through `chat_testkit::launch`
//!    (with Redis servers of its own when the setting asks), pinned with
//!    `taskset` where the run is pinned, driven by `chat_loadgen::scenario`
//!    in this process (its own threads pinned too), its record appended to
//!    `runs.jsonl`, kernel settings raised for the experiments that need
//!    them and restored after;
//! 4. profiles our servers with `perf`, measures the floor again, writes
//!    `machine.json` and `servers.json`, and runs `chat-report`.
//!
//! Whether a run kept up is `chat_record::verdict`'s to say, never this
//! crate's: the ladder's stop rules and the console ask it.

pub mod console;
pub mod driver;
pub mod fleet;
pub mod limits;
pub mod memory;
pub mod plan;
pub mod profile;
pub mod rundir;
pub mod setup;
pub mod sweep;
