//! `syncstorm capacity --confirm`: the real harness — `syncstorm run`, a child process of this
//! binary, against the scenario's own target — at the knee the model found and at half of it,
//! each judged by the same SLOs, so a measured point stands beside the modelled ones.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use syncstorm_scenario::Threshold;

use super::capacity::{Point, point_of};
use crate::cli::exit;
use crate::result::RunResult;

/// One measured point.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub point: Point,
    /// What the model said at the same value (`None`: the search did not model that point).
    pub modelled_holds: Option<bool>,
    /// The measured run's result file.
    pub result: PathBuf,
}

/// Runs the scenario with `overrides` (the search's own for this point, `(value, users)`,
/// named `at` in messages) into `out`, and judges the result by `slos`.
pub fn measure(
    scenario: &Path,
    overrides: &[String],
    slos: &[Threshold],
    (value, users): (f64, u64),
    at: &str,
    out: &Path,
) -> Result<(Point, PathBuf), (i32, String)> {
    let exe = std::env::current_exe()
        .map_err(|e| (exit::RUN_FAILED, format!("cannot find this binary: {e}")))?;
    let mut run = Command::new(exe);
    run.arg("run").arg(scenario).arg("--out").arg(out);
    for o in overrides {
        run.args(["--set", o]);
    }
    eprintln!("  confirming at {at}: syncstorm run …");
    let child = run
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| (exit::RUN_FAILED, format!("cannot start syncstorm run: {e}")))?;
    let code = child.status.code().unwrap_or(-1);
    if code != exit::OK && code != exit::THRESHOLDS_BREACHED {
        return Err((
            exit::RUN_FAILED,
            format!("the confirming run at {at} exited {code}; its messages are above"),
        ));
    }
    let stdout = String::from_utf8_lossy(&child.stdout);
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result: "))
        .map(PathBuf::from)
        .ok_or_else(|| {
            (
                exit::RUN_FAILED,
                format!("the confirming run at {at} named no result file"),
            )
        })?;
    let mut r = RunResult::load(&path).map_err(|e| (exit::RUN_FAILED, e.to_string()))?;
    r.thresholds = crate::result::thresholds::evaluate(&r, slos);
    Ok((point_of(&r, value, users), path))
}
