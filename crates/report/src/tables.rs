//! The report's markdown tables: the side-by-side summary (one column per
//! server), then one row per run for each scenario.
//!
//! The summary picks one figure per cell and says in its row label how it
//! was picked (maximum, median of repeats, largest run), so that a reader
//! can find the run behind it in the detailed tables below.

use chat_loadgen::record::ProcessSample;

use crate::compare::{Better, Outcome, outcome, tie_text};
use crate::data::{
    BeforeAfter, Capacity, CapacityFinding, Connections, Data, Fanout, IDLE_CONNECTIONS,
    PEAK_CLIENTS,
};
use crate::format;

/// Shown where a server has no run for a row.
pub const NOT_MEASURED: &str = "not measured";
/// Marks a run whose deliveries were not exactly what was owed.
pub const FLAG: &str = "⚠";

/// A markdown table.
pub(crate) struct Table {
    header: Vec<String>,
    /// Right-align this column (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; `right` marks numeric ones.
    pub(crate) fn new(columns: &[(&str, bool)]) -> Self {
        Self {
            header: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len(), "row width");
        self.rows.push(row);
    }

    pub(crate) fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        let rule: Vec<String> = self
            .right
            .iter()
            .map(|r| {
                if *r {
                    "---:".to_owned()
                } else {
                    "---".to_owned()
                }
            })
            .collect();
        out.push_str(&line(&rule));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// `p50 / p99 / p99.9` in milliseconds, with the flag and the first anomaly
/// of a run that lost, duplicated or reordered deliveries.
fn latency_cell(run: Fanout<'_>, repeats: usize) -> String {
    let l = &run.results.latency_us;
    let mut cell = format!(
        "{} / {} / {}",
        format::ms(l.p50_us),
        format::ms(l.p99_us),
        format::ms(l.p999_us)
    );
    if repeats > 1 {
        cell.push_str(&format!(" (median of {repeats} runs)"));
    }
    push_flag(&mut cell, run);
    cell
}

fn push_flag(cell: &mut String, run: Fanout<'_>) {
    if let Some(first) = run.anomalies().first() {
        cell.push_str(&format!(" {FLAG} {first}"));
    }
}

/// The summary: one row per headline figure, one column per server.
pub fn summary(data: &Data<'_>) -> String {
    let mut columns: Vec<(&str, bool)> = vec![("", false)];
    columns.extend(data.servers.iter().map(|s| (s.as_str(), true)));
    let mut table = Table::new(&columns);
    let mut row = |label: String, cell: &dyn Fn(&str) -> Option<String>| {
        let mut cells = vec![label];
        cells.extend(
            data.servers
                .iter()
                .map(|s| cell(s).unwrap_or_else(|| NOT_MEASURED.to_owned())),
        );
        table.push(cells);
    };

    row(
        "**Peak fan-out throughput**, deliveries/s (max over fan-out runs)".to_owned(),
        &|s| {
            let run = data.peak_run(s)?;
            let mut cell = format::sig(run.results.deliveries_per_s);
            push_flag(&mut cell, run);
            Some(cell)
        },
    );

    let peak_clients = format::count(PEAK_CLIENTS);
    row(
        format!(
            "**Peak deliveries/s at {peak_clients} clients in one room** (max over the fan-out \
             runs with {peak_clients} clients in 1 room that lost nothing; the senders, the rate \
             per sender and the load generator's own CPU at that run)"
        ),
        &|s| {
            let Some(run) = data.peak_run_at(s, PEAK_CLIENTS) else {
                let lossy = data
                    .fanouts_of(s)
                    .filter(|f| f.config().clients == Some(PEAK_CLIENTS))
                    .filter(|f| f.config().rooms == Some(1))
                    .count();
                return (lossy > 0).then(|| {
                    format!(
                        "{NOT_MEASURED} without loss ({FLAG} {} lost deliveries)",
                        if lossy == 1 {
                            "its one run".to_owned()
                        } else {
                            format!("all {lossy} runs")
                        }
                    )
                });
            };
            let mut cell = format!(
                "{} ({}; loadgen {} cores)",
                format::sig(run.results.deliveries_per_s),
                run.config().senders_at_rate(),
                format::sig(run.record.loadgen_process.cpu_utilization)
            );
            push_flag(&mut cell, run);
            Some(cell)
        },
    );
    row(
        format!(
            "**p99 at half the peak rate ({peak_clients} clients)**: p50 / p99, ms, of the other \
             run with {peak_clients} clients in 1 room whose offered deliveries/s (clients × \
             senders × rate) are closest to half the peak above"
        ),
        &|s| {
            let run = data.half_peak_run(s, PEAK_CLIENTS)?;
            let l = &run.results.latency_us;
            let mut cell = format!(
                "{} / {} ({}: {} deliveries/s offered)",
                format::ms(l.p50_us),
                format::ms(l.p99_us),
                run.config().senders_at_rate(),
                run.offered_deliveries_per_s()
                    .map_or_else(|| "?".to_owned(), format::sig)
            );
            push_flag(&mut cell, run);
            Some(cell)
        },
    );

    for config in data.configs() {
        row(
            format!("**Fan-out latency** p50 / p99 / p99.9, ms: {config}"),
            &|s| {
                let (run, n) = data.median_run(s, config)?;
                Some(latency_cell(run, n))
            },
        );
    }

    let first_capacity = data.capacities.first();
    let slo = first_capacity.and_then(|c| c.slo_ms());
    let capacity_label = match first_capacity {
        Some(_) => format!(
            "**Capacity at the SLO**: most clients in one room with p99 ≤ {} ms and no loss \
             (in brackets: the search's senders @ each one's rate)",
            slo.map_or_else(|| "?".to_owned(), format::plain),
        ),
        None => "**Capacity at the SLO**: most clients in one room within the p99 limit".to_owned(),
    };
    row(capacity_label, &|s| {
        let c = data.capacity_of(s)?;
        let mut notes = vec![c.load().senders_at_rate()];
        if c.slo_ms() != slo {
            let own = c.slo_ms().map_or_else(|| "?".to_owned(), format::plain);
            notes.push(format!("p99 ≤ {own} ms"));
        }
        Some(capacity_cell(c, &notes))
    });

    row(
        "**Threads per connection** (connections run with the most connections)".to_owned(),
        &|s| {
            let run = data.largest_connections_run(s)?;
            let per = run.results.threads_per_connection?;
            Some(format!(
                "{} (at {} connections)",
                format::sig(per),
                format::count(run.results.opened)
            ))
        },
    );
    row("**RSS per connection**, KiB (same run)".to_owned(), &|s| {
        let run = data.largest_connections_run(s)?;
        run.results.rss_per_connection_kib.map(format::sig)
    });
    let idle = format::count(IDLE_CONNECTIONS);
    row(
        format!(
            "**RSS per idle connection at {idle} connections**, KiB (the connections run with a \
             target of {idle}, if it opened them all)"
        ),
        &|s| {
            let run = data.connections_at(s, IDLE_CONNECTIONS)?;
            if !run.opened_all() {
                return Some(format!(
                    "{NOT_MEASURED} (opened {} of {})",
                    format::count(run.results.opened),
                    format::count(run.results.target)
                ));
            }
            run.results.rss_per_connection_kib.map(format::sig)
        },
    );
    row(
        "**Server CPU s per 1,000 deliveries** (at the peak-throughput run)".to_owned(),
        &|s| {
            let run = data.peak_run(s)?;
            run.server_process()?
                .cpu_s_per_1000_deliveries
                .map(format::sig)
        },
    );
    let floor_label = match data.write_floor_us() {
        Some((us, n)) => format!(
            "**Server CPU per delivery, × write floor** (same run; floor: {} µs to `write()` one \
             frame, mean of {})",
            format::sig(us),
            format::plural(n as u64, "floor run")
        ),
        None => "**Server CPU per delivery, × write floor** (same run; no floor run)".to_owned(),
    };
    row(floor_label, &|s| {
        data.floor_multiple(data.peak_run(s)?).map(format::sig)
    });
    row(
        "**Server CPU per delivery at a light load**, µs and × write floor: 1,000 clients in \
         1 room, 1 sender @ 100 msg/s (each delivery its own `write()`)"
            .to_owned(),
        &|s| {
            let run = data.light_load_run(s)?;
            let us = run.cpu_us_per_delivery()?;
            Some(match data.floor_multiple(run) {
                Some(multiple) => format!("{} µs ({}×)", format::sig(us), format::sig(multiple)),
                None => format!("{} µs", format::sig(us)),
            })
        },
    );
    row(
        "**Voluntary context switches per delivery**, server (at the peak-throughput run)"
            .to_owned(),
        &|s| {
            data.peak_run(s)?
                .voluntary_switches_per_delivery()
                .map(format::sig)
        },
    );
    row(
        "**Largest connection count held** (of the target; first failure of a run that failed)"
            .to_owned(),
        &|s| {
            let runs = data.connections_of(s);
            let best = runs.iter().max_by_key(|c| c.results.held)?;
            let mut cell = format!(
                "{} of {}",
                format::count(best.results.held),
                format::count(best.results.target)
            );
            let failed = runs
                .iter()
                .filter(|c| c.results.failed > 0 || c.results.held < c.results.target)
                .min_by_key(|c| c.results.target);
            if let Some(f) = failed {
                let text = f.results.first_failure.as_deref().map_or_else(
                    || "no failure text".to_owned(),
                    |t| format::cell_text(t, 120),
                );
                cell.push_str(&format!(
                    "; at target {}: {} failed, first: `{}`",
                    format::count(f.results.target),
                    format::count(f.results.failed),
                    text.replace('`', "'")
                ));
            }
            Some(cell)
        },
    );
    table.render()
}

/// Every fan-out run, one row each, sorted by configuration then server.
pub fn fanout_runs(data: &Data<'_>) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("clients", true),
        ("rooms", true),
        ("senders/room", true),
        ("rate, msg/s", true),
        ("payload, B", true),
        ("sent", true),
        ("delivered", true),
        ("lost", true),
        ("late", true),
        ("dup", true),
        ("out of order", true),
        ("deliveries/s", true),
        ("p50, ms", true),
        ("p99, ms", true),
        ("p99.9, ms", true),
        ("max, ms", true),
        ("server CPU, cores", true),
        ("server threads, peak", true),
        ("server RSS peak, MiB", true),
        ("server CPU s / 1k deliveries", true),
        ("CPU per delivery, × floor", true),
        ("vol. ctx switches / delivery", true),
        ("loadgen CPU, cores", true),
    ]);
    let mut runs = data.fanouts.clone();
    runs.sort_by_key(|f| (f.config(), server_rank(data, f.server())));
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), format::count);
    for run in runs {
        let r = run.results;
        let c = run.config();
        let l = &r.latency_us;
        let process = run.server_process();
        let dash = || "—".to_owned();
        let server = if run.anomalies().is_empty() {
            run.server().to_owned()
        } else {
            format!("{FLAG} **{}**", run.server())
        };
        table.push(vec![
            server,
            opt(c.clients),
            opt(c.rooms),
            opt(c.senders),
            c.rate().map_or_else(|| "?".to_owned(), format::plain),
            opt(c.payload),
            format::count(r.sent),
            format::count(r.delivered),
            format::count(r.lost),
            format::count(r.late),
            format::count(r.duplicated),
            format::count(r.out_of_order),
            format::sig(r.deliveries_per_s),
            format::ms(l.p50_us),
            format::ms(l.p99_us),
            format::ms(l.p999_us),
            format::ms(l.max_us),
            process.map_or_else(dash, |p| format::sig(p.cpu_utilization)),
            process.map_or_else(dash, |p| format::count(p.threads_peak)),
            process.map_or_else(dash, |p| format::mib(p.rss_peak_kib)),
            process
                .and_then(|p| p.cpu_s_per_1000_deliveries)
                .map_or_else(dash, format::sig),
            data.floor_multiple(run).map_or_else(dash, format::sig),
            run.voluntary_switches_per_delivery()
                .map_or_else(dash, format::sig),
            format::sig(run.record.loadgen_process.cpu_utilization),
        ]);
    }
    table.render()
}

/// Every step of every capacity search.
pub fn capacity_steps(data: &Data<'_>) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("SLO p99, ms", true),
        ("senders @ rate", false),
        ("clients", true),
        ("held", false),
        ("p50, ms", true),
        ("p99, ms", true),
        ("lost", true),
        ("deliveries/s", true),
    ]);
    let mut searches = data.capacities.clone();
    searches.sort_by_key(|c| server_rank(data, c.server()));
    for search in searches {
        for step in &search.results.steps {
            let f = &step.fanout;
            table.push(vec![
                search.server().to_owned(),
                search
                    .slo_ms()
                    .map_or_else(|| "?".to_owned(), format::plain),
                search.load().senders_at_rate(),
                format::count(step.clients),
                if step.held { "yes" } else { "**no**" }.to_owned(),
                format::ms(f.latency_us.p50_us),
                format::ms(f.latency_us.p99_us),
                format::count(f.lost),
                format::sig(f.deliveries_per_s),
            ]);
        }
    }
    table.render()
}

/// Every connections run.
pub fn connections_runs(data: &Data<'_>) -> String {
    let mut table = Table::new(&[
        ("server", false),
        ("target", true),
        ("opened", true),
        ("failed", true),
        ("held", true),
        ("handshakes/s", true),
        ("connect p99, ms", true),
        ("threads before → loaded", true),
        ("RSS before → loaded, MiB", true),
        ("threads / connection", true),
        ("RSS / connection, KiB", true),
        ("first failure", false),
    ]);
    let mut runs = data.connections.clone();
    runs.sort_by_key(|c| (server_rank(data, c.server()), c.results.target));
    let dash = || "—".to_owned();
    for run in runs {
        let r = run.results;
        let samples = |get: fn(&ProcessSample) -> String| match (r.server_before, r.server_loaded) {
            (Some(b), Some(l)) => format!("{} → {}", get(&b), get(&l)),
            _ => dash(),
        };
        let server = if r.failed > 0 || r.held < r.target {
            format!("{FLAG} **{}**", run.server())
        } else {
            run.server().to_owned()
        };
        table.push(vec![
            server,
            format::count(r.target),
            format::count(r.opened),
            format::count(r.failed),
            format::count(r.held),
            format::sig(r.handshakes_per_s),
            format::ms(r.connect_us.p99_us),
            samples(|s| format::count(s.threads)),
            samples(|s| format::mib(s.rss_kib)),
            r.threads_per_connection.map_or_else(dash, format::sig),
            r.rss_per_connection_kib.map_or_else(dash, format::sig),
            r.first_failure.as_deref().map_or_else(dash, |t| {
                format!("`{}`", format::cell_text(t, 120).replace('`', "'"))
            }),
        ]);
    }
    table.render()
}

/// Every write-floor run, one row per batch size: the writing thread's CPU
/// per frame and per `write()`.
pub fn floor_runs(data: &Data<'_>) -> String {
    let mut table = Table::new(&[
        ("floor run", false),
        ("connections", true),
        ("frame, B", true),
        ("frames / write", true),
        ("CPU µs / frame", true),
        ("CPU µs / write", true),
        ("frames/s per core", true),
        ("writes", true),
        ("wall, s", true),
        ("writer CPU, s", true),
        ("system share", true),
        ("writer slept", true),
    ]);
    for (i, floor) in data.floors.iter().enumerate() {
        let r = floor.results;
        let name = format!("{} ({})", i + 1, floor.record.started_at);
        for b in &r.batches {
            let ticks = b.cpu_user_s + b.cpu_system_s;
            let cell = if b.writer_sleeps > 0 {
                format!("{FLAG} {}", format::count(b.writer_sleeps))
            } else {
                "0".to_owned()
            };
            table.push(vec![
                name.clone(),
                floor
                    .record
                    .params
                    .connections
                    .map_or_else(|| "?".to_owned(), format::count),
                format::count(r.frame_bytes),
                format::count(b.frames_per_write),
                format::sig(b.cpu_us_per_frame),
                format::sig(b.cpu_us_per_write),
                format::sig(b.frames_per_s_per_core),
                format::count(b.writes),
                format::sig(b.wall_s),
                format::sig(b.cpu_s),
                if ticks > 0.0 {
                    format::percent(b.cpu_system_s / ticks)
                } else {
                    "—".to_owned()
                },
                cell,
            ]);
        }
    }
    table.render()
}

/// A figure before (the variant run) and after (the normal run), and how
/// after compares: `0.0200 → 0.0100 (2.00× better)`. The factor is the
/// better value over the worse one, so above 1 whichever way the figure is
/// better; under the tie threshold, `about the same`.
fn change_cell(
    before: Option<f64>,
    after: Option<Option<f64>>,
    better: Better,
    show: fn(f64) -> String,
) -> String {
    let dash = || "—".to_owned();
    let before_text = before.map_or_else(dash, show);
    let Some(after) = after else {
        // No normal run to compare with: said in the parameters cell.
        return format!("{before_text} → —");
    };
    let after_text = after.map_or_else(dash, show);
    let verdict = match (before, after) {
        (Some(b), Some(a)) if b.is_finite() && a.is_finite() => {
            match outcome(("after", a), ("before", b), better) {
                Outcome::Tie => format!(" (about the same, within {})", tie_text()),
                Outcome::Wins(w, f) => {
                    let word = if w == "after" { "better" } else { "worse" };
                    if f.is_finite() {
                        format!(" ({}× {word})", format::sig(f))
                    } else {
                        format!(" ({word}; one of them is zero)")
                    }
                }
            }
        }
        _ => String::new(),
    };
    format!("{before_text} → {after_text}{verdict}")
}

/// The first three cells of a before-and-after row: the variant (flagged
/// when either run lost, duplicated or reordered deliveries, or failed
/// connections), its note, the server.
fn variant_cells(data: &Data<'_>, pair: BeforeAfter<'_>, flagged: bool) -> Vec<String> {
    let p = &pair.variant.params;
    let name = format!(
        "`{}`",
        p.variant.as_deref().unwrap_or("?").replace('`', "'")
    );
    let mut note = p
        .variant_note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map_or_else(|| "—".to_owned(), |n| format::cell_text(n, 200));
    if !data.commits().contains(&pair.variant.commit.as_str()) {
        let short: String = pair.variant.commit.chars().take(12).collect();
        note.push_str(&format!(
            " (recorded at commit `{}`)",
            format::cell_text(&short, 12).replace('`', "'")
        ));
    }
    vec![
        if flagged {
            format!("{FLAG} **{name}**")
        } else {
            name
        },
        note,
        pair.variant.server.clone(),
    ]
}

/// The parameters cell: the run's parameters in words, then which normal
/// run is after, or that there is none.
fn parameters_cell(words: String, pair: BeforeAfter<'_>, repeats: &str) -> String {
    match (pair.normal, pair.matches) {
        (None, _) => format!("{words}; **no normal run with these parameters**"),
        (Some(_), 0 | 1) => words,
        (Some(_), n) => format!("{words}; after: {repeats} {n} normal runs"),
    }
}

/// Fan-out variant runs beside the normal runs: server CPU per 1,000
/// deliveries, deliveries per second, p99.
pub fn before_after_fanouts(data: &Data<'_>, pairs: &[BeforeAfter<'_>]) -> String {
    let mut table = Table::new(&[
        ("variant", false),
        ("note", false),
        ("server", false),
        ("parameters", false),
        ("server CPU s / 1,000 deliveries", true),
        ("deliveries/s", true),
        ("p99, ms", true),
    ]);
    for &pair in pairs {
        let Some(before) = Fanout::of(pair.variant) else {
            continue;
        };
        let after = pair.normal.and_then(Fanout::of);
        let flagged =
            !before.anomalies().is_empty() || after.is_some_and(|a| !a.anomalies().is_empty());
        let cpu = |f: Fanout<'_>| f.server_process().and_then(|p| p.cpu_s_per_1000_deliveries);
        let p99 = |f: Fanout<'_>| Some(f.results.latency_us.p99_us as f64 / 1000.0);
        let rate = |f: Fanout<'_>| Some(f.results.deliveries_per_s);
        let mut row = variant_cells(data, pair, flagged);
        row.push(parameters_cell(
            before.config().to_string(),
            pair,
            "median of",
        ));
        row.push(change_cell(
            cpu(before),
            after.map(cpu),
            Better::Lower,
            format::sig,
        ));
        row.push(change_cell(
            rate(before),
            after.map(rate),
            Better::Higher,
            format::sig,
        ));
        row.push(change_cell(
            p99(before),
            after.map(p99),
            Better::Lower,
            format::sig,
        ));
        table.push(row);
    }
    table.render()
}

/// Capacity searches of variants beside the normal ones: the clients held
/// at the SLO.
pub fn before_after_capacities(data: &Data<'_>, pairs: &[BeforeAfter<'_>]) -> String {
    let mut table = Table::new(&[
        ("variant", false),
        ("note", false),
        ("server", false),
        ("parameters", false),
        ("clients held at the SLO", true),
    ]);
    for &pair in pairs {
        let Some(before) = Capacity::of(pair.variant) else {
            continue;
        };
        let after = pair.normal.and_then(Capacity::of);
        let p = &pair.variant.params;
        let load = before.load();
        let words = format!(
            "1 room, {}, {} B; p99 ≤ {} ms; steps of {} clients from {}",
            load.senders_at_rate(),
            load.payload.map_or_else(|| "?".to_owned(), format::count),
            before
                .slo_ms()
                .map_or_else(|| "?".to_owned(), format::plain),
            p.step.map_or_else(|| "?".to_owned(), format::count),
            p.start.map_or_else(|| "?".to_owned(), format::count),
        );
        let mut row = variant_cells(data, pair, false);
        row.push(parameters_cell(words, pair, "the last of"));
        row.push(capacity_change(before, after));
        table.push(row);
    }
    table.render()
}

/// Clients held before and after. A search that never failed gives only a
/// lower bound, one where no step held an upper bound: a factor is given
/// only where the bounds fix it (`≥` when one side is a lower bound).
fn capacity_change(before: Capacity<'_>, after: Option<Capacity<'_>>) -> String {
    use CapacityFinding::{AtLeast, Below, Held, NoSteps};
    let short = |c: Capacity<'_>| match c.finding() {
        Held(n) => format::count(n),
        AtLeast(n) => format!("≥ {}", format::count(n)),
        Below(n) => format!("< {}", format::count(n)),
        NoSteps => "no step".to_owned(),
    };
    let Some(after) = after else {
        return format!("{} → —", short(before));
    };
    let factor = |hi: u64, lo: u64| format::sig(hi as f64 / lo as f64);
    let verdict = match (before.finding(), after.finding()) {
        (Held(b), Held(a)) => {
            return change_cell(Some(b as f64), Some(Some(a as f64)), Better::Higher, |n| {
                format::count(n as u64)
            });
        }
        (Held(b), AtLeast(a)) if a > b && b > 0 => format!("≥ {}× better", factor(a, b)),
        (AtLeast(b), Held(a)) if b > a && a > 0 => format!("≥ {}× worse", factor(b, a)),
        _ => "no factor: a search that never failed or never held gives only a bound".to_owned(),
    };
    format!("{} → {} ({verdict})", short(before), short(after))
}

/// Connections runs of variants beside the normal ones: resident memory
/// per idle connection.
pub fn before_after_connections(data: &Data<'_>, pairs: &[BeforeAfter<'_>]) -> String {
    let mut table = Table::new(&[
        ("variant", false),
        ("note", false),
        ("server", false),
        ("parameters", false),
        ("RSS / connection, KiB", true),
    ]);
    for &pair in pairs {
        let Some(before) = Connections::of(pair.variant) else {
            continue;
        };
        let after = pair.normal.and_then(Connections::of);
        let flagged = !before.opened_all() || after.is_some_and(|a| !a.opened_all());
        let rss = |c: Connections<'_>| c.results.rss_per_connection_kib;
        let words = format!("{} idle connections", format::count(before.results.target));
        let mut row = variant_cells(data, pair, flagged);
        row.push(parameters_cell(words, pair, "the last of"));
        row.push(change_cell(
            rss(before),
            after.map(rss),
            Better::Lower,
            format::sig,
        ));
        table.push(row);
    }
    table.render()
}

/// What a capacity search found, with notes in brackets: `1,100 clients (1
/// sender @ 100 msg/s)`, `≥ 4,900 clients (…; every step held)`.
fn capacity_cell(c: Capacity<'_>, notes: &[String]) -> String {
    let mut notes = notes.to_vec();
    let found = match c.finding() {
        CapacityFinding::Held(n) => format!("{} clients", format::count(n)),
        CapacityFinding::AtLeast(n) => {
            notes.push("every step held".to_owned());
            format!("≥ {} clients", format::count(n))
        }
        CapacityFinding::Below(n) => {
            notes.push("no step held".to_owned());
            format!("< {} clients", format::count(n))
        }
        CapacityFinding::NoSteps => "no step run".to_owned(),
    };
    if notes.is_empty() {
        found
    } else {
        format!("{found} ({})", notes.join("; "))
    }
}

/// Where a server's column sits: the order of [`Data::servers`].
fn server_rank(data: &Data<'_>, server: &str) -> usize {
    data.servers
        .iter()
        .position(|s| s == server)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{
        capacity_record, connections_record, fanout_load_record, fanout_record, floor_record,
        variant,
    };
    use chat_loadgen::record::Results;

    fn sample() -> Vec<chat_loadgen::record::Record> {
        let mut lossy = fanout_record("sync", 1000, 1);
        if let Results::Fanout(f) = &mut lossy.results {
            f.lost = 100;
            f.delivered -= 100;
        }
        vec![
            fanout_record("sync", 100, 1),
            fanout_record("async", 100, 1),
            lossy,
            fanout_record("async", 1000, 1),
            capacity_record("sync", &[(100, true), (200, false)]),
            capacity_record("async", &[(100, true), (200, true)]),
            connections_record("sync", 1000, 800, Some("connection reset | by peer")),
            connections_record("async", 1000, 1000, None),
        ]
    }

    #[test]
    fn summary_has_a_column_per_server_and_the_headline_rows() {
        let records = sample();
        let data = Data::new(&records);
        let md = summary(&data);
        assert!(
            md.starts_with("|  | sync | async |\n| --- | ---: | ---: |\n"),
            "{md}"
        );
        // Async, 1,000 clients: 1,000,000 deliveries over 10 s.
        assert!(md.contains("| 100,000 "), "{md}");
        // Latency of async at 100 clients: p50 200 µs, p99 800, p99.9 1600.
        assert!(
            md.contains(
                "| **Fan-out latency** p50 / p99 / p99.9, ms: 100 clients in 1 room, \
                 1 sender/room @ 100 msg/s, 32 B | 0.300 / 1.20 / 2.40 | 0.200 / 0.800 / 1.60 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("⚠ lost 100 of 1,000,000 deliveries (0.0100%)"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 100 clients (1 sender @ 100 msg/s) \
                 | ≥ 200 clients (1 sender @ 100 msg/s; every step held) |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 2.00 (at 800 connections) | 0 (at 1,000 connections) |"),
            "{md}"
        );
        assert!(
            md.contains("800 of 1,000; at target 1,000: 200 failed"),
            "{md}"
        );
        assert!(md.contains("`connection reset \\| by peer`"), "{md}");
    }

    #[test]
    fn missing_servers_and_scenarios_are_not_measured() {
        let records = vec![fanout_record("sync", 10, 1), fanout_record("django", 10, 1)];
        let data = Data::new(&records);
        let md = summary(&data);
        assert!(md.starts_with("|  | sync | django |"), "{md}");
        assert!(
            md.contains("| **Threads per connection** (connections run with the most connections) | not measured | not measured |"),
            "{md}"
        );
    }

    #[test]
    fn detailed_tables_have_one_row_per_run() {
        let records = sample();
        let data = Data::new(&records);
        let fanouts = fanout_runs(&data);
        // Header, rule, four runs.
        assert_eq!(fanouts.lines().count(), 6, "{fanouts}");
        assert!(
            fanouts.contains("| ⚠ **sync** | 1,000 | 1 | 1 | 100 | 32 | 1,000 | 999,900 | 100 |"),
            "{fanouts}"
        );
        let steps = capacity_steps(&data);
        assert_eq!(steps.lines().count(), 6, "{steps}");
        assert!(
            steps.contains("| sync | 50 | 1 sender @ 100 msg/s | 200 | **no** |"),
            "{steps}"
        );
        let conns = connections_runs(&data);
        assert!(
            conns.contains("| ⚠ **sync** | 1,000 | 800 | 200 | 800 |"),
            "{conns}"
        );
        assert!(conns.contains("| 3 → 1,603 |"), "{conns}");
    }

    #[test]
    fn cpu_per_delivery_as_a_multiple_of_the_write_floor() {
        // Floor runs at 4 and 6 µs per write: the floor is their mean, 5 µs
        // per frame at 1 frame per write. The sync server spends 20 µs per
        // delivery (4× the floor), the async one 8 µs (1.6×).
        let records = vec![
            floor_record(4.0),
            fanout_record("sync", 1000, 1),
            fanout_record("async", 1000, 1),
            floor_record(6.0),
        ];
        let data = Data::new(&records);
        assert_eq!(data.servers, ["sync", "async"], "a floor is no server");
        assert_eq!(data.floors.len(), 2);
        let (floor_us, n) = data.write_floor_us().expect("a floor");
        assert!((floor_us - 5.0).abs() < 1e-9, "{floor_us}");
        assert_eq!(n, 2);
        let multiple = |s| data.floor_multiple(data.peak_run(s).expect("a run"));
        assert!((multiple("sync").expect("sync") - 4.0).abs() < 1e-9);
        assert!((multiple("async").expect("async") - 1.6).abs() < 1e-9);

        let md = summary(&data);
        assert!(md.starts_with("|  | sync | async |\n"), "{md}");
        assert!(
            md.contains(
                "| **Server CPU per delivery, × write floor** (same run; floor: 5.00 µs to \
                 `write()` one frame, mean of 2 floor runs) | 4.00 | 1.60 |"
            ),
            "{md}"
        );
        let fanouts = fanout_runs(&data);
        assert!(
            fanouts.contains("| CPU per delivery, × floor |"),
            "{fanouts}"
        );
        // sync: 20 ms per 1,000 deliveries, then 4× the floor.
        assert!(fanouts.contains("| 0.0200 | 4.00 |"), "{fanouts}");
        assert!(fanouts.contains("| 0.00800 | 1.60 |"), "{fanouts}");
        let floors = floor_runs(&data);
        // Header, rule, four batch sizes per floor run.
        assert_eq!(floors.lines().count(), 10, "{floors}");
        assert!(
            floors.contains("| 1 (2025-01-01T00:00:00Z) | 1,000 | 80 | 16 | 0.250 | 4.00 |"),
            "{floors}"
        );
        assert!(floors.contains("| 92.0% | 0 |"), "{floors}");
    }

    #[test]
    fn without_a_floor_the_multiples_are_not_measured() {
        let records = vec![fanout_record("sync", 100, 1)];
        let data = Data::new(&records);
        assert!(data.write_floor_us().is_none());
        let md = summary(&data);
        assert!(
            md.contains(
                "| **Server CPU per delivery, × write floor** (same run; no floor run) | \
                 not measured |"
            ),
            "{md}"
        );
        assert!(fanout_runs(&data).contains("| 0.0200 | — |"));
    }

    #[test]
    fn summary_rows_at_a_thousand_clients_and_ten_thousand_connections() {
        let mut capacity = capacity_record("async", &[(100, true), (200, false)]);
        capacity.params.senders_per_room = Some(4);
        capacity.params.rate_per_s = Some(2.0);
        let records = vec![
            fanout_load_record("sync", 1000, 1, 100.0),
            fanout_load_record("sync", 1000, 1, 2000.0),
            fanout_load_record("sync", 1000, 1, 1000.0),
            fanout_load_record("async", 1000, 1, 100.0),
            // A variant delivering more is no peak of the run's.
            variant(fanout_load_record("async", 1000, 1, 8000.0), "baseline", ""),
            capacity,
            connections_record("sync", 10000, 7671, Some("503")),
            connections_record("async", 10000, 10000, None),
        ];
        let data = Data::new(&records);
        let md = summary(&data);
        assert!(md.starts_with("|  | sync | async |\n"), "{md}");
        let row = |label: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| **{label}**")))
                .unwrap_or_else(|| panic!("no row {label}: {md}"))
                .to_owned()
        };
        assert!(
            row("Peak deliveries/s at 1,000 clients in one room").ends_with(
                "| 2,000,000 (1 sender @ 2,000 msg/s; loadgen 0.600 cores) \
                 | 100,000 (1 sender @ 100 msg/s; loadgen 0.600 cores) |"
            ),
            "{md}"
        );
        // sync: half of 2,000,000 is the run at 1,000 msg/s (p50 1.2 ms,
        // p99 4.8 ms); async has only its peak run.
        assert!(
            row("p99 at half the peak rate (1,000 clients)").ends_with(
                "| 1.20 / 4.80 (1 sender @ 1,000 msg/s: 1,000,000 deliveries/s offered) \
                 | not measured |"
            ),
            "{md}"
        );
        assert!(
            row("RSS per idle connection at 10,000 connections")
                .ends_with("| not measured (opened 7,671 of 10,000) | 12.0 |"),
            "{md}"
        );
        assert!(
            row("Capacity at the SLO")
                .ends_with("| not measured | 100 clients (4 senders @ 2 msg/s) |"),
            "{md}"
        );
    }

    #[test]
    fn a_peak_that_lost_deliveries_is_not_a_peak() {
        let mut lossy = fanout_record("sync", 1000, 1);
        if let Results::Fanout(f) = &mut lossy.results {
            f.late = 10;
        }
        let records = vec![lossy];
        let md = summary(&Data::new(&records));
        assert!(
            md.contains("| not measured without loss (⚠ its one run lost deliveries) |"),
            "{md}"
        );
    }

    #[test]
    fn before_and_after_one_row_per_variant() {
        let mut slow = variant(
            fanout_record("sync", 1000, 1),
            "baseline",
            "built from commit fe44d3d, before the performance work",
        );
        if let Some(p) = &mut slow.server_process {
            p.cpu_s_per_1000_deliveries = Some(0.04);
        }
        if let Results::Fanout(f) = &mut slow.results {
            f.latency_us.p99_us = 9700;
        }
        let mut fat = variant(
            connections_record("sync", 1000, 1000, None),
            "baseline",
            "old | commit",
        );
        let mut lean = variant(connections_record("async", 1000, 1000, None), "lean", "");
        for (r, kib) in [(&mut fat, 80.0), (&mut lean, 6.0)] {
            if let Results::Connections(c) = &mut r.results {
                c.rss_per_connection_kib = Some(kib);
            }
        }
        let records = vec![
            fanout_record("sync", 1000, 1),
            connections_record("sync", 1000, 1000, None),
            connections_record("async", 1000, 1000, None),
            capacity_record("sync", &[(100, true), (200, true), (300, false)]),
            slow,
            variant(
                fanout_record("sync", 500, 1),
                "batch-1",
                "one frame per write",
            ),
            fat,
            lean,
            variant(
                capacity_record("sync", &[(100, true), (200, false)]),
                "baseline",
                "",
            ),
        ];
        let data = Data::new(&records);
        let pairs = data.before_after();
        let fanouts = before_after_fanouts(&data, &pairs);
        // Header, rule, two fan-out variants (the others are skipped).
        assert_eq!(fanouts.lines().count(), 4, "{fanouts}");
        assert!(
            fanouts.contains(
                "| `baseline` | built from commit fe44d3d, before the performance work | sync \
                 | 1,000 clients in 1 room, 1 sender/room @ 100 msg/s, 32 B \
                 | 0.0400 → 0.0200 (2.00× better) \
                 | 100,000 → 100,000 (about the same, within 5%) \
                 | 9.70 → 4.80 (2.02× better) |"
            ),
            "{fanouts}"
        );
        assert!(
            fanouts.contains(
                "| `batch-1` | one frame per write | sync | 500 clients in 1 room, \
                 1 sender/room @ 100 msg/s, 32 B; **no normal run with these parameters** \
                 | 0.0200 → — |"
            ),
            "{fanouts}"
        );
        let conns = before_after_connections(&data, &pairs);
        assert!(
            conns.contains(
                "| `baseline` | old \\| commit | sync | 1,000 idle connections \
                 | 80.0 → 40.0 (2.00× better) |"
            ),
            "{conns}"
        );
        assert!(
            conns.contains(
                "| `lean` | — | async | 1,000 idle connections | 6.00 → 12.0 (2.00× worse) |"
            ),
            "{conns}"
        );
        let caps = before_after_capacities(&data, &pairs);
        assert!(
            caps.contains(
                "| 1 room, 1 sender @ 100 msg/s, 32 B; p99 ≤ 50 ms; steps of 100 clients from \
                 100 | 100 → 200 (2.00× better) |"
            ),
            "{caps}"
        );
        // Nothing of the variants in the main tables.
        assert!(!fanout_runs(&data).contains("| 500 |"));
        assert!(!fanout_runs(&data).contains("9.70"));
        assert_eq!(connections_runs(&data).lines().count(), 4);
    }

    #[test]
    fn capacity_bounds_give_a_factor_only_where_they_fix_one() {
        let search = |steps: &[(u64, bool)]| capacity_record("sync", steps);
        let held_100 = search(&[(100, true), (200, false)]);
        let at_least_300 = search(&[(100, true), (200, true), (300, true)]);
        let below_100 = search(&[(100, false)]);
        let cap = |r| Capacity::of(r).expect("a search");
        assert_eq!(
            capacity_change(cap(&held_100), Some(cap(&at_least_300))),
            "100 → ≥ 300 (≥ 3.00× better)"
        );
        assert_eq!(
            capacity_change(cap(&at_least_300), Some(cap(&held_100))),
            "≥ 300 → 100 (≥ 3.00× worse)"
        );
        assert!(
            capacity_change(cap(&below_100), Some(cap(&held_100)))
                .starts_with("< 100 → 100 (no factor")
        );
        assert_eq!(capacity_change(cap(&held_100), None), "100 → —");
    }
}
