//! Ctrl-C in the middle of the load stops it and still writes the report of what ran.

mod run_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use run_support::{only_result, small_scenario, syncstorm};

#[test]
fn sigint_mid_run_writes_an_interrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 6, 600);
    let out = dir.path().join("out");
    let mut child = syncstorm()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first progress line: the load is running.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.starts_with("[ramp "));
    assert!(started, "the load started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let r = only_result(&out);
    assert_eq!(r["status"]["outcome"], "interrupted");
    assert!(
        r["counters"]["app_opens"].as_u64().unwrap() > 0,
        "what ran is kept"
    );
    assert!(r["duration_s"].as_f64().unwrap() < 600.0);
}
