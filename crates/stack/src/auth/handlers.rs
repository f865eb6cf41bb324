//! The `/auth/v1` endpoint handlers.

use super::AuthState;
use super::error::AuthError;
use super::sessions::{self, Rotation};
use super::users::{self, NewUser};
use crate::keys::bearer_token;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use syncstorm_wire::gotrue::{
    AdminCreateUser, PasswordGrant, RefreshGrant, Signup, User, error_code,
};
use uuid::Uuid;

type Shared = State<Arc<AuthState>>;

/// GoTrue's default minimum password length, in bytes as Go's `len` counts.
const MIN_PASSWORD_LEN: usize = 6;
/// The longest password GoTrue takes (bcrypt reads 72 bytes).
const MAX_PASSWORD_LEN: usize = 72;

#[derive(Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

/// `POST /admin/users`: creates a user; only the service role may.
pub async fn admin_create_user(
    State(s): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    require_service_role(&s, &headers)?;
    let req: AdminCreateUser = parse_json(&body)?;
    let user = create_user(
        &s,
        &req.email,
        &req.password,
        req.email_confirm,
        req.user_metadata,
    )
    .await
    .map_err(|e| {
        with_code(
            e,
            error_code::EMAIL_EXISTS,
            "A user with this email address has already been registered",
        )
    })?;
    Ok(Json(user).into_response())
}

/// `POST /signup`: creates a confirmed user (autoconfirm) and signs it in.
pub async fn signup(State(s): Shared, body: Bytes) -> Result<Response, AuthError> {
    let req: Signup = parse_json(&body)?;
    let user = create_user(&s, &req.email, &req.password, true, req.data)
        .await
        .map_err(|e| with_code(e, "user_already_exists", "User already registered"))?;
    let id = parse_id(&user.id)?;
    Ok(Json(open_session(&s, id).await?).into_response())
}

/// `POST /token?grant_type=password|refresh_token`.
pub async fn token(
    State(s): Shared,
    Query(q): Query<GrantQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    check_rate_limit(&s, &headers, peer)?;
    match q.grant_type.as_deref() {
        Some("password") => password_grant(&s, parse_json(&body)?).await,
        Some("refresh_token") => refresh_grant(&s, parse_json(&body)?).await,
        _ => Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            error_code::UNSUPPORTED_GRANT_TYPE,
            "unsupported_grant_type",
        )),
    }
}

/// `GET /user`: the user the bearer token names.
pub async fn current_user(State(s): Shared, headers: HeaderMap) -> Result<Response, AuthError> {
    let claims = match bearer_token(&headers) {
        Ok(Some(token)) => s.keys.verify(token).map_err(|e| bad_jwt(&e.to_string()))?,
        _ => {
            return Err(AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            ));
        }
    };
    let id = claims
        .sub
        .as_deref()
        .and_then(|sub| Uuid::parse_str(sub).ok())
        .ok_or_else(|| bad_jwt("invalid claim: missing sub claim"))?;
    let db = s.db.get().await?;
    let user = users::by_id(&db, id).await?.ok_or_else(|| {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })?;
    Ok(Json(user).into_response())
}

async fn password_grant(s: &AuthState, req: PasswordGrant) -> Result<Response, AuthError> {
    let db = s.db.get().await?;
    let stored = users::by_email(&db, req.email.trim()).await?;
    let Some(stored) = stored else {
        return Err(AuthError::invalid_credentials());
    };
    let hash = stored.password_hash.unwrap_or_default();
    let password = req.password;
    let matches =
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
    if !matches {
        return Err(AuthError::invalid_credentials());
    }
    if stored.user.email_confirmed_at.is_none() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    drop(db);
    let id = parse_id(&stored.user.id)?;
    Ok(Json(open_session(s, id).await?).into_response())
}

async fn refresh_grant(s: &AuthState, req: RefreshGrant) -> Result<Response, AuthError> {
    let db = s.db.get().await?;
    let rotation = sessions::rotate(&db, req.refresh_token.trim()).await?;
    let Rotation::Rotated {
        user_id,
        session_id,
        refresh_token,
    } = rotation
    else {
        return Err(sessions::refusal(&rotation));
    };
    let user = users::by_id(&db, user_id)
        .await?
        .ok_or_else(|| sessions::refusal(&Rotation::NotFound))?;
    let response = sessions::token_response(&s.keys, s.jwt_expiry, user, session_id, refresh_token);
    Ok(Json(response).into_response())
}

/// Stamps the sign-in, opens a session and answers with GoTrue's token response.
async fn open_session(
    s: &AuthState,
    id: Uuid,
) -> Result<syncstorm_wire::gotrue::TokenResponse, AuthError> {
    let db = s.db.get().await?;
    let user = users::touch_sign_in(&db, id)
        .await?
        .ok_or_else(AuthError::invalid_credentials)?;
    let (session_id, refresh_token) = sessions::open(&db, id).await?;
    Ok(sessions::token_response(
        &s.keys,
        s.jwt_expiry,
        user,
        session_id,
        refresh_token,
    ))
}

/// `Err(None)` means the email is taken; the caller names the error like its endpoint does.
async fn create_user(
    s: &AuthState,
    email: &str,
    password: &str,
    confirmed: bool,
    user_metadata: Option<serde_json::Value>,
) -> Result<User, Option<AuthError>> {
    let email = validate_email(email).map_err(Some)?;
    check_password_strength(password).map_err(Some)?;
    let (password, cost) = (password.to_string(), s.bcrypt_cost);
    let hash = tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| Some(AuthError::database(e)))?
        .map_err(|e| Some(AuthError::database(e)))?;
    let db = s.db.get().await.map_err(|e| Some(e.into()))?;
    let new = NewUser {
        email,
        password_hash: &hash,
        confirmed,
        user_metadata: user_metadata.unwrap_or_else(|| serde_json::json!({})),
        app_metadata: users::email_app_metadata(),
    };
    users::insert(&db, &new)
        .await
        .map_err(|e| Some(e.into()))?
        .ok_or(None)
}

/// GoTrue's `checkPasswordStrength` with its default configuration (no required character
/// sets, no HaveIBeenPwned check).
fn check_password_strength(password: &str) -> Result<(), AuthError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(AuthError::validation(format!(
            "Password cannot be longer than {MAX_PASSWORD_LEN} characters"
        )));
    }
    if password.len() < MIN_PASSWORD_LEN {
        return Err(AuthError::weak_password(
            vec!["length"],
            format!("Password should be at least {MIN_PASSWORD_LEN} characters."),
        ));
    }
    Ok(())
}

fn with_code(err: Option<AuthError>, code: &'static str, msg: &str) -> AuthError {
    err.unwrap_or_else(|| AuthError::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg))
}

fn validate_email(email: &str) -> Result<&str, AuthError> {
    let email = email.trim();
    let valid = email.len() <= 255
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid && !email.contains(char::is_whitespace) {
        Ok(email)
    } else {
        Err(AuthError::validation(
            "Unable to validate email address: invalid format",
        ))
    }
}

pub(super) fn require_service_role(s: &AuthState, headers: &HeaderMap) -> Result<(), AuthError> {
    let token = match bearer_token(headers) {
        Ok(Some(token)) => token,
        _ => {
            return Err(AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            ));
        }
    };
    let claims = s.keys.verify(token).map_err(|e| bad_jwt(&e.to_string()))?;
    if claims.role != "service_role" {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            error_code::NOT_ADMIN,
            "User not allowed",
        ));
    }
    Ok(())
}

fn check_rate_limit(s: &AuthState, headers: &HeaderMap, peer: SocketAddr) -> Result<(), AuthError> {
    let Some(limiter) = &s.limiter else {
        return Ok(());
    };
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let key = forwarded.map_or_else(|| peer.ip().to_string(), str::to_string);
    if limiter.try_acquire(&key, Instant::now()) {
        Ok(())
    } else {
        Err(AuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            error_code::OVER_REQUEST_RATE_LIMIT,
            "Request rate limit reached",
        ))
    }
}

fn bad_jwt(detail: &str) -> AuthError {
    AuthError::new(
        StatusCode::FORBIDDEN,
        error_code::BAD_JWT,
        format!("invalid JWT: unable to parse or verify signature, {detail}"),
    )
}

fn parse_id(id: &str) -> Result<Uuid, AuthError> {
    Uuid::parse_str(id).map_err(AuthError::database)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(body).map_err(AuthError::bad_json)
}
