//! GoTrue's API versions: a request whose `X-Supabase-Api-Version` header names 2024-01-01 or
//! later (supabase-js and supabase-py send `2024-01-01` on every Auth request) gets errors as
//! `{"code": "<slug>", "message": …}` and the version echoed in the response header; without
//! the header, or with an older or unparsable date, the default body stays. Successful
//! responses are the same in both versions. As GoTrue v2.186 does (`HandleResponseError`).

use super::error::AuthError;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use syncstorm_wire::gotrue::{API_VERSION_2024_01_01, API_VERSION_HEADER, AuthErrorBody20240101};

/// The API versions GoTrue tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    Initial,
    V20240101,
}

impl ApiVersion {
    /// The closest version at or before the header's date (`YYYY-MM-DD`); GoTrue answers a
    /// malformed date with the initial version (and logs a warning).
    pub fn from_header(value: Option<&str>) -> ApiVersion {
        let Some(date) = value.map(str::trim).filter(|d| !d.is_empty()) else {
            return ApiVersion::Initial;
        };
        let well_formed =
            date.len() == 10 && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
        if !well_formed {
            tracing::debug!(
                date,
                "invalid {API_VERSION_HEADER}, using the initial version"
            );
            return ApiVersion::Initial;
        }
        // Same-length ISO dates order as strings.
        if date >= API_VERSION_2024_01_01 {
            ApiVersion::V20240101
        } else {
            ApiVersion::Initial
        }
    }
}

/// Middleware: re-renders an Auth error in the body of the version the request names.
pub async fn respond_in_requested_version(request: Request, next: Next) -> Response {
    let version = ApiVersion::from_header(
        request
            .headers()
            .get(API_VERSION_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    let response = next.run(request).await;
    match (version, response.extensions().get::<AuthError>()) {
        (ApiVersion::V20240101, Some(err)) => versioned(err),
        _ => response,
    }
}

/// The 2024-01-01 rendering. GoTrue sends `x-sb-error-code` with it, except for a weak
/// password, whose versioned branch does not set the header.
fn versioned(err: &AuthError) -> Response {
    let body = AuthErrorBody20240101 {
        code: err.error_code.to_string(),
        message: err.msg.clone(),
        weak_password: err.weak_password_body(),
    };
    let mut response = (err.status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        API_VERSION_HEADER,
        HeaderValue::from_static(API_VERSION_2024_01_01),
    );
    if err.reasons.is_none() {
        headers.insert("x-sb-error-code", HeaderValue::from_static(err.error_code));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::ApiVersion::{self, Initial, V20240101};

    #[test]
    fn the_header_picks_the_closest_earlier_version() {
        for (header, want) in [
            (None, Initial),
            (Some(""), Initial),
            (Some("2024-01-01"), V20240101),
            (Some("2025-06-30"), V20240101),
            (Some("2023-12-31"), Initial),
            (Some("2024-1-01"), Initial),
            (Some("2024-13-01"), Initial),
            (Some("yesterday"), Initial),
        ] {
            assert_eq!(ApiVersion::from_header(header), want, "{header:?}");
        }
    }
}
