//! Change capture the way Supabase Realtime does it: a temporary logical replication slot with
//! the `wal2json` plugin, polled with `pg_logical_slot_get_changes`, limited to the
//! publication's tables. This file decodes wal2json's format-version 2 into [`Change`]s.

use super::catalog::{Catalog, TableInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use syncstorm_wire::phoenix::{ChangeData, Column};
use tokio_postgres::Client;

/// INSERT, UPDATE or DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Update => "UPDATE",
            ChangeKind::Delete => "DELETE",
        }
    }
}

/// One captured row change, with its `data` payload serialized once for every subscriber.
#[derive(Debug, Clone)]
pub struct Change {
    pub schema: String,
    pub table: String,
    pub kind: ChangeKind,
    pub commit_time: DateTime<Utc>,
    pub record: Option<Map<String, Value>>,
    pub old_record: Option<Map<String, Value>>,
    /// Primary-key columns: name, SQL type and value as text (for the visibility check).
    pub pk: Vec<(String, String, String)>,
    /// Whether subscribers must pass a row visibility check (RLS on, not a DELETE).
    pub needs_rls_check: bool,
    /// The JSON of `data` in the `postgres_changes` payload.
    pub data_json: String,
}

impl Change {
    /// The record filters are evaluated on: the new row, or the old key for a DELETE.
    pub fn filter_record(&self) -> Option<&Map<String, Value>> {
        self.record.as_ref().or(self.old_record.as_ref())
    }
}

/// Why a wal2json line could not be used.
#[derive(Debug, thiserror::Error)]
#[error("unexpected wal2json output: {0}")]
pub struct DecodeError(String);

/// `pg_type` oid → `typname`, the names Realtime puts in `columns` (`int8`, `timestamptz`, …).
pub type TypeNames = HashMap<u32, String>;

pub async fn load_type_names(client: &Client) -> Result<TypeNames, tokio_postgres::Error> {
    let rows = client
        .query("select oid::int8, typname::text from pg_type", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i64>(0) as u32, r.get(1)))
        .collect())
}

/// The parts of a wal2json line every change has.
struct Header {
    schema: String,
    table: String,
    kind: ChangeKind,
    commit_time: DateTime<Utc>,
}

fn header(v: &Value, line: &str) -> Result<Option<Header>, DecodeError> {
    let kind = match v["action"].as_str() {
        Some("I") => ChangeKind::Insert,
        Some("U") => ChangeKind::Update,
        Some("D") => ChangeKind::Delete,
        _ => return Ok(None),
    };
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| DecodeError(format!("no {k} in {line}")))
    };
    let commit_time = parse_pg_timestamp(&field("timestamp")?)
        .ok_or_else(|| DecodeError(format!("bad timestamp in {line}")))?;
    Ok(Some(Header {
        schema: field("schema")?,
        table: field("table")?,
        kind,
        commit_time,
    }))
}

/// Decodes one wal2json format-version 2 line. `Ok(None)` for actions that are not row changes
/// (truncate, messages) and for tables not in the publication.
pub fn decode(
    line: &str,
    catalog: &Catalog,
    types: &TypeNames,
) -> Result<Option<Change>, DecodeError> {
    let v: Value = serde_json::from_str(line).map_err(|e| DecodeError(e.to_string()))?;
    let Some(h) = header(&v, line)? else {
        return Ok(None);
    };
    let Some(info) = catalog.get(&h.schema, &h.table) else {
        return Ok(None);
    };
    let new_cols = v["columns"].as_array();
    let old_cols = v["identity"].as_array();
    let columns = describe_columns(new_cols.or(old_cols), types);
    let record = new_cols
        .filter(|_| h.kind != ChangeKind::Delete)
        .map(|c| to_record(c, types));
    let mut old_record = old_cols
        .filter(|_| h.kind != ChangeKind::Insert)
        .map(|c| to_record(c, types));
    let pk = primary_key(&v, record.as_ref().or(old_record.as_ref()));
    if h.kind == ChangeKind::Delete && info.rls {
        // Supabase sends only the key of a deleted row when RLS is on.
        if let Some(old) = old_record.as_mut() {
            old.retain(|name, _| pk.iter().any(|(k, _, _)| k == name));
        }
    }
    Ok(Some(build(h, columns, record, old_record, pk, info)))
}

fn build(
    h: Header,
    columns: Vec<Column>,
    record: Option<Map<String, Value>>,
    old_record: Option<Map<String, Value>>,
    pk: Vec<(String, String, String)>,
    info: &TableInfo,
) -> Change {
    let data = ChangeData {
        schema: h.schema.clone(),
        table: h.table.clone(),
        commit_timestamp: h.commit_time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        change_type: h.kind.as_str().to_string(),
        columns,
        record: record.clone().map(Value::Object),
        old_record: old_record.clone().map(Value::Object),
        errors: None,
    };
    Change {
        data_json: serde_json::to_string(&data).unwrap_or_default(),
        needs_rls_check: info.rls && h.kind != ChangeKind::Delete,
        schema: h.schema,
        table: h.table,
        kind: h.kind,
        commit_time: h.commit_time,
        record,
        old_record,
        pk,
    }
}

fn describe_columns(cols: Option<&Vec<Value>>, types: &TypeNames) -> Vec<Column> {
    cols.into_iter()
        .flatten()
        .map(|c| Column {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            type_name: type_name(c, types),
        })
        .collect()
}

fn type_name(col: &Value, types: &TypeNames) -> String {
    let oid = col["typeoid"].as_u64().unwrap_or(0) as u32;
    types
        .get(&oid)
        .cloned()
        .unwrap_or_else(|| col["type"].as_str().unwrap_or("text").to_string())
}

fn to_record(cols: &[Value], types: &TypeNames) -> Map<String, Value> {
    cols.iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or_default().to_string();
            (
                name,
                to_jsonb_value(&type_name(c, types), c["value"].clone()),
            )
        })
        .collect()
}

/// Renders a value as Realtime does (`to_jsonb` of the typed value): ISO timestamps with `T`
/// and a full offset, json columns as JSON rather than strings.
fn to_jsonb_value(typname: &str, value: Value) -> Value {
    let Value::String(text) = &value else {
        return value;
    };
    match typname {
        "timestamptz" => Value::String(iso_timestamptz(text)),
        "timestamp" => Value::String(text.replacen(' ', "T", 1)),
        "json" | "jsonb" => serde_json::from_str(text).unwrap_or(value),
        _ => value,
    }
}

fn iso_timestamptz(text: &str) -> String {
    let iso = text.replacen(' ', "T", 1);
    let offset_at = iso.rfind(['+', '-']).filter(|&i| i > 10);
    match offset_at {
        Some(i) if iso.len() - i == 3 => format!("{iso}:00"),
        _ => iso,
    }
}

fn primary_key(v: &Value, row: Option<&Map<String, Value>>) -> Vec<(String, String, String)> {
    let Some(row) = row else { return Vec::new() };
    v["pk"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            let value = match row.get(name)? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((name.to_string(), p["type"].as_str()?.to_string(), value))
        })
        .collect()
}

/// Parses PostgreSQL's text form of a timestamptz (`2026-11-24 21:00:00.123456+00`).
pub fn parse_pg_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// SQL of one poll; `$1` slot, `$2` max changes, `$3` add-tables.
pub const POLL_SQL: &str = "select data from pg_logical_slot_get_changes($1, null, $2, \
     'format-version', '2', 'include-pk', '1', 'include-transaction', '0', \
     'include-timestamp', '1', 'include-type-oids', '1', 'add-tables', $3)";

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(rls: bool) -> Catalog {
        let mut c = Catalog::default();
        let info = TableInfo {
            columns: vec!["id".into()],
            rls,
        };
        c.tables.insert(("public".into(), "t".into()), info);
        c
    }

    fn types() -> TypeNames {
        [(20, "int8"), (1184, "timestamptz"), (2950, "uuid")]
            .into_iter()
            .map(|(o, n)| (o, n.to_string()))
            .collect()
    }

    const UPDATE: &str = r#"{"action":"U","timestamp":"2026-11-24 21:00:00.123456+00","schema":"public","table":"t",
      "columns":[{"name":"id","type":"bigint","typeoid":20,"value":7},
                 {"name":"at","type":"timestamp with time zone","typeoid":1184,"value":"2026-11-24 21:00:00.5+00"}],
      "identity":[{"name":"id","type":"bigint","typeoid":20,"value":7}],
      "pk":[{"name":"id","type":"bigint","typeoid":20}]}"#;

    #[test]
    fn update_carries_new_and_old_with_supabase_types() {
        let c = decode(UPDATE, &catalog(true), &types()).unwrap().unwrap();
        assert_eq!(c.kind, ChangeKind::Update);
        assert!(c.needs_rls_check);
        assert_eq!(
            c.record.as_ref().unwrap()["at"],
            "2026-11-24T21:00:00.5+00:00"
        );
        assert_eq!(c.old_record.as_ref().unwrap()["id"], 7);
        assert_eq!(c.pk, vec![("id".into(), "bigint".into(), "7".into())]);
        let data: Value = serde_json::from_str(&c.data_json).unwrap();
        assert_eq!(data["commit_timestamp"], "2026-11-24T21:00:00.123Z");
        assert_eq!(
            data["columns"][0],
            serde_json::json!({"name": "id", "type": "int8"})
        );
        assert_eq!(data["errors"], Value::Null);
    }

    #[test]
    fn deletes_skip_the_row_check_and_keep_only_the_key_under_rls() {
        let line = r#"{"action":"D","timestamp":"2026-11-24 21:00:00+00","schema":"public","table":"t",
          "identity":[{"name":"id","type":"bigint","typeoid":20,"value":7},{"name":"x","type":"text","typeoid":25,"value":"a"}],
          "pk":[{"name":"id","type":"bigint","typeoid":20}]}"#;
        let c = decode(line, &catalog(true), &types()).unwrap().unwrap();
        assert!(!c.needs_rls_check && c.record.is_none());
        assert_eq!(c.old_record.unwrap().keys().collect::<Vec<_>>(), ["id"]);
    }

    #[test]
    fn other_tables_and_actions_are_skipped_and_garbage_is_an_error() {
        let truncate = r#"{"action":"T","schema":"public","table":"t"}"#;
        assert!(
            decode(truncate, &catalog(true), &types())
                .unwrap()
                .is_none()
        );
        let other = UPDATE.replace("\"t\"", "\"other\"");
        assert!(decode(&other, &catalog(true), &types()).unwrap().is_none());
        assert!(decode("nope", &catalog(true), &types()).is_err());
    }
}
