//! Change capture the way Supabase Realtime does it: a temporary logical replication slot,
//! polled through SQL, limited to the publication's tables. Two decoders feed it:
//! [`wal2json`] (format version 2, what Supabase Realtime polls; preferred) and [`pgoutput`]
//! (built into PostgreSQL, used when the wal2json plugin is not installed). Each turns its
//! output into [`RawChange`]s; [`assemble`] makes the one [`Change`] both agree on.

pub mod pgoutput;
pub mod wal2json;

use super::catalog::{Catalog, TableInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;
use syncstorm_wire::phoenix::{ChangeData, Column};
use tokio_postgres::Client;

/// INSERT, UPDATE or DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// One captured row change, with its `data` payload serialized once for every subscriber
/// (and serializable whole, for the processes the capture fans out to).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// Why a decoder's output could not be used.
#[derive(Debug, thiserror::Error)]
#[error("unexpected {decoder} output: {detail}")]
pub struct DecodeError {
    pub decoder: &'static str,
    pub detail: String,
}

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

/// The parts of a change every decoder reports about its transaction and table.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub schema: String,
    pub table: String,
    pub kind: ChangeKind,
    pub commit_time: DateTime<Utc>,
}

/// One column of a decoded tuple, its value already typed as wal2json prints it (numbers and
/// booleans as JSON, everything else as the type's text output).
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumn {
    pub name: String,
    pub typeoid: u32,
    /// The type's name as the decoder gave it, for an oid not (yet) in [`TypeNames`].
    pub type_hint: String,
    pub value: Value,
}

/// A row change as a decoder saw it, before the publication and Realtime's shape apply.
#[derive(Debug, Clone, PartialEq)]
pub struct RawChange {
    pub header: Header,
    /// The new row (INSERT, UPDATE).
    pub new: Option<Vec<RawColumn>>,
    /// The replica identity of the old row (UPDATE, DELETE).
    pub identity: Option<Vec<RawColumn>>,
    /// Primary-key columns: name and SQL type.
    pub pk: Vec<(String, String)>,
}

/// The [`Change`] Realtime sends for `raw`, or `None` for a table not in the publication.
pub fn assemble(raw: RawChange, catalog: &Catalog, types: &TypeNames) -> Option<Change> {
    let info = catalog.get(&raw.header.schema, &raw.header.table)?;
    let kind = raw.header.kind;
    let columns = describe_columns(raw.new.as_ref().or(raw.identity.as_ref()), types);
    let record = raw
        .new
        .filter(|_| kind != ChangeKind::Delete)
        .map(|c| to_record(&c, types));
    let mut old_record = raw
        .identity
        .filter(|_| kind != ChangeKind::Insert)
        .map(|c| to_record(&c, types));
    let pk = primary_key(&raw.pk, record.as_ref().or(old_record.as_ref()));
    if kind == ChangeKind::Delete && info.rls {
        // Supabase sends only the key of a deleted row when RLS is on.
        if let Some(old) = old_record.as_mut() {
            old.retain(|name, _| pk.iter().any(|(k, _, _)| k == name));
        }
    }
    Some(build(raw.header, columns, record, old_record, pk, info))
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

fn describe_columns(cols: Option<&Vec<RawColumn>>, types: &TypeNames) -> Vec<Column> {
    cols.into_iter()
        .flatten()
        .map(|c| Column {
            name: c.name.clone(),
            type_name: type_name(c, types),
        })
        .collect()
}

fn type_name(col: &RawColumn, types: &TypeNames) -> String {
    types
        .get(&col.typeoid)
        .cloned()
        .unwrap_or_else(|| col.type_hint.clone())
}

fn to_record(cols: &[RawColumn], types: &TypeNames) -> Map<String, Value> {
    cols.iter()
        .map(|c| {
            let value = to_jsonb_value(&type_name(c, types), c.value.clone());
            (c.name.clone(), value)
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

fn primary_key(
    pk: &[(String, String)],
    row: Option<&Map<String, Value>>,
) -> Vec<(String, String, String)> {
    let Some(row) = row else { return Vec::new() };
    pk.iter()
        .filter_map(|(name, type_name)| {
            let value = match row.get(name)? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((name.clone(), type_name.clone(), value))
        })
        .collect()
}

/// Parses PostgreSQL's text form of a timestamptz (`2026-11-24 21:00:00.123456+00`).
pub fn parse_pg_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A publication of one table `public.t` keyed by `id bigint`.
    pub fn catalog(rls: bool) -> Catalog {
        let mut c = Catalog::default();
        let info = TableInfo {
            columns: vec!["id".into()],
            rls,
            pk: vec![("id".into(), 20)],
        };
        c.tables.insert(("public".into(), "t".into()), info);
        c
    }

    pub fn types() -> TypeNames {
        [
            (20, "int8"),
            (25, "text"),
            (1184, "timestamptz"),
            (2950, "uuid"),
        ]
        .into_iter()
        .map(|(o, n)| (o, n.to_string()))
        .collect()
    }
}
