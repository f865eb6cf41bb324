//! The oracle's comparison on synthetic users (no database): each anomaly is found, named,
//! and only when it is there.

use super::*;
use syncstorm_device::{AckedWrite, Row, Table};

const T: i64 = 1_790_000_000_000;

fn user() -> Uuid {
    Uuid::from_u128(0x55)
}

fn row(table: Table, id: u128, updated_at_ms: i64, value: i64) -> Row {
    Row {
        table,
        id: Uuid::from_u128(id),
        user_id: user(),
        updated_at_ms,
        deleted: false,
        refs: [None; 3],
        value,
    }
}

fn device(id: u64, rows: &[Row], cursor: Option<i64>) -> DeviceView {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| (r.table, r.id));
    DeviceView {
        device: id,
        rows,
        cursors: [cursor; 5],
        acked: Vec::new(),
        refused: Vec::new(),
        clock_skew_ms: 0,
        fk_errors: 0,
    }
}

fn ack(r: &Row) -> AckedWrite {
    AckedWrite {
        table: r.table,
        id: r.id,
        updated_at_ms: r.updated_at_ms,
        value: r.value,
        deleted: r.deleted,
    }
}

fn judge(server: &[Row], devices: &[DeviceView]) -> OracleVerdict {
    let mut verdict = OracleVerdict::default();
    let mut server = server.to_vec();
    server.sort_by_key(|r| (r.table, r.id));
    judge_user(user(), &server, devices, &mut verdict);
    verdict
}

fn kinds(verdict: &OracleVerdict) -> Vec<AnomalyKind> {
    verdict.examples.iter().map(|a| a.kind).collect()
}

#[test]
fn identical_devices_are_converged_and_clean() {
    let server = [
        row(Table::Wallets, 1, T, 1),
        row(Table::Transactions, 2, T + 1, 5),
    ];
    let mut a = device(1, &server, Some(T + 1));
    a.acked = vec![ack(&server[0])];
    let verdict = judge(&server, &[a, device(2, &server, Some(T + 1))]);
    assert!(verdict.is_clean(), "{verdict:?}");
    assert_eq!(
        (
            verdict.users_checked,
            verdict.devices_checked,
            verdict.server_rows
        ),
        (1, 2, 2)
    );
    assert!(verdict.examples.is_empty());
}

#[test]
fn a_missing_row_below_the_cursor_is_skipped_above_it_only_unconverged() {
    let server = [
        row(Table::Wallets, 1, T, 1),
        row(Table::Wallets, 2, T + 10, 2),
    ];
    let held = [server[1].clone()];
    let cases = [(Some(T + 10), 1), (Some(T), 1), (Some(T - 1), 0), (None, 0)];
    for (cursor, skipped) in cases {
        let verdict = judge(&server, &[device(7, &held, cursor)]);
        assert_eq!(verdict.users_converged, 0, "cursor {cursor:?}");
        assert_eq!(verdict.skipped_rows, skipped, "cursor {cursor:?}");
        let first = &verdict.examples[0];
        assert_eq!(
            (first.kind, first.device, first.row),
            (AnomalyKind::NotConverged, 7, server[0].id)
        );
    }
}

#[test]
fn a_stale_version_past_the_cursor_is_a_skipped_row() {
    let server = [row(Table::Plans, 1, T + 50, 2)];
    let stale = [row(Table::Plans, 1, T, 1)];
    let verdict = judge(&server, &[device(1, &stale, Some(T + 60))]);
    assert_eq!(verdict.skipped_rows, 1);
    assert_eq!(
        kinds(&verdict),
        [AnomalyKind::NotConverged, AnomalyKind::SkippedRow]
    );
    assert!(
        verdict.examples[1].what.contains("older version"),
        "{}",
        verdict.examples[1].what
    );
    // A device holding a *newer* version than the server is unconverged but skipped nothing.
    let newer = [row(Table::Plans, 1, T + 70, 3)];
    let verdict = judge(&server, &[device(1, &newer, Some(T + 60))]);
    assert_eq!((verdict.users_converged, verdict.skipped_rows), (0, 0));
}

#[test]
fn an_extra_local_row_breaks_convergence() {
    let verdict = judge(&[], &[device(1, &[row(Table::Channels, 9, T, 1)], None)]);
    assert_eq!(verdict.users_converged, 0);
    assert!(
        verdict.examples[0]
            .what
            .contains("the server does not have")
    );
}

#[test]
fn acknowledged_writes_must_be_stored_or_superseded_by_a_greater_timestamp() {
    let stored = row(Table::Wallets, 1, T, 10);
    // (acknowledged write, lost?)
    let cases = [
        (row(Table::Wallets, 1, T, 10), false),    // stored as written
        (row(Table::Wallets, 1, T - 5, 3), false), // superseded by a greater updated_at
        (row(Table::Wallets, 1, T + 5, 11), true), // overwritten by an older timestamp
        (row(Table::Wallets, 1, T, 99), true),     // same timestamp, other content
        (row(Table::Wallets, 2, T, 1), true),      // the server never kept it
    ];
    for (write, lost) in cases {
        let mut d = device(3, std::slice::from_ref(&stored), Some(T));
        d.acked = vec![ack(&write)];
        let verdict = judge(std::slice::from_ref(&stored), &[d]);
        assert_eq!(verdict.lost_updates, u64::from(lost), "{write:?}");
        let named = verdict
            .examples
            .iter()
            .any(|a| a.kind == AnomalyKind::LostUpdate);
        assert_eq!(named, lost);
    }
}

#[test]
fn fk_errors_add_up_and_examples_stop_at_five_per_kind() {
    let server: Vec<Row> = (1..=20)
        .map(|i| row(Table::Transactions, i, T, 1))
        .collect();
    let mut a = device(1, &[], Some(T));
    a.fk_errors = 2;
    let mut b = device(2, &[], Some(T));
    b.fk_errors = 3;
    let verdict = judge(&server, &[a, b]);
    assert_eq!(verdict.fk_errors, 5);
    assert_eq!(verdict.skipped_rows, 40);
    let count = |kind| verdict.examples.iter().filter(|a| a.kind == kind).count();
    assert_eq!(count(AnomalyKind::NotConverged), EXAMPLES_PER_KIND);
    assert_eq!(count(AnomalyKind::SkippedRow), EXAMPLES_PER_KIND);
    assert!(!verdict.is_clean());
}

#[test]
fn the_verdict_serializes_with_its_field_names() {
    let verdict = judge(&[row(Table::Wallets, 1, T, 1)], &[device(1, &[], Some(T))]);
    let json = serde_json::to_value(&verdict).unwrap();
    for field in [
        "users_checked",
        "users_converged",
        "lost_updates",
        "skipped_rows",
        "fk_errors",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    assert_eq!(json["examples"][1]["kind"], "skipped_row");
    assert_eq!(json["examples"][1]["table"], "wallets");
    let back: OracleVerdict = serde_json::from_value(json).unwrap();
    assert_eq!(back, verdict);
}

#[test]
fn server_truth_groups_rows_by_user_in_table_and_id_order() {
    let mut other = row(Table::Wallets, 3, T, 1);
    other.user_id = Uuid::from_u128(0x66);
    let rows = [
        row(Table::Plans, 1, T, 1),
        row(Table::Wallets, 2, T, 1),
        other.clone(),
    ];
    let mut truth = ServerTruth::from_rows(rows);
    let mine: Vec<(Table, u128)> = truth
        .take(user())
        .iter()
        .map(|r| (r.table, r.id.as_u128()))
        .collect();
    assert_eq!(mine, [(Table::Wallets, 2), (Table::Plans, 1)]);
    assert_eq!(truth.take(Uuid::from_u128(0x66)), [other]);
    assert!(truth.take(user()).is_empty());
}

#[test]
fn a_later_edit_that_loses_to_a_skewed_clock_is_an_overruled_write() {
    // Device 1's clock is right; device 2's runs 2 s behind. Device 1 edits at T + 1 s and
    // the server keeps it; device 2 edits at T + 2 s, stamps T, and is refused (server_lww).
    let kept = row(Table::Wallets, 1, T + 1_000, 10);
    let mut right = device(1, std::slice::from_ref(&kept), Some(T + 1_000));
    right.acked = vec![ack(&kept)];
    let mut behind = device(2, std::slice::from_ref(&kept), Some(T + 1_000));
    behind.clock_skew_ms = -2_000;
    behind.refused = vec![ack(&row(Table::Wallets, 1, T, 20))];
    let verdict = judge(std::slice::from_ref(&kept), &[right, behind]);
    assert_eq!(verdict.overruled_writes, 1);
    assert_eq!(kinds(&verdict), [AnomalyKind::OverruledWrite]);
    assert!(verdict.examples[0].what.contains("clock skew decided"));
    assert!(!verdict.is_clean());

    // The same two edits with clocks that agree: the earlier edit lost, as it should.
    let mut honest = device(2, std::slice::from_ref(&kept), Some(T + 1_000));
    honest.refused = vec![ack(&row(Table::Wallets, 1, T, 20))];
    let mut right = device(1, std::slice::from_ref(&kept), Some(T + 1_000));
    right.acked = vec![ack(&kept)];
    assert_eq!(
        judge(std::slice::from_ref(&kept), &[right, honest]).overruled_writes,
        0
    );
}
