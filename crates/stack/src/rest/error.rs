//! REST errors in PostgREST's body `{code, message, details, hint}` with its status mapping.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use syncstorm_wire::postgrest::{PostgrestError, status_for_sqlstate};

/// `text` with its control characters escaped (`\n` for a line break): messages echo the
/// query string's names and values, and a decoded `%0A` must not split them.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// One failed REST request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {}", body.code, body.message)]
pub struct RestError {
    pub status: StatusCode,
    pub body: PostgrestError,
}

impl RestError {
    pub fn new(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        details: Option<String>,
    ) -> Self {
        RestError {
            status,
            body: PostgrestError {
                code: code.to_string(),
                message: escape_controls(&message.into()),
                details,
                hint: None,
            },
        }
    }

    /// PGRST100: the query string could not be parsed.
    pub fn parse(what: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PGRST100",
            format!("failed to parse {what}"),
            Some(escape_controls(why)),
        )
    }

    /// PGRST102: the body is not the JSON the endpoint takes.
    pub fn body(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PGRST102",
            "Empty or invalid json",
            Some(details.into()),
        )
    }

    /// PGRST205: unknown table (PostgREST 12+).
    pub fn unknown_table(table: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table 'public.{table}' in the schema cache"),
            None,
        )
    }

    /// 42703: unknown column in a query parameter.
    pub fn unknown_column(table: &str, column: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "42703",
            format!("column {table}.{column} does not exist"),
            None,
        )
    }

    /// PGRST204: a body key that is not a column.
    pub fn unknown_body_column(table: &str, column: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PGRST204",
            format!("Could not find the '{column}' column of '{table}' in the schema cache"),
            None,
        )
    }

    /// PGRST202: unknown function or argument names.
    pub fn unknown_function(name: &str, args: &[String]) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "PGRST202",
            format!(
                "Could not find the function public.{name}({}) in the schema cache",
                args.join(", ")
            ),
            None,
        )
    }

    /// PGRST301 / PGRST303: a bearer token that does not verify or has expired.
    pub fn jwt(expired: bool) -> Self {
        if expired {
            Self::new(StatusCode::UNAUTHORIZED, "PGRST303", "JWT expired", None)
        } else {
            Self::new(
                StatusCode::UNAUTHORIZED,
                "PGRST301",
                "JWT could not be decoded or its signature is invalid",
                None,
            )
        }
    }

    /// PGRST003: no pooled connection within the plan's wait.
    pub fn pool_timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "PGRST003",
            "Timed out acquiring connection from connection pool.",
            None,
        )
    }

    /// A database error, mapped like PostgREST; `authenticated` = a JWT role was used.
    pub fn from_db(err: &tokio_postgres::Error, authenticated: bool) -> Self {
        let Some(db) = err.as_db_error() else {
            tracing::warn!(error = %err, "REST database connection error");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PGRST001",
                "Database client error. Retrying the connection.",
                Some(err.to_string()),
            );
        };
        let code = db.code().code();
        let status = StatusCode::from_u16(status_for_sqlstate(code, authenticated))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        RestError {
            status,
            body: PostgrestError {
                code: code.to_string(),
                message: db.message().to_string(),
                details: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
            },
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_echoes_a_line_break_escaped() {
        // Found by the fuzzer (`syncstorm-fuzz postgrest-query`): `%0A` decoded into the echo.
        let err = RestError::parse("note=eq.a\nb", "why");
        assert_eq!(err.body.message, "failed to parse note=eq.a\\nb");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn an_unknown_column_with_a_line_break_is_named_on_one_line() {
        // Found by the fuzzer: `columns=a%0Amount` echoed into PGRST204's message.
        let err = RestError::unknown_body_column("transactions", "a\nmount");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
