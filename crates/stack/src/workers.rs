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
//! - **Realtime:** each worker polls its own temporary wal2json slot (the cluster gets
//!   `workers + 2` slots), so every worker sees every change and authorizes for its own
//!   subscribers; no fan-out channel between processes. The cost is N pollers on the WAL.
//! - **Caps and pools:** each worker enforces a per-worker share of the plan: connections,
//!   joins/s and events/s divided by N, REST and Auth pools divided by N (each at least 1), so
//!   the totals stay the plan's. A share is slightly stricter than one global count when load
//!   is uneven across workers; the swarm spreads sockets over every address evenly.

use crate::config::StackConfig;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Duration;
use syncstorm_plans::SupabasePlan;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The hidden subcommand a worker process runs.
pub const WORKER_SUBCOMMAND: &str = "__stack-worker";
/// How long a worker may take to report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker gets to drain after its stdin closes before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a worker process needs, sent as JSON on its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The plan with this worker's share of pools and caps already applied.
    pub plan: SupabasePlan,
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
        config
    }
}

/// One worker's share of the plan: pools and realtime caps divided by `workers` (at least 1).
pub fn plan_share(plan: &SupabasePlan, workers: usize) -> SupabasePlan {
    let n = workers.max(1) as u32;
    let share = |v: u32| (v / n).max(1);
    let mut plan = plan.clone();
    plan.rest_pool_size = share(plan.rest_pool_size);
    plan.auth_pool_size = share(plan.auth_pool_size);
    plan.realtime.max_connections = share(plan.realtime.max_connections);
    plan.realtime.joins_per_second = share(plan.realtime.joins_per_second);
    plan.realtime.events_per_second = share(plan.realtime.events_per_second);
    plan
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

/// A running worker process; its stdin is the lifeline.
pub struct WorkerProcess {
    pub index: usize,
    pub url: String,
    child: Child,
    lifeline: Option<ChildStdin>,
}

/// Starts worker `index` (2-based numbering in messages, like the addresses) and waits for its
/// `READY` line.
pub async fn spawn_worker(
    program: &std::path::Path,
    index: usize,
    spec: &WorkerSpec,
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
    Ok(WorkerProcess {
        index,
        url,
        child,
        lifeline: Some(stdin),
    })
}

impl WorkerProcess {
    /// Closes the lifeline so the worker drains and exits; kills it if it takes too long.
    pub async fn stop(mut self) {
        drop(self.lifeline.take());
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if !status.success() => {
                tracing::warn!("stack worker {} exited with {status}", self.index)
            }
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(
                    "stack worker {} did not stop in time; killing it",
                    self.index
                );
                let _ = self.child.kill().await;
            }
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

/// Parent side: starts workers 2..N (one per address group after the first) side by side,
/// on the parent's port, database and keys; stops those that started if one fails.
pub(crate) async fn start_children(
    own: &StackConfig,
    host_groups: &[Vec<IpAddr>],
    port: u16,
    database: &crate::server::Database,
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
    let spec_for = |hosts: &Vec<IpAddr>| WorkerSpec {
        plan: own.plan.clone(),
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
        let spec = spec_for(hosts);
        let program = program.clone();
        async move { spawn_worker(&program, i + 1, &spec).await }
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
    fn shares_keep_the_plan_totals_and_never_reach_zero() {
        let plan = SupabasePlan::preset("free").unwrap();
        let share = plan_share(&plan, 4);
        assert_eq!(
            share.realtime.max_connections,
            plan.realtime.max_connections / 4
        );
        assert_eq!(share.rest_pool_size, (plan.rest_pool_size / 4).max(1));
        let tiny = plan_share(&plan, 100_000);
        assert_eq!(
            (tiny.auth_pool_size, tiny.realtime.joins_per_second),
            (1, 1)
        );
        assert_eq!(plan_share(&plan, 1), plan);
    }

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
