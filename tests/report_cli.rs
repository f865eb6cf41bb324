//! `syncstorm report`, `compare` and `merge` as a user runs them, with their exit codes.

mod report_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use report_support::{Shape, synthetic, synthetic_shards};
use syncstorm::result::RunResult;

const SHAPE: Shape = Shape {
    storm: true,
    seconds: 60,
};

fn syncstorm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syncstorm"))
        .args(args)
        .output()
        .expect("the syncstorm binary runs")
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn written(dir: &Path, name: &str, r: &RunResult) -> PathBuf {
    let path = dir.join(name);
    r.write_to(&path).unwrap();
    path
}

#[test]
fn report_rerenders_beside_the_result_and_writes_junit() {
    let dir = tempfile::tempdir().unwrap();
    let json = written(
        dir.path(),
        "run.json",
        &synthetic("risk1-token-storm", SHAPE),
    );
    let out = syncstorm(&["report", text(&json)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert!(html.contains("Risk 1: Token-fetch storm"));

    let (custom, junit) = (
        dir.path().join("x/report.html"),
        dir.path().join("junit.xml"),
    );
    let out = syncstorm(&[
        "report",
        text(&json),
        "--out",
        text(&custom),
        "--junit",
        text(&junit),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(custom.exists());
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuites")
    );
}

#[test]
fn compare_writes_one_page_for_two_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = written(dir.path(), "batch1.json", &synthetic("batch-1", SHAPE));
    let b = written(
        dir.path(),
        "batch25.json",
        &synthetic(
            "batch-25",
            Shape {
                storm: false,
                ..SHAPE
            },
        ),
    );
    let out = syncstorm(&["compare", text(&a), text(&b)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.path().join("batch1-vs-batch25.html")).unwrap();
    assert!(html.contains("A = batch1") && html.contains("B = batch25"));
}

#[test]
fn merge_joins_shards_into_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let shards: Vec<PathBuf> = synthetic_shards("storm", SHAPE, 2)
        .iter()
        .enumerate()
        .map(|(i, s)| written(dir.path(), &format!("shard{i}.json"), s))
        .collect();
    let merged = dir.path().join("merged.json");
    let out = syncstorm(&[
        "merge",
        text(&shards[0]),
        text(&shards[1]),
        "--out",
        text(&merged),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (merged, whole) = (RunResult::load(&merged).unwrap(), synthetic("storm", SHAPE));
    assert_eq!(merged.merged_shards, 2);
    for (name, op) in &whole.operations {
        let m = &merged.operations[name];
        assert_eq!(
            (m.count, m.errors, m.p99_ms, m.max_ms),
            (op.count, op.errors, op.p99_ms, op.max_ms),
            "{name}"
        );
    }
    assert!(dir.path().join("merged.html").exists());
}

#[test]
fn bad_input_exits_2_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json at all").unwrap();
    let future = dir.path().join("future.json");
    std::fs::write(&future, r#"{"schema_version": 2}"#).unwrap();
    let good = written(dir.path(), "good.json", &synthetic("a", SHAPE));
    let other = written(dir.path(), "other.json", &synthetic("b", SHAPE));
    let missing = dir.path().join("missing.json");
    let out_file = dir.path().join("m.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["report", text(&garbage)], "is not JSON"),
        (vec!["report", text(&missing)], "cannot read"),
        (vec!["report", text(&future)], "has result schema version 2"),
        (vec!["compare", text(&good), text(&garbage)], "is not JSON"),
        (
            vec!["merge", text(&good), text(&other), "--out", text(&out_file)],
            "different scenarios (a, b)",
        ),
    ];
    for (args, expected) in cases {
        let out = syncstorm(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("syncstorm: ") && err.contains(expected),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!out_file.exists(), "a refused merge writes nothing");
    assert_eq!(
        syncstorm(&["merge"]).status.code(),
        Some(2),
        "usage errors exit 2"
    );
}
