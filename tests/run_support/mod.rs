//! Shared by the `run_*` tests: a small scenario file and the built `syncstorm` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The binary under test (cargo builds it for integration tests).
pub fn syncstorm() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_syncstorm"))
}

/// A small scenario: `users` users with two devices each, a closed ramp then an open burst,
/// an outage and clock skew, against the embedded stack. Returns its path.
pub fn small_scenario(dir: &Path, users: u64, load_s: u64) -> PathBuf {
    let half = (load_s / 2).max(1);
    let text = format!(
        r#"[scenario]
name = "small"
description = "a few devices for a few seconds"

[target]
kind = "embedded"
plan = "pro"

[population]
users = {users}
devices_per_user = 2
rows.wallets = 1
rows.channels = 2
rows.categories_user = 3
rows.transactions = 15
rows.plans = 1

[[phases]]
name = "ramp"
duration = "{half}s"
devices = {users}
ramp = "1s"

[[phases]]
name = "opens"
duration = "{half}s"
arrival_rate = 5

[behaviour]
edits_per_hour = 900
session_length = "2s"
background_pause = "1s"

[faults]
outages = [{{ start = "{half}s", duration = "1s", fraction = 0.5 }}]
clock_skew = {{ fraction = 0.2, max = "2s" }}

[thresholds]
"sync.p99" = "< 10s"

[run]
seed = 3
workers = 2
quiesce = "20s"
"#
    );
    let path = dir.join("small.toml");
    std::fs::write(&path, text).expect("scenario written");
    path
}

/// `syncstorm run SCENARIO --out OUT`, ready for more flags or environment.
pub fn run_into(scenario: &Path, out: &Path) -> std::process::Command {
    let mut cmd = syncstorm();
    cmd.arg("run").arg(scenario).arg("--out").arg(out);
    cmd
}

/// Runs `cmd` and checks it finished (exit 0, or 3 for breached thresholds); its stderr.
pub fn finished(cmd: &mut std::process::Command) -> String {
    let run = cmd.output().expect("syncstorm runs");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    let code = run.status.code();
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{stderr}");
    stderr
}

/// The one `.json` result in `dir`.
pub fn only_result(dir: &Path) -> serde_json::Value {
    let jsons: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("out dir exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(jsons.len(), 1, "one result in {}: {jsons:?}", dir.display());
    let html = jsons[0].with_extension("html");
    assert!(html.exists(), "the HTML report sits beside the JSON");
    serde_json::from_str(&std::fs::read_to_string(&jsons[0]).unwrap()).expect("result is JSON")
}
