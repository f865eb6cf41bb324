//! The versioned JSON result of a run: everything the HTML report, `compare`, `merge` and the
//! thresholds need, so a report can be re-rendered and runs compared long after.
//!
//! Builders: `RunResult::new`, then `set_metrics` (from the metrics aggregator), and the
//! swarm, probes and oracle fill their own sections. `write` puts it at
//! `<out>/<scenario>-<timestamp>.json`; `load` refuses files of another schema version.

mod io;
mod merge;
mod sections;
pub mod thresholds;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use syncstorm_metrics::{Snapshot, TimeSeries, gauge, histogram};
use syncstorm_plans::SupabasePlan;

pub use io::ResultError;
pub use merge::merge_shards;
pub use sections::{
    ClockOffset, CoordinatedOmission, GeneratorSample, HoldTotals, Machine, ModelInfo,
    OracleResult, PoolSample, ProbeSample, Probes, RiskVerdict, SetupInfo, ShardRun, TargetInfo,
};

/// Bumped whenever a field changes meaning or disappears; additions with defaults keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// What was run: the scenario's name, the question it answers and the plan as validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub question: Option<String>,
    /// The scenario after defaults and `--set` overrides, as run.
    #[serde(default)]
    pub as_run: serde_json::Value,
}

/// One operation's figures over the whole run; latencies (of successes) in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperationResult {
    /// Finished operations, successful or not.
    pub count: u64,
    pub errors: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The whole run's latency histogram (base64 HdrHistogram V2-deflate) for exact merges.
    pub hist: String,
}

impl OperationResult {
    pub fn of(op: &syncstorm_metrics::OpSnapshot) -> Result<Self, ResultError> {
        let s = op.summary();
        Ok(OperationResult {
            count: op.count(),
            errors: op.error_count(),
            mean_ms: s.mean_ms,
            p50_ms: s.p50_ms,
            p90_ms: s.p90_ms,
            p99_ms: s.p99_ms,
            p999_ms: s.p999_ms,
            max_ms: s.max_ms,
            errors_by_kind: op.errors.clone(),
            hist: histogram::encode(&op.latency)?,
        })
    }

    pub fn to_snapshot(&self) -> Result<syncstorm_metrics::OpSnapshot, ResultError> {
        Ok(syncstorm_metrics::OpSnapshot {
            latency: histogram::decode(&self.hist)?,
            errors: self.errors_by_kind.clone(),
        })
    }

    /// Share of operations that failed, 0..=1.
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }
}

/// Highest levels reached during the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peak {
    pub devices: u64,
    pub websockets: u64,
    #[serde(default)]
    pub syncs_in_flight: u64,
}

/// One threshold after evaluation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    /// As written, e.g. `token_check.p99 < 500ms`.
    pub expression: String,
    /// The measured value in the metric's own unit (ms, ratio, count); `None` = no data.
    pub value: Option<f64>,
    /// The measured value as shown to people (`412 ms`, `0.8 %`).
    #[serde(default)]
    pub shown: String,
    pub passed: bool,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Completed,
    /// Stopped early (Ctrl-C); the result covers what ran.
    Interrupted,
    /// The run itself failed (not the system under test).
    Failed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatus {
    pub outcome: Outcome,
    /// The exit code the run ended with (0 ok, 1 failed, 2 bad input, 3 thresholds breached).
    pub exit_code: i32,
    #[serde(default)]
    pub message: Option<String>,
}

/// Which slice of the population a shard ran (`--shard index/count`, index from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardId {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    pub started_at: DateTime<Utc>,
    /// Wall-clock seconds from the first arrival to the end of the oracle.
    pub duration_s: f64,
    pub status: RunStatus,
    /// The tag every user this run seeded carries (their e-mail domain);
    /// `syncstorm cleanup --run-tag` takes it.
    #[serde(default)]
    pub run_tag: String,
    /// How the population was set up and how long it took; `None` in results from before
    /// it was recorded.
    #[serde(default)]
    pub setup: Option<SetupInfo>,
    /// Set on a shard's own result; `None` on a whole or merged run.
    #[serde(default)]
    pub shard: Option<ShardId>,
    /// How many shard results a merged result was made from (0 = not merged).
    #[serde(default)]
    pub merged_shards: u32,
    /// A merged result's shards, each with its machine, start and clock; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRun>,
    /// This machine's clock against the target's, measured before the load; `None` when the
    /// target sent no usable `Date` header (and in results from before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
    #[serde(default)]
    pub operations: BTreeMap<String, OperationResult>,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    #[serde(default)]
    pub peak: Peak,
    /// `None` when the scenario did not run the oracle.
    #[serde(default)]
    pub oracle: Option<OracleResult>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdResult>,
    /// The three risks' verdicts by key (`risk1`, `risk2`, `risk3`), as the report shows them.
    #[serde(default)]
    pub risks: BTreeMap<String, RiskVerdict>,
    #[serde(default)]
    pub timeseries: TimeSeries,
    #[serde(default)]
    pub probes: Probes,
    #[serde(default)]
    pub coordinated_omission: CoordinatedOmission,
    #[serde(default)]
    pub generator: Vec<GeneratorSample>,
    #[serde(default)]
    pub machine: Machine,
    /// CPU and memory of the machine and of each role of the run's processes, per second.
    #[serde(default)]
    pub resources: crate::resources::Resources,
    /// The kind of target and, for the embedded stack, how its Realtime captured changes.
    #[serde(default)]
    pub target: TargetInfo,
    /// The Supabase plan figures the run was judged against (`None` for an unknown target).
    #[serde(default)]
    pub plan: Option<SupabasePlan>,
}

impl RunResult {
    pub fn new(scenario: ScenarioInfo, started_at: DateTime<Utc>) -> Self {
        RunResult {
            schema_version: SCHEMA_VERSION,
            scenario,
            started_at,
            machine: Machine::detect(),
            ..Default::default()
        }
    }

    /// Fills operations, errors, counters, peaks and the series from the aggregator's output.
    pub fn set_metrics(&mut self, total: &Snapshot, series: TimeSeries) -> Result<(), ResultError> {
        self.operations = total
            .ops
            .iter()
            .map(|(name, op)| Ok((name.clone(), OperationResult::of(op)?)))
            .collect::<Result<_, ResultError>>()?;
        self.errors_by_kind = total.errors_by_kind();
        self.counters = total.counters.clone();
        let peak = |name: &str| series.peak(name).max(total.gauge(name)).max(0) as u64;
        self.peak = Peak {
            devices: peak(gauge::DEVICES_ACTIVE),
            websockets: peak(gauge::SOCKETS_OPEN),
            syncs_in_flight: peak(gauge::SYNCS_IN_FLIGHT),
        };
        self.timeseries = series;
        Ok(())
    }

    pub fn total_count(&self) -> u64 {
        self.operations.values().map(|o| o.count).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.operations.values().map(|o| o.errors).sum()
    }

    /// Fills `risks` from the report's assessment of this result.
    pub fn set_risks(&mut self) {
        self.risks = crate::report::assess(self)
            .into_iter()
            .map(|f| {
                let verdict = RiskVerdict {
                    title: f.title.to_string(),
                    verdict: f.verdict.key().to_string(),
                    evidence: f.summary,
                    figures: f.evidence,
                };
                (format!("risk{}", f.number), verdict)
            })
            .collect();
    }

    pub fn thresholds_passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }
}
