//! The JSON result: round trip, clear refusals of wrong files, exact shard merges.

mod report_support;

use report_support::{Shape, synthetic, synthetic_shards};
use syncstorm::result::{ClockOffset, ResultError, RunResult, SCHEMA_VERSION, merge_shards};
use syncstorm_metrics::histogram;

const STORM: Shape = Shape {
    storm: true,
    seconds: 90,
};

#[test]
fn result_round_trips_through_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = synthetic("quick <start>", STORM);
    let path = r.write(dir.path()).unwrap();
    assert_eq!(
        path.file_name().unwrap(),
        "quick__start_-20261124T200000Z.json"
    );
    let back = RunResult::load(&path).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.schema_version, SCHEMA_VERSION);
    assert!(back.operations["token_check"].count > 0);
}

#[test]
fn wrong_files_are_refused_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (write("a.json", "{not json"), "is not JSON"),
        (
            write("b.json", "{\"hello\": 1}"),
            "is not a syncstorm result",
        ),
        (
            write("c.json", "{\"schema_version\": 99}"),
            "has result schema version 99, but this syncstorm reads version 1",
        ),
        (
            write("d.json", "{\"schema_version\": 1, \"scenario\": 3}"),
            "is a damaged syncstorm result",
        ),
        (dir.path().join("missing.json"), "cannot read"),
    ];
    for (path, expected) in cases {
        let err = RunResult::load(&path).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}

#[test]
fn merged_shards_equal_the_whole_run() {
    let whole = synthetic("storm", STORM);
    let shards = synthetic_shards("storm", STORM, 4);
    let merged = merge_shards(&shards).unwrap();
    assert_eq!(merged.merged_shards, 4);
    assert_eq!(
        merged.operations.keys().collect::<Vec<_>>(),
        whole.operations.keys().collect::<Vec<_>>()
    );
    for (name, op) in &whole.operations {
        let m = &merged.operations[name];
        assert_eq!(
            histogram::decode(&m.hist).unwrap(),
            histogram::decode(&op.hist).unwrap(),
            "{name}"
        );
        assert_eq!(
            (m.count, m.errors, m.p50_ms, m.p99_ms, m.max_ms),
            (op.count, op.errors, op.p50_ms, op.p99_ms, op.max_ms)
        );
        assert_eq!(m.errors_by_kind, op.errors_by_kind);
    }
    assert_eq!(merged.counters, whole.counters);
    assert_eq!(merged.errors_by_kind, whole.errors_by_kind);
    assert_same_series(&merged.timeseries, &whole.timeseries);
    assert_eq!(merged.peak, whole.peak);
    assert_eq!(merged.oracle, whole.oracle);
    assert_eq!(
        merged.thresholds, whole.thresholds,
        "thresholds are evaluated on the merged figures"
    );
    assert_eq!(merged.probes, whole.probes);
}

#[test]
fn shards_whose_clocks_disagree_meet_on_the_servers_clock() {
    let whole = synthetic("storm", STORM);
    let mut shards = synthetic_shards("storm", STORM, 3);
    // Every load started at the same server instant; the machines' clocks read it differently.
    for (shard, local_minus_server_ms) in shards.iter_mut().zip([0i64, 3_000, -2_000]) {
        shard.started_at += chrono::Duration::milliseconds(local_minus_server_ms);
        shard.clock = Some(ClockOffset {
            offset_ms: -local_minus_server_ms as f64,
            uncertainty_ms: 10.0,
            requests: 40,
        });
    }
    let merged = merge_shards(&shards).unwrap();
    assert_same_series(&merged.timeseries, &whole.timeseries);
    assert_eq!(merged.peak, whole.peak);
    assert_eq!(merged.started_at, whole.started_at);
    let starts: Vec<f64> = merged.shards.iter().map(|s| s.start_offset_s).collect();
    assert_eq!(starts, [0.0, 0.0, 0.0]);
    let labels: Vec<&str> = merged.shards.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["shard 0/3", "shard 1/3", "shard 2/3"]);
    assert_eq!(merged.shards[1].clock.unwrap().offset_ms, -3_000.0);

    // Without every shard's offset, each machine's own clock is all there is: the 3 s show.
    shards[2].clock = None;
    let merged = merge_shards(&shards).unwrap();
    let starts: Vec<f64> = merged.shards.iter().map(|s| s.start_offset_s).collect();
    assert_eq!(starts, [2.0, 5.0, 0.0]);
}

#[test]
fn merge_refuses_mixed_or_duplicate_shards() {
    let shards = synthetic_shards("storm", STORM, 2);
    let other = synthetic_shards("calm", STORM, 2);
    let err = merge_shards(&[shards[0].clone(), other[1].clone()]).unwrap_err();
    assert!(matches!(err, ResultError::Merge(_)));
    assert!(
        err.to_string()
            .contains("different scenarios (calm, storm)"),
        "{err}"
    );
    let err = merge_shards(&[shards[0].clone(), shards[0].clone()]).unwrap_err();
    assert!(err.to_string().contains("shard 0/2 appears twice"), "{err}");
    assert!(merge_shards(&[]).is_err());
}

#[test]
fn a_missing_shard_is_said_in_the_status() {
    let shards = synthetic_shards("storm", STORM, 3);
    let merged = merge_shards(&shards[..2]).unwrap();
    let message = merged.status.message.unwrap();
    assert!(
        message.contains("merged 2 of 3 shards; missing: 2"),
        "{message}"
    );
}

/// Series equality with histograms compared by content (their encodings depend on how far
/// each histogram's array had grown, not on its counts).
fn assert_same_series(a: &syncstorm_metrics::TimeSeries, b: &syncstorm_metrics::TimeSeries) {
    assert_eq!(a.points.len(), b.points.len());
    for (pa, pb) in a.points.iter().zip(&b.points) {
        assert_eq!(
            (pa.t, &pa.counters, &pa.gauges),
            (pb.t, &pb.counters, &pb.gauges)
        );
        assert_eq!(
            pa.ops.keys().collect::<Vec<_>>(),
            pb.ops.keys().collect::<Vec<_>>()
        );
        for (name, oa) in &pa.ops {
            let ob = &pb.ops[name];
            assert_eq!(
                (oa.count, oa.errors, oa.p50_ms, oa.p99_ms, oa.max_ms),
                (ob.count, ob.errors, ob.p50_ms, ob.p99_ms, ob.max_ms)
            );
            assert_eq!(
                histogram::decode(&oa.hist).unwrap(),
                histogram::decode(&ob.hist).unwrap()
            );
        }
    }
}
