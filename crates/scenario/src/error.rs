//! One error type, and the translation of serde's messages into one sentence that names the
//! field path, the value and what is allowed.

use crate::path::{lookup, render_value};

/// Everything that can be wrong with a scenario, its `--set` overrides or `--threshold`s.
/// Each renders as one sentence; the CLI prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario file {file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: this is not valid TOML: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A field is missing, unknown or invalid; `message` starts with the field's path.
    #[error("{file}: {message}")]
    Field {
        file: String,
        path: String,
        message: String,
    },
    /// A `--set PATH=VALUE` that cannot be applied.
    #[error("--set {expr}: {message}")]
    Override { expr: String, message: String },
    /// A `--threshold EXPR` that does not parse.
    #[error("--threshold {message}")]
    Threshold { message: String },
}

impl ScenarioError {
    /// The dotted path of the offending field, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ScenarioError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// `text` as an error message may echo it: control characters escaped (`\n` for a line
/// break), so a hostile name or value cannot split the one-sentence message.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `" (did you mean \"users\"?)"` when a candidate is close to `word`, else `""`.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

/// Turns a deserialisation error at `path` into (path, sentence). `doc` is the document that
/// was deserialised, used to show the offending value.
pub(crate) fn describe_serde_error(
    path: &[String],
    raw: &str,
    doc: &toml::Value,
) -> (String, String) {
    let joined = path.join(".");
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (name, expected) = split_name(rest);
        let full = if path.last().is_some_and(|last| last == name) {
            joined
        } else {
            join(&joined, name)
        };
        let allowed = backticked(expected);
        let hint = did_you_mean(name, allowed.iter().map(String::as_str));
        let list = if allowed.is_empty() {
            "none".to_string()
        } else {
            allowed.join(", ")
        };
        let message = format!("{full} is not a known field; allowed here: {list}{hint}");
        return (full, message);
    }
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let (name, _) = split_name(rest);
        let full = join(&joined, name);
        return (full.clone(), format!("{full} is missing; it is required"));
    }
    let value = lookup(doc, path)
        .map(render_value)
        .unwrap_or_else(|| "(missing)".into());
    let shown = format!("{joined} = {value}");
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (name, expected) = split_name(rest);
        let allowed = backticked(expected);
        let hint = did_you_mean(name, allowed.iter().map(String::as_str));
        let message = format!(
            "{shown} is not allowed; expected one of: {}{hint}",
            allowed.join(", ")
        );
        return (joined, message);
    }
    if raw.starts_with("is ") {
        return (joined, format!("{shown} {raw}"));
    }
    let from_serde = raw.starts_with("invalid type: ") || raw.starts_with("invalid value: ");
    match raw.rsplit_once(", expected ") {
        Some((_, e)) if from_serde => {
            let expected = plain_expectation(e);
            (joined, format!("{shown} is not valid; expected {expected}"))
        }
        _ => (
            joined,
            format!("{shown} is not valid: {}", raw.trim_end_matches('.')),
        ),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Splits "`name`, expected ..." after the opening backtick into (name, rest).
fn split_name(rest: &str) -> (&str, &str) {
    rest.split_once('`').unwrap_or((rest, ""))
}

/// The names serde lists as "expected one of `a`, `b`".
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Serde's type names in the words of a scenario author.
fn plain_expectation(e: &str) -> String {
    match e.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a sequence" => "an array".into(),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        e if e.starts_with("a string") => "a string".into(),
        other => other.to_string(),
    }
}
