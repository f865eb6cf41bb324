//! The five synced tables, their tiers and their foreign keys (sync-protocol.md, "Data").

use serde::{Deserialize, Serialize};

/// One of the five synced tables. The discriminant is the table's index in [`Table::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Wallets = 0,
    Channels = 1,
    CategoriesUser = 2,
    Transactions = 3,
    Plans = 4,
}

/// A foreign-key column of a synced table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FkColumn {
    /// Column name in the table, e.g. `wallet_id`.
    pub column: &'static str,
    /// The table the column points at.
    pub parent: Table,
    /// Whether the column may be NULL.
    pub optional: bool,
}

const fn fk(column: &'static str, parent: Table, optional: bool) -> FkColumn {
    FkColumn {
        column,
        parent,
        optional,
    }
}

const CHANNEL_FKS: [FkColumn; 1] = [fk("wallet_id", Table::Wallets, false)];
const CATEGORY_FKS: [FkColumn; 1] = [fk("parent_id", Table::CategoriesUser, true)];
const TRANSACTION_FKS: [FkColumn; 3] = [
    fk("wallet_id", Table::Wallets, false),
    fk("channel_id", Table::Channels, false),
    fk("category_id", Table::CategoriesUser, false),
];
const PLAN_FKS: [FkColumn; 2] = [
    fk("category_id", Table::CategoriesUser, false),
    fk("wallet_id", Table::Wallets, true),
];

/// Most foreign keys any table has (transactions: three).
pub const MAX_FKS: usize = 3;

impl Table {
    /// All tables, parents before children (tier order).
    pub const ALL: [Table; 5] = [
        Table::Wallets,
        Table::Channels,
        Table::CategoriesUser,
        Table::Transactions,
        Table::Plans,
    ];

    /// The table's name in PostgreSQL and in PostgREST paths.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Wallets => "wallets",
            Table::Channels => "channels",
            Table::CategoriesUser => "categories_user",
            Table::Transactions => "transactions",
            Table::Plans => "plans",
        }
    }

    /// Looks a table up by its SQL name.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Sync tier: 1 core, 2 dependent, 3 activity. Pulls and pushes go tier by tier.
    pub const fn tier(self) -> u8 {
        match self {
            Table::Wallets => 1,
            Table::Channels | Table::CategoriesUser => 2,
            Table::Transactions | Table::Plans => 3,
        }
    }

    /// The tables of one tier, in their fixed order.
    pub fn of_tier(tier: u8) -> impl Iterator<Item = Table> {
        Table::ALL.into_iter().filter(move |t| t.tier() == tier)
    }

    /// Position in [`Table::ALL`]; handy for per-table arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Foreign-key columns, in the order [`crate::Row::refs`] stores them.
    pub const fn fks(self) -> &'static [FkColumn] {
        match self {
            Table::Wallets => &[],
            Table::Channels => &CHANNEL_FKS,
            Table::CategoriesUser => &CATEGORY_FKS,
            Table::Transactions => &TRANSACTION_FKS,
            Table::Plans => &PLAN_FKS,
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parent_sits_in_a_lower_or_same_tier() {
        for table in Table::ALL {
            for fk in table.fks() {
                assert!(fk.parent.tier() <= table.tier(), "{table}.{}", fk.column);
                assert!(fk.parent.tier() < table.tier() || fk.optional);
            }
        }
    }

    #[test]
    fn names_round_trip_and_indices_match() {
        for (i, table) in Table::ALL.into_iter().enumerate() {
            assert_eq!(Table::from_name(table.name()), Some(table));
            assert_eq!(table.index(), i);
        }
        assert_eq!(Table::from_name("users"), None);
        assert_eq!(
            Table::of_tier(3).collect::<Vec<_>>(),
            [Table::Transactions, Table::Plans]
        );
    }
}
