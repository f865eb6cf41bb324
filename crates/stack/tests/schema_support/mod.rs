//! Shared helpers for the schema tests: users in `auth.users`, and transactions run the way
//! PostgREST runs a request (login `authenticator`, `set local role`, claims in
//! `request.jwt.claims`, the role's statement timeout).
#![allow(dead_code)]

use serde_json::{Value, json};
use syncstorm_stack::postgres::shared_test_cluster;
use tokio_postgres::{Client, NoTls, Transaction};
use uuid::Uuid;

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// The shared cluster's superuser.
pub async fn admin() -> Client {
    connect(&shared_test_cluster().superuser_url()).await
}

/// A connection as the REST service's login role.
pub async fn authenticator() -> Client {
    connect(&shared_test_cluster().url_as("authenticator")).await
}

/// A fresh confirmed user.
pub async fn new_user(admin: &Client) -> Uuid {
    let id = Uuid::new_v4();
    admin
        .execute(
            "insert into auth.users (id, aud, role, email, email_confirmed_at) \
             values ($1, 'authenticated', 'authenticated', $2, now())",
            &[&id, &format!("{id}@example.test")],
        )
        .await
        .unwrap();
    id
}

/// Begins a transaction as `role` with `claims`, as PostgREST does per request.
pub async fn as_role<'a>(client: &'a mut Client, role: &str, claims: Value) -> Transaction<'a> {
    let tx = client.transaction().await.unwrap();
    tx.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&role, &claims.to_string()],
    )
    .await
    .unwrap();
    tx
}

/// Begins a transaction as the signed-in `user`.
pub async fn as_user(client: &mut Client, user: Uuid) -> Transaction<'_> {
    let claims = json!({"sub": user, "role": "authenticated", "aud": "authenticated"});
    as_role(client, "authenticated", claims).await
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(err: &tokio_postgres::Error) -> String {
    err.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| err.to_string())
}

/// Inserts a wallet for `user` (through whatever role `tx` runs as) and returns its id.
pub async fn insert_wallet(
    tx: &Transaction<'_>,
    user: Uuid,
) -> Result<Uuid, tokio_postgres::Error> {
    let id = Uuid::new_v4();
    tx.execute(
        "insert into public.wallets (id, user_id, name, updated_at) values ($1, $2, 'cash', now())",
        &[&id, &user],
    )
    .await?;
    Ok(id)
}

/// The user's sync token, read as superuser (0 when the user has none yet).
pub async fn token_of(admin: &Client, user: Uuid) -> i64 {
    admin
        .query_opt(
            "select sync_token from public.user_sync_tokens where user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .map_or(0, |row| row.get(0))
}
