//! The embedded Supabase-compatible stack: a throwaway PostgreSQL with the FinOS schema, and
//! Auth (GoTrue subset), REST (PostgREST subset) and Realtime served over HTTP on loopback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), syncstorm_stack::StackError> {
//! use syncstorm_stack::{Stack, StackConfig};
//! let plan = syncstorm_plans::SupabasePlan::preset("pro").unwrap();
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let stack = Stack::start(StackConfig::new(plan), cancel).await?;
//! println!("{}", stack.env_lines());
//! stack.stop().await
//! # }
//! ```
pub mod auth;
pub mod config;
pub mod forward;
pub mod keys;
mod links;
pub mod pool;
pub mod postgres;
pub mod realtime;
pub mod rest;
mod routes;
pub mod schema;
pub mod server;
pub mod workers;

pub use config::StackConfig;
pub use server::{RunningStack, Shared, Stack, StackError};
