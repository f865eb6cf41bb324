//! The per-worker recorder and the interval snapshot it hands over.
//!
//! A `Recorder` is owned by one task or worker thread and written without locks. Once per
//! interval its owner calls [`Recorder::take`], which moves the interval's histograms and
//! counters into a [`Snapshot`] and starts afresh; snapshots from many recorders merge exactly.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::MetricsError;
use crate::histogram::{self, LatencySummary};

/// Latencies and failures of one operation during an interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpSnapshot {
    /// Latencies of successful operations, µs.
    #[serde(with = "histogram::serde_base64")]
    pub latency: Histogram<u64>,
    /// Failed operations by error kind (`timeout`, `http_5xx`, …).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

impl Default for OpSnapshot {
    fn default() -> Self {
        OpSnapshot {
            latency: histogram::new_histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl OpSnapshot {
    pub fn ok(&self) -> u64 {
        self.latency.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Finished operations, successful or not.
    pub fn count(&self) -> u64 {
        self.ok() + self.error_count()
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.latency)
    }

    pub fn merge(&mut self, other: &OpSnapshot) -> Result<(), MetricsError> {
        histogram::add(&mut self.latency, &other.latency)?;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        Ok(())
    }
}

/// What one or many recorders saw: per-operation histograms and errors, event counters
/// (increments), and gauges (current levels, e.g. open sockets).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(default)]
    pub ops: BTreeMap<String, OpSnapshot>,
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    #[serde(default)]
    pub gauges: BTreeMap<String, i64>,
}

impl Snapshot {
    /// Exact merge: histograms are added bucket by bucket, counters and gauges summed (each
    /// recorder's gauge is its own share of the level).
    pub fn merge(&mut self, other: &Snapshot) -> Result<(), MetricsError> {
        for (name, op) in &other.ops {
            self.ops.entry(name.clone()).or_default().merge(op)?;
        }
        for (name, n) in &other.counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
        for (name, level) in &other.gauges {
            *self.gauges.entry(name.clone()).or_default() += level;
        }
        Ok(())
    }

    /// Error counts over all operations, by kind.
    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for op in self.ops.values() {
            for (kind, n) in &op.errors {
                *out.entry(kind.clone()).or_default() += n;
            }
        }
        out
    }

    pub fn total_count(&self) -> u64 {
        self.ops.values().map(OpSnapshot::count).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.ops.values().map(OpSnapshot::error_count).sum()
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    pub fn gauge(&self, name: &str) -> i64 {
        self.gauges.get(name).copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.counters.is_empty() && self.gauges.is_empty()
    }
}

/// A lock-free recorder owned by one task or worker thread.
///
/// Operation, counter and gauge names are looked up linearly: a device records a dozen
/// distinct names at most, and a short scan beats hashing at that size.
#[derive(Debug, Default)]
pub struct Recorder {
    ops: Vec<(String, OpSnapshot)>,
    counters: Vec<(String, u64)>,
    gauges: Vec<(String, i64)>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one successful operation that took `micros` µs. In open-model phases the
    /// caller measures from the operation's intended start (coordinated omission).
    pub fn record(&mut self, op: &str, micros: u64) {
        histogram::record_micros(&mut self.op(op).latency, micros);
    }

    pub fn record_duration(&mut self, op: &str, took: Duration) {
        self.record(op, took.as_micros().min(u64::MAX as u128) as u64);
    }

    /// Records a success measured from `intended_start` (which may be earlier than the
    /// moment the work really began, when the generator fell behind).
    pub fn record_since(&mut self, op: &str, intended_start: Instant) {
        self.record_duration(op, intended_start.elapsed());
    }

    /// Records one failed operation; `kind` is a small fixed error kind, never a message.
    pub fn record_error(&mut self, op: &str, kind: &'static str) {
        let errors = &mut self.op(op).errors;
        match errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                errors.insert(kind.to_owned(), 1);
            }
        }
    }

    /// Adds `n` to an event counter (e.g. `app_opens`, `ws_rejected`).
    pub fn count(&mut self, name: &str, n: u64) {
        *slot(&mut self.counters, name) += n;
    }

    /// Moves a gauge (e.g. `sockets_open`) by `delta`; gauges survive [`Recorder::take`].
    pub fn gauge_add(&mut self, name: &str, delta: i64) {
        *slot(&mut self.gauges, name) += delta;
    }

    /// Hands over everything recorded since the last call and starts a new interval.
    /// Gauge levels are reported and kept.
    pub fn take(&mut self) -> Snapshot {
        let mut snap = Snapshot::default();
        for (name, op) in &mut self.ops {
            if op.count() > 0 {
                snap.ops.insert(name.clone(), std::mem::take(op));
            }
        }
        for (name, n) in &mut self.counters {
            if *n > 0 {
                snap.counters.insert(name.clone(), std::mem::take(n));
            }
        }
        for (name, level) in &self.gauges {
            snap.gauges.insert(name.clone(), *level);
        }
        snap
    }

    fn op(&mut self, name: &str) -> &mut OpSnapshot {
        let idx = match self.ops.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.ops.push((name.to_owned(), OpSnapshot::default()));
                self.ops.len() - 1
            }
        };
        &mut self.ops[idx].1
    }
}

fn slot<'a, T: Default>(list: &'a mut Vec<(String, T)>, name: &str) -> &'a mut T {
    let idx = match list.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            list.push((name.to_owned(), T::default()));
            list.len() - 1
        }
    };
    &mut list[idx].1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_moves_the_interval_and_keeps_gauges() {
        let mut r = Recorder::new();
        r.record("push", 1_500);
        r.record("push", 2_500);
        r.record_error("push", "timeout");
        r.count("app_opens", 3);
        r.gauge_add("sockets_open", 2);
        let first = r.take();
        assert_eq!(first.ops["push"].count(), 3);
        assert_eq!(first.ops["push"].errors["timeout"], 1);
        assert_eq!(first.counter("app_opens"), 3);
        assert_eq!(first.gauge("sockets_open"), 2);

        r.gauge_add("sockets_open", -1);
        let second = r.take();
        assert!(second.ops.is_empty());
        assert!(second.counters.is_empty());
        assert_eq!(second.gauge("sockets_open"), 1);
    }

    #[test]
    fn merge_equals_recording_everything_in_one_place() {
        let mut whole = Recorder::new();
        let mut parts = [Recorder::new(), Recorder::new(), Recorder::new()];
        for i in 0..30_000u64 {
            let micros = (i * 7_919) % 2_000_000 + 1;
            whole.record("pull", micros);
            parts[(i % 3) as usize].record("pull", micros);
            if i % 97 == 0 {
                whole.record_error("pull", "http_5xx");
                parts[(i % 3) as usize].record_error("pull", "http_5xx");
            }
        }
        let mut merged = Snapshot::default();
        for p in &mut parts {
            merged.merge(&p.take()).unwrap();
        }
        let whole = whole.take();
        assert_eq!(merged, whole);
        assert_eq!(merged.ops["pull"].summary(), whole.ops["pull"].summary());
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let mut r = Recorder::new();
        r.record("token_check", 12_000);
        r.record_error("token_check", "rate_limited");
        r.count("ws_rejected", 4);
        r.gauge_add("devices_active", 10);
        let snap = r.take();
        let json = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
        assert_eq!(back.errors_by_kind()["rate_limited"], 1);
        assert_eq!(back.total_errors(), 1);
        assert_eq!(back.total_count(), 2);
    }
}
