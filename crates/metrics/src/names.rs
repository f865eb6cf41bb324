//! Names shared by whoever records (driver, swarm) and whoever reads (report, thresholds).
//! Error kinds are `syncstorm_wire::error::ErrorKind::name()` (`pool_timeout`, …).

/// Operations: one latency histogram each, in µs.
pub mod op {
    /// GoTrue password sign-in (app install / first open).
    pub const SIGN_IN: &str = "sign_in";
    /// GoTrue refresh-token grant.
    pub const TOKEN_REFRESH: &str = "token_refresh";
    /// One USAP authority check request (read of `user_sync_tokens`): risk 1's request.
    pub const TOKEN_CHECK: &str = "token_check";
    /// One delta-pull page request.
    pub const PULL: &str = "pull";
    /// One push request (a batch of rows).
    pub const PUSH: &str = "push";
    /// One push request of a bulk importer (risk 3); ordinary devices' pushes are [`PUSH`].
    pub const BULK_PUSH: &str = "bulk_push";
    /// One whole sync, check to last push.
    pub const SYNC: &str = "sync";
    /// Websocket upgrade (TCP connect to `101`).
    pub const WS_CONNECT: &str = "ws_connect";
    /// `phx_join` to its reply.
    pub const WS_JOIN: &str = "ws_join";
    /// A committed write to the Nano-Pulse arriving on another (or the same) device.
    pub const PULSE_DELIVERY: &str = "pulse_delivery";
    /// One long-poll request (pulse fallback).
    pub const LONG_POLL: &str = "long_poll";
    /// One periodic poll (pulse fallback).
    pub const PERIODIC_POLL: &str = "periodic_poll";
}

/// Event counters: increments per interval.
pub mod counter {
    pub const APP_OPENS: &str = "app_opens";
    /// Websocket upgrades the server refused (the plan's connection cap: HTTP 403).
    pub const WS_REJECTED: &str = "ws_rejected";
    /// Realtime joins refused by a rate limit (`ClientJoinRateLimitReached`, …).
    pub const JOINS_REJECTED: &str = "joins_rejected";
    pub const WS_RECONNECTS: &str = "ws_reconnects";
    pub const PULSES_RECEIVED: &str = "pulses_received";
    /// Syncs that skipped the pull because the authority token had not moved.
    pub const PULLS_SKIPPED: &str = "pulls_skipped";
    pub const ROWS_PUSHED: &str = "rows_pushed";
    pub const ROWS_PULLED: &str = "rows_pulled";
    /// Rows imported by bulk importers (risk 3).
    pub const BULK_ROWS: &str = "bulk_rows";
    /// Open-model arrivals that started late because the generator fell behind.
    pub const ARRIVALS_LATE: &str = "arrivals_late";
    /// Open-model arrivals delivered to their device.
    pub const ARRIVALS: &str = "arrivals";
    /// Total delivery delay of open-model arrivals behind their intended instant, ms.
    pub const ARRIVAL_LAG_MS_TOTAL: &str = "arrival_lag_ms_total";
}

/// Gauges: levels, summed over recorders.
pub mod gauge {
    pub const DEVICES_ACTIVE: &str = "devices_active";
    pub const DEVICES_OFFLINE: &str = "devices_offline";
    pub const SOCKETS_OPEN: &str = "sockets_open";
    pub const SYNCS_IN_FLIGHT: &str = "syncs_in_flight";
    /// Bulk imports running now (risk 3: ordinary pushes during them).
    pub const BULK_IMPORTS_RUNNING: &str = "bulk_imports_running";
}
