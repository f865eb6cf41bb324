//! Sync tokens, foreign keys and the `sync_push` RPC on the shared cluster.

mod schema_support;

use schema_support::*;
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

const T0: &str = "2026-11-24T12:00:00.000Z";
const T_EARLIER: &str = "2026-11-24T11:59:59.999Z";
const T_LATER: &str = "2026-11-24T12:00:00.001Z";

fn wallet(id: Uuid, user: Uuid, name: &str, at: &str) -> Value {
    json!({"table": "wallets", "row": {"id": id, "user_id": user, "name": name, "updated_at": at}})
}

/// Calls `sync_push` as `user` (PostgREST-style transaction) and returns its result.
async fn push(conn: &mut Client, user: Uuid, rows: Value) -> Result<Value, tokio_postgres::Error> {
    let tx = as_user(conn, user).await;
    let row = tx
        .query_one("select public.sync_push($1)", &[&rows])
        .await?;
    tx.commit().await?;
    Ok(row.get(0))
}

fn ids(v: &Value) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = serde_json::from_value(v.clone()).unwrap();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_token_rises_on_every_change_to_the_users_rows() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    assert_eq!(token_of(&admin, a).await, 0);

    let tx = as_user(&mut conn, a).await;
    let wallet = insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();
    let after_insert = token_of(&admin, a).await;
    assert_eq!(after_insert, 1);

    let changes = [
        "update public.wallets set name = 'renamed' where id = $1",
        "update public.wallets set deleted = true where id = $1",
        "delete from public.wallets where id = $1",
    ];
    let mut last = after_insert;
    for sql in changes {
        let tx = as_user(&mut conn, a).await;
        assert_eq!(tx.execute(sql, &[&wallet]).await.unwrap(), 1, "{sql}");
        tx.commit().await.unwrap();
        let now = token_of(&admin, a).await;
        assert!(
            now > last,
            "{sql} did not raise the token ({last} -> {now})"
        );
        last = now;
    }
    // Another user's changes leave A's token alone.
    let tx = as_user(&mut conn, b).await;
    insert_wallet(&tx, b).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(token_of(&admin, a).await, last);
    // A rolled-back change is no change.
    let tx = as_user(&mut conn, a).await;
    insert_wallet(&tx, a).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(token_of(&admin, a).await, last);
}

#[tokio::test]
async fn foreign_key_violations_are_errors() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let missing = Uuid::new_v4();
    let cases = [
        "insert into public.channels (id, user_id, wallet_id, name) values ($1, $2, $3, 'c')",
        "insert into public.categories_user (id, user_id, parent_id, name) values ($1, $2, $3, 'c')",
        "insert into public.plans (id, user_id, category_id, name, amount) values ($1, $2, $3, 'p', 10)",
        "insert into public.transactions (id, user_id, wallet_id, channel_id, category_id, amount) \
         values ($1, $2, $3, $3, $3, 1)",
    ];
    for sql in cases {
        let tx = as_user(&mut conn, user).await;
        let err = tx
            .execute(sql, &[&Uuid::new_v4(), &user, &missing])
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&err), "23503", "{sql}: {err}");
    }
}

#[tokio::test]
async fn sync_push_applies_newer_and_refuses_older_or_equal() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let id = Uuid::new_v4();

    let first = push(&mut conn, user, json!([wallet(id, user, "v1", T0)]))
        .await
        .unwrap();
    assert_eq!(
        (ids(&first["applied"]), ids(&first["lost"])),
        (vec![id], vec![])
    );
    let token = token_of(&admin, user).await;

    for (name, at) in [("older", T_EARLIER), ("equal", T0)] {
        let out = push(&mut conn, user, json!([wallet(id, user, name, at)]))
            .await
            .unwrap();
        assert_eq!(
            (ids(&out["applied"]), ids(&out["lost"])),
            (vec![], vec![id]),
            "{name}"
        );
    }
    assert_eq!(
        token_of(&admin, user).await,
        token,
        "a lost row must not raise the token"
    );

    let newer = push(&mut conn, user, json!([wallet(id, user, "v2", T_LATER)]))
        .await
        .unwrap();
    assert_eq!(ids(&newer["applied"]), vec![id]);
    let name: String = admin
        .query_one("select name from public.wallets where id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "v2");
    assert!(token_of(&admin, user).await > token);
}

#[tokio::test]
async fn sync_push_takes_children_before_parents_and_fills_defaults() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let (w, c, cat, parent_cat, t, p) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    // Children first in the body, and no user_id: the caller's is used.
    let rows = json!([
        {"table": "plans", "row": {"id": p, "category_id": cat, "name": "food", "amount": 300, "updated_at": T0}},
        {"table": "transactions", "row": {"id": t, "wallet_id": w, "channel_id": c, "category_id": cat,
            "amount": "12.50", "note": "lunch", "occurred_at": T0, "updated_at": T0}},
        {"table": "categories_user", "row": {"id": cat, "parent_id": parent_cat, "name": "lunch", "updated_at": T0}},
        {"table": "categories_user", "row": {"id": parent_cat, "name": "food", "updated_at": T0}},
        {"table": "channels", "row": {"id": c, "wallet_id": w, "name": "card", "updated_at": T0}},
        {"table": "wallets", "row": {"id": w, "name": "main", "updated_at": T0}},
    ]);
    let out = push(&mut conn, user, rows).await.unwrap();
    let mut all = vec![w, c, cat, parent_cat, t, p];
    all.sort();
    assert_eq!((ids(&out["applied"]), ids(&out["lost"])), (all, vec![]));
    let row = admin
        .query_one(
            "select user_id, deleted, currency from public.transactions where id = $1",
            &[&t],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), user);
    assert!(!row.get::<_, bool>(1));
    assert_eq!(row.get::<_, String>(2), "USD");
}

#[tokio::test]
async fn sync_push_refuses_bad_bodies_and_other_users_rows() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    for body in [
        json!({"table": "wallets"}),
        json!([{"table": "accounts", "row": {}}]),
        json!([{"table": "wallets"}]),
    ] {
        let err = push(&mut conn, a, body.clone()).await.unwrap_err();
        assert_eq!(sqlstate(&err), "22023", "{body}: {err}");
    }
    let id = Uuid::new_v4();
    push(&mut conn, a, json!([wallet(id, a, "mine", T0)]))
        .await
        .unwrap();
    // B writing as A, and B overwriting A's row by id: both refused by row-level security.
    let err = push(&mut conn, b, json!([wallet(Uuid::new_v4(), a, "x", T0)]))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let err = push(&mut conn, b, json!([wallet(id, b, "taken", T_LATER)]))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    let name: String = admin
        .query_one("select name from public.wallets where id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "mine");
}

#[tokio::test]
async fn service_role_pushes_for_any_user() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let id = Uuid::new_v4();
    let tx = as_role(&mut conn, "service_role", json!({"role": "service_role"})).await;
    let out: Value = tx
        .query_one(
            "select public.sync_push($1)",
            &[&json!([wallet(id, user, "w", T0)])],
        )
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    assert_eq!(ids(&out["applied"]), vec![id]);
    assert_eq!(token_of(&admin, user).await, 1);
}

/// Two devices of one user push the same rows, in opposite orders, many times at once. Fresh
/// ids each round, so the inserts (the deadlock-prone path) race; then updates race too.
#[tokio::test]
async fn concurrent_overlapping_pushes_in_opposite_order_do_not_deadlock() {
    const ROUNDS: usize = 30;
    const ROWS: usize = 12;
    let admin = admin().await;
    let user = new_user(&admin).await;
    let rounds: Vec<Vec<Uuid>> = (0..ROUNDS)
        .map(|_| (0..ROWS).map(|_| Uuid::new_v4()).collect())
        .collect();
    let device = |reverse: bool, stamp: &'static str| {
        let rounds = rounds.clone();
        async move {
            let mut conn = authenticator().await;
            for ids in rounds {
                let mut body: Vec<Value> =
                    ids.iter().map(|id| wallet(*id, user, "w", stamp)).collect();
                if reverse {
                    body.reverse();
                }
                push(&mut conn, user, Value::Array(body)).await.unwrap();
            }
        }
    };
    for (a_stamp, b_stamp) in [(T0, T0), (T_LATER, T_LATER)] {
        tokio::join!(device(false, a_stamp), device(true, b_stamp));
    }
    let n: i64 = admin
        .query_one(
            "select count(*) from public.wallets where user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, ROUNDS * ROWS);
}

/// The interleaving that deadlocks when row locks and the token lock are taken in mixed
/// order: A holds w1, B inserts w2 and would wait for the token, A then writes w2, B then w1.
#[tokio::test]
async fn the_token_lock_is_taken_before_any_row_lock() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let (w1, w2) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn_a = authenticator().await;
    let mut conn_b = authenticator().await;
    let tx_a = as_user(&mut conn_a, user).await;
    tx_a.query_one(
        "select public.sync_push($1)",
        &[&json!([wallet(w1, user, "a", T0)])],
    )
    .await
    .unwrap();

    let b_pid: i32 = conn_b
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let device_b = tokio::spawn(async move {
        let tx_b = as_user(&mut conn_b, user).await;
        for id in [w2, w1] {
            tx_b.query_one(
                "select public.sync_push($1)",
                &[&json!([wallet(id, user, "b", T_LATER)])],
            )
            .await?;
        }
        tx_b.commit().await
    });
    wait_until_blocked(&admin, b_pid).await;
    tx_a.query_one(
        "select public.sync_push($1)",
        &[&json!([wallet(w2, user, "a", T0)])],
    )
    .await
    .unwrap();
    tx_a.commit().await.unwrap();
    device_b.await.unwrap().unwrap();
    let names = admin
        .query(
            "select name from public.wallets where id in ($1, $2)",
            &[&w1, &w2],
        )
        .await
        .unwrap();
    assert!(
        names.iter().all(|r| r.get::<_, String>(0) == "b"),
        "B's newer rows win"
    );
}

/// Waits (bounded) until backend `pid` waits on a lock.
async fn wait_until_blocked(admin: &Client, pid: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let blocked: bool = admin
            .query_one(
                "select coalesce(wait_event_type = 'Lock', false) from pg_stat_activity where pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if blocked {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "device B never blocked on A"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_row_repeated_in_one_push_counts_once_with_its_newest_version() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let id = Uuid::new_v4();
    let body = json!([
        wallet(id, user, "newest", T_LATER),
        wallet(id, user, "older", T0)
    ]);
    let out = push(&mut conn, user, body).await.unwrap();
    assert_eq!(
        (ids(&out["applied"]), ids(&out["lost"])),
        (vec![id], vec![])
    );
    let name: String = admin
        .query_one("select name from public.wallets where id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "newest");
}

#[tokio::test]
async fn anon_cannot_push() {
    let admin = admin().await;
    let user = new_user(&admin).await;
    let mut conn = authenticator().await;
    let tx = as_role(&mut conn, "anon", json!({"role": "anon"})).await;
    let body = json!([wallet(Uuid::new_v4(), user, "w", T0)]);
    let err = tx
        .query_one("select public.sync_push($1)", &[&body])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    drop(tx);
    assert_eq!(token_of(&admin, user).await, 0);
}
