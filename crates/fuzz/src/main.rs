//! `syncstorm-fuzz TARGET|all [CASES] [--seed N] [--first-case I] [--json FILE]`: runs each
//! target for CASES inputs (default 1,000,000), printing count, time and inputs/s; exits 1
//! when a target broke its property, 2 on bad usage. Build it with `--profile fuzz` (release
//! speed, overflow checks on).

use std::process::ExitCode;

use serde_json::json;
use syncstorm_fuzz::Report;
use syncstorm_fuzz::targets::{NAMES, run_named};

struct Args {
    targets: Vec<String>,
    cases: u64,
    seed: u64,
    first: u64,
    json: Option<String>,
}

const USAGE: &str =
    "usage: syncstorm-fuzz TARGET|all [CASES] [--seed N] [--first-case I] [--json FILE]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        targets: Vec::new(),
        cases: 1_000_000,
        seed: 1,
        first: 0,
        json: None,
    };
    let number = |flag: &str, v: Option<String>| {
        v.and_then(|v| v.replace('_', "").parse::<u64>().ok())
            .ok_or_else(|| format!("{flag} needs a whole number; {USAGE}"))
    };
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => parsed.seed = number("--seed", args.next())?,
            "--first-case" => parsed.first = number("--first-case", args.next())?,
            "--json" => parsed.json = Some(args.next().ok_or(USAGE)?),
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let target = positional.next().ok_or(USAGE)?;
    parsed.targets = match target.as_str() {
        "all" => NAMES.iter().map(|s| s.to_string()).collect(),
        name if NAMES.contains(&name) => vec![name.to_string()],
        other => {
            return Err(format!(
                "no target {other:?}; the targets are all, {}",
                NAMES.join(", ")
            ));
        }
    };
    if let Some(cases) = positional.next() {
        parsed.cases = number("CASES", Some(cases))?;
    }
    Ok(parsed)
}

fn as_json(r: &Report) -> serde_json::Value {
    json!({
        "target": r.target,
        "seed": r.seed,
        "inputs": r.cases,
        "accepted": r.accepted,
        "refused": r.refused,
        "seconds": r.elapsed.as_secs_f64(),
        "inputs_per_second": r.inputs_per_second(),
        "failure": r.failure.as_ref().map(|f| json!({"case": f.case, "problem": f.problem, "input": f.input})),
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut reports = Vec::new();
    for name in &args.targets {
        let report = run_named(name, args.seed, args.first, args.cases).expect("a listed target");
        println!("{report}");
        reports.push(report);
    }
    if let Some(path) = &args.json {
        let body = json!(reports.iter().map(as_json).collect::<Vec<_>>());
        let text = serde_json::to_string_pretty(&body).expect("JSON serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("cannot write {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if reports.iter().any(|r| r.failure.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
