//! The realtime client against a minimal Phoenix peer on a real loopback socket: join,
//! subscription notice, a change, token push, heartbeat, server close and reconnect, offline.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::error::ErrorKind;
use crate::phoenix::{Message, ReplyStatus, Vsn, event};

type Peer = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(5);

async fn accept(listener: &TcpListener) -> Peer {
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    tokio_tungstenite::accept_async(stream).await.unwrap()
}

async fn read(peer: &mut Peer, vsn: Vsn) -> Message {
    loop {
        let frame = tokio::time::timeout(WAIT, peer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WsMessage::Text(text) = frame {
            return Message::decode(text.as_str(), vsn).unwrap();
        }
    }
}

async fn send(peer: &mut Peer, message: Message, vsn: Vsn) {
    peer.send(WsMessage::text(message.encode(vsn)))
        .await
        .unwrap();
}

/// Reads the join and accepts it; returns the join message.
async fn accept_join(peer: &mut Peer, vsn: Vsn) -> Message {
    let join = read(peer, vsn).await;
    assert_eq!(join.event, event::JOIN);
    send(
        peer,
        join.reply(ReplyStatus::Ok, json!({"postgres_changes": []})),
        vsn,
    )
    .await;
    join
}

async fn next(client: &mut RealtimeClient) -> RealtimeEvent {
    tokio::time::timeout(WAIT, client.next_event())
        .await
        .unwrap()
        .unwrap()
}

fn options(vsn: Vsn, heartbeat: Duration) -> RealtimeOptions {
    RealtimeOptions {
        vsn,
        heartbeat_interval: heartbeat,
        reconnect: ReconnectPolicy {
            delays: vec![Duration::from_millis(5)],
            full_jitter: false,
        },
        events_capacity: 8,
        ..RealtimeOptions::default()
    }
}

/// A client on a fresh listener. `heartbeat`: short where the test is about heartbeats, long
/// elsewhere so that a slow machine cannot time a socket out mid-test.
async fn start(
    vsn: Vsn,
    heartbeat: Duration,
) -> (TcpListener, RealtimeClient, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let endpoint = Endpoint::new(&base, "anon").unwrap();
    let (online_tx, online_rx) = watch::channel(true);
    let client = RealtimeClient::spawn(
        endpoint,
        options(vsn, heartbeat),
        Subscription::sync_token("u1"),
        "jwt-1",
        online_rx,
        &CancellationToken::new(),
    );
    (listener, client, online_tx)
}

fn expect_disconnect(event: RealtimeEvent) -> ClientError {
    match event {
        RealtimeEvent::Disconnected { error } => error,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[tokio::test]
async fn joins_delivers_changes_pushes_tokens_and_heartbeats() {
    for vsn in [Vsn::V1, Vsn::V2] {
        let (listener, mut client, _online) = start(vsn, Duration::from_millis(500)).await;
        let mut peer = accept(&listener).await;
        let join = accept_join(&mut peer, vsn).await;
        assert_eq!(join.payload["access_token"], "jwt-1");
        assert_eq!(
            join.payload["config"]["postgres_changes"][0]["filter"],
            "user_id=eq.u1"
        );
        assert!(matches!(
            next(&mut client).await,
            RealtimeEvent::Connected { .. }
        ));
        assert!(matches!(
            next(&mut client).await,
            RealtimeEvent::Joined { .. }
        ));

        let topic = join.topic.clone();
        let subscribed = json!({"extension": "postgres_changes", "status": "ok",
                                "message": "Subscribed to PostgreSQL", "channel": "sync:u1"});
        send(
            &mut peer,
            Message::new(&topic, event::SYSTEM, subscribed),
            vsn,
        )
        .await;
        assert_eq!(next(&mut client).await, RealtimeEvent::Subscribed);
        let change = json!({"ids": [1], "data": {"schema": "public", "table": "user_sync_tokens",
            "commit_timestamp": "2026-11-24T21:00:00.500Z", "type": "UPDATE", "columns": [],
            "record": {"user_id": "u1", "sync_token": 2}, "errors": null}});
        send(
            &mut peer,
            Message::new(&topic, event::POSTGRES_CHANGES, change),
            vsn,
        )
        .await;
        match next(&mut client).await {
            RealtimeEvent::Change {
                table,
                commit_ms,
                dropped_before,
                ..
            } => {
                let got = (table.as_str(), commit_ms, dropped_before);
                assert_eq!(got, ("user_sync_tokens", 1_795_554_000_500, 0));
            }
            other => panic!("expected a change, got {other:?}"),
        }

        client.set_access_token("jwt-2");
        let (mut saw_token, mut heartbeats) = (false, 0);
        while !saw_token || heartbeats < 1 {
            let m = read(&mut peer, vsn).await;
            match m.event.as_str() {
                event::ACCESS_TOKEN => {
                    assert_eq!(m.payload["access_token"], "jwt-2");
                    saw_token = true;
                }
                event::HEARTBEAT => {
                    heartbeats += 1;
                    send(&mut peer, m.reply(ReplyStatus::Ok, json!({})), vsn).await;
                }
                other => panic!("unexpected {other}"),
            }
        }
        client.leave().await;
        let leave = read(&mut peer, vsn).await;
        assert_eq!((leave.event.as_str(), leave.topic), (event::LEAVE, topic));
    }
}

#[tokio::test]
async fn reconnects_after_a_close_and_after_an_outage_with_the_latest_token() {
    let vsn = Vsn::V1;
    let (listener, mut client, online) = start(vsn, Duration::from_secs(60)).await;
    let mut peer = accept(&listener).await;
    accept_join(&mut peer, vsn).await;
    next(&mut client).await;
    next(&mut client).await;

    peer.close(None).await.unwrap();
    drop(peer);
    assert_eq!(
        expect_disconnect(next(&mut client).await).kind,
        ErrorKind::WsClosed
    );
    client.set_access_token("jwt-3");
    let mut peer = accept(&listener).await;
    assert_eq!(
        accept_join(&mut peer, vsn).await.payload["access_token"],
        "jwt-3"
    );
    assert!(matches!(
        next(&mut client).await,
        RealtimeEvent::Connected { .. }
    ));
    assert!(matches!(
        next(&mut client).await,
        RealtimeEvent::Joined { .. }
    ));

    online.send(false).unwrap();
    assert_eq!(
        expect_disconnect(next(&mut client).await).kind,
        ErrorKind::Offline
    );
    online.send(true).unwrap();
    let mut peer = accept(&listener).await;
    accept_join(&mut peer, vsn).await;
    assert!(matches!(
        next(&mut client).await,
        RealtimeEvent::Connected { .. }
    ));
}

#[tokio::test]
async fn unanswered_heartbeat_closes_and_refused_join_is_reported() {
    let vsn = Vsn::V2;
    let (listener, mut client, _online) = start(vsn, Duration::from_millis(40)).await;
    let mut peer = accept(&listener).await;
    accept_join(&mut peer, vsn).await;
    next(&mut client).await;
    next(&mut client).await;
    // Never answer heartbeats: the second tick finds the first unanswered.
    assert_eq!(
        expect_disconnect(next(&mut client).await).message,
        "heartbeat timeout"
    );
    let mut peer2 = accept(&listener).await;
    let join = read(&mut peer2, vsn).await;
    let refusal = json!({"reason": "ClientJoinRateLimitReached: Too many joins per second"});
    send(&mut peer2, join.reply(ReplyStatus::Error, refusal), vsn).await;
    assert!(matches!(
        next(&mut client).await,
        RealtimeEvent::Connected { .. }
    ));
    match next(&mut client).await {
        RealtimeEvent::JoinRefused { reason } => {
            assert!(reason.starts_with("ClientJoinRateLimitReached"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        expect_disconnect(next(&mut client).await).kind,
        ErrorKind::RateLimited
    );
    drop(peer);
}

#[tokio::test]
async fn a_refused_upgrade_is_counted_by_its_status_and_a_bad_accept_key_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (listener, mut client, _online) = start(Vsn::V1, Duration::from_secs(30)).await;
    let answers: [&[u8]; 2] = [
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
          sec-websocket-accept: not-the-key\r\n\r\n",
    ];
    for answer in answers {
        let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut request = Vec::new();
        while !request.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            request.push(byte[0]);
        }
        let request = String::from_utf8(request).unwrap();
        assert!(
            request.starts_with("GET /realtime/v1/websocket?apikey=anon&vsn=1.0.0 HTTP/1.1\r\n")
        );
        assert!(request.contains("\r\nUpgrade: websocket\r\n"));
        stream.write_all(answer).await.unwrap();
        let error = expect_disconnect(next(&mut client).await);
        match answer[9] {
            b'4' => assert_eq!(
                (error.kind, error.status),
                (ErrorKind::Unauthorized, Some(403))
            ),
            _ => assert_eq!((error.kind, error.status), (ErrorKind::Connect, None)),
        }
    }
}
