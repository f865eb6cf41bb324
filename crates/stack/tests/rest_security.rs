//! Access over real HTTP: Kong's apikey gate, bearer tokens, row-level security both ways, and
//! the pool's wait limit (504 PGRST003).

mod stack_support;

use reqwest::Method;
use serde_json::json;
use stack_support::{boot, boot_with, status_json};
use syncstorm_wire::jwt;
use uuid::Uuid;

#[tokio::test]
async fn row_level_security_separates_users() {
    let s = boot().await;
    let (a, b) = (s.new_user().await, s.new_user().await);
    let wallet = s.wallet(&a, "a's").await;
    let read = format!("/rest/v1/wallets?user_id=eq.{}", a.id);
    let (status, body) = status_json(s.user(&b, Method::GET, &read).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!([])), "B reads none of A's rows");
    let (_, body) = status_json(s.user(&a, Method::GET, &read).send().await.unwrap()).await;
    assert_eq!(body.as_array().unwrap().len(), 1, "A reads its own row");

    let as_a = json!({"id": Uuid::new_v4(), "user_id": a.id, "name": "forged"});
    let (status, body) = status_json(
        s.user(&b, Method::POST, "/rest/v1/wallets")
            .json(&as_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("42501")),
        "B cannot insert as A"
    );
    let patch = s
        .user(
            &b,
            Method::PATCH,
            &format!("/rest/v1/wallets?id=eq.{wallet}"),
        )
        .header("Prefer", "return=representation");
    let (status, body) =
        status_json(patch.json(&json!({"name": "stolen"})).send().await.unwrap()).await;
    assert_eq!(
        (status, body),
        (200, json!([])),
        "B's update touches none of A's rows"
    );
    let (status, body) = status_json(
        s.anon(Method::POST, "/rest/v1/wallets")
            .json(&as_a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("42501")),
        "anon is refused with 401"
    );
    let (_, body) = status_json(s.anon(Method::GET, &read).send().await.unwrap()).await;
    assert_eq!(body, json!([]), "anon reads nothing");
    let (_, body) = status_json(s.service(Method::GET, &read).send().await.unwrap()).await;
    assert_eq!(body[0]["name"], "a's", "the service role bypasses RLS");
    s.stop().await;
}

#[tokio::test]
async fn apikey_and_bearer_are_checked() {
    let s = boot().await;
    let user = s.new_user().await;
    let path = "/rest/v1/wallets?select=id";
    let (status, body) = status_json(s.http.get(s.url(path)).send().await.unwrap()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("No API key found in request"))
    );
    let (status, body) = status_json(
        s.http
            .get(s.url(path))
            .header("apikey", "wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Invalid authentication credentials"))
    );
    let query_key = format!("{path}&apikey={}", s.stack.anon_key);
    assert_eq!(
        s.http.get(s.url(&query_key)).send().await.unwrap().status(),
        200,
        "apikey may be a query parameter"
    );
    let (status, _) = status_json(
        s.http
            .post(s.url("/auth/v1/signup"))
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "auth routes are gated too");

    let mut claims = jwt::decode(&s.stack.jwt_secret, &user.session.access_token).unwrap();
    let forged = jwt::encode("another secret", &claims);
    let (status, body) = status_json(
        s.anon(Method::GET, path)
            .bearer_auth(forged)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("PGRST301")));
    claims.exp = chrono::Utc::now().timestamp() - 10;
    let expired = jwt::encode(&s.stack.jwt_secret, &claims);
    let (status, body) = status_json(
        s.anon(Method::GET, path)
            .bearer_auth(expired)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("PGRST303")));
    let (status, _) = status_json(
        s.anon(Method::GET, path)
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        s.user(&user, Method::GET, path)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still serving"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_full_pool_answers_504_after_the_plans_wait() {
    let s = boot_with(|c| {
        c.plan.set("rest_pool_size", "1").unwrap();
        c.plan.set("rest_pool_timeout_ms", "100").unwrap();
    })
    .await;
    let user = s.new_user().await;
    // sync_push waits for the user's token-row lock, which this transaction holds.
    let (db, conn) = tokio_postgres::connect(&s.stack.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.batch_execute(&format!(
        "begin; insert into public.user_sync_tokens (user_id) values ('{}') on conflict do nothing; \
         select * from public.user_sync_tokens where user_id = '{}' for update;",
        user.id, user.id
    ))
    .await
    .unwrap();
    let body = json!({"rows": [{"table": "wallets", "row": {"id": Uuid::new_v4(), "user_id": user.id, "name": "x"}}]});
    let blocked = s
        .user(&user, Method::POST, "/rest/v1/rpc/sync_push")
        .json(&body)
        .send();
    let blocked = tokio::spawn(blocked);
    // Waits until the blocked push holds the pool's only connection (it shows up as a lock
    // wait). Polled from outside the locking transaction, whose activity snapshot is frozen.
    let (watcher, conn) = tokio_postgres::connect(&s.stack.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let waiting = "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%sync_push%'";
    while watcher
        .query_one(waiting, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        tokio::task::yield_now().await;
    }
    let (status, err) = status_json(
        s.user(&user, Method::GET, "/rest/v1/wallets")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err["code"].as_str()), (504, Some("PGRST003")));
    db.batch_execute("commit").await.unwrap();
    assert_eq!(blocked.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        s.user(&user, Method::GET, "/rest/v1/wallets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}
