//! The endurance section of issue 7: each server driven for a long time by
//! a steady mixed load (steady rooms, churn, slow readers, hostile clients)
//! while its memory, threads, descriptors and CPU are sampled.
//!
//! The fan-out runs last seconds; a leak of a thread, a descriptor or a
//! room's queue per thousand connections does not show in them. The soak
//! (`scripts/soak.sh`, `chat-loadgen soak`) writes its own directory,
//! `results/soak/<date>-<host>/`, apart from the bench runs
//! ([`crate::load::select_soak`] finds it), with one
//! [`SoakRecord`] per server. This section reads only those: whether
//! nothing was lost, and whether the lines stayed flat ([`figures`] says
//! what flat means, once). No soak is not an error: the section says how
//! to make one.

mod explain;
mod figures;
mod plot;
mod tables;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use chat_loadgen::soak::record::SoakRecord;

use crate::data::server_order;
use crate::load::{README_FILE, SOAK_DIR, SOAK_FILE, SoakDir};
use crate::plots::{PLOTS_DIR, Written};

pub use plot::SOAK_PLOT;

use figures::Resources;

/// Where the section finds its soak, and how it names it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The soak, read.
    pub soak: &'a SoakDir,
    /// The soak directory as a reader finds it from the workspace root
    /// (`results/soak/<dir>`).
    pub shown: &'a str,
    /// The soak directory relative to the report, for links.
    pub link: &'a str,
}

/// The records in the section's order (ours first, then by name; repeats
/// in file order), each with its label: the server, numbered from its
/// second soak on.
fn ordered(soak: &SoakDir) -> (Vec<&SoakRecord>, Vec<String>) {
    let mut records: Vec<&SoakRecord> = soak.records.iter().collect();
    records.sort_by(|a, b| server_order(&a.server, &b.server));
    let labels = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = records[..i].iter().filter(|o| o.server == r.server).count();
            if n == 0 {
                r.server.clone()
            } else {
                format!("{} ({})", r.server, n + 1)
            }
        })
        .collect();
    (records, labels)
}

/// Writes the plot if there is a soak with samples, else removes a stale
/// one; returns it when written.
pub fn write_plot(soak: Option<&SoakDir>, dir: &Path) -> Result<Option<Written>> {
    let path = dir.join(SOAK_PLOT);
    let svg = match soak {
        Some(soak) => {
            let (records, labels) = ordered(soak);
            plot::render(&records, &labels).with_context(|| format!("plotting {SOAK_PLOT}"))?
        }
        None => None,
    };
    match svg {
        Some(svg) => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
            Ok(Some(Written {
                file: SOAK_PLOT,
                title: plot::TITLE.to_owned(),
            }))
        }
        None => match fs::remove_file(&path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("removing the stale plot {}", path.display())),
        },
    }
}

/// The section's body: numbers, then method, then caveats; or one line
/// saying there is no soak (`results_name` names the results directory).
pub fn section(source: Option<&Source<'_>>, results_name: &str, plots: &[Written]) -> String {
    let mut out = String::new();
    let Some(source) = source else {
        let _ = writeln!(
            out,
            "Not measured: no soak under `{results_name}/{SOAK_DIR}/` (a directory with \
             `{SOAK_FILE}`); `bash scripts/soak.sh` makes one."
        );
        return out;
    };
    let (records, labels) = ordered(source.soak);
    let data = format!("{}/{SOAK_FILE}", source.link);
    let shown = format!("{}/{SOAK_FILE}", source.shown);
    if records.is_empty() {
        let _ = writeln!(out, "The soak in [`{shown}`]({data}) has no records.");
        return out;
    }
    out.push_str(&explain::failures(&records));
    let readme = format!("{}/{README_FILE}", source.link);
    let cited = if source.soak.readme.is_some() {
        format!(
            "The machine, the commit and the exact command are in [`{readme}`]({readme}), \
             written by the soak script."
        )
    } else {
        format!(
            "The soak directory has no `{README_FILE}`: the machine is not recorded; the \
             commit and the command, under Method, are the records' own."
        )
    };
    let _ = writeln!(
        out,
        "{}: each driven for a long time by one steady mixed load, its memory, threads and \
         file descriptors sampled throughout. Raw data in [`{shown}`]({data}). {cited}\n",
        explain::servers_soaked(&labels)
    );

    out.push_str("### Totals\n\n");
    out.push_str(&tables::totals(&records, &labels));

    out.push_str("\n### Memory, threads and file descriptors\n\n");
    out.push_str(&explain::criterion());
    let figures: Vec<Option<Resources>> = records.iter().map(|r| Resources::of(r)).collect();
    for ((r, label), f) in records.iter().zip(&labels).zip(&figures) {
        let _ = writeln!(out, "\n#### {label}\n");
        match f {
            Some(f) => {
                out.push_str(&tables::resources(f));
                out.push('\n');
                out.push_str(&explain::flatness(label, f));
                out.push('\n');
                out.push_str(&explain::cpu(f));
            }
            None => {
                let _ = writeln!(
                    out,
                    "{} samples: too few to tell an early level from an end one.",
                    r.samples.len()
                );
            }
        }
    }
    if let Some(w) = plots.iter().find(|w| w.file == SOAK_PLOT) {
        let _ = writeln!(out, "\n![{}]({PLOTS_DIR}/{SOAK_PLOT})", w.title);
    }

    out.push_str("\n### Method\n\n");
    out.push_str(&explain::method(&records));
    out.push_str("\n### Caveats\n\n");
    out.push_str(&explain::caveats(&records, &figures));
    out
}

#[cfg(test)]
mod tests;
