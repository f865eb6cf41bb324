//! The driver runs one simulated device: it signs in, feeds the pure state machine
//! (`syncstorm_device::Device`) events with the current time, carries out the actions it
//! returns with the wire clients, feeds the answers back, keeps the session fresh and the
//! realtime socket open, and records latencies and errors through a [`Metrics`].
//!
//! Protocol decisions belong to the machine; the driver only does IO and measures.
//! Cancellation: every wait sits in `select!` with the device's `CancellationToken`.
//!
//! Recorded operations (`metrics::op`): `sign_in`, `token_refresh`, `token_check`, `pull`,
//! `pull.<table>`, `pull.tier<N>` (one delta page), `push` (one request), `push.read`
//! (`client_lww`'s read), `sync` (trigger → done), `ws_connect`, `ws_join`,
//! `pulse_delivery` (commit → received), `long_poll`; errors by `ErrorKind` under the same
//! names (`sync` errors carry the kind of the request that failed it; `ws_session` counts
//! sockets lost after they were up).

mod device_loop;
pub mod metrics;
mod network;
pub mod pulse;
pub(crate) mod requests;
mod session;
pub(crate) mod settle;
mod snoop;

use std::sync::Arc;
use std::time::Duration;

use syncstorm_device::{Device, Event, SyncOutcome};
use syncstorm_wire::client::{Endpoint, RealtimeOptions, Session};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use metrics::Metrics;
pub use network::{Clock, NetworkSwitch};

/// What is the same for a cohort of devices (share it with an `Arc`).
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Realtime socket knobs (heartbeat, reconnect policy, vsn, channel capacity).
    pub realtime: RealtimeOptions,
    /// Refresh the access token this long before it expires (capped at half its lifetime,
    /// so short test expiries still refresh in time).
    pub refresh_margin: Duration,
    /// Waits between sign-in attempts while the auth service refuses or is unreachable.
    pub sign_in_retry: Duration,
    /// This worker's share of the run's request ceiling (`[target] max_request_rate`);
    /// `None` = no ceiling.
    pub request_limiter: Option<Arc<crate::target::RequestLimiter>>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            realtime: RealtimeOptions::default(),
            refresh_margin: Duration::from_secs(60),
            sign_in_retry: Duration::from_secs(1),
            request_limiter: None,
        }
    }
}

/// A user's password credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// What the swarm tells a running device.
#[derive(Debug)]
pub enum Input {
    /// A user-side event: `AppOpened`, `UserEdit`, `BulkImport`, `Pulse` (network events come
    /// from the [`NetworkSwitch`], answers and timers from the driver itself).
    Event(Event),
    /// An open-model app open scheduled for `intended`: the sync it starts, and that sync's
    /// first token check, are timed from `intended` rather than from when the device got the
    /// news (wrk2's intended-start correction, so a late generator cannot hide queueing).
    OpenedAt(tokio::time::Instant),
    /// The final quiet sync after the load stops: sync now and answer once the device is idle
    /// (no sync running or pending) with the outcome of its last sync.
    Quiesce(oneshot::Sender<Option<SyncOutcome>>),
}

/// One device ready to run.
pub struct DeviceTask<M> {
    pub device: Device,
    /// The session kept from an earlier run (the app stores it); `None` signs in.
    pub session: Option<Session>,
    pub credentials: Credentials,
    /// The address this device uses (see `Endpoint::with_ip`).
    pub endpoint: Endpoint,
    /// Its HTTP client: its own pool or the shared one (`HttpClients::for_device`).
    pub http: syncstorm_wire::client::HttpClient,
    pub config: Arc<DriverConfig>,
    pub metrics: M,
    pub online: watch::Receiver<bool>,
    pub inputs: mpsc::Receiver<Input>,
    pub cancel: CancellationToken,
    pub clock: Clock,
}

/// Why a device could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error("device {device} signed in as user {signed_in}, but it belongs to user {expected}")]
    WrongUser {
        device: u64,
        expected: String,
        signed_in: String,
    },
    #[error("pulse.mode = long_poll needs a long-poll endpoint the target does not offer")]
    Unsupported,
}

/// A device after its run: the machine (its final local store and acknowledged writes are what
/// the oracle compares with the server) and why it stopped early, if it did.
#[derive(Debug)]
pub struct DeviceRun {
    pub device: Device,
    /// The session to keep for the next run (`None` if the device never signed in).
    pub session: Option<Session>,
    pub error: Option<DriverError>,
}

/// Runs the device until cancelled.
pub async fn run_device<M: Metrics>(task: DeviceTask<M>) -> DeviceRun {
    device_loop::run(task).await
}
