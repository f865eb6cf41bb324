//! The PostgREST error body and PostgREST's mapping of SQLSTATEs to HTTP statuses.

use serde::{Deserialize, Serialize};

/// `{"code": "<SQLSTATE or PGRSTxxx>", "message": …, "details": …, "hint": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgrestError {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
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
}
