//! A stack of two processes has one REST pool and one Auth pool, in the parent, like the one
//! PostgREST and the one GoTrue behind Kong: worker 2 forwards to it and answers exactly as
//! worker 1 does, requests from both workers queue on the one pool, and only the parent's
//! `/metrics` shows the pool gauges.

mod realtime_support;
mod workers_support;

use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};
use std::time::Duration;
use syncstorm_stack::RunningStack;
use uuid::Uuid;
use workers_support::{Seen, metric, metrics_page, metrics_when, seen, two_workers};

/// The same request, built by `build` against each worker's URL, answered by each.
async fn on_both(stack: &RunningStack, build: impl Fn(&str) -> RequestBuilder) -> (Seen, Seen) {
    let one = seen(build(&stack.worker_urls[0]).send().await.unwrap()).await;
    let two = seen(build(&stack.worker_urls[1]).send().await.unwrap()).await;
    (one, two)
}

/// Signs a new user up through worker 1; returns its id and access token.
async fn sign_up(http: &Client, stack: &RunningStack, password: &str) -> (String, String, Uuid) {
    let email = format!("f{}@example.com", Uuid::new_v4().simple());
    let session: Value = http
        .post(format!("{}/auth/v1/signup", stack.worker_urls[0]))
        .header("apikey", &stack.anon_key)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    let token = session["access_token"].as_str().unwrap().to_string();
    (email, token, id)
}

#[tokio::test]
async fn worker_two_answers_rest_and_auth_exactly_as_worker_one() {
    let stack = two_workers(|_| {}).await;
    same_answers_on_both_workers(stack).await;
}

#[tokio::test]
async fn worker_two_answers_the_same_when_every_request_goes_over_http2() {
    let stack = two_workers(|c| c.forward_http1_connections = 0).await;
    same_answers_on_both_workers(stack).await;
}

async fn same_answers_on_both_workers(stack: RunningStack) {
    let http = Client::new();
    let anon = |method: Method, path: &str| {
        let (http, key, path) = (http.clone(), stack.anon_key.clone(), path.to_string());
        move |base: &str| {
            http.request(method.clone(), format!("{base}{path}"))
                .header("apikey", &key)
        }
    };
    // A PostgREST error, and Kong's refusal at the edge.
    let (one, two) = on_both(&stack, anon(Method::GET, "/rest/v1/no_such_table")).await;
    assert_eq!(one, two);
    assert!(
        one.status >= 400 && one.body.starts_with(b"{\"code\":\"PGRST"),
        "{one:?}"
    );
    let (one, two) = on_both(&stack, |base| http.get(format!("{base}/rest/v1/wallets"))).await;
    assert_eq!((one.status, &one), (401, &two));

    // An upsert returning its representation, sent twice with the same row.
    let (email, token, user_id) = sign_up(&http, &stack, "pw-forwarded").await;
    let row = json!({"id": Uuid::new_v4(), "user_id": user_id, "name": "fwd",
                     "updated_at": "2026-11-24T12:00:00+00:00"});
    let upsert = |base: &str| {
        anon(
            Method::POST,
            "/rest/v1/wallets?on_conflict=id&select=id,name,updated_at",
        )(base)
        .bearer_auth(&token)
        .header(
            "Prefer",
            "return=representation,resolution=merge-duplicates",
        )
        .json(&row)
    };
    let (one, mut two) = on_both(&stack, upsert).await;
    // The first inserts the row (201); the second, through the other worker, only updates it,
    // and PostgREST answers a merging upsert that inserted nothing with 200.
    assert_eq!((one.status, two.status), (201, 200), "{one:?} {two:?}");
    two.status = one.status;
    assert_eq!(one, two);
    let (one, two) = on_both(&stack, |base| {
        anon(Method::GET, "/rest/v1/wallets?select=name")(base)
            .bearer_auth(&token)
            .header("Prefer", "count=exact")
    })
    .await;
    assert_eq!(
        (one.status, one.headers.get("content-range")),
        (200, Some(&"0-0/1".to_string()))
    );
    assert_eq!(one, two);

    // GoTrue: a refused sign-in is identical; a granted one differs only in its fresh tokens.
    let password = |pw: &'static str| {
        let email = email.clone();
        move |base: &str| {
            anon(Method::POST, "/auth/v1/token?grant_type=password")(base)
                .json(&json!({"email": email, "password": pw}))
        }
    };
    let (one, two) = on_both(&stack, password("wrong")).await;
    assert_eq!(one, two);
    assert_eq!(one.status, 400, "{one:?}");
    let (one, two) = on_both(&stack, password("pw-forwarded")).await;
    assert_eq!((one.status, two.status), (200, 200));
    let mut headers = (one.headers.clone(), two.headers.clone());
    headers.0.remove("content-length");
    headers.1.remove("content-length");
    assert_eq!(headers.0, headers.1);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let bodies: (Value, Value) = (
        serde_json::from_slice(&one.body).unwrap(),
        serde_json::from_slice(&two.body).unwrap(),
    );
    assert_eq!(bodies.0["user"]["id"], bodies.1["user"]["id"]);
    assert_eq!(keys(&bodies.0["user"]), keys(&bodies.1["user"]));
    assert_eq!(keys(&bodies.0), keys(&bodies.1));
    stack.stop().await.unwrap();
}

#[tokio::test]
async fn requests_through_both_workers_queue_on_one_rest_pool() {
    one_pool_queue(syncstorm_stack::forward::HTTP1_CONNECTIONS).await;
}

#[tokio::test]
async fn requests_forwarded_over_http2_queue_on_the_same_pool() {
    one_pool_queue(0).await;
}

async fn one_pool_queue(http1_connections: usize) {
    let timeout = Duration::from_secs(2);
    let stack = two_workers(|c| {
        c.plan.rest_pool_size = 1;
        c.plan.rest_pool_timeout = timeout;
        c.forward_http1_connections = http1_connections;
    })
    .await;
    let http = Client::new();
    let (_, token, user_id) = sign_up(&http, &stack, "pw-pool").await;
    let wallet = Uuid::new_v4();
    let created = http
        .post(format!("{}/rest/v1/wallets", stack.worker_urls[0]))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&token)
        .json(&json!({"id": wallet, "user_id": user_id, "name": "held"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Hold the wallet's row lock, so an update through worker 1 keeps the pool's only
    // connection until the lock is released.
    let db = realtime_support::db().await;
    db.batch_execute("begin").await.unwrap();
    db.execute(
        "select 1 from public.wallets where id = $1 for update",
        &[&wallet],
    )
    .await
    .unwrap();
    let update = http
        .patch(format!(
            "{}/rest/v1/wallets?id=eq.{wallet}",
            stack.worker_urls[0]
        ))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&token)
        .json(&json!({"name": "updated"}))
        .send();
    let update = tokio::spawn(update);
    let parent = &stack.metrics_urls[0];
    let in_use = "syncstorm_pool_in_use{pool=\"rest\"}";
    let waiting = "syncstorm_pool_waiting{pool=\"rest\"}";
    metrics_when(parent, |p| metric(p, in_use) == Some(1.0)).await;
    // A read through worker 2 waits for that same connection, and gives up at the timeout.
    let read = http
        .get(format!(
            "{}/rest/v1/wallets?select=name",
            stack.worker_urls[1]
        ))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&token)
        .send();
    let read = tokio::spawn(read);
    let page = metrics_when(parent, |p| metric(p, waiting) == Some(1.0)).await;
    assert_eq!(metric(&page, in_use), Some(1.0));
    assert_eq!(
        metric(&page, "syncstorm_pool_size{pool=\"rest\"}"),
        Some(1.0)
    );
    let read = read.await.unwrap().unwrap();
    assert_eq!(read.status(), 504);
    let error: Value = read.json().await.unwrap();
    assert_eq!(error["code"], "PGRST003", "{error}");
    let page = metrics_page(parent).await;
    assert_eq!(
        metric(&page, "syncstorm_pool_timeouts_total{pool=\"rest\"}"),
        Some(1.0)
    );
    let longest = metric(&page, "syncstorm_pool_max_wait_ms{pool=\"rest\"}").unwrap();
    assert!(longest >= timeout.as_millis() as f64 * 0.9, "{longest} ms");
    db.batch_execute("commit").await.unwrap();
    let update = update.await.unwrap().unwrap();
    assert!(update.status().is_success(), "{}", update.status());
    let page = metrics_when(parent, |p| metric(p, in_use) == Some(0.0)).await;
    assert_eq!(metric(&page, waiting), Some(0.0));
    assert!(metric(&page, "syncstorm_pool_size{pool=\"auth\"}").is_some());
    let worker_two = metrics_page(&stack.metrics_urls[1]).await;
    assert!(
        !worker_two.contains("syncstorm_pool_"),
        "only the parent has pools"
    );
    stack.stop().await.unwrap();
}
