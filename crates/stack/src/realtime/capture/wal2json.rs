//! wal2json's format version 2, one JSON object per change, as Supabase Realtime polls it.

use super::{ChangeKind, DecodeError, Header, RawChange, RawColumn, parse_pg_timestamp};
use serde_json::Value;

/// The output plugin's name.
pub const PLUGIN: &str = "wal2json";

/// SQL of one poll; `$1` slot, `$2` max changes, `$3` add-tables.
pub const POLL_SQL: &str = "select data from pg_logical_slot_get_changes($1, null, $2, \
     'format-version', '2', 'include-pk', '1', 'include-transaction', '0', \
     'include-timestamp', '1', 'include-type-oids', '1', 'add-tables', $3)";

fn error(detail: String) -> DecodeError {
    DecodeError {
        decoder: PLUGIN,
        detail,
    }
}

/// Decodes one line. `Ok(None)` for actions that are not row changes (truncate, messages).
pub fn decode(line: &str) -> Result<Option<RawChange>, DecodeError> {
    let v: Value = serde_json::from_str(line).map_err(|e| error(e.to_string()))?;
    let Some(header) = header(&v, line)? else {
        return Ok(None);
    };
    let pk = v["pk"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.into(), p["type"].as_str()?.into())))
        .collect();
    Ok(Some(RawChange {
        header,
        new: v["columns"].as_array().map(|c| columns(c)),
        identity: v["identity"].as_array().map(|c| columns(c)),
        pk,
    }))
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
            .ok_or_else(|| error(format!("no {k} in {line}")))
    };
    let commit_time = parse_pg_timestamp(&field("timestamp")?)
        .ok_or_else(|| error(format!("bad timestamp in {line}")))?;
    Ok(Some(Header {
        schema: field("schema")?,
        table: field("table")?,
        kind,
        commit_time,
    }))
}

fn columns(cols: &[Value]) -> Vec<RawColumn> {
    cols.iter()
        .map(|c| RawColumn {
            name: c["name"].as_str().unwrap_or_default().to_string(),
            typeoid: c["typeoid"].as_u64().unwrap_or(0) as u32,
            type_hint: c["type"].as_str().unwrap_or("text").to_string(),
            value: c["value"].clone(),
        })
        .collect()
}

/// The type oids a line names, so the poller can reload its type names when one is new.
pub fn type_oids(line: &str) -> impl Iterator<Item = u32> + '_ {
    line.split("\"typeoid\":").skip(1).filter_map(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u32>()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{catalog, types};
    use super::super::{Change, assemble};
    use super::*;

    fn change(line: &str, rls: bool) -> Option<Change> {
        let raw = decode(line).unwrap()?;
        assemble(raw, &catalog(rls), &types())
    }

    const UPDATE: &str = r#"{"action":"U","timestamp":"2026-11-24 21:00:00.123456+00","schema":"public","table":"t",
      "columns":[{"name":"id","type":"bigint","typeoid":20,"value":7},
                 {"name":"at","type":"timestamp with time zone","typeoid":1184,"value":"2026-11-24 21:00:00.5+00"}],
      "identity":[{"name":"id","type":"bigint","typeoid":20,"value":7}],
      "pk":[{"name":"id","type":"bigint","typeoid":20}]}"#;

    #[test]
    fn update_carries_new_and_old_with_supabase_types() {
        let c = change(UPDATE, true).unwrap();
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
        let c = change(line, true).unwrap();
        assert!(!c.needs_rls_check && c.record.is_none());
        assert_eq!(c.old_record.unwrap().keys().collect::<Vec<_>>(), ["id"]);
    }

    #[test]
    fn other_tables_and_actions_are_skipped_and_garbage_is_an_error() {
        let truncate = r#"{"action":"T","schema":"public","table":"t"}"#;
        assert!(decode(truncate).unwrap().is_none());
        let other = UPDATE.replace("\"t\"", "\"other\"");
        assert!(change(&other, true).is_none());
        assert!(decode("nope").is_err());
    }

    #[test]
    fn type_oids_are_read_off_the_line() {
        assert_eq!(type_oids(UPDATE).collect::<Vec<_>>(), [20, 1184, 20, 20]);
    }
}
