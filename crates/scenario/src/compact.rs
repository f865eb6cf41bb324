//! The compact test plan, after Goose's `--test-plan`: `phases = "900,30s;900,1m;0,10s"`.
//!
//! Each step `TARGET,DURATION` reaches TARGET over DURATION, starting from the level the
//! previous step of the same model left (0 at first). TARGET is a device count (`900`), a share
//! of the population (`50%`) — closed model — or app opens per second (`100/s`) — open model.
//! The string is expanded into `[[phases]]` tables before validation, so the document as run
//! and every error message show ordinary phases. Handy with `--set 'phases=1000,30s;1000,5m'`.

use crate::duration::{format_duration, parse_duration};

const FORM: &str = "write steps TARGET,DURATION separated by ';', TARGET being devices (900 or 50%) or app opens per second (100/s), e.g. \"900,30s;900,1m\"";

/// Replaces a string `phases` with the equivalent array of phase tables.
pub(crate) fn expand_phases(doc: &mut toml::Value) -> Result<(), String> {
    let Some(toml::Value::String(plan)) = doc.get("phases") else {
        return Ok(());
    };
    let plan = plan.clone();
    let tables = parse_plan(&plan)
        .map_err(|why| format!("phases = {plan:?} is not a test plan: {why}; {FORM}"))?;
    if let Some(root) = doc.as_table_mut() {
        root.insert("phases".into(), toml::Value::Array(tables));
    }
    Ok(())
}

fn parse_plan(plan: &str) -> Result<Vec<toml::Value>, String> {
    let mut last_rate: Option<f64> = None;
    let mut phases = Vec::new();
    for (i, step) in plan.split(';').map(str::trim).enumerate() {
        let (target, duration) = step
            .split_once(',')
            .ok_or_else(|| format!("step {} {step:?} has no ','", i + 1))?;
        let duration = parse_duration(duration)
            .map_err(|why| format!("step {} {:?} {why}", i + 1, duration.trim()))?;
        let mut table = toml::Table::new();
        table.insert("name".into(), format!("step-{}", i + 1).into());
        table.insert("duration".into(), format_duration(duration).into());
        let target = target.trim();
        if let Some(rate) = target.strip_suffix("/s") {
            let rate: f64 = rate.trim().parse().map_err(|_| {
                format!("step {} rate {target:?} is not a number per second", i + 1)
            })?;
            table.insert("arrival_rate".into(), last_rate.unwrap_or(rate).into());
            table.insert("ramp_to".into(), rate.into());
            last_rate = Some(rate);
        } else {
            table.insert("devices".into(), devices_value(target, i)?);
            table.insert("ramp".into(), format_duration(duration).into());
        }
        phases.push(toml::Value::Table(table));
    }
    Ok(phases)
}

fn devices_value(target: &str, i: usize) -> Result<toml::Value, String> {
    if target.ends_with('%') {
        return Ok(target.into());
    }
    target
        .replace('_', "")
        .parse::<i64>()
        .map(toml::Value::Integer)
        .map_err(|_| format!("step {} target {target:?} is not a device count", i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(plan: &str) -> Result<toml::Value, String> {
        let mut doc: toml::Value = toml::Value::Table(toml::Table::new());
        doc.as_table_mut()
            .unwrap()
            .insert("phases".into(), plan.into());
        expand_phases(&mut doc).map(|()| doc["phases"].clone())
    }

    #[test]
    fn closed_steps_ramp_to_their_count_over_their_duration() {
        let phases = expanded("900,30s; 50%,1m").unwrap();
        assert_eq!(phases[0]["devices"].as_integer(), Some(900));
        assert_eq!(phases[0]["ramp"].as_str(), Some("30s"));
        assert_eq!(phases[1]["devices"].as_str(), Some("50%"));
        assert_eq!(phases[1]["duration"].as_str(), Some("1m"));
    }

    #[test]
    fn open_steps_ramp_from_the_previous_rate() {
        let phases = expanded("100/s,10s;300/s,20s").unwrap();
        assert_eq!(phases[0]["arrival_rate"].as_float(), Some(100.0));
        assert_eq!(phases[1]["arrival_rate"].as_float(), Some(100.0));
        assert_eq!(phases[1]["ramp_to"].as_float(), Some(300.0));
    }

    #[test]
    fn bad_steps_are_named() {
        let err = expanded("900,30s;lots,1m").unwrap_err();
        assert!(
            err.contains("step 2 target \"lots\" is not a device count"),
            "{err}"
        );
        let err = expanded("900").unwrap_err();
        assert!(err.contains("step 1 \"900\" has no ','"), "{err}");
        let err = expanded("900,3x").unwrap_err();
        assert!(err.contains("step 1 \"3x\" is not a duration"), "{err}");
    }
}
