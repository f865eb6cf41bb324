//! Cross-field rules: raw `Scenario` → `RunPlan`, or one sentence naming the field.

use crate::dist::RowDist;
use crate::error::{ScenarioError, did_you_mean};
use crate::plan::*;
use crate::raw::{self, DistName, RowsSpec, Scenario};
use crate::threshold::Threshold;
use std::collections::BTreeMap;
use std::time::Duration;
use syncstorm_plans::{PlanError, SupabasePlan};

type Checked<T> = Result<T, ScenarioError>;

/// Builds field errors for one file.
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    /// `path` then `message`: "population.users = 0 must be at least 1".
    fn err(&self, path: impl Into<String>, message: impl std::fmt::Display) -> ScenarioError {
        let path = path.into();
        ScenarioError::Field {
            file: self.file.to_string(),
            message: format!("{path} {message}"),
            path,
        }
    }

    fn fraction(&self, path: &str, v: f64) -> Checked<f64> {
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(self.err(
                path,
                format_args!("= {v} is not a fraction; expected a number from 0 to 1"),
            ))
        }
    }

    fn positive(&self, path: &str, v: f64, what: &str) -> Checked<f64> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.err(
                path,
                format_args!("= {v} is not valid; expected {what} greater than 0"),
            ))
        }
    }

    fn nonzero(&self, path: &str, d: Duration) -> Checked<Duration> {
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
    let cx = Ctx { file };
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
    cx: &Ctx,
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

fn check_name(cx: &Ctx, name: &str) -> Checked<String> {
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

fn check_target(cx: &Ctx, t: raw::TargetSpec) -> Checked<Target> {
    let mut plan = SupabasePlan::preset(&t.plan).map_err(|_| {
        let names = syncstorm_plans::names();
        let hint = did_you_mean(&t.plan, names.iter().copied());
        cx.err(
            "target.plan",
            format_args!(
                "= {:?} is not allowed; expected one of: {}{hint}",
                t.plan,
                names.join(", ")
            ),
        )
    })?;
    let mut applied = Vec::new();
    for (field, value) in flatten(&t.plan_overrides, "") {
        plan.set(&field, &value).map_err(|e| {
            let path = format!("target.plan_overrides.{field:?}");
            match e {
                PlanError::BadValue { reason, .. } => {
                    cx.err(path, format_args!("= {value} is not valid; {reason}"))
                }
                _ => {
                    let known = syncstorm_plans::OVERRIDABLE;
                    let hint = did_you_mean(&field, known.iter().copied());
                    cx.err(
                        path,
                        format_args!("is not a plan field; allowed: {}{hint}", known.join(", ")),
                    )
                }
            }
        })?;
        applied.push((field, value));
    }
    if let Some(rate) = t.max_request_rate {
        cx.positive("target.max_request_rate", rate, "requests per second")?;
    }
    let kind = match t.kind {
        raw::TargetKindName::Embedded => {
            for (field, set) in [
                ("url", t.url.is_some()),
                ("database_url", t.database_url.is_some()),
                ("allow_hosts", !t.allow_hosts.is_empty()),
            ] {
                if set {
                    return Err(cx.err(
                        format!("target.{field}"),
                        "is only for kind = \"supabase\"; the embedded stack runs on loopback",
                    ));
                }
            }
            TargetKind::Embedded
        }
        raw::TargetKindName::Supabase => TargetKind::Supabase {
            url: check_url(cx, t.url)?,
            allow_hosts: t.allow_hosts,
            database_url: t.database_url,
        },
    };
    Ok(Target {
        kind,
        plan,
        plan_overrides: applied,
        max_request_rate: t.max_request_rate,
    })
}

fn check_url(cx: &Ctx, url: Option<String>) -> Checked<String> {
    match url {
        None => Err(cx.err("target.url", "is missing; kind = \"supabase\" needs the project URL, e.g. --set target.url=$SUPABASE_URL")),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(u.trim_end_matches('/').to_string()),
        Some(u) => Err(cx.err("target.url", format_args!("= {u:?} is not valid; expected an http:// or https:// URL"))),
    }
}

/// `{ realtime = { max_connections = 1 } }` → `("realtime.max_connections", "1")`.
fn flatten(table: &toml::Table, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => out.extend(flatten(inner, &name)),
            toml::Value::String(s) => out.push((name, s.clone())),
            other => out.push((name, other.to_string())),
        }
    }
    out
}

fn check_population(cx: &Ctx, p: raw::PopulationSpec) -> Checked<Population> {
    if p.users == 0 {
        return Err(cx.err(
            "population.users",
            "= 0 is not valid; expected at least 1 user",
        ));
    }
    let devices_per_user = u32::try_from(p.devices_per_user)
        .ok()
        .filter(|n| (1..=16).contains(n))
        .ok_or_else(|| {
            cx.err(
                "population.devices_per_user",
                format_args!(
                    "= {} is not valid; expected a whole number from 1 to 16",
                    p.devices_per_user
                ),
            )
        })?;
    if !(4..=31).contains(&p.password_hash_cost) {
        return Err(cx.err(
            "population.password_hash_cost",
            format_args!(
                "= {} is not valid; bcrypt costs go from 4 to 31",
                p.password_hash_cost
            ),
        ));
    }
    let mut rows = default_rows();
    for (table, spec) in p.rows {
        let path = format!("population.rows.{table}");
        if !TABLES.contains(&table.as_str()) {
            let hint = did_you_mean(&table, TABLES.iter().copied());
            return Err(cx.err(
                path,
                format_args!(
                    "is not a synced table; allowed: {}{hint}",
                    TABLES.join(", ")
                ),
            ));
        }
        rows.insert(table, check_dist(cx, &path, spec)?);
    }
    Ok(Population {
        users: p.users,
        devices_per_user,
        rows,
        password_hash_cost: p.password_hash_cost,
    })
}

/// Rows per user when the scenario names none: a small household's finances.
fn default_rows() -> BTreeMap<String, RowDist> {
    let fixed = |n| RowDist::Fixed { n };
    BTreeMap::from([
        ("wallets".to_string(), fixed(2)),
        ("channels".to_string(), fixed(3)),
        ("categories_user".to_string(), fixed(12)),
        (
            "transactions".to_string(),
            RowDist::Lognormal {
                median: 200,
                sigma: 1.0,
                max: 5_000,
            },
        ),
        ("plans".to_string(), fixed(4)),
    ])
}

fn check_dist(cx: &Ctx, path: &str, spec: RowsSpec) -> Checked<RowDist> {
    let d = match spec {
        RowsSpec::Count(n) => return Ok(RowDist::Fixed { n }),
        RowsSpec::Dist(d) => d,
    };
    let unused = |fields: &[(&str, bool)]| -> Checked<()> {
        match fields.iter().find(|(_, set)| *set) {
            Some((f, _)) => Err(cx.err(
                format!("{path}.{f}"),
                format_args!("does not apply to dist = {:?}", dist_name(d.dist)),
            )),
            None => Ok(()),
        }
    };
    let need = |v: Option<u64>, f: &str| {
        v.ok_or_else(|| {
            cx.err(
                format!("{path}.{f}"),
                format_args!("is missing; dist = {:?} needs it", dist_name(d.dist)),
            )
        })
    };
    match d.dist {
        DistName::Fixed => {
            unused(&[
                ("min", d.min.is_some()),
                ("max", d.max.is_some()),
                ("median", d.median.is_some()),
                ("sigma", d.sigma.is_some()),
            ])?;
            Ok(RowDist::Fixed { n: need(d.n, "n")? })
        }
        DistName::Uniform => {
            unused(&[
                ("n", d.n.is_some()),
                ("median", d.median.is_some()),
                ("sigma", d.sigma.is_some()),
            ])?;
            let (min, max) = (need(d.min, "min")?, need(d.max, "max")?);
            if min > max {
                return Err(cx.err(
                    format!("{path}.min"),
                    format_args!("= {min} is larger than max = {max}"),
                ));
            }
            Ok(RowDist::Uniform { min, max })
        }
        DistName::Lognormal => {
            unused(&[("n", d.n.is_some()), ("min", d.min.is_some())])?;
            let (median, max) = (need(d.median, "median")?, need(d.max, "max")?);
            if median == 0 || median > max {
                return Err(cx.err(
                    format!("{path}.median"),
                    format_args!("= {median} is not valid; expected from 1 to max = {max}"),
                ));
            }
            let sigma =
                cx.positive(&format!("{path}.sigma"), d.sigma.unwrap_or(1.0), "a spread")?;
            Ok(RowDist::Lognormal { median, sigma, max })
        }
    }
}

fn dist_name(d: DistName) -> &'static str {
    match d {
        DistName::Fixed => "fixed",
        DistName::Uniform => "uniform",
        DistName::Lognormal => "lognormal",
    }
}

fn check_phases(
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

fn check_behaviour(cx: &Ctx, b: raw::BehaviourSpec, load_length: Duration) -> Checked<Behaviour> {
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
    })
}

fn check_bulk_import(
    cx: &Ctx,
    bi: raw::BulkImportSpec,
    load_length: Duration,
) -> Checked<BulkImport> {
    let fraction = cx.fraction("behaviour.bulk_import.fraction", bi.fraction)?;
    if bi.rows == 0 {
        return Err(cx.err(
            "behaviour.bulk_import.rows",
            "= 0 is not valid; expected at least 1 row",
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
                "= {:?} is not before the end of the load ({})",
                crate::format_duration(bi.at.0),
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

fn check_faults(cx: &Ctx, f: raw::FaultsSpec, load_length: Duration) -> Checked<Faults> {
    let mut outages = Vec::new();
    for (i, o) in f.outages.iter().enumerate() {
        let path = format!("faults.outages.{i}");
        if o.start.0 >= load_length {
            return Err(cx.err(format!("{path}.start"), format_args!("= {:?} is not before the end of the load ({}), so the outage would never happen", crate::format_duration(o.start.0), crate::format_duration(load_length))));
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

fn check_run(cx: &Ctx, r: raw::RunSpec) -> Checked<RunSettings> {
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
