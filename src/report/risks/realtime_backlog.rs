//! Risk 2's realtime pipeline on the run's timeline: changes captured, dispatched (matched and
//! authorized), delivered and dropped per second, the changes waiting for dispatch and the WAL
//! the capture trails — and whose limit a delivery delay is: the plan's (the events budget,
//! Supabase's documented authorization throughput) or the embedded server's own.

use crate::report::charts::{Chart, Line};
use crate::report::html::count;
use crate::report::series::{max_of, per_sample, realtime_peak};
use crate::result::RunResult;

/// Supabase's published `postgres_changes` throughput with RLS: deliveries plateau around
/// 3,000–4,000 messages/s whatever the compute (authorization is single-threaded; the docs'
/// throughput estimator, research/supabase-facts.md §3.5). The lower end is the bar.
pub const SUPABASE_RLS_MSGS_PER_S: f64 = 3_000.0;

/// Changes waiting for dispatch beyond which the pipeline is behind: Realtime reads 100
/// changes a poll, so a few polls' worth in flight is normal.
const BEHIND_CHANGES: f64 = 500.0;

/// What the report shows and says of the pipeline.
pub struct Backlog {
    pub charts: Vec<Chart>,
    /// Whose limit the delivery delay is, one sentence; `None` without realtime probes.
    pub attribution: Option<String>,
}

fn level(r: &RunResult, key: &str) -> Vec<(f64, f64)> {
    per_sample(r, |s| s.realtime.get(key).copied().unwrap_or(0.0))
}

/// Per-second rates of a running total sampled by the probes.
fn rate(r: &RunResult, key: &str) -> Vec<(f64, f64)> {
    rate_of(&level(r, key))
}

fn rate_of(totals: &[(f64, f64)]) -> Vec<(f64, f64)> {
    totals
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| (w[1].0, ((w[1].1 - w[0].1) / (w[1].0 - w[0].0)).max(0.0)))
        .collect()
}

/// Seconds of budget drops that make them sustained rather than a passing burst.
pub const SUSTAINED_DROP_SECONDS: usize = 10;

/// Probe seconds in which the events budget dropped messages.
pub fn budget_drop_seconds(r: &RunResult) -> usize {
    rate(r, "events_dropped_budget_total")
        .iter()
        .filter(|(_, per_s)| *per_s > 0.0)
        .count()
}

pub fn assess(r: &RunResult) -> Backlog {
    if realtime_peak(r, "poll_changes_total").is_none() {
        return Backlog {
            charts: Vec::new(),
            attribution: None,
        };
    }
    let dropped = |s: &crate::result::ProbeSample| {
        [
            "events_dropped_budget_total",
            "events_dropped_slow_client_total",
        ]
        .iter()
        .filter_map(|k| s.realtime.get(*k))
        .sum::<f64>()
    };
    let dropped_rate = rate_of(&per_sample(r, dropped));
    // Every stack process dispatches every change for its own subscribers.
    let processes = realtime_peak(r, "processes").unwrap_or(1.0).max(1.0);
    let dispatched: Vec<(f64, f64)> = rate(r, "changes_dispatched_total")
        .into_iter()
        .map(|(t, v)| (t, v / processes))
        .collect();
    // Changes and messages are different quantities: one change becomes a message to each
    // subscribed device of its user, and drops are counted in messages.
    let changes = Chart::new(
        "Realtime pipeline: changes per second",
        "changes per second",
    )
    .line(Line::new(
        "captured from the WAL",
        rate(r, "poll_changes_total"),
    ))
    .line(Line::new(
        "dispatched per stack process (matched, authorized)",
        dispatched,
    ));
    let messages = Chart::new(
        "Realtime pipeline: messages per second",
        "messages per second",
    )
    .line(Line::new(
        "messages delivered",
        rate(r, "events_delivered_total"),
    ))
    .line(Line::new("messages dropped", dropped_rate));
    let backlog = Chart::new("Realtime backlog: changes waiting for dispatch", "changes")
        .line(Line::new("waiting", level(r, "dispatch_queue_changes")));
    let wal = Chart::new("WAL the change capture trails", "MiB").line(Line::new(
        "behind",
        per_sample(r, |s| {
            s.realtime.get("wal_behind_bytes").copied().unwrap_or(0.0) / 1_048_576.0
        }),
    ));
    Backlog {
        attribution: Some(attribution(r)),
        charts: vec![changes, messages, backlog, wal],
    }
}

fn attribution(r: &RunResult) -> String {
    let waiting = realtime_peak(r, "dispatch_queue_changes").unwrap_or(0.0);
    let wal_mib = realtime_peak(r, "wal_behind_bytes").unwrap_or(0.0) / 1_048_576.0;
    let delivered = max_of(&rate(r, "events_delivered_total"));
    let budget = realtime_peak(r, "events_dropped_budget_total").unwrap_or(0.0);
    let budget_part = if budget > 0.0 {
        format!(
            "{} messages were dropped by the plan's events budget (a Supabase limit: it drops \
             them silently). ",
            count(budget as u64)
        )
    } else {
        String::new()
    };
    let delivered_text = count(delivered.round() as u64);
    let pipeline = if waiting <= BEHIND_CHANGES {
        format!(
            "The change capture kept up (at most {} changes waiting, WAL trailed by at most \
             {wal_mib:.1} MiB), so pulse delays are not the embedded server falling behind.",
            count(waiting as u64)
        )
    } else if delivered < SUPABASE_RLS_MSGS_PER_S {
        format!(
            "The embedded server fell behind: up to {} changes waited for dispatch and the \
             capture trailed the WAL by up to {wal_mib:.1} MiB while it delivered at most \
             {delivered_text} messages/s, below the ≈3,000 messages/s Supabase documents for \
             RLS-checked changes — this delay is the test machine's limit, not a Supabase plan's.",
            count(waiting as u64)
        )
    } else {
        format!(
            "Changes queued (up to {}) at {delivered_text} messages/s, the authorization \
             throughput Supabase documents for RLS-checked changes (≈3,000–4,000/s): a delay \
             Supabase would show too.",
            count(waiting as u64)
        )
    };
    format!("{budget_part}{pipeline}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ProbeSample;

    fn run(samples: &[(f64, f64, f64, f64)]) -> RunResult {
        let mut r = RunResult::default();
        r.probes.samples = samples
            .iter()
            .map(|&(t, captured, delivered, waiting)| {
                let mut s = ProbeSample {
                    t,
                    ..ProbeSample::default()
                };
                s.realtime.insert("poll_changes_total".into(), captured);
                s.realtime
                    .insert("events_delivered_total".into(), delivered);
                s.realtime.insert("dispatch_queue_changes".into(), waiting);
                s
            })
            .collect();
        r
    }

    #[test]
    fn a_growing_backlog_below_supabases_throughput_is_the_machines_limit() {
        let r = run(&[
            (1.0, 0.0, 0.0, 0.0),
            (2.0, 900.0, 800.0, 900.0),
            (3.0, 1800.0, 1600.0, 1800.0),
        ]);
        let b = assess(&r);
        let said = b.attribution.unwrap();
        assert!(said.contains("The embedded server fell behind"), "{said}");
        assert!(said.contains("800 messages/s"), "{said}");
        assert_eq!(b.charts.len(), 4);
    }

    #[test]
    fn a_pipeline_that_keeps_up_is_said_to() {
        let r = run(&[(1.0, 0.0, 0.0, 0.0), (2.0, 50.0, 100.0, 3.0)]);
        let said = assess(&r).attribution.unwrap();
        assert!(said.starts_with("The change capture kept up"), "{said}");
    }

    #[test]
    fn a_backlog_at_supabases_throughput_is_supabases_too() {
        let r = run(&[(1.0, 0.0, 0.0, 0.0), (2.0, 4000.0, 3500.0, 900.0)]);
        let said = assess(&r).attribution.unwrap();
        assert!(said.contains("a delay Supabase would show too"), "{said}");
    }

    #[test]
    fn budget_drops_are_counted_by_the_seconds_they_happen_in() {
        let mut r = run(&[
            (1.0, 0.0, 0.0, 0.0),
            (2.0, 1.0, 1.0, 0.0),
            (3.0, 2.0, 2.0, 0.0),
        ]);
        let drops = [0.0, 4.0, 4.0];
        for (s, d) in r.probes.samples.iter_mut().zip(drops) {
            s.realtime.insert("events_dropped_budget_total".into(), d);
        }
        assert_eq!(budget_drop_seconds(&r), 1);
    }

    #[test]
    fn no_realtime_probes_no_section() {
        let b = assess(&RunResult::default());
        assert!(b.charts.is_empty() && b.attribution.is_none());
    }
}
