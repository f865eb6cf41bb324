//! `postgres_changes` bindings: the `"<col>=<op>.<value>"` filter language Realtime accepts,
//! matching a change's record against it, and the stable subscription id echoed in join replies.

use serde_json::{Map, Value};
use syncstorm_wire::phoenix::PostgresChangeFilter;

/// A comparison operator of a binding filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// A parsed filter: one column compared with one value (or a list for `in`).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// Why a filter string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid filter {0:?}: expected <column>=<op>.<value> with op eq, neq, lt, lte, gt, gte or in"
)]
pub struct FilterError(pub String);

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let bad = || FilterError(text.to_string());
        let (column, rest) = text.split_once('=').ok_or_else(bad)?;
        let (op, value) = rest.split_once('.').ok_or_else(bad)?;
        let op = match op {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            _ => return Err(bad()),
        };
        let values = if op == Op::In {
            let inner = value.strip_prefix('(').and_then(|v| v.strip_suffix(')'));
            let list: Vec<String> = inner
                .ok_or_else(bad)?
                .split(',')
                .map(|v| v.trim().trim_matches('"').to_string())
                .collect();
            if list.len() > 100 {
                return Err(bad());
            }
            list
        } else {
            vec![value.to_string()]
        };
        if column.is_empty() || values.iter().any(|v| v.is_empty()) {
            return Err(bad());
        }
        Ok(Filter {
            column: column.to_string(),
            op,
            values,
        })
    }

    /// Whether `record` passes (SQL semantics: a missing or null column never matches).
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        let Some(actual) = record.get(&self.column) else {
            return false;
        };
        if actual.is_null() {
            return false;
        }
        match self.op {
            Op::In => self
                .values
                .iter()
                .any(|v| compare(actual, v) == Some(std::cmp::Ordering::Equal)),
            op => compare(actual, &self.values[0]).is_some_and(|ord| op_holds(op, ord)),
        }
    }

    /// The value an `eq` filter indexes on, in the form [`index_key`] produces.
    pub fn eq_key(&self) -> Option<String> {
        (self.op == Op::Eq).then(|| literal_key(&self.values[0]))
    }
}

fn op_holds(op: Op, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq | Op::In => ord == Equal,
        Op::Neq => ord != Equal,
        Op::Lt => ord == Less,
        Op::Lte => ord != Greater,
        Op::Gt => ord == Greater,
        Op::Gte => ord != Less,
    }
}

/// Compares a record value with a filter literal as Postgres would after casting the literal
/// to the column type: numerically for numbers, case-insensitively for uuids, else as text.
fn compare(actual: &Value, literal: &str) -> Option<std::cmp::Ordering> {
    match actual {
        Value::Number(n) => n.as_f64()?.partial_cmp(&literal.parse::<f64>().ok()?),
        Value::Bool(b) => {
            let lit = match literal {
                "true" | "t" => true,
                "false" | "f" => false,
                _ => return None,
            };
            Some(b.cmp(&lit))
        }
        Value::String(s) => Some(normalize(s).cmp(&normalize(literal))),
        _ => None,
    }
}

fn normalize(text: &str) -> String {
    if looks_like_uuid(text) {
        text.to_ascii_lowercase()
    } else {
        text.to_string()
    }
}

fn looks_like_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The key a record value has in the `eq` index (same normalisation as filter literals).
pub fn index_key(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(literal_key(s)),
        Value::Number(n) => n.as_f64().map(|f| format!("{f}")),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Normalises an `eq` literal the way [`index_key`] renders numbers, so `7` and `7.0` meet.
pub fn literal_key(literal: &str) -> String {
    match literal.parse::<f64>() {
        Ok(f) if !looks_like_uuid(literal) => format!("{f}"),
        _ => normalize(literal),
    }
}

/// The subscription id of a binding: a stable hash of the client's filter map (Realtime uses
/// Erlang's `phash2`, range 2^27; identical maps give identical ids in every worker). Never 0,
/// because realtime-js ignores a falsy id.
pub fn subscription_id(binding: &PostgresChangeFilter) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        Some(binding.event.as_str()),
        Some(binding.schema.as_str()),
        binding.table.as_deref(),
        binding.filter.as_deref(),
    ];
    for part in parts {
        for byte in part.unwrap_or("\u{0}").bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    ((hash % (1 << 27)) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn eq_and_in_match_like_postgres() {
        let uid = "2B0C4E9E-0000-4000-8000-000000000001";
        let f = Filter::parse(&format!("user_id=eq.{uid}")).unwrap();
        assert!(f.matches(&rec(json!({"user_id": uid.to_lowercase()}))));
        assert!(!f.matches(&rec(json!({"user_id": "x"}))));
        assert!(!f.matches(&rec(json!({"other": uid}))));
        let f = Filter::parse("n=in.(1,2,3)").unwrap();
        assert!(f.matches(&rec(json!({"n": 2}))) && !f.matches(&rec(json!({"n": 4}))));
        assert!(
            Filter::parse("n=gt.5")
                .unwrap()
                .matches(&rec(json!({"n": 6})))
        );
        assert!(
            !Filter::parse("n=lte.5")
                .unwrap()
                .matches(&rec(json!({"n": null})))
        );
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in ["", "a", "a=eq", "a=like.x", "=eq.1", "a=in.1,2", "a=eq."] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_stable_nonzero_and_distinct() {
        let b = |filter: &str| PostgresChangeFilter {
            event: "*".into(),
            schema: "public".into(),
            table: Some("t".into()),
            filter: Some(filter.into()),
            id: None,
        };
        assert_eq!(subscription_id(&b("a=eq.1")), subscription_id(&b("a=eq.1")));
        assert_ne!(subscription_id(&b("a=eq.1")), subscription_id(&b("a=eq.2")));
        assert!(subscription_id(&b("x")) > 0 && subscription_id(&b("x")) < 1 << 27);
    }

    #[test]
    fn index_keys_meet_literals() {
        assert_eq!(index_key(&json!(7)).unwrap(), literal_key("7"));
        assert_eq!(
            index_key(&json!("ABCDEF00-0000-4000-8000-000000000001")).unwrap(),
            Filter::parse("c=eq.abcdef00-0000-4000-8000-000000000001")
                .unwrap()
                .eq_key()
                .unwrap()
        );
    }
}
