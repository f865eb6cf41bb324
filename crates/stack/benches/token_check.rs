//! Token-check benchmark: `GET /rest/v1/user_sync_tokens?select=sync_token&user_id=eq.<uid>`
//! as signed-in users at a fixed concurrency through the embedded stack (driven by `wrk`), then
//! `pgbench` running the same SQL the same way (as `authenticator`: one transaction, role and
//! claims set, the REST layer's own statement) with the same concurrency on the same cluster.
//! Prints both rates, both p99s and the ratio (goal: REST ≥ 0.7 × pgbench). Not a test.
//!
//! With `--workers 2` (the default) the stack runs as two processes and the REST side is
//! measured twice: straight at worker 1 (the parent, which owns the pool) and at worker 2,
//! which forwards every request to the parent over loopback — the forwarding cost.
//!
//! The stack's CPU per request (this process, which is worker 1, plus worker 2) is printed
//! beside each REST rate: on a shared machine it is steadier than the rate. Worker 2 forwards
//! over HTTP/1.1 while it has connections to spare; `--http1-connections 0` forces HTTP/2.
//!
//! `cargo bench -p syncstorm-stack --bench token_check [-- --concurrency 8 --seconds 10 --users 16 --rounds 3 --workers 2 --http1-connections 128]`
//! Needs `wrk` and `pgbench` on PATH.

use std::path::Path;
use std::process::Command;
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use syncstorm_wire::gotrue::TokenResponse;
use tokio_util::sync::CancellationToken;

struct Options {
    concurrency: u32,
    seconds: u32,
    users: usize,
    /// Rounds of (REST, pgbench), the order alternating, so drift in a shared machine's load
    /// hits both sides alike; the medians are reported.
    rounds: usize,
    /// Stack processes; with 2 or more, REST is also measured through worker 2.
    workers: usize,
    /// HTTP/1.1 connections worker 2 may forward on (0: every request over HTTP/2).
    http1_connections: usize,
}

struct Figures {
    rate: f64,
    p99_ms: f64,
    errors: u64,
    /// CPU (user + system) the stack's processes spent per request, microseconds: robust to
    /// a shared machine's load, unlike the rate. NaN for pgbench.
    cpu_us: f64,
}

#[tokio::main]
async fn main() {
    let opts = parse_options();
    for tool in ["wrk", "pgbench"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!(
                "token_check: `{tool}` is not on PATH; install it (apt-get install {tool}) to run this benchmark"
            );
            std::process::exit(2);
        }
    }
    let mut config = StackConfig::new(SupabasePlan::preset("unlimited").unwrap());
    config.plan.rest_pool_size = opts.concurrency;
    config.workers = opts.workers;
    config.forward_http1_connections = opts.http1_connections;
    config.worker_program = Some(env!("CARGO_BIN_EXE_stack-worker").into());
    let stack = Stack::start(config, CancellationToken::new())
        .await
        .expect("stack starts");
    let users = sign_up_users(&stack, opts.users).await;
    let work = tempfile::tempdir().expect("temp dir");
    let (mut rest, mut sql, mut forwarded) = (Vec::new(), Vec::new(), Vec::new());
    let via_worker_two = stack.worker_urls.get(1);
    for round in 0..opts.rounds {
        let dir = work.path().join(format!("round{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        let rest_side = |rest: &mut Vec<Figures>, forwarded: &mut Vec<Figures>| {
            rest.push(run_wrk(&stack, &stack.url, &users, &opts, &dir));
            if let Some(url) = via_worker_two {
                forwarded.push(run_wrk(&stack, url, &users, &opts, &dir));
            }
        };
        if round % 2 == 0 {
            rest_side(&mut rest, &mut forwarded);
            sql.push(run_pgbench(&stack, &users, &opts, &dir));
        } else {
            sql.push(run_pgbench(&stack, &users, &opts, &dir));
            rest_side(&mut rest, &mut forwarded);
        }
        let through_two = forwarded
            .get(round)
            .map(|f| format!(", through worker 2 {:.0} req/s", f.rate))
            .unwrap_or_default();
        println!(
            "round {}: REST {:.0} req/s{through_two}, pgbench {:.0} tps",
            round + 1,
            rest[round].rate,
            sql[round].rate
        );
    }
    let forwarded = (!forwarded.is_empty()).then(|| median(forwarded));
    report(&opts, &median(rest), &median(sql), forwarded.as_ref());
    stack.stop().await.expect("stack stops");
}

fn parse_options() -> Options {
    let mut opts = Options {
        concurrency: 8,
        seconds: 10,
        users: 16,
        rounds: 3,
        workers: 2,
        http1_connections: syncstorm_stack::forward::HTTP1_CONNECTIONS,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.windows(2) {
        let value = pair[1].parse().ok();
        match (pair[0].as_str(), value) {
            ("--concurrency", Some(v)) => opts.concurrency = v,
            ("--seconds", Some(v)) => opts.seconds = v,
            ("--users", Some(v)) => opts.users = v as usize,
            ("--rounds", Some(v)) => opts.rounds = (v as usize).max(1),
            ("--workers", Some(v)) => opts.workers = (v as usize).max(1),
            ("--http1-connections", Some(v)) => opts.http1_connections = v as usize,
            _ => {}
        }
    }
    opts
}

/// Signs up `n` users; each writes one wallet so its token row exists.
async fn sign_up_users(stack: &RunningStack, n: usize) -> Vec<TokenResponse> {
    let http = reqwest::Client::new();
    let mut sessions = Vec::new();
    for _ in 0..n {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let session: TokenResponse = http
            .post(format!("{}/auth/v1/signup", stack.url))
            .header("apikey", &stack.anon_key)
            .json(&serde_json::json!({"email": email, "password": "bench-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let wallet = serde_json::json!({"id": uuid::Uuid::new_v4(), "user_id": session.user.id, "name": "w"});
        let status = http
            .post(format!("{}/rest/v1/wallets", stack.url))
            .header("apikey", &stack.anon_key)
            .bearer_auth(&session.access_token)
            .json(&wallet)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 201);
        sessions.push(session);
    }
    sessions
}

/// wrk against `url`, cycling through the users' requests (each with its own token), latency
/// distribution on.
fn run_wrk(
    stack: &RunningStack,
    url: &str,
    users: &[TokenResponse],
    opts: &Options,
    dir: &Path,
) -> Figures {
    let mut lua = String::from("local reqs = {}\nlocal i = 0\ninit = function(args)\n");
    for user in users {
        lua.push_str(&format!(
            "  table.insert(reqs, wrk.format('GET', '/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.{}', {{ apikey = '{}', Authorization = 'Bearer {}' }}))\n",
            user.user.id, stack.anon_key, user.access_token
        ));
    }
    lua.push_str("end\nrequest = function()\n  i = i % #reqs + 1\n  return reqs[i]\nend\n");
    let script = dir.join("token_check.lua");
    std::fs::write(&script, lua).unwrap();
    let cpu_before = stack_cpu_micros();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{}", opts.concurrency),
            &format!("-d{}s", opts.seconds),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .expect("wrk runs");
    let cpu = stack_cpu_micros() - cpu_before;
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    Figures {
        cpu_us: cpu as f64 / requests,
        rate: field(&text, "Requests/sec:").unwrap_or(0.0),
        p99_ms: text
            .lines()
            .find(|l| l.trim_start().starts_with("99%"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map_or(f64::NAN, wrk_ms),
        errors: field(&text, "Non-2xx or 3xx responses:").unwrap_or(0.0) as u64,
    }
}

/// pgbench, one script per user with the REST layer's own statements, per-transaction log on.
fn run_pgbench(
    stack: &RunningStack,
    users: &[TokenResponse],
    opts: &Options,
    dir: &Path,
) -> Figures {
    let mut args: Vec<String> = vec!["-n".into(), "-M".into(), "prepared".into(), "-j1".into()];
    for (n, user) in users.iter().enumerate() {
        let claims = serde_json::to_string(
            &syncstorm_wire::jwt::decode(&stack.jwt_secret, &user.access_token).unwrap(),
        )
        .unwrap();
        let script = dir.join(format!("user{n}.sql"));
        std::fs::write(&script, format!(
            "begin;\nselect set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{claims}', true), set_config('statement_timeout', '8s', true);\n\
             select null::bigint, count(*), coalesce(json_agg(pgrst_r), '[]')::text from (select \"sync_token\" from public.\"user_sync_tokens\" where \"user_sync_tokens\".\"user_id\" = '{}'::text::uuid limit 1000::bigint offset 0::bigint) pgrst_r;\ncommit;\n",
            user.user.id
        )).unwrap();
        args.push("-f".into());
        args.push(format!("{}@1", script.display()));
    }
    let port = stack
        .database_url
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap()
        .to_string();
    let prefix = dir.join("pgbench_log");
    let out = Command::new("pgbench")
        .args(&args)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "authenticator",
            &format!("-c{}", opts.concurrency),
            &format!("-T{}", opts.seconds),
            "-l",
        ])
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg("postgres")
        .output()
        .expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!(
            "pgbench failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (p99_ms, errors) = pgbench_p99(dir);
    Figures {
        cpu_us: f64::NAN,
        rate: text
            .lines()
            .find(|l| l.starts_with("tps ="))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0),
        p99_ms,
        errors,
    }
}

/// p99 of the per-transaction latencies pgbench logged (third field, µs), and failed ones.
fn pgbench_p99(dir: &Path) -> (f64, u64) {
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut failed = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("pgbench_log")
        {
            continue;
        }
        for line in std::fs::read_to_string(entry.path())
            .unwrap_or_default()
            .lines()
        {
            match line.split_whitespace().nth(2).map(str::parse::<u64>) {
                Some(Ok(us)) => hist.saturating_record(us.max(1)),
                _ => failed += 1,
            }
        }
    }
    (hist.value_at_quantile(0.99) as f64 / 1000.0, failed)
}

/// CPU time (user + system) of this process, which serves as worker 1, and its
/// `stack-worker` children, microseconds.
fn stack_cpu_micros() -> u64 {
    let me = std::process::id().to_string();
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid … utime stime …`: fields after `) ` start at `state`.
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let pid = head.split_whitespace().next().unwrap_or("");
        let ours =
            pid == me || (head.ends_with("(stack-worker") && fields.get(1) == Some(&me.as_str()));
        if ours {
            let field = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            ticks += field(11) + field(12);
        }
    }
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1_000_000 / per_second
}

/// The round with the median rate, carrying the median CPU per request over all rounds.
fn median(mut rounds: Vec<Figures>) -> Figures {
    let mut cpu: Vec<f64> = rounds.iter().map(|f| f.cpu_us).collect();
    cpu.sort_by(f64::total_cmp);
    let cpu_us = cpu[cpu.len() / 2];
    rounds.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mut middle = rounds.swap_remove(rounds.len() / 2);
    middle.cpu_us = cpu_us;
    middle
}

fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
}

/// wrk prints latencies like `812.00us`, `2.34ms`, `1.02s`.
fn wrk_ms(v: &str) -> f64 {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, f64::NAN)
    };
    number.parse::<f64>().map_or(f64::NAN, |n| n * factor)
}

fn report(opts: &Options, rest: &Figures, sql: &Figures, forwarded: Option<&Figures>) {
    let ratio = rest.rate / sql.rate;
    println!(
        "token check, {} users, concurrency {}, {} rounds of {} s (REST pool = {} connections); median rounds (CPU: median over rounds):",
        opts.users, opts.concurrency, opts.rounds, opts.seconds, opts.concurrency
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{name:<34} {:>10.0} {:>10.2} {:>8} {:>16.0}",
            f.rate, f.p99_ms, f.errors, f.cpu_us
        )
    };
    println!(
        "{:<34} {:>10} {:>10} {:>8} {:>16}",
        "", "req/s", "p99 ms", "errors", "stack CPU us/req"
    );
    row("REST /rest/v1/user_sync_tokens", rest);
    if let Some(f) = forwarded {
        row("REST through worker 2 (forwarded)", f);
    }
    row("pgbench, same SQL as authenticator", sql);
    if let Some(f) = forwarded {
        let transport = match opts.http1_connections {
            0 => "HTTP/2",
            _ => "HTTP/1.1",
        };
        println!(
            "forwarding through worker 2 over {transport}: {:+.0} us of stack CPU per request ({:.2} x), {:.2} x worker 1's rate, p99 {:+.2} ms",
            f.cpu_us - rest.cpu_us,
            f.cpu_us / rest.cpu_us,
            f.rate / rest.rate,
            f.p99_ms - rest.p99_ms,
        );
    }
    println!(
        "ratio REST / pgbench: {ratio:.2} (goal >= 0.70: {})",
        if ratio >= 0.7 { "met" } else { "NOT met" }
    );
}
