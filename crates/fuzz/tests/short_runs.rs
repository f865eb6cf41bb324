//! A short run of every fuzz target in the test suite (the long run is `syncstorm-fuzz all`,
//! see the README); `SYNCSTORM_FUZZ_CASES=1000000` makes these the long run too.

use syncstorm_fuzz::cases_from_env;
use syncstorm_fuzz::targets::run_named;

/// Inputs per target in the suite: a few thousand, a second or so each in a debug build.
const SHORT: u64 = 3_000;

fn short_run(name: &str, cases: u64) {
    let report = run_named(name, 1, 0, cases_from_env(cases)).expect("a listed target");
    println!("{report}");
    assert!(report.failure.is_none(), "{report}");
    assert!(
        report.accepted > 0,
        "no input got past the parser: {report}"
    );
}

#[test]
fn scenario_parser() {
    short_run("scenario", SHORT);
}

#[test]
fn set_and_threshold_parsers() {
    short_run("set-threshold", SHORT);
}

#[test]
fn postgrest_query_parser() {
    short_run("postgrest-query", SHORT);
}

#[test]
fn phoenix_frame_decoder() {
    short_run("phoenix-frame", SHORT);
}

#[test]
fn jwt_decoder() {
    short_run("jwt", SHORT);
}

#[test]
fn result_reader() {
    short_run("result", SHORT / 3); // each input is a whole result file
}
