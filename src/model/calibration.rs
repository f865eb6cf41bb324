//! The model's service times and server capacity, fitted from measured runs, each figure with
//! where it came from. `syncstorm calibrate RESULT.json… --out FILE` writes one; the model
//! reads it with `--calibration FILE` (default: `calibration/embedded.json`, shipped).
//!
//! How a run is read (capacity-model.md, "Calibration"):
//! - **Service time of an operation**: the median of its per-second p50 (and p99) over the
//!   seconds in which the server's pool had no request waiting — latency without queueing.
//! - **Server capacity**, in "quiet-load seconds of work per second": in seconds when
//!   requests queued for the pool the server was busy, and the service it delivered per
//!   second, Σ (completions × service time), is its capacity. Without such seconds, the
//!   utilization law (U = X·S) from the server processes' CPU: work delivered per CPU-second,
//!   times the server's cores. Without either, the server's cores, labelled as an assumption.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use syncstorm_metrics::op;

use crate::result::RunResult;

/// Operations the model serves, and the pool each one queues for.
pub const REST_OPS: [&str; 4] = [op::TOKEN_CHECK, op::PULL, op::PUSH, op::BULK_PUSH];
pub const AUTH_OPS: [&str; 2] = [op::TOKEN_REFRESH, op::SIGN_IN];
/// `push_read` (client_lww's read before a write) is served like a token check.
pub const PUSH_READ: &str = "push_read";

/// One fitted figure and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub value: f64,
    /// Where it came from, in words: run, statistic, seconds used.
    pub from: String,
}

/// An operation's service time at quiet load (ms): the client's latency, and — where the
/// server reported it — how long the request held a pool connection (the server's own work;
/// the rest of the latency is the client, the network and the HTTP layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceTime {
    pub p50_ms: Figure,
    pub p99_ms: Figure,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<Figure>,
}

impl ServiceTime {
    /// The work the request does on the server while holding a connection (ms).
    pub fn work_ms(&self) -> f64 {
        self.hold_ms.as_ref().map_or(self.p50_ms.value, |h| h.value)
    }
}

/// A measured run a calibration was fitted from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSource {
    pub file: String,
    pub scenario: String,
    pub started_at: String,
    pub machine: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub sources: Vec<CalibrationSource>,
    /// Service times by operation name (`token_check`, `pull` per page, `push`, …).
    pub service: BTreeMap<String, ServiceTime>,
    /// Seconds of quiet-load work the server completes per second when saturated.
    pub capacity: Figure,
    /// Commit → pulse on another device, at quiet load (ms).
    #[serde(default)]
    pub pulse_delivery_ms: Option<Figure>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot read the calibration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a calibration file: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "the calibration {path} has no service time for {op}; calibrate from a run that made {op} requests"
    )]
    MissingOp { path: String, op: String },
    #[error("no calibration from these runs: {0}")]
    Unfit(String),
}

impl Calibration {
    pub fn load(path: &Path) -> Result<Calibration, CalibrationError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Read {
            path: shown.clone(),
            source,
        })?;
        let cal: Calibration =
            serde_json::from_str(&text).map_err(|source| CalibrationError::Parse {
                path: shown.clone(),
                source,
            })?;
        for op in [op::TOKEN_CHECK, op::PULL] {
            if !cal.service.contains_key(op) {
                return Err(CalibrationError::MissingOp {
                    path: shown,
                    op: op.into(),
                });
            }
        }
        if !(cal.capacity.value.is_finite() && cal.capacity.value > 0.0) {
            return Err(CalibrationError::Unfit(format!(
                "{shown}: capacity must be a positive number, got {}",
                cal.capacity.value
            )));
        }
        Ok(cal)
    }

    /// The service time of `op` (falling back to the token check's for an operation the
    /// calibration runs never made, which the model's header names).
    pub fn service(&self, op: &str) -> &ServiceTime {
        self.service
            .get(op)
            .or_else(|| self.service.get(op::TOKEN_CHECK))
            .expect("load() checked token_check")
    }

    /// Operations the model serves without a measured figure of their own.
    pub fn borrowed_ops(&self) -> Vec<&'static str> {
        REST_OPS
            .iter()
            .chain(AUTH_OPS.iter())
            .copied()
            .filter(|op| !self.service.contains_key(*op))
            .collect()
    }

    /// One line for the report's header.
    /// One line of provenance; `capacity` is the server capacity in use when `--capacity`
    /// overrode the calibration's.
    pub fn describe(&self, capacity: Option<f64>) -> String {
        let runs: Vec<String> = self
            .sources
            .iter()
            .map(|s| {
                format!(
                    "{} of {}",
                    s.scenario,
                    &s.started_at[..s.started_at.len().min(10)]
                )
            })
            .collect();
        let assumed = match capacity {
            Some(_) => format!(
                " (set by --capacity; calibrated {:.2})",
                self.capacity.value
            ),
            None if self.capacity.from.starts_with("assumed") => ", assumed from cores".into(),
            None => String::new(),
        };
        format!(
            "calibrated on {}; server capacity {:.2}{assumed}",
            if runs.is_empty() {
                "no run".to_string()
            } else {
                runs.join(", ")
            },
            capacity.unwrap_or(self.capacity.value),
        )
    }
}

/// An operation's per-second percentiles in seconds without pool waiting, and the runs.
#[derive(Default)]
struct QuietSeconds {
    p50s: Vec<f64>,
    p99s: Vec<f64>,
    files: Vec<String>,
}

/// Fits a calibration from measured runs (`files` name them in the provenance).
pub fn fit(runs: &[(String, RunResult)]) -> Result<Calibration, CalibrationError> {
    if runs.is_empty() {
        return Err(CalibrationError::Unfit("no result files were given".into()));
    }
    let mut sources = Vec::new();
    let mut quiet: BTreeMap<String, QuietSeconds> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for (file, r) in runs {
        if r.target.kind == "model" {
            return Err(CalibrationError::Unfit(format!(
                "{file} is a modelled run; calibrate from measured runs only"
            )));
        }
        sources.push(CalibrationSource {
            file: file.clone(),
            scenario: r.scenario.name.clone(),
            started_at: r.started_at.to_rfc3339(),
            machine: format!(
                "{} ({} cores{})",
                r.machine.hostname,
                r.machine.cores,
                r.machine
                    .cpu_sets
                    .as_ref()
                    .map_or(String::new(), |c| format!(
                        ", server on {} core(s)",
                        c.server.len()
                    ))
            ),
            target: r.target.describe(),
        });
        let waiting = waiting_by_second(r);
        for point in &r.timeseries.points {
            let pool_quiet = |pool: &str| waiting.get(&(point.t, pool.to_string())) == Some(&0);
            for (name, o) in &point.ops {
                let pool = if AUTH_OPS.contains(&name.as_str()) {
                    "auth"
                } else {
                    "rest"
                };
                let known = REST_OPS.contains(&name.as_str())
                    || AUTH_OPS.contains(&name.as_str())
                    || name == PUSH_READ;
                if !known || o.count == o.errors || !pool_quiet(pool) {
                    continue;
                }
                let entry = quiet.entry(name.clone()).or_default();
                entry.p50s.push(o.p50_ms);
                entry.p99s.push(o.p99_ms);
                if !entry.files.contains(file) {
                    entry.files.push(file.clone());
                }
            }
            if let Some(d) = point
                .ops
                .get(op::PULSE_DELIVERY)
                .filter(|d| d.count > d.errors && pool_quiet("rest"))
            {
                deliveries.push(d.p50_ms);
            }
        }
    }
    let holds = quiet_holds(runs);
    let service: BTreeMap<String, ServiceTime> = quiet
        .into_iter()
        .map(|(name, QuietSeconds { p50s, p99s, files })| {
            let seconds = p50s.len();
            let from = |stat: &str| {
                format!(
                    "median of per-second {stat} over {seconds} seconds with no request waiting for the pool, in {}",
                    files.join(", ")
                )
            };
            let st = ServiceTime {
                p50_ms: Figure {
                    value: median(p50s),
                    from: from("p50"),
                },
                p99_ms: Figure {
                    value: median(p99s),
                    from: from("p99"),
                },
                hold_ms: holds.get(&name).cloned(),
            };
            (name, st)
        })
        .collect();
    if !service.contains_key(op::TOKEN_CHECK) || !service.contains_key(op::PULL) {
        return Err(CalibrationError::Unfit(
            "no second without pool waiting had successful token checks and pulls; include a run at low load (and with server probes)".into(),
        ));
    }
    let capacity = fit_capacity(runs, &service);
    let pulse_delivery_ms = (!deliveries.is_empty()).then(|| Figure {
        from: format!(
            "median of per-second pulse_delivery p50 over {} quiet seconds",
            deliveries.len()
        ),
        value: median(deliveries),
    });
    Ok(Calibration {
        sources,
        service,
        capacity,
        pulse_delivery_ms,
    })
}

/// Mean connection hold per operation over probe intervals in which no request waited for the
/// pool (from the server's running totals; a run without them gives none).
fn quiet_holds(runs: &[(String, RunResult)]) -> BTreeMap<String, Figure> {
    let mut sums: BTreeMap<String, (u64, f64, usize)> = BTreeMap::new();
    let mut files = Vec::new();
    for (file, r) in runs {
        for pair in r.probes.samples.windows(2) {
            let quiet = pair
                .iter()
                .all(|s| s.pools.values().all(|p| p.waiting == 0));
            if !quiet {
                continue;
            }
            for (pool, after) in &pair[1].pools {
                let Some(before) = pair[0].pools.get(pool) else {
                    continue;
                };
                for (op, a) in &after.holds {
                    let b = before.holds.get(op).copied().unwrap_or_default();
                    let n = a.count.saturating_sub(b.count);
                    if n == 0 {
                        continue;
                    }
                    let slot = sums.entry(op.clone()).or_default();
                    slot.0 += n;
                    slot.1 += (a.seconds - b.seconds).max(0.0);
                    slot.2 += 1;
                    if !files.contains(file) {
                        files.push(file.clone());
                    }
                }
            }
        }
    }
    sums.into_iter()
        .map(|(op, (n, seconds, intervals))| {
            let figure = Figure {
                value: seconds * 1000.0 / n as f64,
                from: format!(
                    "mean connection hold reported by the server over {n} requests in {intervals} probe intervals with no request waiting, in {}",
                    files.join(", ")
                ),
            };
            (op, figure)
        })
        .collect()
}

/// Requests waiting per (second, pool), the most seen in that second's probe samples.
fn waiting_by_second(r: &RunResult) -> BTreeMap<(u64, String), u32> {
    let mut out: BTreeMap<(u64, String), u32> = BTreeMap::new();
    for s in &r.probes.samples {
        for (pool, p) in &s.pools {
            let slot = out.entry((s.t.floor() as u64, pool.clone())).or_default();
            *slot = (*slot).max(p.waiting);
        }
    }
    out
}

/// The server's capacity from saturated seconds (see the module's notes).
fn fit_capacity(runs: &[(String, RunResult)], service: &BTreeMap<String, ServiceTime>) -> Figure {
    let mut delivered = Vec::new();
    let mut files = Vec::new();
    for (file, r) in runs {
        let waiting = waiting_by_second(r);
        for point in &r.timeseries.points {
            let saturated = waiting
                .get(&(point.t, "rest".to_string()))
                .is_some_and(|w| *w > 0);
            if !saturated {
                continue;
            }
            let work_ms: f64 = point
                .ops
                .iter()
                .filter_map(|(name, o)| {
                    let s = service.get(name)?;
                    Some((o.count - o.errors) as f64 * s.work_ms())
                })
                .sum();
            delivered.push(work_ms / 1000.0);
            if !files.contains(file) {
                files.push(file.clone());
            }
        }
    }
    if delivered.len() >= 5 {
        let seconds = delivered.len();
        return Figure {
            value: median(delivered),
            from: format!(
                "median service delivered per second over {seconds} seconds with requests waiting for the pool, in {}",
                files.join(", ")
            ),
        };
    }
    if let Some(figure) = capacity_from_utilization(runs, service) {
        return figure;
    }
    let cores = server_cores(runs);
    Figure {
        value: f64::from(cores),
        from: format!(
            "assumed: the server's {cores} core(s); no calibration run saturated the pool for 5 seconds or more, and none recorded the server's CPU"
        ),
    }
}

/// The cores the server ran on (its CPU set, else the machine's), the fewest over the runs.
fn server_cores(runs: &[(String, RunResult)]) -> u32 {
    runs.iter()
        .filter_map(|(_, r)| {
            r.machine
                .cpu_sets
                .as_ref()
                .map(|c| c.server.len() as u32)
                .or(Some(r.machine.cores))
        })
        .min()
        .unwrap_or(1)
        .max(1)
}

/// Below saturation, the utilization law: in each second the server's processes used U cores
/// of CPU while delivering W seconds of quiet-load work, so a fully busy server delivers
/// W / U per core. Seconds with under 5 % of a core busy are too noisy to count.
fn capacity_from_utilization(
    runs: &[(String, RunResult)],
    service: &BTreeMap<String, ServiceTime>,
) -> Option<Figure> {
    const SERVER_ROLES: [&str; 3] = [
        crate::resources::POSTGRES,
        crate::resources::RUN_PROCESS,
        crate::resources::STACK_WORKERS,
    ];
    let mut per_core = Vec::new();
    let mut files = Vec::new();
    for (file, r) in runs {
        let work: BTreeMap<u64, f64> = r
            .timeseries
            .points
            .iter()
            .map(|p| {
                let w: f64 = p
                    .ops
                    .iter()
                    .filter_map(|(name, o)| {
                        let s = service.get(name)?;
                        Some((o.count - o.errors) as f64 * s.work_ms() / 1000.0)
                    })
                    .sum();
                (p.t, w)
            })
            .collect();
        for sample in &r.resources.samples {
            let busy: f64 = SERVER_ROLES
                .iter()
                .filter_map(|role| sample.roles.get(*role))
                .map(|u| u.cpu_cores)
                .sum();
            // A resource sample at t covers the second before it.
            let second = (sample.t.round() as u64).saturating_sub(1);
            match work.get(&second) {
                Some(w) if busy >= 0.05 && *w > 0.0 => {
                    per_core.push(w / busy);
                    if !files.contains(file) {
                        files.push(file.clone());
                    }
                }
                _ => {}
            }
        }
    }
    if per_core.len() < 5 {
        return None;
    }
    let cores = server_cores(runs);
    let seconds = per_core.len();
    let efficiency = median(per_core);
    Some(Figure {
        value: efficiency * f64::from(cores),
        from: format!(
            "utilization law below saturation: median {efficiency:.2} s of quiet-load work per second of server CPU over {seconds} seconds, × {cores} server core(s), in {}",
            files.join(", ")
        ),
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
