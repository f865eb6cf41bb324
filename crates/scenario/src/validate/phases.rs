//! `[[phases]]`: one load model per phase, ramps that fit, device counts the population has.

use super::{Checked, Ctx};
use crate::plan::{Arrivals, Load, Phase, Population};
use crate::raw;
use std::time::Duration;

/// Phases longer than a week are a typo; the bound also keeps sums of durations finite.
const MAX_PHASE: Duration = Duration::from_secs(7 * 24 * 3600);

pub(super) fn check_phases(
    cx: &Ctx<'_>,
    phases: &[raw::PhaseSpec],
    population: &Population,
) -> Checked<Vec<Phase>> {
    if phases.is_empty() {
        return Err(cx.err("phases", "is empty; add at least one [[phases]] entry with a duration and arrival_rate or devices"));
    }
    let total_devices = population.users * u64::from(population.devices_per_user);
    let mut out: Vec<Phase> = Vec::new();
    let (mut start, mut level) = (Duration::ZERO, 0u64);
    for (i, p) in phases.iter().enumerate() {
        let path = format!("phases.{i}");
        let duration = cx.nonzero(&format!("{path}.duration"), p.duration.0)?;
        if duration > MAX_PHASE {
            return Err(cx.err(
                format!("{path}.duration"),
                format_args!(
                    "= {} is too long; expected at most 7 days",
                    cx.written(&format!("{path}.duration"))
                ),
            ));
        }
        let load = check_load(cx, &path, p, duration, level, total_devices)?;
        if let Load::Closed { to, .. } = load {
            level = to;
        }
        let name = p.name.clone().unwrap_or_else(|| format!("phase-{}", i + 1));
        out.push(Phase {
            name,
            start,
            duration,
            load,
        });
        start += duration;
    }
    Ok(out)
}

fn check_load(
    cx: &Ctx<'_>,
    path: &str,
    p: &raw::PhaseSpec,
    duration: Duration,
    from: u64,
    total: u64,
) -> Checked<Load> {
    let conflict = |open: &str, closed: &str| {
        cx.err(format!("{path}.{closed}"), format_args!("belongs to the closed model and {path}.{open} to the open model; a phase uses exactly one"))
    };
    match (p.arrival_rate, p.devices) {
        (Some(_), Some(_)) => Err(conflict("arrival_rate", "devices")),
        (None, None) => Err(cx.err(path.to_string(), "has no load model; set arrival_rate (open model: app opens per second) or devices (closed model)")),
        (Some(rate), None) => {
            if p.ramp.is_some() { return Err(conflict("arrival_rate", "ramp")); }
            if p.spawn_rate.is_some() { return Err(conflict("arrival_rate", "spawn_rate")); }
            let from_rate = non_negative(cx, &format!("{path}.arrival_rate"), rate)?;
            let to_rate = match p.ramp_to { Some(r) => non_negative(cx, &format!("{path}.ramp_to"), r)?, None => from_rate };
            let arrivals = match p.arrivals.unwrap_or_default() { raw::ArrivalsName::Poisson => Arrivals::Poisson, raw::ArrivalsName::Uniform => Arrivals::Uniform };
            Ok(Load::Open { from_rate, to_rate, arrivals })
        }
        (None, Some(spec)) => {
            let to = match spec {
                raw::DevicesSpec::Count(n) => n,
                raw::DevicesSpec::Percent(pct) => (pct / 100.0 * total as f64).round() as u64,
            };
            if p.ramp_to.is_some() { return Err(conflict("ramp_to", "devices")); }
            if p.arrivals.is_some() { return Err(conflict("arrivals", "devices")); }
            if to > total {
                return Err(cx.err(format!("{path}.devices"), format_args!("= {to} is more than the population has; expected at most users × devices_per_user = {total}")));
            }
            let ramp = closed_ramp(cx, path, p, from.abs_diff(to), duration)?;
            Ok(Load::Closed { from, to, ramp })
        }
    }
}

/// The ramp's length from `ramp` or `spawn_rate`; it must fit in the phase.
fn closed_ramp(
    cx: &Ctx<'_>,
    path: &str,
    p: &raw::PhaseSpec,
    change: u64,
    phase: Duration,
) -> Checked<Duration> {
    let shown = crate::format_duration(phase);
    match (p.ramp, p.spawn_rate) {
        (Some(_), Some(_)) => Err(cx.err(
            format!("{path}.spawn_rate"),
            format_args!("and {path}.ramp both pace the ramp; set one of them"),
        )),
        (Some(r), None) if r.0 > phase => Err(cx.err(
            format!("{path}.ramp"),
            format_args!(
                "= {} is longer than the phase ({shown:?}); lengthen the phase or ramp faster",
                cx.written(&format!("{path}.ramp"))
            ),
        )),
        (Some(r), None) => Ok(r.0),
        (None, Some(rate)) => {
            let rate = cx.positive(&format!("{path}.spawn_rate"), rate, "devices per second")?;
            let needed = (change as f64 / phase.as_secs_f64() * 100.0).ceil() / 100.0;
            if rate < needed {
                return Err(cx.err(
                    format!("{path}.spawn_rate"),
                    format_args!(
                        "= {} is too slow to move {change} devices within the phase ({shown:?}); expected at least {needed} devices per second",
                        short_number(rate)
                    ),
                ));
            }
            Ok(Duration::from_secs_f64(change as f64 / rate))
        }
        (None, None) => Ok(Duration::ZERO),
    }
}

fn non_negative(cx: &Ctx<'_>, path: &str, v: f64) -> Checked<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(cx.err(
            path,
            format_args!("= {v} is not valid; expected app opens per second, 0 or more"),
        ))
    }
}

/// `1`, `0.5`, or `1e-300` rather than three hundred zeros.
fn short_number(v: f64) -> String {
    if v == 0.0 || (1e-6..1e15).contains(&v.abs()) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}
