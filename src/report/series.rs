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

/// (second, value) for the seconds in which `op` finished at least once.
pub fn op_per_second(r: &RunResult, op: &str, value: impl Fn(&OpPoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .points
        .iter()
        .filter_map(|p| p.ops.get(op).map(|o| (p.t as f64, value(o))))
        .collect()
}

/// (second, value) for every probe sample.
pub fn per_sample(r: &RunResult, value: impl Fn(&ProbeSample) -> f64) -> Vec<(f64, f64)> {
    r.probes.samples.iter().map(|s| (s.t, value(s))).collect()
}

pub fn max_of(points: &[(f64, f64)]) -> f64 {
    points.iter().map(|p| p.1).fold(0.0, f64::max)
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
