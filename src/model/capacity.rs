//! `syncstorm capacity`: for each plan, the largest number of users at which every SLO still
//! holds, found by bisection on the model; which limit trips first above it; the curves of
//! latency and failures against users. Growing the users grows an open-model scenario's
//! arrival rates in proportion (opens per user stay as the scenario has them); closed-model
//! phases written as a share (`"100%"`) grow by themselves.

use std::path::PathBuf;

use serde::Serialize;
use syncstorm_metrics::{counter, op};
use syncstorm_scenario::{Load, RunPlan, Threshold};

use super::calibration::Calibration;
use super::capacity_report::{print, render};
use super::confirm::{self, Measured};
use super::sim::ModelOptions;
use super::usl_fit::{self, UslFit};
use crate::cli::exit;
use crate::result::RunResult;

#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// A service-level objective every point must meet, e.g. `--slo 'token_check.p99 < 1s'`
    /// (the threshold grammar; repeatable).
    #[arg(long = "slo", required = true, value_name = "EXPR")]
    pub slos: Vec<String>,
    /// Plans to size, comma-separated (presets: see the README's plan table).
    #[arg(long, value_delimiter = ',', default_value = "free,pro,team")]
    pub plans: Vec<String>,
    /// The users searched, `FROM..TO` (open-model arrival rates grow with them).
    #[arg(long, default_value = "1000..1000000")]
    pub users: String,
    /// Search another value of the scenario instead of the users, `PATH=FROM..TO`, e.g.
    /// `phases.0.arrival_rate=100..5000` (opens per second at the scenario's users) or
    /// `population.devices_per_user=1..8`; a larger value must mean more load.
    #[arg(long, value_name = "PATH=FROM..TO", conflicts_with = "users")]
    pub vary: Option<String>,
    /// Override any scenario field (before the search's own overrides).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Server capacity instead of the calibration's.
    #[arg(long)]
    pub capacity: Option<f64>,
    /// Log-spaced points modelled across the range first (the curves; they also bracket the
    /// knee), then bisection steps between the last point that held and the first that failed.
    #[arg(long, default_value_t = 8)]
    pub curve_points: u32,
    #[arg(long, default_value_t = 8)]
    pub steps: u32,
    /// Run the real harness (`syncstorm run`, against the scenario's target) at each plan's
    /// knee and at half of it, and set the measured points beside the modelled ones.
    #[arg(long)]
    pub confirm: bool,
    /// Measured results (`syncstorm run`) to fit the Universal Scalability Law to, as a second
    /// opinion beside the model (repeatable; `--confirm`'s own runs join them).
    #[arg(long = "measured", value_name = "RESULT.json")]
    pub measured: Vec<PathBuf>,
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
}

/// One modelled point of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The searched value at this point (the users, or the `--vary` path's value).
    pub value: f64,
    pub users: u64,
    pub holds: bool,
    pub failed_slos: Vec<String>,
    pub token_check_p99_ms: f64,
    pub token_check_failed: f64,
    pub rest_queue_peak: u32,
    pub auth_queue_peak: u32,
    pub ws_rejected: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanCapacity {
    pub plan: String,
    /// Largest value of the searched path at which every SLO held; `None` when even the
    /// lowest failed.
    pub knee: Option<f64>,
    /// The users at the knee (with `--vary`, the scenario's users).
    pub users: Option<u64>,
    /// The search's upper bound held: the capacity is at least `knee`.
    pub at_least: bool,
    /// What gave way first at the smallest failing point.
    pub first_limit: Option<String>,
    pub points: Vec<Point>,
    /// `--confirm`: real runs at the knee and at half of it.
    pub measured: Vec<Measured>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub scenario: String,
    /// What was searched: `population.users` (with the arrival rates scaled along), or the
    /// `--vary` path.
    pub varied: String,
    pub slos: Vec<String>,
    pub calibration: String,
    pub plans: Vec<PlanCapacity>,
    /// The USL fitted to the measured runs (`--measured`, `--confirm`), if they carried one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usl: Option<UslFit>,
    /// Why there is no USL fit, when measured runs were given but could not carry one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usl_missing: Option<String>,
}

pub fn capacity(args: &CapacityArgs) -> i32 {
    match run(args) {
        Ok(()) => exit::OK,
        Err((code, why)) => {
            eprintln!("syncstorm capacity: {why}");
            code
        }
    }
}

fn bad(why: impl Into<String>) -> (i32, String) {
    (exit::BAD_INPUT, why.into())
}

/// What the search varies, over which range.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Axis {
    /// `None`: the users, with the open-model rates scaled along.
    pub path: Option<String>,
    pub from: f64,
    pub to: f64,
    /// Both bounds were whole numbers: every point is one.
    pub whole: bool,
}

impl Axis {
    /// The value as shown and as written into `--set`: whole numbers without a fraction.
    pub(super) fn show(&self, value: f64) -> String {
        if self.whole {
            format!("{value:.0}")
        } else {
            let text = format!("{value:.3}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }

    fn snap(&self, value: f64) -> f64 {
        if self.whole { value.round() } else { value }
    }
}

fn parse_axis(args: &CapacityArgs) -> Result<Axis, String> {
    let (path, range, flag) = match &args.vary {
        Some(text) => {
            let (path, range) = text.split_once('=').ok_or_else(|| {
                format!(
                    "--vary takes PATH=FROM..TO, e.g. phases.0.arrival_rate=100..5000, got {text:?}"
                )
            })?;
            (Some(path.trim().to_string()), range, "--vary")
        }
        None => (None, args.users.as_str(), "--users"),
    };
    let (from, to) = range.split_once("..").ok_or_else(|| match &args.vary {
        Some(text) => format!(
            "--vary takes PATH=FROM..TO, e.g. phases.0.arrival_rate=100..5000, got {text:?}"
        ),
        None => format!("--users takes FROM..TO, e.g. 1000..1000000, got {range:?}"),
    })?;
    let num = |s: &str| {
        let s = s.trim().replace('_', "");
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| (v, !s.contains(['.', 'e', 'E'])))
            .ok_or_else(|| format!("{flag} {range:?}: {s:?} is not a number"))
    };
    let ((from, whole_from), (to, whole_to)) = (num(from)?, num(to)?);
    if path.is_none() && !(whole_from && whole_to) {
        return Err(format!("--users {range:?}: users are whole numbers"));
    }
    if from <= 0.0 || from >= to {
        return Err(format!("{flag} {range:?}: need 0 < FROM < TO"));
    }
    Ok(Axis {
        path,
        from,
        to,
        whole: whole_from && whole_to,
    })
}

fn run(args: &CapacityArgs) -> Result<(), (i32, String)> {
    crate::logging::init("warn");
    let axis = parse_axis(args).map_err(bad)?;
    let slos = args
        .slos
        .iter()
        .map(|s| Threshold::parse_expression(s).map_err(|e| bad(format!("--slo {s:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    for plan in &args.plans {
        syncstorm_plans::SupabasePlan::preset(plan).map_err(|e| bad(e.to_string()))?;
    }
    let base = syncstorm_scenario::load_with(&args.scenario, &args.overrides, &[])
        .map_err(|e| bad(e.to_string()))?;
    super::modelable(&base).map_err(bad)?;
    let path = args.calibration.clone().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(super::DEFAULT_CALIBRATION)
    });
    let cal = Calibration::load(&path).map_err(|e| bad(e.to_string()))?;
    let mut measured = usl_fit::load(&args.measured).map_err(bad)?;
    if args.steps == 0 || args.steps > 40 {
        return Err(bad(format!(
            "--steps must be from 1 to 40, got {}",
            args.steps
        )));
    }
    let options = ModelOptions {
        rtt_ms: 0.0,
        capacity: args.capacity,
    };
    let search = Search {
        args,
        axis: &axis,
        base: &base,
        slos: &slos,
        cal: &cal,
        options: &options,
    };
    let mut plans = Vec::new();
    if let Some(path) = &axis.path {
        // A path the scenario has no number at is one sentence before any point is modelled.
        search
            .plan_at(&args.plans[0], axis.from)
            .map_err(|(_, why)| bad(format!("--vary {path}: {why}")))?;
    }
    for plan in &args.plans {
        plans.push(search.plan(plan)?);
    }
    let confirmed: Vec<PathBuf> = plans
        .iter()
        .flat_map(|p| p.measured.iter().map(|m| m.result.clone()))
        .collect();
    measured.extend(usl_fit::load(&confirmed).map_err(|e| (exit::RUN_FAILED, e))?);
    let (usl, usl_missing) = match measured.is_empty() {
        true => (None, None),
        false => match usl_fit::fit(&measured) {
            Ok(fit) => (Some(fit), None),
            Err(why) => (None, Some(why)),
        },
    };
    let report = CapacityReport {
        scenario: base.name.clone(),
        varied: axis
            .path
            .clone()
            .unwrap_or_else(|| "population.users".into()),
        slos: slos.iter().map(|s| s.expression.clone()).collect(),
        calibration: cal.describe(args.capacity),
        plans,
        usl,
        usl_missing,
    };
    std::fs::create_dir_all(&args.out).map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot create {}: {e}", args.out.display()),
        )
    })?;
    let stem = format!(
        "capacity-{}-{}",
        base.name,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let json = args.out.join(format!("{stem}.json"));
    let html = args.out.join(format!("{stem}.html"));
    let text =
        serde_json::to_string_pretty(&report).map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
    std::fs::write(&json, text + "\n").map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot write {}: {e}", json.display()),
        )
    })?;
    std::fs::write(&html, render(&report)).map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot write {}: {e}", html.display()),
        )
    })?;
    print(&report);
    println!("{}", json.display());
    println!("{}", html.display());
    Ok(())
}

struct Search<'a> {
    args: &'a CapacityArgs,
    axis: &'a Axis,
    base: &'a RunPlan,
    slos: &'a [Threshold],
    cal: &'a Calibration,
    options: &'a ModelOptions,
}

impl Search<'_> {
    /// The scenario at `value` of the searched axis on `plan`.
    fn plan_at(&self, plan: &str, value: f64) -> Result<RunPlan, (i32, String)> {
        let overrides = self.overrides_at(plan, value);
        let mut p = syncstorm_scenario::load_with(&self.args.scenario, &overrides, &[])
            .map_err(|e| bad(format!("at {} on {plan}: {e}", self.label(value))))?;
        p.thresholds = self.slos.to_vec();
        Ok(p)
    }

    /// "5000 users", "phases.0.arrival_rate = 250".
    fn label(&self, value: f64) -> String {
        match &self.axis.path {
            None => format!("{} users", self.axis.show(value)),
            Some(path) => format!("{path} = {}", self.axis.show(value)),
        }
    }

    /// The `--set` overrides that put the scenario at `value` on `plan`: for the users, the
    /// open-model rates grow with them (opens per user stay); a `--vary` path is set alone.
    fn overrides_at(&self, plan: &str, value: f64) -> Vec<String> {
        let mut overrides = self.args.overrides.clone();
        overrides.push(format!("target.plan={plan}"));
        if let Some(path) = &self.axis.path {
            overrides.push(format!("{path}={}", self.axis.show(value)));
            return overrides;
        }
        let users = value.round() as u64;
        let factor = users as f64 / self.base.population.users.max(1) as f64;
        overrides.push(format!("population.users={users}"));
        for (i, phase) in self.base.phases.iter().enumerate() {
            if let Load::Open {
                from_rate, to_rate, ..
            } = phase.load
            {
                overrides.push(format!("phases.{i}.arrival_rate={}", from_rate * factor));
                if to_rate != from_rate {
                    overrides.push(format!("phases.{i}.ramp_to={}", to_rate * factor));
                }
            }
        }
        overrides
    }

    fn point(&self, plan: &str, value: f64) -> Result<Point, (i32, String)> {
        let p = self.plan_at(plan, value)?;
        let r = super::simulate(&p, self.cal, self.options).map_err(|e| (exit::RUN_FAILED, e))?;
        eprintln!(
            "  {plan}: {} → {}",
            self.label(value),
            if r.thresholds_passed() {
                "holds"
            } else {
                "fails"
            }
        );
        Ok(point_of(&r, value, p.population.users))
    }

    /// A log-spaced sweep across the axis, then bisection (in log space) between the last
    /// point that held and the first that failed.
    fn plan(&self, plan: &str) -> Result<PlanCapacity, (i32, String)> {
        let (from, to) = (self.axis.from, self.axis.to);
        let n = self.args.curve_points.max(2);
        let ratio = (to / from).powf(1.0 / f64::from(n - 1));
        let mut sweep: Vec<f64> = (0..n)
            .map(|i| self.axis.snap(from * ratio.powi(i as i32)))
            .collect();
        sweep.dedup();
        let mut points = Vec::new();
        for value in sweep {
            points.push(self.point(plan, value)?);
        }
        let first_fail = points.iter().position(|p| !p.holds);
        let mut result = PlanCapacity {
            plan: plan.to_string(),
            knee: None,
            users: None,
            at_least: false,
            first_limit: None,
            points: Vec::new(),
            measured: Vec::new(),
        };
        let knee = match first_fail {
            None => {
                result.at_least = true;
                Some(points.last().map_or(to, |p| p.value))
            }
            Some(0) => None,
            Some(i) => {
                let (mut good, mut bad_at) = (points[i - 1].value, points[i].value);
                for _ in 0..self.args.steps {
                    let mid = self.axis.snap((good * bad_at).sqrt());
                    if bad_at / good <= 1.02 || mid <= good || mid >= bad_at {
                        break;
                    }
                    let p = self.point(plan, mid)?;
                    if p.holds {
                        good = mid;
                    } else {
                        bad_at = mid;
                    }
                    points.push(p);
                }
                Some(good)
            }
        };
        points.sort_by(|a, b| a.value.total_cmp(&b.value));
        result.knee = knee;
        result.users = knee.and_then(|k| points.iter().find(|p| p.value == k).map(|p| p.users));
        result.first_limit = points.iter().find(|p| !p.holds).map(first_limit);
        result.points = points;
        if self.args.confirm
            && let Some(knee) = result.knee
        {
            let half = match self.axis.whole {
                true => (knee / 2.0).floor(),
                false => knee / 2.0,
            };
            let mut at = vec![knee];
            if half > 0.0 && half < knee {
                at.push(half);
            }
            for value in at {
                let out = self
                    .args
                    .out
                    .join(format!("confirm-{plan}-{}", self.axis.show(value)));
                let overrides = self.overrides_at(plan, value);
                let users = self.plan_at(plan, value)?.population.users;
                let (point, path) = confirm::measure(
                    &self.args.scenario,
                    &overrides,
                    self.slos,
                    (value, users),
                    &self.label(value),
                    &out,
                )?;
                let modelled_holds = result
                    .points
                    .iter()
                    .find(|p| p.value == value)
                    .map(|p| p.holds);
                result.measured.push(Measured {
                    point,
                    modelled_holds,
                    result: path,
                });
            }
            result
                .measured
                .sort_by(|a, b| a.point.value.total_cmp(&b.point.value));
        }
        Ok(result)
    }
}

pub(super) fn point_of(r: &RunResult, value: f64, users: u64) -> Point {
    let check = r.operations.get(op::TOKEN_CHECK);
    let peak = |pool: &str| {
        r.probes
            .samples
            .iter()
            .map(|s| s.pools.get(pool).map_or(0, |p| p.waiting))
            .max()
            .unwrap_or(0)
    };
    Point {
        value,
        users,
        holds: r.thresholds_passed(),
        failed_slos: r
            .thresholds
            .iter()
            .filter(|t| !t.passed)
            .map(|t| format!("{} (was {})", t.expression, t.shown))
            .collect(),
        token_check_p99_ms: check.map_or(0.0, |o| o.p99_ms),
        token_check_failed: check.map_or(0.0, |o| o.error_rate()),
        rest_queue_peak: peak("rest"),
        auth_queue_peak: peak("auth"),
        ws_rejected: r.counters.get(counter::WS_REJECTED).copied().unwrap_or(0),
    }
}

/// The limit a failing point ran into first, in words.
fn first_limit(p: &Point) -> String {
    if p.ws_rejected > 0 {
        "Realtime's connection cap".into()
    } else if p.rest_queue_peak > 0 && p.token_check_failed > 0.0 {
        "PostgREST's connection pool (requests timed out waiting)".into()
    } else if p.auth_queue_peak > 0 {
        "GoTrue's connection pool".into()
    } else if p.rest_queue_peak > 0 {
        "PostgREST's connection pool (requests queued)".into()
    } else {
        "server CPU (statements slowed, no pool queue)".into()
    }
}
