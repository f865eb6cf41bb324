//! The comparison itself, pure: one user's server rows against that user's devices.

use super::{Anomaly, AnomalyKind, EXAMPLES_PER_KIND, OracleVerdict};
use std::cmp::Ordering;
use std::collections::HashMap;
use syncstorm_device::row::format_timestamp_ms;
use syncstorm_device::{AckedWrite, Device, Row, Table};
use uuid::Uuid;

/// What the oracle needs from one device after its final sync.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceView {
    pub device: u64,
    /// Local rows sorted by `(table, id)`, tombstones included.
    pub rows: Vec<Row>,
    /// Pull cursor per table, indexed by [`Table::index`].
    pub cursors: [Option<i64>; 5],
    /// Per row, the device's greatest acknowledged write.
    pub acked: Vec<AckedWrite>,
    /// Writes the server refused as not newer (the first few).
    pub refused: Vec<AckedWrite>,
    /// The device clock's skew: a stamp minus this is the edit's true time.
    pub clock_skew_ms: i64,
    pub fk_errors: u64,
}

impl DeviceView {
    pub fn of(device: &Device) -> DeviceView {
        DeviceView {
            device: device.id(),
            rows: Table::ALL
                .into_iter()
                .flat_map(|t| device.rows(t))
                .collect(),
            cursors: Table::ALL.map(|t| device.cursor(t)),
            acked: device.acked_writes().to_vec(),
            refused: device.refused_writes().to_vec(),
            clock_skew_ms: device.clock_skew_ms(),
            fk_errors: device.fk_errors(),
        }
    }

    /// Whether the delta pull `updated_at > cursor` can no longer fetch a row at `updated_at_ms`.
    fn cursor_past(&self, table: Table, updated_at_ms: i64) -> bool {
        self.cursors[table.index()].is_some_and(|cursor| cursor >= updated_at_ms)
    }
}

/// Judges one user: `server` are the user's server rows sorted by `(table, id)`.
pub fn judge_user(user: Uuid, server: &[Row], devices: &[DeviceView], verdict: &mut OracleVerdict) {
    verdict.users_checked += 1;
    verdict.devices_checked += devices.len() as u64;
    verdict.server_rows += server.len() as u64;
    let by_id: HashMap<Uuid, &Row> = server.iter().map(|r| (r.id, r)).collect();
    let mut converged = true;
    for device in devices {
        verdict.fk_errors += device.fk_errors;
        let mut judge = Judge {
            user,
            device,
            verdict,
        };
        converged &= judge.compare_rows(server);
        judge.check_acknowledged(&by_id);
    }
    super::overruled::check(user, &by_id, devices, verdict);
    verdict.users_converged += u64::from(converged);
}

pub(super) struct Judge<'a> {
    pub(super) user: Uuid,
    pub(super) device: &'a DeviceView,
    pub(super) verdict: &'a mut OracleVerdict,
}

impl Judge<'_> {
    /// Walks device and server rows together (both sorted by `(table, id)`); returns whether
    /// they are equal.
    fn compare_rows(&mut self, server: &[Row]) -> bool {
        let (mut local, mut remote) =
            (self.device.rows.iter().peekable(), server.iter().peekable());
        let mut equal = true;
        loop {
            let order = match (local.peek(), remote.peek()) {
                (None, None) => return equal,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(l), Some(r)) => (l.table, l.id).cmp(&(r.table, r.id)),
            };
            match order {
                Ordering::Less => {
                    let extra = local.next().expect("peeked");
                    equal = false;
                    self.not_converged(extra, "holds a row the server does not have".to_owned());
                }
                Ordering::Greater => {
                    equal = false;
                    self.missing(remote.next().expect("peeked"));
                }
                Ordering::Equal => {
                    let (l, r) = (
                        local.next().expect("peeked"),
                        remote.next().expect("peeked"),
                    );
                    if l != r {
                        equal = false;
                        self.differs(l, r);
                    }
                }
            }
        }
    }

    fn missing(&mut self, row: &Row) {
        let at = format_timestamp_ms(row.updated_at_ms);
        self.not_converged(row, format!("lacks the server's row (updated_at {at})"));
        if self.device.cursor_past(row.table, row.updated_at_ms) {
            let what = format!("{} but the device lacks the row", self.cursor_text(row));
            self.skipped(row, what);
        }
    }

    fn differs(&mut self, local: &Row, server: &Row) {
        let what = format!(
            "holds {}; the server holds {}",
            describe(local),
            describe(server)
        );
        self.not_converged(server, what);
        if local.updated_at_ms < server.updated_at_ms
            && self.device.cursor_past(server.table, server.updated_at_ms)
        {
            let what = format!(
                "{} but the device holds an older version ({})",
                self.cursor_text(server),
                describe(local)
            );
            self.skipped(server, what);
        }
    }

    /// Each acknowledged write must be stored, or superseded by a greater `updated_at`.
    fn check_acknowledged(&mut self, server: &HashMap<Uuid, &Row>) {
        for write in &self.device.acked {
            let verdict = match server.get(&write.id) {
                None => Some("the server has no such row".to_owned()),
                Some(stored) if stored.updated_at_ms > write.updated_at_ms => None,
                Some(stored)
                    if stored.updated_at_ms == write.updated_at_ms
                        && stored.value == write.value
                        && stored.deleted == write.deleted =>
                {
                    None
                }
                Some(stored) => Some(format!("the server holds {}", describe(stored))),
            };
            if let Some(found) = verdict {
                self.verdict.lost_updates += 1;
                let what = format!(
                    "device {} was acknowledged writing updated_at {} (value {}{}), but {found}",
                    self.device.device,
                    format_timestamp_ms(write.updated_at_ms),
                    write.value,
                    if write.deleted { ", deleted" } else { "" },
                );
                self.example(AnomalyKind::LostUpdate, write.table, write.id, what);
            }
        }
    }

    fn cursor_text(&self, row: &Row) -> String {
        let cursor = self.device.cursors[row.table.index()].unwrap_or(i64::MIN);
        format!(
            "device {}'s {} cursor {} is at or past the row's updated_at {}",
            self.device.device,
            row.table,
            format_timestamp_ms(cursor),
            format_timestamp_ms(row.updated_at_ms)
        )
    }

    fn not_converged(&mut self, row: &Row, what: String) {
        let what = format!("device {} {what}", self.device.device);
        self.example(AnomalyKind::NotConverged, row.table, row.id, what);
    }

    fn skipped(&mut self, row: &Row, what: String) {
        self.verdict.skipped_rows += 1;
        self.example(AnomalyKind::SkippedRow, row.table, row.id, what);
    }

    pub(super) fn example(&mut self, kind: AnomalyKind, table: Table, row: Uuid, what: String) {
        let kept = self
            .verdict
            .examples
            .iter()
            .filter(|a| a.kind == kind)
            .count();
        if kept < EXAMPLES_PER_KIND {
            let device = self.device.device;
            let user = self.user;
            self.verdict.examples.push(Anomaly {
                kind,
                user,
                device,
                table,
                row,
                what,
            });
        }
    }
}

fn describe(row: &Row) -> String {
    format!(
        "updated_at {} value {}{}",
        format_timestamp_ms(row.updated_at_ms),
        row.value,
        if row.deleted { " deleted" } else { "" }
    )
}
