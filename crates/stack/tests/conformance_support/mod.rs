//! The real clients of the tests: the Node ones (supabase-js, playwright-core) in
//! `tests/conformance` with its npm packages installed on first use, once per checkout, and the
//! Python one (`supabase` from PyPI) in a virtual environment inside the build folder. Each
//! installs under a file lock, so test binaries starting together install once. Without Node
//! (or npm), or without Python 3.11+ (or its `venv` module), the tests say so and skip.
//! Shared by `crates/stack/tests` and the root `tests/` (by path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The conformance client's directory, ready to run; `None` (after printing why) where Node
/// or npm is not installed. A failed install is a test failure with npm's own words.
pub fn conformance_client() -> Option<PathBuf> {
    // The workspace's, from whichever crate's tests this module is compiled into.
    let dir = conformance_dir();
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

/// The workspace's `tests/conformance`, from whichever crate's tests this module is compiled
/// into.
fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("tests/conformance"))
        .find(|d| d.join("package.json").is_file())
        .expect("tests/conformance is in the workspace")
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

/// The oldest Python the pinned `supabase` release installs on (its `Requires-Python`).
const MIN_PYTHON: (u32, u32) = (3, 11);

/// The Python client: the interpreter of a virtual environment (in the build folder's
/// `tmp/py-venv`) with `tests/conformance/requirements.txt` installed, and the conformance
/// directory its scripts are in. `None` (after printing why) where python3, a recent enough
/// one, or its `venv` module is missing. A failed install is a test failure with pip's words.
pub fn python_client() -> Option<(PathBuf, PathBuf)> {
    let dir = conformance_dir();
    let skip = |why: String| {
        eprintln!("SKIPPED: {why}; the supabase-py conformance test needs it");
        None
    };
    let Some(version) = python_version() else {
        return skip("python3 was not found; install Python 3.11+".into());
    };
    if version < MIN_PYTHON {
        return skip(format!(
            "python3 is {}.{}, the pinned supabase client needs 3.{}+",
            version.0, version.1, MIN_PYTHON.1
        ));
    }
    if !runs(Command::new("python3").args(["-c", "import venv, ensurepip"])) {
        return skip(
            "python3's venv module (with ensurepip) was not found; install python3-venv".into(),
        );
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-venv");
    install_python_packages(&venv, &dir.join("requirements.txt"));
    Some((venv.join("bin/python"), dir))
}

/// `python3`'s (major, minor), or `None` where it does not run.
fn python_version() -> Option<(u32, u32)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// The venv holds exactly the requirements it was built from (a copy beside it), so editing
/// `requirements.txt` rebuilds it.
fn python_installed(venv: &Path, requirements: &str) -> bool {
    venv.join("bin/python").is_file()
        && std::fs::read_to_string(venv.join("requirements.installed"))
            .is_ok_and(|installed| installed == requirements)
}

/// `python3 -m venv` and `pip install -r` unless an earlier test already did.
fn install_python_packages(venv: &Path, requirements_path: &Path) {
    let requirements = std::fs::read_to_string(requirements_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", requirements_path.display()));
    if python_installed(venv, &requirements) {
        return;
    }
    let parent = venv.parent().expect("the venv is inside the build folder");
    std::fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    let lock_path = parent.join("py-venv.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if python_installed(venv, &requirements) {
        return; // another test binary installed them while this one waited
    }
    eprintln!(
        "installing the supabase-py conformance client into {}",
        venv.display()
    );
    step(
        "python3 -m venv",
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv),
    );
    step(
        "pip install -r requirements.txt",
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(requirements_path),
    );
    std::fs::write(venv.join("requirements.installed"), &requirements)
        .unwrap_or_else(|e| panic!("cannot write into {}: {e}", venv.display()));
}

/// Runs one install step; its failure fails the test with the tool's own words.
fn step(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("`{what}` does not run: {e}"));
    assert!(
        out.status.success(),
        "`{what}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
