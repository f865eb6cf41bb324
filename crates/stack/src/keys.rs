//! The project's JWT secret and its two API keys, and how a request's credentials are read
//! (Kong's `apikey` check, then the `Authorization: Bearer` token that selects the role).

use axum::http::HeaderMap;
use rand::Rng;
use rand::distr::Alphanumeric;
use syncstorm_wire::jwt::{self, Claims, JwtError};

/// The role a Supabase API key grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyRole {
    Anon,
    ServiceRole,
}

/// The HS256 secret and the `anon` / `service_role` keys signed with it.
#[derive(Debug, Clone)]
pub struct Keys {
    pub jwt_secret: String,
    pub anon_key: String,
    pub service_role_key: String,
}

impl Keys {
    /// Keys for `secret`, or for a fresh random 48-character secret.
    pub fn new(secret: Option<String>) -> Self {
        Keys::issued_at(secret, chrono::Utc::now().timestamp())
    }

    /// Keys signed as of `now` (Unix seconds): every worker of one stack signs with the
    /// parent's time, so all of them accept the exact same key strings.
    pub fn issued_at(secret: Option<String>, now: i64) -> Self {
        let jwt_secret = secret.unwrap_or_else(|| random_token(48));
        Keys {
            anon_key: jwt::api_key(&jwt_secret, "anon", now),
            service_role_key: jwt::api_key(&jwt_secret, "service_role", now),
            jwt_secret,
        }
    }

    /// Which project key `key` is, if any (Kong compares keys exactly).
    pub fn api_key_role(&self, key: &str) -> Option<ApiKeyRole> {
        if key == self.anon_key {
            Some(ApiKeyRole::Anon)
        } else if key == self.service_role_key {
            Some(ApiKeyRole::ServiceRole)
        } else {
            None
        }
    }

    /// Verifies a JWT with the project's secret.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        jwt::decode(&self.jwt_secret, token)
    }
}

/// A random alphanumeric string (secrets, refresh tokens).
pub fn random_token(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An `Authorization` header that is not `Bearer <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Authorization header is not a bearer token")]
pub struct NotBearer;

/// The token of an `Authorization: Bearer <token>` header; `Ok(None)` without the header.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, NotBearer> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(NotBearer);
    }
    Ok(Some(token.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_recognised_and_carry_their_roles() {
        let keys = Keys::new(Some("s".repeat(40)));
        assert_eq!(keys.api_key_role(&keys.anon_key), Some(ApiKeyRole::Anon));
        assert_eq!(
            keys.api_key_role(&keys.service_role_key),
            Some(ApiKeyRole::ServiceRole)
        );
        assert_eq!(keys.api_key_role("nope"), None);
        assert_eq!(
            keys.verify(&keys.service_role_key).unwrap().role,
            "service_role"
        );
    }

    #[test]
    fn bearer_headers_parse_strictly() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Ok(None));
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Ok(Some("abc")));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Err(NotBearer));
    }
}
