//! Supabase access-token claims and HS256 signing, as GoTrue issues them and PostgREST and
//! Realtime check them.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

/// Claims of a Supabase JWT. API keys (`anon`, `service_role`) carry only `role`, `iss`,
/// `iat`, `exp`; user access tokens add `sub`, `aud`, `email`, `session_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT expired")]
    Expired,
    #[error("JWT could not be decoded or its signature is invalid")]
    Invalid,
}

/// Signs claims with HS256.
pub fn encode(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of serializable claims cannot fail")
}

/// Verifies an HS256 token and its expiry (no leeway, like PostgREST) and returns its claims.
pub fn decode(secret: &str, token: &str) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.required_spec_claims.insert("exp".to_string());
    jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => JwtError::Expired,
        _ => JwtError::Invalid,
    })
}

/// Reads the claims of a token without checking its signature (clients use this to learn
/// `exp` and `sub` of their own tokens).
pub fn peek(token: &str) -> Option<Claims> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A long-lived API key (`anon` or `service_role`) signed with the project's secret.
pub fn api_key(secret: &str, role: &str, now: i64) -> String {
    encode(
        secret,
        &Claims {
            sub: None,
            role: role.to_string(),
            aud: None,
            exp: now + 10 * 365 * 24 * 3600,
            iat: now,
            iss: Some("supabase".to_string()),
            email: None,
            session_id: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_claims(exp: i64) -> Claims {
        Claims {
            sub: Some("2b0c4e9e-0000-4000-8000-000000000001".into()),
            role: "authenticated".into(),
            aud: Some("authenticated".into()),
            exp,
            iat: 0,
            iss: None,
            email: Some("a@example.com".into()),
            session_id: None,
        }
    }

    #[test]
    fn round_trip_and_peek() {
        let token = encode("secret", &user_claims(i64::MAX / 2));
        assert_eq!(decode("secret", &token).unwrap(), user_claims(i64::MAX / 2));
        assert_eq!(peek(&token).unwrap().sub, user_claims(0).sub);
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        assert_eq!(
            decode("secret", &encode("secret", &user_claims(1))),
            Err(JwtError::Expired)
        );
        let forged = encode("other", &user_claims(i64::MAX / 2));
        assert_eq!(decode("secret", &forged), Err(JwtError::Invalid));
        assert_eq!(decode("secret", "not.a.jwt"), Err(JwtError::Invalid));
    }
}
