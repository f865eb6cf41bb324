//! The report's body sections after the summary.

use std::fmt::Write;

use syncstorm_metrics::{gauge, op};

use super::charts::{Chart, Line};
use super::html::{chart_grid, count, esc, ms, section};
use super::risks::{Finding, Verdict};
use super::series::{max_of, op_per_second, per_second};
use crate::result::RunResult;

/// Operations whose latency is charted first, when present (then the busiest others).
const KEY_OPS: [&str; 4] = [op::TOKEN_CHECK, op::PUSH, op::PULL, op::SYNC];
const MAX_LATENCY_CHARTS: usize = 6;

pub fn risk(f: &Finding, run_seconds: f64) -> String {
    let mut body = format!(
        "<p class=\"verdict\"><span class=\"badge {}\">{}</span> {}</p>",
        f.verdict.class(),
        esc(f.verdict.words()),
        esc(&f.summary)
    );
    let _ = write!(
        body,
        "<p class=\"note\">The report's claim: {}</p>",
        esc(f.claim)
    );
    if !f.evidence.is_empty() {
        body.push_str("<ul class=\"evidence\">");
        for e in &f.evidence {
            let _ = write!(body, "<li>{}</li>", esc(e));
        }
        body.push_str("</ul>");
    }
    // A risk the scenario never exercised has nothing to draw: its charts would be flat
    // zeros and empty boxes standing for things that did not happen.
    if f.verdict != Verdict::NotExercised {
        body.push_str(&chart_grid(&f.charts, run_seconds));
    }
    let html = section(
        &format!("risk-{}", f.number),
        &format!("Risk {}: {}", f.number, f.title),
        &body,
    );
    html.replacen(
        "<section ",
        &format!("<section class=\"risk {}\" ", f.verdict.class()),
        1,
    )
}

/// Charted operations: the key ones present, then the busiest others.
fn charted_ops(r: &RunResult) -> Vec<String> {
    let mut names: Vec<String> = KEY_OPS
        .iter()
        .filter(|n| r.operations.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    let mut others: Vec<(&String, u64)> = r
        .operations
        .iter()
        .filter(|(n, _)| !KEY_OPS.contains(&n.as_str()))
        .map(|(n, o)| (n, o.count))
        .collect();
    others.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    names.extend(others.into_iter().map(|(n, _)| n.clone()));
    names.truncate(MAX_LATENCY_CHARTS);
    names
}

pub fn latency(r: &RunResult) -> String {
    let charts: Vec<Chart> = charted_ops(r)
        .iter()
        .map(|name| {
            Chart::new(format!("{name} latency per second"), "ms")
                .line(Line::new("p50", op_per_second(r, name, |o| o.p50_ms)))
                .line(Line::new("p90", op_per_second(r, name, |o| o.p90_ms)))
                .line(Line::new("p99", op_per_second(r, name, |o| o.p99_ms)))
        })
        .collect();
    let body = if charts.is_empty() {
        "<p class=\"note\">No operations were recorded.</p>".into()
    } else {
        chart_grid(&charts, r.duration_s)
    };
    section("latency", "Latency percentiles over time", &body)
}

pub fn throughput(r: &RunResult) -> String {
    let mut body = chart_grid(&throughput_charts(r), r.duration_s);
    if !r.errors_by_kind.is_empty() {
        let rows: Vec<Vec<String>> = r
            .errors_by_kind
            .iter()
            .map(|(k, n)| vec![format!("<code>{}</code>", esc(k)), count(*n)])
            .collect();
        body.push_str("<h3>Errors by kind</h3>");
        body.push_str(&super::html::table("nums", &["kind", "count"], &rows));
    }
    section("throughput", "Throughput, errors and load", &body)
}

/// Load over time, one quantity per chart: operations and errors per second, devices,
/// websockets against the plan's cap, syncs in flight.
pub fn throughput_charts(r: &RunResult) -> Vec<Chart> {
    let ops = Chart::new("Throughput and errors", "operations per second")
        .line(Line::new(
            "operations/s",
            per_second(r, |p| p.throughput() as f64),
        ))
        .line(Line::new("errors/s", per_second(r, |p| p.errors() as f64)));
    // Devices, sockets and syncs each on their own axis: at 100k devices a socket cap of 10k
    // or a few hundred syncs in flight would lie flat on a shared one.
    let devices = Chart::new("Devices: running and offline", "devices")
        .line(Line::new(
            "running devices",
            per_second(r, |p| p.gauge(gauge::DEVICES_ACTIVE) as f64),
        ))
        .line(Line::new(
            "offline devices",
            per_second(r, |p| p.gauge(gauge::DEVICES_OFFLINE) as f64),
        ));
    let mut sockets = Chart::new("Open websockets", "connections").line(Line::new(
        "open websockets",
        per_second(r, |p| p.gauge(gauge::SOCKETS_OPEN) as f64),
    ));
    if let Some(plan) = &r.plan {
        sockets = sockets.limit(
            f64::from(plan.realtime.max_connections),
            format!("{} cap", plan.name),
        );
    }
    let syncs = Chart::new("Syncs in flight", "syncs").line(Line::new(
        "syncs in flight",
        per_second(r, |p| p.gauge(gauge::SYNCS_IN_FLIGHT) as f64),
    ));
    let mut charts = vec![ops, devices];
    // No device opened a socket (pulse off or periodic): no sockets chart of zeros.
    if max_of(&sockets.lines[0].points) > 0.0 {
        charts.push(sockets);
    }
    charts.push(syncs);
    charts
}

pub fn oracle(r: &RunResult) -> String {
    let Some(o) = &r.oracle else {
        return section(
            "oracle",
            "Correctness (oracle)",
            "<p class=\"note\">The oracle did not run in this scenario, so convergence and lost updates were not checked.</p>",
        );
    };
    let (class, word) = match (o.clean(), o.incomplete()) {
        (false, _) => ("fail", "data corruption found"),
        (true, true) => ("inconclusive", "inconclusive: not every device was checked"),
        (true, false) => ("pass", "no data corruption found"),
    };
    let mut body = format!("<p class=\"verdict\"><span class=\"badge {class}\">{word}</span></p>");
    if o.incomplete() {
        let _ = write!(
            body,
            "<div class=\"warnbox\">The oracle checked {} of the {} devices the run started: \
             the others did not stop in time, so their rows were not compared.</div>",
            count(o.devices_checked),
            count(o.devices_started)
        );
    }
    let mut rows = vec![
        vec!["users checked".into(), count(o.users_checked)],
        vec!["users converged".into(), count(o.users_converged)],
        vec![
            "devices checked / started".into(),
            format!(
                "{} / {}",
                count(o.devices_checked),
                count(o.devices_started)
            ),
        ],
        vec!["lost updates".into(), count(o.lost_updates)],
        vec!["skipped rows".into(), count(o.skipped_rows)],
        vec![
            "overruled writes (a later edit lost to clock skew)".into(),
            count(o.overruled_writes),
        ],
        vec!["foreign-key errors in pulls".into(), count(o.fk_errors)],
        vec!["rows refused as not newer".into(), count(o.rows_refused)],
        vec![
            "failed final quiet syncs".into(),
            count(o.quiet_syncs_failed),
        ],
    ];
    if o.rls.attempts > 0 {
        rows.push(vec![
            "RLS: attempts on other users' rows / rows read / rows written (must be 0)".into(),
            format!(
                "{} / {} / {}",
                count(o.rls.attempts),
                count(o.rls.read_leaks),
                count(o.rls.write_leaks)
            ),
        ]);
    }
    body.push_str(&super::html::table("nums", &["check", "count"], &rows));
    if !o.examples.is_empty() {
        body.push_str("<h3>Examples</h3><ul class=\"evidence\">");
        for e in &o.examples {
            let _ = write!(body, "<li>{}</li>", esc(e));
        }
        body.push_str("</ul>");
    }
    section("oracle", "Correctness (oracle)", &body)
}

pub fn generator(r: &RunResult) -> String {
    let health = super::generator::assess(r);
    let mut body = String::new();
    for warning in &health.warnings {
        let _ = write!(body, "<div class=\"warnbox\">{}</div>", esc(warning));
    }
    if health.warnings.is_empty() && !r.generator.is_empty() {
        let _ = write!(body, "<p class=\"note\">{}</p>", esc(&health.verdict));
    }
    if r.shards.is_empty() {
        let _ = write!(body, "<p class=\"note\">{}</p>", esc(&clock_sentence(r)));
    }
    if r.generator.is_empty() {
        body.push_str("<p class=\"note\">The generator recorded no health samples.</p>");
    } else if !r.shards.is_empty() {
        body.push_str(&super::shards::section_body(r));
    } else {
        let cpu = Chart::new("Generator CPU (all workers)", "% of one core")
            .line(Line::new("CPU %", health.cpu.clone()))
            .limit(f64::from(r.machine.cores.max(1)) * 100.0, "all cores");
        let lag = Chart::new("Generator event-loop lag (worst worker)", "ms")
            .line(Line::new("lag", health.lag.clone()));
        let rss = Chart::new("Generator memory (all workers)", "MiB")
            .line(Line::new("RSS", health.rss_mib.clone()));
        body.push_str(&chart_grid(&[cpu, lag, rss], r.duration_s));
    }
    section("generator", "Generator health", &body)
}

/// Where the devices' traffic left from and how this machine's clock stood to the target's.
fn clock_sentence(r: &RunResult) -> String {
    let sources = match r.machine.source_addresses.as_slice() {
        [] => String::new(),
        ips => format!(
            "Devices connected from {}. ",
            ips.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let clock = match &r.clock {
        Some(c) => format!(
            "This machine's clock was {} the target's (± {}, from the target's Date header).",
            super::shards::offset_words(c.offset_ms),
            ms(c.uncertainty_ms)
        ),
        None => "This machine's clock was not compared with the target's.".to_string(),
    };
    format!("{sources}{clock}")
}

pub fn scenario(r: &RunResult) -> String {
    let json = serde_json::to_string_pretty(&r.scenario.as_run).unwrap_or_default();
    let mut body = String::new();
    if let Some(plan) = &r.plan {
        let rows = vec![
            vec!["plan".into(), esc(&plan.name)],
            vec![
                "DB max_connections".into(),
                count(plan.db_max_connections.into()),
            ],
            vec![
                "REST pool".into(),
                format!(
                    "{} connections, {} timeout",
                    plan.rest_pool_size,
                    ms(plan.rest_pool_timeout.as_millis() as f64)
                ),
            ],
            vec![
                "realtime connections cap".into(),
                count(plan.realtime.max_connections.into()),
            ],
            vec![
                "realtime joins / events per second".into(),
                format!(
                    "{} / {}",
                    count(plan.realtime.joins_per_second.into()),
                    count(plan.realtime.events_per_second.into())
                ),
            ],
        ];
        body.push_str(&super::html::table(
            "plan",
            &["plan figure", "value"],
            &rows,
        ));
    }
    let m = &r.machine;
    let machine = vec![
        vec!["host".into(), esc(&m.hostname)],
        vec![
            "operating system".into(),
            esc(&format!("{} (kernel {})", m.os, m.kernel)),
        ],
        vec!["cores".into(), m.cores.to_string()],
        vec![
            "memory".into(),
            format!("{:.1} GiB", m.memory_bytes as f64 / 1_073_741_824.0),
        ],
    ];
    body.push_str("<h3>Generator machine</h3>");
    body.push_str(&super::html::table("plan", &["machine", "value"], &machine));
    let _ = write!(body, "<h3>Scenario as run</h3><pre>{}</pre>", esc(&json));
    section("scenario", "The scenario and plan as run", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::risks;

    #[test]
    fn a_risk_the_scenario_did_not_exercise_draws_no_charts() {
        let mut r = RunResult::default();
        r.timeseries.points = (0..10)
            .map(|t| syncstorm_metrics::SeriesPoint {
                t,
                ..Default::default()
            })
            .collect();
        let findings = risks::assess(&r);
        let quiet = &findings[1];
        assert_eq!(quiet.verdict, Verdict::NotExercised, "{}", quiet.summary);
        assert!(
            !quiet.charts.is_empty(),
            "the finding still carries its charts"
        );
        let html = risk(quiet, 10.0);
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("not exercised by this scenario"));
    }
}
