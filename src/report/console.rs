//! The k6-style summary printed at the end of a run (plain text, fits 100 columns).

use std::fmt::Write;

use super::html::{count, pct};
use super::summary::{duration, latency};
use crate::result::RunResult;

/// The summary; `marks` chooses ✓/✗ (a terminal) or PASS/FAIL (plain logs).
pub fn summary(r: &RunResult, unicode_marks: bool) -> String {
    let (ok, bad) = if unicode_marks {
        ("✓", "✗")
    } else {
        ("PASS", "FAIL")
    };
    let mut out = String::new();
    let plan = r
        .plan
        .as_ref()
        .map_or(String::new(), |p| format!(" · plan {}", p.name));
    let _ = writeln!(
        out,
        "\n  syncstorm · {} · {:?} after {}{plan}\n",
        r.scenario.name,
        r.status.outcome,
        duration(r.duration_s)
    );
    let _ = writeln!(
        out,
        "  {:<18} {:>10} {:>14} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation", "count", "errors", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, o) in &r.operations {
        let _ = writeln!(
            out,
            "  {:<18} {:>10} {:>14} {:>9} {:>9} {:>9} {:>9} {:>9}",
            truncate(name, 18),
            count(o.count),
            format!("{} {}", count(o.errors), pct(o.error_rate())),
            latency(o, o.p50_ms),
            latency(o, o.p90_ms),
            latency(o, o.p99_ms),
            latency(o, o.p999_ms),
            latency(o, o.max_ms)
        );
    }
    let total = r.total_count();
    let err = if total > 0 {
        r.total_errors() as f64 / total as f64
    } else {
        0.0
    };
    let _ = writeln!(
        out,
        "\n  peak devices {} · peak websockets {} · operations {} ({:.0}/s) · errors {}",
        count(r.peak.devices),
        count(r.peak.websockets),
        count(total),
        total as f64 / r.duration_s.max(1.0),
        pct(err)
    );
    if let Some(o) = &r.oracle {
        let _ = writeln!(
            out,
            "  oracle: {}/{} users converged, {} lost updates, {} skipped rows, {} FK errors",
            count(o.users_converged),
            count(o.users_checked),
            count(o.lost_updates),
            count(o.skipped_rows),
            count(o.fk_errors)
        );
    }
    out.push('\n');
    for f in super::risks::assess(r) {
        let _ = writeln!(out, "  {}", f.headline());
    }
    for w in super::generator::assess(r).warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if !r.thresholds.is_empty() {
        out.push_str("\n  thresholds\n");
        for t in &r.thresholds {
            let mark = if t.passed { ok } else { bad };
            let shown = if t.shown.is_empty() {
                t.value.map_or("no data".into(), |v| v.to_string())
            } else {
                t.shown.clone()
            };
            let _ = writeln!(out, "    {mark} {:<40} {shown}", t.expression);
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
