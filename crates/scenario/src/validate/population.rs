//! `[population]`: users, devices and the rows seeded per user.

use super::{Checked, Ctx};
use crate::dist::RowDist;
use crate::error::did_you_mean;
use crate::plan::{Population, TABLES};
use crate::raw::{self, DistName, RowsSpec};
use std::collections::BTreeMap;

pub(super) fn check_population(cx: &Ctx<'_>, p: raw::PopulationSpec) -> Checked<Population> {
    if !(1..=MAX_USERS).contains(&p.users) {
        return Err(cx.err(
            "population.users",
            format_args!(
                "= {} is not valid; expected from 1 to 10,000,000 users",
                p.users
            ),
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

const MAX_USERS: u64 = 10_000_000;
/// Rows per user per table: far above any real user, low enough that sums cannot overflow.
pub(super) const MAX_ROWS: u64 = 10_000_000;

fn check_dist(cx: &Ctx<'_>, path: &str, spec: RowsSpec) -> Checked<RowDist> {
    let dist = check_dist_fields(cx, path, spec)?;
    if dist.max() > MAX_ROWS {
        return Err(cx.err(
            path.to_string(),
            format_args!(
                "can draw {} rows; expected at most 10,000,000 rows per user",
                dist.max()
            ),
        ));
    }
    Ok(dist)
}

fn check_dist_fields(cx: &Ctx<'_>, path: &str, spec: RowsSpec) -> Checked<RowDist> {
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
