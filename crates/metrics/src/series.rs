//! Per-second time series, built by merging interval snapshots from many recorders.
//!
//! Every point keeps its histograms (encoded), so series from several shards merge exactly
//! and a chart of p99 over time is as exact as the run-wide p99.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::histogram::{self, LatencySummary};
use crate::recorder::{OpSnapshot, Snapshot};

/// One operation during one second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpPoint {
    /// Finished operations (successes + errors).
    pub count: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The second's latency histogram (base64 V2-deflate), for exact merges.
    pub hist: String,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl OpPoint {
    fn of(op: &OpSnapshot) -> Result<Self, MetricsError> {
        let s: LatencySummary = op.summary();
        Ok(OpPoint {
            count: op.count(),
            errors: op.error_count(),
            p50_ms: s.p50_ms,
            p90_ms: s.p90_ms,
            p99_ms: s.p99_ms,
            max_ms: s.max_ms,
            hist: histogram::encode(&op.latency)?,
            errors_by_kind: op.errors.clone(),
        })
    }

    /// The operation snapshot this point was made from.
    pub fn to_snapshot(&self) -> Result<OpSnapshot, MetricsError> {
        Ok(OpSnapshot {
            latency: histogram::decode(&self.hist)?,
            errors: self.errors_by_kind.clone(),
        })
    }
}

/// Everything recorded during one second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Seconds since the run started (the second `[t, t+1)`).
    pub t: u64,
    #[serde(default)]
    pub ops: BTreeMap<String, OpPoint>,
    /// Counter increments during this second.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Gauge levels at the end of this second.
    #[serde(default)]
    pub gauges: BTreeMap<String, i64>,
}

impl SeriesPoint {
    fn of(t: u64, snap: &Snapshot) -> Result<Self, MetricsError> {
        let mut ops = BTreeMap::new();
        for (name, op) in &snap.ops {
            ops.insert(name.clone(), OpPoint::of(op)?);
        }
        Ok(SeriesPoint {
            t,
            ops,
            counters: snap.counters.clone(),
            gauges: snap.gauges.clone(),
        })
    }

    fn to_snapshot(&self) -> Result<Snapshot, MetricsError> {
        let mut ops = BTreeMap::new();
        for (name, op) in &self.ops {
            ops.insert(name.clone(), op.to_snapshot()?);
        }
        Ok(Snapshot {
            ops,
            counters: self.counters.clone(),
            gauges: self.gauges.clone(),
        })
    }

    /// Operations finished in this second, over all operation names.
    pub fn throughput(&self) -> u64 {
        self.ops.values().map(|o| o.count).sum()
    }

    pub fn errors(&self) -> u64 {
        self.ops.values().map(|o| o.errors).sum()
    }

    pub fn gauge(&self, name: &str) -> i64 {
        self.gauges.get(name).copied().unwrap_or(0)
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// A run's per-second series, ordered by `t`, one point per second that saw any report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    pub interval_s: u64,
    pub points: Vec<SeriesPoint>,
}

impl TimeSeries {
    /// Merges another shard's series into this one, shifting it by `offset_s` seconds (its
    /// start relative to ours). Points of the same second merge exactly.
    pub fn merge(&mut self, other: &TimeSeries, offset_s: u64) -> Result<(), MetricsError> {
        *self = TimeSeries::merge_many(&[(&*self, 0), (other, offset_s)])?;
        Ok(())
    }

    /// Merges many series at once, each shifted by its offset in seconds; every histogram is
    /// decoded and encoded once, however many series there are.
    pub fn merge_many(parts: &[(&TimeSeries, u64)]) -> Result<TimeSeries, MetricsError> {
        let mut by_t: BTreeMap<u64, Snapshot> = BTreeMap::new();
        for (series, offset_s) in parts {
            for p in &series.points {
                let snap = p.to_snapshot()?;
                by_t.entry(p.t + offset_s).or_default().merge(&snap)?;
            }
        }
        let points = by_t
            .iter()
            .map(|(t, s)| SeriesPoint::of(*t, s))
            .collect::<Result<_, _>>()?;
        let interval_s = parts
            .iter()
            .map(|(s, _)| s.interval_s)
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(TimeSeries { interval_s, points })
    }

    /// The highest level a gauge reached.
    pub fn peak(&self, gauge: &str) -> i64 {
        self.points
            .iter()
            .map(|p| p.gauge(gauge))
            .max()
            .unwrap_or(0)
    }

    /// Seconds covered, from the first to the last point.
    pub fn span_s(&self) -> u64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => b.t - a.t + 1,
            _ => 0,
        }
    }
}

#[derive(Debug, Default)]
struct PendingSecond {
    snap: Snapshot,
    gauges_by_source: BTreeMap<u32, BTreeMap<String, i64>>,
}

/// Collects snapshots from many sources (tasks, threads, worker processes) into the run
/// total and the per-second series. Call [`Aggregator::seal_before`] now and then so only a
/// few recent seconds stay as full histograms in memory.
#[derive(Debug, Default)]
pub struct Aggregator {
    total: Snapshot,
    pending: BTreeMap<u64, PendingSecond>,
    sealed: Vec<SeriesPoint>,
    /// Last gauge levels each source reported: a source silent for a second keeps its level.
    carried: BTreeMap<u32, BTreeMap<String, i64>>,
    next_unsealed: u64,
    late_snapshots: u64,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the snapshot `source` took for the second `second` (seconds since run start).
    /// A snapshot for a second already sealed still counts in the total, not the series.
    pub fn add(&mut self, second: u64, source: u32, snap: Snapshot) -> Result<(), MetricsError> {
        let gauges = snap.gauges.clone();
        let ops_and_counters = Snapshot {
            gauges: BTreeMap::new(),
            ..snap
        };
        self.total.merge(&ops_and_counters)?;
        if second < self.next_unsealed {
            self.late_snapshots += 1;
            return Ok(());
        }
        let pending = self.pending.entry(second).or_default();
        pending.snap.merge(&ops_and_counters)?;
        pending.gauges_by_source.insert(source, gauges);
        Ok(())
    }

    /// Turns every second before `second` into a series point.
    pub fn seal_before(&mut self, second: u64) -> Result<(), MetricsError> {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() >= second {
                break;
            }
            let (t, mut pending) = entry.remove_entry();
            for (source, gauges) in std::mem::take(&mut pending.gauges_by_source) {
                self.carried.insert(source, gauges);
            }
            pending.snap.gauges = self.summed_gauges();
            self.sealed.push(SeriesPoint::of(t, &pending.snap)?);
        }
        self.next_unsealed = self.next_unsealed.max(second);
        Ok(())
    }

    /// Snapshots that arrived after their second was sealed (counted in the total only).
    pub fn late_snapshots(&self) -> u64 {
        self.late_snapshots
    }

    /// The run total so far (gauges hold the latest levels).
    pub fn total(&self) -> Snapshot {
        Snapshot {
            gauges: self.summed_gauges(),
            ..self.total.clone()
        }
    }

    /// Seals everything and returns the run total and the series.
    pub fn finish(mut self) -> Result<(Snapshot, TimeSeries), MetricsError> {
        self.seal_before(u64::MAX)?;
        let total = self.total();
        let series = TimeSeries {
            interval_s: 1,
            points: self.sealed,
        };
        Ok((total, series))
    }

    fn summed_gauges(&self) -> BTreeMap<String, i64> {
        let mut sum = BTreeMap::new();
        for gauges in self.carried.values() {
            for (name, level) in gauges {
                *sum.entry(name.clone()).or_default() += level;
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;

    fn snap(op_micros: &[u64], errors: u64, sockets: i64) -> Snapshot {
        let mut r = Recorder::new();
        for m in op_micros {
            r.record("push", *m);
        }
        for _ in 0..errors {
            r.record_error("push", "timeout");
        }
        r.gauge_add("sockets_open", sockets);
        r.take()
    }

    #[test]
    fn seconds_from_many_sources_sum_and_gauges_carry_over() {
        let mut agg = Aggregator::new();
        agg.add(0, 1, snap(&[1_000, 2_000], 0, 10)).unwrap();
        agg.add(0, 2, snap(&[3_000], 1, 5)).unwrap();
        agg.add(1, 1, snap(&[4_000], 0, 12)).unwrap(); // source 2 silent: keeps 5
        let (total, series) = agg.finish().unwrap();
        assert_eq!(series.points.len(), 2);
        assert_eq!(series.points[0].throughput(), 4);
        assert_eq!(series.points[0].errors(), 1);
        assert_eq!(series.points[0].gauge("sockets_open"), 15);
        assert_eq!(series.points[1].gauge("sockets_open"), 17);
        assert_eq!(series.peak("sockets_open"), 17);
        assert_eq!(total.ops["push"].count(), 5);
        assert_eq!(total.gauge("sockets_open"), 17);
    }

    #[test]
    fn late_snapshots_count_in_the_total_only() {
        let mut agg = Aggregator::new();
        agg.add(0, 1, snap(&[1_000], 0, 1)).unwrap();
        agg.seal_before(1).unwrap();
        agg.add(0, 2, snap(&[2_000], 0, 1)).unwrap();
        assert_eq!(agg.late_snapshots(), 1);
        let (total, series) = agg.finish().unwrap();
        assert_eq!(total.ops["push"].count(), 2);
        assert_eq!(series.points[0].throughput(), 1);
    }

    #[test]
    fn shard_series_merge_like_one_series() {
        let (mut whole, mut a, mut b) = (Aggregator::new(), Aggregator::new(), Aggregator::new());
        for t in 0..5u64 {
            let xs: Vec<u64> = (0..50).map(|i| (i * 131 + t * 17) % 5_000 + 1).collect();
            let (left, right) = xs.split_at(20);
            whole.add(t + 2, 1, snap(left, 0, 3)).unwrap();
            whole.add(t + 2, 2, snap(right, 1, 4)).unwrap();
            a.add(t + 2, 1, snap(left, 0, 3)).unwrap();
            b.add(t, 1, snap(right, 1, 4)).unwrap(); // shard b started 2 s later
        }
        let (_, whole) = whole.finish().unwrap();
        let (_, mut merged) = a.finish().unwrap();
        let (_, b) = b.finish().unwrap();
        merged.merge(&b, 2).unwrap();
        assert_eq!(merged, whole);
    }
}
