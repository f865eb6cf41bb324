//! A fresh machine has PostgreSQL but not wal2json: the run captures changes with pgoutput,
//! devices still hear their pulses, and the result says which decoder ran. wal2json is hidden
//! from the server with `scripts/postgres-without-wal2json.sh` (a copy of the server without
//! the library), so this holds on machines that have it too.

mod run_support;

use run_support::{finished, only_result, run_into, small_scenario};
use std::path::{Path, PathBuf};

fn postgres_without_wal2json(dir: &Path) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres-without-wal2json.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .output()
        .expect("bash runs");
    if !out.status.success() {
        eprintln!(
            "SKIPPED: cannot lay out PostgreSQL without wal2json here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[test]
fn without_wal2json_the_run_captures_with_pgoutput_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(bindir) = postgres_without_wal2json(&dir.path().join("pg")) else {
        return;
    };
    let scenario = small_scenario(dir.path(), 8, 6);
    let out = dir.path().join("out");
    finished(run_into(&scenario, &out).env("SYNCSTORM_PG_BINDIR", &bindir));
    let r = only_result(&out);
    assert_eq!(r["target"]["kind"], "embedded");
    assert_eq!(
        r["target"]["realtime_decoder"], "pgoutput",
        "{}",
        r["target"]
    );
    assert!(
        r["counters"]["pulses_received"].as_u64().unwrap_or(0) > 0,
        "pulses reached devices through pgoutput: {}",
        r["counters"]
    );
    let html = std::fs::read_to_string(only_html(&out)).unwrap();
    assert!(html.contains("Realtime capture by pgoutput (wal2json not installed)"));
}

#[test]
fn missing_postgres_binaries_are_one_sentence_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    let run = run_into(&scenario, &dir.path().join("out"))
        .env("SYNCSTORM_PG_BINDIR", dir.path())
        .output()
        .expect("syncstorm runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    // After the progress line that names the run, the error is one sentence.
    let error = stderr.trim().lines().last().unwrap_or_default();
    assert!(error.contains("apt-get install postgresql-15"), "{stderr}");
    assert!(error.contains("--database-url"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn only_html(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "html"))
        .expect("an HTML report")
}
