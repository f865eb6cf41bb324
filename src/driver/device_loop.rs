//! The device's event loop: one `select!` over cancellation, the network switch, the swarm's
//! inputs, finished requests, timers, the session refresh and the realtime socket.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use syncstorm_device::{Action, Device, Event, PulseMode, SyncOutcome, Timer};
use syncstorm_metrics::{counter, gauge};
use syncstorm_wire::client::{AuthClient, RealtimeEvent, RestClient, Session};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::metrics::{Metrics, op};
use super::pulse::{OpenArgs, PulseSocket};
use super::requests::{self, Finished, Pending, RequestContext};
use super::session::{self, AuthDone, AuthPending};
use super::settle::settle;
use super::{Clock, Credentials, DeviceRun, DeviceTask, DriverConfig, DriverError, Input};

/// What woke the loop.
enum Wake {
    Cancelled,
    Network(bool),
    NetworkGone,
    Input(Option<Input>),
    Finished(Finished),
    TimerDue,
    RefreshDue,
    Auth(AuthDone),
    Realtime(Option<RealtimeEvent>),
}

struct DeviceLoop<M> {
    device: Device,
    metrics: M,
    clock: Clock,
    config: Arc<DriverConfig>,
    credentials: Credentials,
    endpoint: syncstorm_wire::client::Endpoint,
    auth: AuthClient,
    session: Session,
    refresh_due_ms: i64,
    renewing: Option<AuthPending>,
    /// Requests refused for an expired token, re-issued once the session is renewed.
    after_renewal: Vec<Action>,
    requests: RequestContext,
    in_flight: FuturesUnordered<Pending>,
    /// Per request in flight, its number and the failure that stands in for it if the driver
    /// stops first (see `settle`).
    stand_ins: Vec<(u32, Event)>,
    next_request: u32,
    timers: [Option<i64>; 3],
    pulse: Option<PulseSocket>,
    cancel: CancellationToken,
    /// The network switch as last seen (no renewal while offline).
    online: bool,
    sync_started_ms: Option<i64>,
    /// The intended instant of an open-model app open whose sync has not started yet.
    open_intended: Option<tokio::time::Instant>,
    /// The intended instant the running sync's first token check is timed from.
    token_check_intended: Option<tokio::time::Instant>,
    /// Kind of the last failed request of the running sync (what a failed sync is counted by).
    sync_error: Option<ErrorKind>,
    last_outcome: Option<SyncOutcome>,
    quiesce: Option<oneshot::Sender<Option<SyncOutcome>>>,
    /// A bulk import's rows are still waiting to be pushed: its pushes count as `bulk_push`,
    /// so risk 3 can set the importers' requests beside everyone else's.
    bulk_importing: bool,
}

pub(super) async fn run<M: Metrics>(task: DeviceTask<M>) -> DeviceRun {
    // Startup (sign-in or refresh) runs in its own boxed future, freed before the long serve:
    // an idle device's task then holds the loop, not startup's locals beside it.
    let (mut state, online, inputs) = match Box::pin(start(task)).await {
        Ok(started) => started,
        Err(stopped) => return stopped,
    };
    state.serve(online, inputs).await;
    DeviceRun {
        device: state.device,
        session: Some(state.session),
        error: None,
    }
}

/// What a device serves with once started.
type Started<M> = (DeviceLoop<M>, watch::Receiver<bool>, mpsc::Receiver<Input>);

/// Signs in (or keeps the stored session) and builds the loop; `Err` is a device that stopped
/// before it could serve.
async fn start<M: Metrics>(task: DeviceTask<M>) -> Result<Started<M>, DeviceRun> {
    let DeviceTask {
        device,
        session: kept,
        credentials,
        endpoint,
        http,
        config,
        metrics,
        mut online,
        inputs,
        cancel,
        clock,
    } = task;
    if device.knobs().pulse.mode == PulseMode::LongPoll {
        return Err(DeviceRun {
            device,
            session: kept,
            error: Some(DriverError::Unsupported),
        });
    }
    let auth = AuthClient::new(http.clone(), endpoint.clone());
    // A reopened app uses its stored session; a new one, or one whose refresh failed, signs in.
    let margin = config.refresh_margin;
    let refreshed = match kept {
        Some(stored) => {
            session::refresh_stored(
                stored,
                &auth,
                &credentials,
                &metrics,
                &clock,
                margin,
                &online,
            )
            .await
        }
        None => None,
    };
    let session = match refreshed {
        Some(session) => Some(session),
        None => {
            session::sign_in(
                &auth,
                &credentials,
                &metrics,
                config.sign_in_retry,
                &mut online,
                &cancel,
            )
            .await
        }
    };
    let Some(session) = session else {
        return Err(DeviceRun {
            device,
            session: None,
            error: None,
        });
    };
    if session.user_id != device.user_id().to_string() {
        let error = DriverError::WrongUser {
            device: device.id(),
            expected: device.user_id().to_string(),
            signed_in: session.user_id,
        };
        return Err(DeviceRun {
            device,
            session: None,
            error: Some(error),
        });
    }
    let requests = RequestContext {
        rest: RestClient::new(http, endpoint.clone()),
        jwt: Arc::from(session.access_token.as_str()),
        user_id: Arc::from(session.user_id.as_str()),
        online: online.clone(),
        limiter: config.request_limiter.clone(),
    };
    let refresh_due_ms = session::refresh_due_ms(&session, &clock, config.refresh_margin);
    let state = DeviceLoop {
        device,
        metrics,
        clock,
        config,
        credentials,
        endpoint,
        auth,
        session,
        refresh_due_ms,
        renewing: None,
        after_renewal: Vec::new(),
        requests,
        in_flight: FuturesUnordered::new(),
        stand_ins: Vec::new(),
        next_request: 0,
        timers: [None; 3],
        pulse: None,
        cancel,
        online: true,
        sync_started_ms: None,
        open_intended: None,
        token_check_intended: None,
        sync_error: None,
        last_outcome: None,
        quiesce: None,
        bulk_importing: false,
    };
    Ok((state, online, inputs))
}

fn timer_slot(timer: Timer) -> usize {
    match timer {
        Timer::EditDebounce => 0,
        Timer::UsapRetry => 1,
        Timer::Periodic => 2,
    }
}

const TIMERS: [Timer; 3] = [Timer::EditDebounce, Timer::UsapRetry, Timer::Periodic];

impl<M: Metrics> DeviceLoop<M> {
    async fn serve(
        &mut self,
        mut online: watch::Receiver<bool>,
        mut inputs: mpsc::Receiver<Input>,
    ) {
        let (mut inputs_open, mut network_open) = (true, true);
        self.online = *online.borrow_and_update();
        // A device reopened after a run that ended offline (or the reverse) catches up.
        if self.device.is_online() != self.online {
            self.step(if self.online {
                Event::NetworkBack
            } else {
                Event::NetworkLost
            });
        }
        loop {
            match self
                .wait(&mut online, &mut inputs, inputs_open, network_open)
                .await
            {
                Wake::Cancelled => break,
                Wake::NetworkGone => network_open = false,
                Wake::Network(up) if up == self.online => {}
                Wake::Network(up) => {
                    self.online = up;
                    self.metrics
                        .gauge(gauge::DEVICES_OFFLINE, if up { -1 } else { 1 });
                    self.step(if up {
                        Event::NetworkBack
                    } else {
                        Event::NetworkLost
                    });
                }
                Wake::Input(None) => inputs_open = false,
                Wake::Input(Some(input)) => self.on_input(input),
                Wake::Finished(done) => self.on_finished(done),
                Wake::TimerDue => self.fire_due_timers(),
                Wake::RefreshDue => self.start_renewal(),
                Wake::Auth(done) => self.on_auth(done),
                Wake::Realtime(event) => self.on_realtime(event),
            }
            self.answer_quiesce();
        }
        if let Some(pulse) = self.pulse.take() {
            pulse.close(&self.metrics).await;
        }
        if self.sync_started_ms.take().is_some() {
            self.metrics.gauge(gauge::SYNCS_IN_FLIGHT, -1);
        }
        let stand_ins = std::mem::take(&mut self.stand_ins)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let retry_at = self.timers[timer_slot(Timer::UsapRetry)];
        settle(&mut self.device, stand_ins, retry_at, self.clock.now_ms());
    }

    async fn wait(
        &mut self,
        online: &mut watch::Receiver<bool>,
        inputs: &mut mpsc::Receiver<Input>,
        inputs_open: bool,
        network_open: bool,
    ) -> Wake {
        let next_timer = self.timers.iter().flatten().min().copied();
        let timer_at = self.clock.instant_at(next_timer.unwrap_or(i64::MAX / 4));
        let refresh_at = self.clock.instant_at(self.refresh_due_ms);
        let has_pulse = self.pulse.is_some();
        let pulse = self.pulse.as_mut().map(|p| &mut p.client);
        tokio::select! {
            _ = self.cancel.cancelled() => Wake::Cancelled,
            changed = online.changed(), if network_open => match changed {
                Ok(()) => Wake::Network(*online.borrow_and_update()),
                Err(_) => Wake::NetworkGone,
            },
            input = inputs.recv(), if inputs_open => Wake::Input(input),
            Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => Wake::Finished(done),
            _ = tokio::time::sleep_until(timer_at), if next_timer.is_some() => Wake::TimerDue,
            _ = tokio::time::sleep_until(refresh_at), if self.renewing.is_none() && self.online => Wake::RefreshDue,
            done = async { self.renewing.as_mut().expect("guarded").await }, if self.renewing.is_some() => Wake::Auth(done),
            event = async { pulse.expect("guarded").next_event().await }, if has_pulse => Wake::Realtime(event),
        }
    }

    /// Feeds one event to the machine and carries out what it asks.
    fn step(&mut self, event: Event) {
        let actions = self.device.step(event, self.clock.now_ms());
        for action in actions {
            self.carry_out(action);
        }
    }

    fn carry_out(&mut self, action: Action) {
        match action {
            Action::SyncStarted {
                triggered_at_ms, ..
            } => {
                let mut started_ms = triggered_at_ms;
                if let Some(intended) = self.open_intended.take() {
                    started_ms = started_ms.min(self.clock.ms_at(intended));
                    self.token_check_intended = Some(intended);
                }
                if self.sync_started_ms.replace(started_ms).is_none() {
                    self.metrics.gauge(gauge::SYNCS_IN_FLIGHT, 1);
                }
                self.sync_error = None;
            }
            Action::SyncFinished { outcome } => self.on_sync_finished(outcome),
            Action::SetTimer { timer, at_ms } => self.timers[timer_slot(timer)] = Some(at_ms),
            Action::CancelTimer { timer } => self.timers[timer_slot(timer)] = None,
            Action::OpenPulse => self.open_pulse(),
            request => self.start_request(request, false),
        }
    }

    fn start_request(&mut self, action: Action, retried: bool) {
        let id = self.next_request;
        let stand_in = requests::is_request(&action).then(|| requests::failure_event(&action));
        if let Some(pending) = requests::start(action, &self.requests, retried, id) {
            self.next_request = id.wrapping_add(1);
            self.in_flight.push(pending);
            if let Some(event) = stand_in {
                self.stand_ins.push((id, event));
            }
        }
    }

    fn on_sync_finished(&mut self, outcome: SyncOutcome) {
        let started = self.sync_started_ms.take();
        if started.is_some() {
            self.metrics.gauge(gauge::SYNCS_IN_FLIGHT, -1);
        }
        match outcome {
            SyncOutcome::Completed {
                pull_skipped,
                rows_pulled,
                rows_pushed,
            } => {
                let took =
                    (self.clock.now_ms() - started.unwrap_or_else(|| self.clock.now_ms())).max(0);
                self.metrics
                    .latency(op::SYNC, Duration::from_millis(took as u64));
                self.metrics
                    .count(counter::PULLS_SKIPPED, u64::from(pull_skipped));
                self.metrics
                    .count(counter::ROWS_PULLED, u64::from(rows_pulled));
                self.metrics
                    .count(counter::ROWS_PUSHED, u64::from(rows_pushed));
            }
            SyncOutcome::Failed { .. } => {
                self.metrics
                    .error(op::SYNC, self.sync_error.unwrap_or(ErrorKind::Http5xx));
            }
        }
        self.last_outcome = Some(outcome);
    }

    fn on_finished(&mut self, done: Finished) {
        if let Some(i) = self.stand_ins.iter().position(|(id, _)| *id == done.id) {
            self.stand_ins.swap_remove(i);
        }
        if done.op == op::SNOOP {
            // The machine counts snoop attempts and leaks; a refusal is RLS working.
            self.step(done.event);
            return;
        }
        let op = if done.op == op::PUSH && self.bulk_importing {
            op::BULK_PUSH
        } else {
            done.op
        };
        let intended = (op == op::TOKEN_CHECK)
            .then(|| self.token_check_intended.take())
            .flatten();
        let Some(error) = done.error else {
            // From the intended instant when this check answers an open-model app open.
            let took = intended.map_or(done.took, |at| done.took.max(at.elapsed()));
            self.metrics.latency(op, took);
            if let (Some(table), true) = (done.table, done.op == op::PULL) {
                self.metrics.latency(op::pull_table(table), done.took);
                self.metrics.latency(op::pull_tier(table), done.took);
            }
            self.step(done.event);
            self.end_bulk_import_when_pushed();
            return;
        };
        if requests::is_expired_token(&error) && !done.retried {
            // The token ran out under the request: renew, then send it again.
            self.after_renewal.push(done.action);
            self.start_renewal();
            return;
        }
        self.metrics.error(op, error.kind);
        self.sync_error = Some(error.kind);
        self.step(done.event);
    }

    fn begin_bulk_import(&mut self, rows: u32) {
        self.metrics.count(counter::BULK_ROWS, u64::from(rows));
        if !self.bulk_importing {
            self.bulk_importing = true;
            self.metrics.gauge(gauge::BULK_IMPORTS_RUNNING, 1);
        }
    }

    fn end_bulk_import_when_pushed(&mut self) {
        if self.bulk_importing && self.device.dirty_count() == 0 {
            self.bulk_importing = false;
            self.metrics.gauge(gauge::BULK_IMPORTS_RUNNING, -1);
        }
    }

    fn fire_due_timers(&mut self) {
        let now = self.clock.now_ms();
        for timer in TIMERS {
            let slot = &mut self.timers[timer_slot(timer)];
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                self.step(Event::TimerFired(timer));
            }
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::OpenedAt(intended) => {
                self.open_intended = Some(intended);
                self.on_input(Input::Event(Event::AppOpened));
                // An open that starts no sync (offline, or one already pending) times nothing.
                if !self.device.sync_again_pending() {
                    self.open_intended = None;
                }
            }
            Input::Event(event) => {
                if event == Event::AppOpened {
                    self.metrics.count(counter::APP_OPENS, 1);
                }
                if let Event::BulkImport { rows } = event {
                    self.begin_bulk_import(rows);
                }
                self.step(event);
            }
            Input::Quiesce(reply) => {
                self.quiesce = Some(reply);
                self.last_outcome = None;
                self.step(Event::AppOpened);
            }
        }
    }

    /// Answers a pending quiesce once the device is idle after its final sync.
    fn answer_quiesce(&mut self) {
        let idle = !self.device.is_syncing()
            && !self.device.sync_again_pending()
            && self.in_flight.is_empty();
        if idle
            && self.last_outcome.is_some()
            && let Some(reply) = self.quiesce.take()
        {
            let _ = reply.send(self.last_outcome);
        }
    }

    fn start_renewal(&mut self) {
        if self.renewing.is_none() {
            let pending = session::renew(
                self.auth.clone(),
                self.session.clone(),
                self.credentials.clone(),
            );
            self.renewing = Some(pending);
        }
    }

    fn on_auth(&mut self, done: AuthDone) {
        self.renewing = None;
        match done.result {
            Ok(session) => {
                self.metrics.latency(done.op, done.took);
                self.requests.jwt = Arc::from(session.access_token.as_str());
                if let Some(pulse) = &self.pulse {
                    pulse.client.set_access_token(self.requests.jwt.clone());
                }
                self.refresh_due_ms =
                    session::refresh_due_ms(&session, &self.clock, self.config.refresh_margin);
                self.session = session;
                for action in std::mem::take(&mut self.after_renewal) {
                    self.start_request(action, true);
                }
            }
            Err(error) => {
                self.metrics.error(done.op, error.kind);
                // Try again later; requests waiting for the new token fail now.
                self.refresh_due_ms =
                    self.clock.now_ms() + self.config.sign_in_retry.as_millis() as i64;
                for action in std::mem::take(&mut self.after_renewal) {
                    self.start_request(action, true);
                }
            }
        }
    }

    fn open_pulse(&mut self) {
        if self.device.knobs().pulse.mode != PulseMode::Websocket || self.pulse.is_some() {
            return;
        }
        let socket = PulseSocket::open(OpenArgs {
            endpoint: &self.endpoint,
            options: &self.config.realtime,
            subscribe: self.device.knobs().pulse.subscribe,
            user_id: &self.session.user_id,
            access_token: self.requests.jwt.clone(),
            online: self.requests.online.clone(),
            cancel: &self.cancel,
        });
        self.pulse = Some(socket);
    }

    fn on_realtime(&mut self, event: Option<RealtimeEvent>) {
        let Some(event) = event else {
            self.pulse = None;
            return;
        };
        let pulse = self
            .pulse
            .as_mut()
            .expect("an event comes from an open socket");
        if pulse.on_event(event, &self.metrics) {
            self.step(Event::Pulse);
        }
    }
}
