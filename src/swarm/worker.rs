//! One worker: runs the devices of a slice of users on the plan's schedule, reports a
//! snapshot once per second, does the final quiet sync and the oracle for its users.
//! [`run_slice`] is the whole job, in-process; [`main`] wraps it for a worker process
//! (`syncstorm __worker`: the task on stdin, reports on stdout).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use syncstorm_device::Event;
use syncstorm_scenario::{Arrivals, Load, RunPlan};
use syncstorm_wire::client::{ConnectionModel, Endpoint, HttpClients, HttpOptions};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::behaviour::{Act, Users};
use super::fleet::{Egress, Fleet, FleetConfig, QuietRound, Recorders};
use super::saturation::{Meter, spawn_lag_monitor};
use super::schedule::{self, Activation, DeviceOrder, PhaseShape};
use super::shard::devices_of;
use super::task::{Report, WorkerSummary, WorkerTask};
use super::{faults, oracle_adapter, snoop};
use crate::driver::DriverConfig;

/// Devices signing in and running their first sync at once, per worker.
pub const START_CONCURRENCY: usize = 256;
/// How long stopping devices may take before their tasks are aborted.
const STOP_GRACE: Duration = Duration::from_secs(10);
const SALT_BULK: u64 = 0xB01C;

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the worker could not read its scenario: {0}")]
    Scenario(#[from] syncstorm_scenario::ScenarioError),
    #[error("the worker's target is not usable: {0}")]
    Target(String),
    #[error("the worker was given {ids} user ids for {users} users")]
    UserIds { ids: usize, users: u64 },
}

/// The plan's phases as the scheduler sees them.
pub fn phase_shapes(plan: &RunPlan) -> Vec<PhaseShape> {
    plan.phases
        .iter()
        .map(|p| PhaseShape {
            name: p.name.clone(),
            duration: p.duration,
            load: match p.load {
                Load::Open {
                    from_rate,
                    to_rate,
                    arrivals,
                } => schedule::Load::Open {
                    from: from_rate,
                    to: to_rate,
                    poisson: arrivals == Arrivals::Poisson,
                },
                Load::Closed { to, ramp, .. } => schedule::Load::Closed { to, ramp },
            },
        })
        .collect()
}

/// Maps the run's time zero (Unix ms) onto this process's monotonic clock.
pub fn origin_instant(origin_unix_ms: i64) -> Instant {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let behind = Duration::from_millis((now_ms - origin_unix_ms).max(0) as u64);
    let ahead = Duration::from_millis((origin_unix_ms - now_ms).max(0) as u64);
    Instant::now() - behind + ahead
}

fn fleet_config(plan: &RunPlan, task: &WorkerTask) -> Result<FleetConfig, WorkerError> {
    let endpoint = Endpoint::new(&task.endpoints.base_url, &task.endpoints.anon_key)
        .map_err(|e| WorkerError::Target(e.to_string()))?;
    let model = match plan.device.connections {
        syncstorm_device::ConnectionModel::Owned => ConnectionModel::PerDevice,
        syncstorm_device::ConnectionModel::Pooled => ConnectionModel::Shared,
    };
    let users = task.users.end - task.users.start;
    if task.user_ids.len() as u64 != users {
        return Err(WorkerError::UserIds {
            ids: task.user_ids.len(),
            users,
        });
    }
    let limiter = request_limiter(plan, users);
    let sources: Vec<Option<IpAddr>> = match task.endpoints.sources.as_slice() {
        [] => vec![None],
        ips => ips.iter().copied().map(Some).collect(),
    };
    let egress = sources
        .into_iter()
        .map(|source| {
            let http = HttpClients::new(
                model,
                HttpOptions {
                    local_address: source,
                    ..HttpOptions::default()
                },
            )
            .map_err(|e| WorkerError::Target(e.to_string()))?;
            let mut driver = DriverConfig {
                request_limiter: limiter.clone(),
                ..DriverConfig::default()
            };
            driver.realtime.local_address = source;
            Ok(Egress {
                http,
                driver: Arc::new(driver),
            })
        })
        .collect::<Result<Vec<_>, WorkerError>>()?;
    Ok(FleetConfig {
        knobs: Arc::new(plan.device.clone()),
        egress,
        endpoint,
        addresses: task.endpoints.addresses.clone(),
        seed: plan.run.seed,
        devices_per_user: u64::from(plan.population.devices_per_user),
        first_user: task.users.start,
        user_ids: task.user_ids.clone(),
        credential_tag: task.credential_tag.clone(),
        faults: plan.faults.clone(),
        start_permits: Arc::new(Semaphore::new(START_CONCURRENCY)),
        stored_sessions: task.sessions.iter().cloned().map(Some).collect(),
    })
}

/// This worker's share of the run's request ceiling, in proportion to the users it owns (workers
/// and shards partition the users, so the shares add up to the ceiling).
fn request_limiter(plan: &RunPlan, users: u64) -> Option<Arc<crate::target::RequestLimiter>> {
    let share = plan.target.max_request_rate? * users as f64 / plan.population.users.max(1) as f64;
    crate::target::RequestLimiter::new(share, (share / 10.0).floor() as u32).map(Arc::new)
}

/// Runs the slice until the load ends (then quiesces and checks) or `stop` (then reports
/// what ran). Reports go to `reports`; the last one is `Done`.
pub async fn run_slice(task: WorkerTask, stop: CancellationToken, reports: mpsc::Sender<Report>) {
    let summary = match drive(&task, stop, &reports).await {
        Ok(summary) => Report::Done(summary),
        Err(err) => Report::Failed {
            message: err.to_string(),
        },
    };
    let _ = reports.send(summary).await;
}

async fn drive(
    task: &WorkerTask,
    stop: CancellationToken,
    reports: &mpsc::Sender<Report>,
) -> Result<WorkerSummary, WorkerError> {
    let plan = syncstorm_scenario::from_str_with("scenario", &task.scenario_toml, &[], &[])?;
    let origin = origin_instant(task.origin_unix_ms);
    let devices = devices_of(&task.users, u64::from(plan.population.devices_per_user));
    let root = CancellationToken::new();
    let mut fleet = Fleet::new(fleet_config(&plan, task)?, devices.clone(), root.clone());
    let (stage_tx, stage_rx) = watch::channel(String::from("starting"));
    let reporter = tokio::spawn(report_seconds(
        fleet.recorders(),
        origin,
        stage_rx,
        reports.clone(),
        root.clone(),
    ));
    let network = fleet.network();
    let faults_task = tokio::spawn({
        let cancel = root.clone();
        async move { network.drive(origin, cancel).await }
    });
    let interrupted = run_load(&plan, task, &mut fleet, origin, &stop, &stage_tx).await;
    let mut summary = WorkerSummary {
        devices_started: fleet.started(),
        interrupted,
        ..WorkerSummary::default()
    };
    if !interrupted {
        let _ = stage_tx.send("quiesce".into());
        let round = tokio::select! {
            q = fleet.quiesce(plan.run.quiesce) => q,
            _ = stop.cancelled() => QuietRound { missing: fleet.started(), ..Default::default() },
        };
        summary.devices_quiesced = round.completed;
        summary.devices_not_quiesced = round.missing + round.failed;
        summary.quiet_syncs_failed = round.failed;
    }
    let _ = stage_tx.send("stopping".into());
    let final_devices = fleet.stop_all(STOP_GRACE).await;
    root.cancel();
    let _ = faults_task.await;
    let _ = reporter.await;
    if interrupted || stop.is_cancelled() {
        summary.oracle_skipped = Some("the run was interrupted before the quiet sync".into());
    } else {
        let _ = stage_tx.send("oracle".into());
        match oracle_adapter::check(task, &final_devices).await {
            Ok(mut verdict) => {
                // Devices that did not stop within the grace are not in `final_devices`:
                // the oracle says how many it saw of those the run started.
                verdict.devices_started = summary.devices_started;
                verdict.quiet_syncs_failed = summary.quiet_syncs_failed;
                verdict.rows_refused = final_devices.iter().map(|d| d.stats().rows_refused).sum();
                summary.oracle = Some(verdict)
            }
            Err(reason) => summary.oracle_skipped = Some(reason),
        }
    }
    Ok(summary)
}

/// The load phases: activations from the schedule, user actions from the behaviour heap,
/// devices coming back from the background. Returns true when stopped early.
async fn run_load(
    plan: &RunPlan,
    task: &WorkerTask,
    fleet: &mut Fleet,
    origin: Instant,
    stop: &CancellationToken,
    stage: &watch::Sender<String>,
) -> bool {
    let shapes = phase_shapes(plan);
    let seed = plan.run.seed;
    let per_user = u64::from(plan.population.devices_per_user);
    let owned = devices_of(&task.users, per_user);
    let order = DeviceOrder::new(plan.total_devices(), seed);
    let (lo, hi) = (owned.start, owned.end);
    let mut schedule =
        schedule::activations(&shapes, order, seed, move |d| d >= lo && d < hi).peekable();
    let mut users = Users::new(
        plan.behaviour.clone(),
        faults::mix(seed, task.users.start, 0xB0),
    );
    let load_end = origin + plan.load_duration();
    let mut bulk = plan
        .behaviour
        .bulk_import
        .clone()
        .map(|b| (origin + b.at, b));
    // Snooping devices try other users' rows once, halfway through the load.
    let snoop_fraction = plan.behaviour.snoop_fraction;
    let mut snoop_at = (snoop_fraction > 0.0).then(|| origin + plan.load_duration() / 2);
    let mut phase = usize::MAX;
    let recorders = fleet.recorders();
    loop {
        let next_activation = schedule.peek().map(|a| origin + a.at());
        let next = [
            next_activation,
            users.next_due(),
            bulk.as_ref().map(|b| b.0),
            snoop_at,
            Some(load_end),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(load_end);
        tokio::select! {
            _ = stop.cancelled() => return true,
            _ = tokio::time::sleep_until(next) => {}
            Some(_) = fleet.next_returned(), if fleet.has_tasks() => continue,
        }
        let now = Instant::now();
        if now >= load_end {
            return false;
        }
        let current = schedule::phase_at(&shapes, now - origin);
        if current != phase {
            phase = current;
            let _ = stage.send(shapes[phase].name.clone());
        }
        while let Some(activation) = schedule.next_if(|a| origin + a.at() <= now) {
            let act = match activation {
                Activation::Open {
                    device, intended, ..
                } => {
                    recorders.record_arrival(device, now - (origin + intended));
                    users.open(device, now, false);
                    fleet.open_at(device, origin + intended);
                    continue;
                }
                Activation::Start { device, .. } => users.open(device, now, true),
                Activation::Stop { device, .. } => users.stop(device),
            };
            apply(fleet, act);
        }
        for act in users.due(now) {
            apply(fleet, act);
        }
        if let Some((at, spec)) = bulk.take_if(|(at, _)| *at <= now) {
            let _ = at;
            start_bulk_imports(fleet, task, per_user, seed, &spec);
        }
        if snoop_at.take_if(|at| *at <= now).is_some() {
            snoop::start_snoops(fleet, task, &plan.population, seed, snoop_fraction);
        }
    }
}

fn apply(fleet: &mut Fleet, act: Act) {
    match act {
        Act::Open(device) => fleet.open(device),
        Act::Edit(device) => fleet.send(device, Event::UserEdit),
        Act::Background(device) => fleet.background(device),
    }
}

/// The first device of a `fraction` of the users imports `rows` rows (opening the app first).
fn start_bulk_imports(
    fleet: &mut Fleet,
    task: &WorkerTask,
    per_user: u64,
    seed: u64,
    spec: &syncstorm_scenario::BulkImport,
) {
    let rows = u32::try_from(spec.rows).unwrap_or(u32::MAX);
    for user in task.users.clone() {
        if faults::unit(seed, user, SALT_BULK) >= spec.fraction {
            continue;
        }
        let device = user * per_user;
        if !fleet.is_running(device) {
            fleet.open(device);
        }
        fleet.send(device, Event::BulkImport { rows });
    }
}

/// Once per second (aligned on the run's time zero): the second's snapshot and the
/// generator's saturation. Ends with `cancel`, after one last report.
async fn report_seconds(
    recorders: Recorders,
    origin: Instant,
    stage: watch::Receiver<String>,
    reports: mpsc::Sender<Report>,
    cancel: CancellationToken,
) {
    let mut meter = Meter::new(spawn_lag_monitor(cancel.clone()));
    let now = Instant::now();
    let elapsed = now.saturating_duration_since(origin).as_secs();
    let mut second = elapsed;
    loop {
        let tick = origin + Duration::from_secs(second + 1);
        let stopping = tokio::select! {
            _ = tokio::time::sleep_until(tick) => false,
            _ = cancel.cancelled() => true,
        };
        let report = Report::Second {
            t: second,
            snapshot: recorders.take_snapshot(),
            saturation: meter.take(),
            stage: stage.borrow().clone(),
        };
        if reports.send(report).await.is_err() || stopping {
            return;
        }
        second += 1;
    }
}

/// The `__worker` process: reads one task from stdin, streams reports to stdout, stops on a
/// `Stop` control or when stdin closes (the coordinator is gone). Returns the exit code.
pub async fn main() -> i32 {
    use super::ipc::{read_frame, write_frame};
    use super::task::Control;
    super::budget::raise_fd_limit();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let task: WorkerTask = match read_frame(&mut stdin).await {
        Ok(task) => task,
        Err(err) => {
            eprintln!("syncstorm worker: no task on stdin: {err}");
            return 2;
        }
    };
    let fd_limit = super::budget::raise_fd_limit();
    if write_frame(&mut stdout, &Report::Ready { fd_limit })
        .await
        .is_err()
    {
        return 1;
    }
    let stop = CancellationToken::new();
    let watcher = tokio::spawn({
        let stop = stop.clone();
        async move {
            // Any frame is `Stop`; a closed pipe means the coordinator is gone: stop too.
            let _ = read_frame::<_, Control>(&mut stdin).await;
            stop.cancel();
        }
    });
    let (tx, mut rx) = mpsc::channel(64);
    let slice = tokio::spawn(run_slice(task, stop, tx));
    let mut code = 0;
    while let Some(report) = rx.recv().await {
        let last = matches!(report, Report::Done(_) | Report::Failed { .. });
        code = if matches!(report, Report::Failed { .. }) {
            1
        } else {
            code
        };
        if write_frame(&mut stdout, &report).await.is_err() {
            code = 1;
            break;
        }
        if last {
            break;
        }
    }
    let _ = slice.await;
    watcher.abort();
    code
}
