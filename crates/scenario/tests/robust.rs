//! Any value in any field of a real scenario gives a plan or one line of error, never a panic.

use std::path::Path;
use syncstorm_scenario::{from_str_with, parse_document};

fn leaf_paths(value: &toml::Value, prefix: &str, out: &mut Vec<String>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        toml::Value::Table(t) => t.iter().for_each(|(k, v)| {
            let key = if k.contains('.') {
                format!("{k:?}")
            } else {
                k.clone()
            };
            leaf_paths(v, &join(&key), out)
        }),
        toml::Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| leaf_paths(v, &join(&i.to_string()), out)),
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn odd_values_anywhere_never_panic() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/quickstart.toml");
    let text = std::fs::read_to_string(file).unwrap();
    let mut paths = Vec::new();
    leaf_paths(&parse_document("q.toml", &text).unwrap(), "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    let odd = [
        "-1",
        "0",
        "1e308",
        "-1e308",
        "nan",
        "inf",
        "9223372036854775807",
        "x",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"0s\"",
        "\"100%\"",
        "\"101%\"",
        "\"-5%\"",
        "\"1e-300\"",
        "0.0000001",
        "\"< 1\"",
        "\"== nan\"",
    ];
    let (mut ok, mut refused) = (0, 0);
    for path in &paths {
        for value in odd {
            let set = format!("{path}={value}");
            match from_str_with("q.toml", &text, std::slice::from_ref(&set), &[]) {
                Ok(plan) => {
                    ok += 1;
                    let _ = (
                        plan.load_duration(),
                        plan.total_devices(),
                        plan.peak_closed_devices(),
                    );
                    assert!(!plan.document_toml().is_empty());
                }
                Err(e) => {
                    refused += 1;
                    let text = e.to_string();
                    assert!(!text.is_empty() && !text.contains('\n'), "{set}: {text}");
                }
            }
        }
    }
    assert!(ok > 0 && refused > ok, "ok {ok}, refused {refused}");
}
