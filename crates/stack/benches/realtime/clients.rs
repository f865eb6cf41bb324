//! The bench's client process: holds N websockets, each joined to its own user's token row,
//! and reports delivery latency (receive time − commit_timestamp) and counts on request.

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use syncstorm_wire::phoenix::{Message, Vsn};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Default)]
struct Tally {
    ready: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
    first_micros: AtomicU64,
    last_micros: AtomicU64,
    latency: Mutex<Option<Histogram<u64>>>,
}

fn now_micros() -> u64 {
    chrono::Utc::now().timestamp_micros() as u64
}

fn sign(secret: &str, role: &str, sub: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"role": role, "exp": now + 7200, "iat": now});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

pub fn main() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let (url, secret) = (env("BENCH_URL"), env("BENCH_SECRET"));
    let users: Vec<String> = std::fs::read_to_string(env("BENCH_USERS"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    *tally.latency.lock().unwrap() = Some(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap());
    runtime.block_on(async {
        let anon = sign(&secret, "anon", None);
        let gate = Arc::new(Semaphore::new(256));
        for (i, user) in users.iter().enumerate() {
            let url = format!("{url}/realtime/v1/websocket?apikey={anon}&vsn=1.0.0");
            let token = sign(&secret, "authenticated", Some(user));
            let (tally, gate, user) = (Arc::clone(&tally), Arc::clone(&gate), user.clone());
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                socket(i, url, user, token, tally, permit).await
            });
        }
        let total = users.len() as u64;
        while tally.ready.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed) < total {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "ready {} failed {}",
            tally.ready.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed)
        );
        let tally = Arc::clone(&tally);
        tokio::task::spawn_blocking(move || commands(&tally))
            .await
            .unwrap();
    });
}

fn commands(tally: &Tally) {
    for line in std::io::stdin().lock().lines() {
        match line.unwrap().as_str() {
            "report" => {
                let mut guard = tally.latency.lock().unwrap();
                let h = guard.as_mut().unwrap();
                let report = json!({
                    "received": tally.received.swap(0, Ordering::Relaxed),
                    "first_micros": tally.first_micros.swap(0, Ordering::Relaxed),
                    "last_micros": tally.last_micros.swap(0, Ordering::Relaxed),
                    "p50_ms": h.value_at_quantile(0.5) as f64 / 1000.0,
                    "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
                    "max_ms": h.max() as f64 / 1000.0,
                });
                h.reset();
                println!("{report}");
            }
            _ => return,
        }
    }
}

async fn socket(
    i: usize,
    url: String,
    user: String,
    token: String,
    tally: Arc<Tally>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut permit = Some(permit);
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let join = Message::new(
        format!("realtime:u{i}"),
        "phx_join",
        json!({"config": {"postgres_changes": [{"event": "*", "schema": "public", "table": "user_sync_tokens", "filter": format!("user_id=eq.{user}")}]}, "access_token": token}),
    )
    .with_refs(Some("1".into()), Some("1".into()));
    if ws
        .send(WsMessage::Text(join.encode(Vsn::V1).into()))
        .await
        .is_err()
    {
        tally.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut subscribed = false;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(25));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(Ok(WsMessage::Text(text))) = frame else { break };
                let Ok(msg) = Message::decode(text.as_str(), Vsn::V1) else { continue };
                if msg.event == "system" && !subscribed {
                    subscribed = true;
                    permit = None;
                    tally.ready.fetch_add(1, Ordering::Relaxed);
                } else if msg.event == "postgres_changes" {
                    record(&tally, &msg);
                }
            }
            _ = heartbeat.tick() => {
                let hb = Message::new("phoenix", "heartbeat", json!({})).with_refs(None, Some("h".into()));
                if ws.send(WsMessage::Text(hb.encode(Vsn::V1).into())).await.is_err() { break; }
            }
        }
    }
    drop(permit);
    if !subscribed {
        tally.failed.fetch_add(1, Ordering::Relaxed);
    }
}

fn record(tally: &Tally, msg: &Message) {
    let now = now_micros();
    let committed = msg.payload["data"]["commit_timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_micros() as u64);
    if let Some(at) = committed
        && let Some(h) = tally.latency.lock().unwrap().as_mut()
    {
        let _ = h.record(now.saturating_sub(at).max(1));
    }
    tally.received.fetch_add(1, Ordering::Relaxed);
    let _ = tally
        .first_micros
        .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    tally.last_micros.store(now, Ordering::Relaxed);
}
