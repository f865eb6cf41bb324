//! Evaluating the scenario's thresholds against a result (also after a merge, so thresholds
//! hold for the whole run and not per shard).

use syncstorm_scenario::{Metric, MetricKind, Threshold};

use super::{RunResult, ThresholdResult};

/// Evaluates every threshold; a metric with no data fails its threshold and says so.
pub fn evaluate(r: &RunResult, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| {
            let value = metric_value(r, &t.metric);
            ThresholdResult {
                expression: t.expression.clone(),
                value,
                shown: value.map_or("no data".into(), |v| shown(v, t.metric.kind())),
                passed: value.is_some_and(|v| t.check(v)),
            }
        })
        .collect()
}

/// Re-evaluates the thresholds a result already lists (by re-parsing their expressions)
/// against its current figures; used after merging shards.
pub fn reevaluate(r: &mut RunResult) {
    let parsed: Vec<Threshold> = r
        .thresholds
        .iter()
        .filter_map(|t| Threshold::parse_expression(&t.expression).ok())
        .collect();
    r.thresholds = evaluate(r, &parsed);
}

/// The value a metric names, in its canonical unit (ms, fraction, count).
pub fn metric_value(r: &RunResult, metric: &Metric) -> Option<f64> {
    match metric {
        Metric::Operation { operation, stat } => {
            let o = r.operations.get(operation)?;
            Some(match stat.as_str() {
                "p50" => o.p50_ms,
                "p90" => o.p90_ms,
                "p99" => o.p99_ms,
                "p999" => o.p999_ms,
                "max" => o.max_ms,
                "count" => o.count as f64,
                "errors" => o.errors as f64,
                "error_rate" => o.error_rate(),
                _ => return None,
            })
        }
        Metric::Errors { rate: true } => {
            let total = r.total_count();
            (total > 0).then(|| r.total_errors() as f64 / total as f64)
        }
        Metric::Errors { rate: false } => Some(r.total_errors() as f64),
        Metric::Oracle(field) => {
            let o = r.oracle.as_ref()?;
            Some(match field.as_str() {
                "users_checked" => o.users_checked,
                "users_converged" => o.users_converged,
                "unconverged_users" => o.users_checked.saturating_sub(o.users_converged),
                "lost_updates" => o.lost_updates,
                "skipped_rows" => o.skipped_rows,
                "fk_errors" => o.fk_errors,
                "overruled_writes" => o.overruled_writes,
                "rows_refused" => o.rows_refused,
                "quiet_syncs_failed" => o.quiet_syncs_failed,
                "devices_unchecked" => o.devices_started.saturating_sub(o.devices_checked),
                "rls_attempts" => o.rls.attempts,
                "rls_leaks" => o.rls.leaks(),
                _ => return None,
            } as f64)
        }
        Metric::Peak(field) => match field.as_str() {
            "devices" => Some(r.peak.devices as f64),
            "websockets" => Some(r.peak.websockets as f64),
            _ => None,
        },
        Metric::Counter(name) => Some(r.counters.get(name).copied().unwrap_or(0) as f64),
    }
}

fn shown(v: f64, kind: MetricKind) -> String {
    match kind {
        MetricKind::Duration => crate::figures::ms(v),
        MetricKind::Rate => crate::figures::pct(v),
        MetricKind::Count => format!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{OperationResult, OracleResult};

    fn result() -> RunResult {
        let mut r = RunResult::default();
        let op = OperationResult {
            count: 200,
            errors: 4,
            p99_ms: 612.0,
            ..Default::default()
        };
        r.operations.insert("token_check".into(), op);
        r.oracle = Some(OracleResult {
            users_checked: 10,
            users_converged: 9,
            ..Default::default()
        });
        r
    }

    #[test]
    fn thresholds_pass_and_fail_on_the_figures() {
        let r = result();
        let rules: Vec<Threshold> = [
            "token_check.p99 < 500ms",
            "errors.rate < 5%",
            "oracle.unconverged_users == 0",
            "peak.devices >= 0",
        ]
        .iter()
        .map(|e| Threshold::parse_expression(e).unwrap())
        .collect();
        let out = evaluate(&r, &rules);
        let passed: Vec<bool> = out.iter().map(|t| t.passed).collect();
        assert_eq!(passed, [false, true, false, true]);
        assert_eq!(out[0].shown, "612 ms");
        assert_eq!(out[1].shown, "2.0 %");
    }

    #[test]
    fn a_metric_without_data_fails() {
        let rule = Threshold::parse_expression("push.p99 < 1s").unwrap();
        let out = evaluate(&RunResult::default(), &[rule]);
        assert!(!out[0].passed);
        assert_eq!(out[0].shown, "no data");
    }
}
