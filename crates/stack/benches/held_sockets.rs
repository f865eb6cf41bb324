//! How many idle, joined Realtime websockets a running `syncstorm stack --workers N` holds.
//!
//! Start a stack, then point this at its env lines (it spawns one client process per
//! `HELD_PER_PROCESS` sockets, so the clients stay inside the 20,000-open-files limit too):
//!
//! ```text
//! syncstorm stack --workers 7 --plan unlimited > /tmp/stack.env &
//! set -a; . /tmp/stack.env; set +a
//! HELD_COUNT=100000 HELD_SECONDS=60 cargo bench -p syncstorm-stack --bench held_sockets
//! ```
//!
//! Each socket joins its own channel with a `user_sync_tokens` binding filtered by a fresh
//! user id and heartbeats every 25 s, like an idle device. It prints sockets held per client
//! and in total; measure the stack's RSS (e.g. `ps -o rss`) while it holds.

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// Hard ceiling on sockets per run, whatever the environment says.
const MAX_SOCKETS: u64 = 100_000;
/// How long one client process may spend connecting before it reports.
const CONNECT_BUDGET: Duration = Duration::from_secs(300);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("held_sockets: {name} is not set (source the stack's env lines)");
        std::process::exit(2)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var("HELD_ROLE").as_deref() == Ok("client") {
        return client();
    }
    coordinator();
}

fn coordinator() {
    let urls_line = std::env::var("SUPABASE_URLS").unwrap_or_else(|_| required("SUPABASE_URL"));
    let urls: Vec<&str> = urls_line.split(',').collect();
    let total: u64 = env_or("HELD_COUNT", "10000")
        .parse::<u64>()
        .unwrap_or(10_000);
    let total = total.min(MAX_SOCKETS);
    let per: u64 = env_or("HELD_PER_PROCESS", "15000")
        .parse()
        .unwrap_or(15_000);
    let processes = total.div_ceil(per.max(1));
    let exe = std::env::current_exe().expect("own executable");
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|i| {
            let count = per.min(total - i * per);
            Command::new(&exe)
                .env("HELD_ROLE", "client")
                .env("HELD_URL", urls[i as usize % urls.len()])
                .env("HELD_CLIENT_COUNT", count.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn a client process")
        })
        .collect();
    let mut held = 0;
    let mut outputs = Vec::new();
    for mut child in children {
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        held += line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        print!("client: {line}");
        outputs.push((child, reader));
    }
    println!(
        "all clients connected: {held} of {total} sockets held after {:.1} s; holding",
        started.elapsed().as_secs_f64()
    );
    let mut still = 0;
    for (mut child, mut reader) in outputs {
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        still += line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let _ = child.wait();
    }
    println!("after the hold: {still} sockets still open");
}

fn sign(secret: &str, sub: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"role": "authenticated", "aud": "authenticated", "sub": sub,
        "exp": now + 7200, "iat": now});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[derive(Default)]
struct Tally {
    open: AtomicU64,
    done: AtomicU64,
}

fn client() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    let base = required("HELD_URL").replace("http://", "ws://");
    let anon = required("SUPABASE_ANON_KEY");
    let secret = required("SUPABASE_JWT_SECRET");
    let count: u64 = required("HELD_CLIENT_COUNT").parse().unwrap_or(0);
    let hold = Duration::from_secs(env_or("HELD_SECONDS", "30").parse().unwrap_or(30).min(600));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("{base}/realtime/v1/websocket?apikey={anon}&vsn=1.0.0");
        let tally = Arc::new(Tally::default());
        let gate = Arc::new(Semaphore::new(128));
        let until = Instant::now() + CONNECT_BUDGET + hold;
        for _ in 0..count {
            let (url, secret) = (url.clone(), secret.clone());
            let (tally, gate) = (Arc::clone(&tally), Arc::clone(&gate));
            tokio::spawn(async move {
                let permit = gate.acquire_owned().await.unwrap();
                hold_one(&url, &secret, &tally, permit, until).await;
            });
        }
        let deadline = Instant::now() + CONNECT_BUDGET;
        while tally.done.load(Ordering::Relaxed) < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("held {}", tally.open.load(Ordering::Relaxed));
        tokio::time::sleep(hold).await;
        println!("still {}", tally.open.load(Ordering::Relaxed));
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
}

/// Connects, joins, and heartbeats until `until`; counts itself open while it is.
async fn hold_one(
    url: &str,
    secret: &str,
    tally: &Tally,
    permit: tokio::sync::OwnedSemaphorePermit,
    until: Instant,
) {
    let user = uuid::Uuid::new_v4().to_string();
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    else {
        tally.done.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let join = json!({"topic": format!("realtime:held:{user}"), "event": "phx_join", "ref": "1",
        "join_ref": "1", "payload": {"config": {"postgres_changes": [{"event": "*",
        "schema": "public", "table": "user_sync_tokens", "filter": format!("user_id=eq.{user}")}]},
        "access_token": sign(secret, &user)}});
    if ws.send(Message::text(join.to_string())).await.is_err() {
        tally.done.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let joined = matches!(
        tokio::time::timeout(Duration::from_secs(30), ws.next()).await,
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"ok\"")
    );
    tally.done.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    if !joined {
        return;
    }
    tally.open.fetch_add(1, Ordering::Relaxed);
    let mut beat = tokio::time::interval(Duration::from_secs(25));
    let mut n = 2u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => break,
            _ = beat.tick() => {
                let hb = json!({"topic": "phoenix", "event": "heartbeat", "payload": {},
                    "ref": n.to_string()});
                n += 1;
                if ws.send(Message::text(hb.to_string())).await.is_err() { break; }
            }
            msg = ws.next() => if !matches!(msg, Some(Ok(_))) { break },
        }
    }
    tally.open.fetch_sub(1, Ordering::Relaxed);
}
