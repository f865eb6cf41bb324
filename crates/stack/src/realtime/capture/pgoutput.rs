//! PostgreSQL's built-in `pgoutput` plugin (logical replication protocol version 1), read
//! through `pg_logical_slot_get_binary_changes`: the fallback when wal2json is not installed.
//! The publication filters the tables on the server, as it does for a subscriber. Values are
//! typed as wal2json types them, so both decoders give subscribers the same payload.

use super::{ChangeKind, DecodeError, Header, RawChange, RawColumn, TypeNames};
use crate::realtime::catalog::Catalog;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::collections::HashMap;

/// The output plugin's name.
pub const PLUGIN: &str = "pgoutput";

/// SQL of one poll; `$1` slot, `$2` max changes, `$3` publication names (quoted identifiers).
pub const POLL_SQL: &str = "select data from pg_logical_slot_get_binary_changes($1, null, $2, \
     'proto_version', '1', 'publication_names', $3)";

/// `publication_names` takes a list of identifiers: quote the name as an identifier.
pub fn publication_names(publication: &str) -> String {
    format!("\"{}\"", publication.replace('"', "\"\""))
}

fn error(detail: impl Into<String>) -> DecodeError {
    DecodeError {
        decoder: PLUGIN,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone)]
struct RelColumn {
    name: String,
    typeoid: u32,
    /// Part of the replica identity.
    key: bool,
}

#[derive(Debug, Clone)]
struct Relation {
    schema: String,
    table: String,
    columns: Vec<RelColumn>,
}

/// Decoding state that outlives one message: the relations announced so far and the commit
/// time of the transaction being read.
#[derive(Debug, Default)]
pub struct Decoder {
    relations: HashMap<u32, Relation>,
    commit_time: Option<DateTime<Utc>>,
}

impl Decoder {
    /// Decodes one message. `Ok(None)` for messages that are not row changes (begin, commit,
    /// relation, type, origin, truncate).
    pub fn decode(
        &mut self,
        msg: &[u8],
        catalog: &Catalog,
        types: &TypeNames,
    ) -> Result<Option<RawChange>, DecodeError> {
        let mut r = Reader(msg);
        let kind = match r.u8()? {
            b'B' => {
                r.i64()?; // final LSN
                self.commit_time = Some(pg_epoch_micros(r.i64()?));
                return Ok(None);
            }
            b'R' => {
                self.relation(&mut r)?;
                return Ok(None);
            }
            b'I' => ChangeKind::Insert,
            b'U' => ChangeKind::Update,
            b'D' => ChangeKind::Delete,
            _ => return Ok(None),
        };
        self.change(kind, &mut r, catalog, types).map(Some)
    }

    /// Whether an announced relation has a column type missing from `types`.
    pub fn names_unknown_type(&self, types: &TypeNames) -> bool {
        self.relations
            .values()
            .flat_map(|rel| &rel.columns)
            .any(|c| !types.contains_key(&c.typeoid))
    }

    fn relation(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let oid = r.u32()?;
        let schema = match r.cstr()? {
            "" => "pg_catalog".to_string(),
            s => s.to_string(),
        };
        let table = r.cstr()?.to_string();
        r.u8()?; // replica identity setting
        let n = r.i16()?;
        let columns = (0..n)
            .map(|_| {
                let key = r.u8()? & 1 == 1;
                let name = r.cstr()?.to_string();
                let typeoid = r.u32()?;
                r.i32()?; // typmod
                Ok(RelColumn { name, typeoid, key })
            })
            .collect::<Result<_, DecodeError>>()?;
        self.relations.insert(
            oid,
            Relation {
                schema,
                table,
                columns,
            },
        );
        Ok(())
    }

    fn change(
        &self,
        kind: ChangeKind,
        r: &mut Reader<'_>,
        catalog: &Catalog,
        types: &TypeNames,
    ) -> Result<RawChange, DecodeError> {
        let oid = r.u32()?;
        let rel = self
            .relations
            .get(&oid)
            .ok_or_else(|| error(format!("a change of relation {oid} before its description")))?;
        let commit_time = self
            .commit_time
            .ok_or_else(|| error("a change outside a transaction"))?;
        let mut new = None;
        let mut identity = None;
        loop {
            match r.u8()? {
                b'N' => {
                    new = Some(tuple(r, rel, false)?);
                    break;
                }
                b'K' => identity = Some(tuple(r, rel, true)?),
                b'O' => identity = Some(tuple(r, rel, false)?),
                other => return Err(error(format!("tuple marker {other:#x}"))),
            }
            if kind == ChangeKind::Delete {
                break;
            }
        }
        if kind == ChangeKind::Update && identity.is_none() {
            // The key did not change: wal2json reads it off the new row; so do we.
            identity = new.as_ref().map(|cols| key_columns(cols, rel));
        }
        let header = Header {
            schema: rel.schema.clone(),
            table: rel.table.clone(),
            kind,
            commit_time,
        };
        let pk = primary_key(catalog, &header, types);
        Ok(RawChange {
            header,
            new,
            identity,
            pk,
        })
    }
}

/// The table's primary key from the catalog (the relation's key flags name the replica
/// identity, which is every column under `REPLICA IDENTITY FULL`).
fn primary_key(catalog: &Catalog, h: &Header, types: &TypeNames) -> Vec<(String, String)> {
    let Some(info) = catalog.get(&h.schema, &h.table) else {
        return Vec::new();
    };
    info.pk
        .iter()
        .map(|(name, oid)| {
            let ty = types.get(oid).cloned().unwrap_or_else(|| "text".into());
            (name.clone(), ty)
        })
        .collect()
}

fn key_columns(cols: &[RawColumn], rel: &Relation) -> Vec<RawColumn> {
    cols.iter()
        .filter(|c| rel.columns.iter().any(|rc| rc.key && rc.name == c.name))
        .cloned()
        .collect()
}

/// One TupleData; `key_only` keeps the replica identity columns (an old key carries nulls
/// for the rest). Unchanged TOASTed values are left out, as wal2json leaves them out.
fn tuple(
    r: &mut Reader<'_>,
    rel: &Relation,
    key_only: bool,
) -> Result<Vec<RawColumn>, DecodeError> {
    let n = r.i16()? as usize;
    if n != rel.columns.len() {
        return Err(error(format!(
            "{n} columns for {}.{}, described with {}",
            rel.schema,
            rel.table,
            rel.columns.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for col in &rel.columns {
        let value = match r.u8()? {
            b'n' => Some(Value::Null),
            b'u' => None,
            b't' => {
                let len = r.i32()? as usize;
                let text = std::str::from_utf8(r.take(len)?)
                    .map_err(|_| error("a text value that is not UTF-8"))?;
                Some(typed_like_wal2json(col.typeoid, text))
            }
            other => return Err(error(format!("column kind {other:#x}"))),
        };
        if let Some(value) = value.filter(|_| !key_only || col.key) {
            out.push(RawColumn {
                name: col.name.clone(),
                typeoid: col.typeoid,
                type_hint: "text".to_string(),
                value,
            });
        }
    }
    Ok(out)
}

const BOOL: u32 = 16;
const BYTEA: u32 = 17;
const NUMBERS: [u32; 7] = [20, 21, 23, 26, 700, 701, 1700]; // int8 int2 int4 oid float4 float8 numeric

/// wal2json's rule: numbers bare (NaN and infinities as null), booleans as `true`/`false`,
/// bytea without its `\x`, everything else as its text output.
fn typed_like_wal2json(typeoid: u32, text: &str) -> Value {
    match typeoid {
        BOOL => Value::Bool(text == "t"),
        BYTEA => Value::String(text.strip_prefix("\\x").unwrap_or(text).to_string()),
        oid if NUMBERS.contains(&oid) => serde_json::from_str::<serde_json::Number>(text)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        _ => Value::String(text.to_string()),
    }
}

/// Microseconds since 2000-01-01 UTC, PostgreSQL's timestamp epoch.
fn pg_epoch_micros(micros: i64) -> DateTime<Utc> {
    const UNIX_TO_PG_MICROS: i64 = 946_684_800_000_000;
    Utc.timestamp_micros(micros + UNIX_TO_PG_MICROS)
        .single()
        .unwrap_or_default()
}

/// Big-endian reads off a message, each failing cleanly at the end of the bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(error("a message cut short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn cstr(&mut self) -> Result<&'a str, DecodeError> {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| error("a name without its terminator"))?;
        let s = std::str::from_utf8(&self.0[..end]).map_err(|_| error("a name not in UTF-8"))?;
        self.0 = &self.0[end + 1..];
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{catalog, types};
    use super::super::{Change, assemble};
    use super::*;

    /// Builds protocol messages the way pgoutput writes them.
    #[derive(Default)]
    struct Msg(Vec<u8>);
    impl Msg {
        fn byte(mut self, b: u8) -> Self {
            self.0.push(b);
            self
        }
        fn i16(mut self, v: i16) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend(v.to_be_bytes());
            self
        }
        fn cstr(mut self, s: &str) -> Self {
            self.0.extend(s.as_bytes());
            self.0.push(0);
            self
        }
        fn text(self, s: &str) -> Self {
            let mut m = self.byte(b't').i32(s.len() as i32);
            m.0.extend(s.as_bytes());
            m
        }
    }

    /// 2026-11-24 21:00:00.123456 UTC in PostgreSQL epoch microseconds.
    const COMMIT: i64 = 848_869_200_123_456;

    fn begin() -> Vec<u8> {
        Msg::default().byte(b'B').i64(1).i64(COMMIT).i32(9).0
    }

    fn relation() -> Vec<u8> {
        Msg::default()
            .byte(b'R')
            .i32(77)
            .cstr("public")
            .cstr("t")
            .byte(b'd')
            .i16(3)
            .byte(1)
            .cstr("id")
            .i32(20)
            .i32(-1)
            .byte(0)
            .cstr("at")
            .i32(1184)
            .i32(-1)
            .byte(0)
            .cstr("x")
            .i32(25)
            .i32(-1)
            .0
    }

    fn decode_all(msgs: &[Vec<u8>], rls: bool) -> Vec<Change> {
        let mut d = Decoder::default();
        let (cat, types) = (catalog(rls), types());
        msgs.iter()
            .filter_map(|m| d.decode(m, &cat, &types).unwrap())
            .filter_map(|raw| assemble(raw, &cat, &types))
            .collect()
    }

    #[test]
    fn update_without_a_key_change_reads_the_key_off_the_new_row() {
        let update = Msg::default()
            .byte(b'U')
            .i32(77)
            .byte(b'N')
            .i16(3)
            .text("7")
            .text("2026-11-24 21:00:00.5+00")
            .byte(b'n')
            .0;
        let changes = decode_all(&[begin(), relation(), update], true);
        let c = &changes[0];
        assert_eq!(c.kind, ChangeKind::Update);
        assert!(c.needs_rls_check);
        let record = c.record.as_ref().unwrap();
        assert_eq!(record["id"], 7);
        assert_eq!(record["at"], "2026-11-24T21:00:00.5+00:00");
        assert_eq!(record["x"], Value::Null);
        assert_eq!(c.old_record.as_ref().unwrap().len(), 1);
        assert_eq!(c.old_record.as_ref().unwrap()["id"], 7);
        assert_eq!(c.pk, vec![("id".into(), "int8".into(), "7".into())]);
        let data: Value = serde_json::from_str(&c.data_json).unwrap();
        assert_eq!(data["commit_timestamp"], "2026-11-24T21:00:00.123Z");
        assert_eq!(data["columns"][1]["type"], "timestamptz");
    }

    #[test]
    fn delete_under_rls_keeps_only_the_key_and_skips_the_row_check() {
        let delete = Msg::default()
            .byte(b'D')
            .i32(77)
            .byte(b'K')
            .i16(3)
            .text("7")
            .byte(b'n')
            .byte(b'n')
            .0;
        let c = &decode_all(&[begin(), relation(), delete], true)[0];
        assert!(!c.needs_rls_check && c.record.is_none());
        assert_eq!(
            c.old_record.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["id"]
        );
    }

    #[test]
    fn unchanged_toast_is_left_out_and_values_are_typed_like_wal2json() {
        let insert = Msg::default()
            .byte(b'I')
            .i32(77)
            .byte(b'N')
            .i16(3)
            .text("8")
            .text("2026-11-24 21:00:00+00")
            .byte(b'u')
            .0;
        let c = &decode_all(&[begin(), relation(), insert], false)[0];
        assert!(!c.record.as_ref().unwrap().contains_key("x"));
        assert!(c.old_record.is_none());
        assert_eq!(typed_like_wal2json(16, "t"), Value::Bool(true));
        assert_eq!(typed_like_wal2json(1700, "12.50"), serde_json::json!(12.5));
        assert_eq!(typed_like_wal2json(701, "NaN"), Value::Null);
        assert_eq!(typed_like_wal2json(17, "\\x4142"), "4142");
    }

    #[test]
    fn cut_messages_and_unknown_relations_are_errors_not_panics() {
        let mut d = Decoder::default();
        let (cat, types) = (catalog(true), types());
        assert!(d.decode(&relation()[..10], &cat, &types).is_err());
        assert!(d.decode(&begin(), &cat, &types).unwrap().is_none());
        let orphan = Msg::default().byte(b'I').i32(5).byte(b'N').i16(0).0;
        assert!(d.decode(&orphan, &cat, &types).is_err());
        assert!(d.decode(&[], &cat, &types).is_err());
    }

    #[test]
    fn publication_names_are_quoted_identifiers() {
        assert_eq!(
            publication_names("supabase_realtime"),
            "\"supabase_realtime\""
        );
        assert_eq!(publication_names("a\"b"), "\"a\"\"b\"");
    }
}
