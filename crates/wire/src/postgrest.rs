//! The PostgREST error body and the small error kind the harness counts by.

use serde::{Deserialize, Serialize};

/// `{"code": "<SQLSTATE or PGRSTxxx>", "message": …, "details": …, "hint": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgrestError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
}

/// What went wrong with a request, small enough to count by (never by formatted string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request did not finish in time on the client side.
    Timeout,
    /// The connection could not be made or was reset.
    Connect,
    /// Too many open files on the client.
    Emfile,
    /// No free local port / address.
    AddrNotAvailable,
    /// 401/403: missing or bad credentials, RLS refusal.
    Unauthorized,
    /// 429 or a realtime rate-limit reason.
    RateLimited,
    /// 409: unique or foreign-key violation.
    Conflict,
    /// 504 `PGRST003`: the server's DB pool had no connection in time.
    PoolTimeout,
    /// 500 `57014`: the role's statement timeout.
    StatementTimeout,
    /// 503 / `53300`: the database refused a connection.
    DbUnavailable,
    /// Other 4xx.
    Http4xx,
    /// Other 5xx.
    Http5xx,
    /// A websocket closed or failed.
    WsClosed,
    /// The body could not be decoded.
    Decode,
    /// The device was offline (a simulated network fault).
    Offline,
}

impl ErrorKind {
    /// Every kind, for tables and reports.
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Emfile,
        ErrorKind::AddrNotAvailable,
        ErrorKind::Unauthorized,
        ErrorKind::RateLimited,
        ErrorKind::Conflict,
        ErrorKind::PoolTimeout,
        ErrorKind::StatementTimeout,
        ErrorKind::DbUnavailable,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::WsClosed,
        ErrorKind::Decode,
        ErrorKind::Offline,
    ];

    /// The snake_case name used in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Emfile => "emfile",
            ErrorKind::AddrNotAvailable => "addr_not_available",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PoolTimeout => "pool_timeout",
            ErrorKind::StatementTimeout => "statement_timeout",
            ErrorKind::DbUnavailable => "db_unavailable",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::WsClosed => "ws_closed",
            ErrorKind::Decode => "decode",
            ErrorKind::Offline => "offline",
        }
    }

    /// Classifies an HTTP error status and PostgREST code.
    pub fn from_http(status: u16, code: Option<&str>) -> ErrorKind {
        match (status, code) {
            (504, _) | (_, Some("PGRST003")) => ErrorKind::PoolTimeout,
            (_, Some("57014")) => ErrorKind::StatementTimeout,
            (503, _) | (_, Some("53300")) => ErrorKind::DbUnavailable,
            (401 | 403, _) => ErrorKind::Unauthorized,
            (429, _) => ErrorKind::RateLimited,
            (409, _) => ErrorKind::Conflict,
            (400..=499, _) => ErrorKind::Http4xx,
            _ => ErrorKind::Http5xx,
        }
    }
}

/// HTTP status PostgREST gives a SQLSTATE (its `src/PostgREST/Error.hs` mapping);
/// `authenticated` tells a JWT role from anon for `42501`.
pub fn status_for_sqlstate(code: &str, authenticated: bool) -> u16 {
    match code {
        "42501" if authenticated => 403,
        "42501" => 401,
        "23505" | "23503" => 409,
        "42P01" | "42883" => 404,
        "53400" => 500,
        c if c.starts_with("53") || c.starts_with("08") => 503,
        c if c.starts_with("23") || c.starts_with("42") || c.starts_with("22") => 400,
        "P0001" => 400,
        c if c.starts_with("P0") => 500,
        c if c.starts_with("57") || c.starts_with("55") || c.starts_with("40") => 500,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_like_postgrest() {
        let cases = [
            ("42501", true, 403),
            ("42501", false, 401),
            ("42703", true, 400),
            ("23505", true, 409),
            ("23503", true, 409),
            ("57014", true, 500),
            ("53300", true, 503),
            ("42P01", true, 404),
        ];
        for (code, auth, status) in cases {
            assert_eq!(status_for_sqlstate(code, auth), status, "{code}");
        }
    }

    #[test]
    fn kinds_classify_pool_and_timeouts() {
        assert_eq!(
            ErrorKind::from_http(504, Some("PGRST003")),
            ErrorKind::PoolTimeout
        );
        assert_eq!(
            ErrorKind::from_http(500, Some("57014")),
            ErrorKind::StatementTimeout
        );
        assert_eq!(
            ErrorKind::from_http(403, Some("42501")),
            ErrorKind::Unauthorized
        );
        assert_eq!(ErrorKind::from_http(418, None), ErrorKind::Http4xx);
    }
}
