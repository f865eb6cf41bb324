//! PostgREST's logical operators: `or=(…)`, `and=(…)`, their `not.` forms, nested to any
//! depth, e.g. `or=(updated_at.gt.T,and(updated_at.eq.T,id.gt.X))` — the one-request keyset
//! page a client sends. Items are `column.[not.]op.value`; a value holding `,` `(` `)` is
//! written in double quotes, as PostgREST requires.

use super::error::RestError;
use super::query::{Filter, parse_filter};

/// Groups nest no deeper than this (PostgREST has no limit; a request that deep is an attack).
const MAX_DEPTH: usize = 16;

/// One condition of a `where` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Filter(Filter),
    Group(Group),
}

/// Conditions joined by `or` (`any`) or `and`, optionally negated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub any: bool,
    pub negate: bool,
    pub items: Vec<Condition>,
}

/// Parses the query parameter `key=value` when `key` is a logical operator (`or`, `and`,
/// `not.or`, `not.and`); `None` for any other key.
pub fn parse_group_param(key: &str, value: &str) -> Option<Result<Group, RestError>> {
    let (negate, any) = group_kind(key)?;
    let bad = |why: &str| RestError::parse(&format!("{key}={value}"), why);
    Some(
        parse_items(value, 0)
            .map_err(bad)
            .map(|items| Group { any, negate, items }),
    )
}

/// `or` / `and` / `not.or` / `not.and` → (negate, any).
fn group_kind(name: &str) -> Option<(bool, bool)> {
    let (negate, name) = match name.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    match name {
        "or" => Some((negate, true)),
        "and" => Some((negate, false)),
        _ => None,
    }
}

/// `(item,item,…)` → its conditions.
fn parse_items(text: &str, depth: usize) -> Result<Vec<Condition>, &'static str> {
    if depth > MAX_DEPTH {
        return Err("logical operators nest too deeply");
    }
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or("expected a parenthesised list, e.g. or=(a.eq.1,b.gt.2)")?;
    let items = split_top_level(inner)?;
    if items.is_empty() {
        return Err("a logical operator needs at least one condition");
    }
    items
        .into_iter()
        .map(|item| parse_item(item, depth))
        .collect()
}

fn parse_item(item: &str, depth: usize) -> Result<Condition, &'static str> {
    if let Some(open) = item.find('(')
        && let Some((negate, any)) = group_kind(&item[..open])
    {
        let items = parse_items(&item[open..], depth + 1)?;
        return Ok(Condition::Group(Group { any, negate, items }));
    }
    let (column, rest) = item
        .split_once('.')
        .ok_or("expected column.operator.value inside a logical operator")?;
    let rest = unquote_value(rest);
    parse_filter(column, &rest).map(Condition::Filter).map_err(
        |_| "expected column.operator.value with a known operator inside a logical operator",
    )
}

/// `op."a,b"` → `op.a,b`; `in.("a,b",c)` stays as `parse_filter` reads lists.
fn unquote_value(rest: &str) -> String {
    let (negate, body) = match rest.strip_prefix("not.") {
        Some(body) => ("not.", body),
        None => ("", rest),
    };
    match body.split_once('.') {
        Some((op, value)) if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') => {
            format!("{negate}{op}.{}", &value[1..value.len() - 1])
        }
        _ => rest.to_string(),
    }
}

/// Splits at commas outside parentheses and double quotes.
fn split_top_level(text: &str) -> Result<Vec<&str>, &'static str> {
    let mut items = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.checked_sub(1).ok_or("unbalanced parentheses")?,
            ',' if !quoted && depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted || depth != 0 {
        return Err("unbalanced parentheses or quotes");
    }
    if !text.is_empty() {
        items.push(&text[start..]);
    }
    if items.iter().any(|item| item.trim().is_empty()) {
        return Err("an empty condition");
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::query::{Op, Operand};

    fn filter(c: &Condition) -> &Filter {
        match c {
            Condition::Filter(f) => f,
            Condition::Group(_) => panic!("expected a filter, got {c:?}"),
        }
    }

    #[test]
    fn keyset_page_condition_parses_nested() {
        let g = parse_group_param(
            "or",
            "(updated_at.gt.2026-12-05T06:00:00.123Z,and(updated_at.eq.2026-12-05T06:00:00.123Z,id.gt.0b8e))",
        )
        .unwrap()
        .unwrap();
        assert!(g.any && !g.negate);
        assert_eq!(filter(&g.items[0]).op, Op::Gt);
        assert_eq!(
            filter(&g.items[0]).operand,
            Operand::Value("2026-12-05T06:00:00.123Z".into())
        );
        let Condition::Group(inner) = &g.items[1] else {
            panic!("expected a group")
        };
        assert!(!inner.any);
        assert_eq!(filter(&inner.items[1]).column, "id");
    }

    #[test]
    fn quoted_values_negation_and_lists() {
        let g = parse_group_param("not.and", "(name.eq.\"a,b\",id.not.in.(1,2),note.is.null)")
            .unwrap()
            .unwrap();
        assert!(g.negate && !g.any);
        assert_eq!(filter(&g.items[0]).operand, Operand::Value("a,b".into()));
        assert!(filter(&g.items[1]).negate);
        assert_eq!(
            filter(&g.items[1]).operand,
            Operand::List(vec!["1".into(), "2".into()])
        );
        assert_eq!(filter(&g.items[2]).operand, Operand::Keyword("null"));
    }

    #[test]
    fn malformed_trees_are_parse_errors() {
        assert!(parse_group_param("id", "(a.eq.1)").is_none());
        for value in [
            "a.eq.1",
            "()",
            "(a.eq.1,)",
            "(a.eq.1",
            "(a.zz.1)",
            "(a)",
            "(and(a.eq.1)",
            "(\"a.eq.1)",
        ] {
            let err = parse_group_param("or", value).unwrap().unwrap_err();
            assert_eq!(err.body.code, "PGRST100", "{value}");
        }
        let deep = format!("({}a.eq.1{})", "and(".repeat(20), ")".repeat(20));
        assert!(parse_group_param("or", &deep).unwrap().is_err());
    }
}
