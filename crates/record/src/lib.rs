//! `chat-record`: what a benchmark run writes, and every judgement made on
//! it, defined once.
//!
//! The load generator writes [`Record`]s (one JSON line per run) and
//! [`soak::SoakRecord`]s; the sweep writes one [`machine::Machine`] and
//! one [`servers::Servers`]; the report reads them all. Whether a run kept up, fell behind, lost or
//! closed anyone ([`verdict`]), which runs may be set side by side
//! ([`verdict::Load`]), and whether a soak's resources stayed flat
//! ([`flat`]) are decided here and nowhere else, so that the sweep that
//! climbs a ladder, the load generator that prints a run, and the report
//! that explains it can never disagree on what a run showed.
//!
//! No I/O and no runtime: serde types and pure functions, so that reading a
//! record needs neither tokio nor `/proc`.

pub mod flat;
pub mod machine;
mod run;
pub mod servers;
pub mod soak;
pub mod verdict;

pub use run::*;
