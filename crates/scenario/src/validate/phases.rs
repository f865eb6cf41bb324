//! `[[phases]]`: one load model per phase, ramps that fit, device counts the population has.

use super::{Checked, Ctx};
use crate::plan::{Arrivals, Load, Phase, Population};
use crate::raw;
use std::time::Duration;

pub(super) fn check_phases(
    cx: &Ctx,
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
    cx: &Ctx,
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
            let ramp = closed_ramp(cx, path, p, from.abs_diff(to))?;
            if ramp > duration {
                return Err(cx.err(format!("{path}.ramp"), format_args!("= {:?} is longer than the phase ({:?}); lengthen the phase or ramp faster", crate::format_duration(ramp), crate::format_duration(duration))));
            }
            Ok(Load::Closed { from, to, ramp })
        }
    }
}

fn closed_ramp(cx: &Ctx, path: &str, p: &raw::PhaseSpec, change: u64) -> Checked<Duration> {
    match (p.ramp, p.spawn_rate) {
        (Some(_), Some(_)) => Err(cx.err(
            format!("{path}.spawn_rate"),
            format_args!("and {path}.ramp both pace the ramp; set one of them"),
        )),
        (Some(r), None) => Ok(r.0),
        (None, Some(rate)) => {
            let rate = cx.positive(&format!("{path}.spawn_rate"), rate, "devices per second")?;
            Ok(Duration::from_secs_f64(change as f64 / rate))
        }
        (None, None) => Ok(Duration::ZERO),
    }
}

fn non_negative(cx: &Ctx, path: &str, v: f64) -> Checked<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(cx.err(
            path,
            format_args!("= {v} is not valid; expected app opens per second, 0 or more"),
        ))
    }
}
