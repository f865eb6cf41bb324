//! The columns a FinOS row carries beyond those the protocol reads (currency, note, kind,
//! period, occurred_at), so a pull page, a push body and a realtime change weigh what the
//! app's rows weigh. They are derived from the row's id (and `updated_at`), never stored in the
//! device's compact store: the protocol never compares them, the wire carries them.

use crate::table::Table;
use uuid::Uuid;

/// Currencies a FinOS user keeps (its first market is Bangladesh).
const CURRENCIES: [&str; 4] = ["BDT", "BDT", "USD", "EUR"];
const CHANNEL_KINDS: [&str; 4] = ["cash", "bank", "mobile_banking", "card"];
const PERIODS: [&str; 3] = ["week", "month", "year"];
/// Words notes are made of: short, as people type them on a phone.
const NOTE_WORDS: [&str; 24] = [
    "groceries",
    "rickshaw",
    "rent",
    "lunch",
    "with",
    "family",
    "bKash",
    "transfer",
    "to",
    "salary",
    "electricity",
    "bill",
    "for",
    "November",
    "tea",
    "stall",
    "medicine",
    "school",
    "fees",
    "mobile",
    "top-up",
    "dinner",
    "market",
    "gift",
];
/// Share of transactions without a note, and the longest note (characters).
const NO_NOTE_PER_100: u64 = 35;
const NOTE_MAX_CHARS: usize = 64;
/// A transaction occurred up to this long before it was last written.
const OCCURRED_BEFORE_MAX_MS: u64 = 2 * 86_400_000;

/// The text columns of `table` past the protocol's own, in this order, for `id`'s row
/// (`None`: SQL NULL).
pub fn text_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Wallets => &["currency"],
        Table::Channels | Table::CategoriesUser => &["kind"],
        Table::Transactions => &["currency", "note"],
        Table::Plans => &["period"],
    }
}

/// The values of [`text_columns`] for row `id`.
pub fn text_values(table: Table, id: Uuid) -> Vec<Option<String>> {
    let h = hash(id);
    let pick = |list: &[&'static str], salt: u64| list[(mix(h, salt) % list.len() as u64) as usize];
    match table {
        Table::Wallets => vec![Some(pick(&CURRENCIES, 1).to_owned())],
        Table::Channels => vec![Some(pick(&CHANNEL_KINDS, 2).to_owned())],
        Table::CategoriesUser => {
            let kind = if mix(h, 3).is_multiple_of(5) {
                "income"
            } else {
                "expense"
            };
            vec![Some(kind.to_owned())]
        }
        Table::Transactions => vec![Some(pick(&CURRENCIES, 1).to_owned()), note(h)],
        Table::Plans => vec![Some(pick(&PERIODS, 4).to_owned())],
    }
}

/// How long before its `updated_at` a transaction occurred (a phone records spending after
/// the fact); `None` for tables without `occurred_at`.
pub fn occurred_before_ms(table: Table, id: Uuid) -> Option<i64> {
    (table == Table::Transactions).then(|| (mix(hash(id), 5) % OCCURRED_BEFORE_MAX_MS) as i64)
}

/// A note of 0..=64 characters, or none.
fn note(h: u64) -> Option<String> {
    if mix(h, 6) % 100 < NO_NOTE_PER_100 {
        return None;
    }
    let target = 6 + (mix(h, 7) % (NOTE_MAX_CHARS as u64 - 6)) as usize;
    let mut text = String::with_capacity(NOTE_MAX_CHARS);
    let mut n = 0;
    while text.len() < target {
        let word = NOTE_WORDS[(mix(h, 100 + n) % NOTE_WORDS.len() as u64) as usize];
        if text.len() + word.len() + 1 > NOTE_MAX_CHARS {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
        n += 1;
    }
    Some(text)
}

fn hash(id: Uuid) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64)
}

/// SplitMix64 of `h + salt`: independent draws from one id.
fn mix(h: u64, salt: u64) -> u64 {
    let mut z = h.wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_as_many_values_as_columns() {
        for table in Table::ALL {
            for n in 0..50 {
                let values = text_values(table, Uuid::from_u128(n * 7919));
                assert_eq!(values.len(), text_columns(table).len(), "{table}");
            }
        }
    }

    #[test]
    fn notes_look_like_phone_notes() {
        let notes: Vec<Option<String>> = (0..2_000u128)
            .map(|n| {
                text_values(
                    Table::Transactions,
                    Uuid::from_u128(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)),
                )[1]
                .clone()
            })
            .collect();
        let empty = notes.iter().filter(|n| n.is_none()).count();
        assert!(
            (500..900).contains(&empty),
            "{empty} of 2000 without a note"
        );
        let lengths: Vec<usize> = notes.iter().flatten().map(String::len).collect();
        assert!(lengths.iter().all(|l| (1..=NOTE_MAX_CHARS).contains(l)));
        let mean = lengths.iter().sum::<usize>() as f64 / lengths.len() as f64;
        assert!((20.0..50.0).contains(&mean), "mean note length {mean}");
        // Derived, not random: the same id gives the same note.
        let id = Uuid::from_u128(42);
        assert_eq!(
            text_values(Table::Transactions, id),
            text_values(Table::Transactions, id)
        );
    }

    #[test]
    fn categories_are_mostly_expenses_and_transactions_occur_before_their_write() {
        let incomes = (0..1_000u128)
            .filter(|n| {
                text_values(Table::CategoriesUser, Uuid::from_u128(n * 104_729))[0].as_deref()
                    == Some("income")
            })
            .count();
        assert!((120..280).contains(&incomes), "{incomes}");
        let before = occurred_before_ms(Table::Transactions, Uuid::from_u128(9)).unwrap();
        assert!((0..OCCURRED_BEFORE_MAX_MS as i64).contains(&before));
        assert_eq!(occurred_before_ms(Table::Wallets, Uuid::from_u128(9)), None);
    }
}
