//! `syncstorm validate`: calibrate the model on some measured runs (low load), model the
//! scenarios of others (higher load) and set predicted beside measured, metric by metric, over
//! the load window (the phases; the measured run's quiet sync after them has no counterpart
//! in the model). Goals (capacity-model.md): rates, counts and queue peaks within 15 %, p99
//! latencies within 25 %. The model is never tuned to the runs it predicts.

use std::path::{Path, PathBuf};

use serde::Serialize;
use syncstorm_metrics::{histogram, op};

use super::calibration::{self, Calibration};
use super::sim::ModelOptions;
use crate::cli::exit;
use crate::report::html::{esc, page};
use crate::result::RunResult;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Measured runs to calibrate on (low load).
    #[arg(long = "calibrate", required = true, num_args = 1.., value_name = "RESULT.json")]
    pub calibrate: Vec<PathBuf>,
    /// Measured runs to predict (higher load), each modelled from its own scenario as run.
    #[arg(long = "predict", required = true, num_args = 1.., value_name = "RESULT.json")]
    pub predict: Vec<PathBuf>,
    /// Where the calibration, the modelled results and the validation report go.
    #[arg(long)]
    pub out: PathBuf,
}

/// Rates, counts and queue peaks: within this relative error.
const COUNT_GOAL: f64 = 0.15;
/// p99 latencies.
const P99_GOAL: f64 = 0.25;

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub metric: String,
    pub predicted: Option<f64>,
    pub measured: Option<f64>,
    /// (predicted − measured) / measured; `None` when either is missing or measured is 0.
    pub error: Option<f64>,
    pub goal: f64,
    pub within: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunValidation {
    pub measured_file: String,
    pub modelled_file: String,
    pub scenario: String,
    pub load_window_s: u64,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub calibrated_on: Vec<String>,
    pub calibration: Calibration,
    pub runs: Vec<RunValidation>,
}

/// The figures compared, over seconds `[0, window)` of a result.
fn figures(r: &RunResult, window: u64) -> Vec<(String, Option<f64>, f64)> {
    let points: Vec<_> = r
        .timeseries
        .points
        .iter()
        .filter(|p| p.t < window)
        .collect();
    let op_total = |name: &str| {
        let mut count = 0u64;
        let mut errors = 0u64;
        let mut hist = histogram::new_histogram();
        for p in &points {
            if let Some(o) = p.ops.get(name) {
                count += o.count;
                errors += o.errors;
                if let Ok(h) = histogram::decode(&o.hist) {
                    let _ = histogram::add(&mut hist, &h);
                }
            }
        }
        let quantile =
            |q: f64| (!hist.is_empty()).then(|| hist.value_at_quantile(q) as f64 / 1000.0);
        (count, errors, quantile(0.5), quantile(0.99))
    };
    let samples: Vec<_> = r
        .probes
        .samples
        .iter()
        .filter(|s| s.t < window as f64)
        .collect();
    let peak = |f: &dyn Fn(&crate::result::ProbeSample) -> f64| {
        (!samples.is_empty()).then(|| samples.iter().map(|s| f(s)).fold(0.0, f64::max))
    };
    let (checks, failed, p50, p99) = op_total(op::TOKEN_CHECK);
    let (pulls, _, _, pull_p99) = op_total(op::PULL);
    let (refreshes, _, _, refresh_p99) = op_total(op::TOKEN_REFRESH);
    let (_, _, _, pulse_p99) = op_total(op::PULSE_DELIVERY);
    let rejected: u64 = points
        .iter()
        .map(|p| p.counter(syncstorm_metrics::counter::WS_REJECTED))
        .sum();
    let some = |n: u64| Some(n as f64);
    let mut out = vec![
        ("token checks made".to_string(), some(checks), COUNT_GOAL),
        ("token checks failed".to_string(), some(failed), COUNT_GOAL),
        ("token_check p50 (ms)".to_string(), p50, P99_GOAL),
        ("token_check p99 (ms)".to_string(), p99, P99_GOAL),
        ("pull pages".to_string(), some(pulls), COUNT_GOAL),
        ("pull p99 (ms)".to_string(), pull_p99, P99_GOAL),
        (
            "REST pool queue peak".to_string(),
            peak(&|s| s.pools.get("rest").map_or(0.0, |p| f64::from(p.waiting))),
            COUNT_GOAL,
        ),
        (
            "REST pool connections in use, peak".to_string(),
            peak(&|s| s.pools.get("rest").map_or(0.0, |p| f64::from(p.in_use))),
            COUNT_GOAL,
        ),
    ];
    if refreshes > 0 {
        out.push(("session refreshes".into(), some(refreshes), COUNT_GOAL));
        out.push(("token_refresh p99 (ms)".into(), refresh_p99, P99_GOAL));
    }
    if rejected > 0 || pulse_p99.is_some() {
        out.push((
            "refused websocket upgrades".into(),
            some(rejected),
            COUNT_GOAL,
        ));
        out.push(("pulse_delivery p99 (ms)".into(), pulse_p99, P99_GOAL));
    }
    out
}

fn compare(predicted: &RunResult, measured: &RunResult, window: u64) -> Vec<Comparison> {
    figures(predicted, window)
        .into_iter()
        .zip(figures(measured, window))
        .map(|((metric, p, goal), (_, m, _))| {
            let error = match (p, m) {
                (Some(p), Some(m)) if m > 0.0 => Some((p - m) / m),
                (Some(p), Some(m)) if m == 0.0 && p == 0.0 => Some(0.0),
                _ => None,
            };
            Comparison {
                metric,
                predicted: p,
                measured: m,
                within: error.map(|e| e.abs() <= goal),
                error,
                goal,
            }
        })
        .collect()
}

/// `syncstorm validate`.
pub fn validate(args: &ValidateArgs) -> i32 {
    match run(args) {
        Ok(()) => exit::OK,
        Err((code, why)) => {
            eprintln!("syncstorm validate: {why}");
            code
        }
    }
}

fn load(path: &Path) -> Result<RunResult, (i32, String)> {
    RunResult::load(path).map_err(|e| (exit::BAD_INPUT, e.to_string()))
}

fn run(args: &ValidateArgs) -> Result<(), (i32, String)> {
    let mut low = Vec::new();
    for path in &args.calibrate {
        low.push((path.display().to_string(), load(path)?));
    }
    let cal = calibration::fit(&low).map_err(|e| (exit::BAD_INPUT, e.to_string()))?;
    std::fs::create_dir_all(&args.out).map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot create {}: {e}", args.out.display()),
        )
    })?;
    let cal_path = args.out.join("calibration.json");
    let text = serde_json::to_string_pretty(&cal).map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
    std::fs::write(&cal_path, text + "\n").map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot write {}: {e}", cal_path.display()),
        )
    })?;
    let mut runs = Vec::new();
    for path in &args.predict {
        let measured = load(path)?;
        let shown = path.display().to_string();
        let doc: toml::Value =
            serde_json::from_value(measured.scenario.as_run.clone()).map_err(|e| {
                (
                    exit::BAD_INPUT,
                    format!("{shown}: its scenario as run cannot be read back: {e}"),
                )
            })?;
        let plan = syncstorm_scenario::from_document(&shown, doc)
            .map_err(|e| (exit::BAD_INPUT, format!("{shown}: {e}")))?;
        super::modelable(&plan).map_err(|why| (exit::BAD_INPUT, format!("{shown}: {why}")))?;
        let options = ModelOptions {
            rtt_ms: 0.0,
            capacity: None,
        };
        let predicted =
            super::simulate(&plan, &cal, &options).map_err(|e| (exit::RUN_FAILED, e))?;
        let modelled = predicted
            .write(&args.out)
            .map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
        crate::report::write_html(&predicted, &modelled.with_extension("html"))
            .map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
        let window = plan.load_duration().as_secs();
        runs.push(RunValidation {
            measured_file: shown,
            modelled_file: modelled.display().to_string(),
            scenario: plan.name.clone(),
            load_window_s: window,
            comparisons: compare(&predicted, &measured, window),
        });
    }
    let v = Validation {
        calibrated_on: low.iter().map(|(f, _)| f.clone()).collect(),
        calibration: cal,
        runs,
    };
    let json = args.out.join("validation.json");
    let text = serde_json::to_string_pretty(&v).map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
    std::fs::write(&json, text + "\n").map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot write {}: {e}", json.display()),
        )
    })?;
    let html = args.out.join("validation.html");
    std::fs::write(&html, render(&v)).map_err(|e| {
        (
            exit::RUN_FAILED,
            format!("cannot write {}: {e}", html.display()),
        )
    })?;
    print(&v);
    println!("{}", json.display());
    println!("{}", html.display());
    Ok(())
}

fn shown(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

fn error_text(c: &Comparison) -> String {
    match c.error {
        Some(e) => format!("{:+.1} %", e * 100.0),
        None => "—".into(),
    }
}

fn print(v: &Validation) {
    eprintln!("calibrated on {}", v.calibrated_on.join(", "));
    for run in &v.runs {
        eprintln!(
            "\n{} ({}, first {} s)",
            run.scenario, run.measured_file, run.load_window_s
        );
        eprintln!(
            "  {:<28} {:>12} {:>12} {:>9}  goal",
            "metric", "predicted", "measured", "error"
        );
        for c in &run.comparisons {
            let verdict = match c.within {
                Some(true) => "within",
                Some(false) => "MISSED",
                None => "n/a",
            };
            eprintln!(
                "  {:<28} {:>12} {:>12} {:>9}  ±{:.0} % {verdict}",
                c.metric,
                shown(c.predicted),
                shown(c.measured),
                error_text(c),
                c.goal * 100.0
            );
        }
    }
}

fn render(v: &Validation) -> String {
    let mut body = String::from("<h1>Capacity model: predicted against measured</h1>");
    body.push_str(&format!(
        "<p class=\"sub\">Calibrated on {} only; each run below was modelled from its own scenario as run and compared over its load window (the measured quiet sync after the load has no counterpart in the model). Goals: counts, rates and queue peaks within ±{:.0} %, latencies within ±{:.0} %. Server capacity: {:.2} ({}).</p>",
        esc(&v.calibrated_on.join(", ")),
        COUNT_GOAL * 100.0,
        P99_GOAL * 100.0,
        v.calibration.capacity.value,
        esc(&v.calibration.capacity.from)
    ));
    for run in &v.runs {
        body.push_str(&format!(
            "<section><h2>{} — first {} s</h2><p class=\"sub\">measured: {}<br>modelled: {}</p><table class=\"nums\"><tr><th>metric</th><th>predicted</th><th>measured</th><th>error</th><th>goal</th></tr>",
            esc(&run.scenario),
            run.load_window_s,
            esc(&run.measured_file),
            esc(&run.modelled_file)
        ));
        for c in &run.comparisons {
            let badge = match c.within {
                Some(true) => "<span class=\"badge pass\">within</span>",
                Some(false) => "<span class=\"badge fail\">missed</span>",
                None => "<span class=\"badge\">n/a</span>",
            };
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>±{:.0} % {badge}</td></tr>",
                esc(&c.metric),
                shown(c.predicted),
                shown(c.measured),
                error_text(c),
                c.goal * 100.0
            ));
        }
        body.push_str("</table></section>");
    }
    body.push_str("<section><h2>Service times used</h2><table class=\"nums\"><tr><th>operation</th><th>p50 ms</th><th>p99 ms</th><th>from</th></tr>");
    for (name, s) in &v.calibration.service {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{:.2}</td><td>{:.2}</td><td style=\"text-align:left\">{}</td></tr>",
            esc(name),
            s.p50_ms.value,
            s.p99_ms.value,
            esc(&s.p50_ms.from)
        ));
    }
    body.push_str("</table></section>");
    page("syncstorm · model validation", &body)
}
