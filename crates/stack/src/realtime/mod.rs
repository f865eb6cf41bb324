//! Supabase Realtime, the part the sync protocol uses: `postgres_changes` over Phoenix
//! websockets (vsn 1.0.0 and 2.0.0), captured from a logical replication slot (wal2json as
//! Supabase polls it, or PostgreSQL's built-in pgoutput where wal2json is not installed),
//! authorized per subscriber under RLS, with the plan's caps and Prometheus probes.
//!
//! Flow: `poller` reads the slot → `dispatch` matches bindings in the [`registry`], checks row
//! visibility (`authz`) and queues frames → each socket task (`socket`) runs its `session` and
//! writes its queue. Start with [`Realtime::start`], mount [`Realtime::router`].

mod authz;
pub mod caps;
pub mod capture;
pub mod catalog;
mod dispatch;
pub mod fanout;
pub mod filter;
mod frame;
pub mod metrics;
mod poller;
pub mod region;
pub mod registry;
mod session;
mod socket;
pub mod token;

use std::sync::Arc;
use std::time::Duration;
use syncstorm_plans::RealtimeCaps;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What Realtime runs with.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// Superuser URL of the database (slot, catalog, visibility checks).
    pub database_url: String,
    /// HS256 secret every key and access token is signed with.
    pub jwt_secret: String,
    pub caps: RealtimeCaps,
    /// Publication whose tables produce events.
    pub publication: String,
    /// A socket that sends nothing for this long is closed (Phoenix: 60 s).
    pub idle_timeout: Duration,
    /// Pause after a poll that returned nothing (Realtime: 100 ms).
    pub poll_interval: Duration,
    /// Changes per poll (Realtime: 100).
    pub poll_max_changes: u32,
    /// Frames queued per socket before deliveries to it are dropped (and counted).
    pub outbox_capacity: usize,
    /// Websocket read buffer per socket, bytes (small keeps idle sockets cheap).
    pub socket_buffer: usize,
    /// The counters the caps are checked against, shared with the stack's other worker
    /// processes; `None` makes a private set (one process counts alone).
    pub counters: Option<region::SharedCounters>,
    /// The slot's output plugin; `None` prefers wal2json and falls back to pgoutput.
    pub decoder: Option<Decoder>,
    /// Serve this process's capture to the stack's other processes ([`fanout`]).
    pub fan_out: bool,
    /// Follow the capture served at this address instead of polling a slot of its own.
    pub upstream: Option<std::net::SocketAddr>,
}

/// The logical decoding output plugin that captures changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// wal2json, format version 2: what Supabase Realtime polls (a separate package).
    Wal2json,
    /// pgoutput, logical replication protocol 1: ships inside PostgreSQL.
    Pgoutput,
}

impl Decoder {
    /// The plugin's name, as `pg_create_logical_replication_slot` takes it.
    pub fn plugin(self) -> &'static str {
        match self {
            Decoder::Wal2json => capture::wal2json::PLUGIN,
            Decoder::Pgoutput => capture::pgoutput::PLUGIN,
        }
    }

    /// Parses a plugin name (`wal2json`, `pgoutput`).
    pub fn from_plugin(name: &str) -> Option<Decoder> {
        [Decoder::Wal2json, Decoder::Pgoutput]
            .into_iter()
            .find(|d| d.plugin() == name)
    }
}

impl RealtimeConfig {
    pub fn new(
        database_url: impl Into<String>,
        jwt_secret: impl Into<String>,
        caps: RealtimeCaps,
    ) -> Self {
        RealtimeConfig {
            database_url: database_url.into(),
            jwt_secret: jwt_secret.into(),
            caps,
            publication: "supabase_realtime".to_string(),
            idle_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
            poll_max_changes: 100,
            outbox_capacity: 256,
            socket_buffer: 4096,
            counters: None,
            decoder: None,
            fan_out: false,
            upstream: None,
        }
    }
}

/// Why Realtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("realtime could not connect to PostgreSQL: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error(
        "realtime could not create its logical replication slot (needs wal_level = logical and a free slot): {0}"
    )]
    Slot(#[source] tokio_postgres::Error),
    #[error(
        "realtime could not prepare the database (catalog, types, authorization function): {0}"
    )]
    Prepare(#[source] tokio_postgres::Error),
    #[error("realtime could not map its cap counters: {0}")]
    Counters(#[source] std::io::Error),
    #[error("realtime could not reach the stack's change capture at {0}: {1}")]
    FanOut(String, #[source] std::io::Error),
}

/// State every socket task and the dispatcher share.
pub struct Shared {
    pub config: RealtimeConfig,
    pub caps: Arc<caps::Caps>,
    pub metrics: metrics::Metrics,
    pub registry: registry::Registry,
    pub catalog: catalog::CatalogCell,
    pub cancel: CancellationToken,
    /// The plugin the slot was created with.
    pub decoder: Decoder,
    /// Every captured batch, for the processes that follow this capture.
    pub fanout: Option<tokio::sync::broadcast::Sender<poller::Batch>>,
}

impl Shared {
    pub(crate) fn render_metrics(&self) -> String {
        let average = self
            .caps
            .reports_stack_wide()
            .then(|| self.caps.deliveries_average());
        self.metrics
            .render(self.caps.connections(), self.decoder, average)
    }
}

/// Renders a Realtime service's probes (see [`Realtime::metrics_source`]).
#[derive(Clone)]
pub struct MetricsSource(Arc<Shared>);

impl MetricsSource {
    /// Prometheus text; `syncstorm_realtime_connections` counts this process's sockets only.
    pub fn render(&self) -> String {
        self.0.render_metrics()
    }
}

/// A running Realtime service.
pub struct Realtime {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    /// This process's slot; `None` when it follows the stack's one capture.
    slot: Option<String>,
    /// Where the other processes follow this one's capture (`fan_out`).
    fanout_addr: Option<std::net::SocketAddr>,
}

/// Where this process's changes come from: its own slot, or the stack's one capture (with
/// the session it refreshes the publication catalog on).
enum Source {
    Capture(poller::Poller),
    Follow {
        decoder: Decoder,
        follower: fanout::Follower,
        client: Client,
    },
}

impl Source {
    /// Follows the capture at `upstream`, or creates a temporary slot named for this process
    /// on `client`'s session (the slot goes with it).
    async fn open(config: &RealtimeConfig, client: Client) -> Result<Source, RealtimeError> {
        if let Some(addr) = config.upstream {
            let (decoder, follower) = fanout::follow(addr)
                .await
                .map_err(|e| RealtimeError::FanOut(addr.to_string(), e))?;
            return Ok(Source::Follow {
                decoder,
                follower,
                client,
            });
        }
        let slot = format!(
            "syncstorm_rt_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let decoding = poller::create_slot(&client, &slot, config.decoder)
            .await
            .map_err(RealtimeError::Slot)?;
        let types = capture::load_type_names(&client)
            .await
            .map_err(RealtimeError::Prepare)?;
        Ok(Source::Capture(poller::Poller {
            client,
            slot,
            types,
            decoding,
        }))
    }

    fn decoder(&self) -> Decoder {
        match self {
            Source::Capture(poller) => poller.decoding.decoder(),
            Source::Follow { decoder, .. } => *decoder,
        }
    }
}

/// Dispatches batches in order until the sources stop.
async fn dispatch_all(
    shared: Arc<Shared>,
    authz: Client,
    mut batches: mpsc::Receiver<poller::Batch>,
) {
    while let Some(batch) = batches.recv().await {
        dispatch::dispatch(&shared, &authz, &batch).await;
        let m = &shared.metrics;
        m.add(&m.changes_dispatched_total, batch.len() as u64);
        m.sub(&m.dispatch_queue_changes, batch.len() as u64);
    }
}

async fn connect(url: &str, tasks: &TaskTracker) -> Result<Client, RealtimeError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(RealtimeError::Connect)?;
    tasks.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("realtime: database connection ended: {e}");
        }
    });
    Ok(client)
}

impl Realtime {
    /// Creates the slot, loads the publication, installs the visibility check, and starts
    /// polling. Sockets can be served as soon as this returns.
    pub async fn start(config: RealtimeConfig) -> Result<Realtime, RealtimeError> {
        Realtime::start_under(config, &CancellationToken::new()).await
    }

    /// Like [`Realtime::start`], stopping (sockets closed, polling ended) when `parent` is
    /// cancelled; [`Realtime::stop`] still waits for the slot to be dropped.
    pub async fn start_under(
        config: RealtimeConfig,
        parent: &CancellationToken,
    ) -> Result<Realtime, RealtimeError> {
        let tasks = TaskTracker::new();
        let counters = match &config.counters {
            Some(counters) => counters.clone(),
            None => region::SharedCounters::private().map_err(RealtimeError::Counters)?,
        };
        let db_client = connect(&config.database_url, &tasks).await?;
        let catalog = catalog::Catalog::load(&db_client, &config.publication)
            .await
            .map_err(RealtimeError::Prepare)?;
        let source = Source::open(&config, db_client).await?;
        let authz_client = connect(&config.database_url, &tasks).await?;
        authz_client
            .batch_execute(authz::INSTALL_SQL)
            .await
            .map_err(RealtimeError::Prepare)?;
        let fanout = match config.fan_out {
            true => Some(
                fanout::FanOut::bind()
                    .await
                    .map_err(|e| RealtimeError::FanOut("127.0.0.1".into(), e))?,
            ),
            false => None,
        };
        let fanout_addr = fanout.as_ref().and_then(|f| f.addr().ok());
        let shared = Arc::new(Shared {
            caps: Arc::new(caps::Caps::new(config.caps, counters)),
            metrics: metrics::Metrics::default(),
            registry: registry::Registry::default(),
            catalog: catalog::CatalogCell::default(),
            cancel: parent.child_token(),
            decoder: source.decoder(),
            fanout: fanout.as_ref().map(|f| f.tx.clone()),
            config,
        });
        shared.catalog.set(catalog);
        if let Some(fanout) = fanout {
            tasks.spawn(fanout.serve(Arc::clone(&shared), tasks.clone(), shared.cancel.clone()));
        }
        let (batches_tx, batches_rx) = mpsc::channel::<poller::Batch>(16);
        let cancel = shared.cancel.clone();
        let slot = match source {
            Source::Capture(poller) => {
                let slot = poller.slot.clone();
                tasks.spawn(poller.run(Arc::clone(&shared), batches_tx, cancel));
                Some(slot)
            }
            Source::Follow {
                follower, client, ..
            } => {
                tasks.spawn(follower.run(client, Arc::clone(&shared), batches_tx, cancel));
                None
            }
        };
        tasks.spawn(dispatch_all(Arc::clone(&shared), authz_client, batches_rx));
        Ok(Realtime {
            shared,
            tasks,
            slot,
            fanout_addr,
        })
    }

    /// `/realtime/v1/websocket` and `/metrics`.
    pub fn router(&self) -> axum::Router {
        self.websocket_router().merge(self.metrics_router())
    }

    /// `/realtime/v1/websocket` only (to mount behind an `apikey` gate).
    pub fn websocket_router(&self) -> axum::Router {
        socket::websocket_router(Arc::clone(&self.shared))
    }

    /// `GET /metrics` only.
    pub fn metrics_router(&self) -> axum::Router {
        socket::metrics_router(Arc::clone(&self.shared))
    }

    /// The probes in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics_source().render()
    }

    /// A cheap handle that renders the probes, for a `/metrics` route that adds other figures.
    pub fn metrics_source(&self) -> MetricsSource {
        MetricsSource(Arc::clone(&self.shared))
    }

    /// The plugin that captures changes (wal2json, or pgoutput where wal2json is missing).
    pub fn decoder(&self) -> Decoder {
        self.shared.decoder
    }

    /// Name of the replication slot (gone once [`Realtime::stop`] returns).
    pub fn slot_name(&self) -> Option<&str> {
        self.slot.as_deref()
    }

    /// Where the stack's other processes follow this capture (when started with `fan_out`).
    pub fn fanout_addr(&self) -> Option<std::net::SocketAddr> {
        self.fanout_addr
    }

    /// Closes every socket, stops polling and drops the slot.
    pub async fn stop(self) {
        self.shared.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
