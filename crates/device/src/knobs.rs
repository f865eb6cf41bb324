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
    /// Whether a device starts with a stored session (a phone used before) or signs in on its
    /// first open (a fresh install).
    pub session: SessionStart,
    /// Of devices with a stored session, the percentage whose access token has expired when
    /// the app opens (a phone not opened for longer than the JWT expiry, 1 h on Supabase):
    /// they refresh first, as supabase-js does on start — a GoTrue refresh-token grant, a
    /// database write — so an open storm loads Auth too. 0 to 100.
    pub expired_at_open_percent: u8,
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
pub enum SessionStart {
    /// Signed in during setup, unmeasured: opening the app refreshes when due, never signs in.
    #[default]
    Stored,
    /// No session: the first open signs in with the password.
    SignIn,
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
            self.pulse.mode != PulseMode::LongPoll,
            "device.pulse.mode = \"long_poll\" is not supported yet: the embedded stack has no \
             long-poll endpoint; use \"periodic\" for the polling fallback."
                .to_owned(),
        );
        check(
            self.expired_at_open_percent <= 100,
            format!(
                "device.expired_at_open_percent is a percentage from 0 to 100, got {}.",
                self.expired_at_open_percent
            ),
        );
        check(
            self.expired_at_open_percent == 0 || self.session == SessionStart::Stored,
            "device.expired_at_open_percent needs device.session = \"stored\": with \"sign_in\" \
             no device holds a token to expire."
                .to_owned(),
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
            session: SessionStart::Stored,
            expired_at_open_percent: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DeviceKnobs, String> {
        toml::from_str::<DeviceKnobs>(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn defaults_follow_the_protocol_page() {
        let knobs = parse("").unwrap();
        assert_eq!(knobs, DeviceKnobs::default());
        assert_eq!(knobs.usap.max_attempts, 10);
        assert_eq!(knobs.usap.retry, RetryPolicy::Fixed);
        assert_eq!(knobs.push.batch_size, 1);
        assert_eq!(knobs.push.mode, PushMode::Upsert);
        assert_eq!(knobs.sync.order, SyncOrder::CheckPullPush);
        assert_eq!(knobs.pull.page_size, 1000);
        assert_eq!(knobs.pulse.mode, PulseMode::Websocket);
        assert_eq!(knobs.pulse.subscribe, PulseSubscribe::UserSyncTokens);
        assert_eq!(knobs.connections, ConnectionModel::Owned);
        assert!(knobs.validate().is_empty());
    }

    #[test]
    fn every_knob_reads_from_dotted_keys() {
        let knobs = parse(
            r#"
            usap.max_attempts = 3
            usap.retry = "exponential_full_jitter"
            usap.base_delay = "250ms"
            usap.max_delay = "8s"
            push.batch_size = 25
            push.mode = "server_lww"
            sync.order = "push_then_pull"
            pull.page_size = 500
            pull.tier_concurrency = "concurrent"
            pulse.mode = "periodic"
            pulse.subscribe = "tables"
            pulse.interval = "1m"
            edit_debounce = "500ms"
            connections = "pooled"
            "#,
        )
        .unwrap();
        assert_eq!(knobs.usap.base_delay, Duration::from_millis(250));
        assert_eq!(knobs.usap.retry, RetryPolicy::ExponentialFullJitter);
        assert_eq!(knobs.push.mode, PushMode::ServerLww);
        assert_eq!(knobs.sync.order, SyncOrder::PushThenPull);
        assert_eq!(knobs.pull.tier_concurrency, TierConcurrency::Concurrent);
        assert_eq!(knobs.pulse.interval, Duration::from_secs(60));
        assert_eq!(knobs.pulse.subscribe, PulseSubscribe::Tables);
        assert_eq!(knobs.edit_debounce, Duration::from_millis(500));
        assert_eq!(knobs.connections, ConnectionModel::Pooled);
        assert!(knobs.validate().is_empty());
        let echoed = toml::to_string(&knobs).unwrap();
        assert_eq!(
            parse(&echoed).unwrap(),
            knobs,
            "serializes back to the same knobs"
        );
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused() {
        assert!(
            parse("push.batchsize = 3")
                .unwrap_err()
                .contains("unknown field `batchsize`")
        );
        assert!(
            parse(r#"push.mode = "lww""#)
                .unwrap_err()
                .contains("unknown variant `lww`")
        );
        let bad_duration = parse(r#"edit_debounce = "soon""#).unwrap_err();
        assert!(
            bad_duration.contains("`soon` is not a duration"),
            "{bad_duration}"
        );
    }

    #[test]
    fn expired_sessions_are_a_percentage_of_stored_ones() {
        let knobs = parse("expired_at_open_percent = 60").unwrap();
        assert_eq!(knobs.expired_at_open_percent, 60);
        assert!(knobs.validate().is_empty());
        let over = parse("expired_at_open_percent = 101").unwrap().validate();
        assert_eq!(
            over,
            ["device.expired_at_open_percent is a percentage from 0 to 100, got 101."]
        );
        let fresh = parse("expired_at_open_percent = 10\nsession = \"sign_in\"")
            .unwrap()
            .validate();
        assert_eq!(fresh.len(), 1);
        assert!(fresh[0].starts_with("device.expired_at_open_percent needs device.session"));
        assert!(parse("expired_at_open_percent = 300").is_err(), "not a u8");
    }

    #[test]
    fn long_poll_is_refused_in_one_sentence_until_an_endpoint_exists() {
        let mut knobs = DeviceKnobs::default();
        knobs.pulse.mode = PulseMode::LongPoll;
        let problems = knobs.validate();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("device.pulse.mode = \"long_poll\" is not supported"));
    }

    #[test]
    fn validate_names_each_bad_value_in_one_sentence() {
        let mut knobs = DeviceKnobs::default();
        knobs.usap.max_attempts = 0;
        knobs.usap.retry = RetryPolicy::Exponential;
        knobs.usap.base_delay = Duration::from_secs(10);
        knobs.usap.max_delay = Duration::from_secs(5);
        knobs.push.batch_size = 0;
        knobs.pull.page_size = 0;
        knobs.pulse.mode = PulseMode::Periodic;
        knobs.pulse.interval = Duration::from_millis(10);
        let problems = knobs.validate();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert_eq!(
            problems[0],
            "device.usap.max_attempts must be between 1 and 1000, got 0."
        );
        assert!(problems[1].starts_with("device.usap.base_delay (10s) must not exceed"));
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("device.") && p.ends_with('.'))
        );
    }
}
