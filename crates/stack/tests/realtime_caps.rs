//! Each plan cap trips at its configured value with Supabase's error, and freed places are
//! reusable. Per-second caps count in wall-clock seconds, so a burst that straddles a second
//! boundary is retried rather than misread.

#[macro_use]
mod realtime_support;

use realtime_support::*;
use std::time::Duration;
use syncstorm_plans::RealtimeCaps;
use syncstorm_stack::realtime::Decoder;
use syncstorm_stack::realtime::caps::now_secs;
use syncstorm_wire::phoenix::Vsn;

fn caps(connections: u32, joins: u32, events: u32, channels: u32) -> RealtimeCaps {
    RealtimeCaps {
        max_connections: connections,
        joins_per_second: joins,
        events_per_second: events,
        channels_per_client: channels,
    }
}

for_each_decoder!(changes_beyond_the_events_budget_are_dropped_and_counted);

/// Runs `burst` from the start of a second until it fits inside that second (at most 5 tries).
async fn within_one_second<F, Fut, T>(mut burst: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..5 {
        // Start on a fresh second, so an earlier try's events are not in this one's window.
        let this_second = now_secs();
        while now_secs() == this_second {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = now_secs();
        let out = burst().await;
        if now_secs() == before {
            return out;
        }
    }
    panic!("could not fit the burst inside one second in five tries");
}

#[tokio::test]
async fn connections_beyond_the_cap_get_403_and_a_dropped_socket_frees_its_place() {
    let server = Server::start(config(caps(2, 100, 100, 100))).await;
    let url = server.url(&anon_key(), Vsn::V1);
    let first = connect(&url, Vsn::V1).await.unwrap();
    let _second = connect(&url, Vsn::V1).await.unwrap();
    assert_eq!(connect(&url, Vsn::V1).await.err(), Some(403));
    first.close().await;
    let mut reconnected = None;
    for _ in 0..200 {
        match connect(&url, Vsn::V1).await {
            Ok(c) => {
                reconnected = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(
        reconnected.is_some(),
        "the closed socket's place was never freed"
    );
    assert_eq!(server.metric("connections").await, 2);
    assert!(server.metric("connections_refused_cap_total").await >= 1);
    server.stop().await;
}

#[tokio::test]
async fn joins_beyond_the_rate_are_refused_and_the_socket_dropped() {
    let server = Server::start(config(caps(100, 3, 100, 100))).await;
    let url = server.url(&anon_key(), Vsn::V2);
    // Seven joins overflow a limit of three even across a second boundary; inside one second
    // exactly three are accepted.
    let (accepted, reason, closed) = within_one_second(|| async {
        let mut c = connect(&url, Vsn::V2).await.unwrap();
        for (accepted, i) in (0..7).enumerate() {
            c.join(&format!("realtime:j{i}"), vec![], None).await;
            let reply = c.recv().await;
            if let Some(reason) = reply.payload["response"]["reason"].as_str() {
                let closed = c.recv_within(Duration::from_secs(5)).await.is_none();
                return (accepted, reason.to_string(), closed);
            }
        }
        panic!("seven joins were all accepted under a limit of three per second");
    })
    .await;
    assert_eq!(accepted, 3);
    assert_eq!(
        reason,
        "ClientJoinRateLimitReached: Too many joins per second"
    );
    assert!(
        closed,
        "the socket is dropped after ClientJoinRateLimitReached"
    );
    server.stop().await;
}

#[tokio::test]
async fn channels_beyond_the_cap_are_refused_and_the_socket_stays() {
    let server = Server::start(config(caps(100, 100, 100, 2))).await;
    let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
        .await
        .unwrap();
    c.subscribe("realtime:c1", vec![], None).await;
    c.subscribe("realtime:c2", vec![], None).await;
    c.join("realtime:c3", vec![], None).await;
    let reply = c.recv().await;
    assert_eq!(
        reply.payload["response"]["reason"],
        "ChannelRateLimitReached: Too many channels"
    );
    c.push("phoenix", "heartbeat", serde_json::json!({})).await;
    assert_eq!(c.recv().await.payload["status"], "ok");
    server.stop().await;
}

#[tokio::test]
async fn channel_messages_beyond_the_rate_close_the_channel_with_a_system_error() {
    let server = Server::start(config(caps(100, 100, 2, 100))).await;
    let url = server.url(&anon_key(), Vsn::V1);
    let frames = {
        let mut c = connect(&url, Vsn::V1).await.unwrap();
        c.subscribe("realtime:e", vec![], None).await;
        // Five messages overflow a limit of two even across a second boundary.
        for _ in 0..5 {
            c.push(
                "realtime:e",
                "access_token",
                serde_json::json!({"access_token": null}),
            )
            .await;
        }
        (c.recv().await, c.recv().await)
    };
    let (system, close) = frames;
    assert_eq!(system.event, "system");
    assert_eq!(system.payload["message"], "Too many messages per second");
    assert_eq!(system.payload["status"], "error");
    assert_eq!(close.event, "phx_close");
    server.stop().await;
}

async fn changes_beyond_the_events_budget_are_dropped_and_counted(decoder: Decoder) {
    let server = Server::start(config_with(caps(100, 100, 1, 100), decoder)).await;
    let (a, a_token) = user(&server.db).await;
    let filter = format!("user_id=eq.{a}");
    let mut sockets = Vec::new();
    for _ in 0..5 {
        let mut c = connect(&server.url(&anon_key(), Vsn::V1), Vsn::V1)
            .await
            .unwrap();
        c.subscribe(
            "realtime:d",
            vec![binding("*", "user_sync_tokens", Some(&filter))],
            Some(&a_token),
        )
        .await;
        sockets.push(c);
    }
    // Nothing has been counted yet, so the first change passes although it costs 5 events
    // against a budget of 1 a second: Supabase compares the average of completed seconds.
    wallet(&server.db, a).await;
    until_metric(&server, "events_delivered_total", 5).await;
    // Once that second has completed its 5 events dominate the average (5/1 … 5/4 > 1), so
    // the next change is dropped whole, and counted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(server.metric_f64("events_budget_average").await > 1.0);
    wallet(&server.db, a).await;
    until_metric(&server, "events_dropped_budget_total", 5).await;
    assert_eq!(server.metric("events_delivered_total").await, 5);
    server.stop().await;
}

async fn until_metric(server: &Server, name: &str, value: u64) {
    for _ in 0..300 {
        if server.metric(name).await >= value {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.metric(name).await, value, "{name}");
}
