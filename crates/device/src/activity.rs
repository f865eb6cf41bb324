//! What the simulated user does: new rows (respecting foreign keys), updates and deletes of
//! rows the user's other devices hold too (so LWW has something to decide), bulk imports.

use crate::row::Row;
use crate::store::LocalStore;
use crate::table::{MAX_FKS, Table};
use rand::Rng;
use rand::rngs::SmallRng;
use uuid::Uuid;

/// Shares of one edit, in percent (the rest creates a transaction).
const UPDATE_SHARE: u32 = 35;
const DELETE_SHARE: u32 = 5;
const NEW_WALLET_SHARE: u32 = 3;
const NEW_CHANNEL_SHARE: u32 = 5;
const NEW_CATEGORY_SHARE: u32 = 5;
const NEW_PLAN_SHARE: u32 = 5;

/// The user's context for one edit: their store, randomness, identity and clock reading.
pub(crate) struct User<'a> {
    pub store: &'a mut LocalStore,
    pub rng: &'a mut SmallRng,
    pub user_id: Uuid,
    /// The device clock (true time plus skew): every `updated_at` it writes.
    pub now_ms: i64,
}

impl User<'_> {
    /// One edit; returns how many rows it wrote (creating a transaction may first create the
    /// channel and category it needs, as a user does inline).
    pub fn edit(&mut self) -> u32 {
        if self.live_ids(Table::Wallets).next().is_none() {
            return self.new_wallet();
        }
        let mut roll = self.rng.random_range(0..100);
        for (share, action) in [
            (UPDATE_SHARE, User::update_any as fn(&mut Self) -> u32),
            (DELETE_SHARE, User::delete_activity),
            (NEW_WALLET_SHARE, User::new_wallet),
            (NEW_CHANNEL_SHARE, User::new_channel),
            (NEW_CATEGORY_SHARE, User::new_category),
            (NEW_PLAN_SHARE, User::new_plan),
        ] {
            if roll < share {
                return action(self);
            }
            roll -= share;
        }
        self.new_transaction()
    }

    /// Imports `count` transactions in one go, all stamped with one clock reading (like a loop
    /// around one `Date.now()`), which also exercises equal timestamps at page boundaries.
    pub fn bulk_import(&mut self, count: u32) -> u32 {
        let mut written = self.ensure_parents();
        let channels: Vec<(Uuid, Uuid)> = self.live_channels().collect();
        let categories: Vec<Uuid> = self.live_ids(Table::CategoriesUser).collect();
        let rows: Vec<Row> = (0..count)
            .map(|_| {
                let (channel, wallet) = channels[self.rng.random_range(0..channels.len())];
                let category = categories[self.rng.random_range(0..categories.len())];
                let refs = [Some(wallet), Some(channel), Some(category)];
                self.row(Table::Transactions, refs)
            })
            .collect();
        self.store.write_local_new(Table::Transactions, rows);
        written += count;
        written
    }

    fn update_any(&mut self) -> u32 {
        let table = Table::ALL[self.rng.random_range(0..Table::ALL.len())];
        let Some(mut row) = self.random_live(table) else {
            return self.new_transaction();
        };
        row.value = self.value_for(table);
        row.updated_at_ms = self.now_ms;
        self.store.write_local(&row);
        1
    }

    /// Tombstones only activity rows: deleting a parent would orphan its children.
    fn delete_activity(&mut self) -> u32 {
        let table = if self.rng.random_bool(0.8) {
            Table::Transactions
        } else {
            Table::Plans
        };
        let Some(mut row) = self.random_live(table) else {
            return self.new_transaction();
        };
        row.deleted = true;
        row.updated_at_ms = self.now_ms;
        self.store.write_local(&row);
        1
    }

    fn new_wallet(&mut self) -> u32 {
        let row = self.row(Table::Wallets, [None; MAX_FKS]);
        self.store.write_local(&row);
        1
    }

    fn new_channel(&mut self) -> u32 {
        let Some(wallet) = self.random_live_id(Table::Wallets) else {
            return self.new_wallet();
        };
        let row = self.row(Table::Channels, [Some(wallet), None, None]);
        self.store.write_local(&row);
        1
    }

    /// A third of new categories are sub-categories of a top-level one.
    fn new_category(&mut self) -> u32 {
        let roots: Vec<Uuid> = self
            .store
            .entries(Table::CategoriesUser)
            .iter()
            .filter(|e| !e.deleted() && e.refs[0].is_nil())
            .map(|e| e.id)
            .collect();
        let parent = (!roots.is_empty() && self.rng.random_bool(1.0 / 3.0))
            .then(|| roots[self.rng.random_range(0..roots.len())]);
        let row = self.row(Table::CategoriesUser, [parent, None, None]);
        self.store.write_local(&row);
        1
    }

    fn new_plan(&mut self) -> u32 {
        let written = self.ensure_parents();
        let category = self.random_live_id(Table::CategoriesUser);
        let wallet = self
            .rng
            .random_bool(0.5)
            .then(|| self.random_live_id(Table::Wallets))
            .flatten();
        let row = self.row(Table::Plans, [category, wallet, None]);
        self.store.write_local(&row);
        written + 1
    }

    fn new_transaction(&mut self) -> u32 {
        let written = self.ensure_parents();
        let channels: Vec<(Uuid, Uuid)> = self.live_channels().collect();
        let (channel, wallet) = channels[self.rng.random_range(0..channels.len())];
        let category = self.random_live_id(Table::CategoriesUser);
        let row = self.row(Table::Transactions, [Some(wallet), Some(channel), category]);
        self.store.write_local(&row);
        written + 1
    }

    /// Makes sure a wallet, a channel and a category exist; returns the rows it wrote.
    fn ensure_parents(&mut self) -> u32 {
        let mut written = 0;
        if self.live_ids(Table::Wallets).next().is_none() {
            written += self.new_wallet();
        }
        if self.live_channels().next().is_none() {
            written += self.new_channel();
        }
        if self.live_ids(Table::CategoriesUser).next().is_none() {
            written += self.new_category();
        }
        written
    }

    /// A new row of `table` with a fresh random v4 id and a random data value.
    fn row(&mut self, table: Table, refs: [Option<Uuid>; MAX_FKS]) -> Row {
        let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let value = self.value_for(table);
        Row {
            table,
            id,
            user_id: self.user_id,
            updated_at_ms: self.now_ms,
            deleted: false,
            refs,
            value,
        }
    }

    fn live_ids(&self, table: Table) -> impl Iterator<Item = Uuid> + '_ {
        self.store
            .entries(table)
            .iter()
            .filter(|e| !e.deleted())
            .map(|e| e.id)
    }

    /// Live channels with their wallet, so a transaction's wallet matches its channel's.
    fn live_channels(&self) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
        self.store
            .entries(Table::Channels)
            .iter()
            .filter(|e| !e.deleted())
            .map(|e| (e.id, e.refs[0]))
    }

    fn random_live_id(&mut self, table: Table) -> Option<Uuid> {
        self.random_live(table).map(|row| row.id)
    }

    /// A random live row; sampling a few positions keeps this O(1) on large tables.
    fn random_live(&mut self, table: Table) -> Option<Row> {
        let entries = self.store.entries(table);
        if entries.is_empty() {
            return None;
        }
        for _ in 0..8 {
            let entry = entries[self.rng.random_range(0..entries.len())];
            if !entry.deleted() {
                return Some(entry.to_row(table, self.user_id));
            }
        }
        let live = entries.iter().find(|e| !e.deleted())?;
        Some(live.to_row(table, self.user_id))
    }

    /// An amount in cents for activity rows, a name number for the others.
    fn value_for(&mut self, table: Table) -> i64 {
        if table.tier() == 3 {
            self.rng.random_range(1..1_000_000)
        } else {
            self.rng.random_range(0..100_000)
        }
    }
}
