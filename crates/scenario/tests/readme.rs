//! `scenarios/README.md` documents every field the parser accepts, every plan preset and
//! overridable plan figure, and every metric name a threshold may use.

use std::path::Path;
use syncstorm_scenario::{COUNTERS, OPERATIONS, from_str_with};

const BASE: &str = r#"
[scenario]
name = "t"
[population]
users = 10
[[phases]]
duration = "10s"
devices = 10
"#;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/README.md"))
        .unwrap()
}

/// The field names the parser allows at `table`, read from its own unknown-field error.
fn allowed_fields(set_unknown: &str) -> Vec<String> {
    let err = from_str_with("t.toml", BASE, &[set_unknown.to_string()], &[])
        .unwrap_err()
        .to_string();
    let list = err
        .split("allowed here: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    let list = list.split(" (did you mean").next().unwrap();
    list.split(", ").map(str::to_string).collect()
}

fn documented(readme: &str, name: &str) -> bool {
    [
        format!("`{name}"),
        format!(".{name}`"),
        format!("`[{name}]`"),
        format!("`[[{name}]]`"),
    ]
    .iter()
    .any(|form| readme.contains(form.as_str()))
}

#[test]
fn every_field_is_documented() {
    let readme = readme();
    let probes = [
        "zzz=1",
        "scenario.zzz=1",
        "target.zzz=1",
        "population.zzz=1",
        "phases.0.zzz=1",
        "behaviour.zzz=1",
        "behaviour.bulk_import={ fraction = 0.1, rows = 1, zzz = 1 }",
        "faults.zzz=1",
        "faults.outages=[{ start = \"1s\", duration = \"1s\", zzz = 1 }]",
        "faults.clock_skew={ fraction = 0.1, max = \"1s\", zzz = 1 }",
        "run.zzz=1",
        "device.zzz=1",
        "device.usap.zzz=1",
        "device.push.zzz=1",
        "device.sync.zzz=1",
        "device.pull.zzz=1",
        "device.pulse.zzz=1",
    ];
    let mut missing = Vec::new();
    for probe in probes {
        for field in allowed_fields(probe) {
            if !documented(&readme, &field) {
                missing.push(format!("{probe}: {field}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented fields: {missing:?}");
}

#[test]
fn every_plan_preset_figure_and_metric_is_documented() {
    let readme = readme();
    let names = syncstorm_plans::names();
    let all = names
        .iter()
        .chain(syncstorm_plans::OVERRIDABLE)
        .chain(OPERATIONS)
        .chain(COUNTERS);
    let missing: Vec<_> = all
        .filter(|n| !readme.contains(&format!("`{n}`")))
        .collect();
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}
