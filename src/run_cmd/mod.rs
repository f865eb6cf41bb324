//! `syncstorm run <scenario.toml>`: boot or resolve the target, check the fd and port budget,
//! seed the population, run the phases on worker processes with probes on the same timeline,
//! quiesce, run the oracle, write the JSON and HTML, print the summary, map to an exit code.
//! Ctrl-C (or SIGTERM) stops the load and still writes the report of what ran.

mod outcome;
mod plan_budget;
mod setup;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use syncstorm_scenario::RunPlan;
use tokio_util::sync::CancellationToken;

use crate::cpu_sets::CpuSets;

use crate::cli::exit;
use crate::progress::Progress;
use crate::result::{Probes, RunResult, SetupInfo};
use crate::swarm::coordinator::{self, Launcher, ProgressSpec, SwarmOutcome};
use crate::swarm::shard::{self, Shard};
use crate::swarm::task::WorkerTask;
use crate::{population, probes, report};

pub use outcome::{RunParts, merge_oracle};

/// Options of `syncstorm run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The scenario file (see scenarios/README.md).
    pub scenario: PathBuf,
    /// Override any scenario field by its dotted path, e.g. `--set population.users=500`.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Add a threshold, e.g. `--threshold "sync.p99 < 2s"`.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Where the JSON result and HTML report go (default: the scenario's `run.out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run one slice of the population, `i/n` with i from 0, and write a mergeable result.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// The run's tag (its users' e-mail domain, what `cleanup --run-tag` removes), given by an
    /// orchestrator so every shard of one run shares it; by default made from the scenario,
    /// seed and start time.
    #[arg(long)]
    pub run_tag: Option<String>,
    /// Start the load's first phase at this wall instant (RFC 3339, e.g.
    /// `2026-12-07T09:00:00Z`), so shards on several machines start together; a shard whose
    /// setup runs past it starts at once and its result says how late.
    #[arg(long, value_parser = parse_start_at)]
    pub start_at: Option<chrono::DateTime<Utc>>,
    /// Direct PostgreSQL URL of the target, for SQL seeding, probes and the oracle.
    #[arg(long)]
    pub database_url: Option<String>,
    /// A non-loopback host this run may send traffic to (repeatable).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// An address of this machine the devices' connections leave from (repeatable; device d
    /// uses the (d mod n)-th). Each (source, destination) pair has its own ~28k ephemeral
    /// ports, and shards on one machine can tell their traffic apart by it.
    #[arg(long = "source-address", value_name = "IP")]
    pub source_addresses: Vec<std::net::IpAddr>,
    /// Connect to this address of the target instead of resolving its URL's host (repeatable;
    /// device d uses the (d mod n)-th; the Host header stays the URL's), e.g. each process of
    /// a multi-process `syncstorm stack`, or each address a load balancer's name resolves to.
    #[arg(long = "target-address", value_name = "IP")]
    pub target_addresses: Vec<std::net::IpAddr>,
    /// Run the workers as tasks in this process instead of worker processes.
    #[arg(long, hide = true)]
    pub in_process: bool,
    /// Let the embedded server and the harness share every core (by default, with two cores
    /// or more, they run on separate ones).
    #[arg(long)]
    pub no_cpu_sets: bool,
}

/// A run that could not happen: bad input (exit 2) or a failure (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Failed(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::BadInput(_) => exit::BAD_INPUT,
            RunError::Failed(_) => exit::RUN_FAILED,
        }
    }
}

/// Loads the plan and runs it; returns the process exit code.
pub fn run(args: RunArgs) -> i32 {
    crate::logging::init("warn");
    let plan =
        match syncstorm_scenario::load_with(&args.scenario, &args.overrides, &args.thresholds) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("syncstorm run: {e}");
                return exit::BAD_INPUT;
            }
        };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syncstorm run: cannot start the async runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    let code = runtime.block_on(async {
        let stop = CancellationToken::new();
        let signals = tokio::spawn(stop_on_signals(stop.clone()));
        let code = match execute(&plan, &args, stop).await {
            Ok(result) => result.status.exit_code,
            Err(e) => {
                eprintln!("syncstorm run: {e}");
                e.exit_code()
            }
        };
        signals.abort();
        code
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

/// The worker process entry (`syncstorm __worker`).
pub fn worker() -> i32 {
    crate::logging::init("warn");
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(crate::swarm::worker::main()),
        Err(e) => {
            eprintln!("syncstorm worker: cannot start the async runtime: {e}");
            exit::RUN_FAILED
        }
    }
}

/// First Ctrl-C or SIGTERM: stop the load, keep the report. A second one: leave at once.
async fn stop_on_signals(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    for round in 0..2 {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if round == 0 {
            eprintln!(
                "\nsyncstorm run: stopping the load; the report of what ran follows (again to quit now)"
            );
            stop.cancel();
        } else {
            std::process::exit(exit::RUN_FAILED);
        }
    }
}

/// The whole run, in-process: the library entry the command and the tests call.
pub async fn execute(
    plan: &RunPlan,
    args: &RunArgs,
    stop: CancellationToken,
) -> Result<RunResult, RunError> {
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let shape = plan_budget::shape(plan, shard);
    if let Some(tag) = &args.run_tag {
        crate::cleanup::validate_run_tag(tag)
            .map_err(|e| RunError::BadInput(format!("--run-tag: {e}")))?;
    }
    check_source_addresses(&args.source_addresses)?;
    check_target_addresses(plan, &args.target_addresses, &args.allow_hosts)?;
    let root = CancellationToken::new();
    let mut progress = Progress::detect();
    progress.note(&format!(
        "syncstorm run: {} — {} devices in shard {shard}",
        plan.name, shape.devices
    ));
    let workers = plan_budget::check(
        plan,
        &shape,
        args.source_addresses.len(),
        args.target_addresses.len(),
    )?;
    // Before the stack and PostgreSQL start, so they inherit the server's cores.
    let cpu_sets = separate_server_from_generator(plan, args);
    let mut prepared = target::prepare(
        plan,
        shape.held_sockets(plan),
        args.database_url.clone(),
        &args.allow_hosts,
        &root,
    )
    .await?;
    prepared.cpu_sets = cpu_sets;
    prepared.endpoints.sources = args.source_addresses.clone();
    if !args.target_addresses.is_empty() {
        prepared.endpoints.addresses = args.target_addresses.clone();
    }
    let started_at = Utc::now();
    let users = shard.users(plan.population.users);
    let tag = args.run_tag.clone().unwrap_or_else(|| {
        population::credential_tag(&plan.name, plan.run.seed, started_at.timestamp())
    });
    let outcome = seed_and_run(
        plan,
        args,
        &prepared,
        users,
        &tag,
        workers,
        &stop,
        &mut progress,
    )
    .await;
    let LoadOutcome {
        swarm,
        probes,
        resources,
        failure,
        load_started,
        setup: setup_info,
        clock,
    } = outcome;
    let parts = RunParts {
        started_at: load_started.unwrap_or(started_at),
        duration_s: (Utc::now() - load_started.unwrap_or(started_at)).as_seconds_f64(),
        shard,
        swarm,
        probes,
        resources,
        failure,
    };
    let mut result = outcome::build(plan, parts);
    result.run_tag = tag.clone();
    result.setup = Some(setup_info);
    result.target = prepared.info.clone();
    result.machine.cpu_sets = prepared.cpu_sets.clone();
    result.machine.source_addresses = args.source_addresses.clone();
    result.clock = match clock {
        // A stopped run does not wait for an unfinished probe (it must end within seconds).
        Some(probe) if stop.is_cancelled() && !probe.is_finished() => {
            probe.abort();
            None
        }
        Some(probe) => clock_of(probe, &mut progress).await,
        None => None,
    };
    result.set_risks();
    let written = write_outputs(
        &result,
        args.out.clone().unwrap_or_else(|| plan.run.out.clone()),
    );
    if let Some(stack) = prepared.stack {
        let _ = tokio::time::timeout(Duration::from_secs(15), stack.stop()).await;
    }
    root.cancel();
    written.map(|()| result)
}

/// The clock probe's answer; a failed probe is a note, not a failed run (the merge then aligns
/// shards by their own clocks).
async fn clock_of(
    probe: ClockProbe,
    progress: &mut Progress,
) -> Option<crate::result::ClockOffset> {
    match tokio::time::timeout(crate::clock_offset::DEADLINE, probe).await {
        Ok(Ok(Ok(offset))) => {
            if offset.offset_ms.abs() > 1_000.0 {
                progress.note(&format!(
                    "this machine's clock is {:.1} s {} the target's (± {:.0} ms)",
                    offset.offset_ms.abs() / 1000.0,
                    if offset.offset_ms > 0.0 {
                        "behind"
                    } else {
                        "ahead of"
                    },
                    offset.uncertainty_ms
                ));
            }
            Some(offset)
        }
        Ok(Ok(Err(why))) => {
            progress.note(&format!("clock offset not measured: {why}"));
            None
        }
        _ => None,
    }
}

type ClockProbe = tokio::task::JoinHandle<Result<crate::result::ClockOffset, String>>;

/// What the setup and the load left for the result.
struct LoadOutcome {
    swarm: SwarmOutcome,
    probes: Probes,
    resources: crate::resources::Resources,
    /// Why the run stopped before its load (setup failed, or was interrupted).
    failure: Option<String>,
    load_started: Option<chrono::DateTime<Utc>>,
    setup: SetupInfo,
    clock: Option<ClockProbe>,
}

/// Reads this machine's clock against the target's in the background.
fn spawn_clock_probe(prepared: &target::Prepared) -> ClockProbe {
    let (url, key) = (
        prepared.endpoints.base_url.clone(),
        prepared.endpoints.anon_key.clone(),
    );
    tokio::spawn(async move { crate::clock_offset::measure(&url, &key).await })
}

/// Seeds the shard's users and rows, then runs the load with the probes beside it.
#[allow(clippy::too_many_arguments)]
async fn seed_and_run(
    plan: &RunPlan,
    args: &RunArgs,
    prepared: &target::Prepared,
    users: std::ops::Range<u64>,
    tag: &str,
    workers: u32,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> LoadOutcome {
    let empty = |failure: String, setup: SetupInfo, clock: Option<ClockProbe>| LoadOutcome {
        swarm: SwarmOutcome {
            interrupted: stop.is_cancelled(),
            ..Default::default()
        },
        probes: Probes::default(),
        resources: Default::default(),
        failure: Some(failure),
        load_started: None,
        setup,
        clock,
    };
    // The clock is read while this machine waits for --start-at (quiet, and shards usually
    // have the wait), else beside the setup, so it never costs the run time.
    let mut clock = args.start_at.is_none().then(|| spawn_clock_probe(prepared));
    let (seeded, setup_info) =
        setup::seed(plan, prepared, users.clone(), tag, stop, progress).await;
    let setup::Seeded { ids, sessions } = match seeded {
        Ok(seeded) => seeded,
        Err(e) => return empty(e, setup_info, clock),
    };
    let mut setup_info = setup_info;
    if let Some(at) = args.start_at {
        setup_info.start_at = Some(at);
        clock = Some(spawn_clock_probe(prepared));
        match wait_for_start(at, stop, progress).await {
            Some(late) => setup_info.late_start_s = Some(late),
            None => {
                return empty(
                    "interrupted while waiting for --start-at".into(),
                    setup_info,
                    clock,
                );
            }
        }
    }
    let share = (users.end - users.start) as f64 / plan.population.users.max(1) as f64;
    let load_started = Utc::now() + chrono::Duration::seconds(2);
    let tasks = worker_tasks(
        plan,
        prepared,
        WorkerSlices {
            users,
            ids: &ids,
            sessions: &sessions,
        },
        tag,
        workers,
        load_started.timestamp_millis(),
    );
    let origin = crate::swarm::worker::origin_instant(load_started.timestamp_millis());
    let probe_stop = CancellationToken::new();
    let probe_config = probes::ProbeConfig {
        database_url: prepared.endpoints.database_url.clone(),
        metrics_urls: prepared.metrics_urls.clone(),
        source: prepared.probe_source.clone(),
        interval: Duration::from_secs(1),
    };
    let probing = tokio::spawn(probes::run(probe_config, origin, probe_stop.clone()));
    let metering = tokio::spawn(crate::resources::run(origin, probe_stop.clone()));
    let launcher = launcher(args, prepared.cpu_sets.as_ref());
    let spec = ProgressSpec {
        total: plan.load_duration(),
        phases: phases_of_share(&plan.phases, share),
    };
    let swarm = coordinator::run(tasks, launcher, stop.clone(), progress, &spec).await;
    probe_stop.cancel();
    LoadOutcome {
        swarm,
        probes: probing.await.unwrap_or_default(),
        resources: metering.await.unwrap_or_default(),
        failure: None,
        load_started: Some(load_started),
        setup: setup_info,
        clock,
    }
}

/// The phases as this process drives them: a shard opens its share of the arrivals and runs its
/// share of the devices, and its progress line says so.
fn phases_of_share(
    phases: &[syncstorm_scenario::Phase],
    share: f64,
) -> Vec<syncstorm_scenario::Phase> {
    use syncstorm_scenario::Load;
    let devices = |n: u64| (n as f64 * share).round() as u64;
    phases
        .iter()
        .cloned()
        .map(|mut phase| {
            phase.load = match phase.load {
                Load::Open {
                    from_rate,
                    to_rate,
                    arrivals,
                } => Load::Open {
                    from_rate: from_rate * share,
                    to_rate: to_rate * share,
                    arrivals,
                },
                Load::Closed { from, to, ramp } => Load::Closed {
                    from: devices(from),
                    to: devices(to),
                    ramp,
                },
            };
            phase
        })
        .collect()
}

/// The load starts 2 s after the workers are told (they need the time to be ready), so this
/// waits until 2 s before `at`; how late the start is when the setup ran past it (0 when it
/// waited), or `None` when the run was stopped while waiting.
async fn wait_for_start(
    at: chrono::DateTime<Utc>,
    stop: &CancellationToken,
    progress: &mut Progress,
) -> Option<f64> {
    const LEAD: chrono::TimeDelta = chrono::TimeDelta::seconds(2);
    let ahead = (at - LEAD - Utc::now()).to_std().ok();
    match ahead {
        Some(wait) => {
            progress.note(&format!(
                "waiting {:.0} s for --start-at {}",
                wait.as_secs_f64(),
                at.to_rfc3339()
            ));
            tokio::select! {
                () = tokio::time::sleep(wait) => Some(0.0),
                () = stop.cancelled() => None,
            }
        }
        None => {
            let late = (Utc::now() + LEAD - at).as_seconds_f64().max(0.0);
            progress.note(&format!(
                "the load starts {late:.1} s after --start-at {}: setup ran past it",
                at.to_rfc3339()
            ));
            Some(late)
        }
    }
}

/// Each `--source-address` once, and each one this machine can bind (the devices would
/// otherwise fail on every connect, one error per request).
fn check_source_addresses(sources: &[std::net::IpAddr]) -> Result<(), RunError> {
    for (i, ip) in sources.iter().enumerate() {
        if sources[..i].contains(ip) {
            return Err(RunError::BadInput(format!(
                "--source-address {ip} is given twice"
            )));
        }
        std::net::TcpListener::bind((*ip, 0)).map_err(|e| {
            RunError::BadInput(format!(
                "--source-address {ip} is not an address of this machine ({e})"
            ))
        })?;
    }
    Ok(())
}

/// `--target-address` replaces a URL target's name resolution, so the traffic guard applies to
/// each address as it does to the URL's host; the embedded stack picks its own addresses.
fn check_target_addresses(
    plan: &RunPlan,
    addresses: &[std::net::IpAddr],
    allow_hosts: &[String],
) -> Result<(), RunError> {
    if addresses.is_empty() {
        return Ok(());
    }
    if plan.target.kind == syncstorm_scenario::TargetKind::Embedded {
        return Err(RunError::BadInput(
            "--target-address is for a target given by URL; the embedded stack chooses its own addresses".into(),
        ));
    }
    for ip in addresses {
        let allowed = ip.is_loopback() || allow_hosts.iter().any(|h| h == &ip.to_string());
        if !allowed {
            return Err(RunError::BadInput(format!(
                "--target-address {ip} is not a loopback address; allow it with --allow-host {ip} if this run may send traffic there"
            )));
        }
    }
    Ok(())
}

fn parse_start_at(text: &str) -> Result<chrono::DateTime<Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 instant such as 2026-12-07T09:00:00Z ({e})")
        })
}

fn launcher(args: &RunArgs, cpu_sets: Option<&CpuSets>) -> Launcher {
    if args.in_process {
        return Launcher::InProcess;
    }
    match std::env::current_exe() {
        Ok(exe) => Launcher::Process(exe, cpu_sets.map(|s| s.generator.clone())),
        Err(_) => Launcher::InProcess,
    }
}

/// Pins this process (and so the embedded stack and PostgreSQL it starts) to the server's
/// cores and returns the sets; `None` (said in the result) with one core, a real Supabase
/// target (no server here), in-process workers or `--no-cpu-sets`.
fn separate_server_from_generator(plan: &RunPlan, args: &RunArgs) -> Option<CpuSets> {
    let embedded = matches!(plan.target.kind, syncstorm_scenario::TargetKind::Embedded);
    if !embedded || args.in_process || args.no_cpu_sets {
        return None;
    }
    let sets = CpuSets::split(&crate::cpu_sets::allowed_cores())?;
    match crate::cpu_sets::pin_this_process(&sets.server) {
        Ok(()) => Some(sets),
        Err(e) => {
            tracing::warn!("cannot give the server its own cores: {e}");
            None
        }
    }
}

/// The shard's users with their ids and their devices' sessions (empty: none).
struct WorkerSlices<'a> {
    users: std::ops::Range<u64>,
    ids: &'a [uuid::Uuid],
    sessions: &'a [syncstorm_wire::client::Session],
}

/// One task per worker: the shard's users split evenly, ids and sessions alongside.
fn worker_tasks(
    plan: &RunPlan,
    prepared: &target::Prepared,
    slices: WorkerSlices<'_>,
    tag: &str,
    workers: u32,
    origin_unix_ms: i64,
) -> Vec<WorkerTask> {
    let scenario_toml = toml::to_string(&plan.document).unwrap_or_default();
    let WorkerSlices {
        users,
        ids,
        sessions,
    } = slices;
    let per_user = plan.population.devices_per_user as usize;
    (0..workers)
        .map(|w| {
            let part = shard::split(users.clone(), w, workers);
            let from = (part.start - users.start) as usize;
            let to = (part.end - users.start) as usize;
            let devices = (from * per_user)..(to * per_user);
            WorkerTask {
                label: format!("worker-{w}"),
                scenario_toml: scenario_toml.clone(),
                users: part,
                user_ids: ids[from..to].to_vec(),
                credential_tag: tag.to_owned(),
                endpoints: prepared.endpoints.clone(),
                origin_unix_ms,
                sessions: sessions.get(devices).map(<[_]>::to_vec).unwrap_or_default(),
            }
        })
        .filter(|t| !t.users.is_empty())
        .collect()
}

/// Writes the JSON and the HTML beside it, and prints the console summary.
fn write_outputs(result: &RunResult, dir: PathBuf) -> Result<(), RunError> {
    let json = result
        .write(&dir)
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let html = json.with_extension("html");
    report::write_html(result, &html)
        .map_err(|e| RunError::Failed(format!("cannot write {}: {e}", html.display())))?;
    use std::io::IsTerminal;
    println!(
        "{}",
        report::console::summary(result, std::io::stdout().is_terminal())
    );
    println!("result: {}\nreport: {}", json.display(), html.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shards_progress_names_its_share_of_the_arrivals_and_devices() {
        let text = "[scenario]\nname = \"t\"\n[target]\nkind = \"embedded\"\n\
                    [population]\nusers = 1000\n\
                    [[phases]]\nname = \"storm\"\nduration = \"60s\"\narrival_rate = 1667\n\
                    [[phases]]\nname = \"hold\"\nduration = \"60s\"\ndevices = \"100%\"\n";
        let plan = syncstorm_scenario::from_str_with("t.toml", text, &[], &[]).unwrap();
        let quarter = phases_of_share(&plan.phases, 0.25);
        let label = |at| crate::progress::phase_label(&quarter, Duration::from_secs(at), "");
        assert_eq!(label(30), "storm 30s/60s → 417 opens/s");
        assert_eq!(label(90), "hold 30s/60s → 250 devices");
        assert_eq!(phases_of_share(&plan.phases, 1.0), plan.phases);
    }
}
