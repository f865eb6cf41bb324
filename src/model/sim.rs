//! The capacity model's event loop in virtual time: the scenario's devices (the same pure
//! state machine as a measured run's), its arrivals and user behaviour, against the queues of
//! `server.rs` and a server-side copy of every user's rows (`user_rows.rs`). One binary heap of timed events;
//! nothing sleeps, nothing touches a socket.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use syncstorm_device::{Action, Device, Event, PushAnswer, SyncOutcome, Timer};
use syncstorm_metrics::{Aggregator, Recorder, Snapshot, TimeSeries, counter, gauge, op};
use syncstorm_scenario::RunPlan;

use super::calibration::{AUTH_OPS, Calibration, PUSH_READ, ServiceTime};
use super::server::{Cpu, Pool, PoolId};
use super::user_rows::{ServerRows, user_uuid};
use crate::driver::requests::{failure_event, is_request};
use crate::driver::settle::settle;
use crate::result::{PoolSample, ProbeSample};
use crate::swarm::behaviour::{Act, Users};
use crate::swarm::schedule::{self, Activation, DeviceOrder};
use crate::swarm::{faults, fleet, worker};

/// The model's wall clock starts here (epoch ms): fixed, so a seed gives the same run.
const EPOCH_MS: i64 = 1_790_000_000_000;
/// A quiet-load p99 this many times the p50 at most (a lognormal's spread, capped).
const MAX_SPREAD: f64 = 50.0;
/// z of the 99th percentile of a standard normal.
const Z99: f64 = 2.326;
/// A failed sign-in is tried again after this long (the driver's `sign_in_retry`).
const SIGN_IN_RETRY_US: u64 = 1_000_000;
/// Commit → pulse when the calibration has no delivery figure (ms).
const DEFAULT_DELIVERY_MS: f64 = 20.0;

/// What a modelled run produced.
pub struct Modelled {
    pub total: Snapshot,
    pub series: TimeSeries,
    pub probes: Vec<ProbeSample>,
    pub events: u64,
    pub devices_started: u64,
    /// Virtual seconds from the first arrival to the last answer.
    pub span_s: f64,
}

/// Options the command line adds to the scenario.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Phone ↔ server round trip added to every request (ms).
    pub rtt_ms: f64,
    /// Overrides the calibration's server capacity (a bigger or smaller compute).
    pub capacity: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Tick,
    Activation,
    Users,
    Arrive {
        req: u32,
    },
    CpuDone {
        generation: u64,
    },
    PoolTimeout {
        req: u32,
        serial: u32,
    },
    Answer {
        req: u32,
    },
    Timer {
        device: u32,
        timer: u8,
        generation: u32,
    },
    SignIn {
        device: u32,
        generation: u32,
    },
    Pulse {
        device: u32,
        committed_us: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    Travelling,
    Queued,
    Running,
    Done,
}

struct Request {
    /// Unique per request: a slot is reused, and a queue entry or timeout may outlive it.
    serial: u32,
    device: u32,
    /// The device's generation when sent: an answer to a backgrounded device is dropped.
    device_generation: u32,
    op: &'static str,
    pool: PoolId,
    sent_us: u64,
    queued_us: u64,
    /// The protocol request, or `None` for a session refresh or sign-in before an open.
    action: Option<Action>,
    state: ReqState,
    answer: Option<Result<Event, &'static str>>,
}

struct Dev {
    device: Device,
    active: bool,
    generation: u32,
    timers: [u32; 3],
    usap_retry_at_ms: Option<i64>,
    socket: bool,
    sync_started_ms: Option<i64>,
    inflight: Vec<u32>,
    last_error: Option<&'static str>,
    /// Opened at least once (its stored session is only stale at the first open).
    opened: bool,
}

pub struct Sim<'a> {
    plan: &'a RunPlan,
    cal: &'a Calibration,
    rtt_half_us: u64,
    now_us: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    rng: SmallRng,
    rest: Pool,
    auth: Pool,
    cpu: Cpu,
    requests: Vec<Option<Request>>,
    free: Vec<u32>,
    devices: Vec<Option<Box<Dev>>>,
    rows: ServerRows<'a>,
    behaviour: Users,
    base: tokio::time::Instant,
    activations: Box<dyn Iterator<Item = Activation> + 'a>,
    next_activation: Option<Activation>,
    recorder: Recorder,
    aggregator: Aggregator,
    probes: Vec<ProbeSample>,
    sockets: u64,
    knobs: Arc<syncstorm_device::DeviceKnobs>,
    end_us: u64,
    hard_end_us: u64,
    events: u64,
    started: u64,
    last_answer_us: u64,
    delivery_us: u64,
    serial: u32,
    /// When the one pending `Ev::Users` wakes.
    users_wake_us: Option<u64>,
}

impl<'a> Sim<'a> {
    pub fn new(
        plan: &'a RunPlan,
        phases: &'a [schedule::PhaseShape],
        cal: &'a Calibration,
        options: &ModelOptions,
    ) -> Sim<'a> {
        let seed = plan.run.seed;
        let devices = plan.total_devices();
        let order = DeviceOrder::new(devices, seed);
        let mut activations: Box<dyn Iterator<Item = Activation> + 'a> =
            Box::new(schedule::activations(phases, order, seed, |_| true));
        let next_activation = activations.next();
        let p = &plan.target.plan;
        let end_us = schedule::total_duration(phases).as_micros() as u64;
        let mut sim = Sim {
            plan,
            cal,
            rtt_half_us: (options.rtt_ms.max(0.0) * 500.0) as u64,
            now_us: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            rng: SmallRng::seed_from_u64(seed ^ 0x0DE1_0DE1),
            rest: Pool::new(p.rest_pool_size, p.rest_pool_timeout.as_micros() as u64),
            auth: Pool::new(p.auth_pool_size, p.rest_pool_timeout.as_micros() as u64),
            cpu: Cpu::new(options.capacity.unwrap_or(cal.capacity.value)),
            requests: Vec::new(),
            free: Vec::new(),
            devices: (0..devices).map(|_| None).collect(),
            rows: ServerRows::new(&plan.population, seed, EPOCH_MS),
            behaviour: Users::new(plan.behaviour.clone(), seed ^ 0xBE4A),
            base: tokio::time::Instant::now(),
            activations,
            next_activation,
            recorder: Recorder::new(),
            aggregator: Aggregator::new(),
            probes: Vec::new(),
            sockets: 0,
            knobs: Arc::new(plan.device.clone()),
            end_us,
            hard_end_us: end_us + plan.run.quiesce.as_micros() as u64,
            events: 0,
            started: 0,
            last_answer_us: 0,
            delivery_us: (cal
                .pulse_delivery_ms
                .as_ref()
                .map_or(DEFAULT_DELIVERY_MS, |f| f.value)
                * 1000.0) as u64,
            serial: 0,
            users_wake_us: None,
        };
        if let Some(a) = sim.next_activation {
            sim.push(a.at().as_micros() as u64, Ev::Activation);
        }
        sim.push(1_000_000, Ev::Tick);
        sim
    }

    fn push(&mut self, at_us: u64, ev: Ev) {
        self.seq += 1;
        self.heap
            .push(Reverse((at_us.max(self.now_us), self.seq, ev)));
    }

    fn now_ms(&self) -> i64 {
        EPOCH_MS + (self.now_us / 1000) as i64
    }

    fn instant(&self, at_us: u64) -> tokio::time::Instant {
        self.base + Duration::from_micros(at_us)
    }

    /// Runs to the end: every arrival made, then until nothing is in flight (or the scenario's
    /// quiesce time ran out).
    pub fn run(mut self) -> Result<Modelled, syncstorm_metrics::MetricsError> {
        self.schedule_users();
        while let Some(Reverse((at, _, ev))) = self.heap.pop() {
            if at > self.hard_end_us {
                break;
            }
            self.now_us = at;
            self.events += 1;
            match ev {
                Ev::Tick => {
                    self.tick((at / 1_000_000).saturating_sub(1))?;
                    let busy = self.requests.len() > self.free.len();
                    if at < self.end_us || busy {
                        self.push(at + 1_000_000, Ev::Tick);
                    }
                }
                Ev::Activation => self.on_activation(),
                Ev::Users => {
                    if self.users_wake_us != Some(at) {
                        continue; // superseded by an earlier wake
                    }
                    self.users_wake_us = None;
                    let now = self.instant(at);
                    for act in self.behaviour.due(now) {
                        self.on_act(act);
                    }
                    self.schedule_users();
                }
                Ev::Arrive { req } => self.arrive(req),
                Ev::CpuDone { generation } => {
                    if generation == self.cpu.generation {
                        self.cpu_done();
                    }
                }
                Ev::PoolTimeout { req, serial } => self.pool_timeout(req, serial),
                Ev::Answer { req } => self.answer(req),
                Ev::Timer {
                    device,
                    timer,
                    generation,
                } => self.timer(device, timer, generation),
                Ev::Pulse {
                    device,
                    committed_us,
                } => self.pulse(device, committed_us),
                Ev::SignIn { device, generation } => {
                    let live = self.devices[device as usize]
                        .as_ref()
                        .is_some_and(|d| d.active && d.generation == generation);
                    if live {
                        self.send_request(device, op::SIGN_IN, None);
                    }
                }
            }
        }
        self.tick(self.now_us / 1_000_000)?;
        let span_s = self.last_answer_us.max(self.end_us) as f64 / 1e6;
        let (total, series) = self.aggregator.finish()?;
        Ok(Modelled {
            total,
            series,
            probes: self.probes,
            events: self.events,
            devices_started: self.started,
            span_s,
        })
    }

    fn schedule_users(&mut self) {
        if let Some(due) = self.behaviour.next_due() {
            // Rounded up: `due` holds nanoseconds, and a microsecond rounded down would wake
            // before it, find nothing due and schedule the same instant again for ever.
            let at = due.duration_since(self.base).as_nanos().div_ceil(1000) as u64;
            // One pending wake at a time: every open would otherwise start a chain of its own.
            let earlier = self.users_wake_us.is_none_or(|w| at < w);
            if at < self.end_us && earlier {
                self.users_wake_us = Some(at);
                self.push(at, Ev::Users);
            }
        }
    }

    /// Closes second `second` of the series and takes a probe sample, as a measured run's
    /// aggregator and probes do once a second.
    fn tick(&mut self, second: u64) -> Result<(), syncstorm_metrics::MetricsError> {
        let snap = self.recorder.take();
        self.aggregator.add(second, 0, snap)?;
        self.aggregator.seal_before(second)?;
        let pool = |p: &mut Pool| {
            let sample = PoolSample {
                size: p.size,
                in_use: p.in_use,
                waiting: p.waiting,
                max_wait_ms: p.max_wait_us as f64 / 1000.0,
                holds: Default::default(),
            };
            p.max_wait_us = 0;
            sample
        };
        let rest = pool(&mut self.rest);
        let auth = pool(&mut self.auth);
        let mut sample = ProbeSample {
            t: self.now_us as f64 / 1e6,
            ..Default::default()
        };
        sample
            .db_connections
            .insert("active".into(), self.cpu.running() as u32);
        let idle = (rest.size + auth.size).saturating_sub(self.cpu.running() as u32);
        sample.db_connections.insert("idle".into(), idle);
        sample.pools.insert("rest".into(), rest);
        sample.pools.insert("auth".into(), auth);
        sample
            .realtime
            .insert("connections".into(), self.sockets as f64);
        self.probes.push(sample);
        Ok(())
    }

    fn on_activation(&mut self) {
        while let Some(a) = self.next_activation {
            if a.at().as_micros() as u64 > self.now_us {
                self.push(a.at().as_micros() as u64, Ev::Activation);
                return;
            }
            self.next_activation = self.activations.next();
            let now = self.instant(self.now_us);
            let act = match a {
                Activation::Open { device, .. } => {
                    self.recorder.count(counter::ARRIVALS, 1);
                    self.behaviour.open(device, now, false)
                }
                Activation::Start { device, .. } => self.behaviour.open(device, now, true),
                Activation::Stop { device, .. } => self.behaviour.stop(device),
            };
            self.on_act(act);
            self.schedule_users();
        }
    }

    fn on_act(&mut self, act: Act) {
        match act {
            Act::Open(device) => {
                let d = self.device(device);
                if d.active {
                    return;
                }
                d.active = true;
                let first = !std::mem::replace(&mut d.opened, true);
                self.recorder.gauge_add(gauge::DEVICES_ACTIVE, 1);
                self.recorder.count(counter::APP_OPENS, 1);
                let percent = self.knobs.expired_at_open_percent;
                if first && fleet::expired_at_open(self.plan.run.seed, device, percent) {
                    // supabase-js refreshes an expired session before anything else.
                    self.send_request(device as u32, op::TOKEN_REFRESH, None);
                } else {
                    self.step(device as u32, Event::AppOpened);
                }
            }
            Act::Edit(device) => {
                if self.devices[device as usize]
                    .as_ref()
                    .is_some_and(|d| d.active)
                {
                    self.step(device as u32, Event::UserEdit);
                }
            }
            Act::Background(device) => self.background(device as u32),
        }
    }

    fn device(&mut self, device: u64) -> &mut Dev {
        if self.devices[device as usize].is_none() {
            let per_user = u64::from(self.plan.population.devices_per_user.max(1));
            let seed = self.plan.run.seed;
            let user = user_uuid(seed, device / per_user);
            let skew = faults::clock_skew_ms(&self.plan.faults, seed, device);
            let dseed = faults::mix(seed, device, 0xDE71CE);
            self.started += 1;
            self.devices[device as usize] = Some(Box::new(Dev {
                device: Device::new(device, user, self.knobs.clone(), skew, dseed),
                active: false,
                generation: 0,
                timers: [0; 3],
                usap_retry_at_ms: None,
                socket: false,
                sync_started_ms: None,
                inflight: Vec::new(),
                last_error: None,
                opened: false,
            }));
        }
        self.devices[device as usize]
            .as_mut()
            .expect("just created")
    }

    fn background(&mut self, device: u32) {
        let now_ms = self.now_ms();
        let Some(d) = self.devices[device as usize].as_mut() else {
            return;
        };
        if !d.active {
            return;
        }
        d.active = false;
        d.generation += 1;
        let failures: Vec<Event> = d
            .inflight
            .drain(..)
            .filter_map(|r| {
                let q = self.requests[r as usize].as_ref()?;
                q.action.as_ref().map(failure_event)
            })
            .collect();
        let was_syncing = d.device.is_syncing();
        settle(&mut d.device, failures, d.usap_retry_at_ms.take(), now_ms);
        if was_syncing && d.sync_started_ms.take().is_some() {
            self.recorder.gauge_add(gauge::SYNCS_IN_FLIGHT, -1);
        }
        if std::mem::take(&mut d.socket) {
            self.sockets -= 1;
            self.recorder.gauge_add(gauge::SOCKETS_OPEN, -1);
        }
        self.recorder.gauge_add(gauge::DEVICES_ACTIVE, -1);
    }

    fn step(&mut self, device: u32, event: Event) {
        let now_ms = self.now_ms();
        let Some(d) = self.devices[device as usize].as_mut() else {
            return;
        };
        let actions = d.device.step(event, now_ms);
        for action in actions {
            self.act(device, action);
        }
    }

    fn act(&mut self, device: u32, action: Action) {
        let now_ms = self.now_ms();
        match action {
            Action::SyncStarted {
                triggered_at_ms, ..
            } => {
                let d = self.devices[device as usize].as_mut().expect("stepped");
                d.sync_started_ms = Some(triggered_at_ms);
                d.last_error = None;
                self.recorder.gauge_add(gauge::SYNCS_IN_FLIGHT, 1);
            }
            Action::SyncFinished { outcome } => {
                let d = self.devices[device as usize].as_mut().expect("stepped");
                let Some(started) = d.sync_started_ms.take() else {
                    return;
                };
                let error = d.last_error.take();
                self.recorder.gauge_add(gauge::SYNCS_IN_FLIGHT, -1);
                match outcome {
                    SyncOutcome::Completed {
                        pull_skipped,
                        rows_pulled,
                        rows_pushed,
                    } => {
                        let took_ms = (now_ms - started).max(0) as u64;
                        self.recorder.record(op::SYNC, took_ms * 1000);
                        self.recorder
                            .count(counter::PULLS_SKIPPED, u64::from(pull_skipped));
                        self.recorder
                            .count(counter::ROWS_PULLED, u64::from(rows_pulled));
                        self.recorder
                            .count(counter::ROWS_PUSHED, u64::from(rows_pushed));
                    }
                    SyncOutcome::Failed { .. } => {
                        self.recorder
                            .record_error(op::SYNC, error.unwrap_or("http_5xx"));
                    }
                }
            }
            Action::SetTimer { timer, at_ms } => {
                let d = self.devices[device as usize].as_mut().expect("stepped");
                let slot = timer_slot(timer);
                d.timers[slot] = d.timers[slot].wrapping_add(1);
                if timer == Timer::UsapRetry {
                    d.usap_retry_at_ms = Some(at_ms);
                }
                let generation = d.timers[slot];
                let at_us = ((at_ms - EPOCH_MS).max(0) as u64) * 1000;
                self.push(
                    at_us,
                    Ev::Timer {
                        device,
                        timer: slot as u8,
                        generation,
                    },
                );
            }
            Action::CancelTimer { timer } => {
                let d = self.devices[device as usize].as_mut().expect("stepped");
                let slot = timer_slot(timer);
                d.timers[slot] = d.timers[slot].wrapping_add(1);
                if timer == Timer::UsapRetry {
                    d.usap_retry_at_ms = None;
                }
            }
            Action::OpenPulse => self.open_pulse(device),
            request if is_request(&request) => self.send(device, request),
            _ => {}
        }
    }

    fn open_pulse(&mut self, device: u32) {
        if self.knobs.pulse.mode != syncstorm_device::PulseMode::Websocket {
            return;
        }
        let d = self.devices[device as usize].as_mut().expect("stepped");
        if d.socket || !d.active {
            return;
        }
        let cap = u64::from(self.plan.target.plan.realtime.max_connections);
        if self.sockets >= cap {
            self.recorder.count(counter::WS_REJECTED, 1);
            return;
        }
        d.socket = true;
        self.sockets += 1;
        self.recorder.gauge_add(gauge::SOCKETS_OPEN, 1);
    }

    fn send(&mut self, device: u32, action: Action) {
        let op = match &action {
            Action::CheckToken => op::TOKEN_CHECK,
            Action::FetchPage(_) => op::PULL,
            Action::ReadRows { .. } => PUSH_READ,
            _ => op::PUSH,
        };
        self.send_request(device, op, Some(action));
    }

    fn send_request(&mut self, device: u32, op: &'static str, action: Option<Action>) {
        let pool = if AUTH_OPS.contains(&op) {
            PoolId::Auth
        } else {
            PoolId::Rest
        };
        let d = self.devices[device as usize].as_mut().expect("stepped");
        self.serial = self.serial.wrapping_add(1);
        let request = Request {
            serial: self.serial,
            device,
            device_generation: d.generation,
            op,
            pool,
            sent_us: self.now_us,
            queued_us: 0,
            action,
            state: ReqState::Travelling,
            answer: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.requests[id as usize] = Some(request);
                id
            }
            None => {
                self.requests.push(Some(request));
                (self.requests.len() - 1) as u32
            }
        };
        d.inflight.push(id);
        // The part of a request's quiet-load latency spent outside the pool (client, HTTP,
        // network) is a delay before it queues; the hold is the server's work.
        let service = self.cal.service(op);
        let outside_us = match &service.hold_ms {
            Some(hold) => ((service.p50_ms.value - hold.value).max(0.0) * 1000.0) as u64,
            None => 0,
        };
        self.push(
            self.now_us + self.rtt_half_us + outside_us,
            Ev::Arrive { req: id },
        );
    }

    fn pool_of(&mut self, pool: PoolId) -> &mut Pool {
        match pool {
            PoolId::Rest => &mut self.rest,
            PoolId::Auth => &mut self.auth,
        }
    }

    fn arrive(&mut self, req: u32) {
        let now = self.now_us;
        let Some(r) = self.requests[req as usize].as_mut() else {
            return;
        };
        let (pool_id, serial) = (r.pool, r.serial);
        if self.pool_of(pool_id).acquire(req as usize, serial, now) {
            self.start_work(req);
        } else {
            let r = self.requests[req as usize].as_mut().expect("live");
            r.state = ReqState::Queued;
            r.queued_us = now;
            let timeout = self.pool_of(pool_id).timeout_us;
            self.push(now + timeout, Ev::PoolTimeout { req, serial });
        }
    }

    fn start_work(&mut self, req: u32) {
        let r = self.requests[req as usize].as_mut().expect("live");
        r.state = ReqState::Running;
        let op = r.op;
        let work_us = sample_ms(self.cal.service(op), &mut self.rng) * 1000.0;
        if let Some(due) = self.cpu.start(req as usize, work_us, self.now_us) {
            let generation = self.cpu.generation;
            self.push(due, Ev::CpuDone { generation });
        }
    }

    fn cpu_done(&mut self) {
        let (done, _) = self.cpu.finish(self.now_us);
        for req in done {
            let answer = self.serve(req as u32);
            let r = self.requests[req].as_mut().expect("live");
            r.state = ReqState::Done;
            r.answer = Some(Ok(answer));
            let pool_id = r.pool;
            let now = self.now_us;
            self.push(now + self.rtt_half_us, Ev::Answer { req: req as u32 });
            let requests = &self.requests;
            let alive = |id: usize, serial: u32| {
                requests[id]
                    .as_ref()
                    .is_some_and(|r| r.serial == serial && r.state == ReqState::Queued)
            };
            let next = match pool_id {
                PoolId::Rest => self.rest.release(now, alive),
                PoolId::Auth => self.auth.release(now, alive),
            };
            if let Some(next) = next {
                self.start_work(next as u32);
            }
        }
        // Every start above scheduled its own due; this one covers a finish with no start.
        if let Some(due) = self.cpu.next_due() {
            let generation = self.cpu.generation;
            self.push(due, Ev::CpuDone { generation });
        }
    }

    fn pool_timeout(&mut self, req: u32, serial: u32) {
        let now = self.now_us;
        let Some(r) = self.requests[req as usize].as_mut() else {
            return;
        };
        if r.serial != serial || r.state != ReqState::Queued {
            return;
        }
        r.state = ReqState::Done;
        r.answer = Some(Err("pool_timeout"));
        let waited = now - r.queued_us;
        let pool_id = r.pool;
        self.pool_of(pool_id).give_up(waited);
        self.push(now + self.rtt_half_us, Ev::Answer { req });
    }

    fn answer(&mut self, req: u32) {
        let Some(r) = self.requests[req as usize].take() else {
            return;
        };
        self.free.push(req);
        self.last_answer_us = self.now_us;
        let took_us = self.now_us - r.sent_us;
        let failed = match r.answer {
            Some(Ok(_)) => {
                self.recorder.record(r.op, took_us);
                None
            }
            Some(Err(kind)) => {
                self.recorder.record_error(r.op, kind);
                Some(kind)
            }
            None => return,
        };
        let Some(d) = self.devices[r.device as usize].as_mut() else {
            return;
        };
        d.inflight.retain(|id| *id != req);
        if d.generation != r.device_generation || !d.active {
            return;
        }
        let Some(action) = &r.action else {
            // A session refresh or sign-in before the open: the open goes ahead once it
            // worked; a refused refresh falls back to signing in, retried every second.
            match failed {
                None => self.step(r.device, Event::AppOpened),
                Some(_) if r.op == op::TOKEN_REFRESH => {
                    self.send_request(r.device, op::SIGN_IN, None)
                }
                Some(_) => {
                    let generation = d.generation;
                    self.push(
                        self.now_us + SIGN_IN_RETRY_US,
                        Ev::SignIn {
                            device: r.device,
                            generation,
                        },
                    );
                }
            }
            return;
        };
        let (event, error) = match failed {
            None => (
                match r.answer {
                    Some(Ok(event)) => event,
                    _ => unreachable!("a success has its event"),
                },
                None,
            ),
            Some(kind) => (failure_event(action), Some(kind)),
        };
        if error.is_some() {
            d.last_error = error;
        }
        self.step(r.device, event);
    }

    fn timer(&mut self, device: u32, slot: u8, generation: u32) {
        let Some(d) = self.devices[device as usize].as_mut() else {
            return;
        };
        if d.timers[slot as usize] != generation || !d.active {
            return;
        }
        let timer = [Timer::EditDebounce, Timer::UsapRetry, Timer::Periodic][slot as usize];
        if timer == Timer::UsapRetry {
            d.usap_retry_at_ms = None;
        }
        self.step(device, Event::TimerFired(timer));
    }

    fn pulse(&mut self, device: u32, committed_us: u64) {
        let live = self.devices[device as usize]
            .as_ref()
            .is_some_and(|d| d.active && d.socket);
        if !live {
            return;
        }
        self.recorder
            .record(op::PULSE_DELIVERY, self.now_us - committed_us);
        self.recorder.count(counter::PULSES_RECEIVED, 1);
        self.step(device, Event::Pulse);
    }

    /// The server's answer to a request that has run, applied to the server's rows at the
    /// instant it commits.
    fn serve(&mut self, req: u32) -> Event {
        let (device, action) = {
            let r = self.requests[req as usize].as_ref().expect("live");
            (r.device, r.action.clone())
        };
        // A refresh grant or sign-in: its answer only lets the open go ahead.
        let Some(action) = action else {
            return Event::AppOpened;
        };
        let per_user = u64::from(self.plan.population.devices_per_user.max(1));
        let user = u64::from(device) / per_user;
        match action {
            Action::CheckToken => Event::TokenChecked(Ok(self.rows.token(user))),
            Action::FetchPage(q) => Event::PageFetched {
                table: q.table,
                result: Ok(self.rows.page(user, &q)),
            },
            Action::ReadRows { table, ids } => Event::RowsRead {
                table,
                result: Ok(self.rows.read(user, table, &ids)),
            },
            Action::Upsert { table, rows } => {
                self.rows.upsert_all(user, rows);
                self.fan_out(user, device);
                Event::Pushed {
                    table,
                    result: Ok(PushAnswer::default()),
                }
            }
            Action::PushRpc { table, rows } => {
                let (written, rejected) = self.rows.push_newer(user, rows);
                if written {
                    self.fan_out(user, device);
                }
                Event::Pushed {
                    table,
                    result: Ok(PushAnswer { rejected }),
                }
            }
            other => failure_event(&other),
        }
    }

    /// A commit of `user`'s: every device of the user with a socket hears the pulse.
    fn fan_out(&mut self, user: u64, _writer: u32) {
        let per_user = u64::from(self.plan.population.devices_per_user.max(1));
        let committed = self.now_us;
        for device in user * per_user..(user + 1) * per_user {
            let listening = self.devices[device as usize]
                .as_ref()
                .is_some_and(|d| d.socket);
            if listening {
                self.push(
                    committed + self.delivery_us + self.rtt_half_us,
                    Ev::Pulse {
                        device: device as u32,
                        committed_us: committed,
                    },
                );
            }
        }
    }
}

fn timer_slot(timer: Timer) -> usize {
    match timer {
        Timer::EditDebounce => 0,
        Timer::UsapRetry => 1,
        Timer::Periodic => 2,
    }
}

/// A service time drawn from a lognormal around the calibrated work (the server's hold, else
/// the client's p50) with the spread of the client's p99 over its p50.
fn sample_ms(s: &ServiceTime, rng: &mut SmallRng) -> f64 {
    let median = s.work_ms().max(0.001);
    let spread = (s.p99_ms.value / s.p50_ms.value.max(0.001)).clamp(1.0, MAX_SPREAD);
    let sigma = spread.ln() / Z99;
    // Box–Muller.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

/// The phases the scheduler runs for this plan.
pub fn phases(plan: &RunPlan) -> Vec<schedule::PhaseShape> {
    worker::phase_shapes(plan)
}
