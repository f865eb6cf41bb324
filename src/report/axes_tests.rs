//! Every chart of a storm-shaped run keeps each of its lines and limits readable: a line
//! that is not zero rises above a sliver of its chart's height, and every reference line sits
//! well inside the axis. The figures mimic a 100k-device token storm on the Team plan, where
//! the quantities differ by orders of magnitude (100k devices, a 10k socket cap, tens of DB
//! connections, a 55k-deep pool queue), so two of them sharing one axis shows up here.

use syncstorm_metrics::{OpPoint, SeriesPoint, counter, gauge, op};
use syncstorm_plans::SupabasePlan;

use super::charts::Chart;
use super::{compare, risks, sections, server};
use crate::result::{PoolSample, ProbeSample, RunResult};

/// A line whose peak is below this share of its chart's highest line shares an axis with a
/// quantity of another magnitude (limits raise the axis on purpose and are judged apart).
const LOWEST_VISIBLE_LINE: f64 = 0.15;
/// A reference line lower than this share of the height (≈9 px of a chart's plot area)
/// cannot be told from the axis.
const LOWEST_VISIBLE_LIMIT: f64 = 0.05;

fn op_point(count: u64, errors: u64, p99_ms: f64) -> OpPoint {
    OpPoint {
        count,
        errors,
        p50_ms: p99_ms / 4.0,
        p90_ms: p99_ms / 2.0,
        p99_ms,
        max_ms: p99_ms,
        hist: String::new(),
        errors_by_kind: Default::default(),
    }
}

fn storm() -> RunResult {
    let mut r = RunResult {
        plan: Some(SupabasePlan::preset("team").expect("team is a preset")),
        duration_s: 60.0,
        ..RunResult::default()
    };
    for t in 0..60u64 {
        let mut p = SeriesPoint {
            t,
            ..SeriesPoint::default()
        };
        for (name, level) in [
            (gauge::DEVICES_ACTIVE, 100_000),
            (gauge::DEVICES_OFFLINE, 40_000),
            (gauge::SOCKETS_OPEN, 10_000),
            (gauge::SYNCS_IN_FLIGHT, 3_000),
        ] {
            p.gauges.insert(name.into(), level);
        }
        p.counters.insert(counter::APP_OPENS.into(), 1_600);
        p.counters.insert(counter::WS_REJECTED.into(), 900);
        p.ops
            .insert(op::TOKEN_CHECK.into(), op_point(1_300, 600, 10_000.0));
        p.ops
            .insert(op::TOKEN_REFRESH.into(), op_point(800, 0, 400.0));
        p.ops
            .insert(op::WS_CONNECT.into(), op_point(1_000, 900, 20.0));
        p.ops
            .insert(op::PULSE_DELIVERY.into(), op_point(2_000, 0, 300.0));
        p.ops.insert(op::PULL.into(), op_point(900, 300, 8_000.0));
        r.timeseries.points.push(p);
    }
    // The Team preset's own figures: max_connections 160, PostgREST's pool of 10.
    r.probes.db_max_connections = Some(160);
    for t in 0..60u32 {
        let mut s = ProbeSample {
            t: f64::from(t),
            ..ProbeSample::default()
        };
        s.db_connections.insert("active".into(), 30);
        s.db_connections.insert("idle".into(), 13);
        s.wait_events.insert("Client:ClientRead".into(), 12);
        s.wait_events.insert("IO:WalSync".into(), 6);
        s.pools.insert(
            "rest".into(),
            PoolSample {
                size: 10,
                in_use: 10,
                waiting: 55_000,
                ..PoolSample::default()
            },
        );
        for (key, value) in [
            ("connections", 10_000.0),
            ("events_budget_average", 1_500.0),
            ("poll_changes_total", 900.0 * f64::from(t)),
            ("changes_dispatched_total", 900.0 * f64::from(t)),
            ("events_delivered_total", 1_800.0 * f64::from(t)),
            ("events_dropped_budget_total", 1_000.0 * f64::from(t)),
            ("dispatch_queue_changes", 400.0),
            ("wal_behind_bytes", 4.0 * 1_048_576.0),
            ("processes", 1.0),
        ] {
            s.realtime.insert(key.into(), value);
        }
        r.probes.samples.push(s);
    }
    r
}

fn unreadable(chart: &Chart) -> Vec<String> {
    let top = chart.y_max();
    let peaks: Vec<f64> = chart
        .lines
        .iter()
        .map(|l| super::series::max_of(&l.points))
        .collect();
    let highest = peaks.iter().copied().fold(0.0, f64::max);
    let mut out = Vec::new();
    for (line, peak) in chart.lines.iter().zip(peaks) {
        if peak > 0.0 && peak < LOWEST_VISIBLE_LINE * highest {
            out.push(format!(
                "line \"{}\" peaks at {peak} beside a line at {highest}",
                line.name
            ));
        }
    }
    for (value, label) in &chart.limits {
        if *value < LOWEST_VISIBLE_LIMIT * top {
            out.push(format!(
                "limit \"{label}\" at {value} on an axis to {top:.0}"
            ));
        }
    }
    out
}

fn assert_readable(charts: &[Chart]) {
    let problems: Vec<String> = charts
        .iter()
        .flat_map(|c| {
            unreadable(c)
                .into_iter()
                .map(move |p| format!("{}: {p}", c.title))
        })
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn every_run_chart_keeps_its_lines_and_limits_readable() {
    let r = storm();
    let mut charts: Vec<Chart> = risks::assess(&r)
        .into_iter()
        .flat_map(|f| f.charts)
        .collect();
    charts.extend(sections::throughput_charts(&r));
    charts.extend(server::charts(&r));
    assert!(charts.len() >= 15, "only {} charts drawn", charts.len());
    assert_readable(&charts);
}

#[test]
fn every_comparison_chart_keeps_its_lines_and_limits_readable() {
    let a = storm();
    let mut b = storm();
    if let Some(plan) = &mut b.plan {
        plan.realtime.max_connections = 12_000; // as `--set plan.realtime...` would
    }
    let charts = compare::charts(&a, &b);
    let sockets = charts
        .iter()
        .find(|c| c.title == "Open websockets")
        .expect("a sockets chart");
    assert_eq!(
        sockets.limits.len(),
        2,
        "plans with different caps draw both: {:?}",
        sockets.limits
    );
    assert_readable(&charts);
}
