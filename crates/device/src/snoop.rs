//! RLS under load (`behaviour.snoop_fraction`): a device that, once during the run, tries
//! other users' rows through the normal REST path with its own JWT. It reads with no filter
//! and by another user's id, and writes another user's wallet (update, upsert over it,
//! delete) and a new wallet claiming that user. Row-level security must answer every probe
//! with nothing: a returned row of another user is a read leak, counted here; whether a write
//! got through is not taken from status codes but checked by the oracle against the database
//! after the run (the marker value, the victim's row still there, the planted row absent).

use crate::row::Row;
use crate::table::{MAX_FKS, Table};
use uuid::Uuid;

/// The data value every snoop write carries. Edits write values of 0 or more, so a row
/// holding it was written by a snoop (for wallets: the name `"wallet -7357"`).
pub const SNOOP_MARKER: i64 = -7357;

/// Whom a snooping device goes after: another user, and one of that user's wallets when
/// the device's driver knows one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim {
    pub user_id: Uuid,
    pub wallet: Option<Uuid>,
}

/// One attempt on another user's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `GET /<table>?select=*` without a filter: only the device's own rows may come back.
    ReadUnfiltered { table: Table },
    /// `GET /<table>?select=*&user_id=eq.<victim>`: nothing may come back.
    ReadByUser { table: Table, user_id: Uuid },
    /// `PATCH /wallets?id=eq.<row.id>` setting the marker value.
    Update { row: Row },
    /// Upsert merging on `id` over the victim's row, marker value, victim as owner.
    Upsert { row: Row },
    /// Insert of a new row whose `user_id` is the victim's.
    Insert { row: Row },
    /// `DELETE /wallets?id=eq.<id>`.
    Delete { table: Table, id: Uuid },
}

/// Which rows the device's writes went after, for the oracle's check against the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnoopLog {
    /// The victim's wallets it tried to update, overwrite and delete: each must still exist
    /// without the marker.
    pub attacked: Vec<Uuid>,
    /// Wallets it tried to create in the victim's name: none may exist.
    pub planted: Vec<Uuid>,
}

/// The probes against `victim`; `planted_id` is the id a planted row gets, `now_ms` the
/// device's (skewed) clock for the rows' `updated_at`.
pub fn probes(victim: Victim, planted_id: Uuid, now_ms: i64) -> (Vec<Probe>, SnoopLog) {
    let wallet = |id: Uuid| Row {
        table: Table::Wallets,
        id,
        user_id: victim.user_id,
        updated_at_ms: now_ms,
        deleted: false,
        refs: [None; MAX_FKS],
        value: SNOOP_MARKER,
    };
    let mut probes = vec![
        Probe::ReadUnfiltered {
            table: Table::Transactions,
        },
        Probe::ReadUnfiltered {
            table: Table::Wallets,
        },
        Probe::ReadByUser {
            table: Table::Wallets,
            user_id: victim.user_id,
        },
        Probe::Insert {
            row: wallet(planted_id),
        },
    ];
    let mut log = SnoopLog {
        attacked: Vec::new(),
        planted: vec![planted_id],
    };
    if let Some(id) = victim.wallet {
        probes.push(Probe::Update { row: wallet(id) });
        probes.push(Probe::Upsert { row: wallet(id) });
        probes.push(Probe::Delete {
            table: Table::Wallets,
            id,
        });
        log.attacked.push(id);
    }
    (probes, log)
}

/// Rows of an answer that belong to someone other than `own`: each one is a read leak.
pub fn leaked(rows: &[Row], own: Uuid) -> u64 {
    rows.iter().filter(|r| r.user_id != own).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_victim_with_a_wallet_gets_every_probe_and_the_log_names_its_rows() {
        let victim = Victim {
            user_id: user(2),
            wallet: Some(user(20)),
        };
        let (probes, log) = probes(victim, user(99), 1_000);
        assert_eq!(probes.len(), 7);
        assert_eq!(log.attacked, vec![user(20)]);
        assert_eq!(log.planted, vec![user(99)]);
        for p in &probes {
            if let Probe::Update { row } | Probe::Upsert { row } | Probe::Insert { row } = p {
                assert_eq!((row.user_id, row.value), (user(2), SNOOP_MARKER));
            }
        }
    }

    #[test]
    fn without_a_known_wallet_only_reads_and_the_planted_insert_run() {
        let victim = Victim {
            user_id: user(2),
            wallet: None,
        };
        let (probes, log) = probes(victim, user(99), 1_000);
        assert_eq!(probes.len(), 4);
        assert!(log.attacked.is_empty());
    }
}
