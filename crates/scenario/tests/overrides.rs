//! `--set PATH=VALUE` and `--threshold EXPR` edit the document before validation.

use std::time::Duration;
use syncstorm_scenario::{
    Load, Op, TargetKind, add_threshold, apply_override, from_str_with, parse_document, split_path,
};

const BASE: &str = r#"
[scenario]
name = "t"

[population]
users = 10
devices_per_user = 2

[[phases]]
duration = "10s"
devices = 20

[[phases]]
duration = "5s"
arrival_rate = 3

[thresholds]
"sync.p99" = "< 5s"
"#;

fn plan_with(sets: &[&str], thresholds: &[&str]) -> syncstorm_scenario::RunPlan {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let thresholds: Vec<String> = thresholds.iter().map(|s| s.to_string()).collect();
    from_str_with("t.toml", BASE, &sets, &thresholds).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn values_are_read_as_toml_or_else_as_strings() {
    let plan = plan_with(
        &[
            "population.users=500",
            "behaviour.update_share=0.25",
            "phases.0.duration=1m",
            "target.plan=\"team\"",
            "target.plan=free",
        ],
        &[],
    );
    assert_eq!(plan.population.users, 500);
    assert_eq!(plan.behaviour.update_share, 0.25);
    assert_eq!(plan.phases[0].duration, Duration::from_secs(60));
    assert_eq!(plan.target.plan.name, "free", "later overrides win");
}

#[test]
fn arrays_of_tables_are_addressed_by_index() {
    let plan = plan_with(&["phases.1.ramp_to=9", "phases.0.name=warm"], &[]);
    assert_eq!(plan.phases[0].name, "warm");
    assert_eq!(plan.phases[1].start, Duration::from_secs(10));
    assert!(matches!(
        plan.phases[1].load,
        Load::Open {
            from_rate: 3.0,
            to_rate: 9.0,
            ..
        }
    ));
    let plan = plan_with(
        &[
            "faults.outages=[{ start = \"2s\", duration = \"3s\", fraction = 0.5 }]",
            "faults.outages.0.fraction=0.75",
        ],
        &[],
    );
    assert_eq!(plan.faults.outages[0].fraction, 0.75);
}

#[test]
fn missing_tables_are_created_on_the_way() {
    let plan = plan_with(
        &[
            "faults.clock_skew.fraction=0.1",
            "faults.clock_skew.max=30s",
            "device.push.batch_size=25",
            "device.push.mode=server_lww",
            "target.plan_overrides.realtime.max_connections=1000",
            "target.plan_overrides.\"rest_pool_size\"=20",
        ],
        &[],
    );
    let skew = plan.faults.clock_skew.unwrap();
    assert_eq!((skew.fraction, skew.max), (0.1, Duration::from_secs(30)));
    assert_eq!(plan.device.push.batch_size, 25);
    assert_eq!(plan.device.push.mode, syncstorm_device::PushMode::ServerLww);
    assert_eq!(plan.target.plan.realtime.max_connections, 1000);
    assert_eq!(plan.target.plan.rest_pool_size, 20);
}

#[test]
fn switching_the_target_to_a_real_project_keeps_the_plan_as_its_caps() {
    let plan = plan_with(
        &[
            "target.kind=supabase",
            "target.url=https://abc.supabase.co/",
            "target.plan=team",
        ],
        &[],
    );
    match plan.target.kind {
        TargetKind::Supabase { url, .. } => assert_eq!(url, "https://abc.supabase.co"),
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.target.plan.realtime.max_connections, 10_000);
}

#[test]
fn thresholds_can_be_set_added_or_replaced() {
    let plan = plan_with(
        &["thresholds.\"errors.rate\"=\"< 1%\""],
        &["token_check.p99 < 500ms", "sync.p99<=2s"],
    );
    let by_metric = |m: &str| {
        plan.thresholds
            .iter()
            .find(|t| t.metric.to_string() == m)
            .unwrap()
    };
    assert_eq!(plan.thresholds.len(), 3);
    assert_eq!(by_metric("token_check.p99").value, 500.0);
    let sync = by_metric("sync.p99");
    assert_eq!(
        (sync.op, sync.value),
        (Op::Le, 2000.0),
        "--threshold replaces the file's rule"
    );
    assert!((by_metric("errors.rate").value - 0.01).abs() < 1e-12);
}

#[test]
fn the_document_as_run_reloads_to_the_same_plan() {
    let plan = plan_with(
        &["population.users=40", "phases.0.devices=\"50%\""],
        &["push.p90 < 1s"],
    );
    let again = from_str_with("again.toml", &plan.document_toml(), &[], &[]).unwrap();
    assert_eq!(again.population.users, 40);
    assert_eq!(again.phases, plan.phases);
    assert_eq!(again.thresholds, plan.thresholds);
    assert!(matches!(plan.phases[0].load, Load::Closed { to: 40, .. }));
    assert_eq!(plan.document_json()["population"]["users"], 40);
}

#[test]
fn paths_split_on_dots_outside_quotes() {
    assert_eq!(split_path("a.\"b.c\".0").unwrap(), ["a", "b.c", "0"]);
    assert!(split_path("a.\"b").is_err());
    assert!(split_path("a.\"b\"c").is_err());
    let mut doc = parse_document("t.toml", BASE).unwrap();
    apply_override(&mut doc, "run.seed = 7").unwrap();
    add_threshold(&mut doc, "oracle.lost_updates == 0").unwrap();
    assert_eq!(doc["run"]["seed"].as_integer(), Some(7));
    assert_eq!(
        doc["thresholds"]["oracle.lost_updates"].as_str(),
        Some("== 0")
    );
}

#[test]
fn a_compact_test_plan_replaces_the_phases() {
    let plan = plan_with(&["phases=\"20,10s;20,1m;5/s,30s\""], &[]);
    assert_eq!(plan.phases.len(), 3);
    assert!(
        matches!(plan.phases[0].load, Load::Closed { from: 0, to: 20, ramp } if ramp == Duration::from_secs(10))
    );
    assert!(matches!(
        plan.phases[1].load,
        Load::Closed {
            from: 20,
            to: 20,
            ..
        }
    ));
    assert!(matches!(
        plan.phases[2].load,
        Load::Open {
            from_rate: 5.0,
            to_rate: 5.0,
            ..
        }
    ));
    assert_eq!(plan.load_duration(), Duration::from_secs(100));
    let doc = plan.document_toml();
    assert!(
        doc.contains("[[phases]]"),
        "the document as run has ordinary phases: {doc}"
    );
}
