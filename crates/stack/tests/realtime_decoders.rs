//! The two change decoders give subscribers the same `postgres_changes`: wal2json (what
//! Supabase Realtime polls) is the reference, pgoutput (built into PostgreSQL) the fallback.

#[macro_use]
mod realtime_support;

use realtime_support::*;
use serde_json::{Value, json};
use syncstorm_stack::realtime::Decoder;
use syncstorm_wire::phoenix::Vsn;
use uuid::Uuid;

for_each_decoder!(insert_update_and_delete_carry_supabase_shapes);

/// Inserts, updates and deletes wallet `id` of `user`, each change seen by every watcher
/// before the next is made (the row check reads the row as it is at delivery).
async fn insert_update_delete(
    db: &tokio_postgres::Client,
    user: Uuid,
    id: Uuid,
    watchers: &mut [&mut Client],
) -> Vec<Vec<Value>> {
    let insert = "insert into public.wallets (id, user_id, name, currency, balance) \
                  values ($1, $2, 'cash', 'EUR', 12.50)";
    let update = "update public.wallets set name = 'savings', balance = 99.99, deleted = true \
                  where id = $1";
    let delete = "delete from public.wallets where id = $1";
    let mut seen = vec![Vec::new(); watchers.len()];
    for (sql, params) in [
        (
            insert,
            vec![&id as &(dyn tokio_postgres::types::ToSql + Sync), &user],
        ),
        (update, vec![&id as _]),
        (delete, vec![&id as _]),
    ] {
        db.execute(sql, &params).await.unwrap();
        for (watcher, seen) in watchers.iter_mut().zip(&mut seen) {
            seen.push(watcher.change().await.payload["data"].clone());
        }
    }
    seen
}

/// A socket subscribed to every change of wallet `id` (a delete carries only the key under
/// RLS, so the filter is on the key).
async fn watch_wallet(server: &Server, id: Uuid, token: &str) -> Client {
    let mut c = connect(&server.url(&anon_key(), Vsn::V2), Vsn::V2)
        .await
        .unwrap();
    let filter = format!("id=eq.{id}");
    c.subscribe(
        "realtime:w",
        vec![binding("*", "wallets", Some(&filter))],
        Some(token),
    )
    .await;
    c
}

async fn insert_update_and_delete_carry_supabase_shapes(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let (user, token) = user(&server.db).await;
    let id = Uuid::new_v4();
    let mut c = watch_wallet(&server, id, &token).await;
    let seen = insert_update_delete(&server.db, user, id, &mut [&mut c]).await;
    let [insert, update, delete]: [Value; 3] = seen[0].clone().try_into().unwrap();

    assert_eq!(insert["type"], "INSERT");
    assert_eq!(
        insert["record"]["balance"],
        json!(12.5),
        "numeric as a number"
    );
    assert_eq!(insert["record"]["currency"], "EUR");
    assert_eq!(insert["record"]["deleted"], false, "bool as a boolean");
    assert!(insert.get("old_record").is_none());
    let types: Vec<(&str, &str)> = insert["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("id", "uuid"),
        ("balance", "numeric"),
        ("currency", "bpchar"),
    ] {
        assert!(types.contains(&expected), "{types:?}");
    }

    assert_eq!(update["type"], "UPDATE");
    assert_eq!(update["record"]["balance"], json!(99.99));
    assert_eq!(update["record"]["deleted"], true);
    assert_eq!(update["old_record"], json!({"id": id.to_string()}));

    assert_eq!(delete["type"], "DELETE");
    assert!(delete.get("record").is_none_or(Value::is_null));
    assert_eq!(
        delete["old_record"],
        json!({"id": id.to_string()}),
        "only the key of a deleted row under RLS"
    );
    assert_eq!(server.realtime.decoder(), decoder);
    server.stop().await;
}

#[tokio::test]
async fn pgoutput_payloads_are_byte_for_byte_those_of_wal2json() {
    if skip_without_wal2json().await {
        return;
    }
    let reference = Server::start(config_with(ROOMY, Decoder::Wal2json)).await;
    let fallback = Server::start(config_with(ROOMY, Decoder::Pgoutput)).await;
    let (user, token) = user(&reference.db).await;
    let id = Uuid::new_v4();
    let mut on_reference = watch_wallet(&reference, id, &token).await;
    let mut on_fallback = watch_wallet(&fallback, id, &token).await;
    let watchers = &mut [&mut on_reference, &mut on_fallback];
    let seen = insert_update_delete(&reference.db, user, id, watchers).await;
    let (expected, got) = (&seen[0], &seen[1]);
    // Both read the same commits, so even the commit timestamps agree.
    assert_eq!(
        serde_json::to_string(got).unwrap(),
        serde_json::to_string(expected).unwrap()
    );
    reference.stop().await;
    fallback.stop().await;
}
