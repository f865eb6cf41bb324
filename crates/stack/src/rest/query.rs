//! The PostgREST query string: `select`, horizontal filters (`col=[not.]op.value`), `order`,
//! `limit`, `offset`, `on_conflict`, `columns`. Parsing only; names are checked later against
//! the schema cache.

use super::error::RestError;
use super::logic::{Condition, parse_group_param};

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    Like,
    Ilike,
    In,
    Is,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "like" => Op::Like,
            "ilike" => Op::Ilike,
            "in" => Op::In,
            "is" => Op::Is,
            _ => return None,
        })
    }

    /// The SQL comparison for the scalar operators.
    pub fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Neq => "<>",
            Op::Gt => ">",
            Op::Gte => ">=",
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Like => "like",
            Op::Ilike => "ilike",
            Op::In => "= any",
            Op::Is => "is",
        }
    }
}

/// The right-hand side of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Value(String),
    List(Vec<String>),
    /// `is.null`, `is.true`, …: a fixed SQL keyword, never user text.
    Keyword(&'static str),
}

/// `column=[not.]op.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub negate: bool,
    pub op: Op,
    pub operand: Operand,
}

/// One `select` item: `column`, `alias:column`, `column::type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectItem {
    pub column: String,
    pub alias: Option<String>,
    pub cast: Option<String>,
}

/// One `order` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub column: String,
    pub descending: bool,
    pub nulls_first: Option<bool>,
}

/// A parsed query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// Empty means `*`.
    pub select: Vec<SelectItem>,
    /// Joined by `and`: plain filters and `or=`/`and=` groups, in query order.
    pub filters: Vec<Condition>,
    pub order: Vec<OrderTerm>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub on_conflict: Vec<String>,
    pub columns: Vec<String>,
}

impl QueryParams {
    /// Parses a raw (still percent-encoded) query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, RestError> {
        let mut params = QueryParams::default();
        let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes());
        for (key, value) in pairs {
            match key.as_ref() {
                "select" => params.select = parse_select(&value)?,
                "order" => params.order = parse_order(&value)?,
                "limit" => params.limit = Some(parse_count("limit", &value)?),
                "offset" => params.offset = Some(parse_count("offset", &value)?),
                "on_conflict" => params.on_conflict = split_names(&value),
                "columns" => params.columns = split_names(&value),
                "apikey" => {}
                _ => params.filters.push(match parse_group_param(&key, &value) {
                    Some(group) => Condition::Group(group?),
                    None => Condition::Filter(parse_filter(&key, &value)?),
                }),
            }
        }
        Ok(params)
    }
}

pub(super) fn parse_filter(column: &str, value: &str) -> Result<Filter, RestError> {
    let bad = |why: &str| RestError::parse(&format!("{column}={value}"), why);
    if !is_plain_name(column) {
        return Err(bad(
            "embedded resources and JSON paths are not supported; filter on a plain column",
        ));
    }
    let (negate, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (op, operand) = rest
        .split_once('.')
        .ok_or_else(|| bad("expected operator.value, e.g. eq.5"))?;
    let op = Op::parse(op)
        .ok_or_else(|| bad("unknown operator; supported: eq neq gt gte lt lte like ilike in is"))?;
    let operand = match op {
        Op::In => Operand::List(
            parse_list(operand).ok_or_else(|| bad("expected a list like in.(a,b,c)"))?,
        ),
        Op::Is => Operand::Keyword(
            is_keyword(operand)
                .ok_or_else(|| bad("is. takes null, not_null, true, false or unknown"))?,
        ),
        Op::Like | Op::Ilike => Operand::Value(operand.replace('*', "%")),
        _ => Operand::Value(operand.to_string()),
    };
    Ok(Filter {
        column: column.to_string(),
        negate,
        op,
        operand,
    })
}

fn is_keyword(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_lowercase().as_str() {
        "null" => "null",
        "not_null" => "not null",
        "true" => "true",
        "false" => "false",
        "unknown" => "unknown",
        _ => return None,
    })
}

/// `(a,b,"c,d")` → `["a", "b", "c,d"]`.
fn parse_list(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.push(chars.next()?),
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return None;
    }
    if !inner.is_empty() {
        items.push(current);
    }
    Some(items)
}

fn parse_select(value: &str) -> Result<Vec<SelectItem>, RestError> {
    let bad = |why: &str| RestError::parse(&format!("select={value}"), why);
    if value.trim() == "*" || value.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    for raw in value.split(',').map(str::trim) {
        if raw.contains('(') {
            return Err(bad(
                "embedded resources are not supported by the embedded stack",
            ));
        }
        let (alias, rest) = match raw.split_once(':') {
            Some((alias, rest)) if !rest.starts_with(':') => (Some(alias.to_string()), rest),
            _ => (None, raw),
        };
        let (column, cast) = match rest.split_once("::") {
            Some((c, t)) => (c, Some(t.to_string())),
            None => (rest, None),
        };
        let names_ok = is_plain_name(column) && alias.as_deref().is_none_or(is_plain_name);
        if !names_ok || cast.as_deref().is_some_and(|t| !is_type_name(t)) {
            return Err(bad("expected column, alias:column or column::type"));
        }
        items.push(SelectItem {
            column: column.to_string(),
            alias,
            cast,
        });
    }
    Ok(items)
}

fn parse_order(value: &str) -> Result<Vec<OrderTerm>, RestError> {
    let bad = || {
        RestError::parse(
            &format!("order={value}"),
            "expected column[.asc|.desc][.nullsfirst|.nullslast]",
        )
    };
    let mut terms = Vec::new();
    for raw in value.split(',').map(str::trim) {
        let mut parts = raw.split('.');
        let column = parts.next().filter(|c| is_plain_name(c)).ok_or_else(bad)?;
        let mut term = OrderTerm {
            column: column.to_string(),
            descending: false,
            nulls_first: None,
        };
        for part in parts {
            match part {
                "asc" => term.descending = false,
                "desc" => term.descending = true,
                "nullsfirst" => term.nulls_first = Some(true),
                "nullslast" => term.nulls_first = Some(false),
                _ => return Err(bad()),
            }
        }
        terms.push(term);
    }
    Ok(terms)
}

fn parse_count(name: &str, value: &str) -> Result<i64, RestError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| RestError::parse(&format!("{name}={value}"), "expected a whole number >= 0"))
}

fn split_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Letters, digits, `_` and `$`, not starting with a digit (checked again against the cache).
pub fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn is_type_name(s: &str) -> bool {
    let base = s.strip_suffix("[]").unwrap_or(s);
    !base.is_empty() && base.split(' ').all(is_plain_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_select_order_and_paging_parse() {
        let q = QueryParams::parse(Some(
            "select=id,amt:amount,n::text&user_id=eq.abc&updated_at=gt.2024-01-01T00%3A00%3A00%2B00%3A00\
             &id=not.in.(a,%22b%2Cc%22)&deleted=is.false&order=updated_at.desc.nullslast,id&limit=10&offset=5",
        ))
        .unwrap();
        let filters: Vec<&Filter> = q
            .filters
            .iter()
            .map(|c| match c {
                Condition::Filter(f) => f,
                Condition::Group(_) => panic!("no groups here"),
            })
            .collect();
        assert_eq!(q.select.len(), 3);
        assert_eq!(q.select[1].alias.as_deref(), Some("amt"));
        assert_eq!(q.select[2].cast.as_deref(), Some("text"));
        assert_eq!(
            filters[1].operand,
            Operand::Value("2024-01-01T00:00:00+00:00".into())
        );
        assert!(filters[2].negate);
        assert_eq!(
            filters[2].operand,
            Operand::List(vec!["a".into(), "b,c".into()])
        );
        assert_eq!(filters[3].operand, Operand::Keyword("false"));
        assert_eq!(
            q.order[0],
            OrderTerm {
                column: "updated_at".into(),
                descending: true,
                nulls_first: Some(false)
            }
        );
        assert_eq!((q.limit, q.offset), (Some(10), Some(5)));
    }

    #[test]
    fn bad_syntax_is_a_parse_error_not_a_panic() {
        for raw in [
            "id=eq",
            "id=zz.1",
            "id=in.a,b",
            "id=is.maybe",
            "order=id.sideways",
            "limit=-1",
            "select=a(b)",
            "a;drop=eq.1",
            "select=x::int;drop",
            "or=(a.eq.1",
            "id=in.(\"a)",
        ] {
            let err = QueryParams::parse(Some(raw)).unwrap_err();
            assert_eq!(err.body.code, "PGRST100", "{raw}");
        }
    }
}
