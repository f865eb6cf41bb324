//! The coordinator: starts one worker per slice (a re-exec of this binary as
//! `syncstorm __worker`, or an in-process task for tests), merges their per-second reports
//! into the run's total and series, shows progress, and forwards Ctrl-C as a `Stop`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use syncstorm_metrics::{Aggregator, Snapshot, TimeSeries};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ipc::{read_frame, write_frame};
use super::task::{Control, Report, WorkerSummary, WorkerTask};
use super::worker;
use crate::progress::{Frame, Progress};
use crate::result::GeneratorSample;

/// The hidden subcommand a worker process runs.
pub const WORKER_SUBCOMMAND: &str = "__worker";
/// Reports buffered from all workers; when full, readers wait (backpressure on the pipes).
const REPORT_BUFFER: usize = 256;
/// A second is sealed at the latest this long after the newest second seen, even if a
/// worker is behind (its late report still counts in the total).
const SEAL_LAG_S: u64 = 5;
/// How long a worker may take to exit after `Done`, or after `Stop`, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// How workers are started.
#[derive(Debug, Clone)]
pub enum Launcher {
    /// Re-exec this executable (or the given one) with `__worker`, on these cores if given.
    Process(PathBuf, Option<Vec<usize>>),
    /// Run each slice as a task in this process (tests, tiny runs).
    InProcess,
}

impl Launcher {
    /// This executable as a worker process.
    pub fn current_exe() -> std::io::Result<Launcher> {
        std::env::current_exe().map(|exe| Launcher::Process(exe, None))
    }
}

/// What the workers produced together.
#[derive(Debug, Default)]
pub struct SwarmOutcome {
    pub total: Snapshot,
    pub series: TimeSeries,
    pub generator: Vec<GeneratorSample>,
    pub summaries: Vec<WorkerSummary>,
    /// One sentence per worker that failed.
    pub failures: Vec<String>,
    pub interrupted: bool,
    /// Reports that came after their second was sealed (in the total, not the series).
    pub late_reports: u64,
}

/// What the progress view needs besides the reports.
pub struct ProgressSpec {
    pub total: Duration,
    /// The load's phases, which say what the progress line labels each second with.
    pub phases: Vec<syncstorm_scenario::Phase>,
}

/// Runs the workers to the end (or `stop`) and merges what they report.
pub async fn run(
    tasks: Vec<WorkerTask>,
    launcher: Launcher,
    stop: CancellationToken,
    progress: &mut Progress,
    spec: &ProgressSpec,
) -> SwarmOutcome {
    let (tx, mut rx) = mpsc::channel::<(u32, Report)>(REPORT_BUFFER);
    let labels: Vec<String> = tasks.iter().map(|t| t.label.clone()).collect();
    let mut handles = Vec::new();
    let mut outcome = SwarmOutcome::default();
    for (index, task) in tasks.into_iter().enumerate() {
        match start(index as u32, task, &launcher, tx.clone(), stop.clone()) {
            Ok(handle) => handles.push(handle),
            Err(message) => outcome.failures.push(message),
        }
    }
    drop(tx);
    let mut merge = Merge::new(labels);
    while let Some((worker, report)) = rx.recv().await {
        merge.take(worker, report, &mut outcome, progress, spec);
    }
    for handle in handles {
        let _ = handle.await;
    }
    progress.finish();
    let (total, series, late) = merge.finish();
    outcome.total = total;
    outcome.series = series;
    outcome.late_reports = late;
    outcome.interrupted |= stop.is_cancelled();
    outcome
}

/// Starts one worker; its reports go to `tx` tagged with `index`.
fn start(
    index: u32,
    task: WorkerTask,
    launcher: &Launcher,
    tx: mpsc::Sender<(u32, Report)>,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, String> {
    match launcher {
        Launcher::InProcess => {
            let (inner_tx, mut inner_rx) = mpsc::channel(64);
            tokio::spawn(worker::run_slice(task, stop, inner_tx));
            Ok(tokio::spawn(async move {
                while let Some(report) = inner_rx.recv().await {
                    if tx.send((index, report)).await.is_err() {
                        return;
                    }
                }
            }))
        }
        Launcher::Process(exe, cpus) => {
            let label = task.label.clone();
            let mut child = spawn_process(exe, cpus.as_deref())
                .map_err(|e| format!("{label}: cannot start the worker process: {e}"))?;
            let stdin = child.stdin.take().ok_or("worker stdin missing")?;
            let stdout = child.stdout.take().ok_or("worker stdout missing")?;
            Ok(tokio::spawn(drive_process(
                index, task, child, stdin, stdout, tx, stop,
            )))
        }
    }
}

fn spawn_process(exe: &PathBuf, cpus: Option<&[usize]>) -> std::io::Result<Child> {
    let mut cmd = Command::new(exe);
    if let Some(cpus) = cpus {
        crate::cpu_sets::pin_command(&mut cmd, cpus);
    }
    cmd.arg(WORKER_SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a terminal's Ctrl-C reaches the coordinator only, which
        // then stops the workers in order (and still gets their last reports).
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}

async fn drive_process(
    index: u32,
    task: WorkerTask,
    mut child: Child,
    mut stdin: ChildStdin,
    mut stdout: tokio::process::ChildStdout,
    tx: mpsc::Sender<(u32, Report)>,
    stop: CancellationToken,
) {
    let label = task.label.clone();
    if let Err(e) = write_frame(&mut stdin, &task).await {
        let message = format!("{label}: could not hand the worker its task: {e}");
        let _ = tx.send((index, Report::Failed { message })).await;
        return;
    }
    let stopper = tokio::spawn(async move {
        stop.cancelled().await;
        let _ = write_frame(&mut stdin, &Control::Stop).await;
        stdin
    });
    loop {
        match read_frame::<_, Report>(&mut stdout).await {
            Ok(report) => {
                let last = matches!(report, Report::Done(_) | Report::Failed { .. });
                if tx.send((index, report)).await.is_err() || last {
                    break;
                }
            }
            Err(e) => {
                let message = format!("{label}: the worker process ended without a result ({e})");
                let _ = tx.send((index, Report::Failed { message })).await;
                break;
            }
        }
    }
    stopper.abort();
    if tokio::time::timeout(EXIT_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The stage a worker reports during its final quiet sync.
const QUIESCE_STAGE: &str = "quiesce";

/// Merges reports as they come.
struct Merge {
    labels: Vec<String>,
    aggregator: Aggregator,
    latest: BTreeMap<u32, u64>,
    finished: Vec<bool>,
    progress_second: BTreeMap<u64, (Snapshot, f64, String)>,
    errors_total: u64,
    /// Whether the start of the quiet sync was announced (once, when a worker first says so).
    quiet_sync_noted: bool,
}

impl Merge {
    fn new(labels: Vec<String>) -> Merge {
        let workers = labels.len();
        Merge {
            labels,
            aggregator: Aggregator::new(),
            latest: BTreeMap::new(),
            finished: vec![false; workers],
            progress_second: BTreeMap::new(),
            errors_total: 0,
            quiet_sync_noted: false,
        }
    }

    fn take(
        &mut self,
        worker: u32,
        report: Report,
        outcome: &mut SwarmOutcome,
        progress: &mut Progress,
        spec: &ProgressSpec,
    ) {
        let label = self
            .labels
            .get(worker as usize)
            .cloned()
            .unwrap_or_default();
        match report {
            Report::Ready { fd_limit } => {
                tracing::debug!("{label} ready with {fd_limit} open files allowed");
            }
            Report::Second {
                t,
                snapshot,
                saturation,
                stage,
            } => {
                outcome.generator.push(GeneratorSample {
                    t,
                    worker: label.clone(),
                    cpu_pct: saturation.cpu_percent,
                    loop_lag_ms: saturation.loop_lag_max_ms,
                    rss_bytes: saturation.rss_bytes,
                });
                self.errors_total += snapshot.total_errors();
                if stage == QUIESCE_STAGE && !self.quiet_sync_noted {
                    self.quiet_sync_noted = true;
                    progress.note("quiet sync: every device pushes and pulls once more …");
                }
                let entry = self.progress_second.entry(t).or_default();
                let _ = entry.0.merge(&snapshot);
                entry.1 = entry.1.max(saturation.cpu_percent);
                entry.2 = stage;
                if let Err(e) = self.aggregator.add(t, worker, snapshot) {
                    tracing::warn!("{label}: a snapshot could not be merged: {e}");
                }
                self.latest.insert(worker, t);
                self.seal(progress, spec);
            }
            Report::Done(summary) => {
                outcome.interrupted |= summary.interrupted;
                outcome.summaries.push(summary);
                self.mark_finished(worker);
            }
            Report::Failed { message } => {
                outcome.failures.push(message);
                self.mark_finished(worker);
            }
        }
    }

    fn mark_finished(&mut self, worker: u32) {
        if let Some(done) = self.finished.get_mut(worker as usize) {
            *done = true;
        }
    }

    /// Seals every second all running workers have reported (or that is `SEAL_LAG_S` old).
    fn seal(&mut self, progress: &mut Progress, spec: &ProgressSpec) {
        let running = (0..self.labels.len() as u32).filter(|w| !self.finished[*w as usize]);
        let all_reported = running
            .map(|w| self.latest.get(&w).map_or(0, |t| t + 1))
            .min()
            .unwrap_or(0);
        let newest = self.latest.values().max().copied().unwrap_or(0);
        let seal = all_reported.max(newest.saturating_sub(SEAL_LAG_S));
        let _ = self.aggregator.seal_before(seal);
        while let Some(entry) = self.progress_second.first_entry() {
            if *entry.key() >= seal {
                break;
            }
            let (t, (snap, cpu, stage)) = entry.remove_entry();
            self.show(progress, spec, t, &snap, cpu, stage);
        }
    }

    fn show(
        &self,
        progress: &mut Progress,
        spec: &ProgressSpec,
        t: u64,
        snap: &Snapshot,
        cpu: f64,
        stage: String,
    ) {
        let p99 = snap
            .ops
            .get(syncstorm_metrics::op::SYNC)
            .map(|o| o.summary().p99_ms)
            .or_else(|| {
                snap.ops
                    .values()
                    .map(|o| o.summary().p99_ms)
                    .reduce(f64::max)
            });
        let elapsed = Duration::from_secs(t);
        let frame = Frame {
            phase: crate::progress::phase_label(&spec.phases, elapsed, &stage),
            elapsed: Duration::from_secs(t + 1),
            total: spec.total,
            devices: snap.gauge(syncstorm_metrics::gauge::DEVICES_ACTIVE),
            sockets: snap.gauge(syncstorm_metrics::gauge::SOCKETS_OPEN),
            requests_per_s: snap.total_count(),
            errors_per_s: snap.total_errors(),
            errors_total: self.errors_total,
            p99_ms: p99,
            generator_cpu: cpu,
        };
        progress.show(&frame);
    }

    fn finish(self) -> (Snapshot, TimeSeries, u64) {
        let late = self.aggregator.late_snapshots();
        match self.aggregator.finish() {
            Ok((total, series)) => (total, series, late),
            Err(e) => {
                tracing::warn!("merging the last seconds failed: {e}");
                (Snapshot::default(), TimeSeries::default(), late)
            }
        }
    }
}
