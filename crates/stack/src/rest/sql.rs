//! Builds one SQL statement per request. Identifiers come only from the schema cache (quoted);
//! every value a client sent is a bind parameter cast from text to the column's type, so the
//! database parses values exactly as it would for PostgREST.
//!
//! Every statement returns one row: `(total bigint | null, page bigint, body text | null)`;
//! a merging upsert adds a fourth column, `inserted bigint`.

use super::cache::{Function, Table};
use super::error::RestError;
use super::logic::Condition;
use super::query::{Filter, Op, Operand, OrderTerm, QueryParams, SelectItem};
use tokio_postgres::types::ToSql;

/// A statement and its parameters.
pub struct Sql {
    pub text: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// How a write's rows come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    /// Count only (`return=minimal`).
    Count,
    /// The rows, shaped by `select` (`return=representation`).
    Rows,
}

/// `on_conflict` handling of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upsert {
    pub target: Vec<String>,
    pub merge: bool,
}

/// Double-quotes an identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct Builder<'a> {
    table: &'a Table,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl<'a> Builder<'a> {
    fn new(table: &'a Table) -> Self {
        Builder {
            table,
            params: Vec::new(),
        }
    }

    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn column_type(&self, name: &str) -> Result<&'a str, RestError> {
        self.table
            .column(name)
            .map(|c| c.sql_type.as_str())
            .ok_or_else(|| RestError::unknown_column(&self.table.name, name))
    }

    fn qualified(&self, column: &str) -> String {
        format!("{}.{}", ident(&self.table.name), ident(column))
    }

    fn filter(&mut self, f: &Filter) -> Result<String, RestError> {
        let ty = self.column_type(&f.column)?;
        let col = self.qualified(&f.column);
        let expr = match (&f.operand, f.op) {
            (Operand::Keyword(k), _) => format!("{col} is {k}"),
            (Operand::List(items), _) => {
                format!("{col} = any({}::text[]::{ty}[])", self.bind(items.clone()))
            }
            (Operand::Value(v), Op::Like | Op::Ilike) => {
                format!("{col}::text {} {}::text", f.op.sql(), self.bind(v.clone()))
            }
            (Operand::Value(v), op) => {
                format!("{col} {} {}::text::{ty}", op.sql(), self.bind(v.clone()))
            }
        };
        Ok(if f.negate {
            format!("not ({expr})")
        } else {
            expr
        })
    }

    fn condition(&mut self, c: &Condition) -> Result<String, RestError> {
        match c {
            Condition::Filter(f) => self.filter(f),
            Condition::Group(g) => {
                let parts = g
                    .items
                    .iter()
                    .map(|item| self.condition(item))
                    .collect::<Result<Vec<_>, _>>()?;
                let joined = parts.join(if g.any { " or " } else { " and " });
                Ok(if g.negate {
                    format!("not ({joined})")
                } else {
                    format!("({joined})")
                })
            }
        }
    }

    fn where_clause(&mut self, filters: &[Condition]) -> Result<String, RestError> {
        let parts = filters
            .iter()
            .map(|c| self.condition(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if parts.is_empty() {
            String::new()
        } else {
            format!(" where {}", parts.join(" and "))
        })
    }

    fn select_list(&self, items: &[SelectItem]) -> Result<String, RestError> {
        if items.is_empty() {
            return Ok("*".to_string());
        }
        let parts = items.iter().map(|item| {
            self.column_type(&item.column)?;
            let mut sql = ident(&item.column);
            if let Some(cast) = &item.cast {
                sql = format!("{sql}::{cast}");
            }
            let alias = item
                .alias
                .as_deref()
                .or(item.cast.as_ref().map(|_| item.column.as_str()));
            if let Some(alias) = alias {
                sql = format!("{sql} as {}", ident(alias));
            }
            Ok(sql)
        });
        Ok(parts.collect::<Result<Vec<_>, RestError>>()?.join(", "))
    }

    fn order_clause(&self, terms: &[OrderTerm]) -> Result<String, RestError> {
        if terms.is_empty() {
            return Ok(String::new());
        }
        let parts = terms.iter().map(|t| {
            self.column_type(&t.column)?;
            let dir = if t.descending { "desc" } else { "asc" };
            let nulls = match t.nulls_first {
                Some(true) => " nulls first",
                Some(false) => " nulls last",
                None => "",
            };
            Ok(format!("{} {dir}{nulls}", self.qualified(&t.column)))
        });
        Ok(format!(
            " order by {}",
            parts.collect::<Result<Vec<_>, RestError>>()?.join(", ")
        ))
    }

    fn finish(self, text: String) -> Sql {
        Sql {
            text,
            params: self.params,
        }
    }
}

fn table_ref(table: &Table) -> String {
    format!("public.{}", ident(&table.name))
}

/// `GET /table`: the page as a JSON array, its size, and the total when `count` is set.
pub fn read(
    table: &Table,
    q: &QueryParams,
    count: bool,
    limit: i64,
    offset: i64,
) -> Result<Sql, RestError> {
    let mut b = Builder::new(table);
    let select = b.select_list(&q.select)?;
    let filters = b.where_clause(&q.filters)?;
    let order = b.order_clause(&q.order)?;
    let (limit, offset) = (b.bind(limit), b.bind(offset));
    let from = table_ref(table);
    let total = if count {
        format!("(select count(*) from {from}{filters})")
    } else {
        "null::bigint".into()
    };
    let text = format!(
        "select {total}, count(*), coalesce(json_agg(pgrst_r), '[]')::text from \
         (select {select} from {from}{filters}{order} limit {limit}::bigint offset {offset}::bigint) pgrst_r"
    );
    Ok(b.finish(text))
}

fn returning_tail(
    b: &Builder<'_>,
    q: &QueryParams,
    returning: Returning,
) -> Result<(String, String), RestError> {
    Ok(match returning {
        Returning::Count => (
            "1".into(),
            "select null::bigint, count(*), null::text from pgrst_src".into(),
        ),
        Returning::Rows => (
            format!("{}.*", ident(&b.table.name)),
            format!(
                "select null::bigint, count(*), coalesce(json_agg(pgrst_r), '[]')::text from (select {} from pgrst_src) pgrst_r",
                b.select_list(&q.select)?
            ),
        ),
    })
}

fn checked_columns(table: &Table, columns: &[String]) -> Result<String, RestError> {
    if columns.is_empty() {
        return Err(RestError::body("the body names no columns"));
    }
    for c in columns {
        if table.column(c).is_none() {
            return Err(RestError::unknown_body_column(&table.name, c));
        }
    }
    Ok(columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", "))
}

/// `POST /table`: inserts the rows of a JSON array (`body`), optionally as an upsert.
pub fn insert(
    table: &Table,
    q: &QueryParams,
    body: String,
    columns: &[String],
    upsert: Option<&Upsert>,
    returning: Returning,
) -> Result<Sql, RestError> {
    let mut b = Builder::new(table);
    let cols = checked_columns(table, columns)?;
    let rows = b.bind(body);
    let from = table_ref(table);
    let conflict = match upsert {
        None => String::new(),
        Some(u) => on_conflict(table, columns, u)?,
    };
    let (ret, tail) = returning_tail(&b, q, returning)?;
    let name = ident(&table.name);
    let insert = format!(
        "insert into {from} as {name} ({cols}) select {cols} \
         from json_populate_recordset(null::{from}, {rows}::text::json){conflict}"
    );
    let text = if upsert.is_some_and(|u| u.merge) {
        // A merging upsert also answers how many rows it inserted (not updated): a row the
        // statement inserted has xmax 0, one it updated on conflict carries this transaction's
        // id. PostgREST answers 200 rather than 201 when that count is 0.
        format!(
            "with pgrst_w as ({insert} returning {name} as pgrst_row, {name}.xmax = 0 as pgrst_inserted), \
             pgrst_src as (select (pgrst_row).* from pgrst_w) \
             select pgrst_t.*, (select count(*) filter (where pgrst_inserted) from pgrst_w) \
             from ({tail}) pgrst_t"
        )
    } else {
        format!("with pgrst_src as ({insert} returning {ret}) {tail}")
    };
    Ok(b.finish(text))
}

fn on_conflict(table: &Table, columns: &[String], u: &Upsert) -> Result<String, RestError> {
    let target = if u.target.is_empty() {
        &table.primary_key
    } else {
        &u.target
    };
    if target.is_empty() {
        return Err(RestError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "PGRST103",
            "An upsert needs on_conflict or a primary key",
            None,
        ));
    }
    let target = target
        .iter()
        .map(|c| {
            table
                .column(c)
                .map(|_| ident(c))
                .ok_or_else(|| RestError::unknown_column(&table.name, c))
        })
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    if !u.merge {
        return Ok(format!(" on conflict ({target}) do nothing"));
    }
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = excluded.{0}", ident(c)))
        .collect();
    Ok(format!(
        " on conflict ({target}) do update set {}",
        sets.join(", ")
    ))
}

/// `PATCH /table?filters`: sets the body's columns on the matching rows.
pub fn update(
    table: &Table,
    q: &QueryParams,
    body: String,
    columns: &[String],
    returning: Returning,
) -> Result<Sql, RestError> {
    let mut b = Builder::new(table);
    checked_columns(table, columns)?;
    let row = b.bind(body);
    let filters = b.where_clause(&q.filters)?;
    let sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{0} = pgrst_body.{0}", ident(c)))
        .collect();
    let (ret, tail) = returning_tail(&b, q, returning)?;
    let from = table_ref(table);
    let text = format!(
        "with pgrst_src as (update {from} as {name} set {sets} \
         from (select * from json_populate_record(null::{from}, {row}::text::json)) pgrst_body{filters} returning {ret}) {tail}",
        name = ident(&table.name),
        sets = sets.join(", ")
    );
    Ok(b.finish(text))
}

/// `DELETE /table?filters`.
pub fn delete(table: &Table, q: &QueryParams, returning: Returning) -> Result<Sql, RestError> {
    let mut b = Builder::new(table);
    let filters = b.where_clause(&q.filters)?;
    let (ret, tail) = returning_tail(&b, q, returning)?;
    let from = table_ref(table);
    let text = format!(
        "with pgrst_src as (delete from {from} as {name}{filters} returning {ret}) {tail}",
        name = ident(&table.name)
    );
    Ok(Sql {
        text,
        params: b.params,
    })
}

/// `POST /rpc/<fn>` with named arguments (`body` is a JSON object with exactly `args` as keys),
/// or the whole body for a function whose single parameter is unnamed `json`/`jsonb`.
pub fn rpc(function: &Function, body: String, args: &[String]) -> Sql {
    let name = format!("public.{}", ident(&function.name));
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let (from, call) = match function.params.as_slice() {
        [only] if only.name.is_empty() => {
            params.push(Box::new(body));
            (
                String::new(),
                format!("{name}($1::text::{})", only.sql_type),
            )
        }
        _ if args.is_empty() => (String::new(), format!("{name}()")),
        declared => {
            params.push(Box::new(body));
            let typed = args.iter().map(|a| {
                let ty = declared
                    .iter()
                    .find(|p| &p.name == a)
                    .map_or("text", |p| p.sql_type.as_str());
                format!("{} {ty}", ident(a))
            });
            let named = args
                .iter()
                .map(|a| format!("{0} => pgrst_args.{0}", ident(a)));
            (
                format!(
                    "json_to_record($1::text::json) as pgrst_args({}), ",
                    typed.collect::<Vec<_>>().join(", ")
                ),
                format!("{name}({})", named.collect::<Vec<_>>().join(", ")),
            )
        }
    };
    let body = if function.returns_void {
        "null::text"
    } else if function.returns_set {
        "coalesce(json_agg(pgrst_r), '[]')::text"
    } else {
        "(json_agg(pgrst_r) -> 0)::text"
    };
    let text = format!("select null::bigint, count(*), {body} from {from}lateral {call} pgrst_r");
    Sql { text, params }
}
