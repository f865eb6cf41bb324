//! Risk 3: row locks while a user bulk-imports thousands of transactions.

use std::collections::BTreeSet;

use syncstorm_metrics::{counter, gauge, op};

use super::clauses::Clauses;
use super::{Finding, Verdict};
use crate::report::charts::{Chart, Line};
use crate::report::html::{count, ms, pct};
use crate::report::series::{max_of, op_per_second, op_where, per_sample, quantile_ms};
use crate::result::RunResult;

const CLAIM: &str = "When a user uploads thousands of transactions at once, row-level locking can slow other users' sync requests.";
const LOCK_EVENTS: [&str; 2] = ["Lock:transactionid", "Lock:tuple"];

pub fn assess(r: &RunResult) -> Finding {
    let mut finding = Finding {
        number: 3,
        title: "Row locks during bulk imports",
        claim: CLAIM,
        verdict: Verdict::NotExercised,
        summary: String::new(),
        evidence: Vec::new(),
        charts: charts(r),
        on_latency: false,
    };
    let bulk_rows = r.counters.get(counter::BULK_ROWS).copied().unwrap_or(0);
    let scheduled_rows = scheduled_import_rows(r);
    let marked = r
        .timeseries
        .points
        .iter()
        .any(|p| p.gauge(gauge::BULK_IMPORTS_RUNNING) > 0);
    if bulk_rows == 0 && !marked && scheduled_rows.is_none() {
        finding.summary = "the scenario ran no bulk imports.".into();
        return finding;
    }
    // Import windows: marked by the swarm's gauge, else the seconds with row-lock activity.
    let lock_seconds: BTreeSet<u64> = r
        .probes
        .samples
        .iter()
        .filter(|s| lock_waits(s) > 0 || s.blocked_sessions > 0)
        .map(|s| s.t.max(0.0) as u64)
        .collect();
    let importing = |p: &syncstorm_metrics::SeriesPoint| {
        if marked {
            p.gauge(gauge::BULK_IMPORTS_RUNNING) > 0
        } else {
            lock_seconds.contains(&p.t)
        }
    };
    let subject = if marked { "ordinary pushes" } else { "pushes" };
    let during_what = if marked {
        "during imports"
    } else {
        "in seconds with row-lock waits"
    };
    let (during, during_n, during_err) = op_where(r, op::PUSH, importing);
    let (outside, _, _) = op_where(r, op::PUSH, |p| !importing(p));
    let (p99_in, p99_out) = (quantile_ms(&during, 0.99), quantile_ms(&outside, 0.99));
    let slowdown = if p99_out > 0.0 { p99_in / p99_out } else { 0.0 };
    let lock_waits = max_of(&per_sample(r, |s| lock_waits(s) as f64)) as u64;
    let blocked = max_of(&per_sample(r, |s| f64::from(s.blocked_sessions))) as u64;
    let err_rate = if during_n > 0 {
        during_err as f64 / during_n as f64
    } else {
        0.0
    };

    // The seed asks whether one user's bulk upload slows *other users*: only a lock wait of
    // one user's request on another user's confirms that. Waits inside the importer's own
    // rows, and slowdowns without locks (pool or CPU contention), are named as what they are.
    let cross = max_of(&per_sample(r, |s| f64::from(s.lock_waits_cross_user))) as u64;
    let same = max_of(&per_sample(r, |s| f64::from(s.lock_waits_same_user))) as u64;
    let pool_waiting = max_of(&per_sample(r, |s| {
        s.pools.values().map(|p| p.waiting).sum::<u32>() as f64
    })) as u64;
    let mut clauses = Clauses::default();
    let slow = format!(
        "{subject} slowed from p99 {} to {} ({slowdown:.1}×) {during_what}",
        ms(p99_out),
        ms(p99_in)
    );
    let slowed = slowdown >= 1.5 || err_rate >= 0.01;
    if cross > 0 {
        if slowed {
            clauses.hard(slow.clone());
        }
        clauses.hard(format!(
            "up to {cross} requests of other users waited on an importer's row locks"
        ));
    } else if slowed {
        let cause = if pool_waiting > 0 {
            format!(
                "without any lock wait between users: contention for the pool (up to {} requests waiting for a connection) or the CPU, not row locks",
                count(pool_waiting)
            )
        } else {
            "without any lock wait between users: contention for the CPU or the disk, not row locks"
                .into()
        };
        clauses.soft(format!("{slow}, {cause}"));
    }
    if err_rate >= 0.01 {
        clauses.soft(format!(
            "{} of {subject} failed {during_what}",
            pct(err_rate)
        ));
    }
    if same > 0 {
        clauses.soft(format!(
            "{same} lock waits were within one user's own rows (its sync-token row), which slow only that user"
        ));
    }
    if cross == 0 && (blocked > 0 || lock_waits > 0) && same == 0 {
        clauses.soft(format!(
            "up to {blocked} sessions were blocked and {lock_waits} waited on row locks that were not between users' requests"
        ));
    }
    finding.on_latency = cross == 0;
    let scale = match (bulk_rows, scheduled_rows) {
        (0, Some(rows)) => format!("with bulk imports of {} rows each", count(rows)),
        _ => format!("while bulk imports wrote {} rows", count(bulk_rows)),
    };
    (finding.verdict, finding.summary) = clauses.verdict(&scale, ", ", || {
        if !marked && r.probes.samples.is_empty() {
            let p99 = r.operations.get(op::PUSH).map_or(0.0, |o| o.p99_ms);
            format!(
                "{scale}, pushes kept p99 {} over the run; without server probes, lock waits could not be seen.",
                ms(p99)
            )
        } else if during_n == 0 {
            format!("{scale}, no session waited on a row lock and no push overlapped a lock wait.")
        } else {
            format!(
                "{scale}, {subject} kept p99 {} {during_what} (vs {} otherwise) and no session was blocked.",
                ms(p99_in),
                ms(p99_out)
            )
        }
    });
    finding.evidence = vec![
        format!(
            "Pushes {during_what}: {} (p99 {}); otherwise: p99 {}.",
            count(during_n),
            ms(p99_in),
            ms(p99_out)
        ),
        format!(
            "Peak lock waits (Lock:transactionid + Lock:tuple): {lock_waits}; peak blocked sessions: {blocked}."
        ),
        format!(
            "Lock waits by whose requests they were (the stack tags each request with its user): \
             between different users {cross}, within one user's own rows {same}."
        ),
    ];
    if r.target.kind == "supabase" {
        finding.evidence.push(
            "Against a real Supabase, requests are not tagged with their user, so lock waits cannot be told apart by user and risk 3 is never confirmed from them.".into(),
        );
    }
    if !marked {
        finding.evidence.push(
            "The run did not mark import windows (gauge bulk_imports_running), so pushes are compared between seconds with and without row-lock waits, importers' own pushes included.".into(),
        );
    }
    if let Some(window) = import_window(r) {
        finding.evidence.push(window);
    }
    if let Some(b) = r.operations.get(op::BULK_PUSH) {
        finding.evidence.push(format!(
            "Import batches: {} sent, {} failed; p99 {}.",
            count(b.count),
            count(b.errors),
            ms(b.p99_ms)
        ));
    }
    if r.probes.samples.is_empty() {
        finding
            .evidence
            .push("No server probes were taken, so lock waits are not shown.".into());
    }
    finding
}

/// "Imports ran from 54 s to 72 s (18 s with an import running)."
fn import_window(r: &RunResult) -> Option<String> {
    let seconds: Vec<u64> = r
        .timeseries
        .points
        .iter()
        .filter(|p| p.gauge(gauge::BULK_IMPORTS_RUNNING) > 0)
        .map(|p| p.t)
        .collect();
    let (first, last) = (seconds.first()?, seconds.last()?);
    Some(format!(
        "Imports ran from {first} s to {} s ({} s with an import running).",
        last + 1,
        seconds.len()
    ))
}

/// Rows per import when the scenario as run schedules bulk imports (`behaviour.bulk_import`).
fn scheduled_import_rows(r: &RunResult) -> Option<u64> {
    let spec = r.scenario.as_run.pointer("/behaviour/bulk_import")?;
    let fraction = spec.get("fraction")?.as_f64()?;
    let rows = spec.get("rows")?.as_u64()?;
    (fraction > 0.0 && rows > 0).then_some(rows)
}

fn lock_waits(s: &crate::result::ProbeSample) -> u32 {
    LOCK_EVENTS
        .iter()
        .map(|e| s.wait_events.get(*e).copied().unwrap_or(0))
        .sum()
}

fn charts(r: &RunResult) -> Vec<Chart> {
    let mut locks = Chart::new("Lock waits and blocked sessions", "sessions");
    for event in LOCK_EVENTS {
        locks = locks.line(Line::new(
            event,
            per_sample(r, |s| {
                f64::from(s.wait_events.get(event).copied().unwrap_or(0))
            }),
        ));
    }
    locks = locks
        .line(Line::new(
            "blocked sessions",
            per_sample(r, |s| f64::from(s.blocked_sessions)),
        ))
        .line(Line::new(
            "waits between users",
            per_sample(r, |s| f64::from(s.lock_waits_cross_user)),
        ))
        .line(Line::new(
            "waits within one user",
            per_sample(r, |s| f64::from(s.lock_waits_same_user)),
        ));
    let push = Chart::new("Push latency", "ms")
        .line(Line::new(
            "push p50",
            op_per_second(r, op::PUSH, |o| o.p50_ms),
        ))
        .line(Line::new(
            "push p99",
            op_per_second(r, op::PUSH, |o| o.p99_ms),
        ))
        .line(Line::new(
            "bulk batch p99",
            op_per_second(r, op::BULK_PUSH, |o| o.p99_ms),
        ));
    vec![locks, push]
}
