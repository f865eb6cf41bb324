//! Sessions: access tokens (HS256, Supabase's claims) and rotating refresh tokens.
//!
//! A refresh token is used once: the grant revokes it and issues its child in one statement, so
//! two concurrent refreshes of the same token cannot both succeed.

use super::error::AuthError;
use crate::keys::{Keys, random_token};
use deadpool_postgres::Client;
use std::time::Duration;
use syncstorm_wire::gotrue::{TokenResponse, User, error_code};
use syncstorm_wire::jwt::{self, Claims};
use uuid::Uuid;

/// What a refresh-token grant found.
pub enum Rotation {
    /// The token was live: here is its child and the session it belongs to.
    Rotated {
        user_id: Uuid,
        session_id: Uuid,
        refresh_token: String,
    },
    /// The token exists but was already exchanged.
    AlreadyUsed,
    /// No such token.
    NotFound,
}

/// Opens a new session for `user_id` and returns its first refresh token.
pub async fn open(db: &Client, user_id: Uuid) -> Result<(Uuid, String), tokio_postgres::Error> {
    let session_id = Uuid::new_v4();
    let token = random_token(32);
    let stmt = db
        .prepare_cached(
            "with session as (insert into auth.sessions (id, user_id) values ($3, $2)) \
             insert into auth.refresh_tokens (token, user_id, revoked, session_id, created_at, updated_at) \
             values ($1, $2, false, $3, now(), now())",
        )
        .await?;
    db.execute(&stmt, &[&token, &user_id, &session_id]).await?;
    Ok((session_id, token))
}

/// Exchanges a refresh token for its child.
pub async fn rotate(db: &Client, token: &str) -> Result<Rotation, tokio_postgres::Error> {
    let stmt = db
        .prepare_cached(
            "with used as ( \
               update auth.refresh_tokens set revoked = true, updated_at = now() \
               where token = $1 and not coalesce(revoked, false) \
               returning user_id, session_id, token) \
             insert into auth.refresh_tokens (token, user_id, revoked, parent, session_id, created_at, updated_at) \
             select $2, user_id, false, token, session_id, now(), now() from used \
             returning user_id, session_id",
        )
        .await?;
    let child = random_token(32);
    if let Some(row) = db.query_opt(&stmt, &[&token, &child]).await? {
        return Ok(Rotation::Rotated {
            user_id: row.get(0),
            session_id: row.get(1),
            refresh_token: child,
        });
    }
    let exists = db
        .prepare_cached("select 1 from auth.refresh_tokens where token = $1")
        .await?;
    Ok(match db.query_opt(&exists, &[&token]).await? {
        Some(_) => Rotation::AlreadyUsed,
        None => Rotation::NotFound,
    })
}

/// The error GoTrue answers a refused refresh with.
pub fn refusal(rotation: &Rotation) -> AuthError {
    use axum::http::StatusCode;
    match rotation {
        Rotation::AlreadyUsed => AuthError::new(
            StatusCode::BAD_REQUEST,
            error_code::REFRESH_TOKEN_ALREADY_USED,
            "Invalid Refresh Token: Already Used",
        ),
        _ => AuthError::new(
            StatusCode::BAD_REQUEST,
            error_code::REFRESH_TOKEN_NOT_FOUND,
            "Invalid Refresh Token: Refresh Token Not Found",
        ),
    }
}

/// Signs an access token for `user` in `session_id` and wraps it in GoTrue's token response.
pub fn token_response(
    keys: &Keys,
    expiry: Duration,
    user: User,
    session_id: Uuid,
    refresh_token: String,
) -> TokenResponse {
    let now = chrono::Utc::now().timestamp();
    let expires_in = expiry.as_secs() as i64;
    let claims = Claims {
        sub: Some(user.id.clone()),
        role: user.role.clone(),
        aud: Some(user.aud.clone()),
        exp: now + expires_in,
        iat: now,
        iss: None,
        email: Some(user.email.clone()),
        session_id: Some(session_id.to_string()),
    };
    TokenResponse {
        access_token: jwt::encode(&keys.jwt_secret, &claims),
        token_type: "bearer".to_string(),
        expires_in,
        expires_at: now + expires_in,
        refresh_token,
        user,
    }
}
