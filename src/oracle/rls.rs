//! RLS under load, checked against the database rather than the answers: the snooping
//! devices' attempts and the other users' rows they got back (counted by each device), and
//! whether any of their writes changed another user's rows — a planted row that exists, or an
//! attacked row that is gone or carries the snoop marker. A limit: an attacked row the owner
//! itself rewrote after a leaked write no longer shows the marker.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use syncstorm_device::{Device, Row, SNOOP_MARKER, Table};
use uuid::Uuid;

use super::OracleError;

/// What the snooping devices tried and got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlsFindings {
    /// Requests sent on other users' rows.
    pub attempts: u64,
    /// Rows of other users those requests got back.
    pub read_leaks: u64,
    /// The snooping devices' own rows those requests got back: the reads reached the tables
    /// (a malformed probe, refused before any row, would prove nothing).
    #[serde(default)]
    pub own_rows_seen: u64,
    /// Other users' rows those requests wrote (created, changed or deleted), as the database
    /// holds them after the run.
    pub write_leaks: u64,
}

impl RlsFindings {
    pub fn leaks(&self) -> u64 {
        self.read_leaks + self.write_leaks
    }
}

/// The rows the snooping devices' writes went after.
#[derive(Debug, Default)]
pub struct Targets {
    pub attacked: BTreeSet<Uuid>,
    pub planted: BTreeSet<Uuid>,
}

impl Targets {
    pub fn of(devices: &[&Device]) -> Targets {
        let mut targets = Targets::default();
        for log in devices.iter().filter_map(|d| d.snoop_log()) {
            targets.attacked.extend(&log.attacked);
            targets.planted.extend(&log.planted);
        }
        targets
    }

    fn ids(&self) -> Vec<Uuid> {
        self.attacked.union(&self.planted).copied().collect()
    }

    /// Writes that got through, given the wallets the database holds among the targets: a
    /// planted row that exists, an attacked row that is missing or holds the marker.
    pub fn write_leaks(&self, found: &[Row]) -> u64 {
        let planted = found
            .iter()
            .filter(|r| self.planted.contains(&r.id))
            .count();
        let attacked_intact = found
            .iter()
            .filter(|r| self.attacked.contains(&r.id) && r.value != SNOOP_MARKER)
            .count();
        (planted + self.attacked.len() - attacked_intact) as u64
    }
}

/// Counts the devices' attempts and leaks, reading the targeted wallets by SQL.
pub async fn check(
    client: &tokio_postgres::Client,
    devices: &[&Device],
) -> Result<RlsFindings, OracleError> {
    let mut findings = RlsFindings::default();
    for d in devices {
        findings.attempts += u64::from(d.stats().snoop_attempts);
        findings.read_leaks += d.stats().snoop_read_leaks;
        findings.own_rows_seen += d.stats().snoop_own_rows;
    }
    let targets = Targets::of(devices);
    if targets.attacked.is_empty() && targets.planted.is_empty() {
        return Ok(findings);
    }
    let table = Table::Wallets;
    let records = client
        .query(
            "select to_jsonb(t) from public.wallets t where t.id = any($1)",
            &[&targets.ids()],
        )
        .await
        .map_err(|source| OracleError::Query { table, source })?;
    let found = records
        .iter()
        .map(|r| Row::from_json(table, &r.get::<_, serde_json::Value>(0)))
        .collect::<Result<Vec<Row>, _>>()?;
    findings.write_leaks = targets.write_leaks(&found);
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(id: u128, value: i64) -> Row {
        Row {
            table: Table::Wallets,
            id: Uuid::from_u128(id),
            user_id: Uuid::from_u128(2),
            updated_at_ms: 0,
            deleted: false,
            refs: [None; 3],
            value,
        }
    }

    fn targets() -> Targets {
        Targets {
            attacked: [Uuid::from_u128(20)].into(),
            planted: [Uuid::from_u128(99)].into(),
        }
    }

    #[test]
    fn an_intact_victim_row_and_no_planted_row_are_no_leak() {
        assert_eq!(targets().write_leaks(&[wallet(20, 5)]), 0);
    }

    #[test]
    fn a_planted_row_a_marked_row_and_a_deleted_row_each_count_as_a_write_leak() {
        let t = targets();
        assert_eq!(t.write_leaks(&[wallet(20, 5), wallet(99, SNOOP_MARKER)]), 1);
        assert_eq!(t.write_leaks(&[wallet(20, SNOOP_MARKER)]), 1);
        assert_eq!(t.write_leaks(&[]), 1, "the victim's row was deleted");
        assert_eq!(t.write_leaks(&[wallet(99, 1)]), 2);
    }
}
