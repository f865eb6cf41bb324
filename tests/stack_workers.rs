//! The embedded stack as several processes (`workers = 2`): both answer Auth and REST with the
//! same keys, a subscriber on worker 2 receives a change committed through worker 1's REST from
//! the stack's one change capture, and the worker process and its slot are gone once the stack
//! stops.

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use syncstorm_wire::client::{
    Endpoint, RealtimeClient, RealtimeEvent, RealtimeOptions, Subscription,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

async fn two_workers() -> RunningStack {
    let mut config = StackConfig::new(SupabasePlan::preset("unlimited").unwrap());
    config.workers = 2;
    config.worker_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_syncstorm")));
    Stack::start_for_tests(config, CancellationToken::new())
        .await
        .expect("a two-worker stack starts")
}

/// Creates a confirmed user through `base`'s admin API and signs it in there.
async fn user(http: &reqwest::Client, stack: &RunningStack, base: &str) -> (Uuid, String) {
    let email = format!("w{}@example.com", Uuid::new_v4().simple());
    let created = http
        .post(format!("{base}/auth/v1/admin/users"))
        .header("apikey", &stack.service_role_key)
        .bearer_auth(&stack.service_role_key)
        .json(&json!({"email": email, "password": "pw-123456", "email_confirm": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    let session: Value = http
        .post(format!("{base}/auth/v1/token?grant_type=password"))
        .header("apikey", &stack.anon_key)
        .json(&json!({"email": email, "password": "pw-123456"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    (id, session["access_token"].as_str().unwrap().to_string())
}

async fn next_event(client: &mut RealtimeClient) -> RealtimeEvent {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .expect("an event in time")
        .expect("the socket task is running")
}

#[tokio::test]
async fn a_change_through_worker_one_reaches_a_subscriber_on_worker_two() {
    let stack = two_workers().await;
    assert_eq!(stack.worker_urls.len(), 2);
    assert_ne!(stack.worker_urls[0], stack.worker_urls[1]);
    assert!(stack.env_lines().contains("SUPABASE_URLS="));
    let (one, two) = (stack.worker_urls[0].clone(), stack.worker_urls[1].clone());
    let http = reqwest::Client::new();
    // Auth on worker 2 with the parent's keys; the token it issues works on worker 1.
    let (user_id, token) = user(&http, &stack, &two).await;

    let (_online_tx, online) = tokio::sync::watch::channel(true);
    let mut subscriber = RealtimeClient::spawn(
        Endpoint::new(&two, &stack.anon_key).unwrap(),
        RealtimeOptions::default(),
        Subscription::tables(&user_id.to_string(), &["wallets"]),
        token.clone(),
        online,
        &CancellationToken::new(),
    );
    loop {
        match next_event(&mut subscriber).await {
            RealtimeEvent::Subscribed => break,
            RealtimeEvent::Connected { .. } | RealtimeEvent::Joined { .. } => {}
            other => panic!("expected a subscription, got {other:?}"),
        }
    }
    let inserted = http
        .post(format!("{one}/rest/v1/wallets"))
        .header("apikey", &stack.anon_key)
        .bearer_auth(&token)
        .json(&json!({"id": Uuid::new_v4(), "user_id": user_id, "name": "across"}))
        .send()
        .await
        .unwrap();
    assert_eq!(inserted.status(), 201, "{}", inserted.text().await.unwrap());
    match next_event(&mut subscriber).await {
        RealtimeEvent::Change { table, .. } => assert_eq!(table, "wallets"),
        other => panic!("expected the change, got {other:?}"),
    }
    // Both workers read it back through REST, and each exposes its own metrics.
    for base in [&one, &two] {
        let rows: Value = http
            .get(format!("{base}/rest/v1/wallets?select=name"))
            .header("apikey", &stack.anon_key)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rows, json!([{"name": "across"}]), "{base}");
    }
    let metrics = http
        .get(&stack.metrics_urls[1])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("syncstorm_realtime_connections 1\n"),
        "{metrics}"
    );
    // Worker 2 heard it from the stack's one capture: PostgreSQL decodes the WAL once.
    assert!(
        metrics.contains("syncstorm_realtime_fanout_changes_received_total ")
            && !metrics.contains("syncstorm_realtime_fanout_changes_received_total 0\n"),
        "{metrics}"
    );
    let (db, conn) = tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let slots: i64 = db
        .query_one(
            "select count(*) from pg_replication_slots where active",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 1, "one slot for the whole stack");
    subscriber.leave().await;
    stack.stop().await.expect("the stack and its worker stop");
    let refused = http.get(format!("{two}/auth/v1/health")).send().await;
    assert!(refused.is_err(), "worker 2 is gone after stop");
}
