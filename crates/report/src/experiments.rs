//! What the experiment sections (history, Redis layer) end with, written
//! once: the load generator's warnings for their runs, and the runs named
//! like an experiment that none of its tables could place.

use std::fmt::Write;

use chat_loadgen::record::Record;

/// Appends the load generator's warnings, one line each, if there are any.
pub fn warnings(out: &mut String, lines: &[String]) {
    if !lines.is_empty() {
        let _ = writeln!(
            out,
            "\nThe load generator warned, in these runs:\n\n{}",
            lines.join("\n")
        );
    }
}

/// Appends the runs named like the experiment (`what`) that are not a
/// fan-out of a known kind (`known`), if there are any.
pub fn not_shown(out: &mut String, unknown: &[&Record], what: &str, known: &str) {
    if unknown.is_empty() {
        return;
    }
    let names: Vec<String> = unknown
        .iter()
        .map(|r| {
            format!(
                "`{}` ({})",
                r.params.variant.as_deref().unwrap_or_default(),
                r.server
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nNot shown: {} run(s) named like {what} but not a fan-out of a known {known}: {}.",
        names.len(),
        names.join(", ")
    );
}
