//! The HTML report: verdict per risk, escaping, no external resources, comparison.

mod report_support;

use report_support::{Shape, synthetic};
use syncstorm::report::{self, Verdict};

const STORM: Shape = Shape {
    storm: true,
    seconds: 90,
};
const CALM: Shape = Shape {
    storm: false,
    seconds: 90,
};

/// Keeps a copy of a rendered page in the target's temp dir, to look at in a browser.
fn keep(name: &str, html: &str) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, html).unwrap();
    println!("rendered {}", path.display());
}

fn assert_offline(html: &str) {
    let lower = html.to_lowercase();
    for needle in [
        "src=\"http",
        "href=\"http",
        "url(http",
        "@import",
        "<link",
        "<script",
        "//cdn",
    ] {
        assert!(
            !lower.contains(needle),
            "the page refers to an external resource: {needle}"
        );
    }
}

#[test]
fn a_storm_confirms_all_three_risks_with_numbers() {
    let r = synthetic("risk1-token-storm", STORM);
    let findings = report::assess(&r);
    let verdicts: Vec<Verdict> = findings.iter().map(|f| f.verdict).collect();
    assert_eq!(verdicts, [Verdict::Confirmed; 3], "{findings:#?}");
    let risk1 = findings[0].headline();
    assert!(
        risk1.starts_with("risk 1: confirmed — at 33k opens/min"),
        "{risk1}"
    );
    assert!(
        risk1.contains("token checks failed at") && risk1.contains("pool_timeout"),
        "{risk1}"
    );
    assert!(risk1.contains("the pool queue grew past 10.0 s"), "{risk1}");
    assert!(
        findings[1]
            .summary
            .contains("websocket upgrades were refused"),
        "{}",
        findings[1].summary
    );
    assert!(
        findings[2]
            .summary
            .contains("ordinary pushes slowed from p99"),
        "{}",
        findings[2].summary
    );

    let html = report::render_html(&r);
    keep("report-storm.html", &html);
    for id in [
        "risk-1",
        "risk-2",
        "risk-3",
        "latency",
        "throughput",
        "server",
        "oracle",
        "generator",
        "scenario",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\""))
                || html.contains(&format!("id=\"{id}\">")),
            "missing section {id}"
        );
    }
    assert!(
        html.matches("<svg").count() >= 12,
        "charts are drawn inline"
    );
    assert!(html.contains("data corruption found"));
    assert!(html.contains("breached"));
    assert_offline(&html);
}

#[test]
fn a_calm_run_observes_nothing_and_says_what_was_not_exercised() {
    let mut r = synthetic("quickstart", CALM);
    r.counters.remove("bulk_rows");
    for p in &mut r.timeseries.points {
        p.gauges.remove("bulk_imports_running");
    }
    let findings = report::assess(&r);
    assert_eq!(
        findings[0].verdict,
        Verdict::NotObserved,
        "{:?}",
        findings[0]
    );
    assert_eq!(
        findings[2].verdict,
        Verdict::NotExercised,
        "{:?}",
        findings[2]
    );
    assert_eq!(
        findings[2].headline(),
        "risk 3: not exercised by this scenario — the scenario ran no bulk imports."
    );
    let html = report::render_html(&r);
    keep("report-calm.html", &html);
    assert!(html.contains("no data corruption found"));
    assert_offline(&html);
}

/// A run whose swarm did not mark import windows: risk 3 falls back to the scenario's
/// schedule and the seconds with row-lock waits.
fn unmarked(shape: Shape) -> syncstorm::result::RunResult {
    let mut r = synthetic("risk3-row-lock", shape);
    r.counters.remove("bulk_rows");
    for p in &mut r.timeseries.points {
        p.gauges.remove("bulk_imports_running");
    }
    r.scenario.as_run = serde_json::json!({"behaviour": {"bulk_import": {"fraction": 0.01, "rows": 5000, "at": "20s"}}});
    r
}

#[test]
fn without_import_marks_risk_3_is_judged_from_lock_waits() {
    let storm = report::assess(&unmarked(STORM)).remove(2);
    assert_eq!(storm.verdict, Verdict::Confirmed, "{storm:?}");
    assert!(
        storm
            .summary
            .starts_with("with bulk imports of 5,000 rows each, pushes slowed from p99"),
        "{}",
        storm.summary
    );
    assert!(
        storm.summary.contains("in seconds with row-lock waits"),
        "{}",
        storm.summary
    );
    let calm = report::assess(&unmarked(CALM)).remove(2);
    assert_eq!(calm.verdict, Verdict::NotObserved, "{calm:?}");
    assert!(
        calm.summary.contains("no session waited on a row lock"),
        "{}",
        calm.summary
    );
}

#[test]
fn risk_3_is_never_confirmed_without_lock_waits_between_users() {
    let mut r = synthetic("risk3-row-lock", STORM);
    for s in &mut r.probes.samples {
        s.lock_waits_same_user += s.lock_waits_cross_user;
        s.lock_waits_cross_user = 0;
    }
    let risk3 = report::assess(&r).remove(2);
    assert_eq!(risk3.verdict, Verdict::Strained, "{risk3:?}");
    assert!(
        risk3
            .summary
            .contains("without any lock wait between users"),
        "{}",
        risk3.summary
    );
    assert!(
        risk3.summary.contains("within one user's own rows"),
        "{}",
        risk3.summary
    );
}

#[test]
fn risk_2_trusts_the_servers_connection_count_and_counts_dropped_events() {
    let mut r = synthetic("risk2-websocket-limit", CALM);
    r.counters.remove("ws_rejected");
    for (i, s) in r.probes.samples.iter_mut().enumerate() {
        s.realtime.insert("connections".into(), 300.0);
        s.realtime
            .insert("events_dropped_budget_total".into(), i as f64);
    }
    let risk2 = report::assess(&r).remove(1);
    assert_eq!(risk2.verdict, Verdict::Confirmed, "{risk2:?}");
    assert!(
        risk2.summary.contains("a peak of 300 open websockets"),
        "{}",
        risk2.summary
    );
    assert!(
        risk2.summary.contains("89 realtime events were dropped"),
        "{}",
        risk2.summary
    );
    assert!(
        risk2
            .evidence
            .iter()
            .any(|e| e.contains("the devices counted 450")),
        "{:?}",
        risk2.evidence
    );
}

#[test]
fn text_from_the_result_is_escaped() {
    let mut r = synthetic("<script>alert(1)</script>", CALM);
    r.scenario.question = Some("\"quoted\" & <b>bold</b>".into());
    r.thresholds[0].expression = "token_check.p99 < 500ms <script>".into();
    let html = report::render_html(&r);
    assert!(!html.contains("<script>"), "raw script tag in the page");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;"));
    let junit = report::junit::render(&r);
    assert!(!junit.contains("<script>"));
}

#[test]
fn a_comparison_shows_both_runs_with_deltas() {
    let (a, b) = (synthetic("batch-1", STORM), synthetic("batch-25", CALM));
    let html = report::render_compare(&a, &b, ("batch-1.json", "batch-25.json"));
    keep("compare.html", &html);
    assert!(html.contains("Comparison: batch-1 vs batch-25"));
    assert!(
        html.contains("delta-better"),
        "B's lower latencies are marked better"
    );
    assert!(html.contains("<code>token_check</code>"));
    assert!(html.contains("stroke-dasharray") || html.matches("<svg").count() >= 6);
    assert_offline(&html);
}

#[test]
fn the_console_summary_is_a_table_with_the_verdicts() {
    let r = synthetic("risk1-token-storm", STORM);
    let text = report::console::summary(&r, false);
    assert!(text.contains("token_check"));
    assert!(text.contains("risk 1: confirmed"));
    assert!(text.contains("FAIL token_check.p99 < 500ms"));
    assert!(text.contains("oracle: 998/1,000 users converged, 2 lost updates"));
}

#[test]
fn junit_lists_one_case_per_threshold() {
    let r = synthetic("risk1-token-storm", STORM);
    let xml = report::junit::render(&r);
    assert_eq!(xml.matches("<testcase").count(), r.thresholds.len());
    assert_eq!(
        xml.matches("<failure").count(),
        r.thresholds.iter().filter(|t| !t.passed).count()
    );
    assert!(xml.contains("tests=\"2\" failures=\"2\""), "{xml}");
}

#[test]
fn an_oracle_that_missed_devices_says_it_is_inconclusive() {
    let mut r = synthetic("quickstart", CALM);
    let o = r.oracle.as_mut().unwrap();
    o.devices_started = o.devices_checked + 7;
    let html = report::render_html(&r);
    assert!(html.contains("inconclusive: not every device was checked"));
    assert!(html.contains("did not stop in time"));
    let o = r.oracle.as_mut().unwrap();
    o.devices_started = o.devices_checked;
    assert!(!report::render_html(&r).contains("inconclusive: not every device"));
}
