//! The scenario file exactly as written: serde types that refuse unknown fields.
//!
//! Nothing here checks cross-field rules; `plan::validate` turns a `Scenario` into a `RunPlan`.
//! Defaults live here (one place), and `scenarios/README.md` repeats them.

use crate::duration::HumanDuration;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use syncstorm_device::DeviceKnobs;

/// A whole scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub scenario: ScenarioInfo,
    #[serde(default)]
    pub target: TargetSpec,
    pub population: PopulationSpec,
    pub phases: Vec<PhaseSpec>,
    #[serde(default)]
    pub behaviour: BehaviourSpec,
    /// The device knobs (`device.push.mode`, …), defined and range-checked by the device crate.
    #[serde(default)]
    pub device: DeviceKnobs,
    #[serde(default)]
    pub faults: FaultsSpec,
    /// Metric name → `"OP VALUE"`, e.g. `"token_check.p99" = "< 500ms"`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, String>,
    #[serde(default)]
    pub run: RunSpec,
}

/// `[scenario]`: what the run is called and the question it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKindName {
    #[default]
    Embedded,
    Supabase,
}

/// `[target]`. `plan` is valid for both kinds: for `embedded` it sets the stack's limits, for
/// `supabase` it names the plan the project is on (the caps the report compares against).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default)]
    pub kind: TargetKindName,
    #[serde(default = "default_plan")]
    pub plan: String,
    /// Plan field → value, passed to `SupabasePlan::set` (nested tables are flattened).
    #[serde(default)]
    pub plan_overrides: toml::Table,
    pub url: Option<String>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    pub database_url: Option<String>,
    /// Requests per second the whole swarm may send at most (a safety ceiling for staging).
    pub max_request_rate: Option<f64>,
    /// The embedded cluster's crash safety: `on` (fsync and full-page writes, as Supabase) or
    /// `off` (faster; commits cost nothing, which flatters writes).
    #[serde(default)]
    pub durability: Durability,
}

/// `[target] durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    #[default]
    On,
    Off,
}

fn default_plan() -> String {
    "pro".to_string()
}

impl Default for TargetSpec {
    fn default() -> Self {
        TargetSpec {
            kind: TargetKindName::Embedded,
            plan: default_plan(),
            plan_overrides: toml::Table::new(),
            url: None,
            allow_hosts: Vec::new(),
            database_url: None,
            max_request_rate: None,
            durability: Durability::On,
        }
    }
}

/// `[population]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    pub users: u64,
    #[serde(default = "one")]
    pub devices_per_user: u64,
    /// Table → rows seeded per user before the run.
    #[serde(default)]
    pub rows: BTreeMap<String, RowsSpec>,
    /// bcrypt cost of the seeded users' passwords (4 = fastest; Supabase uses 10).
    #[serde(default = "default_hash_cost")]
    pub password_hash_cost: u32,
}

fn one() -> u64 {
    1
}
fn default_hash_cost() -> u32 {
    4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistName {
    Fixed,
    Uniform,
    Lognormal,
}

/// Rows per user: a bare count (`wallets = 2`) or a distribution table.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RowsSpec {
    Count(u64),
    Dist(DistSpec),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistSpec {
    pub dist: DistName,
    /// `fixed`: the count.
    pub n: Option<u64>,
    /// `uniform`: inclusive bounds.
    pub min: Option<u64>,
    /// `uniform` and `lognormal`: the largest count drawn.
    pub max: Option<u64>,
    /// `lognormal`: the median count.
    pub median: Option<u64>,
    /// `lognormal`: the spread (σ of the underlying normal); default 1.0.
    pub sigma: Option<f64>,
}

impl<'de> Deserialize<'de> for RowsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RowsSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row count or a table like { dist = \"lognormal\", median = 200, max = 5000 }")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RowsSpec, E> {
                Ok(RowsSpec::Count(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RowsSpec, E> {
                u64::try_from(v)
                    .map(RowsSpec::Count)
                    .map_err(|_| E::custom("a row count cannot be negative"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RowsSpec, A::Error> {
                let de = serde::de::value::MapAccessDeserializer::new(map);
                DistSpec::deserialize(de).map(RowsSpec::Dist)
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[phases]]` entry: exactly one of the open model (`arrival_rate`) or the closed model
/// (`devices`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: Option<String>,
    pub duration: HumanDuration,
    /// Open model: app opens per second at the start of the phase.
    pub arrival_rate: Option<f64>,
    /// Open model: app opens per second at the end (linear ramp); default = `arrival_rate`.
    pub ramp_to: Option<f64>,
    /// Open model: how arrivals are spaced.
    pub arrivals: Option<ArrivalsName>,
    /// Closed model: devices active once the ramp is done, a count or `"N%"` of the population.
    pub devices: Option<DevicesSpec>,
    /// Closed model: time to go linearly from the previous phase's count to `devices`.
    pub ramp: Option<HumanDuration>,
    /// Closed model: alternatively, devices started (or stopped) per second.
    pub spawn_rate: Option<f64>,
}

/// A device count (`900`) or a share of the population (`"100%"`), so that
/// `--set population.users=…` scales a scenario without touching its phases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DevicesSpec {
    Count(u64),
    Percent(f64),
}

impl Serialize for DevicesSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DevicesSpec::Count(n) => s.serialize_u64(*n),
            DevicesSpec::Percent(p) => s.collect_str(&format_args!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for DevicesSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = DevicesSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number of devices or a share of the population like \"100%\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DevicesSpec, E> {
                Ok(DevicesSpec::Count(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DevicesSpec, E> {
                u64::try_from(v)
                    .map(DevicesSpec::Count)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DevicesSpec, E> {
                v.trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .map(DevicesSpec::Percent)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalsName {
    #[default]
    Poisson,
    Uniform,
}

/// `[behaviour]`: what a user does while the app is open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourSpec {
    #[serde(default = "default_edits_per_hour")]
    pub edits_per_hour: f64,
    #[serde(default = "default_update_share")]
    pub update_share: f64,
    #[serde(default = "default_session_length")]
    pub session_length: HumanDuration,
    #[serde(default = "default_background_pause")]
    pub background_pause: HumanDuration,
    #[serde(default)]
    pub background_socket: BackgroundSocketName,
    pub bulk_import: Option<BulkImportSpec>,
    #[serde(default)]
    pub snoop_fraction: f64,
}

fn default_edits_per_hour() -> f64 {
    30.0
}
fn default_update_share() -> f64 {
    0.3
}
fn default_session_length() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_background_pause() -> HumanDuration {
    HumanDuration::from_secs(600)
}

impl Default for BehaviourSpec {
    fn default() -> Self {
        BehaviourSpec {
            edits_per_hour: default_edits_per_hour(),
            update_share: default_update_share(),
            session_length: default_session_length(),
            background_pause: default_background_pause(),
            background_socket: BackgroundSocketName::default(),
            bulk_import: None,
            snoop_fraction: 0.0,
        }
    }
}

/// What a backgrounded app does with its realtime socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundSocketName {
    /// The OS suspends the app and the socket closes (iOS/Android after a short while).
    #[default]
    Close,
    /// The socket stays open in the background.
    Keep,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkImportSpec {
    /// Share of users whose first device runs one bulk import.
    pub fraction: f64,
    /// Rows per import.
    pub rows: u64,
    /// Table imported into.
    #[serde(default = "default_import_table")]
    pub table: String,
    /// When the importers start, from the beginning of the load.
    #[serde(default)]
    pub at: HumanDuration,
}

fn default_import_table() -> String {
    "transactions".to_string()
}

/// `[faults]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsSpec {
    #[serde(default)]
    pub outages: Vec<OutageSpec>,
    pub clock_skew: Option<ClockSkewSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageSpec {
    pub start: HumanDuration,
    pub duration: HumanDuration,
    #[serde(default = "one_f64")]
    pub fraction: f64,
}

fn one_f64() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSkewSpec {
    pub fraction: f64,
    pub max: HumanDuration,
}

/// `[run]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_out")]
    pub out: String,
    #[serde(default)]
    pub workers: WorkersSpec,
    #[serde(default = "default_quiesce")]
    pub quiesce: HumanDuration,
}

fn default_seed() -> u64 {
    1
}
fn default_out() -> String {
    "reports".to_string()
}
fn default_quiesce() -> HumanDuration {
    HumanDuration::from_secs(60)
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            seed: default_seed(),
            out: default_out(),
            workers: WorkersSpec::Auto,
            quiesce: default_quiesce(),
        }
    }
}

/// `workers = "auto"` or a count of worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkersSpec {
    #[default]
    Auto,
    Count(u32),
}

impl Serialize for WorkersSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WorkersSpec::Auto => s.serialize_str("auto"),
            WorkersSpec::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for WorkersSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = WorkersSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"auto\" or a whole number of worker processes from 1 to 256")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WorkersSpec, E> {
                match u32::try_from(v) {
                    Ok(n @ 1..=256) => Ok(WorkersSpec::Count(n)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WorkersSpec, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(-1))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WorkersSpec, E> {
                if v == "auto" {
                    return Ok(WorkersSpec::Auto);
                }
                Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}
