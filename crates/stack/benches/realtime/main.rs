//! Realtime benchmark (prints figures; run with `cargo bench -p syncstorm-stack --bench realtime`).
//!
//! A client process (this binary re-executed) holds `BENCH_SUBSCRIBERS` websockets (default
//! 10,000), each joined to its own user's `user_sync_tokens` row, authorized per user under RLS.
//! Figures: server RSS per idle socket; change → delivery latency p50/p99 at `BENCH_RATE`
//! changes/s (default 100) for `BENCH_SECONDS` (10); delivered messages/s at saturation
//! (`BENCH_BURST` changes, default 20,000, written as fast as four connections can).

mod clients;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::postgres::{Cluster, ClusterOptions};
use syncstorm_stack::realtime::{Realtime, RealtimeConfig};
use syncstorm_stack::schema;

const SECRET: &str = "realtime-bench-secret-0123456789-0123456789";

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("clients") {
        return clients::main();
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists targets; nothing to list.
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(parent());
}

async fn db(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn parent() {
    let subscribers = knob("BENCH_SUBSCRIBERS", 10_000);
    let cluster = Cluster::start(ClusterOptions::default())
        .await
        .expect("PostgreSQL starts");
    let url = cluster.superuser_url();
    schema::apply(&url).await.unwrap();
    let client = db(&url).await;
    // The launcher turns synchronous_commit off for speed; then WAL reaches disk (and logical
    // decoding) only at the WAL writer's next round (200 ms). Supabase commits synchronously.
    let sync_commit = std::env::var("BENCH_SYNCHRONOUS_COMMIT").unwrap_or_else(|_| "on".into());
    let alter = format!("alter system set synchronous_commit = '{sync_commit}'");
    client.batch_execute(&alter).await.unwrap();
    client
        .batch_execute("select pg_reload_conf()")
        .await
        .unwrap();
    println!("realtime bench: synchronous_commit = {sync_commit}");
    let users: Vec<uuid::Uuid> = client
        .query("insert into auth.users (id, email) select gen_random_uuid(), 'b' || g || '@x' from generate_series(1, $1::int) g returning id", &[&(subscribers as i32)])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let users_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        users_file.path(),
        users.iter().map(|u| format!("{u}\n")).collect::<String>(),
    )
    .unwrap();

    let caps = SupabasePlan::preset("unlimited").unwrap().realtime;
    let realtime = Realtime::start(RealtimeConfig::new(&url, SECRET, caps))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = realtime.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let me = std::process::id();
    let rss_before = rss_kib(me);
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_ROLE", "clients")
        .env("BENCH_URL", format!("ws://{addr}"))
        .env("BENCH_SECRET", SECRET)
        .env("BENCH_USERS", users_file.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdin = child.stdin.take().unwrap();
    let ready = tokio::task::block_in_place(|| lines.next().unwrap().unwrap());
    let connect_secs = started.elapsed().as_secs_f64();
    let rss_after = rss_kib(me);
    println!("realtime bench: {ready} ({subscribers} asked) in {connect_secs:.1} s");
    println!(
        "  server RSS {rss_before} KiB → {rss_after} KiB: {:.1} KiB per idle subscribed socket (kernel socket memory not included)",
        (rss_after.saturating_sub(rss_before)) as f64 / subscribers as f64
    );

    let mut report = || {
        writeln!(stdin, "report").unwrap();
        let line = tokio::task::block_in_place(|| lines.next().unwrap().unwrap());
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    report();
    paced_changes(&client, &users).await;
    let paced = settle(
        &mut report,
        knob("BENCH_RATE", 100) * knob("BENCH_SECONDS", 10),
    )
    .await;
    println!(
        "  paced {}/s for {} s: {} delivered, latency commit→client p50 {} ms, p99 {} ms, max {} ms",
        knob("BENCH_RATE", 100),
        knob("BENCH_SECONDS", 10),
        paced["received"],
        paced["p50_ms"],
        paced["p99_ms"],
        paced["max_ms"]
    );
    let burst = knob("BENCH_BURST", 20_000);
    burst_changes(&url, &users, burst).await;
    let sat = settle(&mut report, burst).await;
    let span = (sat["last_micros"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(sat["first_micros"].as_u64().unwrap_or(0))) as f64
        / 1e6;
    println!(
        "  saturation: {} changes → {} delivered over {span:.2} s = {:.0} msgs/s (per-user RLS check each; Supabase publishes ~3-4k/s with RLS), latency p50 {} ms p99 {} ms",
        burst,
        sat["received"],
        sat["received"].as_u64().unwrap_or(0) as f64 / span.max(1e-9),
        sat["p50_ms"],
        sat["p99_ms"]
    );
    println!(
        "{}",
        realtime
            .metrics_text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = child.kill();
    let _ = child.wait();
    realtime.stop().await;
    cluster.stop().await.unwrap();
}

/// Waits until the client process stops receiving (or has `expected`), then reports.
async fn settle(
    report: &mut impl FnMut() -> serde_json::Value,
    expected: u64,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut total = serde_json::json!({"received": 0});
    let mut received = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = report();
        let got = r["received"].as_u64().unwrap_or(0);
        if received > 0 && got == 0 || received >= expected {
            break;
        }
        if total["received"] == 0 || got > 0 {
            let first = if received == 0 {
                r["first_micros"].clone()
            } else {
                total["first_micros"].clone()
            };
            received += got;
            total = r;
            total["first_micros"] = first;
            total["received"] = received.into();
        }
    }
    total
}

async fn paced_changes(client: &tokio_postgres::Client, users: &[uuid::Uuid]) {
    let rate = knob("BENCH_RATE", 100);
    let total = rate * knob("BENCH_SECONDS", 10);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let insert = client
        .prepare(
            "insert into public.wallets (id, user_id, name) values (gen_random_uuid(), $1, 'b')",
        )
        .await
        .unwrap();
    for i in 0..total as usize {
        tick.tick().await;
        client
            .execute(&insert, &[&users[(i * 7919) % users.len()]])
            .await
            .unwrap();
    }
}

async fn burst_changes(url: &str, users: &[uuid::Uuid], burst: u64) {
    let writers = 4;
    let per_writer = burst as usize / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let client = db(url).await;
        let chosen: Vec<uuid::Uuid> = (0..per_writer)
            .map(|i| users[(w * per_writer + i) % users.len()])
            .collect();
        tasks.push(tokio::spawn(async move {
            for chunk in chosen.chunks(50) {
                client
                    .execute("insert into public.wallets (id, user_id, name) select gen_random_uuid(), u, 'b' from unnest($1::uuid[]) u", &[&chunk.to_vec()])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
