//! Shared helpers of the `device_*` tests: an embedded stack on the binary's shared cluster,
//! users made through the admin API, devices run by the real driver, and the server's truth
//! read straight from PostgreSQL.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use syncstorm::driver::{
    Clock, Credentials, DeviceRun, DeviceTask, DriverConfig, Input, Metrics, NetworkSwitch,
    run_device,
};
use syncstorm_device::{Device, DeviceKnobs, Event, PulseMode, Row, SyncOutcome, Table};
use syncstorm_metrics::Recorder;
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use syncstorm_wire::client::{
    AuthClient, Endpoint, HttpOptions, ReconnectPolicy, Session, http_client,
};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Upper bound of any wait in these tests (a hung test fails instead of hanging).
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestStack {
    pub stack: RunningStack,
    pub endpoint: Endpoint,
    pub cancel: CancellationToken,
}

/// A stack on the shared test cluster; `tune` adjusts its config (e.g. a short JWT expiry).
pub async fn start_stack(tune: impl FnOnce(&mut StackConfig)) -> TestStack {
    let plan = SupabasePlan::preset("pro").expect("the pro preset exists");
    let mut config = StackConfig::new(plan);
    tune(&mut config);
    let cancel = CancellationToken::new();
    let stack = Stack::start_for_tests(config, cancel.clone())
        .await
        .expect("embedded stack starts");
    let endpoint = Endpoint::new(&stack.url, &stack.anon_key).expect("stack URL is valid");
    TestStack {
        stack,
        endpoint,
        cancel,
    }
}

impl TestStack {
    /// A confirmed user made through `POST /auth/v1/admin/users`.
    pub async fn new_user(&self) -> (Uuid, Credentials) {
        let http = http_client(&HttpOptions::default()).unwrap();
        let auth = AuthClient::new(http, self.endpoint.clone());
        let email = format!("device-{}@example.test", Uuid::new_v4());
        let password = "correct horse battery".to_string();
        let user = auth
            .admin_create_user(&self.stack.service_role_key, &email, &password)
            .await
            .expect("admin create user");
        (
            Uuid::parse_str(&user.id).unwrap(),
            Credentials { email, password },
        )
    }

    /// A superuser SQL connection to the stack's database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.stack.database_url, tokio_postgres::NoTls)
                .await
                .expect("superuser connection");
        tokio::spawn(connection);
        client
    }

    /// The server's rows of one user, read directly (the truth the devices must match).
    pub async fn server_rows(&self, user_id: Uuid) -> BTreeMap<(Table, Uuid), Row> {
        let sql = self.sql().await;
        let mut rows = BTreeMap::new();
        for table in Table::ALL {
            let query = format!(
                "select to_jsonb(t) from public.{} t where user_id = $1",
                table.name()
            );
            for record in sql.query(&query, &[&user_id]).await.unwrap() {
                let json: serde_json::Value = record.get(0);
                let row = Row::from_json(table, &json).expect("server rows decode");
                rows.insert((table, row.id), row);
            }
        }
        rows
    }
}

/// Device rows keyed like [`TestStack::server_rows`].
pub fn device_rows(device: &Device) -> BTreeMap<(Table, Uuid), Row> {
    Table::ALL
        .into_iter()
        .flat_map(|table| device.rows(table).map(move |row| ((table, row.id), row)))
        .collect()
}

/// Test knobs: quick debounce and retries, no pulse unless the test asks for one.
pub fn knobs(tune: impl FnOnce(&mut DeviceKnobs)) -> Arc<DeviceKnobs> {
    let mut knobs = DeviceKnobs {
        edit_debounce: Duration::from_millis(20),
        ..DeviceKnobs::default()
    };
    knobs.usap.base_delay = Duration::from_millis(50);
    knobs.pulse.mode = PulseMode::Off;
    tune(&mut knobs);
    Arc::new(knobs)
}

/// What a device recorded, as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Latency(String),
    Error(String, ErrorKind),
    Count(String, u64),
}

/// A [`Metrics`] that records like the real recorder and also tells the test each record, so
/// tests wait for what happened instead of sleeping.
pub struct Probe {
    pub recorder: Mutex<Recorder>,
    tx: mpsc::UnboundedSender<Seen>,
}

impl Metrics for Probe {
    fn latency(&self, op: &str, took: Duration) {
        self.recorder.latency(op, took);
        let _ = self.tx.send(Seen::Latency(op.to_owned()));
    }
    fn error(&self, op: &str, kind: ErrorKind) {
        self.recorder.error(op, kind);
        let _ = self.tx.send(Seen::Error(op.to_owned(), kind));
    }
    fn count(&self, name: &str, n: u64) {
        self.recorder.count(name, n);
        let _ = self.tx.send(Seen::Count(name.to_owned(), n));
    }
    fn gauge(&self, name: &str, delta: i64) {
        self.recorder.gauge(name, delta);
    }
}

pub struct RunningDevice {
    pub probe: Arc<Probe>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    inputs: mpsc::Sender<Input>,
    cancel: CancellationToken,
    handle: JoinHandle<DeviceRun>,
}

pub struct DeviceSetup {
    pub device: Device,
    pub credentials: Credentials,
    pub config: DriverConfig,
    pub network: Option<Arc<NetworkSwitch>>,
}

/// Driver settings for tests: fast reconnects and sign-in retries.
pub fn driver_config() -> DriverConfig {
    let mut config = DriverConfig::default();
    config.realtime.reconnect = ReconnectPolicy {
        delays: vec![Duration::from_millis(50)],
        full_jitter: false,
    };
    config.sign_in_retry = Duration::from_millis(100);
    config
}

impl TestStack {
    pub fn spawn_device(&self, setup: DeviceSetup) -> RunningDevice {
        self.resume_device(setup, None)
    }

    /// A device reopened with the session it kept from an earlier run.
    pub fn resume_device(&self, setup: DeviceSetup, session: Option<Session>) -> RunningDevice {
        let (tx, seen) = mpsc::unbounded_channel();
        let probe = Arc::new(Probe {
            recorder: Mutex::new(Recorder::new()),
            tx,
        });
        let (inputs_tx, inputs) = mpsc::channel(16);
        let cancel = self.cancel.child_token();
        let network = setup
            .network
            .unwrap_or_else(|| Arc::new(NetworkSwitch::new()));
        let task = DeviceTask {
            device: setup.device,
            session,
            credentials: setup.credentials,
            endpoint: self.endpoint.clone(),
            http: http_client(&HttpOptions::default()).unwrap(),
            config: Arc::new(setup.config),
            metrics: probe.clone(),
            online: network.subscribe(),
            inputs,
            cancel: cancel.clone(),
            clock: Clock::system(),
        };
        let handle = tokio::spawn(run_device(task));
        RunningDevice {
            probe,
            seen,
            inputs: inputs_tx,
            cancel,
            handle,
        }
    }
}

impl RunningDevice {
    pub async fn send(&self, event: Event) {
        self.inputs
            .send(Input::Event(event))
            .await
            .expect("device is running");
    }

    /// An open-model app open that was intended for `intended`.
    pub async fn open_intended(&self, intended: tokio::time::Instant) {
        self.inputs
            .send(Input::OpenedAt(intended))
            .await
            .expect("device is running");
    }

    /// The final quiet sync: returns the outcome of the device's last sync once it is idle.
    pub async fn quiesce(&self) -> SyncOutcome {
        let (reply, answer) = oneshot::channel();
        self.inputs
            .send(Input::Quiesce(reply))
            .await
            .expect("device is running");
        let outcome = tokio::time::timeout(WAIT, answer)
            .await
            .expect("quiesce in time");
        outcome.expect("device answered").expect("a sync ran")
    }

    /// Waits until the device records something matching `want`; returns it.
    pub async fn wait_for(&mut self, want: impl Fn(&Seen) -> bool) -> Seen {
        tokio::time::timeout(WAIT, async {
            loop {
                let seen = self.seen.recv().await.expect("device is running");
                if want(&seen) {
                    return seen;
                }
            }
        })
        .await
        .expect("the device recorded what the test waits for in time")
    }

    /// Every sync error the device recorded so far (drains the record).
    pub fn sync_errors(&mut self) -> Vec<ErrorKind> {
        let mut errors = Vec::new();
        while let Ok(seen) = self.seen.try_recv() {
            if let Seen::Error(op, kind) = seen
                && op == "sync"
            {
                errors.push(kind);
            }
        }
        errors
    }

    pub async fn stop(self) -> DeviceRun {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("device stops in time")
            .expect("device task")
    }
}

/// A new device of `user_id`.
pub fn device(id: u64, user_id: Uuid, knobs: &Arc<DeviceKnobs>, skew_ms: i64, seed: u64) -> Device {
    Device::new(id, user_id, knobs.clone(), skew_ms, seed)
}
