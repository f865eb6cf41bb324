//! The model's server-side copy of one user's rows and sync token: what PostgREST would read
//! and write for that user's requests, kept in memory instead of PostgreSQL.

use syncstorm_device::{Keyset, PageQuery, Row, Table};
use uuid::Uuid;

pub struct UserRows {
    /// The user's sync token (USAP): bumped by every commit that changed a row.
    pub token: i64,
    rows: Vec<Row>,
}

impl UserRows {
    /// The rows the population seeds for the user; the token is 1 when there are any.
    pub fn seeded(rows: Vec<Row>) -> UserRows {
        UserRows {
            token: i64::from(!rows.is_empty()),
            rows,
        }
    }

    /// One keyset page of a table, ordered by (`updated_at`, `id`) as the sync's pull asks.
    pub fn page(&self, q: &PageQuery) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .rows
            .iter()
            .filter(|r| r.table == q.table && after(r, q.after))
            .cloned()
            .collect();
        rows.sort_by_key(|r| (r.updated_at_ms, r.id));
        rows.truncate(q.limit as usize);
        rows
    }

    /// The rows of `table` with these ids.
    pub fn read(&self, table: Table, ids: &[Uuid]) -> Vec<Row> {
        self.rows
            .iter()
            .filter(|r| r.table == table && ids.contains(&r.id))
            .cloned()
            .collect()
    }

    /// A plain upsert (PostgREST's `merge-duplicates`): every row is written.
    pub fn upsert_all(&mut self, rows: Vec<Row>) {
        for row in rows {
            self.upsert(row);
        }
        self.token += 1;
    }

    /// The `sync_push` RPC: a row is written only when newer than the stored one (LWW on the
    /// server); returns the ids refused. The token moves only when something was written.
    pub fn push_newer(&mut self, rows: Vec<Row>) -> Vec<Uuid> {
        let mut rejected = Vec::new();
        let mut accepted = 0;
        for row in rows {
            let newer = self
                .rows
                .iter()
                .find(|r| r.id == row.id)
                .is_none_or(|r| r.updated_at_ms < row.updated_at_ms);
            if newer {
                self.upsert(row);
                accepted += 1;
            } else {
                rejected.push(row.id);
            }
        }
        if accepted > 0 {
            self.token += 1;
        }
        rejected
    }

    fn upsert(&mut self, row: Row) {
        match self.rows.iter_mut().find(|r| r.id == row.id) {
            Some(stored) => *stored = row,
            None => {
                // A user's rows start exactly sized; doubling them for one new row would, at
                // 1M devices, hold a gigabyte of slack. An eighth more keeps pushes amortised.
                if self.rows.len() == self.rows.capacity() {
                    self.rows.reserve_exact(self.rows.len() / 8 + 1);
                }
                self.rows.push(row)
            }
        }
    }
}

fn after(row: &Row, keyset: Option<Keyset>) -> bool {
    match keyset {
        None => true,
        Some(k) => match k.id {
            None => row.updated_at_ms > k.updated_at_ms,
            Some(id) => (row.updated_at_ms, row.id) > (k.updated_at_ms, id),
        },
    }
}
