//! Risk 1: the metadata (USAP token) fetch storm when many apps open at once.

use syncstorm_metrics::{counter, op};
use syncstorm_wire::error::ErrorKind;

use super::clauses::Clauses;
use super::{Finding, Verdict, top_kinds};
use crate::report::charts::{Chart, Line};
use crate::report::html::{count, ms, pct, rate};
use crate::report::series::{
    db_max_connections, has_pool_figures, max_of, op_per_second, op_rate, peak_per_minute,
    per_sample, per_second, pool_peaks,
};
use crate::result::RunResult;

const CLAIM: &str = "If 100,000 users open the app at once, the heartbeat (token) checks can exceed the database's connection limit.";
/// Whether an error kind (by its name in the result) is the generator's own doing — a
/// simulated outage, its own file or port limits — which says nothing about the server.
fn client_side(kind: &str) -> bool {
    ErrorKind::from_name(kind).is_some_and(ErrorKind::is_client_side)
}

/// The error counts the server is answerable for.
fn server_side(
    kinds: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    kinds
        .iter()
        .filter(|(k, _)| !client_side(k))
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

/// p99 of a token check above which users wait visibly at app open.
const SLOW_P99_MS: f64 = 1_000.0;
const STRAIN_P99_MS: f64 = 250.0;

pub fn assess(r: &RunResult) -> Finding {
    let mut finding = Finding {
        number: 1,
        title: "Token-fetch storm on app open and reconnect",
        claim: CLAIM,
        verdict: Verdict::NotExercised,
        summary: String::new(),
        evidence: Vec::new(),
        charts: charts(r),
        on_latency: true,
    };
    let Some(check) = r.operations.get(op::TOKEN_CHECK).filter(|o| o.count > 0) else {
        finding.summary = "the scenario made no token checks (no app opens or reconnects).".into();
        return finding;
    };
    // The offered rate: open-model arrivals as scheduled (a device still busy signing in or
    // queued when its open arrives handles it later), else the opens devices handled.
    let opens_per_min = match peak_per_minute(r, counter::ARRIVALS) {
        0 => peak_per_minute(r, counter::APP_OPENS),
        arrivals => arrivals,
    };
    let (pool_wait, pool_queue) = pool_peaks(r);
    let max_conn = db_max_connections(r);
    let peak_conn = max_of(&per_sample(r, |s| s.db_connections_total() as f64)) as u32;
    let pool_timeout_ms = r
        .plan
        .as_ref()
        .map_or(10_000.0, |p| p.rest_pool_timeout.as_millis() as f64);

    let server_errors = server_side(&check.errors_by_kind);
    let failed: u64 = server_errors.values().sum();
    let fail_rate = failed as f64 / check.count as f64;
    let mut clauses = Clauses::default();
    if fail_rate >= 0.01 {
        clauses.hard(format!(
            "token checks failed at {} ({})",
            pct(fail_rate),
            top_kinds(&server_errors)
        ));
    } else if failed > 0 {
        clauses.soft(format!(
            "{} token checks failed ({})",
            count(failed),
            top_kinds(&server_errors)
        ));
    }
    if pool_wait >= pool_timeout_ms {
        clauses.hard(format!("the pool queue grew past {}", ms(pool_timeout_ms)));
    } else if pool_queue > 0 {
        clauses.soft(format!(
            "up to {} requests queued for a pooled connection (longest wait {})",
            count(pool_queue.into()),
            ms(pool_wait)
        ));
    }
    if let Some(max) = max_conn.filter(|m| *m > 0) {
        if peak_conn >= max {
            clauses.hard(format!(
                "DB connections reached the limit ({peak_conn} of {max})"
            ));
        } else if f64::from(peak_conn) >= 0.8 * f64::from(max) {
            clauses.soft(format!("DB connections reached {peak_conn} of {max}"));
        }
    }
    if let Some(refresh) = r.operations.get(op::TOKEN_REFRESH).filter(|o| o.count > 0) {
        let auth_errors = server_side(&refresh.errors_by_kind);
        let auth_failed: u64 = auth_errors.values().sum();
        if auth_failed as f64 >= 0.01 * refresh.count as f64 {
            clauses.hard(format!(
                "session refreshes failed at {} ({})",
                pct(auth_failed as f64 / refresh.count as f64),
                top_kinds(&auth_errors)
            ));
        } else if refresh.p99_ms >= SLOW_P99_MS {
            clauses.soft(format!("session refresh p99 was {}", ms(refresh.p99_ms)));
        }
    }
    if check.p99_ms >= SLOW_P99_MS {
        clauses.hard(format!("token check p99 was {}", ms(check.p99_ms)));
    } else if check.p99_ms >= STRAIN_P99_MS {
        clauses.soft(format!("token check p99 was {}", ms(check.p99_ms)));
    }

    let scale = format!("at {} opens/min", rate(opens_per_min as f64));
    (finding.verdict, finding.summary) = clauses.verdict(&scale, " ", || {
        let conn = match max_conn {
            Some(max) if !r.probes.samples.is_empty() => {
                format!(", and DB connections peaked at {peak_conn} of {max}")
            }
            _ => String::new(),
        };
        format!(
            "{scale} token checks stayed at p99 {} with no errors{conn}.",
            ms(check.p99_ms)
        )
    });
    finding.evidence = evidence(
        r,
        check,
        opens_per_min,
        peak_conn,
        max_conn,
        pool_wait,
        pool_queue,
    );
    finding
}

fn evidence(
    r: &RunResult,
    check: &crate::result::OperationResult,
    opens_per_min: u64,
    peak_conn: u32,
    max_conn: Option<u32>,
    pool_wait: f64,
    pool_queue: u32,
) -> Vec<String> {
    let mut out = vec![
        format!(
            "App opens: {} in total, {} in the busiest minute.",
            count(r.counters.get(counter::APP_OPENS).copied().unwrap_or(0)),
            count(opens_per_min)
        ),
        format!(
            "Token checks: {} made, {} failed ({}); p50 {}, p99 {}, max {}.",
            count(check.count),
            count(check.errors),
            pct(check.error_rate()),
            ms(check.p50_ms),
            ms(check.p99_ms),
            ms(check.max_ms)
        ),
    ];
    let client_side: u64 = check
        .errors_by_kind
        .iter()
        .filter(|(k, _)| client_side(k))
        .map(|(_, n)| n)
        .sum();
    if client_side > 0 {
        out.push(format!(
            "{} of the failures were on the devices' side (simulated outages, the generator's own limits) and are not counted against the server.",
            count(client_side)
        ));
    }
    for name in [op::SIGN_IN, op::TOKEN_REFRESH] {
        if let Some(o) = r.operations.get(name).filter(|o| o.count > 0) {
            let what = if name == op::TOKEN_REFRESH {
                "Session refreshes (GoTrue refresh-token grants: expired tokens at open, and before expiry)"
            } else {
                "Password sign-ins"
            };
            let failed = if o.errors > 0 {
                format!(" ({})", top_kinds(&o.errors_by_kind))
            } else {
                String::new()
            };
            out.push(format!(
                "{what}: {} made, {} failed{failed}; p50 {}, p99 {}.",
                count(o.count),
                count(o.errors),
                ms(o.p50_ms),
                ms(o.p99_ms)
            ));
        }
    }
    if r.probes.samples.is_empty() {
        out.push(
            "No server probes were taken, so DB connections and the pool queue are not shown."
                .into(),
        );
    } else {
        let max = max_conn.map_or("unknown".into(), |m| m.to_string());
        out.push(format!(
            "DB connections peaked at {peak_conn} (max_connections {max})."
        ));
        out.push(if has_pool_figures(r) {
            format!(
                "Pool queue peaked at {} waiting; the longest wait was {}.",
                count(pool_queue.into()),
                ms(pool_wait)
            )
        } else {
            "The server reported no connection-pool figures, so the pool queue is not shown.".into()
        });
    }
    out
}

fn charts(r: &RunResult) -> Vec<Chart> {
    let mut opens = Chart::new(
        "App opens, token checks, failures and session refreshes per second",
        "per second",
    )
    .line(Line::new(
        "app opens/s",
        per_second(r, |p| p.counter(counter::APP_OPENS) as f64),
    ))
    .line(Line::new(
        "token checks/s",
        op_rate(r, op::TOKEN_CHECK, |o| o.count as f64),
    ))
    .line(Line::new(
        "failed checks/s",
        op_rate(r, op::TOKEN_CHECK, |o| o.errors as f64),
    ));
    if r.operations
        .get(op::TOKEN_REFRESH)
        .is_some_and(|o| o.count > 0)
    {
        opens = opens.line(Line::new(
            "session refreshes/s",
            op_rate(r, op::TOKEN_REFRESH, |o| o.count as f64),
        ));
    }
    let latency = Chart::new("Token check latency", "ms")
        .line(Line::new(
            "p50",
            op_per_second(r, op::TOKEN_CHECK, |o| o.p50_ms),
        ))
        .line(Line::new(
            "p99",
            op_per_second(r, op::TOKEN_CHECK, |o| o.p99_ms),
        ));
    // One quantity per chart: a queue of tens of thousands would flatten the connections
    // (tens) against max_connections onto the zero line.
    let mut conns = Chart::new("DB connections against the limits", "connections").line(Line::new(
        "DB connections",
        per_sample(r, |s| s.db_connections_total() as f64),
    ));
    if let Some(max) = db_max_connections(r) {
        conns = conns.limit(f64::from(max), "max_connections");
    }
    if let Some(plan) = &r.plan {
        conns = conns.limit(f64::from(plan.rest_pool_size), "REST pool size");
    }
    let queue = Chart::new("Requests waiting for a pooled connection", "requests").line(Line::new(
        "waiting",
        per_sample(r, |s| {
            s.pools.values().map(|p| p.waiting).sum::<u32>() as f64
        }),
    ));
    vec![opens, latency, conns, queue]
}
