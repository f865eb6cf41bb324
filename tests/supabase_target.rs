//! The `supabase` target code path against the embedded stack (the same wire): a real
//! `syncstorm run` with `kind = "supabase"` seeds users tagged with the run, `syncstorm cleanup`
//! removes them and their rows (a second cleanup is a no-op), no key, password or JWT reaches
//! the result, the report or the logs, and a host that is not loopback is refused by the guard
//! before any connection.

use std::path::{Path, PathBuf};
use std::process::Output;

use syncstorm::cleanup::{self, CleanupArgs};
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use tokio_util::sync::CancellationToken;

const SCENARIO: &str = "supabase-target";
const USERS: u64 = 6;

fn syncstorm() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_syncstorm"));
    for var in [
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a command off the runtime (the stack serves on this process's runtime meanwhile).
async fn output(mut cmd: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("syncstorm runs"))
        .await
        .unwrap()
}

fn with_keys(mut cmd: std::process::Command, stack: &RunningStack) -> std::process::Command {
    cmd.env("SUPABASE_ANON_KEY", &stack.anon_key)
        .env("SUPABASE_SERVICE_ROLE_KEY", &stack.service_role_key);
    cmd
}

fn scenario(dir: &Path, url: &str, extra_target: &str) -> PathBuf {
    let text = format!(
        r#"[scenario]
name = "{SCENARIO}"

[target]
kind = "supabase"
url = "{url}"
plan = "pro"
max_request_rate = 500
{extra_target}

[population]
users = {USERS}
devices_per_user = 1
rows.wallets = 1
rows.channels = 1
rows.categories_user = 2
rows.transactions = 4

[[phases]]
name = "steady"
duration = "2s"
devices = {USERS}
ramp = "1s"

[behaviour]
edits_per_hour = 1800
session_length = "2s"

[run]
seed = 11
workers = 1
quiesce = "10s"
"#
    );
    let path = dir.join("supabase.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn db(stack: &RunningStack) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&stack.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// The run tags of this scenario's users in the database, with their user counts.
async fn run_tags(client: &tokio_postgres::Client) -> Vec<(String, i64)> {
    client
        .query(
            "select split_part(email, '@', 2) as tag, count(*) from auth.users \
             where email like '%@' || $1 || '-%.syncstorm.test' group by 1 order by 1",
            &[&SCENARIO],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Ids of the users with this run tag.
async fn users_of_tag(client: &tokio_postgres::Client, tag: &str) -> Vec<uuid::Uuid> {
    client
        .query(
            "select id from auth.users where email like '%@' || $1",
            &[&tag],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Rows these users own, over every FinOS table.
async fn rows_of(client: &tokio_postgres::Client, users: &[uuid::Uuid]) -> i64 {
    let mut total = 0;
    for table in [
        "wallets",
        "channels",
        "categories_user",
        "transactions",
        "plans",
    ] {
        let sql = format!("select count(*) from public.{table} where user_id = any($1)");
        let count: i64 = client.query_one(&sql, &[&users]).await.unwrap().get(0);
        total += count;
    }
    total
}

fn cleanup_cmd(stack: &RunningStack, tag: &str) -> std::process::Command {
    let mut cmd = with_keys(syncstorm(), stack);
    cmd.env("SUPABASE_URL", &stack.url).args([
        "cleanup",
        "--run-tag",
        tag,
        "--max-request-rate",
        "200",
    ]);
    cmd
}

fn report(out: &Output) -> cleanup::CleanupReport {
    assert!(
        out.status.success(),
        "cleanup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cleanup prints its report as JSON")
}

/// Every file under `dir` plus the run's stdout and stderr, as one text.
fn everything_written(dir: &Path, run: &Output) -> String {
    let mut text = String::from_utf8_lossy(&run.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&run.stderr));
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supabase_run_seeds_tagged_users_that_cleanup_removes_without_leaking_secrets() {
    let cancel = CancellationToken::new();
    let stack = Stack::start_for_tests(StackConfig::new(pro()), cancel.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    // A password in the database URL (trust auth ignores it) must not be written anywhere.
    let db_url = stack
        .database_url
        .replacen("postgres@", "postgres:db-pw-must-not-leak@", 1);
    assert_ne!(db_url, stack.database_url);
    let mut run = with_keys(syncstorm(), &stack);
    run.arg("run")
        .arg(scenario(dir.path(), &stack.url, ""))
        .arg("--out")
        .arg(&out_dir)
        .arg("--database-url")
        .arg(&db_url);
    let run = output(run).await;
    let code = run.status.code();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}\n{stderr}");

    let client = db(&stack).await;
    let tags = run_tags(&client).await;
    assert_eq!(tags.len(), 1, "one run, one tag: {tags:?}");
    let (tag, users) = tags[0].clone();
    assert_eq!(
        users as u64, USERS,
        "every seeded user carries the run's tag"
    );
    let ids = users_of_tag(&client, &tag).await;
    assert!(
        rows_of(&client, &ids).await >= USERS as i64,
        "rows seeded by SQL"
    );

    let written = everything_written(&out_dir, &run);
    let mut secrets = vec![
        ("service role key", stack.service_role_key.clone()),
        ("anon key", stack.anon_key.clone()),
        ("JWT secret", stack.jwt_secret.clone()),
        ("database password", "db-pw-must-not-leak".to_owned()),
        // Any JWT at all (access tokens too): every HS256 header starts like this.
        ("a JWT", "eyJhbGciOi".to_owned()),
    ];
    for index in 0..USERS {
        let password = syncstorm::population::credentials(&tag, index).password;
        secrets.push(("a seeded user's password", password));
    }
    for (what, secret) in &secrets {
        assert!(
            !written.contains(secret.as_str()),
            "{what} leaked into the run's output"
        );
    }

    let first = report(&output(cleanup_cmd(&stack, &tag)).await);
    assert_eq!((first.users_found, first.users_deleted), (USERS, USERS));
    assert_eq!(first.via, "admin-api");
    assert!(
        users_of_tag(&client, &tag).await.is_empty(),
        "users are gone"
    );
    assert_eq!(rows_of(&client, &ids).await, 0, "and their rows with them");
    let second = report(&output(cleanup_cmd(&stack, &tag)).await);
    assert_eq!(
        (second.users_found, second.users_deleted),
        (0, 0),
        "a no-op"
    );
    let cleanup_out = output(cleanup_cmd(&stack, &tag)).await;
    let cleanup_text = String::from_utf8_lossy(&cleanup_out.stderr).into_owned()
        + &String::from_utf8_lossy(&cleanup_out.stdout);
    assert!(!cleanup_text.contains(&stack.service_role_key));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_finishes_what_a_broken_cleanup_left_by_api_and_by_sql() {
    let cancel = CancellationToken::new();
    let stack = Stack::start_for_tests(StackConfig::new(pro()), cancel.clone())
        .await
        .unwrap();
    let endpoint = syncstorm_wire::client::Endpoint::new(&stack.url, &stack.anon_key).unwrap();
    let client = db(&stack).await;
    for (n, by_sql) in [(1, false), (2, true)] {
        let tag = syncstorm::population::credential_tag("cleanup-resume", n, 1_764_000_000);
        let ids = syncstorm::population::create_users(
            &endpoint,
            &stack.service_role_key,
            &tag,
            0..10,
            None,
            &cancel,
        )
        .await
        .unwrap();
        // A "broken" first cleanup that removed only some of them.
        client
            .execute(
                "delete from auth.users where id = any($1)",
                &[&ids[..4].to_vec()],
            )
            .await
            .unwrap();
        let args = CleanupArgs {
            run_tag: tag.clone(),
            database_url: by_sql.then(|| stack.database_url.clone()),
            url: Some(stack.url.clone()),
            allow_hosts: Vec::new(),
            max_request_rate: 200.0,
        };
        let env = |name: &str| match name {
            "SUPABASE_ANON_KEY" => Some(stack.anon_key.clone()),
            "SUPABASE_SERVICE_ROLE_KEY" => Some(stack.service_role_key.clone()),
            _ => None,
        };
        let done = cleanup::cleanup(&args, env).await.unwrap();
        assert_eq!(done.users_deleted, 6, "by_sql={by_sql}: {done:?}");
        assert_eq!(cleanup::cleanup(&args, env).await.unwrap().users_found, 0);
        assert!(users_of_tag(&client, &tag).await.is_empty());
    }
    cancel.cancel();
}

/// A database URL written in the scenario is copied into the result (`scenario.as_run`) and the
/// report unless the run redacts it (`run_cmd/outcome.rs` builds `as_run` with
/// `syncstorm::target::redact_document`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_scenario_database_url_stays_out_of_the_result_and_report() {
    let cancel = CancellationToken::new();
    let stack = Stack::start_for_tests(StackConfig::new(pro()), cancel.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let db_url = stack
        .database_url
        .replacen("postgres@", "postgres:pw-in-scenario@", 1);
    let in_scenario = format!("database_url = \"{db_url}\"");
    let mut run = with_keys(syncstorm(), &stack);
    run.arg("run")
        .arg(scenario(dir.path(), &stack.url, &in_scenario))
        .arg("--out")
        .arg(&out_dir);
    let run = output(run).await;
    let code = run.status.code();
    assert!(matches!(code, Some(0) | Some(3)), "exit {code:?}");
    let written = everything_written(&out_dir, &run);
    assert!(
        written.contains("postgres:redacted@"),
        "the URL is still shown"
    );
    assert!(!written.contains("pw-in-scenario"), "the password leaked");
    let client = db(&stack).await;
    for (tag, _) in run_tags(&client).await {
        cleanup::cleanup_by_sql(&stack.database_url, &tag)
            .await
            .unwrap();
    }
    cancel.cancel();
}

/// `.invalid` never resolves (RFC 2606): had anything tried to connect, the error would be a
/// DNS failure. The answer must be the guard's sentence and exit code 2, for the target URL and
/// for the database URL; allowing the host gets past the guard (and then fails to resolve).
#[test]
fn a_remote_host_is_refused_by_the_guard_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let remote = "http://loadtarget.invalid:8000";
    let refused = |cmd: &mut std::process::Command| {
        let out = cmd
            .env("SUPABASE_ANON_KEY", "a")
            .env("SUPABASE_SERVICE_ROLE_KEY", "s");
        let out = out.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("is not loopback and not allowed"),
            "{stderr}"
        );
        assert!(stderr.contains("--allow-host"), "{stderr}");
        stderr
    };
    let plain = scenario(dir.path(), remote, "");
    refused(
        syncstorm()
            .arg("run")
            .arg(&plain)
            .arg("--out")
            .arg(dir.path()),
    );
    let remote_db = "postgres://u:hunter2-secret@db.invalid:5432/postgres";
    let stderr = refused(
        syncstorm()
            .arg("run")
            .arg(&plain)
            .args([
                "--allow-host",
                "loadtarget.invalid",
                "--database-url",
                remote_db,
            ])
            .arg("--out")
            .arg(dir.path()),
    );
    assert!(stderr.contains("db.invalid") && !stderr.contains("hunter2-secret"));
    refused(syncstorm().args([
        "cleanup",
        "--run-tag",
        "x-1-2.syncstorm.test",
        "--url",
        remote,
    ]));
    refused(syncstorm().args([
        "cleanup",
        "--run-tag",
        "x-1-2.syncstorm.test",
        "--database-url",
        remote_db,
    ]));
    // Allowed in the scenario: past the guard, so the failure is now the network's.
    let allowed = scenario(
        dir.path(),
        remote,
        r#"allow_hosts = ["loadtarget.invalid"]"#,
    );
    let out = syncstorm()
        .env("SUPABASE_ANON_KEY", "a")
        .env("SUPABASE_SERVICE_ROLE_KEY", "s")
        .arg("run")
        .arg(&allowed)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not loopback and not allowed"), "{stderr}");
    assert_ne!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn keys_subcommand_prints_keys_that_verify_with_the_secret() {
    let secret = "a-secret-for-the-keys-subcommand-test-0123456789";
    let out = syncstorm()
        .args(["keys", "--jwt-secret", secret])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for (var, role) in [("ANON_KEY=", "anon"), ("SERVICE_ROLE_KEY=", "service_role")] {
        let line = text.lines().find(|l| l.starts_with(var)).expect(var);
        let claims = syncstorm_wire::jwt::decode(secret, &line[var.len()..]).unwrap();
        assert_eq!(claims.role, role);
    }
    let short = syncstorm()
        .args(["keys", "--jwt-secret", "short"])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
}

fn pro() -> syncstorm_plans::SupabasePlan {
    syncstorm_plans::SupabasePlan::preset("pro").unwrap()
}
