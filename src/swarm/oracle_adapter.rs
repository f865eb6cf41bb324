//! The oracle as a worker runs it: the devices of its own users against the server's rows
//! (`crate::oracle`), turned into the result's mergeable counts and one-sentence examples.

use syncstorm_device::Device;

use super::task::WorkerTask;
use crate::oracle::{self, Anomaly, AnomalyKind, OracleVerdict};
use crate::result::OracleResult;

/// Checks the worker's users; `Err` says in one sentence why it could not run.
pub async fn check(task: &WorkerTask, devices: &[Device]) -> Result<OracleResult, String> {
    let Some(database_url) = task.endpoints.database_url.as_deref() else {
        return Err("no database URL: the oracle reads the server's rows by SQL".into());
    };
    let refs: Vec<&Device> = devices.iter().collect();
    let verdict = oracle::verify_url(database_url, &refs)
        .await
        .map_err(|e| e.to_string())?;
    Ok(to_result(&verdict))
}

/// The result's section from a verdict.
pub fn to_result(verdict: &OracleVerdict) -> OracleResult {
    OracleResult {
        users_checked: verdict.users_checked,
        users_converged: verdict.users_converged,
        lost_updates: verdict.lost_updates,
        skipped_rows: verdict.skipped_rows,
        fk_errors: verdict.fk_errors,
        overruled_writes: verdict.overruled_writes,
        devices_checked: verdict.devices_checked,
        rls: verdict.rls,
        examples: verdict.examples.iter().map(sentence).collect(),
        ..OracleResult::default()
    }
}

fn sentence(a: &Anomaly) -> String {
    let kind = match a.kind {
        AnomalyKind::NotConverged => "not converged",
        AnomalyKind::LostUpdate => "lost update",
        AnomalyKind::SkippedRow => "skipped row",
        AnomalyKind::OverruledWrite => "overruled write",
    };
    format!(
        "{kind}: user {} device {} {} row {}: {}",
        a.user, a.device, a.table, a.row, a.what
    )
}
