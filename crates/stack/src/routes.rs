//! The stack's routes: Kong's `apikey` gate in front of Auth (`/auth/v1`), REST (`/rest/v1`)
//! and Realtime (`/realtime/v1`), with `GET /metrics` open. The process that owns the pools
//! serves Auth and REST itself (and, in a multi-process stack, on a private listener for the
//! other workers too); worker processes 2..N forward them there ([`crate::forward`]).

use crate::auth::{self, AuthState, ratelimit::TokenLimiter};
use crate::forward::{self, Upstream};
use crate::keys::Keys;
use crate::pool::MeteredPool;
use crate::realtime::{MetricsSource, Realtime};
use crate::rest::{self, RestState, SchemaCache};
use crate::server::{Database, Shared, StackError};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use std::time::Duration;

/// How long an Auth request waits for a pooled connection.
const AUTH_POOL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a stack process serves.
pub(crate) struct Routes {
    /// Every public address: Auth, REST, Realtime behind the gate, and `/metrics`.
    pub public: Router,
    /// The parent's private listeners for the other workers: Auth and REST behind the gate.
    pub internal: Option<Router>,
}

/// Builds the routes: forwarding ones in a worker process, the pools' owners otherwise.
pub(crate) async fn build(
    shared: &Arc<Shared>,
    database: &Database,
    realtime: &Realtime,
) -> Result<Routes, StackError> {
    let mut metrics = MetricsState {
        realtime: realtime.metrics_source(),
        pools: Vec::new(),
    };
    let (services, internal) = match &shared.config.worker_link {
        Some(link) => {
            let upstream = Upstream::new(
                link.upstream_http1,
                link.upstream_h2,
                link.http1_connections,
            );
            (forward::router(Arc::new(upstream)), None)
        }
        None => {
            let (services, pools) = services(shared, database).await?;
            metrics.pools = pools;
            let internal = (shared.config.workers > 1).then(|| gate(shared, services.clone()));
            (services, internal)
        }
    };
    let gated = gate(shared, services.merge(realtime.websocket_router()));
    let open = Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    Ok(Routes {
        public: gated.merge(open),
        internal,
    })
}

/// Auth and REST on this process's pools (the only pools of the stack), and those pools.
async fn services(
    shared: &Arc<Shared>,
    database: &Database,
) -> Result<(Router, Vec<Arc<MeteredPool>>), StackError> {
    let config = &shared.config;
    let cache = load_schema_cache(&database.superuser_url).await?;
    let auth_pool = Arc::new(MeteredPool::connect(
        "auth",
        &database.superuser_url,
        config.plan.auth_pool_size,
        AUTH_POOL_TIMEOUT,
    )?);
    let rest_pool = Arc::new(MeteredPool::connect(
        "rest",
        &database.rest_url,
        config.plan.rest_pool_size,
        config.plan.rest_pool_timeout,
    )?);
    let auth_state = Arc::new(AuthState {
        db: Arc::clone(&auth_pool),
        keys: shared.keys.clone(),
        jwt_expiry: config.jwt_expiry,
        bcrypt_cost: config.bcrypt_cost,
        limiter: config.effective_token_rate_limit().map(TokenLimiter::new),
    });
    let rest_state = Arc::new(RestState {
        db: Arc::clone(&rest_pool),
        cache,
        keys: shared.keys.clone(),
        max_rows: i64::from(config.max_rows),
    });
    let router = Router::new()
        .nest("/auth/v1", auth::router(auth_state))
        .nest("/rest/v1", rest::router(rest_state));
    Ok((router, vec![rest_pool, auth_pool]))
}

async fn load_schema_cache(url: &str) -> Result<SchemaCache, StackError> {
    let (catalog, conn) = crate::server::connect(url).await?;
    let driver = tokio::spawn(conn);
    let cache = SchemaCache::load(&catalog)
        .await
        .map_err(|source| StackError::Database {
            what: "loading the schema cache",
            source,
        });
    drop(catalog);
    let _ = driver.await;
    cache
}

fn gate(shared: &Arc<Shared>, router: Router) -> Router {
    router.layer(middleware::from_fn_with_state(
        shared.keys.clone(),
        require_apikey,
    ))
}

/// `/metrics`: this process's realtime counters, and the pools' gauges where they live (so
/// sums over every worker's page stay right).
#[derive(Clone)]
struct MetricsState {
    realtime: MetricsSource,
    pools: Vec<Arc<MeteredPool>>,
}

async fn render_metrics(State(metrics): State<MetricsState>) -> Response {
    let mut body = metrics.realtime.render();
    for pool in &metrics.pools {
        pool.render(&mut body);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Kong's key-auth: an `apikey` header or query parameter holding one of the project's keys.
async fn require_apikey(State(keys): State<Arc<Keys>>, request: Request, next: Next) -> Response {
    let from_header = request
        .headers()
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let key = from_header.or_else(|| {
        let query = request.uri().query()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "apikey")
            .map(|(_, v)| v.into_owned())
    });
    match key {
        None => kong_refusal("No API key found in request"),
        Some(key) if keys.api_key_role(&key).is_none() => {
            kong_refusal("Invalid authentication credentials")
        }
        Some(_) => next.run(request).await,
    }
}

fn kong_refusal(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}
