//! The real supabase-js client for the conformance tests: `tests/conformance` with its npm
//! packages installed on first use, once per checkout, under a file lock so test binaries
//! starting together install once. Without Node or npm, the tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The conformance client's directory, ready to run; `None` (after printing why) where Node
/// or npm is not installed. A failed install is a test failure with npm's own words.
pub fn conformance_client() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance");
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

fn installed(dir: &Path) -> bool {
    ["@supabase/supabase-js", "ws"]
        .iter()
        .all(|p| dir.join("node_modules").join(p).is_dir())
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
