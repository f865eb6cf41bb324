//! `syncstorm stack` as a user runs it: prints env lines once ready, serves the Supabase API,
//! and on SIGINT (Ctrl-C) or SIGTERM exits 0 with its PostgreSQL gone.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

async fn run_until(signal: Signal) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncstorm"))
        .args(["stack", "--plan", "free"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("syncstorm starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut env = HashMap::new();
    let read_env = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let (key, value) = line.split_once('=').expect("env-file lines");
            env.insert(key.to_string(), value.to_string());
            if key == "DATABASE_URL" {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read_env)
        .await
        .expect("the stack gets ready");
    for key in [
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_JWT_SECRET",
    ] {
        assert!(env.contains_key(key), "{key} printed");
    }
    let url = format!(
        "{}/rest/v1/user_sync_tokens?select=sync_token",
        env["SUPABASE_URL"]
    );
    let response = reqwest::Client::new()
        .get(url)
        .header("apikey", &env["SUPABASE_ANON_KEY"])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Durable by default, as Supabase: commits pay for their disk flush.
    let (db, conn) = tokio_postgres::connect(&env["DATABASE_URL"], tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(conn);
    for setting in ["fsync", "full_page_writes", "synchronous_commit"] {
        let row = db.query_one(&format!("show {setting}"), &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "on", "{setting}");
    }
    drop(db);
    let _ = connection.await;

    kill(Pid::from_raw(child.id().unwrap() as i32), signal).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after the signal")
        .unwrap();
    assert!(status.success(), "clean exit after {signal}: {status}");
    // Its log, written to a pipe (a CI log), carries no colour codes.
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut log)
        .await
        .unwrap();
    assert!(log.contains("embedded stack ready"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "no escape codes off a terminal: {log:?}"
    );
    let gone = tokio_postgres::connect(&env["DATABASE_URL"], tokio_postgres::NoTls).await;
    assert!(gone.is_err(), "no postgres survives the stack");
}

#[tokio::test]
async fn ctrl_c_stops_the_stack_and_its_postgres() {
    run_until(Signal::SIGINT).await;
}

#[tokio::test]
async fn sigterm_stops_the_stack_and_its_postgres() {
    run_until(Signal::SIGTERM).await;
}
