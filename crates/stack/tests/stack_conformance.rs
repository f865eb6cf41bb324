//! Conformance with the real `@supabase/supabase-js` v2 client: runs
//! `tests/conformance/supabase_js.mjs` with Node against a stack booted here. Missing Node or
//! `node_modules` is a failure with the command that fixes it, never a skip.

mod stack_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

fn conformance_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

fn require_node_and_modules(dir: &std::path::Path) {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "Node.js was not found: install Node 20+, then run `npm ci --prefix tests/conformance`"
    );
    assert!(
        dir.join("node_modules/@supabase/supabase-js").is_dir()
            && dir.join("node_modules/ws").is_dir(),
        "the conformance packages are not installed: run `npm ci --prefix tests/conformance`"
    );
}

#[tokio::test]
async fn supabase_js_v2_works_against_the_stack() {
    let dir = conformance_dir();
    require_node_and_modules(&dir);
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
