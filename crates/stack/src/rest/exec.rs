//! Runs one request's statement in one transaction as the JWT's role, as PostgREST does:
//! `begin; set_config('role'…), set_config('request.jwt.claims'…), set_config(statement_timeout),
//! set_config(application_name); <statement>; commit`, pipelined over one pooled connection in a single round trip.

use super::error::RestError;
use super::sql::Sql;
use crate::pool::MeteredPool;
use deadpool_postgres::{Object, PoolError};
use tokio_postgres::types::ToSql;

/// The role and claims a request runs with.
#[derive(Debug, Clone)]
pub struct RoleContext {
    pub role: String,
    /// The JWT claims as JSON, exposed as `request.jwt.claims`.
    pub claims: String,
    /// The role's own `statement_timeout`, if it has one.
    pub statement_timeout: Option<String>,
    /// The role is not `anon` (decides 403 rather than 401 for `42501`, as PostgREST does).
    pub authenticated: bool,
    /// The transaction's `application_name`: [`USER_TAG`] and the JWT's `sub`, so a probe can
    /// tell whose request waits on whose lock (set in the same round trip, reset at commit).
    pub session_tag: String,
}

/// `application_name` prefix of a request made for a signed-in user.
pub const USER_TAG: &str = "syncstorm:sub:";

/// The one row every statement returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub total: Option<i64>,
    pub page: i64,
    pub body: Option<String>,
    /// Rows inserted rather than updated, from a merging upsert only.
    pub inserted: Option<i64>,
}

const PRE_REQUEST: &str = "select set_config('role', $1, true), \
     set_config('request.jwt.claims', $2, true), \
     set_config('statement_timeout', coalesce($3, current_setting('statement_timeout')), true), \
     set_config('application_name', $4, true)";

/// Labels of the pool's hold times (`syncstorm_pool_hold_seconds_total{op=…}`), named as the
/// sync path's operations: the USAP check, other reads (delta pages), writes and RPCs.
pub const OP_TOKEN_CHECK: &str = "token_check";
pub const OP_READ: &str = "pull";
pub const OP_WRITE: &str = "push";

/// Statement caches per connection stay below this; past it they are cleared.
const MAX_CACHED_STATEMENTS: usize = 512;

/// A pooled connection that is thrown away, not returned, if the request is dropped half-way
/// (a client hang-up): its transaction may still be open.
struct Checkout {
    conn: Option<Object>,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(Object::take(conn));
        }
    }
}

/// Runs `sql` for `ctx` and returns its row; the connection's hold time is recorded under `op`.
pub async fn run(
    pool: &MeteredPool,
    ctx: &RoleContext,
    sql: &Sql,
    op: &'static str,
) -> Result<Outcome, RestError> {
    let conn = pool.get().await.map_err(|e| pool_error(e, ctx))?;
    let held = std::time::Instant::now();
    let mut checkout = Checkout { conn: Some(conn) };
    let client = checkout
        .conn
        .as_ref()
        .expect("connection present until the end");
    if client.statement_cache.size() > MAX_CACHED_STATEMENTS {
        client.statement_cache.clear();
    }
    let db_err = |e: tokio_postgres::Error| RestError::from_db(&e, ctx.authenticated);
    let pre = client.prepare_cached(PRE_REQUEST).await.map_err(db_err)?;
    let main = client.prepare_cached(&sql.text).await.map_err(db_err)?;
    let params = sql.param_refs();
    let pre_params: [&(dyn ToSql + Sync); 4] = [
        &ctx.role,
        &ctx.claims,
        &ctx.statement_timeout,
        &ctx.session_tag,
    ];
    let (begin, set, row, commit) = tokio::join!(
        client.batch_execute("begin"),
        client.query_one(&pre, &pre_params),
        client.query_one(&main, &params),
        client.batch_execute("commit"),
    );
    let outcome = begin.and(set).and(row).and_then(|row| commit.map(|_| row));
    if let Some(conn) = checkout.conn.take() {
        let healthy = !conn.is_closed();
        if !healthy {
            drop(Object::take(conn));
        }
    }
    pool.record_hold(op, held.elapsed());
    let row = outcome.map_err(db_err)?;
    Ok(Outcome {
        total: row.get(0),
        page: row.get(1),
        body: row.get(2),
        inserted: (row.len() > 3).then(|| row.get(3)),
    })
}

fn pool_error(err: PoolError, ctx: &RoleContext) -> RestError {
    match err {
        PoolError::Timeout(_) => RestError::pool_timeout(),
        PoolError::Backend(e) => RestError::from_db(&e, ctx.authenticated),
        other => {
            tracing::warn!(error = %other, "REST pool error");
            RestError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "PGRST000",
                "Database connection error. Retrying the connection.",
                Some(other.to_string()),
            )
        }
    }
}
