//! The report's body sections after the summary.

use std::collections::BTreeSet;
use std::fmt::Write;

use syncstorm_metrics::{gauge, op};

use super::charts::{Chart, Line};
use super::html::{chart_grid, count, esc, ms, section};
use super::risks::Finding;
use super::series::{max_of, op_per_second, per_sample, per_second};
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
    body.push_str(&chart_grid(&f.charts, run_seconds));
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
    let ops = Chart::new("Throughput and errors", "operations per second")
        .line(Line::new(
            "operations/s",
            per_second(r, |p| p.throughput() as f64),
        ))
        .line(Line::new("errors/s", per_second(r, |p| p.errors() as f64)));
    let levels = Chart::new("Devices, websockets and syncs in flight", "count")
        .line(Line::new(
            "active devices",
            per_second(r, |p| p.gauge(gauge::DEVICES_ACTIVE) as f64),
        ))
        .line(Line::new(
            "open websockets",
            per_second(r, |p| p.gauge(gauge::SOCKETS_OPEN) as f64),
        ))
        .line(Line::new(
            "syncs in flight",
            per_second(r, |p| p.gauge(gauge::SYNCS_IN_FLIGHT) as f64),
        ))
        .line(Line::new(
            "offline devices",
            per_second(r, |p| p.gauge(gauge::DEVICES_OFFLINE) as f64),
        ));
    let mut body = chart_grid(&[ops, levels], r.duration_s);
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

pub fn server(r: &RunResult) -> String {
    if r.probes.samples.is_empty() {
        let body = "<p class=\"note\">No server probes were taken (the target had no database URL), so connections, wait events and pools are not shown.</p>";
        return section("server", "Server side", body);
    }
    let states: BTreeSet<&String> = r
        .probes
        .samples
        .iter()
        .flat_map(|s| s.db_connections.keys())
        .collect();
    let mut conns = Chart::new("DB connections by state", "connections");
    for state in states {
        conns = conns.line(Line::new(
            state.as_str(),
            per_sample(r, |s| {
                f64::from(s.db_connections.get(state).copied().unwrap_or(0))
            }),
        ));
    }
    if let Some(max) = super::series::db_max_connections(r) {
        conns = conns.limit(f64::from(max), "max_connections");
    }
    let waits = top_wait_events(r);
    let mut wait_chart = Chart::new("Wait events (sessions)", "sessions");
    for event in &waits {
        wait_chart = wait_chart.line(Line::new(
            event.as_str(),
            per_sample(r, |s| {
                f64::from(s.wait_events.get(event).copied().unwrap_or(0))
            }),
        ));
    }
    let pools: BTreeSet<&String> = r
        .probes
        .samples
        .iter()
        .flat_map(|s| s.pools.keys())
        .collect();
    let mut pool_chart = Chart::new("Pools: in use and waiting", "connections / requests");
    for pool in &pools {
        pool_chart = pool_chart
            .line(Line::new(
                format!("{pool} in use"),
                per_sample(r, |s| f64::from(s.pools.get(*pool).map_or(0, |p| p.in_use))),
            ))
            .line(Line::new(
                format!("{pool} waiting"),
                per_sample(r, |s| {
                    f64::from(s.pools.get(*pool).map_or(0, |p| p.waiting))
                }),
            ));
    }
    let realtime_keys: BTreeSet<&String> = r
        .probes
        .samples
        .iter()
        .flat_map(|s| s.realtime.keys())
        .collect();
    let mut rt_chart = Chart::new("Realtime server", "value");
    for key in realtime_keys.iter().take(5) {
        rt_chart = rt_chart.line(Line::new(
            key.as_str(),
            per_sample(r, |s| s.realtime.get(*key).copied().unwrap_or(0.0)),
        ));
    }
    let mut body = format!(
        "<p class=\"note\">Sampled from {} every {} ms; {} samples, {} failed.</p>",
        esc(r.probes.source.as_deref().unwrap_or("the target database")),
        r.probes.interval_ms,
        count(r.probes.samples.len() as u64),
        count(r.probes.failed_samples)
    );
    body.push_str(&chart_grid(
        &[conns, wait_chart, pool_chart, rt_chart],
        r.duration_s,
    ));
    section(
        "server",
        "Server side: connections, locks, pools, realtime",
        &body,
    )
}

/// The wait events that ever had sessions, busiest first (at most six lines).
fn top_wait_events(r: &RunResult) -> Vec<String> {
    let names: BTreeSet<&String> = r
        .probes
        .samples
        .iter()
        .flat_map(|s| s.wait_events.keys())
        .collect();
    let mut ranked: Vec<(String, f64)> = names
        .into_iter()
        .map(|n| {
            (
                n.clone(),
                max_of(&per_sample(r, |s| {
                    f64::from(s.wait_events.get(n).copied().unwrap_or(0))
                })),
            )
        })
        .filter(|(_, peak)| *peak > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.into_iter().take(6).map(|(n, _)| n).collect()
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
    let rows = vec![
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
    if r.generator.is_empty() {
        body.push_str("<p class=\"note\">The generator recorded no health samples.</p>");
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
