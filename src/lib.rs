//! syncstorm: a load-testing and scalability simulator for the FinOS sync protocol on Supabase.
//!
//! The library holds everything; `main.rs` only parses the command line and maps outcomes to
//! exit codes. Module map: see HACKING.md.

pub mod cli;
pub mod driver;
pub mod target;
pub mod result;
pub mod swarm;
pub mod probes;
pub mod report;
pub mod progress;
pub mod report_cmd;
pub mod stack_cmd;
pub mod population;
pub mod oracle;
pub mod run_cmd;
pub mod cleanup;
pub mod keys_cmd;
