//! The validated run plan: what the swarm, the target and the report consume.

use crate::dist::RowDist;
use crate::threshold::Threshold;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use syncstorm_device::DeviceKnobs;
use syncstorm_plans::SupabasePlan;

/// The five synced tables, parents first (tiers 1, 2, 2, 3, 3).
pub const TABLES: &[&str] = &[
    "wallets",
    "channels",
    "categories_user",
    "transactions",
    "plans",
];

/// A scenario, checked once: every field present, every cross-field rule holds.
#[derive(Debug, Clone, Serialize)]
pub struct RunPlan {
    pub name: String,
    /// The question the scenario answers.
    pub description: String,
    pub target: Target,
    pub population: Population,
    pub phases: Vec<Phase>,
    pub behaviour: Behaviour,
    /// `[device]`: the knobs every device runs with.
    pub device: DeviceKnobs,
    pub faults: Faults,
    pub thresholds: Vec<Threshold>,
    pub run: RunSettings,
    /// The scenario document as run (after `--set` and `--threshold`), for the results file.
    #[serde(skip)]
    pub document: toml::Value,
}

impl RunPlan {
    /// Every device of the population.
    pub fn total_devices(&self) -> u64 {
        self.population.users * u64::from(self.population.devices_per_user)
    }

    /// The load's length: the phases end to end (seeding and the quiet sync come on top).
    pub fn load_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The phase running `elapsed` after the load started, if any.
    pub fn phase_at(&self, elapsed: Duration) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|p| elapsed >= p.start && elapsed < p.start + p.duration)
    }

    /// The most devices a closed-model phase asks for at once (open phases: 0).
    pub fn peak_closed_devices(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| match p.load {
                Load::Closed { from, to, .. } => from.max(to),
                Load::Open { .. } => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// The scenario as run, as TOML text: what a worker process or a shard reloads with
    /// `syncstorm_scenario::from_str_with` to get the same plan.
    pub fn document_toml(&self) -> String {
        toml::to_string(&self.document).unwrap_or_default()
    }

    /// The scenario as run, as JSON (for the results file).
    pub fn document_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.document).unwrap_or(serde_json::Value::Null)
    }
}

/// `[target]`.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub kind: TargetKind,
    /// The plan preset with `plan_overrides` applied: the embedded stack's limits, or for a
    /// real project the caps the report compares against.
    pub plan: SupabasePlan,
    /// The overrides as applied, `(field, value)`, for the report.
    pub plan_overrides: Vec<(String, String)>,
    /// Requests per second the whole swarm may send at most; `None` = unlimited.
    pub max_request_rate: Option<f64>,
    /// Whether the embedded cluster is crash-safe (fsync, full-page writes) as Supabase is.
    pub durable: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// The in-process Supabase-compatible stack on a throwaway PostgreSQL cluster.
    Embedded,
    /// A real project. Keys come from `SUPABASE_ANON_KEY` / `SUPABASE_SERVICE_ROLE_KEY`.
    Supabase {
        url: String,
        /// Hosts the run may reach besides loopback (with the CLI's `--allow-host`).
        allow_hosts: Vec<String>,
        /// Direct PostgreSQL access for probes and SQL seeding.
        database_url: Option<String>,
    },
}

/// `[population]`.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub users: u64,
    pub devices_per_user: u32,
    /// Every table of `TABLES`, with the default where the scenario names none.
    pub rows: BTreeMap<String, RowDist>,
    pub password_hash_cost: u32,
}

/// One `[[phases]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: String,
    /// Offset from the start of the load.
    #[serde(with = "secs_f64")]
    pub start: Duration,
    #[serde(with = "secs_f64")]
    pub duration: Duration,
    pub load: Load,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Load {
    /// App opens per second, linear from `from_rate` to `to_rate` across the phase.
    /// Latencies are measured from each open's intended time (no coordinated omission).
    Open {
        from_rate: f64,
        to_rate: f64,
        arrivals: Arrivals,
    },
    /// Active devices, linear from `from` (the previous closed phase's count, else 0) to `to`
    /// over `ramp`, then held.
    Closed {
        from: u64,
        to: u64,
        #[serde(with = "secs_f64")]
        ramp: Duration,
    },
}

impl Load {
    /// Open model: the arrival rate `into` the phase. Closed model: the device count.
    pub fn level_at(&self, into: Duration, phase_length: Duration) -> f64 {
        let (from, to, span) = match *self {
            Load::Open {
                from_rate, to_rate, ..
            } => (from_rate, to_rate, phase_length),
            Load::Closed { from, to, ramp } => (from as f64, to as f64, ramp),
        };
        if span.is_zero() || into >= span {
            return to;
        }
        from + (to - from) * (into.as_secs_f64() / span.as_secs_f64())
    }

    /// Open model: app opens over the whole phase.
    pub fn expected_arrivals(&self, phase_length: Duration) -> Option<f64> {
        match *self {
            Load::Open {
                from_rate, to_rate, ..
            } => Some((from_rate + to_rate) / 2.0 * phase_length.as_secs_f64()),
            Load::Closed { .. } => None,
        }
    }
}

/// How open-model arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Exponential gaps (independent users).
    Poisson,
    /// Even gaps.
    Uniform,
}

/// `[behaviour]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behaviour {
    /// Edits per device per hour in the foreground.
    pub edits_per_hour: f64,
    /// Share of edits that update an existing row (the rest create rows).
    pub update_share: f64,
    /// Foreground time per app open.
    #[serde(with = "secs_f64")]
    pub session_length: Duration,
    /// Closed model: background time before the device opens the app again.
    #[serde(with = "secs_f64")]
    pub background_pause: Duration,
    pub background_socket: BackgroundSocket,
    pub bulk_import: Option<BulkImport>,
    /// Share of devices that, halfway through the load, try other users' rows with their
    /// own JWT (RLS under load); 0 = none.
    pub snoop_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundSocket {
    Close,
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BulkImport {
    /// Share of users whose first device runs one import.
    pub fraction: f64,
    pub rows: u64,
    pub table: String,
    /// When the importers start, from the beginning of the load.
    #[serde(with = "secs_f64")]
    pub at: Duration,
}

/// `[faults]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Faults {
    pub outages: Vec<Outage>,
    pub clock_skew: Option<ClockSkew>,
}

/// A window, from the start of the load, during which `fraction` of the devices have no network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    #[serde(with = "secs_f64")]
    pub start: Duration,
    #[serde(with = "secs_f64")]
    pub duration: Duration,
    pub fraction: f64,
}

/// `fraction` of the devices get a clock offset drawn uniformly from `-max..=max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockSkew {
    pub fraction: f64,
    #[serde(with = "secs_f64")]
    pub max: Duration,
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSettings {
    pub seed: u64,
    pub out: PathBuf,
    pub workers: Workers,
    /// How long the final quiet sync may take before the oracle runs anyway.
    #[serde(with = "secs_f64")]
    pub quiesce: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workers {
    /// Chosen from the device count and the open-files limit.
    Auto,
    Count(u32),
}

mod secs_f64 {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}
