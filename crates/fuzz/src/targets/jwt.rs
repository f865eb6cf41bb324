//! The JWT decoders: PostgREST's and GoTrue's check (`jwt::decode`), the clients' unsigned
//! read (`jwt::peek`) and Realtime's check (`realtime::token::verify`). Most inputs are real
//! tokens whose header or claims JSON was mutated and then signed again with the project's
//! secret, so the signature holds and the claims reach the code that reads them; the rest are
//! mutated token text.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use syncstorm_stack::realtime::token;
use syncstorm_wire::jwt::{self, Claims};

use crate::engine::{Target, Verdict, judged, one_sentence};
use crate::mutate::Mutator;

const SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

const HEADERS: &[&str] = &[
    r#"{"alg":"HS256","typ":"JWT"}"#,
    r#"{"alg":"HS384","typ":"JWT"}"#,
    r#"{"alg":"HS512","typ":"JWT"}"#,
    r#"{"alg":"none","typ":"JWT"}"#,
    r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
];

fn seed_claims(now: i64) -> Vec<String> {
    let user = Claims {
        sub: Some("8f0c6b1e-3c1f-4b6e-9a51-0d3c1b7e2a90".into()),
        role: "authenticated".into(),
        aud: Some("authenticated".into()),
        exp: now + 3600,
        iat: now,
        iss: Some("http://127.0.0.1:54321/auth/v1".into()),
        email: Some("user-1@syncstorm.test".into()),
        session_id: Some("0b1e4a2c-9d3f-4e5a-8b7c-6d5e4f3a2b1c".into()),
    };
    let key = Claims {
        sub: None,
        role: "anon".into(),
        aud: None,
        exp: now + 10 * 365 * 86_400,
        iat: now,
        iss: Some("supabase".into()),
        email: None,
        session_id: None,
    };
    let expired = Claims {
        exp: now - 60,
        ..user.clone()
    };
    [user, key, expired]
        .iter()
        .map(|c| serde_json::to_string(c).expect("claims serialize"))
        .collect()
}

pub struct JwtDecoder {
    /// The instant tokens are issued and checked at: the run's start, as `jwt::decode` checks
    /// expiry against the clock.
    now: i64,
    headers: Mutator,
    claims: Mutator,
    tokens: Mutator,
}

impl Default for JwtDecoder {
    fn default() -> Self {
        let now = chrono::Utc::now().timestamp();
        let claims = seed_claims(now);
        let tokens = claims
            .iter()
            .zip(HEADERS)
            .map(|(c, h)| signed(h, c, Algorithm::HS256))
            .collect();
        JwtDecoder {
            now,
            headers: Mutator::new(HEADERS.iter().map(|s| s.to_string()).collect(), &[]),
            claims: Mutator::new(claims, &["\"exp\":", "\"role\":", "\"sub\":"]),
            tokens: Mutator::new(tokens, &[".", "=", "eyJ", "-", "_", "+", "/"]),
        }
    }
}

/// `header.claims.signature`, signed with the project's secret.
fn signed(header: &str, claims: &str, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        alg,
    )
    .expect("HMAC signing cannot fail");
    format!("{message}.{signature}")
}

impl Target for JwtDecoder {
    type Input = String;

    fn name(&self) -> &'static str {
        "jwt"
    }

    fn generate(&self, rng: &mut SmallRng) -> String {
        if rng.random_ratio(1, 3) {
            return self.tokens.generate(rng);
        }
        let pick = |m: &Mutator, rng: &mut SmallRng| {
            let seed = m.seeds().choose(rng).cloned().unwrap_or_default();
            if rng.random_ratio(1, 2) {
                m.mutate(&seed, rng)
            } else {
                seed
            }
        };
        let header = if rng.random_ratio(1, 4) {
            pick(&self.headers, rng)
        } else {
            HEADERS[0].to_string()
        };
        let claims = pick(&self.claims, rng);
        // Signed as the header says, so a valid header meets a valid signature.
        let alg = if header.contains("HS384") {
            Algorithm::HS384
        } else if header.contains("HS512") {
            Algorithm::HS512
        } else {
            Algorithm::HS256
        };
        signed(&header, &claims, alg)
    }

    fn check(&self, token: &String) -> Result<Verdict, String> {
        let _ = jwt::peek(token);
        if let Err(e) = token::verify(SECRET, token, self.now) {
            one_sentence(&e)?;
            one_sentence(&e.join_reason())?;
        }
        judged(&jwt::decode(SECRET, token))
    }
}
