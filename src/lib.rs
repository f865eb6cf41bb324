//! syncstorm: a load-testing and scalability simulator for the FinOS sync protocol on Supabase.
//!
//! The library holds everything; `main.rs` only parses the command line and maps outcomes to
//! exit codes. Module map: see HACKING.md.

pub mod cleanup;
pub mod cli;
pub mod clock_offset;
pub mod cpu_sets;
pub mod driver;
pub mod fast_setup;
pub mod figures;
pub mod keys_cmd;
pub mod logging;
pub mod model;
pub mod oracle;
pub mod population;
pub mod probes;
pub mod progress;
pub mod report;
pub mod report_cmd;
pub mod resources;
pub mod result;
pub mod run_cmd;
pub mod sessions;
pub mod stack_cmd;
pub mod swarm;
pub mod target;
