//! The capacity model (`syncstorm model`) and its calibration (`syncstorm calibrate`): the
//! scenario's devices in virtual time against a queueing model of the Supabase stack whose
//! service times come from measured runs. Output is a run result like a measured run's,
//! marked `target.kind = "model"`, so `report` and `compare` read it. Design:
//! `shared/design/capacity-model.md`.

pub mod calibration;
pub mod capacity;
mod capacity_report;
mod confirm;
pub mod server;
pub mod sim;
mod user_rows;
pub mod usl_fit;
pub mod validate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use crate::cli::exit;
use crate::result::{
    CoordinatedOmission, ModelInfo, Outcome, Probes, RunResult, RunStatus, ScenarioInfo,
    TargetInfo, thresholds,
};
pub use calibration::{Calibration, CalibrationError};
pub use sim::ModelOptions;

/// The calibration shipped with the project, measured on the embedded stack.
pub const DEFAULT_CALIBRATION: &str = "calibration/embedded.json";

#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// The scenario file (the same as `syncstorm run` takes).
    pub scenario: PathBuf,
    /// Override any scenario field, e.g. `--set population.users=500000`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Add a threshold, e.g. `--threshold "token_check.p99 < 1s"`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// The calibration (from `syncstorm calibrate`); default: the shipped one.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Server capacity instead of the calibration's (e.g. 4 for a compute with twice the
    /// cores of the calibration's server, if statements scale with cores).
    #[arg(long)]
    pub capacity: Option<f64>,
    /// Phone ↔ server round trip added to every request, ms (0: loopback, as calibrated).
    #[arg(long, default_value_t = 0.0)]
    pub rtt_ms: f64,
    /// Where the JSON result and HTML report go (default: the scenario's `run.out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Measured run results (JSON) to fit from: at least one at low load.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where the calibration goes.
    #[arg(long)]
    pub out: PathBuf,
}

/// `syncstorm model`.
pub fn model(args: &ModelArgs) -> i32 {
    crate::logging::init("warn");
    let plan =
        match syncstorm_scenario::load_with(&args.scenario, &args.overrides, &args.thresholds) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("syncstorm model: {e}");
                return exit::BAD_INPUT;
            }
        };
    let path = args
        .calibration
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CALIBRATION));
    let cal = match Calibration::load(&path) {
        Ok(cal) => cal,
        Err(e) => {
            eprintln!("syncstorm model: {e}");
            return exit::BAD_INPUT;
        }
    };
    if let Some(c) = args.capacity.filter(|c| !(c.is_finite() && *c > 0.0)) {
        eprintln!("syncstorm model: --capacity must be a positive number, got {c}");
        return exit::BAD_INPUT;
    }
    if !(args.rtt_ms.is_finite() && (0.0..=60_000.0).contains(&args.rtt_ms)) {
        eprintln!(
            "syncstorm model: --rtt-ms must be from 0 to 60000, got {}",
            args.rtt_ms
        );
        return exit::BAD_INPUT;
    }
    if let Err(why) = modelable(&plan) {
        eprintln!("syncstorm model: {why}");
        return exit::BAD_INPUT;
    }
    let options = ModelOptions {
        rtt_ms: args.rtt_ms,
        capacity: args.capacity,
    };
    let r = match simulate(&plan, &cal, &options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("syncstorm model: {e}");
            return exit::RUN_FAILED;
        }
    };
    let out = args.out.clone().unwrap_or_else(|| plan.run.out.clone());
    let json = match r.write(&out) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("syncstorm model: {e}");
            return exit::RUN_FAILED;
        }
    };
    let html = json.with_extension("html");
    if let Err(e) = crate::report::write_html(&r, &html) {
        eprintln!("syncstorm model: cannot write {}: {e}", html.display());
        return exit::RUN_FAILED;
    }
    print_summary(&r, &json, &html);
    r.status.exit_code
}

/// Why a plan cannot be modelled yet (one sentence), or `Ok`.
pub fn modelable(plan: &syncstorm_scenario::RunPlan) -> Result<(), String> {
    if plan.behaviour.bulk_import.is_some() {
        return Err("the model does not run bulk imports yet (behaviour.bulk_import); measure risk 3 with `syncstorm run`".into());
    }
    if !plan.faults.outages.is_empty() {
        return Err(
            "the model does not run network outages yet (faults.outages); remove them or measure with `syncstorm run`"
                .into(),
        );
    }
    if plan.total_devices() > u64::from(u32::MAX) {
        return Err(format!(
            "the model holds at most {} devices, the scenario has {}",
            u32::MAX,
            plan.total_devices()
        ));
    }
    Ok(())
}

/// Mechanisms of a measured run the model leaves out for `plan`.
fn not_modelled(plan: &syncstorm_scenario::RunPlan) -> Vec<String> {
    let mut out = vec![
        "Realtime's join and events-per-second caps and its capture pipeline (pulses arrive after the calibrated delivery time)".to_string(),
        "row locks".to_string(),
        "the request ceiling and client-side limits of the harness".to_string(),
    ];
    if plan.device.expired_at_open_percent > 0 {
        out.push(format!(
            "session refreshes at open (device.expired_at_open_percent = {})",
            plan.device.expired_at_open_percent
        ));
    }
    if plan.device.session == syncstorm_device::SessionStart::SignIn {
        out.push("password sign-ins of fresh installs (device.session = \"sign_in\")".into());
    }
    out
}

/// Runs the model for `plan` and returns its result (status and thresholds set).
pub fn simulate(
    plan: &syncstorm_scenario::RunPlan,
    cal: &Calibration,
    options: &ModelOptions,
) -> Result<RunResult, String> {
    let started_at = Utc::now();
    let wall = Instant::now();
    let phases = sim::phases(plan);
    let modelled = sim::Sim::new(plan, &phases, cal, options)
        .run()
        .map_err(|e| format!("the model's metrics could not be summarised: {e}"))?;
    let scenario = ScenarioInfo {
        name: plan.name.clone(),
        question: (!plan.description.is_empty()).then(|| plan.description.clone()),
        as_run: crate::target::redact_document(plan.document_json()),
    };
    let mut r = RunResult::new(scenario, started_at);
    r.duration_s = modelled.span_s;
    r.plan = Some(plan.target.plan.clone());
    r.set_metrics(&modelled.total, modelled.series)
        .map_err(|e| format!("the model's metrics could not be summarised: {e}"))?;
    r.counters
        .insert("devices_started".into(), modelled.devices_started);
    r.probes = Probes {
        source: Some("capacity model (the queues' own state, once a second)".into()),
        db_max_connections: Some(plan.target.plan.db_max_connections),
        interval_ms: 1000,
        samples: modelled.probes,
        failed_samples: 0,
    };
    let borrowed = cal.borrowed_ops();
    let mut gaps = not_modelled(plan);
    if !borrowed.is_empty() {
        gaps.push(format!(
            "measured service times of {} (the token check's are used)",
            borrowed.join(", ")
        ));
    }
    r.target = TargetInfo {
        kind: "model".into(),
        realtime_decoder: None,
        durable: None,
        model: Some(ModelInfo {
            calibration: cal.describe(options.capacity),
            capacity: options.capacity.unwrap_or(cal.capacity.value),
            rtt_ms: options.rtt_ms,
            events: modelled.events,
            wall_s: wall.elapsed().as_secs_f64(),
            not_modelled: gaps,
        }),
    };
    r.coordinated_omission = CoordinatedOmission {
        correction: "none_needed".into(),
        note: "Virtual time: every open happens at its scheduled instant and latencies are the model's queueing and service times; there is no generator to fall behind.".into(),
    };
    r.thresholds = thresholds::evaluate(&r, &plan.thresholds);
    r.status = RunStatus {
        outcome: Outcome::Completed,
        exit_code: if r.thresholds_passed() {
            exit::OK
        } else {
            exit::THRESHOLDS_BREACHED
        },
        message: None,
    };
    r.set_risks();
    Ok(r)
}

fn print_summary(r: &RunResult, json: &Path, html: &Path) {
    let m = r.target.model.as_ref();
    eprintln!(
        "modelled {} ({} devices started) in {:.1}s wall, {} events; {}",
        r.scenario.name,
        r.counters.get("devices_started").copied().unwrap_or(0),
        m.map_or(0.0, |m| m.wall_s),
        m.map_or(0, |m| m.events),
        m.map_or(String::new(), |m| m.calibration.clone())
    );
    for (name, o) in &r.operations {
        eprintln!(
            "  {name:<14} {:>10} done, {:>9} failed, p50 {:>9.1} ms, p99 {:>9.1} ms",
            o.count, o.errors, o.p50_ms, o.p99_ms
        );
    }
    for (key, v) in &r.risks {
        eprintln!("  {key}: {} — {}", v.verdict, v.evidence);
    }
    println!("{}", json.display());
    println!("{}", html.display());
}

/// `syncstorm calibrate`.
pub fn calibrate(args: &CalibrateArgs) -> i32 {
    let mut runs = Vec::new();
    for path in &args.results {
        match RunResult::load(path) {
            Ok(r) => runs.push((path.display().to_string(), r)),
            Err(e) => {
                eprintln!("syncstorm calibrate: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    let cal = match calibration::fit(&runs) {
        Ok(cal) => cal,
        Err(e) => {
            eprintln!("syncstorm calibrate: {e}");
            return exit::BAD_INPUT;
        }
    };
    let text = match serde_json::to_string_pretty(&cal) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("syncstorm calibrate: cannot encode the calibration: {e}");
            return exit::RUN_FAILED;
        }
    };
    if let Err(e) = std::fs::write(&args.out, text + "\n") {
        eprintln!(
            "syncstorm calibrate: cannot write {}: {e}",
            args.out.display()
        );
        return exit::RUN_FAILED;
    }
    for (op, s) in &cal.service {
        eprintln!(
            "  {op:<14} p50 {:>8.2} ms  p99 {:>8.2} ms",
            s.p50_ms.value, s.p99_ms.value
        );
    }
    eprintln!(
        "  capacity {:.2} ({})",
        cal.capacity.value, cal.capacity.from
    );
    println!("{}", args.out.display());
    exit::OK
}
