//! A small parser for the Prometheus text exposition format (what the stack's `/metrics`
//! serves): `name{label="value",…} number [timestamp]`, comments and blank lines skipped.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses every sample line; lines that do not parse are skipped and counted.
pub fn parse(text: &str) -> (Vec<PromSample>, usize) {
    let mut samples = Vec::new();
    let mut bad = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(sample) => samples.push(sample),
            None => bad += 1,
        }
    }
    (samples, bad)
}

fn parse_line(line: &str) -> Option<PromSample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        let close = closing_brace(rest)?;
        labels = parse_labels(&rest[1..close])?;
        rest = &rest[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    (!name.is_empty()).then(|| PromSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Index of the `}` closing the label set, skipping braces inside quoted values.
fn closing_brace(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, _, '"') => quoted = !quoted,
            (false, _, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_labels(body: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let (value, used) = quoted_value(after)?;
        labels.insert(key, value);
        rest = after[used..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Some(labels)
}

/// The unescaped value up to the closing quote and the bytes consumed (including the quote).
fn quoted_value(text: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, i + 1)),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_values_and_skips_comments() {
        let text = "# HELP realtime_connections open sockets\n# TYPE realtime_connections gauge\n\
                    realtime_connections 1234\n\
                    pool_waiting{pool=\"rest\",kind=\"a,b}\"} 7 1700000000\n\
                    up{} +Inf\n\nbroken line here\n";
        let (samples, bad) = parse(text);
        assert_eq!(bad, 1);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "realtime_connections");
        assert_eq!(samples[0].value, 1234.0);
        assert_eq!(samples[1].labels["pool"], "rest");
        assert_eq!(samples[1].labels["kind"], "a,b}");
        assert_eq!(samples[1].value, 7.0);
        assert!(samples[2].value.is_infinite());
    }

    #[test]
    fn escaped_quotes_stay_inside_the_value() {
        let (samples, bad) = parse(r#"m{path="say \"hi\"\n"} 1.5e3"#);
        assert_eq!(bad, 0);
        assert_eq!(samples[0].labels["path"], "say \"hi\"\n");
        assert_eq!(samples[0].value, 1500.0);
    }
}
