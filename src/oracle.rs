//! The correctness oracle: after the load stops and every device has had a final quiet sync,
//! it compares each user's devices with the server's own rows, read directly by SQL, never
//! through the devices' view (sync-protocol.md, "Correctness").
//!
//! Per user: `converged` (every device's rows equal the server's), `lost_updates`
//! (acknowledged writes neither stored nor superseded by a greater `updated_at`),
//! `skipped_rows` (server rows missing, or stale, on a device whose cursor for the table is at
//! or past the row's `updated_at`: the delta pull `updated_at > cursor` will never fetch them),
//! `fk_errors` (summed from the devices' pulls), and `overruled_writes` (a later edit in true
//! time that lost to an earlier one because the devices' clocks disagree). A few examples of
//! each anomaly are named.

mod judge;
mod overruled;
pub mod rls;
#[cfg(test)]
mod tests;
mod truth;

pub use judge::{DeviceView, judge_user};
pub use truth::{ServerTruth, read_truth};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use syncstorm_device::{Device, RowError, Table};
use uuid::Uuid;

/// Examples kept per anomaly kind.
pub const EXAMPLES_PER_KIND: usize = 5;

/// Users whose server rows are read in one query per table.
const USERS_PER_QUERY: usize = 500;

/// What the oracle found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleVerdict {
    pub users_checked: u64,
    pub users_converged: u64,
    pub devices_checked: u64,
    /// Rows the server holds for the checked users.
    pub server_rows: u64,
    /// Per device and row, its greatest acknowledged write lost.
    pub lost_updates: u64,
    /// Per device, server rows its cursor has passed without it holding them.
    pub skipped_rows: u64,
    pub fk_errors: u64,
    /// Writes that lost under LWW although they were the later edit in true time.
    pub overruled_writes: u64,
    /// A few of each kind, in the order found.
    pub examples: Vec<Anomaly>,
    /// The snooping devices' attempts on other users' rows and what got through.
    pub rls: rls::RlsFindings,
}

impl OracleVerdict {
    /// No anomaly of any kind.
    pub fn is_clean(&self) -> bool {
        self.users_converged == self.users_checked
            && self.lost_updates == 0
            && self.skipped_rows == 0
            && self.fk_errors == 0
            && self.overruled_writes == 0
            && self.rls.leaks() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    NotConverged,
    LostUpdate,
    SkippedRow,
    OverruledWrite,
}

/// One named anomaly: whose, where, and what exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub user: Uuid,
    pub device: u64,
    pub table: Table,
    pub row: Uuid,
    pub what: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("the oracle could not connect to PostgreSQL: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("the oracle could not read public.{table} from PostgreSQL: {source}")]
    Query {
        table: Table,
        source: tokio_postgres::Error,
    },
    #[error("the server holds a row the oracle cannot read: {0}")]
    BadRow(#[from] RowError),
}

/// Checks `devices` against the server reached by `client` (a superuser or service
/// connection, so row-level security hides nothing). Users are read in chunks, so memory
/// stays bounded by one chunk of server rows.
pub async fn verify(
    client: &tokio_postgres::Client,
    devices: &[&Device],
) -> Result<OracleVerdict, OracleError> {
    let mut by_user: BTreeMap<Uuid, Vec<&Device>> = BTreeMap::new();
    for device in devices {
        by_user.entry(device.user_id()).or_default().push(device);
    }
    let users: Vec<Uuid> = by_user.keys().copied().collect();
    let mut verdict = OracleVerdict::default();
    for chunk in users.chunks(USERS_PER_QUERY) {
        let mut truth = read_truth(client, chunk).await?;
        for user in chunk {
            let rows = truth.take(*user);
            let views: Vec<DeviceView> = by_user[user].iter().map(|d| DeviceView::of(d)).collect();
            judge_user(*user, &rows, &views, &mut verdict);
        }
    }
    verdict.rls = rls::check(client, devices).await?;
    Ok(verdict)
}

/// [`verify`] over a fresh connection to `url` (e.g. the embedded cluster's superuser URL).
pub async fn verify_url(url: &str, devices: &[&Device]) -> Result<OracleVerdict, OracleError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(OracleError::Connect)?;
    let connection = tokio::spawn(connection);
    let verdict = verify(&client, devices).await;
    drop(client);
    let _ = connection.await;
    verdict
}
