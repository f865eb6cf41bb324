//! The `/rest/v1` handlers: parse, check names against the schema cache, build one statement,
//! run it as the request's role, shape the response like PostgREST.

use super::RestState;
use super::cache::Table;
use super::error::RestError;
use super::exec::{self, Outcome, RoleContext};
use super::prefer::{self, Applies, Prefer};
use super::query::QueryParams;
use super::sql::{self, Returning, Sql, Upsert};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

type Shared = State<Arc<RestState>>;

/// `GET /{table}`.
pub async fn read(
    State(s): Shared,
    Path(table): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let ctx = s.role_context(&headers)?;
    let table = lookup(&s, &table)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let prefer = Prefer::from_headers(&headers);
    let (offset, limit) = page_bounds(&s, &q, &headers)?;
    let sql = sql::read(table, &q, prefer.count, limit, offset)?;
    // Named as the sync path's operations, for the pool's hold times (the model's calibration).
    let op = if table.name == "user_sync_tokens" {
        exec::OP_TOKEN_CHECK
    } else {
        exec::OP_READ
    };
    let out = exec::run(&s.db, &ctx, &sql, op).await?;
    let status = if out.total.is_some_and(|t| offset > 0 || out.page < t) {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let range = prefer::content_range(offset, out.page, out.total);
    let mut response = json_response(status, out, &headers, Some(range))?;
    mark_applied(&mut response, prefer, Applies::Read);
    Ok(response)
}

/// `POST /{table}`: insert or upsert an object or an array of objects.
pub async fn insert(
    State(s): Shared,
    Path(table): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RestError> {
    let ctx = s.role_context(&headers)?;
    let table = lookup(&s, &table)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let prefer = Prefer::from_headers(&headers);
    let (rows, columns) = rows_body(&body, &q)?;
    if rows == "[]" {
        // PostgREST answers an empty bulk insert with no rows, and 200 when it merges:
        // nothing was inserted.
        let body = if prefer.representation { "[]" } else { "" };
        let mut response = (insert_status(prefer, Some(0)), body.to_string()).into_response();
        let total = prefer.count.then_some(0);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            header_value(&prefer::content_range(0, 0, total)),
        );
        mark_applied(&mut response, prefer, Applies::Insert);
        return Ok(response);
    }
    let upsert = prefer.resolution.map(|merge| Upsert {
        target: q.on_conflict.clone(),
        merge,
    });
    let sql = sql::insert(
        table,
        &q,
        rows,
        &columns,
        upsert.as_ref(),
        returning(prefer),
    )?;
    write_response(&s, &ctx, &sql, prefer, &headers, Applies::Insert).await
}

/// An insert's status as PostgREST v14.8 decides it (`src/PostgREST/Response.hs`, the
/// `MutationCreate` case): 201, except 200 for a `resolution=merge-duplicates` upsert that
/// inserted nothing (every row updated an existing one, or the body was empty). The status
/// does not depend on `return=`.
fn insert_status(prefer: Prefer, inserted: Option<i64>) -> StatusCode {
    let merged_only = prefer.resolution == Some(true) && inserted.is_some_and(|n| n <= 0);
    if merged_only {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    }
}

/// `PATCH /{table}?filters`.
pub async fn update(
    State(s): Shared,
    Path(table): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RestError> {
    let ctx = s.role_context(&headers)?;
    let table = lookup(&s, &table)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let prefer = Prefer::from_headers(&headers);
    let Value::Object(object) = parse_json(&body)? else {
        return Err(RestError::body("PATCH takes one JSON object"));
    };
    let columns: Vec<String> = object.keys().cloned().collect();
    let sql = sql::update(
        table,
        &q,
        Value::Object(object).to_string(),
        &columns,
        returning(prefer),
    )?;
    write_response(&s, &ctx, &sql, prefer, &headers, Applies::Update).await
}

/// `DELETE /{table}?filters`.
pub async fn delete(
    State(s): Shared,
    Path(table): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let ctx = s.role_context(&headers)?;
    let table = lookup(&s, &table)?;
    let q = QueryParams::parse(raw.as_deref())?;
    let prefer = Prefer::from_headers(&headers);
    let sql = sql::delete(table, &q, returning(prefer))?;
    write_response(&s, &ctx, &sql, prefer, &headers, Applies::Delete).await
}

/// `POST /rpc/{function}` with a JSON object of named arguments.
pub async fn rpc(
    State(s): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, RestError> {
    let ctx = s.role_context(&headers)?;
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        parse_json(&body)?
    };
    let Value::Object(args) = &value else {
        return Err(RestError::body(
            "RPC takes a JSON object of named arguments",
        ));
    };
    let keys: Vec<String> = args.keys().cloned().collect();
    let function = s
        .cache
        .functions
        .get(&name)
        .ok_or_else(|| RestError::unknown_function(&name, &keys))?;
    let whole_body = matches!(function.params.as_slice(), [p] if p.name.is_empty());
    if !whole_body
        && keys
            .iter()
            .any(|k| !function.params.iter().any(|p| &p.name == k))
    {
        return Err(RestError::unknown_function(&name, &keys));
    }
    let call = sql::rpc(function, value.to_string(), &keys);
    let out = exec::run(&s.db, &ctx, &call, exec::OP_WRITE).await?;
    let prefer = Prefer::from_headers(&headers);
    let mut response = if function.returns_void {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_response(StatusCode::OK, out, &headers, None)?
    };
    mark_applied(&mut response, prefer, Applies::Rpc);
    Ok(response)
}

fn lookup<'a>(s: &'a RestState, table: &str) -> Result<&'a Table, RestError> {
    s.cache
        .tables
        .get(table)
        .ok_or_else(|| RestError::unknown_table(table))
}

/// `(offset, limit)` from `offset`/`limit`, the `Range` header and the row cap.
fn page_bounds(
    s: &RestState,
    q: &QueryParams,
    headers: &HeaderMap,
) -> Result<(i64, i64), RestError> {
    let range = prefer::range(headers).map_err(|_| {
        RestError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "PGRST103",
            "Requested range not satisfiable",
            None,
        )
    })?;
    let offset = q.offset.or(range.map(|r| r.0)).unwrap_or(0);
    let limits = [q.limit, range.and_then(|r| r.1), Some(s.max_rows)];
    Ok((
        offset,
        limits.into_iter().flatten().min().unwrap_or(s.max_rows),
    ))
}

fn returning(prefer: Prefer) -> Returning {
    if prefer.representation {
        Returning::Rows
    } else {
        Returning::Count
    }
}

/// An update's or a delete's status (PostgREST v14.8, `src/PostgREST/Response.hs`, the
/// `MutationUpdate` and `MutationDelete` cases): 200 with `return=representation`, else 204.
fn no_content_unless(prefer: Prefer) -> StatusCode {
    if prefer.representation {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn write_response(
    s: &RestState,
    ctx: &RoleContext,
    sql: &Sql,
    prefer: Prefer,
    headers: &HeaderMap,
    applies: Applies,
) -> Result<Response, RestError> {
    let out = exec::run(&s.db, ctx, sql, exec::OP_WRITE).await?;
    let status = if applies == Applies::Insert {
        insert_status(prefer, out.inserted)
    } else {
        no_content_unless(prefer)
    };
    // PostgREST's Content-Range for writes: the affected range for an update, `*` for an
    // insert or a delete; the total only with `Prefer: count`.
    let total = prefer.count.then_some(out.page);
    let shown = if applies == Applies::Update {
        out.page
    } else {
        0
    };
    let range = prefer::content_range(0, shown, total);
    let mut response = if prefer.representation {
        json_response(status, out, headers, Some(range))?
    } else {
        let mut response = status.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_RANGE, header_value(&range));
        response
    };
    mark_applied(&mut response, prefer, applies);
    Ok(response)
}

/// `Preference-Applied`, when a preference the client sent was honoured.
fn mark_applied(response: &mut Response, prefer: Prefer, applies: Applies) {
    if let Some(applied) = prefer.applied(applies) {
        response
            .headers_mut()
            .insert("preference-applied", header_value(&applied));
    }
}

/// The body as JSON, or one object when the client asked for `vnd.pgrst.object+json`.
fn json_response(
    status: StatusCode,
    out: Outcome,
    headers: &HeaderMap,
    range: Option<String>,
) -> Result<Response, RestError> {
    let mut body = out.body.unwrap_or_else(|| "null".to_string());
    if prefer::wants_object(headers) {
        if out.page != 1 {
            return Err(RestError::new(
                StatusCode::NOT_ACCEPTABLE,
                "PGRST116",
                "JSON object requested, multiple (or no) rows returned",
                Some(format!("The result contains {} rows", out.page)),
            ));
        }
        body = single_object(&body);
    }
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(range) = range {
        h.insert(header::CONTENT_RANGE, header_value(&range));
    }
    Ok(response)
}

/// `[x]` → `x` for a one-element JSON array; anything else unchanged.
fn single_object(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(mut items)) if items.len() == 1 => items.remove(0).to_string(),
        _ => body.to_string(),
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("*/*"))
}

fn parse_json(body: &[u8]) -> Result<Value, RestError> {
    serde_json::from_slice(body).map_err(|e| RestError::body(e.to_string()))
}

/// The rows of an insert as one JSON array, and the columns they name (the `columns` query
/// parameter, else every key of every object).
fn rows_body(body: &[u8], q: &QueryParams) -> Result<(String, Vec<String>), RestError> {
    let rows = match parse_json(body)? {
        Value::Array(rows) => rows,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(RestError::body(
                "insert takes a JSON object or an array of objects",
            ));
        }
    };
    let mut columns: Vec<String> = q.columns.clone();
    for row in &rows {
        let Value::Object(fields) = row else {
            return Err(RestError::body(
                "every element of the array must be a JSON object",
            ));
        };
        if q.columns.is_empty() {
            for key in fields.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    Ok((Value::Array(rows).to_string(), columns))
}
