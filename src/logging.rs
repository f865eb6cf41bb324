//! The one logging setup of every command: to stderr, colours only on a terminal (and never
//! under `NO_COLOR`), PostgreSQL's NOTICEs (which tokio-postgres logs at INFO) only when
//! `RUST_LOG` asks for them.

use std::io::IsTerminal;

/// Installs the subscriber; `default` is the level when `RUST_LOG` is not set.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default},tokio_postgres::connection=warn"))
    });
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}
