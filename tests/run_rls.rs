//! RLS under load on the embedded stack: every device of a small run tries other users'
//! rows halfway through (`behaviour.snoop_fraction = 1`); PostgreSQL's row-level security
//! must give none of them anything, and the oracle checks the writes in the database. That
//! a leak is counted when there is one is shown by the unit tests of `oracle::rls` and of the
//! device (`crates/device/tests/snoop.rs`), which feed leaked rows to the counters.

mod run_support;

use run_support::{finished, only_result, run_into, small_scenario};

#[test]
fn devices_snooping_on_other_users_during_a_run_get_nothing_through_rls() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 6, 4);
    let out = dir.path().join("out");
    let mut run = run_into(&scenario, &out);
    run.args(["--set", "behaviour.snoop_fraction=1"]);
    finished(&mut run);
    let r = only_result(&out);
    let rls = &r["oracle"]["rls"];
    // 12 devices, each with a victim that has a wallet: 7 probes apiece.
    println!("rls: {rls}");
    assert!(rls["attempts"].as_u64().unwrap() > 0, "{rls}");
    // The unfiltered reads reached the tables: RLS answered with the devices' own rows.
    assert!(rls["own_rows_seen"].as_u64().unwrap() > 0, "{rls}");
    assert_eq!(rls["read_leaks"], 0, "{rls}");
    assert_eq!(rls["write_leaks"], 0, "{rls}");
    let rule = r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expression"] == "oracle.rls_leaks == 0")
        .unwrap_or_else(|| panic!("a snooping run fails on a leak: {}", r["thresholds"]));
    assert_eq!(rule["passed"], true, "{rule}");
    let html = std::fs::read_to_string(
        std::fs::read_dir(&out)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "html"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        html.contains("RLS: attempts on other users"),
        "the report shows it"
    );
}
