//! The device's local store (the phone's SQLite in real life), kept compact: per table a
//! `Vec` of fixed-size entries sorted by id, a pull cursor per table, the USAP `local_token`,
//! and the acknowledged writes the oracle needs.

use crate::event::AckedWrite;
use crate::row::Row;
use crate::table::{MAX_FKS, Table};
use uuid::Uuid;

const DELETED: u8 = 1;
const DIRTY: u8 = 2;

/// One stored row: the table and owner are implied by where it is stored. `Uuid::nil()` in
/// `refs` stands for NULL (ids made by devices are random v4 ids, never nil).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub id: Uuid,
    pub updated_at_ms: i64,
    pub value: i64,
    pub refs: [Uuid; MAX_FKS],
    flags: u8,
}

impl Entry {
    fn from_row(row: &Row, dirty: bool) -> Entry {
        let flags = if row.deleted { DELETED } else { 0 } | if dirty { DIRTY } else { 0 };
        Entry {
            id: row.id,
            updated_at_ms: row.updated_at_ms,
            value: row.value,
            refs: row.refs.map(|r| r.unwrap_or_else(Uuid::nil)),
            flags,
        }
    }

    pub fn to_row(self, table: Table, user_id: Uuid) -> Row {
        Row {
            table,
            id: self.id,
            user_id,
            updated_at_ms: self.updated_at_ms,
            deleted: self.deleted(),
            refs: self.refs.map(|r| (!r.is_nil()).then_some(r)),
            value: self.value,
        }
    }

    pub fn deleted(self) -> bool {
        self.flags & DELETED != 0
    }

    pub fn dirty(self) -> bool {
        self.flags & DIRTY != 0
    }
}

/// What applying a server row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The server row was stored (new, or replacing an older or clean local row).
    Stored,
    /// A dirty local row with a newer or equal `updated_at` won and was kept.
    LocalWon,
}

#[derive(Debug, Default)]
pub(crate) struct LocalStore {
    tables: [Vec<Entry>; 5],
    cursors: [Option<i64>; 5],
    pub local_token: Option<i64>,
    /// Per row, the greatest acknowledged write, sorted by id.
    acked: Vec<AckedWrite>,
    /// Writes the server refused as not newer (LWW), at most [`MAX_REFUSED_KEPT`], so the
    /// oracle can tell a write overruled by a skewed clock.
    refused: Vec<AckedWrite>,
    pub fk_errors: u64,
}

/// Refused writes a device keeps for the oracle (a device refused more than this is counted,
/// not remembered: memory per device stays bounded).
pub const MAX_REFUSED_KEPT: usize = 32;

impl LocalStore {
    pub fn entries(&self, table: Table) -> &[Entry] {
        &self.tables[table.index()]
    }

    pub fn get(&self, table: Table, id: Uuid) -> Option<Entry> {
        let rows = self.entries(table);
        rows.binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| rows[i])
    }

    pub fn contains(&self, table: Table, id: Uuid) -> bool {
        self.get(table, id).is_some()
    }

    pub fn cursor(&self, table: Table) -> Option<i64> {
        self.cursors[table.index()]
    }

    pub fn set_cursor(&mut self, table: Table, cursor: i64) {
        let slot = &mut self.cursors[table.index()];
        *slot = Some(slot.map_or(cursor, |c| c.max(cursor)));
    }

    /// A local write by the user: stored dirty, replacing any previous version.
    pub fn write_local(&mut self, row: &Row) {
        let entry = Entry::from_row(row, true);
        let rows = &mut self.tables[row.table.index()];
        match rows.binary_search_by_key(&row.id, |e| e.id) {
            Ok(i) => rows[i] = entry,
            Err(i) => rows.insert(i, entry),
        }
    }

    /// Many new local rows at once (bulk import): one sort instead of one insert each.
    pub fn write_local_new(&mut self, table: Table, rows: impl IntoIterator<Item = Row>) {
        let entries = &mut self.tables[table.index()];
        entries.extend(rows.into_iter().map(|r| Entry::from_row(&r, true)));
        entries.sort_by_key(|e| e.id);
        entries.dedup_by_key(|e| e.id);
        entries.shrink_to(entries.len() + entries.len() / 8);
    }

    /// Applies one page of server rows of one table with LWW; returns how many were stored.
    /// New ids are appended and merged with one stable sort (the sorted prefix and the
    /// appended run merge in linear time).
    pub fn apply_page(&mut self, table: Table, page: &[Row]) -> u32 {
        let rows = &mut self.tables[table.index()];
        let sorted_len = rows.len();
        let mut stored = 0;
        for row in page {
            let found = rows[..sorted_len].binary_search_by_key(&row.id, |e| e.id);
            let outcome = match found {
                Ok(i) => apply_one(&mut rows[i], row),
                Err(_) => {
                    rows.push(Entry::from_row(row, false));
                    Applied::Stored
                }
            };
            stored += u32::from(outcome == Applied::Stored);
        }
        if rows.len() > sorted_len {
            rows.sort_by_key(|e| e.id);
            rows.dedup_by_key(|e| e.id);
            // Growth by doubling can leave half the table as slack; at 100k devices that
            // matters more than one reallocation per page.
            if rows.capacity() > rows.len() + rows.len() / 4 {
                rows.shrink_to(rows.len() + rows.len() / 8);
            }
        }
        stored
    }

    /// Counts rows of the page with at least one parent missing locally (checked after the
    /// page was applied, like SQLite checking deferred foreign keys at commit).
    pub fn count_fk_errors(&mut self, page: &[Row]) -> u64 {
        let orphans = page
            .iter()
            .filter(|row| {
                row.table.fks().iter().zip(row.refs).any(|(fk, parent)| {
                    parent.is_some_and(|parent_id| !self.contains(fk.parent, parent_id))
                })
            })
            .count() as u64;
        self.fk_errors += orphans;
        orphans
    }

    /// Ids of dirty rows of `table`, in push order (a category whose parent is also dirty goes
    /// after its parent, so the server's foreign key holds inside one push).
    pub fn dirty_ids(&self, table: Table) -> Vec<Uuid> {
        let rows = self.entries(table);
        let mut dirty: Vec<(bool, Uuid)> = rows
            .iter()
            .filter(|e| e.dirty())
            .map(|e| (table == Table::CategoriesUser && !e.refs[0].is_nil(), e.id))
            .collect();
        dirty.sort_by_key(|(is_child, _)| *is_child);
        dirty.into_iter().map(|(_, id)| id).collect()
    }

    /// The server accepted `written`: the row is clean unless the user changed it meanwhile.
    pub fn acknowledge(&mut self, write: AckedWrite) {
        let rows = &mut self.tables[write.table.index()];
        if let Ok(i) = rows.binary_search_by_key(&write.id, |e| e.id)
            && rows[i].updated_at_ms == write.updated_at_ms
        {
            rows[i].flags &= !DIRTY;
        }
        match self.acked.binary_search_by_key(&write.id, |a| a.id) {
            Ok(i) if self.acked[i].updated_at_ms <= write.updated_at_ms => self.acked[i] = write,
            Ok(_) => {}
            Err(i) => self.acked.insert(i, write),
        }
    }

    /// The server kept its own copy (newer or equal): take it and stop pushing ours.
    pub fn take_server_copy(&mut self, row: &Row) {
        let rows = &mut self.tables[row.table.index()];
        if let Ok(i) = rows.binary_search_by_key(&row.id, |e| e.id) {
            rows[i] = Entry::from_row(row, false);
        }
    }

    /// Stops pushing a row the server refused; its newer copy arrives with a later pull.
    pub fn clear_dirty(&mut self, table: Table, id: Uuid) {
        let rows = &mut self.tables[table.index()];
        if let Ok(i) = rows.binary_search_by_key(&id, |e| e.id) {
            rows[i].flags &= !DIRTY;
        }
    }

    pub fn acked(&self) -> &[AckedWrite] {
        &self.acked
    }

    /// Remembers a write the server refused (up to [`MAX_REFUSED_KEPT`]).
    pub fn refuse(&mut self, write: AckedWrite) {
        if self.refused.len() < MAX_REFUSED_KEPT {
            self.refused.push(write);
        }
    }

    pub fn refused(&self) -> &[AckedWrite] {
        &self.refused
    }

    pub fn dirty_count(&self) -> usize {
        self.tables.iter().flatten().filter(|e| e.dirty()).count()
    }

    pub fn row_count(&self) -> usize {
        self.tables.iter().map(Vec::len).sum()
    }

    /// Heap bytes held by rows and acknowledged writes (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        let rows: usize = self
            .tables
            .iter()
            .map(|t| t.capacity() * size_of::<Entry>())
            .sum();
        rows + (self.acked.capacity() + self.refused.capacity()) * size_of::<AckedWrite>()
    }
}

/// LWW for a row present locally: a dirty local row with a newer or equal `updated_at` wins;
/// otherwise (older, or clean) the server row replaces it.
fn apply_one(local: &mut Entry, server: &Row) -> Applied {
    if local.dirty() && local.updated_at_ms >= server.updated_at_ms {
        return Applied::LocalWon;
    }
    *local = Entry::from_row(server, false);
    Applied::Stored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(updated_at_ms: i64, value: i64) -> Row {
        Row {
            table: Table::Wallets,
            id: Uuid::from_u128(5),
            user_id: Uuid::from_u128(1),
            updated_at_ms,
            deleted: false,
            refs: [None; MAX_FKS],
            value,
        }
    }

    #[test]
    fn lww_apply_rules() {
        // (local updated_at, local dirty, server updated_at, server row stored?)
        let cases = [
            (100, true, 99, false),
            (100, true, 100, false),
            (100, true, 101, true),
            (100, false, 99, true),
            (100, false, 100, true),
            (100, false, 101, true),
        ];
        for (local_ts, dirty, server_ts, server_wins) in cases {
            let mut store = LocalStore::default();
            if dirty {
                store.write_local(&wallet(local_ts, 1));
            } else {
                store.apply_page(Table::Wallets, &[wallet(local_ts, 1)]);
            }
            let stored = store.apply_page(Table::Wallets, &[wallet(server_ts, 2)]);
            let entry = store.get(Table::Wallets, Uuid::from_u128(5)).unwrap();
            let case = format!("local {local_ts} dirty {dirty}, server {server_ts}");
            assert_eq!(stored == 1, server_wins, "{case}");
            assert_eq!(entry.value == 2, server_wins, "{case}");
            assert_eq!(entry.dirty(), dirty && !server_wins, "{case}");
        }
    }

    #[test]
    fn pages_of_new_rows_merge_into_id_order() {
        let mut store = LocalStore::default();
        let page = |ids: &[u128]| -> Vec<Row> {
            ids.iter()
                .map(|&id| Row {
                    id: Uuid::from_u128(id),
                    ..wallet(1, 0)
                })
                .collect()
        };
        store.apply_page(Table::Wallets, &page(&[9, 3, 7]));
        store.apply_page(Table::Wallets, &page(&[8, 1, 3]));
        let ids: Vec<u128> = store
            .entries(Table::Wallets)
            .iter()
            .map(|e| e.id.as_u128())
            .collect();
        assert_eq!(ids, [1, 3, 7, 8, 9]);
    }

    #[test]
    fn acknowledgements_keep_the_greatest_write_per_row() {
        let mut store = LocalStore::default();
        store.write_local(&wallet(200, 1));
        let ack = |updated_at_ms, value| AckedWrite {
            table: Table::Wallets,
            id: Uuid::from_u128(5),
            updated_at_ms,
            value,
            deleted: false,
        };
        store.acknowledge(ack(150, 1));
        assert!(
            store
                .get(Table::Wallets, Uuid::from_u128(5))
                .unwrap()
                .dirty(),
            "edited since"
        );
        store.acknowledge(ack(200, 2));
        store.acknowledge(ack(120, 3));
        assert_eq!(store.acked(), [ack(200, 2)]);
        assert_eq!(store.dirty_count(), 0);
    }

    #[test]
    fn dirty_subcategories_are_pushed_after_top_level_ones() {
        let mut store = LocalStore::default();
        let category = |id: u128, parent: Option<u128>| Row {
            table: Table::CategoriesUser,
            id: Uuid::from_u128(id),
            refs: [parent.map(Uuid::from_u128), None, None],
            ..wallet(1, 0)
        };
        store.write_local(&category(1, Some(9)));
        store.write_local(&category(9, None));
        store.write_local(&category(4, Some(9)));
        let order: Vec<u128> = store
            .dirty_ids(Table::CategoriesUser)
            .iter()
            .map(|id| id.as_u128())
            .collect();
        assert_eq!(order, [9, 1, 4]);
    }
}
