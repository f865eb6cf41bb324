//! The oracle as a worker runs it: the devices of its own users against the server's rows.
//! Adapter over `crate::oracle` (owned by the device/oracle helper), so the worker has one
//! call whatever that module's shape.

use syncstorm_device::Device;

use super::task::WorkerTask;
use crate::result::OracleResult;

/// Checks the worker's users; `Err` says in one sentence why it could not run.
pub async fn check(task: &WorkerTask, devices: &[Device]) -> Result<OracleResult, String> {
    let Some(_database_url) = task.endpoints.database_url.as_deref() else {
        return Err("no database URL: the oracle needs to read the server's rows".into());
    };
    let _ = devices;
    Err("the oracle module is not part of this build yet".into())
}
