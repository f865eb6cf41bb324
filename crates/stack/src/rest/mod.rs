//! REST, a PostgREST subset under `/rest/v1`: reads with filters, ordering and ranges; inserts,
//! upserts, updates and deletes; RPC. Each request is one transaction as the JWT's role with
//! `request.jwt.claims` set, so row-level security and statement timeouts are PostgreSQL's.

pub mod cache;
pub mod error;
mod exec;
mod handlers;
pub mod logic;
mod prefer;
pub mod query;
pub mod sql;

pub use cache::SchemaCache;
pub use error::RestError;
pub use exec::RoleContext;

use crate::keys::{Keys, bearer_token};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use std::sync::Arc;
use syncstorm_wire::jwt::JwtError;

/// What the REST handlers share.
pub struct RestState {
    /// Connections as `authenticator`, sized and timed by the plan.
    pub db: Arc<crate::pool::MeteredPool>,
    pub cache: SchemaCache,
    pub keys: Arc<Keys>,
    /// PostgREST's `db-max-rows`.
    pub max_rows: i64,
}

/// The `/rest/v1` routes (mounted under that prefix by the server).
pub fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route("/rpc/{function}", post(handlers::rpc))
        .route(
            "/{table}",
            get(handlers::read)
                .post(handlers::insert)
                .patch(handlers::update)
                .delete(handlers::delete),
        )
        .with_state(state)
}

impl RestState {
    /// The role a request runs as: the bearer token's `role` claim, or `anon` without one.
    pub fn role_context(&self, headers: &HeaderMap) -> Result<RoleContext, RestError> {
        let claims = match bearer_token(headers) {
            Ok(Some(token)) => Some(
                self.keys
                    .verify(token)
                    .map_err(|e| RestError::jwt(e == JwtError::Expired))?,
            ),
            _ => None,
        };
        let (role, claims_json) = match &claims {
            Some(claims) => (
                claims.role.clone(),
                serde_json::to_string(claims).unwrap_or_default(),
            ),
            None => ("anon".to_string(), r#"{"role":"anon"}"#.to_string()),
        };
        let session_tag = match claims.as_ref().and_then(|c| c.sub.as_deref()) {
            Some(sub) => format!("{}{sub}", exec::USER_TAG),
            None => format!("syncstorm:role:{role}"),
        };
        Ok(RoleContext {
            session_tag,
            statement_timeout: self.cache.statement_timeouts.get(&role).cloned(),
            claims: claims_json,
            authenticated: role != "anon",
            role,
        })
    }
}
