//! A short run of every fuzz target in the test suite (the long run is `syncstorm-fuzz all`,
//! see the README); `SYNCSTORM_FUZZ_CASES=1000000` makes these the long run too.

use syncstorm_fuzz::cases_from_env;
use syncstorm_fuzz::targets::run_named;

fn short_run(name: &str) {
    let report = run_named(name, 1, 0, cases_from_env(3_000)).expect("a listed target");
    println!("{report}");
    assert!(report.failure.is_none(), "{report}");
    assert!(
        report.accepted > 0,
        "no input got past the parser: {report}"
    );
}

#[test]
fn scenario_parser() {
    short_run("scenario");
}

#[test]
fn set_and_threshold_parsers() {
    short_run("set-threshold");
}

#[test]
fn postgrest_query_parser() {
    short_run("postgrest-query");
}

#[test]
fn phoenix_frame_decoder() {
    short_run("phoenix-frame");
}

#[test]
fn jwt_decoder() {
    short_run("jwt");
}

#[test]
fn result_reader() {
    short_run("result");
}
