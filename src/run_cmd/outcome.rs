//! Turning what the swarm, the probes and the oracle produced into the versioned result, and
//! the result into an exit code.

use chrono::{DateTime, Utc};
use syncstorm_scenario::RunPlan;

use crate::cli::exit;
use crate::result::{
    CoordinatedOmission, OracleResult, Outcome, Probes, RunResult, RunStatus, ScenarioInfo,
    ShardId, thresholds,
};
use crate::swarm::coordinator::SwarmOutcome;
use crate::swarm::shard::Shard;
use crate::swarm::task::WorkerSummary;

/// Counter: devices whose final quiet sync finished within `run.quiesce`.
pub const DEVICES_QUIESCED: &str = "devices_quiesced";
/// Counter: devices still syncing (or never back online) when `run.quiesce` ran out; the
/// oracle judges them as they are, so their users may show as not converged.
pub const DEVICES_NOT_QUIESCED: &str = "devices_not_quiesced";
/// Oracle examples kept in the result (the rest are counted).
const MAX_EXAMPLES: usize = 20;

/// Everything a finished (or stopped) run hands to the result.
pub struct RunParts {
    pub started_at: DateTime<Utc>,
    pub duration_s: f64,
    pub shard: Shard,
    pub swarm: SwarmOutcome,
    pub probes: Probes,
    pub resources: crate::resources::Resources,
    /// A failure before or outside the swarm (seeding, target), one sentence.
    pub failure: Option<String>,
}

/// Sums the workers' oracle verdicts; `None` when no worker ran it.
pub fn merge_oracle(summaries: &[WorkerSummary]) -> Option<OracleResult> {
    let verdicts: Vec<&OracleResult> = summaries.iter().filter_map(|s| s.oracle.as_ref()).collect();
    if verdicts.is_empty() {
        return None;
    }
    let mut total = OracleResult::default();
    for v in verdicts {
        total.add(v, MAX_EXAMPLES);
    }
    Some(total)
}

fn coordinated_omission(swarm: &SwarmOutcome) -> CoordinatedOmission {
    use crate::swarm::fleet::LATE_ARRIVAL;
    use syncstorm_metrics::counter::{ARRIVAL_LAG_MS_TOTAL, ARRIVALS};
    let arrivals = swarm.total.counter(ARRIVALS);
    if arrivals == 0 {
        return CoordinatedOmission {
            correction: "none".into(),
            note: "No open-model phase ran: closed-model latencies are measured per request."
                .into(),
        };
    }
    let late = swarm
        .total
        .counter(syncstorm_metrics::counter::ARRIVALS_LATE);
    let mean = swarm.total.counter(ARRIVAL_LAG_MS_TOTAL) as f64 / arrivals as f64;
    CoordinatedOmission {
        correction: "intended_start".into(),
        note: format!(
            "Open-model app opens are scheduled ahead of time and never wait for responses; \
             the sync each open starts, and that sync's first token check, are timed from the \
             open's intended instant (wrk2's correction), so a late generator cannot hide \
             queueing. {arrivals} opens were delivered, {late} more than {} ms after their \
             intended instant (mean delay {mean:.1} ms).",
            LATE_ARRIVAL.as_millis()
        ),
    }
}

/// Builds the result and decides the exit code it carries.
pub fn build(plan: &RunPlan, parts: RunParts) -> RunResult {
    let scenario = ScenarioInfo {
        name: plan.name.clone(),
        question: (!plan.description.is_empty()).then(|| plan.description.clone()),
        as_run: crate::target::redact_document(plan.document_json()),
    };
    let mut r = RunResult::new(scenario, parts.started_at);
    r.duration_s = parts.duration_s;
    r.plan = Some(plan.target.plan.clone());
    if parts.shard != Shard::WHOLE {
        r.shard = Some(ShardId {
            index: parts.shard.index,
            count: parts.shard.count,
        });
    }
    let mut failures = parts.failure.into_iter().collect::<Vec<_>>();
    if let Err(e) = r.set_metrics(&parts.swarm.total, parts.swarm.series.clone()) {
        failures.push(format!("the metrics could not be summarised: {e}"));
    }
    let (quiesced, not_quiesced) = parts.swarm.summaries.iter().fold((0, 0), |(a, b), s| {
        (a + s.devices_quiesced, b + s.devices_not_quiesced)
    });
    r.counters.insert(DEVICES_QUIESCED.into(), quiesced);
    r.counters.insert(DEVICES_NOT_QUIESCED.into(), not_quiesced);
    r.coordinated_omission = coordinated_omission(&parts.swarm);
    r.generator = parts.swarm.generator.clone();
    r.probes = parts.probes;
    r.resources = parts.resources;
    r.oracle = merge_oracle(&parts.swarm.summaries);
    r.thresholds = thresholds::evaluate(&r, &plan.thresholds);
    failures.extend(parts.swarm.failures.iter().cloned());
    r.status = status(&r, &parts.swarm, failures);
    r
}

fn status(r: &RunResult, swarm: &SwarmOutcome, failures: Vec<String>) -> RunStatus {
    let skipped: Vec<String> = swarm
        .summaries
        .iter()
        .filter_map(|s| s.oracle_skipped.clone())
        .collect();
    let mut notes = failures.clone();
    let not_quiesced = r.counters.get(DEVICES_NOT_QUIESCED).copied().unwrap_or(0);
    if not_quiesced > 0 && !swarm.interrupted {
        notes.push(format!(
            "{not_quiesced} device(s) had not finished their quiet sync when run.quiesce ran out"
        ));
    }
    if let Some(first) = skipped.first() {
        notes.push(format!(
            "oracle skipped on {} worker(s): {first}",
            skipped.len()
        ));
    }
    let message = (!notes.is_empty()).then(|| notes.join("; "));
    let (outcome, exit_code) = if swarm.interrupted {
        (Outcome::Interrupted, exit::RUN_FAILED)
    } else if !failures.is_empty() {
        (Outcome::Failed, exit::RUN_FAILED)
    } else if !r.thresholds_passed() {
        (Outcome::Completed, exit::THRESHOLDS_BREACHED)
    } else {
        (Outcome::Completed, exit::OK)
    };
    RunStatus {
        outcome,
        exit_code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(checked: u64, lost: u64, examples: usize) -> WorkerSummary {
        WorkerSummary {
            oracle: Some(OracleResult {
                users_checked: checked,
                users_converged: checked - lost,
                lost_updates: lost,
                skipped_rows: 0,
                fk_errors: 1,
                examples: (0..examples).map(|i| format!("case {i}")).collect(),
                ..OracleResult::default()
            }),
            ..WorkerSummary::default()
        }
    }

    #[test]
    fn oracle_verdicts_sum_over_workers_and_keep_a_few_examples() {
        let total = merge_oracle(&[
            summary(10, 1, 15),
            WorkerSummary::default(),
            summary(5, 0, 15),
        ])
        .unwrap();
        assert_eq!((total.users_checked, total.users_converged), (15, 14));
        assert_eq!((total.lost_updates, total.fk_errors), (1, 2));
        assert_eq!(total.examples.len(), MAX_EXAMPLES);
        assert!(merge_oracle(&[WorkerSummary::default()]).is_none());
    }
}
