//! The real supabase-js v2 client (both serializer versions) against our Realtime: subscribe
//! to the user's token row, see a wallet upsert raise it within a second with the row in
//! `new`, and stop hearing after `removeChannel`. The client's npm packages install on first
//! use; a machine without Node skips, saying so.

mod conformance_support;
mod realtime_support;

use realtime_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

struct Listener {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Listener {
    fn spawn(
        dir: &Path,
        server: &Server,
        token: &str,
        vsn: &str,
        table: &str,
        filter: &str,
    ) -> Listener {
        let mut child = Command::new("node")
            .arg("realtime_listen.mjs")
            .current_dir(dir)
            .env("SUPABASE_URL", format!("http://{}", server.addr))
            .env("ANON_KEY", anon_key())
            .env("ACCESS_TOKEN", token)
            .env("VSN", vsn)
            .env("TABLE", table)
            .env("FILTER", filter)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node is installed");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Listener { child, lines }
    }

    async fn next_within(&mut self, within: Duration) -> Value {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .expect("supabase-js said nothing in time")
            .unwrap()
            .expect("supabase-js exited");
        serde_json::from_str(&line).unwrap()
    }

    /// Waits for SUBSCRIBED and the "Subscribed to PostgreSQL" system message.
    async fn until_subscribed(&mut self) {
        let (mut status, mut system) = (false, false);
        while !(status && system) {
            let line = self.next_within(Duration::from_secs(10)).await;
            assert!(line["error"].is_null(), "{line}");
            status |= line["status"] == "SUBSCRIBED";
            system |= line["system"]["message"] == "Subscribed to PostgreSQL";
        }
    }

    async fn command(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .unwrap();
    }
}

async fn subscribe_upsert_remove(vsn: &str) {
    let Some(dir) = conformance_support::conformance_client() else {
        return;
    };
    let server = Server::start(config(ROOMY)).await;
    let (a, a_token) = user(&server.db).await;
    let mut js = Listener::spawn(
        &dir,
        &server,
        &a_token,
        vsn,
        "user_sync_tokens",
        &format!("user_id=eq.{a}"),
    );
    js.until_subscribed().await;

    let started = std::time::Instant::now();
    wallet(&server.db, a).await;
    let line = js.next_within(Duration::from_secs(1)).await;
    let change = &line["change"];
    assert_eq!(change["eventType"], "INSERT", "{line}");
    assert_eq!(change["new"]["user_id"], a.to_string());
    assert_eq!(change["new"]["sync_token"], 1);
    assert!(started.elapsed() < Duration::from_secs(1));

    // Update path: the second wallet raises the token with an UPDATE.
    wallet(&server.db, a).await;
    let line = js.next_within(Duration::from_secs(1)).await;
    assert_eq!(line["change"]["eventType"], "UPDATE", "{line}");
    assert_eq!(line["change"]["new"]["sync_token"], 2);
    assert_eq!(line["change"]["old"]["user_id"], a.to_string());

    js.command("remove").await;
    let mut removed = false;
    while !removed {
        let line = js.next_within(Duration::from_secs(5)).await;
        assert!(line.get("change").is_none(), "{line}");
        removed = line.get("removed").is_some();
    }
    assert_eq!(server.metric("subscriptions_current").await, 0);
    wallet(&server.db, a).await;
    // The change reaches nobody: wait for the poller to have read it, then check the counters.
    let polled = server.metric("poll_changes_total").await;
    for _ in 0..300 {
        if server.metric("poll_changes_total").await > polled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.metric("events_delivered_total").await, 2);
    js.command("quit").await;
    server.stop().await;
}

#[tokio::test]
async fn supabase_js_vsn_1_subscribes_receives_and_removes() {
    subscribe_upsert_remove("1.0.0").await;
}

#[tokio::test]
async fn supabase_js_vsn_2_subscribes_receives_and_removes() {
    subscribe_upsert_remove("2.0.0").await;
}
