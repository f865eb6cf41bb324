//! GoTrue (Supabase Auth) bodies, shaped like supabase/auth v2's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /token?grant_type=password` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordGrant {
    pub email: String,
    pub password: String,
}

/// `POST /token?grant_type=refresh_token` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub refresh_token: String,
}

/// `POST /signup` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signup {
    pub email: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// `POST /admin/users` body (service role only).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdminCreateUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub email_confirm: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_metadata: Option<Value>,
}

/// The user object GoTrue returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub aud: String,
    pub role: String,
    pub email: String,
    #[serde(default)]
    pub phone: String,
    /// The timestamps GoTrue omits while unset (`omitempty`; never `null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_confirmed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<String>,
    #[serde(default)]
    pub app_metadata: Value,
    #[serde(default)]
    pub user_metadata: Value,
    #[serde(default)]
    pub identities: Vec<Value>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub is_anonymous: bool,
}

/// A session: the answer to a password or refresh grant (and to signup with autoconfirm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub refresh_token: String,
    pub user: User,
}

/// GoTrue's default error body: `{"code": 400, "error_code": "invalid_credentials", "msg": "…"}`,
/// answered to requests without an `X-Supabase-Api-Version` header (or with one older than
/// 2024-01-01). A weak password adds `weak_password: {"reasons": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthErrorBody {
    pub code: u16,
    pub error_code: String,
    pub msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_password: Option<WeakPassword>,
}

/// GoTrue's error body for API version 2024-01-01 (`X-Supabase-Api-Version: 2024-01-01`, which
/// supabase-js and supabase-py send): `{"code": "invalid_credentials", "message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthErrorBody20240101 {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weak_password: Option<WeakPassword>,
}

/// Why a password was refused (`length`, `characters`, `pwned`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeakPassword {
    pub reasons: Vec<String>,
}

/// The request header naming the API version a client understands, and GoTrue's one dated
/// version (2024-01-01) that changes the error body.
pub const API_VERSION_HEADER: &str = "x-supabase-api-version";
pub const API_VERSION_2024_01_01: &str = "2024-01-01";

/// Error codes (slugs) GoTrue uses that the harness meets.
pub mod error_code {
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    pub const REFRESH_TOKEN_NOT_FOUND: &str = "refresh_token_not_found";
    pub const REFRESH_TOKEN_ALREADY_USED: &str = "refresh_token_already_used";
    pub const UNSUPPORTED_GRANT_TYPE: &str = "unsupported_grant_type";
    pub const OVER_REQUEST_RATE_LIMIT: &str = "over_request_rate_limit";
    pub const EMAIL_EXISTS: &str = "email_exists";
    pub const VALIDATION_FAILED: &str = "validation_failed";
    pub const BAD_JWT: &str = "bad_jwt";
    pub const NOT_ADMIN: &str = "not_admin";
    pub const BAD_JSON: &str = "bad_json";
    pub const WEAK_PASSWORD: &str = "weak_password";
}
