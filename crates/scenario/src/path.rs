//! Dotted paths into the TOML document: `--set PATH=VALUE`, `--threshold EXPR`, and finding the
//! value an error message should show.
//!
//! A path is keys separated by dots; array elements are addressed by index
//! (`phases.0.duration`); a key holding dots is quoted (`thresholds."token_check.p99"`).

use crate::ScenarioError;
use crate::error::printable;
use crate::threshold::Threshold;

/// Applies one `--set PATH=VALUE`. VALUE is read as TOML (`500`, `0.25`, `true`, `[1, 2]`,
/// `"x"`), falling back to a plain string (`10s`, `supabase`). Missing tables are created;
/// array indices must exist.
pub fn apply_override(doc: &mut toml::Value, expr: &str) -> Result<(), ScenarioError> {
    let fail = |message: String| ScenarioError::Override {
        expr: printable(expr).into_owned(),
        message: printable(&message).into_owned(),
    };
    let (path_text, value_text) = expr
        .split_once('=')
        .ok_or_else(|| fail("expected PATH=VALUE, e.g. population.users=500".into()))?;
    let path = split_path(path_text.trim()).map_err(fail)?;
    set_path(doc, &path, parse_value(value_text.trim())).map_err(fail)
}

/// Adds one `--threshold EXPR` (e.g. `token_check.p99 < 500ms`) to the document's
/// `[thresholds]`, replacing a rule on the same metric.
pub fn add_threshold(doc: &mut toml::Value, expr: &str) -> Result<(), ScenarioError> {
    let threshold = Threshold::parse_expression(expr)
        .map_err(|message| ScenarioError::Threshold { message })?;
    let condition = threshold
        .expression
        .strip_prefix(&threshold.metric.to_string())
        .unwrap_or(&threshold.expression)
        .trim()
        .to_string();
    let path = vec!["thresholds".to_string(), threshold.metric.to_string()];
    set_path(doc, &path, toml::Value::String(condition)).map_err(|message| {
        ScenarioError::Threshold {
            message: printable(&message).into_owned(),
        }
    })
}

/// Splits `a.b."c.d".0` into `["a", "b", "c.d", "0"]`.
pub fn split_path(text: &str) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let (segment, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| format!("the path {text:?} has an unclosed quote"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if segment.is_empty() {
            return Err(format!(
                "the path {text:?} has an empty part; write keys separated by dots, e.g. population.users"
            ));
        }
        segments.push(segment.to_string());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(segments),
            None => return Err(format!("the path {text:?} needs a dot after a quoted key")),
        }
    }
}

fn parse_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

fn set_path(doc: &mut toml::Value, path: &[String], value: toml::Value) -> Result<(), String> {
    let mut node = doc;
    for (depth, key) in path.iter().enumerate() {
        let here = path[..depth].join(".");
        let last = depth + 1 == path.len();
        node = match node {
            toml::Value::Table(table) if last => {
                table.insert(key.clone(), value);
                return Ok(());
            }
            toml::Value::Table(table) => table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
            toml::Value::Array(items) => {
                let len = items.len();
                let slot = key
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get_mut(i))
                    .ok_or_else(|| index_error(&here, key, len))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            other => {
                return Err(format!(
                    "{here} is {}, not a table, so it has no field {key:?}",
                    type_name(other)
                ));
            }
        };
    }
    Err("the path is empty".to_string())
}

fn index_error(array: &str, key: &str, len: usize) -> String {
    match (key.parse::<usize>(), len) {
        (Err(_), _) => format!("{array} is an array; address an entry by index, e.g. {array}.0"),
        (Ok(_), 0) => format!("{array} is empty, so index {key} does not exist"),
        (Ok(_), n) => format!(
            "{array} has {n} entries (0 to {}), so index {key} does not exist",
            n - 1
        ),
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "a number",
        toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The value at `path`, if any.
pub(crate) fn lookup<'a>(doc: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter().try_fold(doc, |node, key| match node {
        toml::Value::Table(t) => t.get(key),
        toml::Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A value as it would be written in the file (`"embeded"`, `-3`, `{ x = 1 }`).
pub(crate) fn render_value(v: &toml::Value) -> String {
    match v {
        // TOML would write a string with a line break as a multi-line literal.
        toml::Value::String(s) if s.contains(char::is_control) => format!("{s:?}"),
        _ => printable(&v.to_string()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_with_a_line_break_renders_on_one_line() {
        // Found by the fuzzer: a `--set` duration holding a line break rendered over lines.
        let value = toml::Value::String("a\nb".into());
        assert_eq!(render_value(&value), "\"a\\nb\"");
    }

    #[test]
    fn a_set_with_a_line_break_is_refused_in_one_line() {
        // Found by the fuzzer (`syncstorm-fuzz set-threshold`): the expression was echoed raw.
        let mut doc = toml::Value::Table(toml::Table::new());
        let err = apply_override(&mut doc, "phases.\n0%")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--set phases.\\n0%: expected PATH=VALUE, e.g. population.users=500"
        );
    }
}
