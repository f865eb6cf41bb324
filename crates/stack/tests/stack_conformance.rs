//! Conformance with two official clients against a stack booted here: `@supabase/supabase-js`
//! v2 (`tests/conformance/supabase_js.mjs`, with Node) and `supabase` for Python
//! (`tests/conformance/supabase_py.py`, whose Auth models are strict pydantic types). Their
//! packages install on first use; a machine without Node or Python 3.11+ skips, saying so.

mod conformance_support;
mod stack_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Runs `program script` against the stack with its URL and keys in the environment; returns
/// its stdout after checking it exited 0 and printed `checks` "ok - " lines.
async fn run_client(s: &stack_support::TestStack, program: &Path, script: &Path, checks: usize) {
    let run = Command::new(program)
        .arg(script)
        .current_dir(script.parent().expect("the script is in a directory"))
        .env("SUPABASE_URL", &s.stack.url)
        .env("SUPABASE_ANON_KEY", &s.stack.anon_key)
        .env("SUPABASE_SERVICE_ROLE_KEY", &s.stack.service_role_key)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the conformance script finishes within 120 s")
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        out.status
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok - ")).count(),
        checks,
        "every check ran:\n{stdout}"
    );
}

#[tokio::test]
async fn supabase_js_v2_works_against_the_stack() {
    let Some(dir) = conformance_support::conformance_client() else {
        return;
    };
    let s = stack_support::boot().await;
    run_client(&s, Path::new("node"), &dir.join("supabase_js.mjs"), 10).await;
    s.stop().await;
}

#[tokio::test]
async fn supabase_py_works_against_the_stack() {
    let Some((python, dir)) = conformance_support::python_client() else {
        return;
    };
    let s = stack_support::boot().await;
    run_client(&s, &python, &dir.join("supabase_py.py"), 13).await;
    s.stop().await;
}
