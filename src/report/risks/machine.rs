//! Was the test machine itself the bottleneck while a verdict's evidence was taken? A second
//! counts as saturated when the machine's CPU was at least [`MACHINE_BUSY_PCT`] busy (from the
//! result's `resources`), or the generator was (its CPU near all cores, or its event loop
//! lagging, from `generator`). A latency- or error-based verdict whose evidence window was
//! saturated for at least [`INCONCLUSIVE_SHARE`] of its seconds is inconclusive.

use std::collections::BTreeSet;

use syncstorm_metrics::{gauge, op};

use super::{Finding, Verdict};
use crate::result::RunResult;

/// Machine CPU share (percent of all cores) that leaves nothing for anyone.
pub const MACHINE_BUSY_PCT: f64 = 95.0;
/// Generator CPU share of all cores, and event-loop lag, that distort its timing.
const GENERATOR_BUSY_SHARE: f64 = 0.90;
const GENERATOR_LAG_MS: f64 = 100.0;
/// Share of the evidence window that, saturated, makes the evidence the machine's.
pub const INCONCLUSIVE_SHARE: f64 = 0.2;

/// Seconds in which the machine or the generator was saturated.
pub fn saturated_seconds(r: &RunResult) -> BTreeSet<u64> {
    let mut out: BTreeSet<u64> = r
        .resources
        .saturated_seconds(MACHINE_BUSY_PCT)
        .into_iter()
        .collect();
    let capacity = f64::from(r.machine.cores.max(1)) * 100.0;
    let mut generator_cpu: std::collections::BTreeMap<u64, f64> = Default::default();
    for s in &r.generator {
        *generator_cpu.entry(s.t).or_default() += s.cpu_pct;
        if s.loop_lag_ms >= GENERATOR_LAG_MS {
            out.insert(s.t);
        }
    }
    out.extend(
        generator_cpu
            .into_iter()
            .filter(|(_, cpu)| *cpu >= GENERATOR_BUSY_SHARE * capacity)
            .map(|(t, _)| t),
    );
    out
}

/// The seconds a risk's evidence comes from.
fn evidence_window(r: &RunResult, risk: u8) -> BTreeSet<u64> {
    let points = r.timeseries.points.iter();
    let window: BTreeSet<u64> = match risk {
        1 => {
            let queued: BTreeSet<u64> = r
                .probes
                .samples
                .iter()
                .filter(|s| s.pools.values().any(|p| p.waiting > 0))
                .map(|s| s.t.max(0.0) as u64)
                .collect();
            points
                .filter(|p| {
                    queued.contains(&p.t)
                        || p.ops.get(op::TOKEN_CHECK).is_some_and(|o| o.errors > 0)
                })
                .map(|p| p.t)
                .collect()
        }
        2 => points
            .filter(|p| {
                p.ops
                    .get(op::PULSE_DELIVERY)
                    .is_some_and(|o| o.p99_ms >= 1_000.0)
            })
            .map(|p| p.t)
            .collect(),
        3 => points
            .filter(|p| p.gauge(gauge::BULK_IMPORTS_RUNNING) > 0)
            .map(|p| p.t)
            .collect(),
        _ => BTreeSet::new(),
    };
    if window.is_empty() {
        // No narrower window: the whole load.
        return r.timeseries.points.iter().map(|p| p.t).collect();
    }
    window
}

/// Turns `f` inconclusive when its latency- or error-based verdict rests on saturated seconds.
pub fn qualify(r: &RunResult, f: &mut Finding) {
    if !f.on_latency || !matches!(f.verdict, Verdict::Confirmed | Verdict::Strained) {
        return;
    }
    let window = evidence_window(r, f.number);
    if window.is_empty() {
        return;
    }
    let saturated = saturated_seconds(r);
    let busy = window.intersection(&saturated).count();
    if (busy as f64) < INCONCLUSIVE_SHARE * window.len() as f64 {
        return;
    }
    f.evidence.push(format!(
        "The verdict would have been \u{201c}{}\u{201d}, but in {busy} of the {} seconds its \
         evidence comes from, the test machine was saturated (machine CPU at least {MACHINE_BUSY_PCT:.0} % \
         or the generator busy or lagging): the figures may be this machine's limit, not Supabase's.",
        f.verdict.words(),
        window.len()
    ));
    f.verdict = Verdict::Inconclusive;
    f.summary = format!(
        "{} The test machine was saturated in {busy} of those {} seconds, so this may be its own limit.",
        f.summary,
        window.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceSample;
    use crate::result::GeneratorSample;

    fn finding(verdict: Verdict, on_latency: bool) -> Finding {
        let mut f = super::super::assess(&RunResult::default()).remove(0);
        f.verdict = verdict;
        f.on_latency = on_latency;
        f.summary = "at 100k opens/min 30 % of token checks failed.".into();
        f
    }

    /// A 10-second load; the machine is busy in `busy` seconds.
    fn run(busy: &[u64]) -> RunResult {
        let mut r = RunResult::default();
        r.machine.cores = 2;
        r.timeseries.points = (0..10)
            .map(|t| syncstorm_metrics::SeriesPoint {
                t,
                ..Default::default()
            })
            .collect();
        r.resources.samples = (0..10)
            .map(|t| ResourceSample {
                t: t as f64 + 0.5,
                machine_cpu_pct: if busy.contains(&t) { 99.0 } else { 40.0 },
                ..Default::default()
            })
            .collect();
        r
    }

    #[test]
    fn latency_evidence_on_a_saturated_machine_is_inconclusive() {
        let mut f = finding(Verdict::Confirmed, true);
        qualify(&run(&[2, 3, 4]), &mut f);
        assert_eq!(f.verdict, Verdict::Inconclusive);
        assert!(
            f.evidence
                .last()
                .unwrap()
                .contains("in 3 of the 10 seconds")
        );
        assert!(f.summary.contains("may be its own limit"));
    }

    #[test]
    fn a_quiet_machine_or_a_hard_limit_keeps_the_verdict() {
        let mut f = finding(Verdict::Confirmed, true);
        qualify(&run(&[5]), &mut f);
        assert_eq!(
            f.verdict,
            Verdict::Confirmed,
            "1 of 10 seconds is under the share"
        );
        let mut hard = finding(Verdict::Confirmed, false);
        qualify(&run(&[0, 1, 2, 3, 4, 5]), &mut hard);
        assert_eq!(
            hard.verdict,
            Verdict::Confirmed,
            "a cap reached is no latency"
        );
    }

    #[test]
    fn a_lagging_generator_counts_as_saturated() {
        let mut r = run(&[]);
        r.generator = (0..5)
            .map(|t| GeneratorSample {
                t,
                worker: "worker-1".into(),
                cpu_pct: 10.0,
                loop_lag_ms: 250.0,
                rss_bytes: 0,
            })
            .collect();
        let mut f = finding(Verdict::Strained, true);
        qualify(&r, &mut f);
        assert_eq!(f.verdict, Verdict::Inconclusive);
    }
}
