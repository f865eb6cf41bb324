//! Supabase plan presets: the published limits that decide whether the FinOS risks bite.
//!
//! One table, one source per figure (see `PRESETS` and the README's "Plan presets" section).
//! The embedded stack enforces these; scenarios name a preset with `[target] plan = "pro"` and
//! may override any single figure. Sources:
//! - realtime caps: supabase.com/docs/guides/realtime/limits (Free 200/100/100, Pro 500/500/500,
//!   Pro without spend cap and Team 10,000/2,500/2,500, channels per connection 100);
//! - DB connections and pooler clients by compute size: supabase.com/docs/guides/platform/compute-and-disk
//!   (Nano 60/200, Micro 60/200, Small 90/400, Medium 120/600, Large 160/800, XL 240/1,000, 2XL 380/1,500);
//! - auth `/token` limit: supabase.com/docs/guides/auth/rate-limits (1,800 per hour per IP, burst 30);
//! - PostgREST pool: PostgREST's `db-pool` default 10 connections, acquisition timeout 10 s.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Realtime caps of one project, with Supabase's semantics (enforced by the embedded stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealtimeCaps {
    /// Concurrent websocket connections; beyond it the upgrade is refused with HTTP 403.
    pub max_connections: u32,
    /// Channel joins per second (`ClientJoinRateLimitReached`).
    pub joins_per_second: u32,
    /// Events (messages) per second, to and from clients.
    pub events_per_second: u32,
    /// Channels one connection may join (`ChannelRateLimitReached`).
    pub channels_per_client: u32,
}

/// A token-bucket rate limit (GoTrue style: `rate` per `per`, with a burst capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub rate: u32,
    #[serde(with = "secs")]
    pub per: Duration,
    pub burst: u32,
}

/// The figures of one Supabase plan and compute size that matter to sync load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupabasePlan {
    /// Preset name (`free`, `pro`, `team`, `unlimited`, or a compute size like `pro-large`).
    pub name: String,
    /// PostgreSQL `max_connections` of the compute size.
    pub db_max_connections: u32,
    /// Supavisor clients the pooler accepts.
    pub pooler_max_clients: u32,
    /// Connections the REST (PostgREST) pool holds.
    pub rest_pool_size: u32,
    /// How long a REST request waits for a pooled connection before 504 `PGRST003`.
    #[serde(with = "millis")]
    pub rest_pool_timeout: Duration,
    /// Connections the auth (GoTrue) service may hold.
    pub auth_pool_size: u32,
    pub realtime: RealtimeCaps,
    /// `/auth/v1/token` limit (password and refresh grants share it); `None` = off.
    pub auth_token_rate_limit: Option<RateLimit>,
    /// Memory given to `shared_buffers`, MiB.
    pub shared_buffers_mb: u32,
}

/// Errors from looking up or overriding a preset.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("unknown plan {0:?}; known plans: {known}", known = names().join(", "))]
    Unknown(String),
    #[error("unknown plan field {0:?}; known fields: {known}", known = OVERRIDABLE.join(", "))]
    UnknownField(String),
    #[error("plan field {field} = {value:?} is not valid: {reason}")]
    BadValue {
        field: String,
        value: String,
        reason: &'static str,
    },
}

const HOSTED_TOKEN_LIMIT: RateLimit = RateLimit {
    rate: 1_800,
    per: Duration::from_secs(3_600),
    burst: 30,
};

struct Row {
    name: &'static str,
    db: u32,
    pooler: u32,
    realtime: RealtimeCaps,
    token_limit: Option<RateLimit>,
    shared_buffers_mb: u32,
}

const fn caps(conn: u32, joins: u32, events: u32) -> RealtimeCaps {
    RealtimeCaps {
        max_connections: conn,
        joins_per_second: joins,
        events_per_second: events,
        channels_per_client: 100,
    }
}

/// The preset table. `free` is the Nano compute, `pro` the Micro compute Pro starts on,
/// `team` a Large compute; `pro-<size>` pairs Pro's realtime caps with a bigger compute.
const PRESETS: &[Row] = &[
    row("free", 60, 200, caps(200, 100, 100), 128),
    row("pro", 60, 200, caps(500, 500, 500), 256),
    row("pro-small", 90, 400, caps(500, 500, 500), 512),
    row("pro-medium", 120, 600, caps(500, 500, 500), 1024),
    row("pro-large", 160, 800, caps(500, 500, 500), 2048),
    row("pro-no-cap", 160, 800, caps(10_000, 2_500, 2_500), 2048),
    row("team", 160, 800, caps(10_000, 2_500, 2_500), 2048),
    row("team-xl", 240, 1_000, caps(10_000, 2_500, 2_500), 4096),
    row("team-2xl", 380, 1_500, caps(10_000, 2_500, 2_500), 4096),
    Row {
        name: "unlimited",
        db: 500,
        pooler: 100_000,
        realtime: caps(1_000_000, 1_000_000, 1_000_000),
        token_limit: None,
        shared_buffers_mb: 1024,
    },
];

const fn row(name: &'static str, db: u32, pooler: u32, realtime: RealtimeCaps, sb: u32) -> Row {
    Row {
        name,
        db,
        pooler,
        realtime,
        token_limit: Some(HOSTED_TOKEN_LIMIT),
        shared_buffers_mb: sb,
    }
}

/// The preset names, in table order.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|r| r.name).collect()
}

/// Fields `SupabasePlan::set` accepts.
pub const OVERRIDABLE: &[&str] = &[
    "db_max_connections",
    "pooler_max_clients",
    "rest_pool_size",
    "rest_pool_timeout_ms",
    "auth_pool_size",
    "realtime.max_connections",
    "realtime.joins_per_second",
    "realtime.events_per_second",
    "realtime.channels_per_client",
    "auth_token_rate_limit",
    "shared_buffers_mb",
];

impl SupabasePlan {
    /// Looks up a preset by name.
    pub fn preset(name: &str) -> Result<Self, PlanError> {
        let row = PRESETS
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| PlanError::Unknown(name.to_string()))?;
        Ok(SupabasePlan {
            name: row.name.to_string(),
            db_max_connections: row.db,
            pooler_max_clients: row.pooler,
            rest_pool_size: 10,
            rest_pool_timeout: Duration::from_secs(10),
            // GoTrue's pool is unbounded by default; bound it to a share of the database so the
            // REST pool and realtime's own connections still fit under max_connections.
            auth_pool_size: (row.db / 4).max(2),
            realtime: row.realtime,
            auth_token_rate_limit: row.token_limit,
            shared_buffers_mb: row.shared_buffers_mb,
        })
    }

    /// Overrides one figure. `auth_token_rate_limit` takes `off` or `RATE/SECONDS/BURST`.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), PlanError> {
        if field == "auth_token_rate_limit" {
            self.auth_token_rate_limit = parse_rate_limit(value)?;
            return Ok(());
        }
        let slot: &mut u32 = match field {
            "db_max_connections" => &mut self.db_max_connections,
            "pooler_max_clients" => &mut self.pooler_max_clients,
            "rest_pool_size" => &mut self.rest_pool_size,
            "auth_pool_size" => &mut self.auth_pool_size,
            "realtime.max_connections" => &mut self.realtime.max_connections,
            "realtime.joins_per_second" => &mut self.realtime.joins_per_second,
            "realtime.events_per_second" => &mut self.realtime.events_per_second,
            "realtime.channels_per_client" => &mut self.realtime.channels_per_client,
            "shared_buffers_mb" => &mut self.shared_buffers_mb,
            "rest_pool_timeout_ms" => {
                let ms = parse_positive(field, value)?;
                self.rest_pool_timeout = Duration::from_millis(ms.into());
                return Ok(());
            }
            _ => return Err(PlanError::UnknownField(field.to_string())),
        };
        *slot = parse_positive(field, value)?;
        Ok(())
    }
}

fn parse_positive(field: &str, value: &str) -> Result<u32, PlanError> {
    match value.trim().replace('_', "").parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PlanError::BadValue {
            field: field.to_string(),
            value: value.to_string(),
            reason: "expected a whole number greater than 0",
        }),
    }
}

fn parse_rate_limit(value: &str) -> Result<Option<RateLimit>, PlanError> {
    if value.trim() == "off" {
        return Ok(None);
    }
    let bad = || PlanError::BadValue {
        field: "auth_token_rate_limit".to_string(),
        value: value.to_string(),
        reason: "expected `off` or RATE/SECONDS/BURST, e.g. 1800/3600/30",
    };
    let parts: Vec<u32> = value
        .split('/')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match parts.as_slice() {
        [rate, secs, burst] if *rate > 0 && *secs > 0 => Ok(Some(RateLimit {
            rate: *rate,
            per: Duration::from_secs((*secs).into()),
            burst: *burst,
        })),
        _ => Err(bad()),
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_caps_match_the_published_table() {
        let cases = [
            ("free", 200, 100, 100),
            ("pro", 500, 500, 500),
            ("team", 10_000, 2_500, 2_500),
        ];
        for (name, conn, joins, events) in cases {
            let p = SupabasePlan::preset(name).unwrap();
            assert_eq!(p.realtime, caps(conn, joins, events), "{name}");
        }
    }

    #[test]
    fn unlimited_has_no_token_limit_and_hosted_plans_do() {
        assert!(
            SupabasePlan::preset("unlimited")
                .unwrap()
                .auth_token_rate_limit
                .is_none()
        );
        assert_eq!(
            SupabasePlan::preset("free").unwrap().auth_token_rate_limit,
            Some(HOSTED_TOKEN_LIMIT)
        );
    }

    #[test]
    fn overrides_apply_one_by_one() {
        let mut p = SupabasePlan::preset("free").unwrap();
        p.set("realtime.max_connections", "1000").unwrap();
        p.set("auth_token_rate_limit", "off").unwrap();
        p.set("rest_pool_timeout_ms", "250").unwrap();
        assert_eq!(p.realtime.max_connections, 1000);
        assert_eq!(p.auth_token_rate_limit, None);
        assert_eq!(p.rest_pool_timeout, Duration::from_millis(250));
        assert_eq!(p.db_max_connections, 60);
    }

    #[test]
    fn bad_names_and_values_say_what_is_allowed() {
        let err = SupabasePlan::preset("gold").unwrap_err().to_string();
        assert!(err.contains("free, pro"), "{err}");
        let mut p = SupabasePlan::preset("pro").unwrap();
        let err = p
            .set("realtime.max_connections", "-3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("greater than 0"), "{err}");
        assert!(matches!(
            p.set("nope", "1"),
            Err(PlanError::UnknownField(_))
        ));
        assert!(p.set("auth_token_rate_limit", "10/0/1").is_err());
    }
}
