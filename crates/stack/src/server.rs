//! The embedded stack's HTTP server: Kong's `apikey` gate in front of Auth (`/auth/v1`), REST
//! (`/rest/v1`) and Realtime (`/realtime/v1`), on a throwaway PostgreSQL cluster or an existing
//! database.
//!
//! `Stack::start(config, cancel)` boots everything and returns a `RunningStack` with the URL and
//! keys; cancelling the token (or `RunningStack::stop`) drains the server, closes the pools and
//! stops the cluster.

use crate::auth;
use crate::config::StackConfig;
use crate::keys::Keys;
use crate::links::{CapCounters, Internal};
use crate::postgres::{Cluster, ClusterOptions, LaunchError};
use crate::realtime::{Realtime, RealtimeConfig};
use crate::routes::{self, Routes};
use crate::schema::{self, SchemaError};
use crate::workers;
use axum::Router;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the stack could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolBuildError),
    #[error("cannot set up the realtime cap counters shared by the workers ({path}): {source}")]
    Counters {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the database ({what}): {source}")]
    Database {
        what: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the stack's server task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Realtime(#[from] crate::realtime::RealtimeError),
    #[error(transparent)]
    Worker(#[from] crate::workers::WorkerError),
}

impl StackError {
    /// The PostgreSQL server binaries are not installed: the user's to fix (exit code 2).
    pub fn is_missing_postgres(&self) -> bool {
        matches!(self, StackError::Launch(LaunchError::BinariesNotFound))
    }
}

/// What every part of the stack may share: configuration, keys, and the superuser URL (for
/// Realtime's replication reader and probes). Cancelled when the stack shuts down.
pub struct Shared {
    pub config: StackConfig,
    pub keys: Arc<Keys>,
    pub superuser_url: String,
    pub cancel: CancellationToken,
}

/// Entry point of the embedded stack.
pub struct Stack;

/// A running stack: where it is and how to reach it as a Supabase client would.
pub struct RunningStack {
    /// `http://<first host>:<port>`.
    pub url: String,
    /// One URL per listening address, over every worker (worker 1's first).
    pub urls: Vec<String>,
    /// One URL per worker process (its first address).
    pub worker_urls: Vec<String>,
    /// Each worker's `GET /metrics` (its own realtime counters; the pool gauges on the first
    /// only, where the stack's one REST pool and one Auth pool live).
    pub metrics_urls: Vec<String>,
    pub port: u16,
    pub anon_key: String,
    pub service_role_key: String,
    pub jwt_secret: String,
    /// Superuser URL of the database.
    pub database_url: String,
    /// The plugin Realtime captures changes with (wal2json, or pgoutput without it).
    pub realtime_decoder: crate::realtime::Decoder,
    pub shared: Arc<Shared>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), StackError>>,
}

/// The database the stack runs on: its own cluster, or one it was given.
pub(crate) struct Database {
    pub(crate) superuser_url: String,
    pub(crate) rest_url: String,
    cluster: Option<Cluster>,
}

impl Stack {
    /// Boots the database (unless `config.database_url` is set), applies the schema, opens the
    /// pools and starts serving. Cancelling `cancel` shuts everything down in order.
    pub async fn start(
        config: StackConfig,
        cancel: CancellationToken,
    ) -> Result<RunningStack, StackError> {
        config.validate().map_err(StackError::Config)?;
        let database = open_database(&config).await?;
        // From here an error drops `database`, whose cluster then stops and is removed.
        schema::apply(&database.superuser_url).await?;
        apply_auth_schema(&database.superuser_url).await?;
        let issued_at = config
            .keys_issued_at
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        let keys = Arc::new(Keys::issued_at(config.jwt_secret.clone(), issued_at));
        let host_groups = workers::assign_hosts(&config.hosts, config.workers);
        // This process is worker 1: its own addresses, the whole plan (caps are counted
        // across workers, and the pools are this process's alone).
        let mut own = config.clone();
        own.hosts = host_groups[0].clone();
        own.keys_issued_at = Some(issued_at);
        own.jwt_secret = Some(keys.jwt_secret.clone());
        let shared = Arc::new(Shared {
            config: own.clone(),
            keys: keys.clone(),
            superuser_url: database.superuser_url.clone(),
            cancel: cancel.clone(),
        });
        let counters = CapCounters::for_process(&own)?;
        let mut realtime_config =
            RealtimeConfig::new(&database.superuser_url, &keys.jwt_secret, own.plan.realtime);
        realtime_config.counters = Some(counters.shared.clone());
        // One WAL capture per stack: the first process polls, the others follow it.
        realtime_config.fan_out = own.workers > 1 && own.worker_link.is_none();
        realtime_config.upstream = own.worker_link.as_ref().and_then(|l| l.realtime_capture);
        let realtime = Realtime::start_under(realtime_config, &cancel).await?;
        let started = listen(&shared, &database, &realtime).await;
        let (routes, listeners, internal, port) = match started {
            Ok(parts) => parts,
            Err(e) => {
                realtime.stop().await;
                return Err(e);
            }
        };
        let children = match &internal {
            Some(listener) => {
                let mut link = counters.parent_link(listener)?;
                link.realtime_capture = realtime.fanout_addr();
                workers::start_children(&own, &host_groups, port, &database, link).await
            }
            None => Ok(Vec::new()),
        };
        let children = match children {
            Ok(children) => children,
            Err(e) => {
                realtime.stop().await;
                return Err(e.into());
            }
        };
        let url_of = |h: &std::net::IpAddr| format!("http://{}", SocketAddr::new(*h, port));
        let urls: Vec<String> = host_groups.iter().flatten().map(url_of).collect();
        let worker_urls: Vec<String> = host_groups.iter().map(|g| url_of(&g[0])).collect();
        tracing::info!(url = %urls[0], plan = %config.plan.name, "embedded stack ready");
        let database_url = database.superuser_url.clone();
        let realtime_decoder = realtime.decoder();
        let parts = Parts {
            routes,
            database,
            realtime,
            children,
            counters,
        };
        let task = tokio::spawn(serve(listeners, internal, parts, cancel.clone()));
        Ok(RunningStack {
            url: urls[0].clone(),
            urls,
            metrics_urls: worker_urls.iter().map(|u| format!("{u}/metrics")).collect(),
            worker_urls,
            port,
            anon_key: keys.anon_key.clone(),
            service_role_key: keys.service_role_key.clone(),
            jwt_secret: keys.jwt_secret.clone(),
            database_url,
            realtime_decoder,
            shared,
            cancel,
            task,
        })
    }
}

/// The routes, the public listeners and (when other workers will forward to it) the private
/// REST/Auth listener, and the port they share.
async fn listen(
    shared: &Arc<Shared>,
    database: &Database,
    realtime: &Realtime,
) -> Result<(Routes, Vec<TcpListener>, Option<Internal>, u16), StackError> {
    let own = &shared.config;
    let routes = routes::build(shared, database, realtime).await?;
    let listeners = bind_all(own).await?;
    let bind_error = |source| StackError::Bind {
        addr: SocketAddr::new(own.hosts[0], own.port),
        source,
    };
    let port = listeners[0].local_addr().map_err(bind_error)?.port();
    let internal = match routes.internal {
        Some(_) => Some(Internal::bind(own.hosts[0]).await?),
        None => None,
    };
    Ok((routes, listeners, internal, port))
}

impl Stack {
    /// For tests: a stack on the test binary's shared cluster
    /// ([`crate::postgres::shared_test_cluster`]), REST logging in as `authenticator`, on a free
    /// port. Cheap (no cluster boot), so each test can have its own stack and plan.
    pub async fn start_for_tests(
        mut config: StackConfig,
        cancel: CancellationToken,
    ) -> Result<RunningStack, StackError> {
        let cluster = tokio::task::spawn_blocking(crate::postgres::shared_test_cluster)
            .await
            .map_err(|e| StackError::Task(e.to_string()))?;
        config.database_url = Some(cluster.superuser_url());
        config.rest_database_url = Some(cluster.url_as("authenticator"));
        Stack::start(config, cancel).await
    }
}

impl RunningStack {
    /// The env-file lines `syncstorm stack` prints, for any Supabase client to source.
    pub fn env_lines(&self) -> String {
        let mut lines = format!(
            "SUPABASE_URL={}\nSUPABASE_ANON_KEY={}\nSUPABASE_SERVICE_ROLE_KEY={}\nSUPABASE_JWT_SECRET={}\nDATABASE_URL={}\n",
            self.url, self.anon_key, self.service_role_key, self.jwt_secret, self.database_url
        );
        if self.urls.len() > 1 {
            lines.push_str(&format!("SUPABASE_URLS={}\n", self.urls.join(",")));
            lines.push_str(&format!("METRICS_URLS={}\n", self.metrics_urls.join(",")));
        }
        lines
    }

    /// Shuts the stack down and waits until its cluster is gone.
    pub async fn stop(self) -> Result<(), StackError> {
        self.cancel.cancel();
        self.wait().await
    }

    /// Waits until the stack stops (its cancellation token was cancelled elsewhere).
    pub async fn wait(self) -> Result<(), StackError> {
        self.task
            .await
            .map_err(|e| StackError::Task(e.to_string()))?
    }
}

async fn open_database(config: &StackConfig) -> Result<Database, StackError> {
    if let Some(url) = &config.database_url {
        return Ok(Database {
            superuser_url: url.clone(),
            rest_url: config
                .rest_database_url
                .clone()
                .unwrap_or_else(|| url.clone()),
            cluster: None,
        });
    }
    let mut options = ClusterOptions::for_plan(&config.plan);
    options.durable = config.durable;
    // Every worker polls its own temporary slot; each extra worker also holds realtime's two
    // sessions outside the pools, which the plan's connection count does not include.
    let slots = options.max_replication_slots.max(config.workers as u32 + 2);
    options.max_replication_slots = slots;
    options.max_wal_senders = options.max_wal_senders.max(slots);
    options.max_connections += 2 * (config.workers as u32 - 1);
    let cluster = Cluster::start(options).await?;
    Ok(Database {
        superuser_url: cluster.superuser_url(),
        rest_url: cluster.url_as("authenticator"),
        cluster: Some(cluster),
    })
}

/// The Auth additions, applied under a transaction-scoped advisory lock so stacks booting side
/// by side on one database take turns.
async fn apply_auth_schema(url: &str) -> Result<(), StackError> {
    let db = |source| StackError::Database {
        what: "applying the auth schema",
        source,
    };
    let (client, conn) = connect(url).await?;
    let driver = tokio::spawn(conn);
    let sql = format!(
        "begin; select pg_advisory_xact_lock(7320053); {} commit;",
        auth::SCHEMA_SQL
    );
    let result = client.batch_execute(&sql).await.map_err(db);
    drop(client);
    let _ = driver.await;
    result
}

pub(crate) async fn connect(
    url: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    StackError,
> {
    tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|source| StackError::Database {
            what: "connecting",
            source,
        })
}

async fn bind_all(config: &StackConfig) -> Result<Vec<TcpListener>, StackError> {
    let mut listeners = Vec::new();
    let mut port = config.port;
    for host in &config.hosts {
        let addr = SocketAddr::new(*host, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StackError::Bind { addr, source })?;
        port = listener
            .local_addr()
            .map_err(|source| StackError::Bind { addr, source })?
            .port();
        listeners.push(listener);
    }
    Ok(listeners)
}

/// What `serve` runs and then stops, in order.
struct Parts {
    routes: Routes,
    database: Database,
    realtime: Realtime,
    children: Vec<workers::WorkerProcess>,
    counters: CapCounters,
}

/// Serves `router` on `listener` until `stop` is cancelled, then drains.
fn spawn_server(
    listener: TcpListener,
    router: &Router,
    stop: &CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = router
        .clone()
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    tokio::spawn(async move { server.await })
}

/// Serves until cancelled, then stops the worker processes (the private listeners they forward
/// to keep serving until they are gone), drains requests, closes pools and stops the cluster.
async fn serve(
    listeners: Vec<TcpListener>,
    internal: Option<Internal>,
    parts: Parts,
    cancel: CancellationToken,
) -> Result<(), StackError> {
    let Parts {
        routes,
        database,
        realtime,
        children,
        counters,
    } = parts;
    let mut servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| spawn_server(listener, &routes.public, &cancel))
        .collect();
    let internal_stop = CancellationToken::new();
    if let (Some(internal), Some(router)) = (internal, &routes.internal) {
        servers.push(spawn_server(internal.http1, router, &internal_stop));
        let h2 =
            crate::forward::serve_internal_h2(internal.h2, router.clone(), internal_stop.clone());
        servers.push(tokio::spawn(async move {
            h2.await;
            Ok(())
        }));
    }
    cancel.cancelled().await;
    futures_util::future::join_all(children.into_iter().map(workers::WorkerProcess::stop)).await;
    internal_stop.cancel();
    for mut server in servers {
        if tokio::time::timeout(DRAIN_TIMEOUT, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
            server.abort();
        }
    }
    drop(routes);
    // Before the cluster stops: Realtime drops its replication slot.
    realtime.stop().await;
    drop(counters);
    if let Some(cluster) = database.cluster {
        cluster.stop().await?;
    }
    tracing::info!("embedded stack stopped");
    Ok(())
}
