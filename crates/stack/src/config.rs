//! What the embedded stack is started with: the plan, where to listen, and the knobs that make
//! large runs feasible (bcrypt cost, token rate limit on or off).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;
use syncstorm_plans::{RateLimit, SupabasePlan};

/// GoTrue hashes with bcrypt cost 10 (≈70 ms per sign-in on one core). The embedded stack
/// defaults to the minimum, 4 (≈1 ms), so 100k sign-ins cost minutes of CPU, not an hour;
/// set it to 10 to load the auth service like the real one does.
pub const DEFAULT_BCRYPT_COST: u32 = 4;

/// PostgREST's `db-max-rows` in Supabase's compose: no response carries more rows.
pub const DEFAULT_MAX_ROWS: u32 = 1_000;

/// Most server processes one stack runs (each on its own loopback addresses).
pub const MAX_WORKERS: usize = 32;

/// GoTrue's default `GOTRUE_JWT_EXP`.
pub const DEFAULT_JWT_EXPIRY: Duration = Duration::from_secs(3_600);

/// Configuration of one embedded stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Limits to enforce (DB connections, REST pool, realtime caps, token rate limit).
    pub plan: SupabasePlan,
    /// Loopback addresses to listen on; the first one names the URL. Several addresses let a
    /// local swarm open more than one address's worth of ephemeral ports.
    pub hosts: Vec<IpAddr>,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Use this existing database (a superuser URL) instead of starting a throwaway cluster.
    pub database_url: Option<String>,
    /// With `database_url`: the login REST connects as (e.g. `authenticator`); default the same.
    pub rest_database_url: Option<String>,
    /// HS256 secret for every JWT; `None` makes a random one.
    pub jwt_secret: Option<String>,
    /// Lifetime of the access tokens Auth issues.
    pub jwt_expiry: Duration,
    /// bcrypt cost for new passwords (4..=31).
    pub bcrypt_cost: u32,
    /// Enforce the plan's `/auth/v1/token` rate limit. Off by default: a local swarm comes
    /// from one address, so a per-address limit would throttle the whole run, not one device.
    pub token_rate_limit: bool,
    /// Row cap of every REST response (PostgREST's `db-max-rows`).
    pub max_rows: u32,
    /// Server processes (see [`crate::workers`]); 1 serves everything in this process.
    pub workers: usize,
    /// The throwaway cluster's crash safety (`fsync`, `full_page_writes`): on, as Supabase.
    pub durable: bool,
    /// The executable worker processes run (`<program> __stack-worker`); default this one.
    pub worker_program: Option<PathBuf>,
    /// Sign the API keys as of this Unix time (workers reuse the parent's); default now.
    pub keys_issued_at: Option<i64>,
    /// HTTP/1.1 connections each worker process 2..N may hold to the first for forwarding
    /// REST and Auth; requests beyond share one HTTP/2 connection (0 sends all over HTTP/2).
    pub forward_http1_connections: usize,
    /// Set in worker processes 2..N only: forward REST and Auth to the parent and count the
    /// realtime caps in its counters (see [`crate::workers`]).
    pub worker_link: Option<crate::workers::WorkerLink>,
}

impl StackConfig {
    /// Defaults for a plan: free port on 127.0.0.1, throwaway cluster, random secret.
    pub fn new(plan: SupabasePlan) -> Self {
        StackConfig {
            plan,
            hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            port: 0,
            database_url: None,
            rest_database_url: None,
            jwt_secret: None,
            jwt_expiry: DEFAULT_JWT_EXPIRY,
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            token_rate_limit: false,
            max_rows: DEFAULT_MAX_ROWS,
            workers: 1,
            durable: true,
            worker_program: None,
            keys_issued_at: None,
            forward_http1_connections: crate::forward::HTTP1_CONNECTIONS,
            worker_link: None,
        }
    }

    /// The token-endpoint limit in force: the plan's, when enforcement is on.
    pub fn effective_token_rate_limit(&self) -> Option<RateLimit> {
        self.plan
            .auth_token_rate_limit
            .filter(|_| self.token_rate_limit)
    }

    /// Checks the values a user can get wrong; one sentence per mistake.
    pub fn validate(&self) -> Result<(), String> {
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(format!(
                "bcrypt cost {} is out of range; use 4 to 31",
                self.bcrypt_cost
            ));
        }
        if self.hosts.is_empty() {
            return Err("the stack needs at least one address to listen on".to_string());
        }
        if let Some(host) = self.hosts.iter().find(|h| !h.is_loopback()) {
            return Err(format!(
                "{host} is not a loopback address; the embedded stack listens on loopback only"
            ));
        }
        if !(1..=MAX_WORKERS).contains(&self.workers) {
            return Err(format!(
                "{} workers is out of range; use 1 to {MAX_WORKERS}",
                self.workers
            ));
        }
        if let Some(link) = &self.worker_link
            && link.slot >= MAX_WORKERS
        {
            return Err(format!(
                "worker slot {} is out of range; a stack has at most {MAX_WORKERS} workers",
                link.slot
            ));
        }
        if self.max_rows == 0 {
            return Err("max_rows must be at least 1".to_string());
        }
        Ok(())
    }
}
