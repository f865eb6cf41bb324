//! The six parsers under attack, one module each, and the list the command and tests share.

pub mod jwt;
pub mod overrides;
pub mod phoenix;
pub mod postgrest;
pub mod result;
pub mod scenario;

use crate::engine::{Report, run};

/// The targets' names, in the order `all` runs them.
pub const NAMES: &[&str] = &[
    "scenario",
    "set-threshold",
    "postgrest-query",
    "phoenix-frame",
    "jwt",
    "result",
];

/// Runs the named target's cases `first..first + cases`; `None` for an unknown name.
pub fn run_named(name: &str, seed: u64, first: u64, cases: u64) -> Option<Report> {
    Some(match name {
        "scenario" => run(&scenario::ScenarioParser::default(), seed, first, cases),
        "set-threshold" => run(&overrides::Overrides::default(), seed, first, cases),
        "postgrest-query" => run(&postgrest::PostgrestQuery::default(), seed, first, cases),
        "phoenix-frame" => run(&phoenix::PhoenixFrame::default(), seed, first, cases),
        "jwt" => run(&jwt::JwtDecoder::default(), seed, first, cases),
        "result" => run(&result::ResultReader::default(), seed, first, cases),
        _ => return None,
    })
}
