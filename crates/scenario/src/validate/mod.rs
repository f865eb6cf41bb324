//! Cross-field rules: raw `Scenario` → `RunPlan`, or one sentence naming the field.

mod phases;
mod population;
mod target;

use crate::error::{ScenarioError, did_you_mean, printable};
use crate::plan::*;
use crate::raw::{self, Scenario};
use crate::threshold::Threshold;
use phases::check_phases;
use population::check_population;
use std::time::Duration;
use target::check_target;

pub(super) type Checked<T> = Result<T, ScenarioError>;

/// Builds field errors for one file.
pub(super) struct Ctx<'a> {
    file: &'a str,
    document: &'a toml::Value,
}

impl Ctx<'_> {
    /// The value at a dotted `path` as the author wrote it (`"100000h"`), for messages.
    pub(super) fn written(&self, path: &str) -> String {
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        crate::path::lookup(self.document, &keys)
            .map(crate::path::render_value)
            .unwrap_or_default()
    }

    /// `path` then `message`: "population.users = 0 must be at least 1".
    pub(super) fn err(
        &self,
        path: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> ScenarioError {
        let path = path.into();
        ScenarioError::Field {
            file: self.file.to_string(),
            message: printable(&format!("{path} {message}")).into_owned(),
            path,
        }
    }

    pub(super) fn fraction(&self, path: &str, v: f64) -> Checked<f64> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(self.err(
                path,
                format_args!("= {v} is not a fraction; expected a number from 0 to 1"),
            ))
        }
    }

    pub(super) fn positive(&self, path: &str, v: f64, what: &str) -> Checked<f64> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                path,
                format_args!("= {v} is not valid; expected {what} greater than 0"),
            ))
        }
    }

    pub(super) fn nonzero(&self, path: &str, d: Duration) -> Checked<Duration> {
        if d.is_zero() {
            Err(self.err(
                path,
                "= \"0s\" is not valid; expected a duration greater than 0",
            ))
        } else {
            Ok(d)
        }
    }
}

pub(crate) fn validate(file: &str, raw: Scenario, document: toml::Value) -> Checked<RunPlan> {
    let cx = Ctx {
        file,
        document: &document,
    };
    let name = check_name(&cx, &raw.scenario.name)?;
    let target = check_target(&cx, raw.target)?;
    let population = check_population(&cx, raw.population)?;
    let phases = check_phases(&cx, &raw.phases, &population)?;
    let load_length: Duration = phases.iter().map(|p| p.duration).sum();
    let behaviour = check_behaviour(&cx, raw.behaviour, load_length)?;
    let faults = check_faults(&cx, raw.faults, load_length)?;
    let thresholds = raw
        .thresholds
        .iter()
        .map(|(metric, cond)| {
            Threshold::parse(metric, cond)
                .map_err(|why| cx.err(format!("thresholds.{metric:?}"), why))
        })
        .collect::<Checked<Vec<_>>>()?;
    let thresholds = with_rls_rule(thresholds, &behaviour);
    Ok(RunPlan {
        name,
        description: raw.scenario.description.trim().to_string(),
        target,
        population,
        phases,
        behaviour,
        device: check_device(&cx, raw.device)?,
        faults,
        thresholds,
        run: check_run(&cx, raw.run)?,
        document,
    })
}

/// The device crate checks its own ranges and names the knob by its scenario path.
fn check_device(
    cx: &Ctx<'_>,
    knobs: syncstorm_device::DeviceKnobs,
) -> Checked<syncstorm_device::DeviceKnobs> {
    match knobs.validate().into_iter().next() {
        None => Ok(knobs),
        Some(sentence) => {
            let sentence = sentence.trim_end_matches('.');
            let (path, rest) = sentence.split_once(' ').unwrap_or((sentence, ""));
            Err(cx.err(path, rest))
        }
    }
}

fn check_name(cx: &Ctx<'_>, name: &str) -> Checked<String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(cx.err("scenario.name", format_args!("= {name:?} is not valid; expected letters, digits, '-', '_' or '.' (it names the result files)")))
    }
}

fn check_behaviour(
    cx: &Ctx<'_>,
    b: raw::BehaviourSpec,
    load_length: Duration,
) -> Checked<Behaviour> {
    if !(b.edits_per_hour.is_finite() && b.edits_per_hour >= 0.0) {
        return Err(cx.err(
            "behaviour.edits_per_hour",
            format_args!(
                "= {} is not valid; expected a number, 0 or more",
                b.edits_per_hour
            ),
        ));
    }
    let bulk_import = match b.bulk_import {
        None => None,
        Some(bi) => Some(check_bulk_import(cx, bi, load_length)?),
    };
    Ok(Behaviour {
        edits_per_hour: b.edits_per_hour,
        update_share: cx.fraction("behaviour.update_share", b.update_share)?,
        session_length: cx.nonzero("behaviour.session_length", b.session_length.0)?,
        background_pause: b.background_pause.0,
        background_socket: match b.background_socket {
            raw::BackgroundSocketName::Close => BackgroundSocket::Close,
            raw::BackgroundSocketName::Keep => BackgroundSocket::Keep,
        },
        bulk_import,
        snoop_fraction: cx.fraction("behaviour.snoop_fraction", b.snoop_fraction)?,
    })
}

/// A run that snoops fails on a leak: `oracle.rls_leaks == 0` unless the scenario has its
/// own rule on it.
fn with_rls_rule(mut thresholds: Vec<Threshold>, behaviour: &Behaviour) -> Vec<Threshold> {
    let metric = crate::threshold::Metric::Oracle("rls_leaks".to_string());
    if behaviour.snoop_fraction > 0.0 && !thresholds.iter().any(|t| t.metric == metric) {
        thresholds.push(Threshold::parse("oracle.rls_leaks", "== 0").expect("a valid rule"));
    }
    thresholds
}

fn check_bulk_import(
    cx: &Ctx<'_>,
    bi: raw::BulkImportSpec,
    load_length: Duration,
) -> Checked<BulkImport> {
    let fraction = cx.fraction("behaviour.bulk_import.fraction", bi.fraction)?;
    if !(1..=population::MAX_ROWS).contains(&bi.rows) {
        return Err(cx.err(
            "behaviour.bulk_import.rows",
            format_args!(
                "= {} is not valid; expected from 1 to 10,000,000 rows",
                bi.rows
            ),
        ));
    }
    if !TABLES.contains(&bi.table.as_str()) {
        let hint = did_you_mean(&bi.table, TABLES.iter().copied());
        return Err(cx.err(
            "behaviour.bulk_import.table",
            format_args!(
                "= {:?} is not a synced table; allowed: {}{hint}",
                bi.table,
                TABLES.join(", ")
            ),
        ));
    }
    if bi.at.0 >= load_length {
        return Err(cx.err(
            "behaviour.bulk_import.at",
            format_args!(
                "= {} is not before the end of the load ({})",
                cx.written("behaviour.bulk_import.at"),
                crate::format_duration(load_length)
            ),
        ));
    }
    Ok(BulkImport {
        fraction,
        rows: bi.rows,
        table: bi.table,
        at: bi.at.0,
    })
}

fn check_faults(cx: &Ctx<'_>, f: raw::FaultsSpec, load_length: Duration) -> Checked<Faults> {
    let mut outages = Vec::new();
    for (i, o) in f.outages.iter().enumerate() {
        let path = format!("faults.outages.{i}");
        if o.start.0 >= load_length {
            return Err(cx.err(
                format!("{path}.start"),
                format_args!(
                    "= {} is not before the end of the load ({}), so the outage would never happen",
                    cx.written(&format!("{path}.start")),
                    crate::format_duration(load_length)
                ),
            ));
        }
        outages.push(Outage {
            start: o.start.0,
            duration: cx.nonzero(&format!("{path}.duration"), o.duration.0)?,
            fraction: cx.fraction(&format!("{path}.fraction"), o.fraction)?,
        });
    }
    let clock_skew = match f.clock_skew {
        None => None,
        Some(s) => Some(ClockSkew {
            fraction: cx.fraction("faults.clock_skew.fraction", s.fraction)?,
            max: s.max.0,
        }),
    };
    Ok(Faults {
        outages,
        clock_skew,
    })
}

fn check_run(cx: &Ctx<'_>, r: raw::RunSpec) -> Checked<RunSettings> {
    if r.out.trim().is_empty() {
        return Err(cx.err(
            "run.out",
            "= \"\" is not valid; expected a directory, e.g. \"reports\"",
        ));
    }
    Ok(RunSettings {
        seed: r.seed,
        out: r.out.into(),
        workers: match r.workers {
            raw::WorkersSpec::Auto => Workers::Auto,
            raw::WorkersSpec::Count(n) => Workers::Count(n),
        },
        quiesce: cx.nonzero("run.quiesce", r.quiesce.0)?,
    })
}
