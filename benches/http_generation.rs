//! HTTP generation: the harness's maximum token-check rate against a trivial endpoint, next to
//! `wrk` against the same endpoint in the same run, and the harness's CPU per 1,000 requests.
//! Prints figures; asserts nothing.
//!
//! `cargo bench --bench http_generation`. Knobs (environment): `SYNCSTORM_BENCH_SECONDS` per
//! phase (10), `SYNCSTORM_BENCH_CONNECTIONS` (64), `SYNCSTORM_BENCH_THREADS` generator threads
//! for wrk and the harness alike (1), `SYNCSTORM_BENCH_SERVER_THREADS` (1),
//! `SYNCSTORM_BENCH_ROUNDS` (1), `SYNCSTORM_BENCH_MODELS` (`per_device,shared`).
//!
//! The endpoint is an in-process axum server on 127.0.0.1:0 on its own runtime thread(s): it
//! answers `GET /rest/v1/user_sync_tokens` with `[{"sync_token":42}]` after comparing the
//! `apikey` header. Each round runs wrk for N seconds with C connections, then the harness's
//! real token check (`RestClient::sync_token`, what devices call) from C closed loops, each
//! with its own `Recorder`, merged once at the end. CPU: thread CPU from
//! `/proc/self/task/<tid>/schedstat` for the generator's and the server's threads, wrk's from
//! `RUSAGE_CHILDREN`; the process's `RUSAGE_SELF` minus the server's threads is a cross-check.
//!
//! Two more arms do the same token check with the well-kept clients instead of our own
//! HTTP/1.1 client (`crates/wire/src/client/http1.rs`), each loop owning its connection as a
//! device does: `reqwest` (a `reqwest::Client` per loop, one idle connection) and
//! `hyper_http1` (hyper's `client::conn::http1` handshake per loop, its `SendRequest` reused),
//! both parsing the same JSON answer. Our client stays while it costs less CPU per request
//! than both; the figures of the last published run are in `crates/wire/src/client/http1.rs`.

#[path = "http_generation/cpu.rs"]
mod cpu;
#[path = "http_generation/wrk.rs"]
mod wrk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use nix::sys::resource::UsageWho;
use syncstorm_metrics::{Recorder, Snapshot, op};
use syncstorm_wire::client::{ConnectionModel, Endpoint, HttpClients, HttpOptions, RestClient};
use tokio::sync::oneshot;

use cpu::{ThreadSet, rusage_cpu};

const API_KEY: &str = "bench-anon-key";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl";
const USER_ID: &str = "00000000-0000-4000-8000-000000000042";
const BODY: &str = r#"[{"sync_token":42}]"#;
const TOKEN: i64 = 42;

struct Config {
    seconds: u64,
    connections: usize,
    threads: usize,
    server_threads: usize,
    rounds: usize,
    models: Vec<Arm>,
}

/// Who generates the harness's token checks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arm {
    /// Our client, in one of its connection models (what devices run).
    Ours(ConnectionModel),
    Reqwest,
    HyperHttp1,
}

/// One phase's figures, whoever generated the load.
struct Phase {
    name: String,
    requests: u64,
    errors: u64,
    wall: Duration,
    p50_ms: f64,
    p99_ms: f64,
    generator_cpu: Duration,
    server_cpu: Duration,
    /// Harness only: the process's CPU minus the server threads' (cross-check).
    process_minus_server: Option<Duration>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn cpu_ms_per_1k(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1_000.0 / (self.requests.max(1) as f64 / 1_000.0)
    }
}

fn main() {
    let config = match read_config() {
        Ok(c) => c,
        Err(sentence) => {
            eprintln!("{sentence}");
            std::process::exit(2);
        }
    };
    if let Err(sentence) = run(&config) {
        eprintln!("{sentence}");
        std::process::exit(1);
    }
}

fn run(config: &Config) -> Result<(), String> {
    raise_open_files_limit();
    let server = Server::start(config.server_threads)?;
    let url = format!(
        "http://{}/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.{USER_ID}",
        server.addr
    );
    let endpoint = Endpoint::new(&format!("http://{}", server.addr), API_KEY)
        .map_err(|e| format!("bad endpoint: {e}"))?;
    print_header(config, &server);
    let mut wrk_command = None;
    for round in 1..=config.rounds {
        let mut phases = Vec::new();
        match run_wrk(config, &url, &server) {
            Ok((phase, command)) => {
                phases.push(phase);
                wrk_command = Some(command);
            }
            Err(sentence) => println!("wrk skipped: {sentence}"),
        }
        for arm in &config.models {
            phases.push(run_harness(config, &endpoint, *arm, &server)?);
        }
        print_round(round, &phases);
    }
    print_footer(config, wrk_command.as_deref());
    server.stop();
    Ok(())
}

fn read_config() -> Result<Config, String> {
    let models = match std::env::var("SYNCSTORM_BENCH_MODELS") {
        Err(_) => vec![
            Arm::Ours(ConnectionModel::PerDevice),
            Arm::Ours(ConnectionModel::Shared),
            Arm::Reqwest,
            Arm::HyperHttp1,
        ],
        Ok(text) => text
            .split(',')
            .map(|m| match m.trim() {
                "per_device" => Ok(Arm::Ours(ConnectionModel::PerDevice)),
                "shared" => Ok(Arm::Ours(ConnectionModel::Shared)),
                "reqwest" => Ok(Arm::Reqwest),
                "hyper_http1" => Ok(Arm::HyperHttp1),
                other => Err(format!(
                    "SYNCSTORM_BENCH_MODELS has {other:?}; allowed: per_device, shared, reqwest, hyper_http1 (comma-separated)"
                )),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Config {
        seconds: env_number("SYNCSTORM_BENCH_SECONDS", 10, 1, 300)? as u64,
        connections: env_number("SYNCSTORM_BENCH_CONNECTIONS", 64, 1, 4_000)?,
        threads: env_number("SYNCSTORM_BENCH_THREADS", 1, 1, 64)?,
        server_threads: env_number("SYNCSTORM_BENCH_SERVER_THREADS", 1, 1, 64)?,
        rounds: env_number("SYNCSTORM_BENCH_ROUNDS", 1, 1, 20)?,
        models,
    })
}

fn env_number(name: &str, default: usize, min: usize, max: usize) -> Result<usize, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{name} is {text:?}; allowed: a whole number from {min} to {max}"
        )),
    }
}

/// The in-process trivial endpoint on its own runtime thread(s).
struct Server {
    addr: SocketAddr,
    threads: ThreadSet,
    stop: oneshot::Sender<()>,
    join: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(worker_threads: usize) -> Result<Server, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let threads = ThreadSet::default();
        let runtime = runtime(worker_threads, "bench-server", &threads)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let driver_threads = threads.clone();
        let join = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                driver_threads.register_current();
                runtime.block_on(serve(listener, stopped));
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        Ok(Server {
            addr,
            threads,
            stop,
            join,
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.join.join();
    }
}

async fn serve(listener: std::net::TcpListener, stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        Err(e) => {
            eprintln!("the bench server cannot use its socket: {e}");
            return;
        }
    };
    let app = Router::new().route("/rest/v1/user_sync_tokens", get(sync_tokens));
    let shutdown = async {
        let _ = stopped.await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("the bench server stopped: {e}");
    }
}

/// Kong's gate in one comparison, then PostgREST's answer for a user with token 42.
async fn sync_tokens(headers: HeaderMap) -> Response {
    if headers.get("apikey").map(|v| v.as_bytes()) != Some(API_KEY.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, "no apikey").into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], BODY).into_response()
}

/// A runtime with `threads` workers (current-thread when 1, driven by the caller's thread);
/// every thread it starts registers in `set`.
fn runtime(threads: usize, name: &str, set: &ThreadSet) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let on_start = set.clone();
    builder
        .enable_all()
        .thread_name(name)
        .on_thread_start(move || on_start.register_current())
        .build()
        .map_err(|e| format!("cannot build the {name} runtime: {e}"))
}

fn run_wrk(config: &Config, url: &str, server: &Server) -> Result<(Phase, String), String> {
    let headers = [
        format!("apikey: {API_KEY}"),
        format!("Authorization: Bearer {JWT}"),
    ];
    let server_before = server.threads.cpu();
    let started = Instant::now();
    let figures = wrk::run(&wrk::WrkRun {
        url,
        threads: config.threads,
        connections: config.connections,
        seconds: config.seconds,
        headers: &headers,
    })?;
    let phase = Phase {
        name: "wrk".into(),
        requests: figures.requests,
        errors: figures.errors,
        // wrk's own rate divides by its measured run time, not by process start-up.
        wall: Duration::from_secs_f64(figures.requests as f64 / figures.requests_per_sec.max(1e-9))
            .min(started.elapsed()),
        p50_ms: figures.p50_ms,
        p99_ms: figures.p99_ms,
        generator_cpu: figures.cpu,
        server_cpu: server.threads.cpu().saturating_sub(server_before),
        process_minus_server: None,
    };
    Ok((phase, figures.command_line))
}

fn run_harness(
    config: &Config,
    endpoint: &Endpoint,
    arm: Arm,
    server: &Server,
) -> Result<Phase, String> {
    let threads = ThreadSet::default();
    threads.register_current();
    let runtime = runtime(config.threads, "bench-harness", &threads)?;
    let loops = runtime.block_on(load_loops(arm, config.connections, endpoint, server.addr))?;
    let (gen_before, server_before) = (threads.cpu(), server.threads.cpu());
    let self_before = rusage_cpu(UsageWho::RUSAGE_SELF);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(config.seconds);
    let merged = runtime.block_on(async move {
        let loops: Vec<_> = loops
            .into_iter()
            .map(|client| tokio::spawn(client.token_check_loop(deadline)))
            .collect();
        let mut merged = Snapshot::default();
        for handle in loops {
            let snapshot = handle
                .await
                .map_err(|e| format!("a load loop failed: {e}"))?;
            merged.merge(&snapshot).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(merged)
    })?;
    let wall = started.elapsed();
    let generator_cpu = threads.cpu().saturating_sub(gen_before);
    let server_cpu = server.threads.cpu().saturating_sub(server_before);
    let process = rusage_cpu(UsageWho::RUSAGE_SELF).saturating_sub(self_before);
    drop(runtime);
    let token_check = merged.ops.get(op::TOKEN_CHECK).cloned().unwrap_or_default();
    let summary = token_check.summary();
    Ok(Phase {
        name: arm_name(arm).to_string(),
        requests: token_check.count(),
        errors: token_check.error_count(),
        wall,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        generator_cpu,
        server_cpu,
        process_minus_server: Some(process.saturating_sub(server_cpu)),
    })
}

/// One REST client per load loop: each with its own pool (per-device, one connection each,
/// as the devices run) or handles on one shared pool sized to keep every connection.
fn rest_clients(
    model: ConnectionModel,
    connections: usize,
    endpoint: &Endpoint,
) -> Result<Vec<RestClient>, String> {
    let options = HttpOptions {
        max_idle_per_host: match model {
            ConnectionModel::PerDevice => 1,
            ConnectionModel::Shared => connections,
        },
        ..HttpOptions::default()
    };
    let clients = HttpClients::new(model, options).map_err(|e| e.to_string())?;
    (0..connections)
        .map(|_| {
            let http = clients.for_device().map_err(|e| e.to_string())?;
            Ok(RestClient::new(http, endpoint.clone()))
        })
        .collect()
}

/// One closed load loop's client: ours, or a well-kept one for comparison.
enum LoopClient {
    Ours(RestClient),
    Reqwest(reqwest::Client, String),
    Hyper(
        hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
        hyper::Uri,
    ),
}

async fn load_loops(
    arm: Arm,
    connections: usize,
    endpoint: &Endpoint,
    addr: SocketAddr,
) -> Result<Vec<LoopClient>, String> {
    let path = format!("/rest/v1/user_sync_tokens?select=sync_token&user_id=eq.{USER_ID}");
    match arm {
        Arm::Ours(model) => Ok(rest_clients(model, connections, endpoint)?
            .into_iter()
            .map(LoopClient::Ours)
            .collect()),
        Arm::Reqwest => (0..connections)
            .map(|_| {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(1)
                    .http1_only()
                    .build()
                    .map_err(|e| format!("cannot build a reqwest client: {e}"))?;
                Ok(LoopClient::Reqwest(client, format!("http://{addr}{path}")))
            })
            .collect(),
        Arm::HyperHttp1 => {
            let uri: hyper::Uri = path.parse().map_err(|e| format!("bad path: {e}"))?;
            let mut loops = Vec::with_capacity(connections);
            for _ in 0..connections {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
                let _ = tcp.set_nodelay(true);
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                        .await
                        .map_err(|e| format!("the hyper handshake failed: {e}"))?;
                tokio::spawn(connection);
                loops.push(LoopClient::Hyper(sender, uri.clone()));
            }
            Ok(loops)
        }
    }
}

impl LoopClient {
    /// A closed loop of token checks until `deadline`; latencies go to the loop's own recorder.
    async fn token_check_loop(mut self, deadline: Instant) -> Snapshot {
        let mut recorder = Recorder::new();
        while Instant::now() < deadline {
            let start = Instant::now();
            match self.token_check().await {
                Ok(Some(TOKEN)) => recorder.record_since(op::TOKEN_CHECK, start),
                Ok(_) => recorder.record_error(op::TOKEN_CHECK, "wrong_answer"),
                Err(kind) => recorder.record_error(op::TOKEN_CHECK, kind),
            }
        }
        recorder.take()
    }

    /// The sync token, as a device reads it: the header gate, the JSON answer parsed.
    async fn token_check(&mut self) -> Result<Option<i64>, &'static str> {
        let body: bytes::Bytes = match self {
            LoopClient::Ours(rest) => {
                return rest
                    .sync_token(JWT, USER_ID)
                    .await
                    .map_err(|e| e.kind.name());
            }
            LoopClient::Reqwest(client, url) => {
                let answer = client
                    .get(url.as_str())
                    .header("apikey", API_KEY)
                    .header("authorization", format!("Bearer {JWT}"))
                    .send()
                    .await
                    .map_err(|_| "connect")?;
                if !answer.status().is_success() {
                    return Err("http_status");
                }
                answer.bytes().await.map_err(|_| "body")?
            }
            LoopClient::Hyper(sender, uri) => {
                use http_body_util::BodyExt;
                sender.ready().await.map_err(|_| "connect")?;
                let request = hyper::Request::get(uri.clone())
                    .header("host", "bench")
                    .header("apikey", API_KEY)
                    .header("authorization", format!("Bearer {JWT}"))
                    .body(http_body_util::Empty::new())
                    .map_err(|_| "request")?;
                let answer = sender.send_request(request).await.map_err(|_| "connect")?;
                if !answer.status().is_success() {
                    return Err("http_status");
                }
                answer
                    .into_body()
                    .collect()
                    .await
                    .map_err(|_| "body")?
                    .to_bytes()
            }
        };
        #[derive(serde::Deserialize)]
        struct Row {
            sync_token: i64,
        }
        let rows: Vec<Row> = serde_json::from_slice(&body).map_err(|_| "json")?;
        Ok(rows.first().map(|r| r.sync_token))
    }
}

fn arm_name(arm: Arm) -> &'static str {
    match arm {
        Arm::Ours(ConnectionModel::PerDevice) => "harness per_device",
        Arm::Ours(ConnectionModel::Shared) => "harness shared",
        Arm::Reqwest => "reqwest",
        Arm::HyperHttp1 => "hyper http1",
    }
}

fn model_name(arm: Arm) -> &'static str {
    match arm {
        Arm::Ours(ConnectionModel::PerDevice) => "per_device",
        Arm::Ours(ConnectionModel::Shared) => "shared",
        Arm::Reqwest => "reqwest",
        Arm::HyperHttp1 => "hyper_http1",
    }
}

fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

fn print_header(config: &Config, server: &Server) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "HTTP generation vs wrk: axum endpoint on {} ({} server runtime thread(s)), {} connections, \
         {} generator thread(s), {} s per phase, {} round(s); {} CPUs, load average {}",
        server.addr,
        config.server_threads,
        config.connections,
        config.threads,
        config.seconds,
        config.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    );
}

fn print_round(round: usize, phases: &[Phase]) {
    println!("\nround {round}");
    println!(
        "{:<20} {:>10} {:>7} {:>8} {:>8} {:>7} {:>13} {:>13} {:>10}",
        "generator",
        "req/s",
        "vs wrk",
        "p50 ms",
        "p99 ms",
        "errors",
        "gen CPU ms/1k",
        "srv CPU ms/1k",
        "srv busy %"
    );
    let wrk_rate = phases.iter().find(|p| p.name == "wrk").map(Phase::rate);
    for p in phases {
        let ratio = wrk_rate.map_or("-".to_owned(), |w| format!("{:.2}", p.rate() / w));
        println!(
            "{:<20} {:>10.0} {:>7} {:>8.3} {:>8.3} {:>7} {:>13.1} {:>13.1} {:>10.0}",
            p.name,
            p.rate(),
            ratio,
            p.p50_ms,
            p.p99_ms,
            p.errors,
            p.cpu_ms_per_1k(p.generator_cpu),
            p.cpu_ms_per_1k(p.server_cpu),
            100.0 * p.server_cpu.as_secs_f64() / p.wall.as_secs_f64()
        );
    }
    let wrk_cpu = phases
        .iter()
        .find(|p| p.name == "wrk")
        .map(|w| w.cpu_ms_per_1k(w.generator_cpu));
    for p in phases {
        if let (Some(w), true) = (wrk_cpu, p.name != "wrk") {
            // On a shared machine the rates drift with other load; CPU per request does not.
            println!(
                "  {}: CPU per request {:.2}x wrk's (rate ratio at equal CPU: {:.2})",
                p.name,
                p.cpu_ms_per_1k(p.generator_cpu) / w,
                w / p.cpu_ms_per_1k(p.generator_cpu)
            );
        }
    }
    for p in phases {
        if let Some(cross) = p.process_minus_server {
            println!(
                "  {}: {} requests in {:.2} s; CPU {:.2} s on its threads, {:.2} s process minus server threads",
                p.name,
                p.requests,
                p.wall.as_secs_f64(),
                p.generator_cpu.as_secs_f64(),
                cross.as_secs_f64()
            );
        }
    }
}

fn print_footer(config: &Config, wrk_command: Option<&str>) {
    let models: Vec<&str> = config.models.iter().map(|m| model_name(*m)).collect();
    println!(
        "\ncommand: SYNCSTORM_BENCH_SECONDS={} SYNCSTORM_BENCH_CONNECTIONS={} SYNCSTORM_BENCH_THREADS={} \
         SYNCSTORM_BENCH_SERVER_THREADS={} SYNCSTORM_BENCH_ROUNDS={} SYNCSTORM_BENCH_MODELS={} \
         cargo bench --bench http_generation",
        config.seconds,
        config.connections,
        config.threads,
        config.server_threads,
        config.rounds,
        models.join(",")
    );
    if let Some(command) = wrk_command {
        println!("wrk: {command}");
    }
    println!(
        "CPU: generator = its runtime's threads (schedstat), wrk = RUSAGE_CHILDREN; \
         srv = the server runtime's threads; latencies are closed-loop (from each request's start)."
    );
}
