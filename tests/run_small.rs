//! A small real run end to end: the `syncstorm` binary boots the embedded stack, seeds,
//! runs tens of devices on two worker processes for a few seconds, quiesces, checks and
//! writes a JSON result and an HTML report.

mod run_support;

use run_support::{finished, only_result, run_into, small_scenario, syncstorm};

#[test]
fn a_small_run_writes_a_result_with_operations_probes_and_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 12, 6);
    let out = dir.path().join("out");
    finished(&mut run_into(&scenario, &out));
    let r = only_result(&out);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["status"]["outcome"], "completed", "{}", r["status"]);
    // The embedded stack is set up by SQL: users by COPY, sessions minted (crate::fast_setup).
    let setup = &r["setup"];
    assert_eq!(setup["method"], "sql", "{setup}");
    assert_eq!(
        (setup["users"].as_u64(), setup["sessions"].as_u64()),
        (Some(12), Some(24))
    );
    assert!(setup["rows"].as_u64().unwrap() > 0, "{setup}");
    assert!(setup["duration_s"].as_f64().unwrap() > 0.0, "{setup}");
    let syncs = &r["operations"]["sync"];
    assert!(
        syncs["count"].as_u64().unwrap() >= 12,
        "every device synced: {syncs}"
    );
    // Devices start with the sessions setup signed them in with, as used phones do.
    assert!(
        r["operations"].get("sign_in").is_none(),
        "no sign-in during the load: {}",
        r["operations"]["sign_in"]
    );
    assert!(
        r["counters"]["arrivals"].as_u64().unwrap() > 0,
        "open-model arrivals ran"
    );
    assert!(r["peak"]["devices"].as_u64().unwrap() > 0);
    assert!(!r["timeseries"]["points"].as_array().unwrap().is_empty());
    assert!(
        !r["probes"]["samples"].as_array().unwrap().is_empty(),
        "probes sampled"
    );
    assert!(
        r["generator"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["worker"] == "worker-1")
    );
    assert_eq!(r["thresholds"][0]["expression"], "sync.p99 < 10s");
    let oracle = &r["oracle"];
    assert!(
        oracle["users_checked"].as_u64().unwrap() >= 1,
        "the oracle ran: {oracle}"
    );
    assert_eq!(oracle["fk_errors"], 0, "{oracle}");
    assert!(r["counters"]["devices_quiesced"].as_u64().unwrap() > 0);
    // Verdicts for CI, and the whole machine beside them.
    for risk in ["risk1", "risk2", "risk3"] {
        let verdict = r["risks"][risk]["verdict"].as_str().unwrap_or_default();
        assert!(
            [
                "confirmed",
                "under_strain",
                "not_observed",
                "not_exercised",
                "inconclusive"
            ]
            .contains(&verdict),
            "{risk}: {}",
            r["risks"]
        );
        assert!(!r["risks"][risk]["evidence"].as_str().unwrap().is_empty());
    }
    let samples = r["resources"]["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "resources sampled");
    let roles = samples.last().unwrap()["roles"].as_object().unwrap();
    assert!(roles.contains_key("PostgreSQL"), "{roles:?}");
    assert!(
        roles.keys().any(|k| k.starts_with("run process")),
        "{roles:?}"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= 2 {
        assert!(
            r["machine"]["cpu_sets"]["server"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{}",
            r["machine"]
        );
    }
}

#[test]
fn a_bad_override_is_one_sentence_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "population.userz=5"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("population.userz"), "{stderr}");
}

#[test]
fn a_run_too_big_for_the_fd_budget_says_what_to_raise() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--set", "population.users=50000", "--set", "run.workers=1"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("100,000 devices need 2 connections each"),
        "{stderr}"
    );
    assert!(stderr.contains("raise `run.workers` to"), "{stderr}");
}

/// `device.session = "sign_in"` models fresh installs: every device signs in on its first open.
#[test]
fn fresh_installs_sign_in_on_their_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 3, 4);
    let out = dir.path().join("out");
    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--out", out.to_str().unwrap()])
        .args(["--set", "device.session=sign_in"])
        .output()
        .expect("syncstorm runs");
    let code = run.status.code();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{stderr}");
    let r = only_result(&out);
    let sign_ins = r["operations"]["sign_in"]["count"].as_u64().unwrap();
    assert!(sign_ins >= 6, "each of the 6 devices signed in: {sign_ins}");
}

/// `device.expired_at_open_percent = 100`: every stored session has expired at the first open,
/// so every device refreshes it (a GoTrue refresh-token grant) before its token check, and
/// none signs in; risk 1 names the refreshes.
#[test]
fn expired_sessions_refresh_at_their_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 3, 4);
    let out = dir.path().join("out");
    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--out", out.to_str().unwrap()])
        .args(["--set", "device.expired_at_open_percent=100"])
        .output()
        .expect("syncstorm runs");
    let code = run.status.code();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{stderr}");
    let r = only_result(&out);
    let refreshes = &r["operations"]["token_refresh"];
    assert!(
        refreshes["count"].as_u64().unwrap() >= 6,
        "each of the 6 devices refreshed: {refreshes}"
    );
    assert_eq!(refreshes["errors"], 0, "{refreshes}");
    assert!(
        r["operations"].get("sign_in").is_none(),
        "no password sign-in"
    );
    let figures = r["risks"]["risk1"]["figures"].to_string();
    assert!(figures.contains("Session refreshes"), "{figures}");
}

/// `--run-tag` (an orchestrator's, shared by every shard of one run) names the run's users and
/// its result; a tag that could match real users' addresses is refused before anything starts.
#[test]
fn a_given_run_tag_names_the_run_and_a_bad_one_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    let out = dir.path().join("out");
    let tag = "nightly-ci-42.syncstorm.test";
    finished(run_into(&scenario, &out).args(["--run-tag", tag]));
    assert_eq!(only_result(&out)["run_tag"], tag);

    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--run-tag", "example.com"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--run-tag"), "{stderr}");
}

/// A `--source-address` this machine cannot bind, or one given twice, and a `--target-address`
/// for the embedded stack (which picks its own) are refused before anything starts, in one
/// sentence.
#[test]
fn a_source_or_target_address_that_cannot_serve_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    for (args, says) in [
        (
            vec!["--source-address", "192.0.2.1"],
            "--source-address 192.0.2.1 is not an address of this machine",
        ),
        (
            vec![
                "--source-address",
                "127.0.0.9",
                "--source-address",
                "127.0.0.9",
            ],
            "--source-address 127.0.0.9 is given twice",
        ),
        (
            vec!["--target-address", "127.0.0.5"],
            "--target-address is for a target given by URL",
        ),
    ] {
        let run = syncstorm()
            .arg("run")
            .arg(&scenario)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// `--start-at` holds the load until the agreed instant (shards on several machines start
/// together); an instant already past starts at once and the result says how late; a bad
/// instant is one sentence.
#[test]
fn the_load_starts_at_start_at_or_says_how_late_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = small_scenario(dir.path(), 2, 2);
    let past = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let out = dir.path().join("late");
    let stderr = finished(run_into(&scenario, &out).args(["--start-at", &past]));
    assert!(stderr.contains("s after --start-at"), "{stderr}");
    let late = only_result(&out)["setup"]["late_start_s"].as_f64().unwrap();
    assert!(late >= 300.0, "{late}");

    let soon = chrono::Utc::now() + chrono::Duration::seconds(12);
    let out = dir.path().join("on-time");
    let stderr = finished(run_into(&scenario, &out).args(["--start-at", &soon.to_rfc3339()]));
    assert!(stderr.contains("waiting "), "{stderr}");
    let r = only_result(&out);
    assert_eq!(
        r["setup"]["late_start_s"].as_f64(),
        Some(0.0),
        "{}",
        r["setup"]
    );
    let started: chrono::DateTime<chrono::Utc> = r["started_at"].as_str().unwrap().parse().unwrap();
    let off = (started - soon).num_milliseconds().abs();
    assert!(off < 1_000, "the load started {off} ms off the instant");

    let run = syncstorm()
        .arg("run")
        .arg(&scenario)
        .args(["--start-at", "tomorrow"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
}
