//! Conformance with the real `@supabase/supabase-js` v2 client: runs
//! `tests/conformance/supabase_js.mjs` with Node against a stack booted here. Its npm
//! packages install on first use; a machine without Node skips, saying so.

mod conformance_support;
mod stack_support;

use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

#[tokio::test]
async fn supabase_js_v2_works_against_the_stack() {
    let Some(dir) = conformance_support::conformance_client() else {
        return;
    };
    let s = stack_support::boot().await;
    let run = Command::new("node")
        .arg(dir.join("supabase_js.mjs"))
        .current_dir(&dir)
        .env("SUPABASE_URL", &s.stack.url)
        .env("SUPABASE_ANON_KEY", &s.stack.anon_key)
        .env("SUPABASE_SERVICE_ROLE_KEY", &s.stack.service_role_key)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the conformance script finishes within 120 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "supabase-js conformance failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok - ")).count(),
        10,
        "every check ran:\n{stdout}"
    );
    s.stop().await;
}
