//! A synced row in compact form, and its conversion to and from the JSON rows PostgREST
//! (and `to_jsonb` in SQL) speak.

use crate::finos_columns;
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

/// How a table's data columns carry [`Row::value`] (the columns of
/// `supabase/migrations/20261124210000_finos_tables.sql` that have no default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataColumn {
    /// `name text` holding `"{prefix} {value}"`.
    Name { prefix: &'static str },
    /// `amount numeric(14, 2)` holding the value as cents; `name`, when given, is a constant
    /// text the table also requires.
    Amount { name: Option<&'static str> },
}

/// The data columns of `table`.
pub const fn data_column(table: Table) -> DataColumn {
    match table {
        Table::Wallets => DataColumn::Name { prefix: "wallet" },
        Table::Channels => DataColumn::Name { prefix: "channel" },
        Table::CategoriesUser => DataColumn::Name { prefix: "category" },
        Table::Transactions => DataColumn::Amount { name: None },
        Table::Plans => DataColumn::Amount { name: Some("plan") },
    }
}

/// Cents as a JSON number with two decimals' worth of value (`12345` → `123.45`).
fn cents_to_json(cents: i64) -> Value {
    serde_json::Number::from_f64(cents as f64 / 100.0).map_or(Value::Null, Value::Number)
}

/// A `numeric` amount, as PostgREST or `to_jsonb` render it (number, or string), to cents.
fn json_to_cents(value: &Value) -> Option<i64> {
    let amount = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.parse::<f64>().ok()?,
        _ => return None,
    };
    let cents = (amount * 100.0).round();
    (cents.is_finite() && cents.abs() < 9e15).then_some(cents as i64)
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
    /// The PostgREST JSON object of this row: every column, FK columns NULL when absent, and
    /// the FinOS columns the protocol does not read (see [`finos_columns`]).
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
        let extras = finos_columns::text_values(self.table, self.id);
        for (column, value) in finos_columns::text_columns(self.table).iter().zip(extras) {
            object.insert((*column).into(), value.map_or(Value::Null, Value::String));
        }
        if let Some(before) = finos_columns::occurred_before_ms(self.table, self.id) {
            let occurred = format_timestamp_ms(self.updated_at_ms - before);
            object.insert("occurred_at".into(), occurred.into());
        }
        match data_column(self.table) {
            DataColumn::Name { prefix } => {
                object.insert("name".into(), format!("{prefix} {}", self.value).into());
            }
            DataColumn::Amount { name } => {
                if let Some(name) = name {
                    object.insert("name".into(), name.into());
                }
                object.insert("amount".into(), cents_to_json(self.value));
            }
        }
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
    let (column, parsed): (&'static str, _) = match data_column(table) {
        DataColumn::Name { prefix } => {
            let parsed = object.get("name").and_then(Value::as_str).and_then(|s| {
                s.strip_prefix(prefix)?
                    .strip_prefix(' ')?
                    .parse::<i64>()
                    .ok()
            });
            ("name", parsed)
        }
        DataColumn::Amount { .. } => ("amount", object.get("amount").and_then(json_to_cents)),
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

/// The body of the `sync_push` RPC: `{"rows": [{"table": …, "row": {…}}, …]}`
/// (`supabase/migrations/20261124210200_sync_push.sql`; its answer's `lost` ids become
/// [`crate::PushAnswer::rejected`]).
pub fn sync_push_body(rows: &[Row]) -> Value {
    let entries: Vec<Value> = rows
        .iter()
        .map(|row| serde_json::json!({ "table": row.table.name(), "row": row.to_json() }))
        .collect();
    serde_json::json!({ "rows": entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(table: Table) -> Row {
        // Every FK set, except the optional parent of a category (exercises NULL).
        let mut refs = [None; MAX_FKS];
        for (i, (slot, fk)) in refs.iter_mut().zip(table.fks()).enumerate() {
            *slot = (!(fk.optional && table == Table::CategoriesUser))
                .then(|| Uuid::from_u128(7 + i as u128));
        }
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
    fn amounts_read_from_numbers_and_strings_as_cents() {
        let mut json = sample(Table::Plans).to_json();
        assert_eq!(json["amount"], serde_json::json!(-0.42));
        assert_eq!(json["name"], "plan");
        json["amount"] = serde_json::json!("1234.56");
        assert_eq!(Row::from_json(Table::Plans, &json).unwrap().value, 123_456);
        json["amount"] = serde_json::json!(9999.99);
        assert_eq!(Row::from_json(Table::Plans, &json).unwrap().value, 999_999);
    }

    #[test]
    fn sync_push_body_names_each_rows_table() {
        let body = sync_push_body(&[sample(Table::Wallets), sample(Table::Transactions)]);
        assert_eq!(body["rows"][0]["table"], "wallets");
        assert_eq!(
            body["rows"][1]["row"]["wallet_id"],
            Uuid::from_u128(7).to_string()
        );
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
