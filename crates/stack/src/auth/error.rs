//! Auth errors in GoTrue's default body `{"code": <status>, "error_code": "<slug>", "msg": …}`
//! with the slug repeated in the `x-sb-error-code` header, as supabase/auth sends them. The
//! response carries the error too, so `api_version` can answer in the 2024-01-01 body instead
//! when the request asks for it.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use syncstorm_wire::gotrue::{AuthErrorBody, WeakPassword, error_code};

/// One refused auth request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {error_code}: {msg}")]
pub struct AuthError {
    pub status: StatusCode,
    pub error_code: &'static str,
    pub msg: String,
    /// A weak password's reasons (`length`, …), sent as `weak_password.reasons`.
    pub reasons: Option<Vec<&'static str>>,
}

impl AuthError {
    pub fn new(status: StatusCode, error_code: &'static str, msg: impl Into<String>) -> Self {
        AuthError {
            status,
            error_code,
            msg: msg.into(),
            reasons: None,
        }
    }

    /// GoTrue's 422 `weak_password`, which names its reasons.
    pub fn weak_password(reasons: Vec<&'static str>, msg: impl Into<String>) -> Self {
        AuthError {
            reasons: Some(reasons),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                error_code::WEAK_PASSWORD,
                msg,
            )
        }
    }

    /// The `weak_password` member of the body, for a weak password only.
    pub fn weak_password_body(&self) -> Option<WeakPassword> {
        self.reasons.as_ref().map(|reasons| WeakPassword {
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        })
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error_code::INVALID_CREDENTIALS,
            "Invalid login credentials",
        )
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error_code::VALIDATION_FAILED, msg)
    }

    pub fn bad_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error_code::BAD_JSON,
            format!("Could not parse request body as JSON: {detail}"),
        )
    }

    /// A database failure: logged in full, answered with a generic 500 like GoTrue.
    pub fn database(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "auth database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Database error while processing the request",
        )
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = AuthErrorBody {
            code: self.status.as_u16(),
            error_code: self.error_code.to_string(),
            msg: self.msg.clone(),
            weak_password: self.weak_password_body(),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-sb-error-code", HeaderValue::from_static(self.error_code));
        response.extensions_mut().insert(self);
        response
    }
}

impl From<deadpool_postgres::PoolError> for AuthError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            // Expected under load and counted on /metrics (`syncstorm_pool_timeouts_total`);
            // one log line per refused request would flood the log and cost the CPU it measures.
            deadpool_postgres::PoolError::Timeout(_) => {
                tracing::debug!("auth pool timeout");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unexpected_failure",
                    "Database error while processing the request",
                )
            }
            other => AuthError::database(other),
        }
    }
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(err: tokio_postgres::Error) -> Self {
        AuthError::database(err)
    }
}
