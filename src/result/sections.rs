//! The result's sections filled by other parts of a run: oracle, probes, generator health,
//! coordinated-omission note and the machine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The correctness checks after quiesce (see the sync protocol's "oracle").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OracleResult {
    pub users_checked: u64,
    pub users_converged: u64,
    pub lost_updates: u64,
    pub skipped_rows: u64,
    pub fk_errors: u64,
    /// Writes that lost under LWW although they were the later edit in true time (clock skew).
    #[serde(default)]
    pub overruled_writes: u64,
    /// Rows the server refused as not newer (`client_lww`, `server_lww`), over all devices.
    #[serde(default)]
    pub rows_refused: u64,
    /// Devices whose final quiet sync failed (they were still checked, as they stood).
    #[serde(default)]
    pub quiet_syncs_failed: u64,
    /// Devices checked against the server, and devices the run started: when they differ,
    /// the oracle could not see every device and its verdict is incomplete.
    #[serde(default)]
    pub devices_checked: u64,
    #[serde(default)]
    pub devices_started: u64,
    /// A few concrete cases, one sentence each, for the report.
    #[serde(default)]
    pub examples: Vec<String>,
    /// RLS under load (`behaviour.snoop_fraction`): attempts on other users' rows, and the
    /// rows read and written through them (both must be 0).
    #[serde(default)]
    pub rls: crate::oracle::rls::RlsFindings,
}

impl OracleResult {
    /// True when every check held for every user checked.
    pub fn clean(&self) -> bool {
        self.users_converged == self.users_checked
            && self.lost_updates == 0
            && self.skipped_rows == 0
            && self.fk_errors == 0
            && self.overruled_writes == 0
            && self.rls.leaks() == 0
    }

    /// Adds another part's counts (a worker's, a shard's), keeping at most `max_examples`.
    pub fn add(&mut self, o: &OracleResult, max_examples: usize) {
        self.users_checked += o.users_checked;
        self.users_converged += o.users_converged;
        self.lost_updates += o.lost_updates;
        self.rls.attempts += o.rls.attempts;
        self.rls.read_leaks += o.rls.read_leaks;
        self.rls.write_leaks += o.rls.write_leaks;
        self.rls.own_rows_seen += o.rls.own_rows_seen;
        self.skipped_rows += o.skipped_rows;
        self.fk_errors += o.fk_errors;
        self.overruled_writes += o.overruled_writes;
        self.rows_refused += o.rows_refused;
        self.quiet_syncs_failed += o.quiet_syncs_failed;
        self.devices_checked += o.devices_checked;
        self.devices_started += o.devices_started;
        let room = max_examples.saturating_sub(self.examples.len());
        self.examples.extend(o.examples.iter().take(room).cloned());
    }

    /// The oracle saw fewer devices than the run started (some did not stop in time).
    pub fn incomplete(&self) -> bool {
        self.devices_checked < self.devices_started
    }
}

/// One connection pool (REST, auth, pooler) as the server sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolSample {
    pub size: u32,
    pub in_use: u32,
    /// Requests waiting for a connection now.
    pub waiting: u32,
    /// Longest wait of a request that got (or gave up on) a connection since the last sample.
    #[serde(default)]
    pub max_wait_ms: f64,
    /// Running totals of connection holds by operation (`token_check`, `pull`, `push`): the
    /// server-side service times the capacity model is calibrated on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: BTreeMap<String, HoldTotals>,
}

/// Holds of one operation since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HoldTotals {
    pub count: u64,
    pub seconds: f64,
}

/// One sample of the server's side, on the run's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSample {
    /// Seconds since the run started.
    pub t: f64,
    /// `pg_stat_activity` client backends by `state` (`active`, `idle`, `idle in transaction`…).
    #[serde(default)]
    pub db_connections: BTreeMap<String, u32>,
    /// Backends by `wait_event_type:wait_event` (`Lock:transactionid`, `Client:ClientRead`…).
    #[serde(default)]
    pub wait_events: BTreeMap<String, u32>,
    /// Backends blocked by another (`pg_blocking_pids` not empty).
    #[serde(default)]
    pub blocked_sessions: u32,
    /// Lock waits of a user's request on another request of the same user (e.g. its own
    /// sync-token row), from the stack's per-request `application_name`.
    #[serde(default)]
    pub lock_waits_same_user: u32,
    /// Lock waits of a user's request on another user's request: what risk 3 asks about.
    #[serde(default)]
    pub lock_waits_cross_user: u32,
    /// Pools by name (`rest`, `auth`).
    #[serde(default)]
    pub pools: BTreeMap<String, PoolSample>,
    /// Realtime server figures (`connections`, `rejected_upgrades`, `channels`, …), as levels or
    /// running totals as the server reports them.
    #[serde(default)]
    pub realtime: BTreeMap<String, f64>,
}

impl ProbeSample {
    pub fn db_connections_total(&self) -> u32 {
        self.db_connections.values().sum()
    }

    pub fn lock_waits(&self) -> u32 {
        self.wait_events
            .iter()
            .filter(|(name, _)| name.starts_with("Lock:"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The probes' series; `source` says what was sampled (embedded stack, `--database-url`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probes {
    #[serde(default)]
    pub source: Option<String>,
    /// `max_connections` of the database sampled.
    #[serde(default)]
    pub db_max_connections: Option<u32>,
    #[serde(default)]
    pub interval_ms: u64,
    #[serde(default)]
    pub samples: Vec<ProbeSample>,
    /// Samples that failed (the probe's own errors), counted, not hidden.
    #[serde(default)]
    pub failed_samples: u64,
}

/// How latencies in open-model phases were measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatedOmission {
    /// `intended_start` (wrk2's method: from the scheduled start) or `none`.
    pub correction: String,
    #[serde(default)]
    pub note: String,
}

impl Default for CoordinatedOmission {
    fn default() -> Self {
        CoordinatedOmission {
            correction: "none".into(),
            note: String::new(),
        }
    }
}

/// The generator's own health in one second, per worker process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorSample {
    /// Seconds since the run started.
    pub t: u64,
    /// `main`, `worker-3`, `shard-1/4`…
    pub worker: String,
    /// CPU used by the process, % of one core.
    pub cpu_pct: f64,
    /// Largest event-loop (scheduler) lag seen in the second.
    pub loop_lag_ms: f64,
    pub rss_bytes: u64,
}

/// One risk's verdict as CI reads it (`risks.risk1` …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskVerdict {
    pub title: String,
    /// `confirmed`, `under_strain`, `not_observed`, `not_exercised` or `inconclusive`.
    pub verdict: String,
    /// The sentence the verdict rests on.
    pub evidence: String,
    /// The figures behind it, one per line.
    #[serde(default)]
    pub figures: Vec<String>,
}

/// What the run was aimed at, as the report needs to say it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `embedded` (syncstorm's own stack) or `supabase` (a real project or compose stack).
    #[serde(default)]
    pub kind: String,
    /// The logical decoding plugin the embedded stack's Realtime captured changes with:
    /// `wal2json` (what Supabase Realtime polls) or `pgoutput` (built into PostgreSQL, used
    /// where wal2json is not installed). `None` for a real Supabase.
    #[serde(default)]
    pub realtime_decoder: Option<String>,
    /// Whether the embedded cluster ran crash-safe (fsync, full-page writes) as Supabase does;
    /// `None` for a real Supabase.
    #[serde(default)]
    pub durable: Option<bool>,
    /// For `kind = "model"`: the calibration it ran on, and what it does not model.
    #[serde(default)]
    pub model: Option<ModelInfo>,
}

/// How a modelled run (`syncstorm model`) was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The calibration in one line: its runs and the server capacity.
    pub calibration: String,
    /// Server capacity used (quiet-load seconds of work per second).
    pub capacity: f64,
    /// Phone ↔ server round trip added to every request (ms).
    pub rtt_ms: f64,
    /// Events the simulation processed, and the wall time it took.
    pub events: u64,
    pub wall_s: f64,
    /// Mechanisms of a real run this model leaves out, in words.
    pub not_modelled: Vec<String>,
}

impl TargetInfo {
    /// "embedded stack, Realtime capture by pgoutput (wal2json not installed), durability
    /// off (fsync and full-page writes off: commits cost nothing)".
    pub fn describe(&self) -> String {
        let mut out = match self.kind.as_str() {
            "embedded" => "embedded stack".to_string(),
            "supabase" => "Supabase".to_string(),
            "model" => match &self.model {
                Some(m) => format!(
                    "capacity model in virtual time (not a measurement; {}; not modelled: {})",
                    m.calibration,
                    m.not_modelled.join(", ")
                ),
                None => "capacity model in virtual time".to_string(),
            },
            other => other.to_string(),
        };
        match self.realtime_decoder.as_deref() {
            Some("pgoutput") => {
                out.push_str(", Realtime capture by pgoutput (wal2json not installed)")
            }
            Some(decoder) => out.push_str(&format!(", Realtime capture by {decoder}")),
            None => {}
        }
        match self.durable {
            Some(false) => out.push_str(
                ", durability off (fsync and full-page writes off: commits cost nothing, which \
                 flatters every write)",
            ),
            Some(true) => out.push_str(", durable (fsync on, as Supabase)"),
            None => {}
        }
        out
    }
}

/// This machine's clock against the target's, from the target's HTTP `Date` header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// The target's clock minus this machine's, ms (positive: the server is ahead).
    pub offset_ms: f64,
    /// Half the window the server's second turned in: the offset is good to ± this.
    pub uncertainty_ms: f64,
    /// Requests it took to see the `Date` header turn to the next second.
    pub requests: u32,
}

/// One shard of a merged run, as its own result told it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    pub index: u32,
    pub count: u32,
    /// What its samples' `worker` in the merged `generator` starts with (`shard 1/4`).
    pub label: String,
    pub machine: Machine,
    /// Seconds after the merged run's start that this shard's load started.
    pub start_offset_s: f64,
    /// Seconds its load started after `--start-at` (its setup ran past it).
    #[serde(default)]
    pub late_start_s: Option<f64>,
    #[serde(default)]
    pub clock: Option<ClockOffset>,
    /// Devices it ran at its own peak.
    pub peak_devices: u64,
    pub exit_code: i32,
}

/// The machine the generator ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The cores the server side (run process, stack, PostgreSQL) and the harness workers
    /// were pinned to; `None` when they shared every core.
    #[serde(default)]
    pub cpu_sets: Option<crate::cpu_sets::CpuSets>,
    /// The addresses the devices' connections left from (`run --source-address`); empty when
    /// the kernel picked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_addresses: Vec<std::net::IpAddr>,
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cores: u32,
    pub memory_bytes: u64,
}

impl Machine {
    /// Reads the machine's figures from `/proc` and `/etc/os-release`; missing ones stay empty.
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| std::env::consts::OS.to_owned());
        let memory_kib: u64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Machine {
            cpu_sets: None,
            source_addresses: Vec::new(),
            hostname: read("/proc/sys/kernel/hostname").trim().to_owned(),
            os,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            // The machine's cores, not this process's share: the run pins itself to the
            // server's CPU set before the result is made.
            cores: nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
                .ok()
                .flatten()
                .map_or(0, |n| n as u32),
            memory_bytes: memory_kib * 1024,
        }
    }
}

/// How the run's population was set up before the load, and how long that took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetupInfo {
    /// Wall-clock seconds from the target being ready to the load's start (users, rows and
    /// stored sessions; for an interrupted setup, until it stopped).
    pub duration_s: f64,
    /// `sql` (users by `COPY`, sessions minted with the stack's JWT secret) or `admin_api`
    /// (users through the admin API, sessions by password sign-ins).
    pub method: String,
    pub users: u64,
    /// Stored sessions the devices started with (0 for fresh installs).
    pub sessions: u64,
    /// Rows seeded by SQL.
    pub rows: u64,
    /// `--start-at`: the wall instant every shard's load was to start at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Seconds this run's load started after `start_at`, because its setup ran past it (0 when
    /// it waited for the instant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_start_s: Option<f64>,
}
