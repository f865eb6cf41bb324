//! Each kind of mistake gets one exact sentence naming the path, the value and what is allowed.

use syncstorm_scenario::{ScenarioError, from_str_with};

const BASE: &str = r#"
[scenario]
name = "t"

[population]
users = 10
devices_per_user = 2

[[phases]]
duration = "10s"
devices = 20

[[phases]]
duration = "5s"
arrival_rate = 3
"#;

fn error_with(sets: &[&str], thresholds: &[&str]) -> ScenarioError {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let thresholds: Vec<String> = thresholds.iter().map(|s| s.to_string()).collect();
    match from_str_with("t.toml", BASE, &sets, &thresholds) {
        Ok(_) => panic!("{sets:?} {thresholds:?} should fail"),
        Err(e) => e,
    }
}

fn message(sets: &[&str]) -> String {
    let text = error_with(sets, &[]).to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    text
}

#[test]
fn the_base_document_is_valid() {
    let plan = from_str_with("t.toml", BASE, &[], &[]).unwrap();
    assert_eq!(plan.total_devices(), 20);
}

#[test]
fn unknown_fields_name_their_path_the_allowed_fields_and_a_hint() {
    assert_eq!(
        message(&["population.userz=5"]),
        "t.toml: population.userz is not a known field; allowed here: users, devices_per_user, rows, password_hash_cost (did you mean \"users\"?)"
    );
    assert_eq!(
        message(&["phases.1.arival_rate=5"]),
        "t.toml: phases.1.arival_rate is not a known field; allowed here: name, duration, arrival_rate, ramp_to, arrivals, devices, ramp, spawn_rate (did you mean \"arrival_rate\"?)"
    );
    assert_eq!(
        message(&["colour=\"red\""]),
        "t.toml: colour is not a known field; allowed here: scenario, target, population, phases, behaviour, device, faults, thresholds, run"
    );
    let e = error_with(
        &["faults.outages=[{ start = \"1s\", duration = \"2s\", fractoin = 0.5 }]"],
        &[],
    );
    assert_eq!(e.path(), Some("faults.outages.0.fractoin"));
}

#[test]
fn bad_enum_values_list_the_allowed_ones() {
    assert_eq!(
        message(&["target.kind=embeded"]),
        "t.toml: target.kind = \"embeded\" is not allowed; expected one of: embedded, supabase (did you mean \"embedded\"?)"
    );
    assert_eq!(
        message(&["phases.1.arrivals=\"random\""]),
        "t.toml: phases.1.arrivals = \"random\" is not allowed; expected one of: poisson, uniform"
    );
    assert_eq!(
        message(&["target.durability=offf"]),
        "t.toml: target.durability = \"offf\" is not allowed; expected one of: on, off (did you mean \"off\"?)"
    );
    assert_eq!(
        message(&["target.plan=gold"]),
        "t.toml: target.plan = \"gold\" is not allowed; expected one of: free, pro, pro-small, pro-medium, pro-large, pro-no-cap, team, team-xl, team-2xl, unlimited"
    );
}

#[test]
fn bad_durations_and_numbers_say_what_is_expected() {
    assert_eq!(
        message(&["phases.0.duration=10x"]),
        "t.toml: phases.0.duration = \"10x\" is not a duration; write a number with a unit, e.g. \"500ms\", \"30s\", \"2m\" or \"1h30m\""
    );
    assert_eq!(
        message(&["run.quiesce=30"]),
        "t.toml: run.quiesce = 30 is not a duration: a bare number has no unit; write a number with a unit, e.g. \"500ms\", \"30s\", \"2m\" or \"1h30m\""
    );
    assert_eq!(
        message(&["population.users=-3"]),
        "t.toml: population.users = -3 is not valid; expected a whole number, 0 or more"
    );
    assert_eq!(
        message(&["phases.0.devices=lots"]),
        "t.toml: phases.0.devices = \"lots\" is not valid; expected a whole number of devices or a share of the population like \"100%\""
    );
    assert_eq!(
        message(&["run.workers=0"]),
        "t.toml: run.workers = 0 is not valid; expected \"auto\" or a whole number of worker processes from 1 to 256"
    );
}

#[test]
fn cross_field_rules_name_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["phases.0.spawn_rate=1e-300"],
            "t.toml: phases.0.spawn_rate = 1e-300 is too slow to move 20 devices within the phase (\"10s\"); expected at least 2 devices per second",
        ),
        (
            &["phases.0.duration=\"100000h\""],
            "t.toml: phases.0.duration = \"100000h\" is too long; expected at most 7 days",
        ),
        (
            &["population.rows.plans={ dist = \"uniform\", min = 0, max = 9223372036854775807 }"],
            "t.toml: population.rows.plans can draw 9223372036854775807 rows; expected at most 10,000,000 rows per user",
        ),
        (
            &["population.rows.plans={ dist = \"uniform\", min = 0, max = 10000001 }"],
            "t.toml: population.rows.plans can draw 10000001 rows; expected at most 10,000,000 rows per user",
        ),
        (
            &["population.users=100000000000"],
            "t.toml: population.users = 100000000000 is not valid; expected from 1 to 10,000,000 users",
        ),
        (
            &["phases.1.devices=5"],
            "t.toml: phases.1.devices belongs to the closed model and phases.1.arrival_rate to the open model; a phase uses exactly one",
        ),
        (
            &["phases.0.devices=21"],
            "t.toml: phases.0.devices = 21 is more than the population has; expected at most users × devices_per_user = 20",
        ),
        (
            &["phases.0.ramp=\"20s\""],
            "t.toml: phases.0.ramp = \"20s\" is longer than the phase (\"10s\"); lengthen the phase or ramp faster",
        ),
        (
            &["phases.0.spawn_rate=1.5"],
            "t.toml: phases.0.spawn_rate = 1.5 is too slow to move 20 devices within the phase (\"10s\"); expected at least 2 devices per second",
        ),
        (
            &["behaviour.update_share=1.5"],
            "t.toml: behaviour.update_share = 1.5 is not a fraction; expected a number from 0 to 1",
        ),
        (
            &["population.users=0"],
            "t.toml: population.users = 0 is not valid; expected from 1 to 10,000,000 users",
        ),
        (
            &["population.devices_per_user=0"],
            "t.toml: population.devices_per_user = 0 is not valid; expected a whole number from 1 to 16",
        ),
        (
            &["target.url=\"https://x.supabase.co\""],
            "t.toml: target.url is only for kind = \"supabase\"; the embedded stack runs on loopback",
        ),
        (
            &["target.kind=supabase"],
            "t.toml: target.url is missing; kind = \"supabase\" needs the project URL, e.g. --set target.url=$SUPABASE_URL",
        ),
        (
            &["faults.clock_skew.fraction=0.5"],
            "t.toml: faults.clock_skew.max is missing; it is required",
        ),
        (
            &["faults.outages=[{ start = \"15s\", duration = \"2s\" }]"],
            "t.toml: faults.outages.0.start = \"15s\" is not before the end of the load (15s), so the outage would never happen",
        ),
        (
            &["population.rows.transaction=5"],
            "t.toml: population.rows.transaction is not a synced table; allowed: wallets, channels, categories_user, transactions, plans (did you mean \"transactions\"?)",
        ),
        (
            &["population.rows.transactions={ dist = \"lognormal\", median = 200 }"],
            "t.toml: population.rows.transactions.max is missing; dist = \"lognormal\" needs it",
        ),
        (
            &["population.rows.wallets={ dist = \"fixed\", n = 2, max = 3 }"],
            "t.toml: population.rows.wallets.max does not apply to dist = \"fixed\"",
        ),
        (
            &["target.plan_overrides.realtime.max_conections=5"],
            "t.toml: target.plan_overrides.\"realtime.max_conections\" is not a plan field; allowed: db_max_connections, pooler_max_clients, rest_pool_size, rest_pool_timeout_ms, auth_pool_size, realtime.max_connections, realtime.joins_per_second, realtime.events_per_second, realtime.channels_per_client, auth_token_rate_limit, shared_buffers_mb (did you mean \"realtime.max_connections\"?)",
        ),
        (
            &["target.plan_overrides.rest_pool_size=0"],
            "t.toml: target.plan_overrides.\"rest_pool_size\" = 0 is not valid; expected a whole number greater than 0",
        ),
        (
            &["phases.1={ duration = \"5s\" }"],
            "t.toml: phases.1 has no load model; set arrival_rate (open model: app opens per second) or devices (closed model)",
        ),
        (
            &["scenario.name=\"my run\""],
            "t.toml: scenario.name = \"my run\" is not valid; expected letters, digits, '-', '_' or '.' (it names the result files)",
        ),
    ];
    for (sets, expected) in cases {
        assert_eq!(&message(sets), expected, "{sets:?}");
    }
}

#[test]
fn bad_thresholds_are_named_with_what_is_allowed() {
    let cases: &[(&str, &str)] = &[
        (
            "thresholds.\"token_check.p99\"=\"<< 500ms\"",
            "t.toml: thresholds.\"token_check.p99\" = \"<< 500ms\" is not a condition; write OPERATOR VALUE with OPERATOR one of <, <=, >, >=, == or !=, e.g. \"< 500ms\"",
        ),
        (
            "thresholds.\"token_check.p99\"=\"< 500\"",
            "t.toml: thresholds.\"token_check.p99\" = \"< 500\" has a bad value: this metric is a duration, so \"500\" needs a unit: us, ms or s (e.g. 500ms)",
        ),
        (
            "thresholds.\"token_chek.p99\"=\"< 1s\"",
            "t.toml: thresholds.\"token_chek.p99\" has an unknown operation \"token_chek\"; allowed: sign_in, token_refresh, token_check, pull, pull.tier1, pull.tier2, pull.tier3, pull.wallets, pull.channels, pull.categories_user, pull.transactions, pull.plans, push, push.read, bulk_push, sync, ws_connect, ws_join, pulse_delivery, long_poll, periodic_poll (did you mean \"token_check\"?)",
        ),
        (
            "thresholds.\"errors.rate\"=\"< 5\"",
            "t.toml: thresholds.\"errors.rate\" = \"< 5\" has a bad value: this metric is a rate, so write a percentage up to 100% or a fraction up to 1 (e.g. 1% or 0.01), not \"5\"",
        ),
    ];
    for (set, expected) in cases {
        assert_eq!(&message(&[set]), expected, "{set}");
    }
    assert_eq!(
        error_with(&[], &["token_check.p99 500ms"]).to_string(),
        "--threshold \"token_check.p99 500ms\" is not a threshold; write METRIC OPERATOR VALUE with OPERATOR one of <, <=, >, >=, == or !=, e.g. \"token_check.p99 < 500ms\""
    );
    assert_eq!(
        error_with(&[], &["sync.p95 < 2s"]).to_string(),
        "--threshold sync.p95 has an unknown statistic \"p95\"; allowed: p50, p90, p99, p999, max, count, errors, error_rate (did you mean \"p90\"?)"
    );
}

#[test]
fn bad_set_paths_say_what_is_there() {
    let cases: &[(&str, &str)] = &[
        (
            "phases.7.duration=10s",
            "--set phases.7.duration=10s: phases has 2 entries (0 to 1), so index 7 does not exist",
        ),
        (
            "phases.first.duration=10s",
            "--set phases.first.duration=10s: phases is an array; address an entry by index, e.g. phases.0",
        ),
        (
            "population.users.max=1",
            "--set population.users.max=1: population.users is a number, not a table, so it has no field \"max\"",
        ),
        (
            "population..users=1",
            "--set population..users=1: the path \"population..users\" has an empty part; write keys separated by dots, e.g. population.users",
        ),
        (
            "population.users",
            "--set population.users: expected PATH=VALUE, e.g. population.users=500",
        ),
    ];
    for (set, expected) in cases {
        assert_eq!(&message(&[set]), expected, "{set}");
    }
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = from_str_with(
        "t.toml",
        "[scenario]\nname = \"a\"\n[population\n",
        &[],
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ScenarioError::Syntax {
                line: 3,
                column: 12,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("t.toml:3:12: this is not valid TOML: "),
        "{e}"
    );
}

#[test]
fn a_missing_section_is_named() {
    let e = from_str_with("t.toml", "[scenario]\nname = \"a\"\n", &[], &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.toml: population is missing; it is required"
    );
}

#[test]
fn device_knobs_are_checked_with_their_scenario_paths() {
    let cases: &[(&str, &str)] = &[
        (
            "device.push.mode=upsertt",
            "t.toml: device.push.mode = \"upsertt\" is not allowed; expected one of: upsert, client_lww, server_lww (did you mean \"upsert\"?)",
        ),
        (
            "device.pushh.mode=upsert",
            "t.toml: device.pushh is not a known field; allowed here: usap, push, sync, pull, pulse, edit_debounce, connections, session, expired_at_open_percent (did you mean \"push\"?)",
        ),
        (
            "device.usap.max_attempts=0",
            "t.toml: device.usap.max_attempts must be between 1 and 1000, got 0",
        ),
    ];
    for (set, expected) in cases {
        assert_eq!(&message(&[set]), expected, "{set}");
    }
    let text = message(&["device.pulse.interval=10x"]);
    assert!(
        text.starts_with("t.toml: device.pulse.interval = \"10x\" is not valid: "),
        "{text}"
    );
}

#[test]
fn a_bad_compact_test_plan_names_the_step() {
    assert_eq!(
        message(&["phases=\"20,10s;lots,1m\""]),
        "t.toml: phases = \"20,10s;lots,1m\" is not a test plan: step 2 target \"lots\" is not a device count; write steps TARGET,DURATION separated by ';', TARGET being devices (900 or 50%) or app opens per second (100/s), e.g. \"900,30s;900,1m\""
    );
    assert_eq!(
        message(&["phases=\"21,10s\""]),
        "t.toml: phases.0.devices = 21 is more than the population has; expected at most users × devices_per_user = 20"
    );
}
