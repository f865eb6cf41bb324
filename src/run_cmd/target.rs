//! Getting a target ready for a run: boot the embedded stack on enough loopback addresses, or
//! resolve a real Supabase project through the guard. Says what the budget check needs.

use std::net::{IpAddr, Ipv4Addr};

use syncstorm_scenario::{RunPlan, TargetKind};
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use tokio_util::sync::CancellationToken;

use super::RunError;
use crate::swarm::budget;
use crate::swarm::task::Endpoints;

/// Most loopback addresses the embedded stack is asked to listen on.
const MAX_ADDRESSES: u64 = 16;
/// File descriptors each stack process keeps for PostgreSQL pools, logs and the runtime.
const STACK_FD_RESERVE: u64 = 1_024;
/// Websockets one stack process is given at most, well inside its 20,000 open files.
const SOCKETS_PER_STACK_PROCESS: u64 = 16_000;

/// A target ready to take traffic.
pub struct Prepared {
    pub endpoints: Endpoints,
    pub service_role_key: String,
    /// The embedded stack, kept alive for the run.
    pub stack: Option<RunningStack>,
    pub metrics_urls: Vec<String>,
    pub probe_source: String,
    /// What the result says of the target.
    pub info: crate::result::TargetInfo,
    /// The embedded stack's JWT secret and Auth settings: setup may then go by SQL and mint
    /// the stored sessions itself (`crate::fast_setup`). `None` for a real project.
    pub stack_auth: Option<crate::fast_setup::StackAuth>,
    /// The cores the server side and the harness were given (set by the caller).
    pub cpu_sets: Option<crate::cpu_sets::CpuSets>,
}

/// Loopback addresses needed so `sockets` connections fit the ephemeral ports (with 10 %
/// headroom), between 1 and `MAX_ADDRESSES`.
pub fn addresses_for(sockets: u64) -> u64 {
    let usable = budget::ephemeral_ports() * 9 / 10;
    sockets.div_ceil(usable.max(1)).clamp(1, MAX_ADDRESSES)
}

/// Stack processes so each holds at most `SOCKETS_PER_STACK_PROCESS` sockets.
pub fn stack_workers_for(sockets: u64) -> u64 {
    sockets
        .div_ceil(SOCKETS_PER_STACK_PROCESS)
        .clamp(1, syncstorm_stack::config::MAX_WORKERS as u64)
}

/// Loopback addresses for the embedded stack: enough for the ephemeral ports and at least one
/// per stack process, rounded up to a multiple of the processes so each gets as many (the
/// swarm spreads connections evenly over addresses, so each process gets an even share).
pub fn stack_addresses_for(sockets: u64) -> u64 {
    let workers = stack_workers_for(sockets);
    addresses_for(sockets).max(workers).div_ceil(workers) * workers
}

/// What the budget check may assume before the target is up: destination addresses and the
/// server side's connection capacity (every stack process has the same fd limit as this one).
pub fn expected(plan: &RunPlan, sockets: u64) -> (u64, Option<u64>) {
    match plan.target.kind {
        TargetKind::Embedded => (
            stack_addresses_for(sockets),
            Some(
                stack_workers_for(sockets)
                    * budget::raise_fd_limit().saturating_sub(STACK_FD_RESERVE),
            ),
        ),
        TargetKind::Supabase { .. } => (1, None),
    }
}

/// Boots or resolves the plan's target.
pub async fn prepare(
    plan: &RunPlan,
    sockets: u64,
    database_url: Option<String>,
    allow_hosts: &[String],
    cancel: &CancellationToken,
) -> Result<Prepared, RunError> {
    match &plan.target.kind {
        TargetKind::Embedded => boot_embedded(plan, sockets, database_url, cancel).await,
        TargetKind::Supabase {
            url,
            allow_hosts: scenario_hosts,
            database_url: scenario_db,
        } => {
            let mut hosts = scenario_hosts.clone();
            hosts.extend_from_slice(allow_hosts);
            let target = crate::target::resolve_supabase(
                Some(url),
                &hosts,
                database_url.or_else(|| scenario_db.clone()),
                |name| std::env::var(name).ok(),
            )
            .map_err(|e| RunError::BadInput(e.to_string()))?;
            let stack_auth = standalone_stack_auth(target.database_url.as_deref()).await;
            Ok(Prepared {
                endpoints: Endpoints {
                    base_url: target.url.as_str().trim_end_matches('/').to_owned(),
                    addresses: Vec::new(),
                    sources: Vec::new(),
                    anon_key: target.anon_key,
                    database_url: target.database_url.clone(),
                },
                service_role_key: target.service_role_key,
                stack: None,
                metrics_urls: Vec::new(),
                probe_source: match &target.database_url {
                    Some(db) => format!("--database-url {}", crate::target::redact_url(db)),
                    None => "none (no database URL given)".to_owned(),
                },
                info: crate::result::TargetInfo {
                    kind: if stack_auth.is_some() {
                        "embedded"
                    } else {
                        "supabase"
                    }
                    .into(),
                    realtime_decoder: None,
                    durable: None,
                    model: None,
                },
                stack_auth,
                cpu_sets: None,
            })
        }
    }
}

/// A standalone `syncstorm stack` (shards side by side, or a CI job's stack) is set up by SQL
/// as the in-process one is, when the run has what that takes: the stack's JWT secret
/// (`SUPABASE_JWT_SECRET`, one of the lines the stack prints) and its database URL, and the
/// database is a syncstorm stack's (its `syncstorm_realtime` schema says so). A real Supabase
/// project keeps the admin API: its auth schema is GoTrue's, which this SQL does not write.
async fn standalone_stack_auth(database_url: Option<&str>) -> Option<crate::fast_setup::StackAuth> {
    let jwt_secret = std::env::var(crate::target::ENV_JWT_SECRET)
        .ok()
        .filter(|s| !s.is_empty())?;
    let (client, connection) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_postgres::connect(database_url?, tokio_postgres::NoTls),
    )
    .await
    .ok()?
    .ok()?;
    let driving = tokio::spawn(connection);
    let ours = client
        .query_one(
            "select exists (select 1 from pg_namespace where nspname = 'syncstorm_realtime')",
            &[],
        )
        .await
        .ok()
        .is_some_and(|row| row.get::<_, bool>(0));
    drop(client);
    driving.abort();
    ours.then_some(crate::fast_setup::StackAuth {
        jwt_secret,
        // The stack's defaults; a token is checked by its signature, so another expiry set on
        // the stack only changes how long the minted sessions last.
        jwt_expiry: syncstorm_stack::config::DEFAULT_JWT_EXPIRY,
        bcrypt_cost: syncstorm_stack::config::DEFAULT_BCRYPT_COST,
    })
}

async fn boot_embedded(
    plan: &RunPlan,
    sockets: u64,
    database_url: Option<String>,
    cancel: &CancellationToken,
) -> Result<Prepared, RunError> {
    let count = stack_addresses_for(sockets);
    let hosts: Vec<IpAddr> = (1..=count)
        .map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n as u8)))
        .collect();
    let mut config = StackConfig::new(plan.target.plan.clone());
    config.hosts = hosts.clone();
    config.bcrypt_cost = plan.population.password_hash_cost.clamp(4, 31);
    config.database_url = database_url;
    config.workers = stack_workers_for(sockets) as usize;
    config.durable = plan.target.durable;
    let stack = Stack::start(config, cancel.child_token())
        .await
        .map_err(|e| match e.is_missing_postgres() {
            true => RunError::BadInput(e.to_string()),
            false => RunError::Failed(format!("the embedded stack did not start: {e}")),
        })?;
    Ok(Prepared {
        endpoints: Endpoints {
            base_url: stack.url.clone(),
            addresses: hosts,
            sources: Vec::new(),
            anon_key: stack.anon_key.clone(),
            database_url: Some(stack.database_url.clone()),
        },
        service_role_key: stack.service_role_key.clone(),
        metrics_urls: stack.metrics_urls.clone(),
        probe_source: "embedded stack".to_owned(),
        info: crate::result::TargetInfo {
            kind: "embedded".into(),
            realtime_decoder: Some(stack.realtime_decoder.plugin().to_owned()),
            durable: Some(plan.target.durable),
            model: None,
        },
        stack_auth: Some(crate::fast_setup::StackAuth {
            jwt_secret: stack.jwt_secret.clone(),
            jwt_expiry: stack.shared.config.jwt_expiry,
            bcrypt_cost: stack.shared.config.bcrypt_cost,
        }),
        cpu_sets: None,
        stack: Some(stack),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_grow_with_sockets_and_stay_bounded() {
        assert_eq!(addresses_for(0), 1);
        assert_eq!(addresses_for(2_000), 1);
        let ports = budget::ephemeral_ports() * 9 / 10;
        assert_eq!(addresses_for(ports + 1), 2);
        assert_eq!(addresses_for(10_000_000), MAX_ADDRESSES);
    }

    #[test]
    fn stack_processes_hold_at_most_16k_sockets_each_with_even_addresses() {
        assert_eq!(stack_workers_for(1_000), 1);
        assert_eq!(stack_workers_for(16_000), 1);
        assert_eq!(stack_workers_for(16_001), 2);
        assert_eq!(stack_workers_for(100_000), 7);
        for sockets in [1_000, 30_000, 100_000, 400_000] {
            let (workers, addresses) = (stack_workers_for(sockets), stack_addresses_for(sockets));
            assert_eq!(addresses % workers, 0, "{sockets}");
            assert!(addresses >= addresses_for(sockets), "{sockets}");
        }
    }
}
