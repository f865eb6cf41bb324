//! Checking the JWTs Realtime sees (the socket's `apikey`, a channel's `access_token`) with the
//! reasons Realtime gives when it refuses them.

use super::registry::SubClaims;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A verified token: who it authorizes as, and until when.
#[derive(Debug, Clone)]
pub struct Identity {
    pub claims: Arc<SubClaims>,
    pub exp: i64,
    /// Hash of the token text, to ignore a refresh with the same token.
    pub fingerprint: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token has expired {0} seconds ago")]
    Expired(i64),
    #[error("Fields `role` and `exp` are required in JWT")]
    MissingClaims,
    #[error("The token provided is not a valid JWT")]
    Malformed,
    #[error("Failed to validate JWT signature")]
    Signature,
}

impl TokenError {
    /// The reason of a refused join, with Realtime's error code prefix.
    pub fn join_reason(&self) -> String {
        let code = match self {
            TokenError::Expired(_) | TokenError::MissingClaims => "InvalidJWTToken",
            TokenError::Malformed => "MalformedJWT",
            TokenError::Signature => "JwtSignatureError",
        };
        format!("{code}: {self}")
    }
}

fn fingerprint(token: &str) -> u64 {
    token.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Verifies an HS256/384/512 token signed with `secret`; needs `role` and `exp` > `now`.
pub fn verify(secret: &str, token: &str, now: i64) -> Result<Identity, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let key = DecodingKey::from_secret(secret.as_bytes());
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::Signature,
            _ => TokenError::Malformed,
        },
    )?;
    let claims = data.claims;
    let role = claims.get("role").and_then(Value::as_str);
    let exp = claims.get("exp").and_then(Value::as_i64);
    let (Some(role), Some(exp)) = (role, exp) else {
        return Err(TokenError::MissingClaims);
    };
    if exp <= now {
        // Saturating: a signed token may carry any `exp`, down to i64::MIN.
        return Err(TokenError::Expired(now.saturating_sub(exp)));
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string);
    let json = Value::Object(claims.clone()).to_string();
    Ok(Identity {
        claims: Arc::new(SubClaims {
            role: role.to_string(),
            sub,
            json,
        }),
        exp,
        fingerprint: fingerprint(token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn sign(secret: &str, claims: Value) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes());
        jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap()
    }

    #[test]
    fn an_expiry_at_the_bottom_of_i64_is_refused_without_overflow() {
        // Found by the fuzzer (`syncstorm-fuzz jwt`): `now - exp` overflowed and panicked.
        let token = sign("s", serde_json::json!({"role": "anon", "exp": i64::MIN}));
        assert_eq!(
            verify("s", &token, 100).unwrap_err(),
            TokenError::Expired(i64::MAX)
        );
    }

    #[test]
    fn refusals_carry_realtimes_reasons() {
        let ok = sign(
            "s",
            serde_json::json!({"role": "authenticated", "sub": "u1", "exp": 200}),
        );
        let id = verify("s", &ok, 100).unwrap();
        assert_eq!(id.claims.role, "authenticated");
        assert_eq!((id.claims.sub.as_deref(), id.exp), (Some("u1"), 200));
        assert_eq!(
            verify("s", &ok, 230).unwrap_err().join_reason(),
            "InvalidJWTToken: Token has expired 30 seconds ago"
        );
        assert_eq!(
            verify("other", &ok, 100).unwrap_err(),
            TokenError::Signature
        );
        assert_eq!(
            verify("s", "garbage", 100).unwrap_err(),
            TokenError::Malformed
        );
        let no_role = sign("s", serde_json::json!({"exp": 200}));
        assert_eq!(
            verify("s", &no_role, 100).unwrap_err(),
            TokenError::MissingClaims
        );
    }
}
