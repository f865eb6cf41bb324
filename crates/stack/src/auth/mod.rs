//! Auth, a GoTrue subset under `/auth/v1`: admin user creation, signup (autoconfirmed),
//! password and refresh-token grants, and the current user.

mod admin_list;
pub mod api_version;
mod error;
mod handlers;
pub mod ratelimit;
pub mod sessions;
pub mod users;

pub use error::AuthError;

use crate::keys::Keys;
use axum::Router;
use axum::routing::{delete, get, post};
use ratelimit::TokenLimiter;
use std::sync::Arc;
use std::time::Duration;

/// SQL the embedded Auth needs on top of the compatibility schema (idempotent).
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// What the auth handlers share.
pub struct AuthState {
    pub db: Arc<crate::pool::MeteredPool>,
    pub keys: Arc<Keys>,
    pub jwt_expiry: Duration,
    pub bcrypt_cost: u32,
    pub limiter: Option<TokenLimiter>,
}

/// The `/auth/v1` routes (mounted under that prefix by the server).
pub fn router(state: Arc<AuthState>) -> Router {
    Router::new()
        .route(
            "/admin/users",
            post(handlers::admin_create_user).get(admin_list::list_users),
        )
        .route("/admin/users/{id}", delete(admin_list::delete_user))
        .route("/signup", post(handlers::signup))
        .route("/token", post(handlers::token))
        .route("/user", get(handlers::current_user))
        .layer(axum::middleware::from_fn(
            api_version::respond_in_requested_version,
        ))
        .with_state(state)
}
