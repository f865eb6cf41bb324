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
    /// The users searched, `FROM..TO`.
    #[arg(long, default_value = "1000..1000000")]
    pub users: String,
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
    /// Largest users at which every SLO held; `None` when even the lowest failed.
    pub users: Option<u64>,
    /// The search's upper bound held: the capacity is at least `users`.
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

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (from, to) = text
        .split_once("..")
        .ok_or_else(|| format!("--users takes FROM..TO, e.g. 1000..1000000, got {text:?}"))?;
    let num = |s: &str| {
        s.trim()
            .replace('_', "")
            .parse::<u64>()
            .map_err(|_| format!("--users {text:?}: {s:?} is not a whole number"))
    };
    let (from, to) = (num(from)?, num(to)?);
    if from == 0 || from >= to {
        return Err(format!("--users {text:?}: need 0 < FROM < TO"));
    }
    Ok((from, to))
}

fn run(args: &CapacityArgs) -> Result<(), (i32, String)> {
    crate::logging::init("warn");
    let (from, to) = parse_range(&args.users).map_err(bad)?;
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
        base: &base,
        slos: &slos,
        cal: &cal,
        options: &options,
    };
    let mut plans = Vec::new();
    for plan in &args.plans {
        plans.push(search.plan(plan, from, to)?);
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
    base: &'a RunPlan,
    slos: &'a [Threshold],
    cal: &'a Calibration,
    options: &'a ModelOptions,
}

impl Search<'_> {
    /// The scenario at `users` users on `plan`, open-model rates scaled with the users.
    fn plan_at(&self, plan: &str, users: u64) -> Result<RunPlan, (i32, String)> {
        let overrides = self.overrides_at(plan, users);
        let mut p = syncstorm_scenario::load_with(&self.args.scenario, &overrides, &[])
            .map_err(|e| bad(format!("at {users} users on {plan}: {e}")))?;
        p.thresholds = self.slos.to_vec();
        Ok(p)
    }

    /// The `--set` overrides that put the scenario at `users` users on `plan`.
    fn overrides_at(&self, plan: &str, users: u64) -> Vec<String> {
        let factor = users as f64 / self.base.population.users.max(1) as f64;
        let mut overrides = self.args.overrides.clone();
        overrides.push(format!("target.plan={plan}"));
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

    fn point(&self, plan: &str, users: u64) -> Result<Point, (i32, String)> {
        let p = self.plan_at(plan, users)?;
        let r = super::simulate(&p, self.cal, self.options).map_err(|e| (exit::RUN_FAILED, e))?;
        eprintln!(
            "  {plan}: {users} users → {}",
            if r.thresholds_passed() {
                "holds"
            } else {
                "fails"
            }
        );
        Ok(point_of(&r, users))
    }

    /// A log-spaced sweep from `from` to `to` users, then bisection (in log space) between
    /// the last point that held and the first that failed.
    fn plan(&self, plan: &str, from: u64, to: u64) -> Result<PlanCapacity, (i32, String)> {
        let n = self.args.curve_points.max(2);
        let ratio = (to as f64 / from as f64).powf(1.0 / f64::from(n - 1));
        let mut sweep: Vec<u64> = (0..n)
            .map(|i| (from as f64 * ratio.powi(i as i32)).round() as u64)
            .collect();
        sweep.dedup();
        let mut points = Vec::new();
        for users in sweep {
            points.push(self.point(plan, users)?);
        }
        let first_fail = points.iter().position(|p| !p.holds);
        let mut result = PlanCapacity {
            plan: plan.to_string(),
            users: None,
            at_least: false,
            first_limit: None,
            points: Vec::new(),
            measured: Vec::new(),
        };
        match first_fail {
            None => {
                result.users = Some(to);
                result.at_least = true;
            }
            Some(0) => {}
            Some(i) => {
                let (mut good, mut bad_at) = (points[i - 1].users, points[i].users);
                for _ in 0..self.args.steps {
                    if bad_at as f64 / good as f64 <= 1.02 {
                        break;
                    }
                    let mid = ((good as f64) * (bad_at as f64)).sqrt().round() as u64;
                    let p = self.point(plan, mid)?;
                    if p.holds {
                        good = mid;
                    } else {
                        bad_at = mid;
                    }
                    points.push(p);
                }
                result.users = Some(good);
            }
        }
        points.sort_by_key(|p| p.users);
        result.first_limit = points.iter().find(|p| !p.holds).map(first_limit);
        result.points = points;
        if self.args.confirm
            && let Some(knee) = result.users
        {
            let mut at = vec![knee, (knee / 2).max(1)];
            at.dedup();
            for users in at {
                let out = self.args.out.join(format!("confirm-{plan}-{users}"));
                let overrides = self.overrides_at(plan, users);
                let (point, path) =
                    confirm::measure(&self.args.scenario, &overrides, self.slos, users, &out)?;
                let modelled_holds = result
                    .points
                    .iter()
                    .find(|p| p.users == users)
                    .map(|p| p.holds);
                result.measured.push(Measured {
                    point,
                    modelled_holds,
                    result: path,
                });
            }
            result.measured.sort_by_key(|m| m.point.users);
        }
        Ok(result)
    }
}

pub(super) fn point_of(r: &RunResult, users: u64) -> Point {
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
