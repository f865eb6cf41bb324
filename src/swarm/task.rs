//! What the coordinator hands a worker, and what the worker reports back.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use syncstorm_metrics::Snapshot;

use super::saturation::SaturationSample;
use crate::result::OracleResult;

/// Where the devices send traffic.
#[derive(Clone, Serialize, Deserialize)]
pub struct Endpoints {
    /// The API's base URL (auth, rest and realtime behind one origin, like Supabase).
    pub base_url: String,
    /// Loopback addresses the target listens on; device `d` uses `addresses[d % len]`.
    /// Empty: use the URL's host as it is.
    pub addresses: Vec<std::net::IpAddr>,
    /// Source addresses the devices' connections leave from (`run --source-address`); device
    /// `d` uses `sources[d % len]`. Empty: the kernel picks.
    #[serde(default)]
    pub sources: Vec<std::net::IpAddr>,
    pub anon_key: String,
    /// For the oracle's reads and SQL checks, when there is one.
    pub database_url: Option<String>,
}

impl std::fmt::Debug for Endpoints {
    // Keys and database passwords never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("base_url", &self.base_url)
            .field("addresses", &self.addresses)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// One worker's slice of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerTask {
    /// `worker-3`, `shard-1/4 worker-0`: shown in the generator section.
    pub label: String,
    /// The scenario as run (after `--set` and `--threshold`), TOML text.
    pub scenario_toml: String,
    /// Users this worker owns; their devices follow.
    pub users: Range<u64>,
    /// Server ids of the owned users, in order (`users.start` first).
    pub user_ids: Vec<uuid::Uuid>,
    /// Seeded users' e-mail is `u<index>@<credential_tag>`; see `population::credentials`.
    pub credential_tag: String,
    pub endpoints: Endpoints,
    /// Time zero of the run (Unix ms): every worker's seconds line up on it.
    pub origin_unix_ms: i64,
    /// Sessions signed in during setup, one per owned device in order; empty when devices
    /// start without one (`device.session = "sign_in"`).
    pub sessions: Vec<syncstorm_wire::client::Session>,
}

/// Coordinator → worker after the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Stop the load now (Ctrl-C): skip the quiet sync, report what ran.
    Stop,
}

/// Worker → coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// The worker is up with this many open files allowed.
    Ready { fd_limit: u64 },
    /// Everything recorded during second `t` (since the run's time zero).
    Second {
        t: u64,
        snapshot: Snapshot,
        saturation: SaturationSample,
        /// Phase of the schedule (or `quiesce`).
        stage: String,
    },
    /// The quiet sync and the oracle are done; nothing more will come.
    Done(WorkerSummary),
    /// The worker could not run (bad task, unreachable target); one sentence.
    Failed { message: String },
}

/// A worker's closing figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Devices that ran at least once.
    pub devices_started: u64,
    /// Devices that answered the final quiet sync in time.
    pub devices_quiesced: u64,
    /// Devices that did not (still syncing, or never signed in).
    pub devices_not_quiesced: u64,
    /// Devices whose final quiet sync answered but failed (counted in `devices_quiesced`
    /// no more).
    #[serde(default)]
    pub quiet_syncs_failed: u64,
    pub interrupted: bool,
    pub oracle: Option<OracleResult>,
    /// Why the oracle did not run, if it did not.
    pub oracle_skipped: Option<String>,
}
