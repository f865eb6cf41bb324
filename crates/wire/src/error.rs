//! The small error kind the harness counts by: HTTP and PostgREST failures, sockets, the
//! client's own files and ports, simulated outages.

use serde::{Deserialize, Serialize};

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

    /// The kind a result or report names (`"pool_timeout"`), if it is one.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the generator's side caused it (a simulated outage, its own file or port
    /// limits): such errors say nothing about the server and are not counted against it.
    pub fn is_client_side(self) -> bool {
        matches!(
            self,
            ErrorKind::Offline | ErrorKind::Emfile | ErrorKind::AddrNotAvailable
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ErrorKind::from_name("no_such_kind"), None);
    }

    #[test]
    fn only_the_generators_own_failures_are_client_side() {
        let client: Vec<&str> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_client_side())
            .map(ErrorKind::name)
            .collect();
        assert_eq!(client, ["emfile", "addr_not_available", "offline"]);
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
