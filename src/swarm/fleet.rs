//! The devices of one worker: which are running, parked (app backgrounded, local store kept)
//! or never started, and the plumbing to start, signal and stop them.
//!
//! A running device is one `driver::run_device` task. Backgrounding cancels the task and the
//! device comes back through the `JoinSet` with its local store intact, ready to reopen — the
//! phone's SQLite survives the app being suspended, and so does ours.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use syncstorm_device::{Device, DeviceKnobs, Event, SyncOutcome};
use syncstorm_metrics::{Recorder, counter, gauge, op};
use syncstorm_wire::client::{Endpoint, HttpClients};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::faults::{self, NetworkPlan};
use crate::driver::{self, Clock, DeviceRun, DeviceTask, DriverConfig, Input, Metrics};
use crate::population;
use syncstorm_wire::client::Session;

/// Inputs queued per device; when full the event is dropped and counted (user events are
/// triggers: one pending trigger already makes the device sync again).
const INPUT_CAPACITY: usize = 16;
/// An arrival delivered later than this behind its intended instant counts as late.
pub const LATE_ARRIVAL: Duration = Duration::from_millis(10);
/// One round of quiet syncs: completed, failed (the device answered, its sync did not
/// finish), and missing (no answer before the deadline).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuietRound {
    pub completed: u64,
    pub failed: u64,
    pub missing: u64,
}

/// Devices doing their final quiet sync at once, per worker.
const QUIESCE_CONCURRENCY: usize = 64;
/// Picks the devices whose stored token has expired at open.
const SALT_EXPIRED_AT_OPEN: u64 = 0x5EED_2000;
/// Whether `device`'s stored access token has expired at its first open (the scenario's
/// `device.expired_at_open_percent`); the capacity model draws the same devices.
pub fn expired_at_open(seed: u64, device: u64, percent: u8) -> bool {
    faults::unit(seed, device, SALT_EXPIRED_AT_OPEN) * 100.0 < f64::from(percent)
}

/// How long ago an expired token expired: longer than any clock skew a scenario sets, so a
/// skewed phone still sees it expired.
const EXPIRED_FOR_SECS: i64 = 3_600;
/// Recorders shared by a worker's devices (device `d` records into cohort `d % COHORTS`).
pub const COHORTS: usize = 32;

/// What every device of the worker shares.
pub struct FleetConfig {
    pub knobs: Arc<DeviceKnobs>,
    /// One per source address (one with none): device `d` leaves through `egress[d % len]`.
    pub egress: Vec<Egress>,
    pub endpoint: Endpoint,
    pub addresses: Vec<IpAddr>,
    pub seed: u64,
    pub devices_per_user: u64,
    pub first_user: u64,
    pub user_ids: Vec<Uuid>,
    pub credential_tag: String,
    pub faults: syncstorm_scenario::Faults,
    /// Closed-model devices signing in and doing their first sync at once (spawn pacing).
    pub start_permits: Arc<Semaphore>,
    /// Sessions from setup, by device (`device - first device`), each taken at first start.
    pub stored_sessions: Vec<Option<Session>>,
}

/// What a device's traffic leaves through: HTTP pools and realtime options bound to one
/// source address (`run --source-address`), or to none.
pub struct Egress {
    pub http: HttpClients,
    pub driver: Arc<DriverConfig>,
}

/// A device's metrics: its cohort's recorder, and the start permit it gives back once its
/// first sync has an outcome (or sign-in failed), so connects are paced, not stampeded.
pub struct DeviceMetrics {
    cohort: Arc<Mutex<Recorder>>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl DeviceMetrics {
    fn release_start_permit(&self, op_name: &str) {
        if (op_name == op::SYNC || op_name == op::SIGN_IN)
            && let Ok(mut permit) = self.permit.lock()
        {
            permit.take();
        }
    }
}

impl Metrics for DeviceMetrics {
    fn latency(&self, op_name: &str, took: Duration) {
        self.cohort.latency(op_name, took);
        if op_name == op::SYNC {
            self.release_start_permit(op_name);
        }
    }
    fn error(&self, op_name: &str, kind: ErrorKind) {
        self.cohort.error(op_name, kind);
        self.release_start_permit(op_name);
    }
    fn count(&self, name: &str, n: u64) {
        self.cohort.count(name, n);
    }
    fn gauge(&self, name: &str, delta: i64) {
        self.cohort.gauge(name, delta);
    }
}

/// A device in the background: its store, and the GoTrue session the app keeps on disk (so a
/// reopen refreshes it when due instead of signing in again).
struct Parked {
    device: Device,
    session: Option<Session>,
}

/// Whether a starting device waits for a start permit. Closed-model starts and the final
/// quiet sync are paced so the generator never stampedes; open-model arrivals are not, since
/// a cap on them would throttle the offered load and hide the queue the run is looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pacing {
    Paced,
    Unpaced,
}

enum Slot {
    Parked(Box<Parked>),
    Running {
        inputs: mpsc::Sender<Input>,
        cancel: CancellationToken,
    },
    /// Cancelled, on its way back; `reopen` = open again as soon as it is parked.
    Returning {
        reopen: bool,
    },
}

/// The recorders of a worker's devices, and the levels the swarm itself keeps; cloned into
/// the task that reports once per second.
#[derive(Clone)]
pub struct Recorders {
    cohorts: Arc<Vec<Arc<Mutex<Recorder>>>>,
    running: Arc<AtomicI64>,
    dropped_inputs: Arc<AtomicU64>,
}

impl Recorders {
    fn new() -> Recorders {
        Recorders {
            cohorts: Arc::new((0..COHORTS).map(|_| Arc::default()).collect()),
            running: Arc::default(),
            dropped_inputs: Arc::default(),
        }
    }

    /// An open-model arrival delivered `lag` after its intended instant.
    pub fn record_arrival(&self, device: u64, lag: Duration) {
        let cohort = &self.cohorts[device as usize % COHORTS];
        cohort.count(counter::ARRIVALS, 1);
        cohort.count(counter::ARRIVAL_LAG_MS_TOTAL, lag.as_millis() as u64);
        if lag > LATE_ARRIVAL {
            cohort.count(counter::ARRIVALS_LATE, 1);
        }
    }

    /// Moves everything recorded since the last call into one snapshot.
    pub fn take_snapshot(&self) -> syncstorm_metrics::Snapshot {
        let mut total = syncstorm_metrics::Snapshot::default();
        for cohort in self.cohorts.iter() {
            let snap = cohort.lock().map(|mut r| r.take()).unwrap_or_default();
            // Snapshots of histograms with the same bounds always merge; a failure loses a second.
            let _ = total.merge(&snap);
        }
        let running = self.running.load(Ordering::Relaxed);
        total
            .gauges
            .insert(gauge::DEVICES_ACTIVE.to_owned(), running);
        let dropped = self.dropped_inputs.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            total.counters.insert("inputs_dropped".to_owned(), dropped);
        }
        total
    }
}

/// The worker's devices.
pub struct Fleet {
    config: FleetConfig,
    network: Arc<NetworkPlan>,
    recorders: Recorders,
    slots: HashMap<u64, Slot>,
    tasks: JoinSet<(u64, DeviceRun)>,
    root: CancellationToken,
    started: u64,
}

impl Fleet {
    /// A fleet for `devices`; their network switches are made up front so the outage
    /// windows can be driven from another task.
    pub fn new(config: FleetConfig, devices: Range<u64>, root: CancellationToken) -> Fleet {
        let mut network = NetworkPlan::new(&config.faults);
        for device in devices {
            network.switch(faults::outage_mask(&config.faults, config.seed, device));
        }
        Fleet {
            config,
            network: Arc::new(network),
            recorders: Recorders::new(),
            slots: HashMap::new(),
            tasks: JoinSet::new(),
            root,
            started: 0,
        }
    }

    pub fn network(&self) -> Arc<NetworkPlan> {
        self.network.clone()
    }

    pub fn recorders(&self) -> Recorders {
        self.recorders.clone()
    }

    pub fn running(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Running { .. }))
            .count()
    }

    pub fn started(&self) -> u64 {
        self.started
    }

    pub fn is_running(&self, device: u64) -> bool {
        matches!(self.slots.get(&device), Some(Slot::Running { .. }))
    }

    /// Sends an event to a running device (dropped and counted when its queue is full).
    pub fn send(&mut self, device: u64, event: Event) {
        self.deliver(device, Input::Event(event));
    }

    fn deliver(&mut self, device: u64, input: Input) {
        if let Some(Slot::Running { inputs, .. }) = self.slots.get(&device)
            && inputs.try_send(input).is_err()
        {
            self.recorders
                .dropped_inputs
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The app is opened: start (or resume) the device, then tell it.
    pub fn open(&mut self, device: u64) {
        if self.start(device, Pacing::Paced) {
            self.send(device, Event::AppOpened);
        }
    }

    /// An open-model arrival intended for `intended`: like [`Fleet::open`], and the device
    /// times the sync it starts from that instant.
    pub fn open_at(&mut self, device: u64, intended: tokio::time::Instant) {
        if self.start(device, Pacing::Unpaced) {
            self.deliver(device, Input::OpenedAt(intended));
        }
    }

    /// Starts or resumes the device; false when it is still returning from the background
    /// (it reopens by itself once back).
    fn start(&mut self, device: u64, pacing: Pacing) -> bool {
        match self.slots.remove(&device) {
            Some(Slot::Running { inputs, cancel }) => {
                self.slots.insert(device, Slot::Running { inputs, cancel });
            }
            Some(Slot::Returning { .. }) => {
                self.slots.insert(device, Slot::Returning { reopen: true });
                return false;
            }
            Some(Slot::Parked(parked)) => self.spawn(device, *parked, pacing),
            None => {
                let device_state = self.new_device(device);
                let first_device = self.config.first_user * self.config.devices_per_user.max(1);
                let session = (device.checked_sub(first_device))
                    .and_then(|i| self.config.stored_sessions.get_mut(i as usize))
                    .and_then(Option::take)
                    .map(|stored| self.expire_at_open(device, stored));
                self.started += 1;
                self.spawn(
                    device,
                    Parked {
                        device: device_state,
                        session,
                    },
                    pacing,
                );
            }
        }
        true
    }

    /// The session a phone finds on disk at its first open: for the scenario's share of
    /// devices, one whose access token expired an hour ago (the app was not opened for
    /// longer than the JWT expiry), so opening it refreshes first.
    fn expire_at_open(&self, device: u64, mut stored: Session) -> Session {
        let percent = self.config.knobs.expired_at_open_percent;
        if expired_at_open(self.config.seed, device, percent) {
            stored.expires_at = chrono::Utc::now().timestamp() - EXPIRED_FOR_SECS;
        }
        stored
    }

    /// The app goes to the background: the task stops, the store is kept.
    pub fn background(&mut self, device: u64) {
        if let Some(Slot::Running { cancel, .. }) = self.slots.get(&device) {
            cancel.cancel();
            self.slots.insert(device, Slot::Returning { reopen: false });
            self.recorders.running.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn new_device(&self, device: u64) -> Device {
        let user = device / self.config.devices_per_user.max(1);
        let user_id = self.config.user_ids[(user - self.config.first_user) as usize];
        let skew = faults::clock_skew_ms(&self.config.faults, self.config.seed, device);
        let seed = faults::mix(self.config.seed, device, 0xDE71CE);
        Device::new(device, user_id, self.config.knobs.clone(), skew, seed)
    }

    fn spawn(&mut self, device: u64, parked: Parked, pacing: Pacing) {
        let (tx, rx) = mpsc::channel(INPUT_CAPACITY);
        let cancel = self.root.child_token();
        let user = device / self.config.devices_per_user.max(1);
        let mask = faults::outage_mask(&self.config.faults, self.config.seed, device);
        let endpoint = match self.config.addresses.len() {
            0 => self.config.endpoint.clone(),
            n => self
                .config
                .endpoint
                .with_ip(self.config.addresses[device as usize % n]),
        };
        let metrics = DeviceMetrics {
            cohort: self.recorders.cohorts[device as usize % COHORTS].clone(),
            permit: Mutex::new(None),
        };
        let permits = (pacing == Pacing::Paced).then(|| self.config.start_permits.clone());
        let egress = &self.config.egress[device as usize % self.config.egress.len().max(1)];
        let task = DeviceTask {
            device: parked.device,
            session: parked.session,
            credentials: population::credentials(&self.config.credential_tag, user),
            endpoint,
            http: egress
                .http
                .for_device()
                .unwrap_or_else(|_| reqwest::Client::new().into()),
            config: egress.driver.clone(),
            metrics,
            online: self.online(mask),
            inputs: rx,
            cancel: cancel.clone(),
            clock: Clock::system(),
        };
        self.tasks.spawn(async move {
            let permit = match permits {
                Some(permits) => tokio::select! {
                    p = permits.acquire_owned() => p.ok(),
                    _ = task.cancel.cancelled() => None,
                },
                None => None,
            };
            *task
                .metrics
                .permit
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = permit;
            (device, driver::run_device(task).await)
        });
        self.slots
            .insert(device, Slot::Running { inputs: tx, cancel });
        self.recorders.running.fetch_add(1, Ordering::Relaxed);
    }

    /// The network a device of `mask` sits on (always online if it has no switch).
    fn online(&self, mask: u32) -> tokio::sync::watch::Receiver<bool> {
        match self.network.get(mask) {
            Some(switch) => switch.subscribe(),
            None => tokio::sync::watch::channel(true).1,
        }
    }

    /// Waits for the next device to come back from the background; `None` when none is out.
    pub async fn next_returned(&mut self) -> Option<u64> {
        let (device, run) = match self.tasks.join_next().await? {
            Ok(done) => done,
            Err(_) => return Some(u64::MAX), // a panicked device task: counted, not fatal
        };
        if let Some(err) = &run.error {
            tracing::warn!("device {device} stopped: {err}");
        }
        let slot = self.slots.get(&device);
        let reopen = matches!(slot, Some(Slot::Returning { reopen: true }));
        if matches!(slot, Some(Slot::Running { .. })) {
            self.recorders.running.fetch_sub(1, Ordering::Relaxed);
        }
        self.slots.insert(
            device,
            Slot::Parked(Box::new(Parked {
                device: run.device,
                session: run.session,
            })),
        );
        if reopen {
            self.open(device);
        }
        Some(device)
    }

    pub fn has_tasks(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// The final quiet sync: every device that ever ran syncs twice more and reports when idle.
    /// Returns the last round's count. Bounded by `within`.
    pub async fn quiesce(&mut self, within: Duration) -> QuietRound {
        let deadline = tokio::time::Instant::now() + within;
        self.settle_returning(deadline).await;
        // Round one pushes what every device still holds; round two pulls what the others
        // pushed in round one, so every device ends with the server's final state.
        let _ = self.quiet_round(deadline).await;
        self.quiet_round(deadline).await
    }

    /// Quiet syncs, `QUIESCE_CONCURRENCY` devices at a time (the check is not a second
    /// storm); parked devices are resumed when their turn comes.
    async fn quiet_round(&mut self, deadline: tokio::time::Instant) -> QuietRound {
        let mut devices: Vec<u64> = self.slots.keys().copied().collect();
        devices.sort_unstable();
        let total = devices.len() as u64;
        let mut queue = devices.into_iter();
        let mut pending = FuturesUnordered::new();
        let mut round = QuietRound::default();
        loop {
            while pending.len() < QUIESCE_CONCURRENCY {
                let Some(device) = queue.next() else { break };
                if let Some(Slot::Parked(_)) = self.slots.get(&device)
                    && let Some(Slot::Parked(parked)) = self.slots.remove(&device)
                {
                    self.spawn(device, *parked, Pacing::Paced);
                }
                if let Some(Slot::Running { inputs, .. }) = self.slots.get(&device) {
                    let (tx, rx) = oneshot::channel::<Option<SyncOutcome>>();
                    if inputs.try_send(Input::Quiesce(tx)).is_ok() {
                        pending.push(rx);
                    }
                }
            }
            match tokio::time::timeout_at(deadline, pending.next()).await {
                Ok(Some(Ok(Some(SyncOutcome::Completed { .. })))) => round.completed += 1,
                // A sync that failed, or a device that answered without syncing.
                Ok(Some(_)) => round.failed += 1,
                Ok(None) | Err(_) => break,
            }
        }
        round.missing = total - round.completed - round.failed;
        round
    }

    /// Parks devices already cancelled, so the quiet sync can restart them.
    async fn settle_returning(&mut self, deadline: tokio::time::Instant) {
        while self
            .slots
            .values()
            .any(|s| matches!(s, Slot::Returning { .. }))
        {
            match tokio::time::timeout_at(deadline, self.next_returned()).await {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }

    /// Stops every device and collects their final state (bounded by `within`).
    pub async fn stop_all(&mut self, within: Duration) -> Vec<Device> {
        let running: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|(d, s)| matches!(s, Slot::Running { .. }).then_some(*d))
            .collect();
        for device in running {
            self.background(device);
        }
        let deadline = tokio::time::Instant::now() + within;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.next_returned()).await {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        self.tasks.abort_all();
        let mut devices: Vec<Device> = self
            .slots
            .drain()
            .filter_map(|(_, s)| match s {
                Slot::Parked(parked) => Some(parked.device),
                _ => None,
            })
            .collect();
        devices.sort_by_key(Device::id);
        devices
    }
}
