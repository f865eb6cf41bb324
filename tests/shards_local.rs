//! One run across three processes, as an orchestrator runs it on three machines: three
//! `syncstorm run --shard i/3` against one stack with one `--run-tag` and one `--start-at`,
//! then `syncstorm merge`. The merged counts are the sums of the shards', its peaks are the
//! peaks of the summed series, the shards' loads started together, and one cleanup by the
//! shared tag removes every shard's users.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 3;
const USERS: u64 = 9;
const TAG: &str = "three-shards-1.syncstorm.test";

fn syncstorm(stack: &RunningStack) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_syncstorm"));
    cmd.env_remove("DATABASE_URL")
        .env("SUPABASE_URL", &stack.url)
        .env("SUPABASE_ANON_KEY", &stack.anon_key)
        .env("SUPABASE_SERVICE_ROLE_KEY", &stack.service_role_key)
        // The stack prints its JWT secret: with it and the database URL, shards set up by SQL.
        .env("SUPABASE_JWT_SECRET", &stack.jwt_secret);
    cmd
}

async fn output(mut cmd: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("syncstorm runs"))
        .await
        .unwrap()
}

fn scenario(dir: &Path, url: &str) -> PathBuf {
    let text = format!(
        r#"[scenario]
name = "three-shards"

[target]
kind = "supabase"
url = "{url}"
plan = "pro"
max_request_rate = 500

[population]
users = {USERS}
devices_per_user = 2
rows.wallets = 1
rows.channels = 1
rows.categories_user = 2
rows.transactions = 4

[[phases]]
name = "steady"
duration = "4s"
devices = "100%"
ramp = "2s"

[behaviour]
edits_per_hour = 1800
session_length = "3s"

[run]
seed = 5
workers = 1
quiesce = "10s"
"#
    );
    let path = dir.join("shards.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn source(shard: u32) -> String {
    format!("127.0.0.{}", 11 + shard)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn only_json(dir: &Path) -> PathBuf {
    let jsons: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(jsons.len(), 1, "{jsons:?}");
    jsons[0].clone()
}

/// The largest value of a gauge over a result's per-second series.
fn peak_of(r: &Value, gauge: &str) -> i64 {
    r["timeseries"]["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["gauges"][gauge].as_i64())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shard_processes_merge_into_one_run_on_one_timeline() {
    let cancel = CancellationToken::new();
    let plan = syncstorm_plans::SupabasePlan::preset("pro").unwrap();
    let stack = Stack::start_for_tests(StackConfig::new(plan), cancel.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario(dir.path(), &stack.url);
    // Far enough ahead for three setups of three users on two shared cores.
    let start_at = chrono::Utc::now() + chrono::Duration::seconds(25);
    let runs: Vec<_> = (0..SHARDS)
        .map(|i| {
            let mut cmd = syncstorm(&stack);
            cmd.arg("run")
                .arg(&scenario)
                .args(["--shard", &format!("{i}/{SHARDS}")])
                .args(["--run-tag", TAG, "--start-at", &start_at.to_rfc3339()])
                .args(["--database-url", &stack.database_url])
                // Three machines' worth of source addresses, as the shards would have.
                .args(["--source-address", &source(i)])
                .arg("--out")
                .arg(dir.path().join(format!("shard-{i}")));
            tokio::spawn(output(cmd))
        })
        .collect();
    let mut shards = Vec::new();
    for (i, run) in runs.into_iter().enumerate() {
        let run = run.await.unwrap();
        let code = run.status.code();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            matches!(code, Some(0) | Some(3)),
            "shard {i}: exit {code:?}\n{stderr}"
        );
        shards.push(only_json(&dir.path().join(format!("shard-{i}"))));
    }
    let results: Vec<Value> = shards.iter().map(|p| json(p)).collect();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["run_tag"], TAG);
        assert_eq!(r["setup"]["method"], "sql", "{}", r["setup"]);
        assert_eq!(r["target"]["kind"], "embedded");
        assert_eq!(
            r["machine"]["source_addresses"],
            serde_json::json!([source(i as u32)])
        );
        // One machine, one clock: the offset measured against the stack's Date header is
        // within its own uncertainty of zero.
        let clock = &r["clock"];
        let (offset, within) = (
            clock["offset_ms"].as_f64().unwrap(),
            clock["uncertainty_ms"].as_f64().unwrap(),
        );
        assert!(within < 250.0, "{clock}");
        assert!(offset.abs() <= within + 5.0, "{clock}");
        assert_eq!(
            r["setup"]["late_start_s"].as_f64(),
            Some(0.0),
            "{}",
            r["setup"]
        );
        let started: chrono::DateTime<chrono::Utc> =
            r["started_at"].as_str().unwrap().parse().unwrap();
        let off = (started - start_at).num_milliseconds().abs();
        assert!(
            off < 1_000,
            "a shard started {off} ms off the agreed instant"
        );
    }

    let merged_path = dir.path().join("merged.json");
    let merge = output({
        let mut cmd = syncstorm(&stack);
        cmd.arg("merge")
            .args(&shards)
            .arg("--out")
            .arg(&merged_path);
        cmd
    })
    .await;
    assert!(
        merge.status.success(),
        "{}",
        String::from_utf8_lossy(&merge.stderr)
    );
    assert!(merged_path.with_extension("html").exists());
    let merged = json(&merged_path);
    assert_eq!(merged["merged_shards"], SHARDS);
    // Each shard's own health and clock stay in the merged result and its report.
    let kept = merged["shards"].as_array().unwrap();
    assert_eq!(kept.len(), SHARDS as usize);
    for (i, s) in kept.iter().enumerate() {
        assert_eq!(s["label"], format!("shard {i}/{SHARDS}"));
        assert_eq!(s["clock"], results[i]["clock"]);
        assert!(s["start_offset_s"].as_f64().unwrap() < 1.0, "{s}");
    }
    let html = std::fs::read_to_string(merged_path.with_extension("html")).unwrap();
    assert!(html.contains("Generator CPU per shard"));
    assert!(
        html.contains("aligned by the target&#39;s clock")
            || html.contains("aligned by the target's clock")
    );
    assert!(html.contains("from 127.0.0.13"));
    assert_eq!(merged["run_tag"], TAG);

    // Counts are the sums of the shards'.
    let counters: Vec<String> = merged["counters"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(counters.iter().any(|c| c == "app_opens"), "{counters:?}");
    for name in &counters {
        let sum: u64 = results
            .iter()
            .map(|r| r["counters"][name].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(merged["counters"][name].as_u64(), Some(sum), "{name}");
    }
    for (op, m) in merged["operations"].as_object().unwrap() {
        let sum: u64 = results
            .iter()
            .map(|r| r["operations"][op]["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(m["count"].as_u64(), Some(sum), "{op}");
    }
    assert_eq!(merged["setup"]["users"].as_u64(), Some(USERS));

    // The peak is the peak of the summed series, which the three shards reach together.
    let devices = peak_of(&merged, "devices_active");
    assert_eq!(merged["peak"]["devices"].as_i64(), Some(devices));
    let largest_shard = results
        .iter()
        .map(|r| peak_of(r, "devices_active"))
        .max()
        .unwrap();
    assert!(
        devices > largest_shard,
        "the shards ran together: {devices} at once, more than any shard's {largest_shard}"
    );

    // One cleanup by the shared tag removes every shard's users.
    let cleanup = output({
        let mut cmd = syncstorm(&stack);
        cmd.args([
            "cleanup",
            "--run-tag",
            TAG,
            "--database-url",
            &stack.database_url,
        ]);
        cmd
    })
    .await;
    assert!(
        cleanup.status.success(),
        "{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    let (client, conn) = tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let left: i64 = client
        .query_one(
            "select count(*) from auth.users where email like '%@' || $1",
            &[&TAG],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "users of the run left after its cleanup");
    cancel.cancel();
    stack.stop().await.unwrap();
}
