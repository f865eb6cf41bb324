//! The device knobs: the `[device]` table of a scenario file. Defaults follow
//! sync-protocol.md ("today" behaviour); every knob names the alternative it lets you measure.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// All device knobs. In TOML: `[device]` with dotted keys, e.g. `push.mode = "server_lww"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceKnobs {
    pub usap: UsapKnobs,
    pub push: PushKnobs,
    pub sync: SyncKnobs,
    pub pull: PullKnobs,
    pub pulse: PulseKnobs,
    /// Quiet time after the user's last edit before the edit triggers a sync.
    #[serde(with = "humantime_str")]
    pub edit_debounce: Duration,
    /// Whether each device owns its connections or devices share a pool (the driver acts on it).
    pub connections: ConnectionModel,
}

/// USAP authority check: attempts and the wait between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsapKnobs {
    pub max_attempts: u32,
    pub retry: RetryPolicy,
    /// The fixed delay, or the first delay of the exponential policies.
    #[serde(with = "humantime_str")]
    pub base_delay: Duration,
    /// Cap of the exponential policies.
    #[serde(with = "humantime_str")]
    pub max_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryPolicy {
    Fixed,
    Exponential,
    ExponentialFullJitter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushKnobs {
    pub batch_size: u32,
    pub mode: PushMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushMode {
    /// PostgREST upsert merging on `id`: the server takes whatever arrives.
    Upsert,
    /// Read the server rows first, write only the rows whose local `updated_at` is newer.
    ClientLww,
    /// The `sync_push` RPC applies each row only if newer, atomically in the database.
    ServerLww,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncKnobs {
    pub order: SyncOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOrder {
    #[default]
    CheckPullPush,
    PushThenPull,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullKnobs {
    pub page_size: u32,
    pub tier_concurrency: TierConcurrency,
}

/// Whether the tables of one tier are pulled one after another or at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierConcurrency {
    #[default]
    Sequential,
    Concurrent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PulseKnobs {
    pub mode: PulseMode,
    pub subscribe: PulseSubscribe,
    /// Period of `periodic` mode (and the poll timeout the driver uses for `long_poll`).
    #[serde(with = "humantime_str")]
    pub interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PulseMode {
    #[default]
    Websocket,
    LongPoll,
    Periodic,
    Off,
}

/// What the realtime subscription listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PulseSubscribe {
    #[default]
    UserSyncTokens,
    Tables,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionModel {
    #[default]
    Owned,
    Pooled,
}

impl Default for UsapKnobs {
    fn default() -> Self {
        UsapKnobs {
            max_attempts: 10,
            retry: RetryPolicy::Fixed,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl Default for PushKnobs {
    fn default() -> Self {
        PushKnobs {
            batch_size: 1,
            mode: PushMode::Upsert,
        }
    }
}

impl Default for PullKnobs {
    fn default() -> Self {
        PullKnobs {
            page_size: 1000,
            tier_concurrency: TierConcurrency::Sequential,
        }
    }
}

impl Default for PulseKnobs {
    fn default() -> Self {
        PulseKnobs {
            mode: PulseMode::Websocket,
            subscribe: PulseSubscribe::UserSyncTokens,
            interval: Duration::from_secs(30),
        }
    }
}

impl DeviceKnobs {
    /// One sentence per bad value, naming the knob by its scenario path; empty when all is well.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, sentence: String| {
            if !ok {
                problems.push(sentence);
            }
        };
        let usap = &self.usap;
        check(
            (1..=1000).contains(&usap.max_attempts),
            format!(
                "device.usap.max_attempts must be between 1 and 1000, got {}.",
                usap.max_attempts
            ),
        );
        check(
            usap.retry == RetryPolicy::Fixed || usap.base_delay <= usap.max_delay,
            format!(
                "device.usap.base_delay ({}) must not exceed device.usap.max_delay ({}).",
                show(usap.base_delay),
                show(usap.max_delay)
            ),
        );
        check(
            usap.max_delay <= Duration::from_secs(3600),
            format!(
                "device.usap.max_delay must be at most 1h, got {}.",
                show(usap.max_delay)
            ),
        );
        check(
            (1..=1000).contains(&self.push.batch_size),
            format!(
                "device.push.batch_size must be between 1 and 1000, got {}.",
                self.push.batch_size
            ),
        );
        check(
            (1..=100_000).contains(&self.pull.page_size),
            format!(
                "device.pull.page_size must be between 1 and 100000, got {}.",
                self.pull.page_size
            ),
        );
        check(
            self.pulse.mode != PulseMode::Periodic
                || self.pulse.interval >= Duration::from_millis(100),
            format!(
                "device.pulse.interval must be at least 100ms in periodic mode, got {}.",
                show(self.pulse.interval)
            ),
        );
        check(
            self.edit_debounce <= Duration::from_secs(3600),
            format!(
                "device.edit_debounce must be at most 1h, got {}.",
                show(self.edit_debounce)
            ),
        );
        problems
    }
}

impl Default for DeviceKnobs {
    fn default() -> Self {
        DeviceKnobs {
            usap: UsapKnobs::default(),
            push: PushKnobs::default(),
            sync: SyncKnobs::default(),
            pull: PullKnobs::default(),
            pulse: PulseKnobs::default(),
            edit_debounce: Duration::from_secs(1),
            connections: ConnectionModel::Owned,
        }
    }
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Durations as humantime strings (`"500ms"`, `"30s"`, `"1m 30s"`).
mod humantime_str {
    use super::*;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&show(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like \"500ms\" or \"30s\" ({e})"
            ))
        })
    }
}
