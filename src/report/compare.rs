//! Two runs side by side (e.g. push batch 1 vs 25): key figures, verdicts and percentiles
//! with deltas, and charts with both runs overlaid (A solid, B dashed).

use std::collections::BTreeSet;
use std::fmt::Write;

use syncstorm_metrics::{gauge, op};

use super::charts::{Chart, Line};
use super::html::{chart_grid, count, esc, ms, page, pct, section, table};
use super::risks;
use super::series::{op_per_second, per_sample, per_second};
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
    body.push_str(&section(
        "charts",
        "Over time",
        &chart_grid(&charts(a, b), a.duration_s.max(b.duration_s)),
    ));
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
        for (_, va, vb) in metrics {
            let mut cell = String::new();
            let _ = write!(
                cell,
                "{} → {}<br>{}",
                ms(va),
                ms(vb),
                delta(va, vb, Worse::Higher)
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

fn charts(a: &RunResult, b: &RunResult) -> Vec<Chart> {
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
    out.push(pair("Open websockets", "connections", socks(a), socks(b)));
    let conns = |r| per_sample(r, |s| s.db_connections_total() as f64);
    out.push(pair("DB connections", "connections", conns(a), conns(b)));
    let locks = |r| per_sample(r, |s| f64::from(s.lock_waits()));
    out.push(pair("Lock waits", "sessions", locks(a), locks(b)));
    out
}
