//! Two runs side by side (e.g. push batch 1 vs 25): key figures, verdicts and percentiles
//! with deltas, and charts with both runs overlaid (A solid, B dashed).

use std::collections::BTreeSet;
use std::fmt::Write;

use syncstorm_metrics::{gauge, op};

use super::charts::{Chart, Line};
use super::html::{chart_grid, count, esc, ms, page, pct, section, table};
use super::risks;
use super::series::{db_max_connections, max_of, op_per_second, per_sample, per_second};
use crate::result::{OperationResult, RunResult};

/// Renders the comparison page; `labels` name the runs (file names, say).
pub fn render_compare(a: &RunResult, b: &RunResult, labels: (&str, &str)) -> String {
    let mut body = format!(
        "<h1>Comparison: {} vs {}</h1><p class=\"sub\">A = {} ({}, {}) · B = {} ({}, {}). Deltas are B relative to A.</p>",
        esc(&a.scenario.name),
        esc(&b.scenario.name),
        esc(labels.0),
        esc(&a.started_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        esc(a.plan.as_ref().map_or("no plan", |p| p.name.as_str())),
        esc(labels.1),
        esc(&b.started_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        esc(b.plan.as_ref().map_or("no plan", |p| p.name.as_str())),
    );
    body.push_str(&section(
        "summary",
        "Key figures and verdicts",
        &(figures(a, b) + &verdicts(a, b)),
    ));
    body.push_str(&section("operations", "Percentiles", &percentiles(a, b)));
    body.push_str(&section("charts", "Over time", &over_time(a, b)));
    page(
        &format!("syncstorm · {} vs {}", a.scenario.name, b.scenario.name),
        &body,
    )
}

/// Which way a figure gets worse; load figures (devices, operations) are neither.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Worse {
    Higher,
    Neither,
}

/// Changes smaller than this are left uncoloured: run-to-run noise, not a finding.
const NOTABLE_CHANGE: f64 = 0.05;

/// "+12.0 %", coloured red when B is notably worse and green when notably better.
fn delta(a: f64, b: f64, worse: Worse) -> String {
    if a == 0.0 && b == 0.0 {
        return "—".into();
    }
    if a == 0.0 {
        return "new".into();
    }
    let change = (b - a) / a;
    let class = match worse {
        Worse::Higher if change > NOTABLE_CHANGE => "delta-worse",
        Worse::Higher if change < -NOTABLE_CHANGE => "delta-better",
        _ => "",
    };
    format!("<span class=\"{class}\">{:+.1} %</span>", change * 100.0)
}

fn error_rate(r: &RunResult) -> f64 {
    let total = r.total_count();
    if total == 0 {
        0.0
    } else {
        r.total_errors() as f64 / total as f64
    }
}

fn figures(a: &RunResult, b: &RunResult) -> String {
    let lost = |r: &RunResult| r.oracle.as_ref().map_or(0, |o| o.lost_updates);
    let rows = vec![
        row_u(
            "peak devices",
            a.peak.devices,
            b.peak.devices,
            Worse::Neither,
        ),
        row_u(
            "peak websockets",
            a.peak.websockets,
            b.peak.websockets,
            Worse::Neither,
        ),
        row_u(
            "operations",
            a.total_count(),
            b.total_count(),
            Worse::Neither,
        ),
        vec![
            "error rate".into(),
            pct(error_rate(a)),
            pct(error_rate(b)),
            delta(error_rate(a), error_rate(b), Worse::Higher),
        ],
        row_u("lost updates", lost(a), lost(b), Worse::Higher),
        vec![
            "duration".into(),
            format!("{:.0} s", a.duration_s),
            format!("{:.0} s", b.duration_s),
            delta(a.duration_s, b.duration_s, Worse::Neither),
        ],
    ];
    table("nums", &["figure", "A", "B", "delta"], &rows)
}

fn row_u(name: &str, a: u64, b: u64, worse: Worse) -> Vec<String> {
    vec![
        name.into(),
        count(a),
        count(b),
        delta(a as f64, b as f64, worse),
    ]
}

fn verdicts(a: &RunResult, b: &RunResult) -> String {
    let rows: Vec<Vec<String>> = risks::assess(a)
        .into_iter()
        .zip(risks::assess(b))
        .map(|(fa, fb)| {
            let cell = |f: &risks::Finding| {
                format!(
                    "<span class=\"badge {}\">{}</span> {}",
                    f.verdict.class(),
                    esc(f.verdict.words()),
                    esc(&f.summary)
                )
            };
            vec![
                format!("Risk {}: {}", fa.number, esc(fa.title)),
                cell(&fa),
                cell(&fb),
            ]
        })
        .collect();
    format!(
        "<h3>Risks</h3>{}",
        table("risks", &["risk", "A", "B"], &rows)
    )
}

fn percentiles(a: &RunResult, b: &RunResult) -> String {
    let names: BTreeSet<&String> = a.operations.keys().chain(b.operations.keys()).collect();
    let empty = OperationResult::default();
    let mut rows = Vec::new();
    for name in names {
        let (oa, ob) = (
            a.operations.get(name).unwrap_or(&empty),
            b.operations.get(name).unwrap_or(&empty),
        );
        let metrics: [(&str, f64, f64); 5] = [
            ("p50", oa.p50_ms, ob.p50_ms),
            ("p90", oa.p90_ms, ob.p90_ms),
            ("p99", oa.p99_ms, ob.p99_ms),
            ("p99.9", oa.p999_ms, ob.p999_ms),
            ("max", oa.max_ms, ob.max_ms),
        ];
        let mut row = vec![
            format!("<code>{}</code>", esc(name)),
            format!("{} / {}", count(oa.count), count(ob.count)),
        ];
        row.push(format!(
            "{} / {}",
            pct(oa.error_rate()),
            pct(ob.error_rate())
        ));
        // A run in which the operation never finished has no latency: "none", and no delta
        // (a 0 ms would read as "100 % better").
        let latency = |count: u64, v: f64| {
            if count == 0 {
                "none".to_string()
            } else {
                ms(v)
            }
        };
        for (_, va, vb) in metrics {
            let change = if oa.count == 0 || ob.count == 0 {
                "—".to_string()
            } else {
                delta(va, vb, Worse::Higher)
            };
            let mut cell = String::new();
            let _ = write!(
                cell,
                "{} → {}<br>{}",
                latency(oa.count, va),
                latency(ob.count, vb),
                change
            );
            row.push(cell);
        }
        rows.push(row);
    }
    table(
        "nums",
        &[
            "operation",
            "count A / B",
            "errors A / B",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
        ],
        &rows,
    )
}

fn pair(title: &str, unit: &str, a: Vec<(f64, f64)>, b: Vec<(f64, f64)>) -> Chart {
    let mut line_b = Line::new("B", b);
    line_b.dashed = true;
    Chart::new(title, unit).line(Line::new("A", a)).line(line_b)
}

/// The charts of both runs, leaving out those that stayed at zero in both (lock waits in two
/// runs without bulk imports, say) and naming them instead.
fn over_time(a: &RunResult, b: &RunResult) -> String {
    let (drawn, flat): (Vec<Chart>, Vec<Chart>) = charts(a, b)
        .into_iter()
        .partition(|c| c.lines.iter().any(|l| max_of(&l.points) > 0.0));
    let mut html = chart_grid(&drawn, a.duration_s.max(b.duration_s));
    if !flat.is_empty() {
        let names: Vec<String> = flat.iter().map(|c| esc(&c.title)).collect();
        let _ = write!(
            html,
            "<p class=\"note\">Zero throughout in both runs, so not drawn: {}.</p>",
            names.join(", ")
        );
    }
    html
}

/// The two runs' reference lines for one limit: one line when they agree, else one per run,
/// labelled "A: …" and "B: …".
fn limits(
    a: &RunResult,
    b: &RunResult,
    limit: impl Fn(&RunResult) -> Option<(f64, String)>,
) -> Vec<(f64, String)> {
    match (limit(a), limit(b)) {
        (Some(la), Some(lb)) if la.0 == lb.0 => vec![la],
        (la, lb) => la
            .map(|(v, l)| (v, format!("A: {l}")))
            .into_iter()
            .chain(lb.map(|(v, l)| (v, format!("B: {l}"))))
            .collect(),
    }
}

fn with_limits(chart: Chart, limits: Vec<(f64, String)>) -> Chart {
    limits
        .into_iter()
        .fold(chart, |chart, (value, label)| chart.limit(value, label))
}

pub(super) fn charts(a: &RunResult, b: &RunResult) -> Vec<Chart> {
    let mut out = Vec::new();
    for name in [op::TOKEN_CHECK, op::PUSH, op::PULL, op::PULSE_DELIVERY] {
        if a.operations.contains_key(name) || b.operations.contains_key(name) {
            let p99 = |r| op_per_second(r, name, |o| o.p99_ms);
            out.push(pair(&format!("{name} p99"), "ms", p99(a), p99(b)));
        }
    }
    let ops = |r| per_second(r, |p| p.throughput() as f64);
    out.push(pair("Throughput", "operations per second", ops(a), ops(b)));
    let errs = |r| per_second(r, |p| p.errors() as f64);
    out.push(pair("Errors", "errors per second", errs(a), errs(b)));
    let socks = |r| per_second(r, |p| p.gauge(gauge::SOCKETS_OPEN) as f64);
    let socket_caps = limits(a, b, |r| {
        r.plan.as_ref().map(|p| {
            (
                f64::from(p.realtime.max_connections),
                format!("{} cap", p.name),
            )
        })
    });
    out.push(with_limits(
        pair("Open websockets", "connections", socks(a), socks(b)),
        socket_caps,
    ));
    let conns = |r| per_sample(r, |s| s.db_connections_total() as f64);
    let max_conns = limits(a, b, |r| {
        db_max_connections(r).map(|m| (f64::from(m), "max_connections".to_string()))
    });
    out.push(with_limits(
        pair("DB connections", "connections", conns(a), conns(b)),
        max_conns,
    ));
    let locks = |r| per_sample(r, |s| f64::from(s.lock_waits()));
    out.push(pair("Lock waits", "sessions", locks(a), locks(b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_one_run_never_finished_has_no_latency_and_no_delta() {
        let mut a = RunResult::default();
        a.operations.insert(
            op::PUSH.into(),
            OperationResult {
                count: 556,
                p50_ms: 1.9,
                p99_ms: 37.2,
                ..OperationResult::default()
            },
        );
        let b = RunResult::default();
        let table = percentiles(&a, &b);
        assert!(table.contains("37.2 ms → none"), "{table}");
        assert!(!table.contains("-100.0 %"), "{table}");
    }

    #[test]
    fn charts_at_zero_in_both_runs_are_named_not_drawn() {
        let run = || {
            let mut r = RunResult::default();
            r.timeseries.points = (0..5)
                .map(|t| syncstorm_metrics::SeriesPoint {
                    t,
                    ..Default::default()
                })
                .collect();
            r.operations
                .insert(op::TOKEN_CHECK.into(), OperationResult::default());
            r
        };
        let html = over_time(&run(), &run());
        assert!(html.contains("not drawn: "), "{html}");
        assert!(html.contains("Lock waits"), "{html}");
        assert!(
            !html.contains("<svg"),
            "nothing happened in either run: {html}"
        );
    }
}
