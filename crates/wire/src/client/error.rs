//! The one error type of the clients: a small `Copy` kind to count by, plus the detail a log
//! line needs.

use std::io;

use crate::error::ErrorKind;
use crate::postgrest::PostgrestError;

/// A failed request or socket operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} (status {status:?}, code {code:?}): {message}", kind.name())]
pub struct ClientError {
    /// What to count it by.
    pub kind: ErrorKind,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The PostgREST code (SQLSTATE or `PGRSTxxx`) or GoTrue error slug, when the body had one.
    pub code: Option<String>,
    pub message: String,
}

impl ClientError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError {
            kind,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    /// The device is cut off by a simulated network fault.
    pub fn offline() -> ClientError {
        ClientError::new(ErrorKind::Offline, "the device is offline")
    }

    /// Decodes a PostgREST error response (`{code, message, details, hint}`); a body that is not
    /// one (a proxy's page, an empty body) still yields a kind from the status alone.
    pub fn from_postgrest(status: u16, body: &[u8]) -> ClientError {
        match serde_json::from_slice::<PostgrestError>(body) {
            Ok(e) => ClientError {
                kind: ErrorKind::from_http(status, Some(&e.code)),
                status: Some(status),
                code: Some(e.code),
                message: e.message,
            },
            Err(_) => ClientError {
                kind: ErrorKind::from_http(status, None),
                status: Some(status),
                code: None,
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            },
        }
    }

    /// Decodes a GoTrue error body, default (`{code, error_code, msg}`) or API-versioned
    /// (`{code: "<slug>", message}`). Bad credentials and refused refresh tokens count as
    /// `unauthorized`, although GoTrue answers them with 400.
    pub fn from_gotrue(status: u16, body: &[u8]) -> ClientError {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let slug = value
            .get("error_code")
            .and_then(|v| v.as_str())
            .or_else(|| value.get("code").and_then(|v| v.as_str()))
            .map(str::to_owned);
        let message = value
            .get("msg")
            .or_else(|| value.get("message"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let kind = match slug.as_deref() {
            Some(s) if s.starts_with("refresh_token") || s == "invalid_credentials" => {
                ErrorKind::Unauthorized
            }
            Some("over_request_rate_limit") => ErrorKind::RateLimited,
            _ => ErrorKind::from_http(status, None),
        };
        ClientError {
            kind,
            status: Some(status),
            code: slug,
            message,
        }
    }

    /// Classifies a transport failure: timeouts, refused or reset connections, and the two
    /// local resource limits a large swarm meets (open files, ephemeral ports).
    pub fn from_reqwest(e: &reqwest::Error) -> ClientError {
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if let Some(io) = find_io_error(e) {
            io_kind(io)
        } else if e.is_decode() {
            ErrorKind::Decode
        } else {
            ErrorKind::Connect
        };
        ClientError::new(kind, error_chain(e))
    }

    pub fn from_io(e: &io::Error) -> ClientError {
        ClientError::new(io_kind(e), e.to_string())
    }
}

/// Linux errno values (`EMFILE`, `ENFILE`) that std has no stable `io::ErrorKind` for.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The kind of a socket-level error.
pub fn io_kind(e: &io::Error) -> ErrorKind {
    match (e.raw_os_error(), e.kind()) {
        (Some(EMFILE | ENFILE), _) => ErrorKind::Emfile,
        (_, io::ErrorKind::AddrNotAvailable) => ErrorKind::AddrNotAvailable,
        (_, io::ErrorKind::TimedOut) => ErrorKind::Timeout,
        _ => ErrorKind::Connect,
    }
}

fn find_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgrest_bodies_decode_into_kinds() {
        let body = br#"{"code":"PGRST003","message":"Timed out acquiring connection","details":null,"hint":null}"#;
        let e = ClientError::from_postgrest(504, body);
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (ErrorKind::PoolTimeout, Some("PGRST003"))
        );
        let e = ClientError::from_postgrest(
            409,
            br#"{"code":"23503","message":"fk","details":"x","hint":null}"#,
        );
        assert_eq!(e.kind, ErrorKind::Conflict);
        let e = ClientError::from_postgrest(502, b"<html>bad gateway</html>");
        assert_eq!((e.kind, e.code), (ErrorKind::Http5xx, None));
    }

    #[test]
    fn gotrue_bodies_decode_both_shapes() {
        let e = ClientError::from_gotrue(
            400,
            br#"{"code":400,"error_code":"refresh_token_already_used","msg":"Invalid Refresh Token"}"#,
        );
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        let e = ClientError::from_gotrue(
            429,
            br#"{"code":"over_request_rate_limit","message":"slow"}"#,
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(ClientError::from_gotrue(422, b"").kind, ErrorKind::Http4xx);
    }

    #[test]
    fn local_resource_limits_have_their_own_kinds() {
        assert_eq!(
            io_kind(&io::Error::from_raw_os_error(EMFILE)),
            ErrorKind::Emfile
        );
        let no_port = io::Error::from(io::ErrorKind::AddrNotAvailable);
        assert_eq!(io_kind(&no_port), ErrorKind::AddrNotAvailable);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_kind(&refused), ErrorKind::Connect);
    }
}
