//! `syncstorm model` and `syncstorm calibrate` as a user runs them: a modelled run writes a
//! result and report like a measured one (marked as a model), is the same for the same seed,
//! reacts to the server's capacity, and bad input is one sentence with exit 2.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn syncstorm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_syncstorm"))
}

const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scenarios/risk1-token-storm.toml"
);

/// Models the token storm at `users` users and `rate` opens/s; returns (exit code, result).
fn model(out: &Path, users: u64, rate: u64, extra: &[&str]) -> (Option<i32>, Value) {
    let run = syncstorm()
        .arg("model")
        .arg(SCENARIO)
        .args(["--out", out.to_str().unwrap()])
        .args(["--set", &format!("population.users={users}")])
        .args(["--set", &format!("phases.0.arrival_rate={rate}")])
        .args(extra)
        .output()
        .expect("syncstorm runs");
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    let code = run.status.code();
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{stderr}");
    let json = String::from_utf8_lossy(&run.stdout)
        .lines()
        .find(|l| l.ends_with(".json"))
        .expect("prints the result path")
        .to_string();
    assert!(Path::new(&json).with_extension("html").exists());
    (
        code,
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap(),
    )
}

#[test]
fn a_modelled_run_is_a_result_marked_as_a_model_and_the_same_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (_, a) = model(&dir.path().join("a"), 1_000, 40, &[]);
    assert_eq!(a["target"]["kind"], "model");
    assert!(
        a["target"]["model"]["not_modelled"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "says what it leaves out: {}",
        a["target"]
    );
    let checks = &a["operations"]["token_check"];
    assert!(checks["count"].as_u64().unwrap() >= 2_000, "{checks}");
    assert!(a["operations"]["pull"]["count"].as_u64().unwrap() > 0);
    assert!(!a["probes"]["samples"].as_array().unwrap().is_empty());
    assert!(a["risks"]["risk1"]["verdict"].is_string());
    let (_, b) = model(&dir.path().join("b"), 1_000, 40, &[]);
    assert_eq!(a["operations"], b["operations"], "same seed, same run");
    assert_eq!(a["timeseries"], b["timeseries"]);
}

#[test]
fn less_server_capacity_means_a_slower_token_check() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ample) = model(&dir.path().join("a"), 2_000, 200, &["--capacity", "8"]);
    let (_, scarce) = model(&dir.path().join("b"), 2_000, 200, &["--capacity", "0.2"]);
    let p99 = |r: &Value| r["operations"]["token_check"]["p99_ms"].as_f64().unwrap();
    assert!(
        p99(&scarce) > 5.0 * p99(&ample),
        "scarce {} ms vs ample {} ms",
        p99(&scarce),
        p99(&ample)
    );
    let peak_queue = |r: &Value| {
        r["probes"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["pools"]["rest"]["waiting"].as_u64().unwrap())
            .max()
            .unwrap()
    };
    assert_eq!(peak_queue(&ample), 0);
    assert!(peak_queue(&scarce) > 0);
}

#[test]
fn bad_input_is_one_sentence_and_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"service\": 3}").unwrap();
    for args in [
        vec!["--calibration", missing.to_str().unwrap()],
        vec!["--calibration", bad.to_str().unwrap()],
        vec!["--capacity=-1"],
        vec![
            "--set",
            "behaviour.bulk_import={ fraction = 0.1, rows = 100 }",
        ],
    ] {
        let run = syncstorm()
            .arg("model")
            .arg(SCENARIO)
            .args(&args)
            .args(["--out", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("syncstorm model: "), "{stderr}");
    }
}

#[test]
fn calibrate_fits_measured_runs_and_refuses_modelled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let measured = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/runs/quickstart-20261205T035357Z/quickstart-20261205T035406Z.json"
    );
    let out = dir.path().join("cal.json");
    let run = syncstorm()
        .args(["calibrate", measured, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let cal: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let check = &cal["service"]["token_check"]["p50_ms"];
    assert!(check["value"].as_f64().unwrap() > 0.0, "{cal}");
    assert!(
        check["from"].as_str().unwrap().contains("quickstart"),
        "{check}"
    );
    assert!(cal["capacity"]["value"].as_f64().unwrap() > 0.0);

    // A modelled result is not a measurement.
    let (_, _) = model(
        &dir.path().join("m"),
        200,
        10,
        &["--calibration", out.to_str().unwrap()],
    );
    let modelled = std::fs::read_dir(dir.path().join("m"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let run = syncstorm()
        .arg("calibrate")
        .arg(&modelled)
        .args(["--out", dir.path().join("x.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("modelled run"));
}

/// Users who edit during their sessions: the model wakes for each edit and session end, and
/// finishes (an edit due a fraction of a microsecond after a wake once made it wake at the same
/// instant for ever; every open once started a wake chain of its own).
#[test]
fn sessions_with_edits_push_and_the_model_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/model_scale/hour.toml");
    let mut child = syncstorm()
        .arg("model")
        .arg(scenario)
        .args(["--out", dir.path().to_str().unwrap()])
        .args(["--set", "population.users=1000"])
        .args(["--set", "phases.0.duration=60s"])
        .args(["--set", "phases.0.arrival_rate=33"])
        .args(["--set", "phases.1.duration=5m"])
        .args(["--set", "phases.1.arrival_rate=0"])
        .args(["--set", "behaviour.edits_per_hour=60"])
        .args(["--set", "behaviour.session_length=4m"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A bound against a hang, not a speed goal: this run takes about a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the model did not finish within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(matches!(status.code(), Some(0) | Some(3)), "{status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let json = stdout.lines().find(|l| l.ends_with(".json")).unwrap();
    let result: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let pushes = result["operations"]["push"]["count"].as_u64().unwrap_or(0);
    // 2,000 devices, four minutes at one edit a minute: about 8,000 edits.
    assert!(pushes > 4_000, "pushes {pushes}: {}", result["operations"]);
}

/// `capacity --vary PATH=FROM..TO` searches another value of the scenario than the users (here
/// the storm's opens per second at a fixed population); a path the scenario has no number at,
/// or `--vary` beside `--users`, is one sentence.
#[test]
fn capacity_varies_any_path_of_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = |extra: &[&str]| {
        syncstorm()
            .arg("capacity")
            .arg(SCENARIO)
            .args(["--slo", "token_check.p99 < 1s", "--plans", "pro"])
            .args(["--set", "population.users=3000"])
            .args(["--curve-points", "3", "--steps", "3"])
            .args(extra)
            .args(["--out", dir.path().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let run = capacity(&["--vary", "phases.0.arrival_rate=10..1000"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("largest phases.0.arrival_rate with token_check.p99 < 1s"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let json = stdout.lines().find(|l| l.ends_with(".json")).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["varied"], "phases.0.arrival_rate");
    let plan = &report["plans"][0];
    let knee = plan["knee"].as_f64().unwrap();
    assert!(
        knee > 10.0 && knee < 1000.0,
        "a knee inside the range: {plan}"
    );
    let points = plan["points"].as_array().unwrap();
    assert!(points.iter().all(|p| p["users"] == 3000), "{plan}");
    assert!(
        points
            .iter()
            .any(|p| p["value"] == knee && p["holds"] == true)
            && points
                .iter()
                .any(|p| p["value"].as_f64().unwrap() > knee && p["holds"] == false),
        "the knee held and a point above it failed: {plan}"
    );
    let html = std::fs::read_to_string(Path::new(json).with_extension("html")).unwrap();
    assert!(html.contains("Token check p99 against phases.0.arrival_rate"));

    for (args, says) in [
        (
            vec!["--vary", "phases.0.no_such_knob=1..10"],
            "--vary phases.0.no_such_knob",
        ),
        (
            vec!["--vary", "phases.0.arrival_rate=10"],
            "--vary takes PATH=FROM..TO",
        ),
        (
            vec![
                "--vary",
                "phases.0.arrival_rate=10..20",
                "--users",
                "10..20",
            ],
            "cannot be used with",
        ),
    ] {
        let run = capacity(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `capacity --confirm` runs the real harness (embedded stack) at the knee and at half of it
/// and sets the measured points beside the modelled ones, in the JSON and the HTML.
#[test]
fn capacity_confirm_measures_the_knee_and_half_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = syncstorm()
        .arg("capacity")
        .arg(SCENARIO)
        .args(["--slo", "token_check.p99 < 1s", "--plans", "pro"])
        .args(["--users", "20..200", "--curve-points", "3", "--steps", "2"])
        .args([
            "--set",
            "phases.0.duration=5s",
            "--set",
            "phases.1.duration=2s",
        ])
        .args(["--set", "run.quiesce=10s", "--confirm"])
        .args(["--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let json = stdout.lines().find(|l| l.ends_with(".json")).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let plan = &report["plans"][0];
    let knee = plan["users"].as_u64().unwrap();
    let measured = plan["measured"].as_array().unwrap();
    let at: Vec<u64> = measured
        .iter()
        .map(|m| m["users"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [knee / 2, knee], "{plan}");
    for m in measured {
        let result = Path::new(m["result"].as_str().unwrap());
        let measured_run: Value =
            serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap();
        assert_eq!(measured_run["target"]["kind"], "embedded", "a real run");
        assert!(m["holds"].is_boolean() && m["token_check_p99_ms"].as_f64().unwrap() > 0.0);
    }
    assert!(
        measured[1]["modelled_holds"].is_boolean(),
        "the knee was modelled: {plan}"
    );
    let html = std::fs::read_to_string(Path::new(json).with_extension("html")).unwrap();
    assert!(html.contains("Measured (real runs)") && html.contains("pro, measured"));
    assert!(stderr.contains("measured: SLOs"), "{stderr}");
    // The confirming runs are measurements: the USL is fitted to them, or says why not.
    assert!(
        report["usl"].is_object() || report["usl_missing"].is_string(),
        "{report}"
    );
    assert!(html.contains("A second opinion: the Universal Scalability Law"));
}

/// Measured runs given with `--measured` carry a Universal Scalability Law fit beside the
/// model's search: in the JSON, on the console and as a chart; a modelled result is refused.
#[test]
fn capacity_fits_the_usl_to_measured_runs_and_refuses_modelled_ones() {
    let dir = tempfile::tempdir().unwrap();
    let runs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/runs/");
    let measured = [
        "risk1-token-storm-20261205T070202Z/risk1-token-storm-20261205T070651Z.json",
        "risk1-token-storm-20261205T124314Z/risk1-token-storm-20261205T124602Z.json",
    ];
    let capacity = |extra: &[String]| {
        syncstorm()
            .arg("capacity")
            .arg(SCENARIO)
            .args(["--slo", "token_check.p99 < 1s", "--plans", "pro"])
            .args(["--users", "20..200", "--curve-points", "2", "--steps", "1"])
            .args(extra)
            .args(["--out", dir.path().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let given: Vec<String> = measured
        .iter()
        .flat_map(|m| ["--measured".to_string(), format!("{runs}{m}")])
        .collect();
    let run = capacity(&given);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let json = stdout.lines().find(|l| l.ends_with(".json")).unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let usl = &report["usl"];
    assert_eq!(usl["runs"].as_array().unwrap().len(), 2, "{usl}");
    assert!(usl["samples"].as_array().unwrap().len() >= 6, "{usl}");
    assert!(!usl["levels"].as_array().unwrap().is_empty(), "{usl}");
    // These two runs' seconds sit at 7 to 10 busy connections: the unconstrained fit gives a
    // negative contention, which is said as no fit, with what was measured.
    assert!(usl["law"].is_null(), "{usl}");
    assert!(
        stderr.contains("USL (measured runs): The law does not fit the ")
            && stderr.contains("Measured: "),
        "{stderr}"
    );
    let html = std::fs::read_to_string(Path::new(json).with_extension("html")).unwrap();
    assert!(html.contains("Requests served against connections busy (USL)"));

    // A modelled result is no measurement.
    let model_dir = dir.path().join("m");
    let (_, _) = model(&model_dir, 200, 10, &[]);
    let modelled = std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let run = capacity(&["--measured".into(), modelled.display().to_string()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the USL is fitted to measured runs only"),
        "{stderr}"
    );
}
