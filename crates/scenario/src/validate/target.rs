//! `[target]`: which stack, which plan and its overrides, and what a real project needs.

use super::{Checked, Ctx};
use crate::error::did_you_mean;
use crate::plan::{Target, TargetKind};
use crate::raw;
use syncstorm_plans::{PlanError, SupabasePlan};

pub(super) fn check_target(cx: &Ctx<'_>, t: raw::TargetSpec) -> Checked<Target> {
    let (plan, applied) = check_plan(cx, &t)?;
    if let Some(rate) = t.max_request_rate {
        cx.positive("target.max_request_rate", rate, "requests per second")?;
    }
    let max_request_rate = t.max_request_rate;
    let durable = t.durability == raw::Durability::On;
    Ok(Target {
        durable,
        kind: check_kind(cx, t)?,
        plan,
        plan_overrides: applied,
        max_request_rate,
    })
}

/// The preset with every override applied, and the overrides as `(field, value)`.
fn check_plan(cx: &Ctx<'_>, t: &raw::TargetSpec) -> Checked<(SupabasePlan, Vec<(String, String)>)> {
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
    Ok((plan, applied))
}

fn check_kind(cx: &Ctx<'_>, t: raw::TargetSpec) -> Checked<TargetKind> {
    Ok(match t.kind {
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
    })
}

fn check_url(cx: &Ctx<'_>, url: Option<String>) -> Checked<String> {
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
