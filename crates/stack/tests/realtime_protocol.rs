//! Realtime against the shared test cluster with a raw Phoenix client: deliveries, RLS
//! authorization, leave, tokens, both serializer versions, and the slot's life.

#[macro_use]
mod realtime_support;

use realtime_support::*;
use std::time::Duration;
use syncstorm_stack::realtime::Decoder;
use syncstorm_wire::phoenix::Vsn;

for_each_decoder!(
    own_token_change_arrives_and_other_users_never_see_it,
    table_subscription_sees_insert_then_update_with_old_and_new,
    leave_stops_delivery_and_heartbeats_are_answered,
    an_expiring_token_closes_its_channel_and_a_refresh_keeps_it,
    the_slot_exists_while_running_and_is_gone_after_stop,
);

async fn own_token_change_arrives_and_other_users_never_see_it(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let (a, a_token) = user(&server.db).await;
    let (b, b_token) = user(&server.db).await;
    let mut alice = connect(&server.url(&anon_key(), Vsn::V2), Vsn::V2)
        .await
        .unwrap();
    let mut bob = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    let a_filter = format!("user_id=eq.{a}");
    let ids = alice
        .subscribe(
            "realtime:a",
            vec![binding("*", "user_sync_tokens", Some(&a_filter))],
            Some(&a_token),
        )
        .await;
    // Bob asks for Alice's rows and for his own; RLS must keep Alice's from him.
    let b_filter = format!("user_id=eq.{b}");
    let bindings = vec![
        binding("*", "user_sync_tokens", Some(&a_filter)),
        binding("*", "user_sync_tokens", Some(&b_filter)),
    ];
    bob.subscribe("realtime:b", bindings, Some(&b_token)).await;

    wallet(&server.db, a).await;
    let event = alice.change().await;
    assert_eq!(event.topic, "realtime:a");
    assert_eq!(event.payload["ids"], serde_json::json!(ids));
    let data = &event.payload["data"];
    assert_eq!(
        (data["schema"].as_str(), data["table"].as_str()),
        (Some("public"), Some("user_sync_tokens"))
    );
    assert_eq!(data["type"], "INSERT");
    assert_eq!(data["record"]["user_id"], a.to_string());
    assert_eq!(data["record"]["sync_token"], 1);
    assert!(data["commit_timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(data["errors"], serde_json::Value::Null);

    // Changes reach a socket in commit order: Bob's first event must be his own row.
    wallet(&server.db, b).await;
    let event = bob.change().await;
    assert_eq!(event.payload["data"]["record"]["user_id"], b.to_string());
    assert!(server.metric("authz_checks_total").await >= 3);
    server.stop().await;
}

async fn table_subscription_sees_insert_then_update_with_old_and_new(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let (a, a_token) = user(&server.db).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    c.subscribe(
        "realtime:w",
        vec![binding("*", "wallets", Some(&format!("user_id=eq.{a}")))],
        Some(&a_token),
    )
    .await;
    let id = wallet(&server.db, a).await;
    server
        .db
        .execute(
            "update public.wallets set name = 'renamed' where id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let insert = c.change().await;
    assert_eq!(insert.payload["data"]["type"], "INSERT");
    assert_eq!(insert.payload["data"]["record"]["name"], "w");
    assert!(insert.payload["data"].get("old_record").is_none());
    let update = c.change().await;
    let data = &update.payload["data"];
    assert_eq!(data["type"], "UPDATE");
    assert_eq!(data["record"]["name"], "renamed");
    assert_eq!(data["old_record"]["id"], id.to_string());
    let types: Vec<&str> = data["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"uuid") && types.contains(&"timestamptz") && types.contains(&"bool"),
        "{types:?}"
    );
    assert!(data["record"]["updated_at"].as_str().unwrap().contains('T'));
    server.stop().await;
}

async fn leave_stops_delivery_and_heartbeats_are_answered(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let (a, a_token) = user(&server.db).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V2), Vsn::V2)
        .await
        .unwrap();
    let filter = format!("user_id=eq.{a}");
    c.subscribe(
        "realtime:one",
        vec![binding("*", "user_sync_tokens", Some(&filter))],
        Some(&a_token),
    )
    .await;
    c.subscribe(
        "realtime:two",
        vec![binding("*", "wallets", Some(&filter))],
        Some(&a_token),
    )
    .await;
    let leave = c
        .push("realtime:one", "phx_leave", serde_json::json!({}))
        .await;
    let reply = c.recv().await;
    assert_eq!(
        (reply.event.as_str(), reply.msg_ref.as_deref()),
        ("phx_reply", Some(leave.as_str()))
    );
    assert_eq!(c.recv().await.event, "phx_close");
    wallet(&server.db, a).await;
    // Only channel two hears of the insert: the token change went nowhere.
    assert_eq!(c.change().await.topic, "realtime:two");
    let hb = c.push("phoenix", "heartbeat", serde_json::json!({})).await;
    let reply = c.recv().await;
    assert_eq!(
        (reply.topic.as_str(), reply.msg_ref.as_deref()),
        ("phoenix", Some(hb.as_str()))
    );
    assert_eq!(server.metric("subscriptions_current").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_like_realtime() {
    let server = Server::start(config(ROOMY)).await;
    assert_eq!(
        connect(&server.url("garbage", Vsn::V1), Vsn::V1)
            .await
            .err(),
        Some(403)
    );
    let forged = token("anon", None, 3600).replace('.', ".x");
    assert_eq!(
        connect(&server.url(&forged, Vsn::V1), Vsn::V1).await.err(),
        Some(403)
    );
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    let expired = token("authenticated", Some(uuid::Uuid::new_v4()), -30);
    c.join("realtime:x", vec![], Some(&expired)).await;
    let reply = c.recv().await;
    assert_eq!(reply.payload["status"], "error");
    let reason = reply.payload["response"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("InvalidJWTToken: Token has expired"),
        "{reason}"
    );
    c.join("realtime:", vec![], None).await;
    assert!(
        c.recv().await.payload["response"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("TopicNameRequired")
    );
    server.stop().await;
}

async fn an_expiring_token_closes_its_channel_and_a_refresh_keeps_it(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let (a, _) = user(&server.db).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    let short = token("authenticated", Some(a), 2);
    let filter = format!("user_id=eq.{a}");
    c.subscribe(
        "realtime:keep",
        vec![binding("*", "user_sync_tokens", Some(&filter))],
        Some(&short),
    )
    .await;
    c.subscribe(
        "realtime:lose",
        vec![binding("*", "wallets", Some(&filter))],
        Some(&short),
    )
    .await;
    c.push(
        "realtime:keep",
        "access_token",
        serde_json::json!({"access_token": token("authenticated", Some(a), 3600)}),
    )
    .await;
    // An accepted token re-subscribes the channel, as Realtime's `access_token` handler does.
    let resubscribed = c.recv_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (resubscribed.topic.as_str(), resubscribed.event.as_str()),
        ("realtime:keep", "system")
    );
    assert_eq!(
        (
            &resubscribed.payload["status"],
            &resubscribed.payload["message"]
        ),
        (
            &serde_json::json!("ok"),
            &serde_json::json!("Subscribed to PostgreSQL")
        )
    );
    let system = c.recv_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (system.topic.as_str(), system.event.as_str()),
        ("realtime:lose", "system")
    );
    assert_eq!(system.payload["status"], "error");
    assert!(
        system.payload["message"]
            .as_str()
            .unwrap()
            .starts_with("Token has expired")
    );
    assert_eq!(c.recv().await.event, "phx_close");
    wallet(&server.db, a).await;
    assert_eq!(c.change().await.topic, "realtime:keep");
    assert_eq!(server.metric("channels_token_expired_total").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_socket_is_closed_after_the_idle_timeout() {
    let mut cfg = config(ROOMY);
    cfg.idle_timeout = Duration::from_millis(300);
    let server = Server::start(cfg).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    assert!(
        c.recv_within(Duration::from_secs(5)).await.is_none(),
        "the server closes it"
    );
    assert_eq!(server.metric("connections_idle_closed_total").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_tables_and_bad_filters_get_the_subscription_error() {
    let server = Server::start(config(ROOMY)).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    let bad = [
        binding("*", "no_such_table", None),
        binding("*", "wallets", Some("nope=eq.1")),
        binding("*", "wallets", Some("user_id=like.x")),
    ];
    for (i, b) in bad.into_iter().enumerate() {
        c.join(&format!("realtime:bad{i}"), vec![b], None).await;
        assert_eq!(c.recv().await.payload["status"], "ok");
        let system = c.recv().await;
        assert_eq!(system.payload["status"], "error");
        assert!(
            system.payload["message"]
                .as_str()
                .unwrap()
                .starts_with("Unable to subscribe")
        );
    }
    server.stop().await;
}

async fn the_slot_exists_while_running_and_is_gone_after_stop(decoder: Decoder) {
    let server = Server::start(config_with(ROOMY, decoder)).await;
    let slot = server.realtime.slot_name().unwrap().to_string();
    let db = db().await;
    assert_eq!(server.realtime.decoder(), decoder);
    assert_eq!(slot_count(&db, &slot, decoder).await, 1);
    server.stop().await;
    assert_eq!(slot_count(&db, &slot, decoder).await, 0);
}

async fn slot_count(db: &tokio_postgres::Client, slot: &str, decoder: Decoder) -> i64 {
    let sql = "select count(*) from pg_replication_slots where slot_name = $1 and plugin = $2";
    db.query_one(sql, &[&slot, &decoder.plugin()])
        .await
        .unwrap()
        .get(0)
}
