//! Joining shard results into one run: histograms merged exactly, counters summed, series
//! aligned by second of wall-clock time, oracle figures summed.

use std::collections::{BTreeMap, BTreeSet};

use syncstorm_metrics::{OpSnapshot, TimeSeries, gauge};

use super::{OperationResult, OracleResult, Outcome, Peak, ResultError, RunResult, ShardRun};

/// Oracle examples kept in a merged result (each shard keeps its own few).
const MAX_EXAMPLES: usize = 20;

/// Merges shard results of one scenario. The server-side probes are taken from the first
/// shard that has any (every shard samples the same server); the shards' thresholds are
/// evaluated again over the merged figures.
pub fn merge_shards(shards: &[RunResult]) -> Result<RunResult, ResultError> {
    let first = shards
        .first()
        .ok_or_else(|| ResultError::Merge("no shard results were given".into()))?;
    check_same_run(shards)?;
    let on_server_clock = shards.iter().all(|s| s.clock.is_some());
    let start = shards
        .iter()
        .map(|s| aligned_start(s, on_server_clock))
        .min()
        .unwrap_or(first.started_at);
    let offset = |s: &RunResult| {
        (aligned_start(s, on_server_clock) - start)
            .num_milliseconds()
            .max(0) as f64
            / 1000.0
    };

    let mut merged = RunResult {
        started_at: start,
        shard: None,
        merged_shards: shards.len() as u32,
        clock: None,
        ..first.clone()
    };
    merged.shards = shards
        .iter()
        .map(|s| ShardRun {
            index: s.shard.map_or(0, |id| id.index),
            count: s.shard.map_or(1, |id| id.count),
            label: shard_label(s),
            machine: s.machine.clone(),
            start_offset_s: offset(s),
            late_start_s: s.setup.as_ref().and_then(|setup| setup.late_start_s),
            clock: s.clock,
            peak_devices: s.peak.devices,
            exit_code: s.status.exit_code,
        })
        .collect();
    merged.shards.sort_by_key(|s| s.index);
    merged.duration_s = shards
        .iter()
        .map(|s| offset(s) + s.duration_s)
        .fold(0.0, f64::max);
    merged.setup = merged_setup(shards);
    merged.operations = merge_operations(shards)?;
    merged.errors_by_kind = sum_maps(shards.iter().map(|s| &s.errors_by_kind));
    merged.counters = sum_maps(shards.iter().map(|s| &s.counters));
    let parts: Vec<(&TimeSeries, u64)> = shards
        .iter()
        .map(|s| (&s.timeseries, offset(s).round() as u64))
        .collect();
    merged.timeseries = TimeSeries::merge_many(&parts)?;
    merged.peak = merged_peak(shards, &merged.timeseries);
    merged.oracle = merge_oracle(shards);
    merged.status = merged_status(shards);
    merged.thresholds = shards.iter().flat_map(|s| s.thresholds.iter()).fold(
        Vec::new(),
        |mut acc: Vec<super::ThresholdResult>, t| {
            if !acc.iter().any(|a| a.expression == t.expression) {
                acc.push(t.clone());
            }
            acc
        },
    );
    super::thresholds::reevaluate(&mut merged);
    merged.set_risks();
    merged.probes = shards
        .iter()
        .find(|s| !s.probes.samples.is_empty())
        .map(|s| shift_probes(s, offset(s)))
        .unwrap_or_default();
    merged.generator = shards
        .iter()
        .flat_map(|s| {
            let label = shard_label(s);
            let shift = offset(s).round() as u64;
            s.generator.iter().cloned().map(move |mut g| {
                g.t += shift;
                g.worker = format!("{label} {}", g.worker);
                g
            })
        })
        .collect();
    Ok(merged)
}

/// When the shard's load started: on the target's clock when every shard measured its
/// offset (machines' clocks may disagree; the server is the one clock they share), else on
/// the shard's own.
fn aligned_start(s: &RunResult, on_server_clock: bool) -> chrono::DateTime<chrono::Utc> {
    match s.clock.filter(|_| on_server_clock) {
        Some(c) => s.started_at + chrono::Duration::milliseconds(c.offset_ms.round() as i64),
        None => s.started_at,
    }
}

fn check_same_run(shards: &[RunResult]) -> Result<(), ResultError> {
    let names: BTreeSet<&str> = shards.iter().map(|s| s.scenario.name.as_str()).collect();
    if names.len() > 1 {
        let list: Vec<&str> = names.into_iter().collect();
        return Err(ResultError::Merge(format!(
            "they come from different scenarios ({})",
            list.join(", ")
        )));
    }
    let mut seen = BTreeSet::new();
    for s in shards {
        if let Some(id) = s.shard
            && !seen.insert((id.index, id.count))
        {
            return Err(ResultError::Merge(format!(
                "shard {}/{} appears twice",
                id.index, id.count
            )));
        }
    }
    let counts: BTreeSet<u32> = seen.iter().map(|(_, c)| *c).collect();
    if counts.len() > 1 {
        return Err(ResultError::Merge(
            "the shards were cut for different shard counts".into(),
        ));
    }
    Ok(())
}

fn merge_operations(
    shards: &[RunResult],
) -> Result<BTreeMap<String, OperationResult>, ResultError> {
    let mut ops: BTreeMap<String, OpSnapshot> = BTreeMap::new();
    for s in shards {
        for (name, op) in &s.operations {
            ops.entry(name.clone())
                .or_default()
                .merge(&op.to_snapshot()?)?;
        }
    }
    ops.iter()
        .map(|(name, op)| Ok((name.clone(), OperationResult::of(op)?)))
        .collect()
}

fn sum_maps<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for map in maps {
        for (k, v) in map {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    out
}

/// Peaks come from the merged series (the shards' levels at the same second, summed); without
/// a series the sum of the shards' peaks is the best bound there is.
fn merged_peak(shards: &[RunResult], series: &TimeSeries) -> Peak {
    if series.points.is_empty() {
        return shards.iter().fold(Peak::default(), |acc, s| Peak {
            devices: acc.devices + s.peak.devices,
            websockets: acc.websockets + s.peak.websockets,
            syncs_in_flight: acc.syncs_in_flight + s.peak.syncs_in_flight,
        });
    }
    let peak = |name| series.peak(name).max(0) as u64;
    Peak {
        devices: peak(gauge::DEVICES_ACTIVE),
        websockets: peak(gauge::SOCKETS_OPEN),
        syncs_in_flight: peak(gauge::SYNCS_IN_FLIGHT),
    }
}

fn merge_oracle(shards: &[RunResult]) -> Option<OracleResult> {
    let mut out: Option<OracleResult> = None;
    for o in shards.iter().filter_map(|s| s.oracle.as_ref()) {
        out.get_or_insert_with(OracleResult::default)
            .add(o, MAX_EXAMPLES);
    }
    out
}

fn merged_status(shards: &[RunResult]) -> super::RunStatus {
    let worst = |o: Outcome| match o {
        Outcome::Completed => 0,
        Outcome::Interrupted => 1,
        Outcome::Failed => 2,
    };
    let outcome = shards
        .iter()
        .map(|s| s.status.outcome)
        .max_by_key(|o| worst(*o))
        .unwrap_or_default();
    let messages: Vec<String> = shards
        .iter()
        .filter_map(|s| {
            s.status
                .message
                .as_ref()
                .map(|m| format!("{}: {m}", shard_label(s)))
        })
        .collect();
    let mut message = messages.join("; ");
    if let Some(count) = shards.iter().find_map(|s| s.shard.map(|id| id.count))
        && shards.len() < count as usize
    {
        let note = missing_shards_note(shards, count);
        message = if message.is_empty() {
            note
        } else {
            format!("{note}; {message}")
        };
    }
    super::RunStatus {
        outcome,
        exit_code: shards.iter().map(|s| s.status.exit_code).max().unwrap_or(0),
        message: (!message.is_empty()).then_some(message),
    }
}

fn shard_label(s: &RunResult) -> String {
    match s.shard {
        Some(id) => format!("shard {}/{}", id.index, id.count),
        None => "run".into(),
    }
}

fn shift_probes(s: &RunResult, offset_s: f64) -> super::Probes {
    let mut probes = s.probes.clone();
    for sample in &mut probes.samples {
        sample.t += offset_s;
    }
    probes
}

fn missing_shards_note(shards: &[RunResult], count: u32) -> String {
    let present: BTreeSet<u32> = shards
        .iter()
        .filter_map(|s| s.shard.map(|i| i.index))
        .collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|i| i.to_string())
        .collect();
    format!(
        "merged {} of {count} shards; missing: {}",
        shards.len(),
        missing.join(", ")
    )
}

/// Shards set up side by side: the longest setup, the sums of what they created.
fn merged_setup(shards: &[RunResult]) -> Option<super::SetupInfo> {
    let mut setups = shards.iter().filter_map(|s| s.setup.as_ref());
    let mut total = setups.next()?.clone();
    for s in setups {
        total.duration_s = total.duration_s.max(s.duration_s);
        total.users += s.users;
        total.sessions += s.sessions;
        total.rows += s.rows;
        total.late_start_s = match (total.late_start_s, s.late_start_s) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    Some(total)
}
