//! The report's words: two templates (`templates/report.md.j2` and
//! `templates/runs.md.j2`, compiled into the binary) rendered with
//! minijinja from the figures the other modules compute.
//!
//! Rust decides figures and verdict flags; every sentence lives in a
//! template, and the filters here only spell numbers (one place decides how
//! a count, a latency or a ratio is written: [`crate::format`]).

use anyhow::{Context, Result};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::format;

/// The report's template.
pub const REPORT: &str = "report.md.j2";
/// The per-run tables' template.
pub const RUNS: &str = "runs.md.j2";

/// The environment with both templates and the number filters.
pub fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .context("the template syntax")?,
    );
    // A misspelt figure is an error, not an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(REPORT, include_str!("../templates/report.md.j2"))
        .context("parsing the report template")?;
    env.add_template(RUNS, include_str!("../templates/runs.md.j2"))
        .context("parsing the runs template")?;
    env.add_filter("count", |v: f64| format::count(v.round().max(0.0) as u64));
    env.add_filter("sig", format::sig);
    env.add_filter("pct", |v: f64| format::percent(v));
    env.add_filter("plain", format::plain);
    // At most 120 characters unless told: `x|cell(300)`.
    env.add_filter("cell", |s: String, max: Option<usize>| {
        format::cell_text(&s, max.unwrap_or(120))
    });
    Ok(env)
}

/// Renders `template` with `context`.
pub fn render(template: &str, context: &impl Serialize) -> Result<String> {
    let env = environment()?;
    let text = env
        .get_template(template)
        .context("a template")?
        .render(Value::from(Serde(context)))
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("rendering {template}"))?;
    Ok(text)
}
