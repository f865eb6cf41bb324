//! `auth.users` rows: creating them, finding them, and shaping them like GoTrue's user object.

use chrono::{DateTime, SecondsFormat, Utc};
use deadpool_postgres::Client;
use serde_json::{Value, json};
use syncstorm_wire::gotrue::User;
use tokio_postgres::Row;
use uuid::Uuid;

/// Columns every user query returns, in the order `to_user` reads them.
pub(super) const USER_COLUMNS: &str = "id, coalesce(aud, 'authenticated'), coalesce(role, 'authenticated'), \
     email, email_confirmed_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, \
     created_at, updated_at, is_anonymous";

/// A user as stored, with its password hash for sign-in.
pub struct StoredUser {
    pub user: User,
    pub password_hash: Option<String>,
}

/// A new user to insert.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub confirmed: bool,
    pub user_metadata: Value,
    pub app_metadata: Value,
}

/// Inserts a user; `Ok(None)` when the email is taken.
pub async fn insert(db: &Client, new: &NewUser<'_>) -> Result<Option<User>, tokio_postgres::Error> {
    let sql = format!(
        "insert into auth.users (instance_id, id, aud, role, email, encrypted_password, \
           email_confirmed_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at) \
         values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', \
           lower($2), $3, case when $4 then now() end, $5, $6, now(), now()) \
         on conflict do nothing returning {USER_COLUMNS}"
    );
    let stmt = db.prepare_cached(&sql).await?;
    let row = db
        .query_opt(
            &stmt,
            &[
                &Uuid::new_v4(),
                &new.email,
                &new.password_hash,
                &new.confirmed,
                &new.app_metadata,
                &new.user_metadata,
            ],
        )
        .await?;
    Ok(row.map(|r| to_user(&r)))
}

/// The user with this email (case-insensitive), with its hash.
pub async fn by_email(
    db: &Client,
    email: &str,
) -> Result<Option<StoredUser>, tokio_postgres::Error> {
    let sql = format!(
        "select {USER_COLUMNS}, encrypted_password from auth.users where lower(email) = lower($1)"
    );
    let stmt = db.prepare_cached(&sql).await?;
    Ok(db.query_opt(&stmt, &[&email]).await?.map(|row| StoredUser {
        user: to_user(&row),
        password_hash: row.get(11),
    }))
}

/// The user with this id.
pub async fn by_id(db: &Client, id: Uuid) -> Result<Option<User>, tokio_postgres::Error> {
    let sql = format!("select {USER_COLUMNS} from auth.users where id = $1");
    let stmt = db.prepare_cached(&sql).await?;
    Ok(db.query_opt(&stmt, &[&id]).await?.map(|r| to_user(&r)))
}

/// Stamps a sign-in and returns the refreshed user.
pub async fn touch_sign_in(db: &Client, id: Uuid) -> Result<Option<User>, tokio_postgres::Error> {
    let sql = format!(
        "update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1 \
         returning {USER_COLUMNS}"
    );
    let stmt = db.prepare_cached(&sql).await?;
    Ok(db.query_opt(&stmt, &[&id]).await?.map(|r| to_user(&r)))
}

pub(super) fn to_user(row: &Row) -> User {
    let id: Uuid = row.get(0);
    let confirmed: Option<DateTime<Utc>> = row.get(4);
    let app: Option<Value> = row.get(6);
    let meta: Option<Value> = row.get(7);
    let email: Option<String> = row.get(3);
    User {
        id: id.to_string(),
        aud: row.get(1),
        role: row.get(2),
        email: email.clone().unwrap_or_default(),
        phone: String::new(),
        email_confirmed_at: confirmed.map(timestamp),
        confirmed_at: confirmed.map(timestamp),
        last_sign_in_at: row.get::<_, Option<DateTime<Utc>>>(5).map(timestamp),
        app_metadata: app.unwrap_or_else(|| json!({"provider": "email", "providers": ["email"]})),
        user_metadata: meta.unwrap_or_else(|| json!({})),
        identities: email_identity(id, email.as_deref(), confirmed.is_some(), row),
        created_at: row
            .get::<_, Option<DateTime<Utc>>>(8)
            .map(timestamp)
            .unwrap_or_default(),
        updated_at: row
            .get::<_, Option<DateTime<Utc>>>(9)
            .map(timestamp)
            .unwrap_or_default(),
        is_anonymous: row.get::<_, Option<bool>>(10).unwrap_or(false),
    }
}

/// GoTrue's email identity with the fields of its `models.Identity` (v2.186): for the email
/// provider the provider id is the user id. The embedded stack keeps no identities table, so
/// `identity_id` is the user id too (GoTrue's own is a separate random UUID) and the identity's
/// timestamps are the user's. `last_sign_in_at` is left out until the first sign-in, as
/// GoTrue's `omitempty` does.
fn email_identity(id: Uuid, email: Option<&str>, verified: bool, row: &Row) -> Vec<Value> {
    let at = |i: usize| row.get::<_, Option<DateTime<Utc>>>(i).map(timestamp);
    let Some(email) = email else {
        return Vec::new();
    };
    let mut identity = json!({
        "identity_id": id.to_string(), "id": id.to_string(), "user_id": id.to_string(),
        "identity_data": {
            "sub": id.to_string(), "email": email,
            "email_verified": verified, "phone_verified": false,
        },
        "provider": "email",
        "created_at": at(8), "updated_at": at(9), "email": email,
    });
    if let Some(last) = at(5) {
        identity["last_sign_in_at"] = Value::String(last);
    }
    vec![identity]
}

/// GoTrue's timestamp format: RFC 3339, microseconds, `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The app metadata GoTrue gives an email user.
pub fn email_app_metadata() -> Value {
    json!({"provider": "email", "providers": ["email"]})
}
