//! GoTrue's admin user list and delete, service role only:
//! `GET /admin/users?page=&per_page=` answers `{"users": [...], "aud": "authenticated"}`
//! (newest first, with `X-Total-Count` and GoTrue's `Link` header naming the next and last
//! pages, which supabase-js reads for `nextPage`/`lastPage`/`total`), and `DELETE /admin/users/{id}` answers `{}`, or 404
//! `user_not_found`. Deleting a user cascades to its sessions and its rows, as on Supabase.

use super::AuthState;
use super::error::AuthError;
use super::handlers::require_service_role;
use super::users::{USER_COLUMNS, to_user};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// GoTrue's default page size.
const DEFAULT_PER_PAGE: i64 = 50;
/// The largest page this stack serves (keeps one response bounded).
const MAX_PER_PAGE: i64 = 1_000;
/// The last page number served (keeps the offset within PostgreSQL's bigint).
const MAX_PAGE: u64 = 1_000_000_000;

/// `GET /admin/users`.
pub async fn list_users(
    State(s): State<Arc<AuthState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, AuthError> {
    require_service_role(&s, &headers)?;
    let (page, per_page) = page_params(uri.query().unwrap_or_default())?;
    let db = s.db.get().await?;
    let sql = format!(
        "select {USER_COLUMNS} from auth.users order by created_at desc, id limit $1 offset $2"
    );
    let rows = db
        .query(&sql, &[&per_page, &((page - 1) * per_page)])
        .await?;
    let total: i64 = db
        .query_one("select count(*) from auth.users", &[])
        .await?
        .get(0);
    let users: Vec<_> = rows.iter().map(to_user).collect();
    let mut response = Json(json!({ "users": users, "aud": "authenticated" })).into_response();
    let link = pagination_link(&uri, page, per_page, total);
    let headers = response.headers_mut();
    if let Ok(link) = HeaderValue::from_str(&link) {
        headers.insert("link", link);
    }
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok(response)
}

/// `page` and `per_page`, each a non-negative integer when present, as GoTrue's `paginate`
/// reads them (the first value of each; anything else is its 400 "Bad Pagination
/// Parameters"). Page 0 is served as page 1 and pages past MAX_PAGE as that one (both empty
/// or first pages anyway); `per_page` is kept within 1..=MAX_PER_PAGE (GoTrue divides by it).
fn page_params(query: &str) -> Result<(i64, i64), AuthError> {
    let (mut page, mut per_page) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "page" => &mut page,
            "per_page" => &mut per_page,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some(value.into_owned());
    }
    let read = |value: Option<String>, default: u64| -> Result<u64, AuthError> {
        match value.filter(|v| !v.is_empty()) {
            None => Ok(default), // Go's Query().Get reads an empty value as absent
            Some(v) => v.parse::<u64>().map_err(|e| {
                AuthError::validation(format!(
                    "Bad Pagination Parameters: strconv.ParseUint: parsing {v:?}: {}",
                    parse_uint_reason(&e)
                ))
            }),
        }
    };
    let page = read(page, 1)?.clamp(1, MAX_PAGE);
    let per_page = read(per_page, DEFAULT_PER_PAGE as u64)?.clamp(1, MAX_PER_PAGE as u64);
    Ok((page as i64, per_page as i64))
}

/// Go's words for a failed `ParseUint`.
fn parse_uint_reason(e: &std::num::ParseIntError) -> &'static str {
    match e.kind() {
        std::num::IntErrorKind::PosOverflow => "value out of range",
        _ => "invalid syntax",
    }
}

/// GoTrue's `Link` value: `<uri?page=N+1>; rel="next", ` when a later page exists, then always
/// `<uri?page=LAST>; rel="last"` (page 0 when there are no users, as GoTrue's integer division
/// gives). The request's other query parameters are kept, sorted by name as Go encodes them.
fn pagination_link(uri: &Uri, page: i64, per_page: i64, total: i64) -> String {
    let last_page = (total + per_page - 1) / per_page;
    let with_page = |n: i64| {
        let mut pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .chain([("page".to_string(), n.to_string())])
                .collect();
        pairs.sort();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("<{}?{query}>", uri.path())
    };
    let next = if last_page > page {
        format!("{}; rel=\"next\", ", with_page(page + 1))
    } else {
        String::new()
    };
    format!("{next}{}; rel=\"last\"", with_page(last_page))
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(
    State(s): State<Arc<AuthState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    require_service_role(&s, &headers)?;
    let not_found = || AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found");
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let db = s.db.get().await?;
    let deleted = db
        .execute("delete from auth.users where id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Err(not_found());
    }
    Ok(Json(json!({})).into_response())
}
