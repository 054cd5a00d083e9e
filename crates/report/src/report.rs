//! Puts the report together: reads a run (and the newest soak), computes
//! every section's figures, renders the two templates and draws the plots.
//!
//! Deterministic: the same files give byte-identical output.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use chat_record::machine::Machine;
use chat_record::servers::ServerSetup;
use chat_record::verdict::Verdict;
use chat_record::{Record, Results};

use crate::cores::{self, Cores};
use crate::data::{Data, Fan};
use crate::headline::{self, Capacity, Headline};
use crate::history::{self, History};
use crate::layers::{self, Layers};
use crate::load::{self, RunDir};
use crate::memory::{self, Memory};
use crate::plots::{self, CAPACITY_PLOT, HEADLINE_PLOT, PLOTS_DIR, RSS_PLOT};
use crate::render::{self, REPORT, RUNS};
use crate::soak::{self, Soak};
use crate::variants::{self, Pair};
use crate::{connections, fanout, floor};

/// The report's file name.
pub const REPORT_FILE: &str = "REPORT.md";
/// The per-run tables' file name, in the run directory.
pub const RUNS_MD: &str = "RUNS.md";

/// Where the report goes and what it reads.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The run directory.
    pub run: PathBuf,
    /// The soak directory, if any.
    pub soak: Option<PathBuf>,
    /// The directory the report and its plots are written to.
    pub out: PathBuf,
    /// The command that regenerates this report.
    pub command: String,
}

/// What was written.
#[derive(Debug)]
pub struct Written {
    /// The report.
    pub report: PathBuf,
    /// The per-run tables.
    pub runs: PathBuf,
    /// The plots.
    pub plots: Vec<PathBuf>,
}

/// The report's figures: everything the template reads.
#[derive(Debug, Serialize)]
struct Figures<'a> {
    run: RunInfo,
    machine: Option<&'a Machine>,
    servers: &'a [String],
    /// Every server of `servers.json` in the report's order, if recorded.
    setups: Option<Vec<&'a ServerSetup>>,
    /// Those `servers.json` lists that were not measured: their admission
    /// check failed, or they could not be started.
    unmeasured: Vec<&'a ServerSetup>,
    floor_us: Option<f64>,
    kept_up_share: f64,
    verdicts: Vec<(Verdict, usize)>,
    headline: Headline,
    fanout: Vec<fanout::Row>,
    capacity: Vec<(String, Capacity)>,
    connections: Vec<connections::Row>,
    memory: Vec<Memory>,
    cores: Option<Cores>,
    history: Option<History>,
    layers: Option<Layers>,
    soak: Option<SoakInfo>,
    floor: Vec<floor::Batch>,
    profiles: Vec<floor::Profile>,
    pairs: Vec<Pair>,
    plots: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize)]
struct RunInfo {
    name: String,
    /// The run directory, relative to the report.
    link: String,
    records: usize,
    command: String,
}

#[derive(Debug, Serialize)]
struct SoakInfo {
    link: String,
    soaks: Vec<Soak>,
}

/// One record as RUNS.md lists it.
#[derive(Debug, Serialize)]
struct Listed {
    scenario: String,
    server: String,
    variant: Option<String>,
    flags: Option<String>,
    fan: Option<Fan>,
    steps: Vec<Fan>,
    connections: Option<connections::Cell>,
    warnings: Vec<String>,
}

/// Writes the report, RUNS.md and the plots.
pub fn generate(paths: &Paths) -> Result<Written> {
    let run = load::read_run(&paths.run)?;
    let soaks = match &paths.soak {
        Some(dir) => Some((dir.clone(), load::read_soak(dir)?.records)),
        None => None,
    };
    let data = Data::with_setups(&run.records, run.servers.as_ref());
    let capacity: Vec<(String, Capacity)> = data
        .servers
        .iter()
        .filter_map(|s| Some((s.clone(), headline::capacity(&data, s)?)))
        .collect();
    let plot_dir = paths.out.join(PLOTS_DIR);
    let written = plots::write_all(
        &plot_dir,
        vec![
            (HEADLINE_PLOT, plots::headline_chart(&data)),
            (CAPACITY_PLOT, plots::capacity_chart(&data, &capacity)),
            (RSS_PLOT, plots::rss_chart(&data)),
        ],
    )?;
    let mut verdicts = BTreeMap::new();
    for r in &run.records {
        if let Some(j) = chat_record::verdict::judge_record(r) {
            *verdicts.entry(j.verdict).or_insert(0) += 1;
        }
    }
    // Kept up first, then the others, worst last.
    let verdicts: Vec<(Verdict, usize)> = verdicts.into_iter().rev().collect();
    let setups: Option<Vec<&ServerSetup>> = run
        .servers
        .as_ref()
        .map(|_| data.listed.iter().filter_map(|s| data.setup(s)).collect());
    let unmeasured = setups
        .iter()
        .flatten()
        .copied()
        .filter(|s| !s.admission.passed())
        .collect();
    let context = Figures {
        run: RunInfo {
            name: run.name.clone(),
            link: relative(&paths.out, &run.dir),
            records: run.records.len(),
            command: paths.command.clone(),
        },
        machine: run.machine.as_ref(),
        servers: &data.servers,
        setups,
        unmeasured,
        floor_us: data.floor_us,
        kept_up_share: chat_record::verdict::KEPT_UP_SHARE,
        verdicts,
        headline: headline::headline(&data),
        fanout: fanout::rows(&data),
        capacity,
        connections: connections::rows(&data),
        memory: run
            .memory
            .as_deref()
            .map(memory::memory)
            .unwrap_or_default(),
        cores: cores::cores(&data),
        history: history::history(&data),
        layers: layers::layers(&data),
        soak: soaks.as_ref().map(|(dir, records)| SoakInfo {
            link: relative(&paths.out, dir),
            soaks: soak::soaks(records),
        }),
        floor: floor::batches(&data),
        profiles: run
            .profile
            .as_deref()
            .map(floor::profiles)
            .unwrap_or_default(),
        pairs: variants::pairs(&data),
        plots: written
            .iter()
            .map(|f| (*f, format!("{PLOTS_DIR}/{f}")))
            .collect(),
    };
    let report = paths.out.join(REPORT_FILE);
    write(&report, &render::render(REPORT, &context)?)?;
    let runs = run.dir.join(RUNS_MD);
    let report_link = relative(&run.dir, &report);
    let runs_figures = runs_context(&run, &data, &report_link);
    write(&runs, &render::render(RUNS, &runs_figures)?)?;
    Ok(Written {
        report,
        runs,
        plots: written.iter().map(|f| plot_dir.join(f)).collect(),
    })
}

fn runs_context(run: &RunDir, data: &Data<'_>, report: &str) -> serde_json::Value {
    let listed: Vec<Listed> = run.records.iter().map(|r| listed(data, r)).collect();
    serde_json::json!({
        "name": run.name,
        "report": report,
        "servers": data.servers,
        "records": listed,
    })
}

fn listed(data: &Data<'_>, r: &Record) -> Listed {
    let steps = Fan::steps(r, data.floor_us)
        .into_iter()
        .map(|(_, _, fan)| fan)
        .collect();
    let connections = match &r.results {
        Results::Connections(c) => Some(connections::Cell::of(c)),
        _ => None,
    };
    Listed {
        scenario: r.scenario.clone(),
        server: r.server.clone(),
        variant: r.params.variant.clone(),
        flags: r.params.server_flags.clone(),
        fan: Fan::of(r, data.floor_us),
        steps,
        connections,
        warnings: r.warnings.clone(),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `to` as a link from a file in `from`: relative when `to` is inside
/// `from` (`.` for `from` itself) or inside its parent (`../…`), else `to`
/// as given.
fn relative(from: &Path, to: &Path) -> String {
    match to.strip_prefix(from) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
        Ok(rest) => rest.display().to_string(),
        Err(_) => match from.parent().and_then(|up| to.strip_prefix(up).ok()) {
            Some(rest) => format!("../{}", rest.display()),
            None => to.display().to_string(),
        },
    }
}
