//! A synced row in compact form, and its conversion to and from the JSON rows PostgREST
//! (and `to_jsonb` in SQL) speak.

use crate::table::{MAX_FKS, Table};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One row of a synced table. `updated_at_ms` is milliseconds since the Unix epoch, stamped by
/// the writing device's (possibly skewed) clock: Precision-LWW compares exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub table: Table,
    pub id: Uuid,
    pub user_id: Uuid,
    pub updated_at_ms: i64,
    pub deleted: bool,
    /// Foreign keys in the order of [`Table::fks`]; slots past the table's FK count are `None`.
    pub refs: [Option<Uuid>; MAX_FKS],
    /// The row's one data value (see [`data_column`] for its column per table).
    pub value: i64,
}

/// Why a JSON row could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RowError {
    #[error("a {table} row is not a JSON object")]
    NotAnObject { table: Table },
    #[error("a {table} row lacks column `{column}`")]
    Missing { table: Table, column: &'static str },
    #[error("a {table} row has a malformed `{column}`: {found}")]
    Malformed {
        table: Table,
        column: &'static str,
        found: String,
    },
}

/// The data column each table carries besides the sync columns and foreign keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataColumn {
    /// A `text` column holding `"{prefix} {value}"`.
    Text {
        column: &'static str,
        prefix: &'static str,
    },
    /// A `bigint` column holding the value itself.
    Integer { column: &'static str },
}

/// The data column of `table` (agreed with `supabase/migrations`).
pub const fn data_column(table: Table) -> DataColumn {
    match table {
        Table::Wallets => DataColumn::Text {
            column: "name",
            prefix: "wallet",
        },
        Table::Channels => DataColumn::Text {
            column: "name",
            prefix: "channel",
        },
        Table::CategoriesUser => DataColumn::Text {
            column: "name",
            prefix: "category",
        },
        Table::Transactions => DataColumn::Integer {
            column: "amount_cents",
        },
        Table::Plans => DataColumn::Integer {
            column: "amount_cents",
        },
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`).
pub fn format_timestamp_ms(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => "invalid".to_owned(),
    }
}

/// Parses an RFC 3339 timestamp (any offset) into epoch milliseconds, truncating finer digits.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

impl Row {
    /// The PostgREST JSON object of this row (all columns, FK columns NULL when absent).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("id".into(), Value::String(self.id.to_string()));
        object.insert("user_id".into(), Value::String(self.user_id.to_string()));
        object.insert(
            "updated_at".into(),
            format_timestamp_ms(self.updated_at_ms).into(),
        );
        object.insert("deleted".into(), Value::Bool(self.deleted));
        for (fk, slot) in self.table.fks().iter().zip(self.refs) {
            let value = slot.map_or(Value::Null, |id| Value::String(id.to_string()));
            object.insert(fk.column.into(), value);
        }
        let (column, value) = match data_column(self.table) {
            DataColumn::Text { column, prefix } => {
                (column, format!("{prefix} {}", self.value).into())
            }
            DataColumn::Integer { column } => (column, Value::from(self.value)),
        };
        object.insert(column.into(), value);
        Value::Object(object)
    }

    /// Reads a row of `table` from a PostgREST / `to_jsonb` object. Extra columns are ignored.
    pub fn from_json(table: Table, json: &Value) -> Result<Row, RowError> {
        let object = json.as_object().ok_or(RowError::NotAnObject { table })?;
        let field = |column: &'static str| {
            object
                .get(column)
                .ok_or(RowError::Missing { table, column })
        };
        let malformed = |column: &'static str, found: &Value| RowError::Malformed {
            table,
            column,
            found: found.to_string(),
        };
        let uuid = |column: &'static str| -> Result<Uuid, RowError> {
            let v = field(column)?;
            v.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| malformed(column, v))
        };
        let updated = field("updated_at")?;
        let updated_at_ms = updated
            .as_str()
            .and_then(parse_timestamp_ms)
            .ok_or_else(|| malformed("updated_at", updated))?;
        let deleted_value = field("deleted")?;
        let deleted = deleted_value
            .as_bool()
            .ok_or_else(|| malformed("deleted", deleted_value))?;
        let mut refs = [None; MAX_FKS];
        for (slot, fk) in refs.iter_mut().zip(table.fks()) {
            *slot = match object.get(fk.column) {
                None | Some(Value::Null) if fk.optional => None,
                _ => Some(uuid(fk.column)?),
            };
        }
        Ok(Row {
            table,
            id: uuid("id")?,
            user_id: uuid("user_id")?,
            updated_at_ms,
            deleted,
            refs,
            value: read_value(table, object)?,
        })
    }
}

fn read_value(table: Table, object: &Map<String, Value>) -> Result<i64, RowError> {
    let (column, parsed) = match data_column(table) {
        DataColumn::Text { column, prefix } => {
            let v = object.get(column);
            let parsed = v.and_then(Value::as_str).and_then(|s| {
                s.strip_prefix(prefix)?
                    .strip_prefix(' ')?
                    .parse::<i64>()
                    .ok()
            });
            (column, parsed)
        }
        DataColumn::Integer { column } => {
            // PostgREST renders bigint as a number; to_jsonb of numeric may too.
            (column, object.get(column).and_then(Value::as_i64))
        }
    };
    match (object.get(column), parsed) {
        (_, Some(value)) => Ok(value),
        (None, None) => Err(RowError::Missing { table, column }),
        (Some(found), None) => Err(RowError::Malformed {
            table,
            column,
            found: found.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(table: Table) -> Row {
        let refs = match table.fks().len() {
            0 => [None; 3],
            1 => [None, None, None],
            2 => [Some(Uuid::from_u128(7)), None, None],
            _ => [
                Some(Uuid::from_u128(7)),
                Some(Uuid::from_u128(8)),
                Some(Uuid::from_u128(9)),
            ],
        };
        Row {
            table,
            id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            updated_at_ms: 1_790_000_000_123,
            deleted: table == Table::Plans,
            refs,
            value: -42,
        }
    }

    #[test]
    fn every_table_round_trips_through_json() {
        for table in Table::ALL {
            let row = sample(table);
            assert_eq!(Row::from_json(table, &row.to_json()), Ok(row));
        }
    }

    #[test]
    fn postgres_style_timestamps_with_offsets_and_micros_parse() {
        let ms = parse_timestamp_ms("2026-11-24T21:00:00.123456+01:00").unwrap();
        assert_eq!(format_timestamp_ms(ms), "2026-11-24T20:00:00.123Z");
    }

    #[test]
    fn bad_rows_name_the_column() {
        let mut json = sample(Table::Transactions).to_json();
        json["wallet_id"] = Value::Null;
        let err = Row::from_json(Table::Transactions, &json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a transactions row has a malformed `wallet_id`: null"
        );
        json.as_object_mut().unwrap().remove("updated_at");
        let err = Row::from_json(Table::Transactions, &json).unwrap_err();
        assert!(matches!(
            err,
            RowError::Missing {
                column: "updated_at",
                ..
            }
        ));
        assert!(Row::from_json(Table::Wallets, &Value::Null).is_err());
    }
}
