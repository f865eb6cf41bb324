//! A synthetic run result for the report tests, recorded through the real metrics
//! pipeline (recorders → aggregator → RunResult), so histograms and series are genuine.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use syncstorm::result::{
    CoordinatedOmission, GeneratorSample, OracleResult, PoolSample, ProbeSample, Probes, RunResult,
    ScenarioInfo, ShardId, ThresholdResult,
};
use syncstorm_metrics::{Aggregator, OpSnapshot, Recorder, Snapshot, counter, gauge, op};
use syncstorm_plans::SupabasePlan;

/// How hard the synthetic run hits the risks.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Token-check storm that overflows the pool, sockets past the cap, blocking imports.
    pub storm: bool,
    pub seconds: u64,
}

/// A tiny deterministic generator (no global state, no real randomness in tests).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Opens per second: a storm peaks at 1,500/s between seconds 20 and 40.
fn opens_at(shape: Shape, t: u64) -> u64 {
    match (shape.storm, t) {
        (true, 20..=40) => 1_500,
        (true, _) => 40,
        (false, _) => 20,
    }
}

fn importing(t: u64, seconds: u64) -> bool {
    t >= seconds * 6 / 10 && t < seconds * 8 / 10
}

/// Records one second of the run into `rec`.
fn record_second(
    rec: &mut Recorder,
    shape: Shape,
    t: u64,
    rng: &mut Lcg,
    levels: &mut BTreeMap<String, i64>,
    cap: i64,
) {
    let sockets = levels.entry(gauge::SOCKETS_OPEN.into()).or_default();
    let opens = opens_at(shape, t);
    rec.count(counter::APP_OPENS, opens);
    let overloaded = opens > 1_000;
    for _ in 0..opens {
        if overloaded && rng.below(100) < 6 {
            rec.record_error(op::TOKEN_CHECK, "pool_timeout");
        } else {
            let base = if overloaded { 400_000 } else { 8_000 };
            rec.record(op::TOKEN_CHECK, base + rng.below(base));
        }
    }
    let want = (t as i64 + 1) * if shape.storm { 40 } else { 5 };
    let opened = (want - *sockets).clamp(0, (cap - *sockets).max(0));
    for _ in 0..opened {
        rec.record(op::WS_CONNECT, 20_000 + rng.below(30_000));
    }
    if want > cap {
        rec.count(counter::WS_REJECTED, (want - cap).min(40) as u64);
    }
    *sockets += opened;
    *levels.entry(gauge::DEVICES_ACTIVE.into()).or_default() += if shape.storm { 40 } else { 5 };
    let bulk = importing(t, shape.seconds);
    levels.insert(gauge::BULK_IMPORTS_RUNNING.into(), i64::from(bulk));
    for _ in 0..60 {
        let slow = bulk && shape.storm;
        let micros = if slow {
            300_000 + rng.below(900_000)
        } else {
            15_000 + rng.below(25_000)
        };
        rec.record(op::PUSH, micros);
        rec.record(op::PULL, 10_000 + rng.below(20_000));
        rec.record(op::PULSE_DELIVERY, 40_000 + rng.below(80_000));
    }
    if bulk {
        rec.count(counter::BULK_ROWS, 250);
        for _ in 0..10 {
            rec.record(op::BULK_PUSH, 200_000 + rng.below(400_000));
        }
    }
    levels.insert(gauge::SYNCS_IN_FLIGHT.into(), rng.below(5) as i64);
}

fn probes(shape: Shape) -> Probes {
    let samples = (0..shape.seconds)
        .map(|t| {
            let storm = shape.storm && opens_at(shape, t) > 1_000;
            let locks = if shape.storm && importing(t, shape.seconds) {
                9
            } else {
                0
            };
            let active = if storm { 52 } else { 6 };
            ProbeSample {
                t: t as f64 + 0.5,
                db_connections: BTreeMap::from([
                    ("active".into(), active),
                    ("idle".into(), 8),
                    ("idle in transaction".into(), locks / 3),
                ]),
                wait_events: BTreeMap::from([
                    ("Lock:transactionid".into(), locks),
                    ("Lock:tuple".into(), locks / 2),
                    ("Client:ClientRead".into(), 4),
                ]),
                blocked_sessions: locks,
                // The synthetic importer blocks other users; a third of its waits are its own.
                lock_waits_cross_user: locks - locks / 3,
                lock_waits_same_user: locks / 3,
                pools: BTreeMap::from([(
                    "rest".into(),
                    PoolSample {
                        size: 10,
                        in_use: if storm { 10 } else { 3 },
                        waiting: if storm { 420 } else { 0 },
                        max_wait_ms: if storm { 10_000.0 } else { 2.0 },
                        holds: BTreeMap::new(),
                    },
                )]),
                realtime: BTreeMap::from([("connections".into(), 0.0)]),
            }
        })
        .collect();
    Probes {
        source: Some("embedded stack <postgres>".into()),
        db_max_connections: Some(60),
        interval_ms: 1_000,
        samples,
        failed_samples: 0,
    }
}

/// A whole synthetic run.
pub fn synthetic(name: &str, shape: Shape) -> RunResult {
    let mut shards = synthetic_shards(name, shape, 1);
    let mut r = shards.remove(0);
    r.shard = None;
    r
}

/// The same run recorded by `n` shards: each recorded event goes to exactly one shard, so
/// the shards' data together is exactly the whole run's.
pub fn synthetic_shards(name: &str, shape: Shape, n: u32) -> Vec<RunResult> {
    let plan = SupabasePlan::preset("pro").expect("pro preset");
    let cap = i64::from(plan.realtime.max_connections);
    let mut aggs: Vec<Aggregator> = (0..n).map(|_| Aggregator::new()).collect();
    let mut rng = Lcg(7);
    let mut levels = BTreeMap::new();
    for t in 0..shape.seconds {
        // One recording, split deterministically: the shards' union is the whole.
        let mut whole = Recorder::new();
        record_second(&mut whole, shape, t, &mut rng, &mut levels, cap);
        let mut snap = whole.take();
        snap.gauges = levels.clone();
        let parts = split(&snap, n as usize);
        for (i, part) in parts.into_iter().enumerate() {
            aggs[i].add(t, 0, part).unwrap();
        }
    }
    aggs.into_iter()
        .enumerate()
        .map(|(i, agg)| {
            let (total, series) = agg.finish().unwrap();
            let mut r = base(name, shape, plan.clone());
            r.set_metrics(&total, series).unwrap();
            r.oracle = Some(oracle(shape, i as u32, n));
            syncstorm::result::thresholds::reevaluate(&mut r);
            if n > 1 {
                r.shard = Some(ShardId {
                    index: i as u32,
                    count: n,
                });
                r.probes = if i == 0 {
                    probes(shape)
                } else {
                    Probes::default()
                };
            }
            r
        })
        .collect()
}

/// Splits a snapshot into `n` parts that add up to it exactly: each bucket's count and each
/// error count is dealt out as evenly as possible, counters go to part 0.
fn split(snap: &Snapshot, n: usize) -> Vec<Snapshot> {
    let mut parts: Vec<Snapshot> = (0..n).map(|_| Snapshot::default()).collect();
    for (name, op) in &snap.ops {
        for (i, part) in parts.iter_mut().enumerate() {
            let share = |total: u64| total / n as u64 + u64::from((i as u64) < total % n as u64);
            let mut mine = OpSnapshot::default();
            for v in op.latency.iter_recorded() {
                let count = share(v.count_at_value());
                if count > 0 {
                    mine.latency.record_n(v.value_iterated_to(), count).unwrap();
                }
            }
            for (kind, total) in &op.errors {
                if share(*total) > 0 {
                    mine.errors.insert(kind.clone(), share(*total));
                }
            }
            if mine.count() > 0 {
                part.ops.insert(name.clone(), mine);
            }
        }
    }
    parts[0].counters = snap.counters.clone();
    parts[0].gauges = snap.gauges.clone();
    parts
}

fn base(name: &str, shape: Shape, plan: SupabasePlan) -> RunResult {
    let started = Utc.with_ymd_and_hms(2026, 11, 24, 20, 0, 0).unwrap();
    let mut r = RunResult::new(
        ScenarioInfo {
            name: name.into(),
            question: Some("Does a burst of app opens overflow the token checks?".into()),
            as_run: serde_json::json!({"population": {"users": 1000}, "target": {"kind": "embedded", "plan": "pro"}}),
        },
        started,
    );
    r.duration_s = shape.seconds as f64;
    r.plan = Some(plan);
    r.probes = probes(shape);
    r.coordinated_omission = CoordinatedOmission {
        correction: "intended_start".into(),
        note: "open-model latencies measured from the scheduled start".into(),
    };
    r.generator = (0..shape.seconds)
        .map(|t| GeneratorSample {
            t,
            worker: "main".into(),
            cpu_pct: 35.0 + (t % 7) as f64,
            loop_lag_ms: 1.5,
            rss_bytes: 80 << 20,
        })
        .collect();
    r.thresholds = vec![
        ThresholdResult {
            expression: "token_check.p99 < 500ms".into(),
            value: Some(0.0),
            shown: String::new(),
            passed: true,
        },
        ThresholdResult {
            expression: "oracle.lost_updates == 0".into(),
            value: Some(0.0),
            shown: String::new(),
            passed: true,
        },
    ];
    r
}

/// The oracle of shard `i` of `n`: 1,000 users split evenly; a storm loses two updates, in
/// shard 0.
fn oracle(shape: Shape, i: u32, n: u32) -> OracleResult {
    let users = 1_000 / u64::from(n);
    let lost = if shape.storm && i == 0 { 2 } else { 0 };
    OracleResult {
        users_checked: users,
        users_converged: users - lost,
        lost_updates: lost,
        skipped_rows: 0,
        fk_errors: 0,
        examples: if lost > 0 {
            vec!["user 17: transactions row 4f2a… written at 12:00:01.200 lost to an older write from a skewed device <script>".into()]
        } else {
            vec![]
        },
        devices_checked: users * 2,
        devices_started: users * 2,
        ..OracleResult::default()
    }
}
