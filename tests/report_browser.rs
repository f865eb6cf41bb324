//! The reports in a real browser: a short run's report and a comparison, opened in the
//! machine's Chromium (driven by playwright-core) at 1366×768 and at a phone's 390 px — no
//! console error, no request leaving the file, every chart laid out with a size, the verdict
//! banner on the first screen and readable on a phone. Screenshots land in
//! `target/tmp/report-browser/` for a person to look at. Skips, saying why, without Chromium
//! or Node.

#[path = "../crates/stack/tests/conformance_support/mod.rs"]
mod conformance_support;
mod report_support;
mod run_support;

use report_support::{Shape, synthetic};
use run_support::{finished, only_result, run_into, small_scenario, syncstorm};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.is_file() {
        return Some(path);
    }
    eprintln!(
        "SKIPPED: Chromium was not found at {} (apt-get install chromium, or set CHROMIUM)",
        path.display()
    );
    None
}

fn html_beside(json: &Path) -> PathBuf {
    json.with_extension("html")
}

/// A short real run's result, and a comparison of it with a synthetic storm.
fn reports(dir: &Path) -> (PathBuf, PathBuf) {
    let scenario = small_scenario(dir, 4, 4);
    let out = dir.join("run");
    finished(&mut run_into(&scenario, &out));
    only_result(&out);
    let json = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    let storm = dir.join("storm.json");
    let shape = Shape {
        storm: true,
        seconds: 60,
    };
    synthetic("storm", shape).write_to(&storm).unwrap();
    let compared = dir.join("compare.html");
    let cmp = syncstorm()
        .args(["compare", json.to_str().unwrap(), storm.to_str().unwrap()])
        .args(["--out", compared.to_str().unwrap()])
        .output()
        .expect("syncstorm runs");
    assert_eq!(
        cmp.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cmp.stderr)
    );
    (html_beside(&json), compared)
}

#[test]
fn reports_render_in_chromium_without_errors_or_network_and_answer_on_the_first_screen() {
    let Some(chromium) = chromium() else { return };
    let Some(client) = conformance_support::conformance_client() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (run_html, compare_html) = reports(dir.path());
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(client.join("check_report.mjs"))
        .args([&run_html, &compare_html])
        .env("CHROMIUM", &chromium)
        .env("OUT_DIR", &shots)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser check failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(pages.len(), 4, "two reports at two widths: {stdout}");
    for page in &pages {
        let what = format!("{} at {}", page["report"], page["viewport"]["name"]);
        assert_eq!(
            page["errors"],
            serde_json::json!([]),
            "console errors in {what}"
        );
        assert_eq!(
            page["requests"],
            serde_json::json!([]),
            "network requests from {what}"
        );
        assert!(page["svgs"].as_u64().unwrap() > 0, "charts in {what}");
        assert_eq!(
            page["svgs_without_size"], 0,
            "a chart without a size in {what}"
        );
        let (width, height) = (
            page["viewport"]["width"].as_f64().unwrap(),
            page["viewport"]["height"].as_f64().unwrap(),
        );
        assert!(
            page["page_width"].as_f64().unwrap() <= width,
            "{what} does not scroll sideways: {}",
            page["page_width"]
        );
        let Some(bottom) = page["banner_bottom"].as_f64() else {
            continue; // a comparison has no verdict banner
        };
        assert!(
            bottom <= height,
            "the verdict banner is on the first screen of {what}"
        );
        assert!(
            page["banner_right"].as_f64().unwrap() <= width,
            "the banner fits the width of {what}"
        );
        assert!(
            page["banner_font_px"].as_f64().unwrap() >= 12.0,
            "the banner is readable in {what}"
        );
    }
    eprintln!("screenshots: {}", shots.display());
}
