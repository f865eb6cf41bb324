//! Row-level security, grants and per-role statement timeouts, on the shared cluster, with
//! each transaction run as PostgREST runs a request.

mod schema_support;

use schema_support::*;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn user_b_reads_none_of_user_a_rows() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, a).await;
    let wallet = insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();

    let tx = as_user(&mut conn, a).await;
    let own: i64 = tx
        .query_one("select count(*) from public.wallets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, 1, "A sees exactly A's row");
    tx.commit().await.unwrap();

    let tx = as_user(&mut conn, b).await;
    for table in [
        "wallets",
        "channels",
        "categories_user",
        "transactions",
        "plans",
        "user_sync_tokens",
    ] {
        let n: i64 = tx
            .query_one(&format!("select count(*) from public.{table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "B sees rows in {table}");
    }
    let by_id = tx
        .query("select 1 from public.wallets where id = $1", &[&wallet])
        .await
        .unwrap();
    assert!(by_id.is_empty());
}

#[tokio::test]
async fn user_b_cannot_insert_as_user_a() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, b).await;
    let err = insert_wallet(&tx, a).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[tokio::test]
async fn user_b_cannot_update_or_delete_user_a_rows() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, a).await;
    let wallet = insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();

    let tx = as_user(&mut conn, b).await;
    let updated = tx
        .execute(
            "update public.wallets set name = 'stolen' where id = $1",
            &[&wallet],
        )
        .await
        .unwrap();
    let deleted = tx
        .execute("delete from public.wallets where id = $1", &[&wallet])
        .await
        .unwrap();
    assert_eq!((updated, deleted), (0, 0));
    // Handing one's own row to another user is refused too.
    let own = insert_wallet(&tx, b).await.unwrap();
    let err = tx
        .execute(
            "update public.wallets set user_id = $1 where id = $2",
            &[&a, &own],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
    drop(tx);

    let name: String = admin
        .query_one("select name from public.wallets where id = $1", &[&wallet])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "cash");
}

#[tokio::test]
async fn a_child_cannot_point_at_another_users_parent() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, a).await;
    let wallet = insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();

    let tx = as_user(&mut conn, b).await;
    let err = tx
        .execute(
            "insert into public.channels (id, user_id, wallet_id, name) values ($1, $2, $3, 'x')",
            &[&Uuid::new_v4(), &b, &wallet],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "23503", "{err}");
}

#[tokio::test]
async fn anon_reads_nothing_and_writes_nothing() {
    let admin = admin().await;
    let a = new_user(&admin).await;
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, a).await;
    insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();

    let tx = as_role(&mut conn, "anon", json!({"role": "anon"})).await;
    let n: i64 = tx
        .query_one("select count(*) from public.wallets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let err = insert_wallet(&tx, a).await.unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[tokio::test]
async fn sync_tokens_are_readable_but_not_writable_by_their_user() {
    let admin = admin().await;
    let a = new_user(&admin).await;
    let mut conn = authenticator().await;
    let tx = as_user(&mut conn, a).await;
    insert_wallet(&tx, a).await.unwrap();
    tx.commit().await.unwrap();

    let tx = as_user(&mut conn, a).await;
    let token: i64 = tx
        .query_one("select sync_token from public.user_sync_tokens", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(token, 1);
    let err = tx
        .execute("update public.user_sync_tokens set sync_token = 0", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42501", "{err}");
}

#[tokio::test]
async fn service_role_bypasses_row_level_security() {
    let admin = admin().await;
    let (a, b) = (new_user(&admin).await, new_user(&admin).await);
    let mut conn = authenticator().await;
    let tx = as_role(&mut conn, "service_role", json!({"role": "service_role"})).await;
    insert_wallet(&tx, a).await.unwrap();
    insert_wallet(&tx, b).await.unwrap();
    let n: i64 = tx
        .query_one(
            "select count(*) from public.wallets where user_id in ($1, $2)",
            &[&a, &b],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn jwt_helpers_read_the_claims_like_supabase() {
    let user = Uuid::new_v4();
    let mut conn = authenticator().await;
    let claims = json!({"sub": user, "role": "authenticated", "email": "x@example.test"});
    let tx = as_role(&mut conn, "authenticated", claims.clone()).await;
    let row = tx
        .query_one("select auth.uid(), auth.role(), auth.jwt()", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), user);
    assert_eq!(row.get::<_, String>(1), "authenticated");
    assert_eq!(row.get::<_, serde_json::Value>(2), claims);
    // The legacy per-claim setting wins, as in Supabase's definition.
    let legacy = Uuid::new_v4();
    tx.execute(
        "select set_config('request.jwt.claim.sub', $1, true)",
        &[&legacy.to_string()],
    )
    .await
    .unwrap();
    let uid: Uuid = tx.query_one("select auth.uid()", &[]).await.unwrap().get(0);
    assert_eq!(uid, legacy);
}

#[tokio::test]
async fn api_roles_carry_supabase_statement_timeouts() {
    let admin = admin().await;
    let rows = admin
        .query(
            "select r.rolname::text, s.setconfig from pg_db_role_setting s \
             join pg_roles r on r.oid = s.setrole where r.rolname in ('anon', 'authenticated') \
             order by 1",
            &[],
        )
        .await
        .unwrap();
    let settings: Vec<(String, Vec<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        settings,
        vec![
            ("anon".to_string(), vec!["statement_timeout=3s".to_string()]),
            (
                "authenticated".to_string(),
                vec!["statement_timeout=8s".to_string()]
            ),
        ]
    );

    // Applied per transaction as PostgREST applies role settings, anon's cancels a long query.
    let mut conn = authenticator().await;
    let tx = as_role(&mut conn, "anon", json!({"role": "anon"})).await;
    tx.execute("select set_config('statement_timeout', '3s', true)", &[])
        .await
        .unwrap();
    let err = tx.execute("select pg_sleep(3.5)", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
}
