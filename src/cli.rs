//! The command line: clap definitions and dispatch. No logic lives here.

use clap::{Parser, Subcommand};

/// Load-testing and scalability simulator for the FinOS sync protocol on Supabase.
#[derive(Debug, Parser)]
#[command(name = "syncstorm", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: boot or reach the target, seed, load, quiesce, check, report.
    Run(crate::run_cmd::RunArgs),
    /// A worker process of `run` (started by the coordinator; reads its task on stdin).
    #[command(name = "__worker", hide = true)]
    Worker,
    /// Run the embedded Supabase-compatible stack in the foreground and print its env lines.
    Stack(crate::stack_cmd::StackArgs),
    /// A worker process of `stack --workers N` (started by the stack; reads its spec on stdin).
    #[command(name = "__stack-worker", hide = true)]
    StackWorker,
    /// Model a scenario in virtual time against a calibrated queueing model of the stack.
    Model(crate::model::ModelArgs),
    /// Fit the model's service times and server capacity from measured run results.
    Calibrate(crate::model::CalibrateArgs),
    /// Per plan, the most users at which every SLO holds, searched on the model.
    Capacity(crate::model::capacity::CapacityArgs),
    /// Calibrate on low-load runs, model higher-load runs, print predicted against measured.
    Validate(crate::model::validate::ValidateArgs),
    /// Re-render the HTML report of a result file.
    Report(crate::report_cmd::ReportArgs),
    /// Write one report with two runs side by side (percentiles with deltas, overlaid charts).
    Compare(crate::report_cmd::CompareArgs),
    /// Join shard results (`--shard i/n`) into one result, exactly.
    Merge(crate::report_cmd::MergeArgs),
    /// Remove every user (and their rows) a run created: `--run-tag <users' e-mail domain>`.
    Cleanup(crate::cleanup::CleanupArgs),
    /// Print `ANON_KEY=` and `SERVICE_ROLE_KEY=` lines signed with a JWT secret.
    Keys(crate::keys_cmd::KeysArgs),
}

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const RUN_FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const THRESHOLDS_BREACHED: i32 = 3;
}
