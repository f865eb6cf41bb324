//! The scenario format: a TOML file → a validated [`RunPlan`], with one-sentence errors.
//!
//! Pipeline: read the file → parse TOML (syntax errors with line and column) → apply
//! `--set PATH=VALUE` overrides and `--threshold EXPR`s to the document → deserialise into the
//! raw [`Scenario`] (unknown fields refused, paths tracked) → check cross-field rules → `RunPlan`.
//! The reference of every field, with defaults, is `scenarios/README.md`.
//!
//! ```no_run
//! let plan = syncstorm_scenario::load_with(
//!     "scenarios/quickstart.toml".as_ref(),
//!     &["population.users=500".into()],
//!     &["token_check.p99 < 400ms".into()],
//! )?;
//! # Ok::<(), syncstorm_scenario::ScenarioError>(())
//! ```

mod compact;
mod dist;
mod duration;
mod error;
mod outline;
mod path;
mod plan;
mod raw;
mod threshold;
mod validate;

pub use dist::RowDist;
pub use duration::{HumanDuration, format_duration, parse_duration};
pub use error::{ScenarioError, did_you_mean};
pub use path::{add_threshold, apply_override, split_path};
pub use plan::{
    Arrivals, BackgroundSocket, Behaviour, BulkImport, ClockSkew, Faults, Load, Outage, Phase,
    Population, RunPlan, RunSettings, TABLES, Target, TargetKind, Workers,
};
pub use raw::Scenario;
pub use threshold::{COUNTERS, Metric, MetricKind, OPERATIONS, Op, Threshold};

use std::path::Path;

/// Loads and validates a scenario file as written.
pub fn load(path: &Path) -> Result<RunPlan, ScenarioError> {
    load_with(path, &[], &[])
}

/// Loads a scenario file, applies `--set` overrides (in order) and `--threshold` expressions,
/// then validates.
pub fn load_with(
    path: &Path,
    overrides: &[String],
    thresholds: &[String],
) -> Result<RunPlan, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        file: file.clone(),
        source,
    })?;
    from_str_with(&file, &text, overrides, thresholds)
}

/// As [`load_with`], from text; `file` names the source in error messages.
pub fn from_str_with(
    file: &str,
    text: &str,
    overrides: &[String],
    thresholds: &[String],
) -> Result<RunPlan, ScenarioError> {
    let mut doc = parse_document(file, text)?;
    for expr in overrides {
        apply_override(&mut doc, expr)?;
    }
    for expr in thresholds {
        add_threshold(&mut doc, expr)?;
    }
    from_document(file, doc)
}

/// Parses TOML text into a document that `--set` can edit.
pub fn parse_document(file: &str, text: &str) -> Result<toml::Value, ScenarioError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ScenarioError::Syntax {
                file: file.to_string(),
                line,
                column,
                message: e.message().trim_end_matches(['\n', '.']).to_string(),
            }
        })
}

/// Deserialises and validates a (possibly edited) document.
pub fn from_document(file: &str, mut doc: toml::Value) -> Result<RunPlan, ScenarioError> {
    compact::expand_phases(&mut doc).map_err(|message| ScenarioError::Field {
        file: file.to_string(),
        path: "phases".to_string(),
        message: error::printable(&message).into_owned(),
    })?;
    let raw: Scenario = serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let path: Vec<String> = e.path().iter().filter_map(segment_text).collect();
        let (path, message) = error::describe_serde_error(&path, e.inner().message(), &doc);
        ScenarioError::Field {
            file: file.to_string(),
            path,
            message: error::printable(&message).into_owned(),
        }
    })?;
    validate::validate(file, raw, doc)
}

fn segment_text(segment: &serde_path_to_error::Segment) -> Option<String> {
    use serde_path_to_error::Segment;
    match segment {
        Segment::Seq { index } => Some(index.to_string()),
        Segment::Map { key } => Some(key.clone()),
        Segment::Enum { variant } => Some(variant.clone()),
        Segment::Unknown => None,
    }
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
