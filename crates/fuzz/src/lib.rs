//! Hostile input, at volume: a mutation fuzzer on stable Rust for the six parsers that read
//! what syncstorm does not control — scenario files, `--set`/`--threshold` arguments,
//! PostgREST query strings, Phoenix frames, JWTs and result files.
//!
//! Each target starts from real inputs (the shipped scenarios, the frames and tokens the
//! stack exchanges, a recorded result) and stacks a few byte- and token-level mutations on
//! them, so most inputs get past the first syntax check; a tenth are noise. The property: no
//! panic, and every refusal is one non-empty line. `cargo test -p syncstorm-fuzz` runs a short
//! run of each; `syncstorm-fuzz all 1000000` (see `main.rs`) the long one.

pub mod engine;
pub mod mutate;
pub mod targets;

pub use engine::{Report, Target, Verdict, run};

/// Cases per target for the test suite: `SYNCSTORM_FUZZ_CASES`, else `default`.
pub fn cases_from_env(default: u64) -> u64 {
    std::env::var("SYNCSTORM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}
