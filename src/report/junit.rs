//! Thresholds as JUnit XML: one test case per threshold, so CI systems show them as tests.

use std::fmt::Write;

use super::html::esc;
use crate::result::RunResult;

pub fn render(r: &RunResult) -> String {
    let failures = r.thresholds.iter().filter(|t| !t.passed).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"syncstorm\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\" timestamp=\"{}\">",
        r.thresholds.len(),
        esc(&r.scenario.name),
        r.thresholds.len(),
        r.duration_s,
        r.started_at.format("%Y-%m-%dT%H:%M:%S")
    );
    for t in &r.thresholds {
        let _ = write!(
            out,
            "    <testcase classname=\"syncstorm.thresholds\" name=\"{}\">",
            esc(&t.expression)
        );
        if !t.passed {
            let _ = write!(
                out,
                "<failure message=\"measured {}\">{} failed: measured {}</failure>",
                esc(&t.shown),
                esc(&t.expression),
                esc(&t.shown)
            );
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
