//! Reading the result's time series and probes as chart lines and evidence figures.

use hdrhistogram::Histogram;
use syncstorm_metrics::{OpPoint, SeriesPoint, histogram};

use crate::result::{ProbeSample, RunResult};

/// (second, value) for every point of the client-side series.
pub fn per_second(r: &RunResult, value: impl Fn(&SeriesPoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .points
        .iter()
        .map(|p| (p.t as f64, value(p)))
        .collect()
}

/// A latency of `op` for every second of the run: NaN where nothing finished, which the chart
/// draws as a gap — a line joined across such seconds would show latencies nobody measured.
pub fn op_per_second(r: &RunResult, op: &str, value: impl Fn(&OpPoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .points
        .iter()
        .map(|p| (p.t as f64, p.ops.get(op).map_or(f64::NAN, &value)))
        .collect()
}

/// A count of `op` (finished, failed) for every second of the run: zero where none finished.
pub fn op_rate(r: &RunResult, op: &str, value: impl Fn(&OpPoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .points
        .iter()
        .map(|p| (p.t as f64, p.ops.get(op).map_or(0.0, &value)))
        .collect()
}

/// Spans of at least two seconds without a value (NaN), between the first and last value:
/// (first second of the gap, first second after it).
pub fn gaps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let known: Vec<usize> = (0..points.len())
        .filter(|&i| !points[i].1.is_nan())
        .collect();
    known
        .windows(2)
        .filter(|w| points[w[1]].0 - points[w[0]].0 > 2.0)
        .map(|w| (points[w[0]].0 + 1.0, points[w[1]].0))
        .collect()
}

/// (second, value) for every probe sample.
pub fn per_sample(r: &RunResult, value: impl Fn(&ProbeSample) -> f64) -> Vec<(f64, f64)> {
    r.probes.samples.iter().map(|s| (s.t, value(s))).collect()
}

pub fn max_of(points: &[(f64, f64)]) -> f64 {
    points
        .iter()
        .map(|p| p.1)
        .filter(|v| !v.is_nan())
        .fold(0.0, f64::max)
}

/// The busiest 60-second window's sum of a counter (the whole run's, if shorter).
pub fn peak_per_minute(r: &RunResult, counter: &str) -> u64 {
    let points = &r.timeseries.points;
    let mut best = 0u64;
    let mut sum = 0u64;
    let mut start = 0usize;
    for p in points {
        sum += p.counter(counter);
        while p.t - points[start].t >= 60 {
            sum -= points[start].counter(counter);
            start += 1;
        }
        best = best.max(sum);
    }
    best
}

/// One operation's latency histogram over the seconds where `keep` holds, merged exactly,
/// and its error count over the same seconds.
pub fn op_where(
    r: &RunResult,
    op: &str,
    keep: impl Fn(&SeriesPoint) -> bool,
) -> (Histogram<u64>, u64, u64) {
    let mut merged = histogram::new_histogram();
    let (mut count, mut errors) = (0, 0);
    for p in r.timeseries.points.iter().filter(|p| keep(p)) {
        if let Some(o) = p.ops.get(op) {
            if let Ok(h) = histogram::decode(&o.hist) {
                let _ = histogram::add(&mut merged, &h);
            }
            count += o.count;
            errors += o.errors;
        }
    }
    (merged, count, errors)
}

/// p-quantile of a histogram in ms (0 when empty).
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The largest pool wait and queue over all pools and samples.
pub fn pool_peaks(r: &RunResult) -> (f64, u32) {
    let mut wait = 0.0f64;
    let mut queue = 0u32;
    for s in &r.probes.samples {
        for pool in s.pools.values() {
            wait = wait.max(pool.max_wait_ms);
        }
        queue = queue.max(s.pools.values().map(|p| p.waiting).sum());
    }
    (wait, queue)
}

/// `max_connections` of the database: as probed, else the plan's figure.
pub fn db_max_connections(r: &RunResult) -> Option<u32> {
    r.probes
        .db_max_connections
        .or(r.plan.as_ref().map(|p| p.db_max_connections))
}

/// The largest value of a realtime server figure over the probes; `None` if never reported.
pub fn realtime_peak(r: &RunResult, key: &str) -> Option<f64> {
    r.probes
        .samples
        .iter()
        .filter_map(|s| s.realtime.get(key).copied())
        .reduce(f64::max)
}

/// True when any probe sample reported a connection pool.
pub fn has_pool_figures(r: &RunResult) -> bool {
    r.probes.samples.iter().any(|s| !s.pools.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncstorm_metrics::{OpPoint, SeriesPoint};

    /// A run of `seconds` in which `op` finished only in the seconds `done`.
    fn run(seconds: u64, done: &[u64]) -> RunResult {
        let mut r = RunResult::default();
        r.timeseries.points = (0..seconds)
            .map(|t| {
                let mut p = SeriesPoint {
                    t,
                    ..SeriesPoint::default()
                };
                if done.contains(&t) {
                    let op = OpPoint {
                        count: 3,
                        errors: 0,
                        p50_ms: 10.0,
                        p90_ms: 30.0,
                        p99_ms: 40.0,
                        max_ms: 41.0,
                        hist: String::new(),
                        errors_by_kind: Default::default(),
                    };
                    p.ops.insert("token_check".into(), op);
                }
                p
            })
            .collect();
        r
    }

    #[test]
    fn rates_count_zero_and_latencies_break_where_nothing_finished() {
        let r = run(6, &[0, 1, 5]);
        let rate = op_rate(&r, "token_check", |o| o.count as f64);
        assert_eq!(
            rate.iter().map(|p| p.1).collect::<Vec<_>>(),
            [3.0, 3.0, 0.0, 0.0, 0.0, 3.0]
        );
        let p99 = op_per_second(&r, "token_check", |o| o.p99_ms);
        assert_eq!(p99.len(), 6);
        assert!(p99[2].1.is_nan() && p99[4].1.is_nan() && p99[5].1 == 40.0);
        assert_eq!(gaps(&p99), vec![(2.0, 5.0)]);
        assert_eq!(max_of(&p99), 40.0);
    }

    #[test]
    fn a_one_second_hole_is_no_gap_worth_a_caption() {
        let p99 = op_per_second(&run(4, &[0, 2, 3]), "token_check", |o| o.p99_ms);
        assert!(gaps(&p99).is_empty());
    }
}
