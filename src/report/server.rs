//! The report's server section: what the probes saw of the database, its pools and Realtime.

use std::collections::BTreeSet;

use super::charts::{Chart, Line};
use super::html::{chart_grid, count, esc, section};
use super::series::{db_max_connections, max_of, per_sample, realtime_peak};
use crate::result::RunResult;

pub fn render(r: &RunResult) -> String {
    if r.probes.samples.is_empty() {
        let body = "<p class=\"note\">No server probes were taken (the target had no database URL), so connections, wait events and pools are not shown.</p>";
        return section("server", "Server side", body);
    }
    let mut body = format!(
        "<p class=\"note\">Sampled from {} every {} ms; {} samples, {} failed.</p>",
        esc(r.probes.source.as_deref().unwrap_or("the target database")),
        r.probes.interval_ms,
        count(r.probes.samples.len() as u64),
        count(r.probes.failed_samples)
    );
    body.push_str(&chart_grid(&charts(r), r.duration_s));
    section(
        "server",
        "Server side: connections, locks, pools, realtime",
        &body,
    )
}

/// A pool's size as its samples report it (the largest seen), for its reference line.
fn pool_size(r: &RunResult, pool: &str) -> Option<f64> {
    r.probes
        .samples
        .iter()
        .filter_map(|s| s.pools.get(pool))
        .map(|p| p.size)
        .max()
        .filter(|size| *size > 0)
        .map(f64::from)
}

/// The realtime server's connections against the plan's cap, and its events per second as
/// Supabase's budget averages them against the plan's limit: one quantity per chart.
fn realtime_charts(r: &RunResult) -> Vec<Chart> {
    // A run with no realtime connection (pulse off, say) has no realtime charts: flat
    // zeros against a cap would stand for traffic that never happened.
    if realtime_peak(r, "connections").unwrap_or(0.0) <= 0.0 {
        return Vec::new();
    }
    let has = |key: &str| {
        r.probes
            .samples
            .iter()
            .any(|s| s.realtime.contains_key(key))
    };
    let value =
        |key: &'static str| per_sample(r, move |s| s.realtime.get(key).copied().unwrap_or(0.0));
    let mut out = Vec::new();
    if has("connections") {
        let mut chart = Chart::new("Realtime connections held by the server", "connections")
            .line(Line::new("connections", value("connections")));
        if let Some(plan) = &r.plan {
            chart = chart.limit(
                f64::from(plan.realtime.max_connections),
                format!("{} cap", plan.name),
            );
        }
        out.push(chart);
    }
    if has("events_budget_average") {
        let mut chart = Chart::new(
            "Realtime events per second, averaged as the budget counts them",
            "events per second",
        )
        .line(Line::new("moving average", value("events_budget_average")));
        if let Some(plan) = &r.plan {
            chart = chart.limit(
                f64::from(plan.realtime.events_per_second),
                format!("{} budget", plan.name),
            );
        }
        out.push(chart);
    }
    out
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

/// The server's charts, one quantity each: connections by state against `max_connections`,
/// wait events, pooled connections against each pool's size, requests waiting, and realtime.
pub fn charts(r: &RunResult) -> Vec<Chart> {
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
    if let Some(max) = db_max_connections(r) {
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
    // Connections in use (tens, against the pool's size) and requests waiting (up to tens of
    // thousands in a storm) are different quantities: one chart each.
    let mut in_use = Chart::new("Pooled connections in use", "connections");
    let mut waiting = Chart::new("Requests waiting for a pooled connection", "requests");
    for pool in &pools {
        in_use = in_use.line(Line::new(
            format!("{pool} in use"),
            per_sample(r, |s| f64::from(s.pools.get(*pool).map_or(0, |p| p.in_use))),
        ));
        waiting = waiting.line(Line::new(
            format!("{pool} waiting"),
            per_sample(r, |s| {
                f64::from(s.pools.get(*pool).map_or(0, |p| p.waiting))
            }),
        ));
        if let Some(size) = pool_size(r, pool) {
            in_use = in_use.limit(size, format!("{pool} pool size"));
        }
    }
    let mut out = vec![conns, wait_chart, in_use, waiting];
    out.extend(realtime_charts(r));
    out
}
