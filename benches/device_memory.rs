//! Memory per connected idle device (harness side). Prints figures; asserts nothing.
//!
//! `cargo bench --bench device_memory` (devices: `SYNCSTORM_BENCH_DEVICES`, default 2000).
//! The stack runs in a child process (this binary again), so only the harness is measured.
//! Measures the process's resident set (`/proc/self/statm`) and its live heap (a counting
//! allocator, with the live allocations by size class to show where the bytes are) before
//! and after:
//! 1. one `HttpClient` per device (the per-device connection model's pool, unused);
//! 2. whole devices — state machine, driver task, session, HTTP client with its keep-alive
//!    connection, realtime socket task joined and subscribed — idle after their first sync,
//!    in both connection models.
//!
//! Kernel socket buffers are not in the resident set (≈4.5 KiB per idle TCP socket, measured
//! separately in architecture.md).

#[path = "device_memory/heap.rs"]
mod heap;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use syncstorm::driver::pulse::WS_SUBSCRIBED;
use syncstorm::driver::{
    Clock, Credentials, DeviceRun, DeviceTask, DriverConfig, Input, Metrics, NetworkSwitch,
    run_device,
};
use syncstorm_device::{Device, DeviceKnobs, Event, PulseMode};
use syncstorm_metrics::Recorder;
use syncstorm_wire::client::{
    AuthClient, ConnectionModel, Endpoint, HttpClient, HttpClients, HttpOptions, http_client,
};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: heap::Counting = heap::Counting;

/// The stack, in a child process (this same binary, started with `STACK_ROLE`) so that
/// its memory is not counted; closing its stdin stops it.
struct Target {
    child: Option<Child>,
    endpoint: Endpoint,
    service_key: String,
}

/// Set in children: `stack`, or `devices:<variant>`. Children never start children.
const STACK_ROLE: &str = "SYNCSTORM_BENCH_ROLE";
const TARGET_ENV: [&str; 3] = [
    "SYNCSTORM_BENCH_URL",
    "SYNCSTORM_BENCH_ANON",
    "SYNCSTORM_BENCH_SERVICE",
];

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

fn start_stack() -> Target {
    // Never from the child itself: a child that started another would multiply.
    assert!(
        std::env::var_os(STACK_ROLE).is_none(),
        "the stack child must not start a stack child"
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(STACK_ROLE, "stack")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the stack child starts");
    let stdout = child.stdout.take().unwrap();
    let (mut url, mut anon, mut service) = (None, None, None);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((key, value)) = line.split_once('=') {
            match key {
                "SUPABASE_URL" => url = Some(value.to_owned()),
                "SUPABASE_ANON_KEY" => anon = Some(value.to_owned()),
                "SUPABASE_SERVICE_ROLE_KEY" => service = Some(value.to_owned()),
                "DATABASE_URL" => break,
                _ => {}
            }
        }
    }
    let endpoint = Endpoint::new(&url.expect("SUPABASE_URL"), &anon.expect("anon key")).unwrap();
    Target {
        child: Some(child),
        endpoint,
        service_key: service.expect("service key"),
    }
}

/// The child: serve until stdin closes.
async fn serve_stack() {
    let plan = syncstorm_plans::SupabasePlan::preset("unlimited").expect("unlimited preset");
    let cancel = CancellationToken::new();
    let stack = syncstorm_stack::Stack::start(syncstorm_stack::StackConfig::new(plan), cancel)
        .await
        .expect("the embedded stack starts");
    print!("{}", stack.env_lines());
    use std::io::Write as _;
    std::io::stdout().flush().expect("stdout");
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await
        .ok();
    stack.stop().await.expect("the stack stops");
}

/// Resident set after giving freed heap pages back, so that what sign-in and the first sync
/// allocated and freed does not count as the idle devices' memory.
fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
    unsafe {
        nix::libc::malloc_trim(0);
    }
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Shared by every device of the bench; counts confirmed subscriptions.
#[derive(Default)]
struct BenchMetrics {
    recorder: Mutex<Recorder>,
    subscribed: AtomicU64,
    syncs: AtomicU64,
}

impl Metrics for BenchMetrics {
    fn latency(&self, op: &str, took: Duration) {
        if op == "sync" {
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        self.recorder.latency(op, took);
    }
    fn error(&self, op: &str, kind: ErrorKind) {
        self.recorder.error(op, kind);
    }
    fn count(&self, name: &str, n: u64) {
        if name == WS_SUBSCRIBED {
            self.subscribed.fetch_add(n, Ordering::Relaxed);
        }
        self.recorder.count(name, n);
    }
    fn gauge(&self, name: &str, delta: i64) {
        self.recorder.gauge(name, delta);
    }
}

async fn create_users(target: &Target, n: usize) -> Vec<(Uuid, Credentials)> {
    let auth = AuthClient::new(
        http_client(&HttpOptions::default()).unwrap(),
        target.endpoint.clone(),
    );
    futures_util::stream::iter(0..n)
        .map(|i| {
            let auth = auth.clone();
            async move {
                let email = format!("bench-{i}-{}@example.test", Uuid::new_v4());
                let password = "bench password".to_string();
                let user = auth
                    .admin_create_user(&target.service_key, &email, &password)
                    .await
                    .unwrap();
                (
                    Uuid::parse_str(&user.id).unwrap(),
                    Credentials { email, password },
                )
            }
        })
        .buffer_unordered(4)
        .collect()
        .await
}

struct Swarm {
    cancel: CancellationToken,
    inputs: Vec<mpsc::Sender<Input>>,
    tasks: Vec<tokio::task::JoinHandle<DeviceRun>>,
}

async fn spawn_devices(
    target: &Target,
    users: &[(Uuid, Credentials)],
    model: ConnectionModel,
    http_options: HttpOptions,
    pulse: PulseMode,
) -> Swarm {
    let mut knobs = DeviceKnobs::default();
    knobs.pulse.mode = pulse;
    let knobs = Arc::new(knobs);
    let config = Arc::new(DriverConfig::default());
    let metrics = Arc::new(BenchMetrics::default());
    let http = HttpClients::new(model, http_options).unwrap();
    let network = NetworkSwitch::new();
    let cancel = CancellationToken::new();
    let mut swarm = Swarm {
        cancel: cancel.clone(),
        inputs: Vec::new(),
        tasks: Vec::new(),
    };
    for (i, (user_id, credentials)) in users.iter().enumerate() {
        let (tx, inputs) = mpsc::channel(4);
        let task = DeviceTask {
            device: Device::new(i as u64, *user_id, knobs.clone(), 0, i as u64),
            session: None,
            credentials: credentials.clone(),
            endpoint: target.endpoint.clone(),
            http: http.for_device().unwrap(),
            config: config.clone(),
            metrics: metrics.clone(),
            online: network.subscribe(),
            inputs,
            cancel: cancel.child_token(),
            clock: Clock::system(),
        };
        let device = run_device(task);
        if i == 0 {
            println!(
                "  device task future: {} bytes (the state machine inline: {} bytes)",
                std::mem::size_of_val(&device),
                std::mem::size_of::<Device>()
            );
        }
        swarm.tasks.push(tokio::spawn(device));
        tx.send(Input::Event(Event::AppOpened)).await.unwrap();
        swarm.inputs.push(tx);
    }
    let started = Instant::now();
    let ready = |m: &BenchMetrics| match pulse {
        PulseMode::Websocket => m.subscribed.load(Ordering::Relaxed),
        _ => m.syncs.load(Ordering::Relaxed),
    };
    while ready(&metrics) < users.len() as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "devices did not all subscribe in 5 min"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "  {} devices signed in, synced and subscribed in {:.1?}",
        users.len(),
        started.elapsed()
    );
    swarm
}

impl Swarm {
    async fn stop(self) -> Vec<Device> {
        self.cancel.cancel();
        let mut devices = Vec::new();
        for task in self.tasks {
            devices.push(task.await.unwrap().device);
        }
        devices
    }
}

fn per_device(before: u64, after: u64, n: usize) -> String {
    let bytes = after.saturating_sub(before) as f64 / n as f64;
    format!("{:.1} KiB", bytes / 1024.0)
}

/// The variants measured, each in a fresh process (a freed heap would flatter the next).
/// `shared_no_socket`: the same without the realtime socket (pulse off), to split the cost.
const VARIANTS: [&str; 4] = [
    "per_device",
    "per_device_idle_closed",
    "shared",
    "shared_no_socket",
];

fn device_count() -> usize {
    std::env::var("SYNCSTORM_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The parent: one stack child, then one devices child per variant, one after the other.
fn bench() {
    let target = start_stack();
    println!(
        "device memory, {} devices, harness process resident set (stack in another process)",
        device_count()
    );
    let values = [
        target.endpoint.base_url(),
        target.endpoint.api_key(),
        target.service_key.as_str(),
    ];
    for variant in VARIANTS {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child.env(STACK_ROLE, format!("devices:{variant}"));
        for (name, value) in TARGET_ENV.iter().zip(values) {
            child.env(name, value);
        }
        let status = child.status().expect("a devices child starts");
        assert!(status.success(), "the {variant} measurement failed");
    }
}

/// A devices child: make users, bring the devices up, measure, stop them.
async fn measure(variant: &str) {
    let env =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"));
    let endpoint = Endpoint::new(&env(TARGET_ENV[0]), &env(TARGET_ENV[1])).unwrap();
    let target = Target {
        child: None,
        endpoint,
        service_key: env(TARGET_ENV[2]),
    };
    let n = device_count();
    let users = create_users(&target, n).await;
    let (model, idle_timeout) = match variant {
        "per_device" => (ConnectionModel::PerDevice, Duration::from_secs(90)),
        "per_device_idle_closed" => (ConnectionModel::PerDevice, Duration::from_secs(1)),
        _ => (ConnectionModel::Shared, Duration::from_secs(90)),
    };
    if variant == "per_device" {
        let (before, heap_before) = (rss_bytes(), heap::now());
        let per_device_clients = HttpClients::new(model, HttpOptions::default()).unwrap();
        let clients: Vec<HttpClient> = (0..n)
            .map(|_| per_device_clients.for_device().unwrap())
            .collect();
        println!(
            "  HttpClient per device, no connection yet: {} ({})",
            per_device(before, rss_bytes(), n),
            heap::now().per_device(&heap_before, n)
        );
        drop(clients);
    }
    let options = HttpOptions {
        idle_timeout,
        ..HttpOptions::default()
    };
    let (before, heap_before) = (rss_bytes(), heap::now());
    let pulse = if variant == "shared_no_socket" {
        PulseMode::Off
    } else {
        PulseMode::Websocket
    };
    let swarm = spawn_devices(&target, &users, model, options, pulse).await;
    if idle_timeout < Duration::from_secs(10) {
        // Let the idle keep-alive connections expire (what an idle phone's HTTP stack does).
        tokio::time::sleep(idle_timeout * 3).await;
    }
    let after = rss_bytes();
    println!(
        "  idle connected device, {variant}: {} per device resident; {}",
        per_device(before, after, n),
        heap::now().per_device(&heap_before, n)
    );
    let devices = swarm.stop().await;
    let footprint: usize = devices.iter().map(Device::footprint_bytes).sum();
    println!(
        "    of which the state machine and its store: {:.2} KiB",
        footprint as f64 / n as f64 / 1024.0
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match std::env::var(STACK_ROLE).ok().as_deref() {
        None => bench(),
        Some("stack") => runtime.block_on(serve_stack()),
        Some(role) => match role.strip_prefix("devices:") {
            Some(variant) => runtime.block_on(measure(variant)),
            None => panic!("unknown bench role {role}"),
        },
    }
}
