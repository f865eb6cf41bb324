//! Several stack processes, so the stack can hold more websockets than one process's 20,000
//! open files allow.
//!
//! The parent boots the cluster and applies the schema once, serves as worker 1, and starts
//! workers 2..N as child processes of the same binary (`<program> __stack-worker`). A child
//! reads its [`WorkerSpec`] as one JSON line on stdin (never the command line: it holds the JWT
//! secret), serves the full API (Auth, REST, Realtime, `/metrics`) on its own loopback
//! addresses with the parent's port, keys and database, prints `READY <url>` on stdout, and
//! stops when its stdin reaches EOF — which also happens when the parent dies, however it dies.
//!
//! Design choices:
//! - **Realtime:** the parent polls the stack's one slot (wal2json, or pgoutput without it)
//!   and fans every batch out to the workers over a loopback socket
//!   ([`crate::realtime::fanout`]); each worker authorizes and delivers for its own
//!   subscribers. PostgreSQL decodes the WAL once, as for Supabase's one poller per tenant.
//! - **Caps, global:** the plan's realtime caps are one count across all workers, as Supabase
//!   counts per tenant. The parent creates a small file of counters (a temporary file, removed
//!   when the stack stops) that every worker maps shared ([`crate::realtime::region`]):
//!   connections are taken with a compare-and-swap below the cap and given back when a socket
//!   ends however it ends; joins/s and events/s are one packed (second, count) word each.
//!   Each worker also counts its own connections in its own slot. A worker that dies takes its
//!   sockets with it, so the parent, which watches every child, subtracts that worker's slot
//!   from the total when it exits: no place leaks. (The only gap is a worker killed between
//!   the two adjacent atomic updates of one connect, which can leave one place taken.)
//! - **Pools, one each:** the parent alone owns the REST and Auth pools, sized by the plan,
//!   and serves them on private loopback listeners too; workers 2..N forward `/rest/v1/*`
//!   and `/auth/v1/*` there ([`crate::forward`]: keep-alive HTTP/1.1, overflow on one HTTP/2
//!   connection), as Kong proxies to the one PostgREST and the one GoTrue. So every request
//!   waits in one FIFO queue for one pool of the plan's size, and only the parent's
//!   `/metrics` exports pool gauges.

use crate::config::StackConfig;
use crate::realtime::region::SharedCounters;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use syncstorm_plans::SupabasePlan;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The hidden subcommand a worker process runs.
pub const WORKER_SUBCOMMAND: &str = "__stack-worker";
/// How long a worker may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker gets to drain after its stdin closes before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a worker process needs, sent as JSON on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The stack's plan (caps are counted across workers; the pools live in the parent).
    pub plan: SupabasePlan,
    pub link: WorkerLink,
    pub hosts: Vec<IpAddr>,
    pub port: u16,
    pub superuser_url: String,
    pub rest_url: String,
    pub jwt_secret: String,
    /// When the parent signed its API keys, so the worker's keys are byte-identical.
    pub keys_issued_at: i64,
    pub jwt_expiry_secs: u64,
    pub bcrypt_cost: u32,
    pub token_rate_limit: bool,
    pub max_rows: u32,
}

impl WorkerSpec {
    /// The single-process configuration a worker starts its stack with.
    pub fn into_config(self) -> StackConfig {
        let mut config = StackConfig::new(self.plan);
        config.hosts = self.hosts;
        config.port = self.port;
        config.database_url = Some(self.superuser_url);
        config.rest_database_url = Some(self.rest_url);
        config.jwt_secret = Some(self.jwt_secret);
        config.keys_issued_at = Some(self.keys_issued_at);
        config.jwt_expiry = Duration::from_secs(self.jwt_expiry_secs);
        config.bcrypt_cost = self.bcrypt_cost;
        config.token_rate_limit = self.token_rate_limit;
        config.max_rows = self.max_rows;
        config.worker_link = Some(self.link);
        config
    }
}

/// What ties a worker process to its parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerLink {
    /// The parent's private REST/Auth listeners, where this worker forwards those requests:
    /// HTTP/1.1 and HTTP/2 (see [`crate::forward`]).
    pub upstream_http1: SocketAddr,
    pub upstream_h2: SocketAddr,
    /// The realtime cap counters every worker maps.
    pub counters_path: PathBuf,
    /// This worker's slot among the counters (0-based; the parent is 0).
    pub slot: usize,
    /// HTTP/1.1 connections it may hold to the parent; the overflow goes over HTTP/2.
    pub http1_connections: usize,
    /// Where the parent serves its change capture (the stack polls one slot, not one each).
    #[serde(default)]
    pub realtime_capture: Option<SocketAddr>,
}

/// The addresses each worker listens on: `hosts` dealt round-robin, first extended with further
/// 127.0.0.k addresses until every worker has at least one.
pub fn assign_hosts(hosts: &[IpAddr], workers: usize) -> Vec<Vec<IpAddr>> {
    let workers = workers.max(1);
    let mut all = hosts.to_vec();
    let mut k = 1u8;
    while all.len() < workers && k < u8::MAX {
        let candidate = IpAddr::V4(Ipv4Addr::new(127, 0, 0, k));
        if !all.contains(&candidate) {
            all.push(candidate);
        }
        k += 1;
    }
    let mut out = vec![Vec::new(); workers];
    for (i, host) in all.into_iter().enumerate() {
        out[i % workers].push(host);
    }
    out
}

/// Raises this process's soft open-files limit to the hard one; returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Why a worker process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start stack worker process {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("stack worker {index} did not report ready: {reason}")]
    NotReady { index: usize, reason: String },
}

/// A running worker process; its stdin is the lifeline. A watcher task owns the child: when
/// the child exits, for whatever reason, it gives the worker's connection places back.
pub struct WorkerProcess {
    pub index: usize,
    pub url: String,
    lifeline: Option<ChildStdin>,
    kill: Option<oneshot::Sender<()>>,
    watcher: JoinHandle<()>,
}

/// Starts worker `index` (1-based in messages, like the addresses; its counter slot is
/// `spec.link.slot`) and waits for its `READY` line.
pub async fn spawn_worker(
    program: &Path,
    index: usize,
    spec: &WorkerSpec,
    counters: SharedCounters,
) -> Result<WorkerProcess, WorkerError> {
    let mut child = Command::new(program)
        .arg(WORKER_SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| WorkerError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    let not_ready = |reason: String| WorkerError::NotReady { index, reason };
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| not_ready("no stdin".into()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| not_ready("no stdout".into()))?;
    let mut line = serde_json::to_string(spec).map_err(|e| not_ready(e.to_string()))?;
    line.push('\n');
    stdin
        .write_all(line.as_bytes())
        .await
        .map_err(|e| not_ready(format!("cannot send its configuration: {e}")))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| not_ready(format!("no answer within {READY_TIMEOUT:?}")))?
        .map_err(|e| not_ready(e.to_string()))?;
    let url = match ready.as_deref().and_then(|l| l.strip_prefix("READY ")) {
        Some(url) => url.trim().to_string(),
        None => return Err(not_ready("it exited before serving (see its log)".into())),
    };
    let (kill, killed) = oneshot::channel();
    let watcher = tokio::spawn(watch(child, index, spec.link.slot, counters, killed));
    Ok(WorkerProcess {
        index,
        url,
        lifeline: Some(stdin),
        kill: Some(kill),
        watcher,
    })
}

/// Waits for the child to exit (or kills it when told to), then gives back the connection
/// places it still held: its sockets died with it.
async fn watch(
    mut child: Child,
    index: usize,
    slot: usize,
    counters: SharedCounters,
    killed: oneshot::Receiver<()>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = killed => {
            let _ = child.kill().await;
            child.wait().await
        }
    };
    match status {
        Ok(status) if !status.success() => {
            tracing::warn!("stack worker {index} exited with {status}")
        }
        Err(e) => tracing::warn!("stack worker {index} could not be waited for: {e}"),
        Ok(_) => {}
    }
    let given_back = counters.release_worker(slot);
    if given_back > 0 {
        tracing::warn!(
            "stack worker {index} held {given_back} realtime connections when it exited; their places are free again"
        );
    }
}

impl WorkerProcess {
    /// Closes the lifeline so the worker drains and exits; kills it if it takes too long.
    pub async fn stop(mut self) {
        drop(self.lifeline.take());
        if tokio::time::timeout(STOP_TIMEOUT, &mut self.watcher)
            .await
            .is_err()
        {
            tracing::warn!(
                "stack worker {} did not stop in time; killing it",
                self.index
            );
            if let Some(kill) = self.kill.take() {
                let _ = kill.send(());
            }
            let _ = self.watcher.await;
        }
    }
}

/// Child side: reads the spec line from stdin.
pub async fn read_spec<R: tokio::io::AsyncRead + Unpin>(
    stdin: &mut BufReader<R>,
) -> Result<WorkerSpec, String> {
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read the worker configuration from stdin: {e}"))?;
    serde_json::from_str(&line)
        .map_err(|e| format!("the worker configuration on stdin is not valid: {e}"))
}

/// Child side: resolves once stdin reaches EOF (the parent closed it or died).
pub async fn lifeline_closed<R: tokio::io::AsyncRead + Unpin>(mut stdin: BufReader<R>) {
    let mut sink = [0u8; 256];
    while let Ok(n) = stdin.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// Where children reach the parent: its private REST/Auth listeners and the cap counters.
pub(crate) struct ParentLink<'a> {
    pub upstream_http1: SocketAddr,
    pub upstream_h2: SocketAddr,
    pub counters: &'a SharedCounters,
    pub counters_path: &'a Path,
    pub realtime_capture: Option<SocketAddr>,
}

/// Parent side: starts workers 2..N (one per address group after the first) side by side,
/// on the parent's port, database and keys; stops those that started if one fails.
pub(crate) async fn start_children(
    own: &StackConfig,
    host_groups: &[Vec<IpAddr>],
    port: u16,
    database: &crate::server::Database,
    parent: ParentLink<'_>,
) -> Result<Vec<WorkerProcess>, WorkerError> {
    if host_groups.len() < 2 {
        return Ok(Vec::new());
    }
    let program = match &own.worker_program {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|source| WorkerError::Spawn {
            program: "the current executable".into(),
            source,
        })?,
    };
    let spec_for = |slot: usize, hosts: &Vec<IpAddr>| WorkerSpec {
        plan: own.plan.clone(),
        link: WorkerLink {
            upstream_http1: parent.upstream_http1,
            upstream_h2: parent.upstream_h2,
            counters_path: parent.counters_path.to_path_buf(),
            slot,
            http1_connections: own.forward_http1_connections,
            realtime_capture: parent.realtime_capture,
        },
        hosts: hosts.clone(),
        port,
        superuser_url: database.superuser_url.clone(),
        rest_url: database.rest_url.clone(),
        jwt_secret: own.jwt_secret.clone().unwrap_or_default(),
        keys_issued_at: own.keys_issued_at.unwrap_or_default(),
        jwt_expiry_secs: own.jwt_expiry.as_secs(),
        bcrypt_cost: own.bcrypt_cost,
        token_rate_limit: own.token_rate_limit,
        max_rows: own.max_rows,
    };
    let starts = host_groups.iter().enumerate().skip(1).map(|(i, hosts)| {
        let spec = spec_for(i, hosts);
        let program = program.clone();
        let counters = parent.counters.clone();
        async move { spawn_worker(&program, i + 1, &spec, counters).await }
    });
    let mut started = Vec::new();
    let mut failure = None;
    for result in futures_util::future::join_all(starts).await {
        match result {
            Ok(worker) => started.push(worker),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        None => Ok(started),
        Some(e) => {
            futures_util::future::join_all(started.into_iter().map(WorkerProcess::stop)).await;
            Err(e)
        }
    }
}

/// Child side (`__stack-worker`): reads the spec on stdin, serves, prints `READY <url>`, and
/// stops when stdin closes or on SIGTERM/SIGINT.
pub async fn run_worker() -> Result<(), String> {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let spec = read_spec(&mut stdin).await?;
    raise_fd_limit();
    let cancel = tokio_util::sync::CancellationToken::new();
    let stack = crate::Stack::start(spec.into_config(), cancel.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = tokio::io::stdout();
    let ready = format!("READY {}\n", stack.url);
    out.write_all(ready.as_bytes())
        .await
        .and(out.flush().await)
        .map_err(|e| format!("cannot report ready: {e}"))?;
    let watchdog = tokio::spawn(async move {
        let terminated = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                },
                _ => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = lifeline_closed(stdin) => {},
            _ = terminated => {},
        }
        cancel.cancel();
    });
    let result = stack.wait().await.map_err(|e| e.to_string());
    watchdog.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_gets_an_address() {
        let one = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let split = assign_hosts(&one, 3);
        assert_eq!(split.len(), 3);
        assert!(split.iter().all(|h| h.len() == 1));
        assert_eq!(split[2][0], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        let many: Vec<IpAddr> = (1..=5)
            .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)))
            .collect();
        let split = assign_hosts(&many, 2);
        assert_eq!((split[0].len(), split[1].len()), (3, 2));
        assert_eq!(assign_hosts(&many, 1), vec![many]);
    }
}
