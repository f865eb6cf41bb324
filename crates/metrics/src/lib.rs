//! Metrics for syncstorm: per-task HdrHistogram recorders, interval snapshots, exact merges
//! and per-second time series. No async runtime and no locks: each task or worker thread
//! owns a [`Recorder`], hands a [`Snapshot`] over once per interval, and an [`Aggregator`]
//! merges them (`Histogram::add`, so percentiles of merged data are exact).
//!
//! A histogram costs tens of KiB (its counts array covers up to the largest value seen), so
//! recorders belong to worker threads or device cohorts, not to each of 100k devices.
//!
//! Latencies are microseconds with 3 significant figures. Names of operations, counters and
//! gauges shared by the driver, the swarm and the report live in [`names`].

pub mod histogram;
pub mod names;
mod recorder;
mod series;

pub use histogram::LatencySummary;
pub use names::{counter, gauge, op};
pub use recorder::{OpSnapshot, Recorder, Snapshot};
pub use series::{Aggregator, OpPoint, SeriesPoint, TimeSeries};

/// Failures of encoding, decoding or merging histograms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("could not encode a histogram: {0}")]
    Encode(String),
    #[error("could not decode a histogram: {0}")]
    Decode(String),
    #[error("could not merge histograms: {0}")]
    Merge(String),
}
