//! GoTrue's admin user list and delete, service role only:
//! `GET /admin/users?page=&per_page=` answers `{"users": [...], "aud": "authenticated"}`
//! (newest first, with `X-Total-Count`), and `DELETE /admin/users/{id}` answers `{}`, or 404
//! `user_not_found`. Deleting a user cascades to its sessions and its rows, as on Supabase.

use super::AuthState;
use super::error::AuthError;
use super::handlers::require_service_role;
use super::users::{USER_COLUMNS, to_user};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// GoTrue's default page size.
const DEFAULT_PER_PAGE: i64 = 50;
/// The largest page this stack serves (keeps one response bounded).
const MAX_PER_PAGE: i64 = 1_000;

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<i64>,
    per_page: Option<i64>,
}

/// `GET /admin/users`.
pub async fn list_users(
    State(s): State<Arc<AuthState>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, AuthError> {
    require_service_role(&s, &headers)?;
    let page = q.page.unwrap_or(1).max(1);
    let per_page = q
        .per_page
        .unwrap_or(DEFAULT_PER_PAGE)
        .clamp(1, MAX_PER_PAGE);
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
    response
        .headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    Ok(response)
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
