//! The real Node clients of the tests (supabase-js, playwright-core): `tests/conformance` with
//! its npm packages installed on first use, once per checkout, under a file lock so test
//! binaries starting together install once. Without Node or npm, the tests say so and skip.
//! Shared by `crates/stack/tests` and the root `tests/` (by path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The conformance client's directory, ready to run; `None` (after printing why) where Node
/// or npm is not installed. A failed install is a test failure with npm's own words.
pub fn conformance_client() -> Option<PathBuf> {
    // The workspace's, from whichever crate's tests this module is compiled into.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("tests/conformance"))
        .find(|d| d.join("package.json").is_file())
        .expect("tests/conformance is in the workspace");
    for tool in ["node", "npm"] {
        if !runs(Command::new(tool).arg("--version")) {
            eprintln!(
                "SKIPPED: {tool} was not found; install Node.js 20+ (with npm) to run the \
                 supabase-js conformance tests"
            );
            return None;
        }
    }
    install_packages(&dir);
    Some(dir)
}

fn runs(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// Every dependency `package.json` names is in `node_modules` (so adding one reinstalls).
fn installed(dir: &Path) -> bool {
    let manifest: serde_json::Value = std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let Some(deps) = manifest["dependencies"].as_object() else {
        return false;
    };
    deps.keys()
        .all(|name| dir.join("node_modules").join(name).is_dir())
        && dir.join("node_modules/.package-lock.json").is_file()
}

/// `npm ci` from the committed lock file unless an earlier test already did.
fn install_packages(dir: &Path) {
    if installed(dir) {
        return;
    }
    let lock_path = dir.join(".npm-install.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if installed(dir) {
        return; // another test binary installed them while this one waited
    }
    eprintln!(
        "installing the supabase-js conformance client: npm ci in {}",
        dir.display()
    );
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "`npm ci` in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
