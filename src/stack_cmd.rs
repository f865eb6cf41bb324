//! `syncstorm stack`: the embedded stack in the foreground, for any Supabase client to use.
//!
//! Once ready it prints env-file lines on stdout (`SUPABASE_URL=…`, keys, `DATABASE_URL=…`);
//! logs go to stderr. Ctrl-C or SIGTERM shuts it down and removes its PostgreSQL cluster.

use crate::cli::exit;
use std::io::Write;
use std::net::IpAddr;
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::config::DEFAULT_BCRYPT_COST;
use syncstorm_stack::{Stack, StackConfig};
use tokio_util::sync::CancellationToken;

/// Options of `syncstorm stack`.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Plan preset whose limits the stack enforces (free, pro, team, pro-large, unlimited, …).
    #[arg(long, default_value = "pro")]
    pub plan: String,
    /// Use this existing PostgreSQL (superuser URL) instead of starting a throwaway cluster.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Override one plan figure, e.g. `--set plan.rest_pool_size=20`; repeatable.
    #[arg(long = "set", value_name = "plan.FIELD=VALUE")]
    pub overrides: Vec<String>,
    /// Enforce the plan's /auth/v1/token rate limit (per client address; off by default).
    #[arg(long)]
    pub token_rate_limit: bool,
    /// bcrypt cost of new passwords (GoTrue uses 10; 4 keeps mass sign-ups cheap).
    #[arg(long, default_value_t = DEFAULT_BCRYPT_COST)]
    pub bcrypt_cost: u32,
    /// JWT secret to sign with (default: a fresh random one).
    #[arg(long)]
    pub jwt_secret: Option<String>,
    /// Loopback address to listen on; repeat to listen on several (default 127.0.0.1).
    #[arg(long = "host")]
    pub hosts: Vec<IpAddr>,
    /// Server processes, each on its own loopback addresses (127.0.0.1..N unless --host gives
    /// more); the plan's caps are counted across all of them and the first holds the one REST
    /// and Auth pool the others forward to. Several hold more than one process's open-files
    /// limit of websockets.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The throwaway cluster's crash safety: `on` (fsync and full-page writes, as Supabase) or
    /// `off` (faster, and flattering to every write).
    #[arg(long, value_parser = ["on", "off"], default_value = "on")]
    pub durability: String,
}

/// Runs the stack until Ctrl-C or SIGTERM; returns the process exit code.
pub fn run(args: StackArgs) -> i32 {
    crate::logging::init("info");
    syncstorm_stack::workers::raise_fd_limit();
    let config = match config_from(args) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("syncstorm stack: {msg}");
            return exit::BAD_INPUT;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syncstorm stack: cannot start the async runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("syncstorm stack: {e}");
            if e.is_missing_postgres() {
                exit::BAD_INPUT
            } else {
                exit::RUN_FAILED
            }
        }
    }
}

/// The hidden `__stack-worker` subcommand: one extra server process of `stack --workers N`.
pub fn worker() -> i32 {
    crate::logging::init("info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syncstorm stack worker: cannot start the async runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    match runtime.block_on(syncstorm_stack::workers::run_worker()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("syncstorm stack worker: {e}");
            exit::RUN_FAILED
        }
    }
}

async fn serve(config: StackConfig) -> Result<(), syncstorm_stack::StackError> {
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let stack = match Stack::start(config, cancel.clone()).await {
        Ok(stack) => stack,
        Err(e) => {
            signals.abort();
            return Err(e);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(stack.env_lines().as_bytes());
    let _ = out.flush();
    drop(out);
    tracing::info!("serving; press Ctrl-C to stop");
    let result = stack.wait().await;
    signals.abort();
    result
}

/// Cancels on the first Ctrl-C (SIGINT) or SIGTERM.
async fn cancel_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!(
            "cannot listen for signals; stop the stack with SIGKILL only as a last resort"
        );
        return;
    };
    tokio::select! {
        _ = int.recv() => tracing::info!("interrupted; shutting down"),
        _ = term.recv() => tracing::info!("terminated; shutting down"),
    }
    cancel.cancel();
}

fn config_from(args: StackArgs) -> Result<StackConfig, String> {
    let mut plan = SupabasePlan::preset(&args.plan).map_err(|e| e.to_string())?;
    for item in &args.overrides {
        let (field, value) = item.split_once('=').ok_or_else(|| {
            format!("--set {item:?} is not FIELD=VALUE, e.g. plan.rest_pool_size=20")
        })?;
        let field = field.trim().strip_prefix("plan.").unwrap_or(field.trim());
        plan.set(field, value.trim()).map_err(|e| e.to_string())?;
    }
    let mut config = StackConfig::new(plan);
    config.port = args.port;
    config.database_url = args.database_url;
    config.token_rate_limit = args.token_rate_limit;
    config.bcrypt_cost = args.bcrypt_cost;
    config.jwt_secret = args.jwt_secret;
    config.workers = args.workers;
    config.durable = args.durability == "on";
    if !args.hosts.is_empty() {
        config.hosts = args.hosts;
    }
    if config.token_rate_limit && config.plan.auth_token_rate_limit.is_none() {
        return Err(format!(
            "--token-rate-limit was given but plan {} has no token limit; add --set plan.auth_token_rate_limit=1800/3600/30",
            config.plan.name
        ));
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: StackArgs,
    }

    fn parse(argv: &[&str]) -> Result<StackConfig, String> {
        let wrapper =
            Wrapper::try_parse_from(std::iter::once("stack").chain(argv.iter().copied())).unwrap();
        config_from(wrapper.args)
    }

    #[test]
    fn flags_shape_the_config() {
        let c = parse(&[
            "--plan",
            "free",
            "--set",
            "plan.rest_pool_size=20",
            "--set",
            "realtime.max_connections=7",
            "--port",
            "5999",
        ])
        .unwrap();
        assert_eq!(
            (c.plan.name.as_str(), c.plan.rest_pool_size, c.port),
            ("free", 20, 5999)
        );
        assert_eq!(c.plan.realtime.max_connections, 7);
        assert!(!c.token_rate_limit, "the token limit is off unless asked");
        assert!(
            parse(&["--token-rate-limit"])
                .unwrap()
                .effective_token_rate_limit()
                .is_some()
        );
    }

    #[test]
    fn mistakes_get_one_sentence() {
        assert!(
            parse(&["--plan", "gold"])
                .unwrap_err()
                .contains("unknown plan")
        );
        assert!(
            parse(&["--set", "rest_pool_size"])
                .unwrap_err()
                .contains("FIELD=VALUE")
        );
        assert!(
            parse(&["--set", "plan.nope=1"])
                .unwrap_err()
                .contains("unknown plan field")
        );
        assert!(
            parse(&["--plan", "unlimited", "--token-rate-limit"])
                .unwrap_err()
                .contains("no token limit")
        );
        assert!(
            parse(&["--host", "10.0.0.1"])
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            parse(&["--workers", "0"])
                .unwrap_err()
                .contains("workers is out of range")
        );
        assert!(
            parse(&["--bcrypt-cost", "2"])
                .unwrap_err()
                .contains("4 to 31")
        );
    }
}
