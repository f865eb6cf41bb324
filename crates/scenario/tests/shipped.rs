//! Every shipped scenario loads, says what question it answers, and is what its name promises.

use std::path::{Path, PathBuf};
use syncstorm_scenario::{Load, TargetKind, load, load_with};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn shipped() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_loads_and_states_its_question() {
    let files = shipped();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let plan = load(&file).unwrap_or_else(|e| panic!("{e}"));
        let stem = file.file_stem().unwrap().to_str().unwrap();
        assert_eq!(plan.name, stem, "scenario.name must match the file name");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with(&format!("# {stem} — ")),
            "{stem}: header names the scenario"
        );
        assert!(
            text.contains("# Question:"),
            "{stem}: header states the question"
        );
        assert!(!plan.description.is_empty(), "{stem}: description");
        assert!(!plan.thresholds.is_empty(), "{stem}: thresholds");
        assert_eq!(plan.target.kind, TargetKind::Embedded, "{stem}");
    }
}

#[test]
fn shipped_scenarios_have_the_scale_the_issue_asks_for() {
    let quick = load(&scenarios_dir().join("quickstart.toml")).unwrap();
    assert_eq!(quick.total_devices(), 900);
    assert!(quick.load_duration().as_secs() <= 75, "about a minute");
    assert!(quick.behaviour.bulk_import.is_some() && quick.faults.clock_skew.is_some());
    assert!(!quick.faults.outages.is_empty());
    let models: Vec<bool> = quick
        .phases
        .iter()
        .map(|p| matches!(p.load, Load::Open { .. }))
        .collect();
    assert!(
        models.contains(&true) && models.contains(&false),
        "both load models"
    );

    let storm = load(&scenarios_dir().join("risk1-token-storm.toml")).unwrap();
    let opens: f64 = storm
        .phases
        .iter()
        .filter_map(|p| p.load.expected_arrivals(p.duration))
        .sum();
    assert!((99_000.0..=101_000.0).contains(&opens), "{opens}");
    assert_eq!(storm.total_devices(), 100_000);

    let ws = load(&scenarios_dir().join("risk2-websocket-limit.toml")).unwrap();
    assert_eq!(ws.peak_closed_devices(), 100_000);

    let reconnect = load(&scenarios_dir().join("risk1-reconnect-storm.toml")).unwrap();
    let outage = &reconnect.faults.outages[0];
    assert_eq!((outage.fraction, outage.duration.as_secs()), (1.0, 30));

    let lock = load(&scenarios_dir().join("risk3-row-lock.toml")).unwrap();
    assert_eq!(lock.behaviour.bulk_import.as_ref().unwrap().rows, 5_000);
}

#[test]
fn the_documented_variants_load() {
    let variants: &[(&str, &[&str])] = &[
        (
            "risk2-websocket-limit.toml",
            &["target.plan=free", "device.pulse.mode=periodic"],
        ),
        (
            "risk2-websocket-limit.toml",
            &["population.users=5000", "device.pulse.mode=periodic"],
        ),
        (
            "risk3-row-lock.toml",
            &["device.push.batch_size=25", "device.push.mode=server_lww"],
        ),
        (
            "risk1-reconnect-storm.toml",
            &["device.pulse.mode=websocket", "target.plan=team"],
        ),
        (
            "quickstart.toml",
            &["target.kind=supabase", "target.url=https://abc.supabase.co"],
        ),
    ];
    for (file, sets) in variants {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load_with(&scenarios_dir().join(file), &sets, &[])
            .unwrap_or_else(|e| panic!("{file} {sets:?}: {e}"));
    }
}
