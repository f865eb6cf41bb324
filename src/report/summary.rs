//! The top of the report: title, verdict banner, key figures, thresholds and risk headlines.

use std::fmt::Write;

use super::html::{count, esc, ms, pct, table};
use super::risks::{Finding, Verdict};
use crate::result::{Outcome, RunResult};

pub fn header(r: &RunResult) -> String {
    let mut out = format!("<h1>{}</h1>", esc(&r.scenario.name));
    if let Some(q) = r.scenario.question.as_deref().filter(|q| !q.is_empty()) {
        let _ = write!(out, "<p class=\"sub\">{}</p>", esc(q));
    }
    let plan = r
        .plan
        .as_ref()
        .map_or("no plan".into(), |p| format!("plan {}", p.name));
    let target = if r.target.kind.is_empty() {
        String::new()
    } else {
        format!(" · {}", r.target.describe())
    };
    let target = match &r.machine.cpu_sets {
        Some(sets) => format!(
            "{target} · database and stack on {} of {} cores",
            sets.server.len(),
            r.machine.cores
        ),
        None => target,
    };
    let shards = if r.merged_shards > 0 {
        format!(" · merged from {} shards", r.merged_shards)
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<p class=\"sub\">Started {} · {}ran {} · {}{} · {} · {} cores{}</p>",
        esc(&r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        esc(&setup_line(r)),
        esc(&duration(r.duration_s)),
        esc(&plan),
        esc(&target),
        esc(&r.machine.hostname),
        r.machine.cores,
        esc(&shards)
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#risk-1\">Risk 1</a><a href=\"#risk-2\">Risk 2</a><a href=\"#risk-3\">Risk 3</a><a href=\"#latency\">Latency</a><a href=\"#throughput\">Throughput</a><a href=\"#server\">Server</a><a href=\"#oracle\">Correctness</a><a href=\"#resources\">Resources</a><a href=\"#generator\">Generator</a><a href=\"#scenario\">Scenario</a></nav>");
    out
}

/// `set up 50000 users and 100000 sessions in 41 s by SQL · `, or nothing for a result
/// from before setup was recorded.
fn setup_line(r: &RunResult) -> String {
    let Some(s) = &r.setup else {
        return String::new();
    };
    let how = match s.method.as_str() {
        "sql" => "by SQL",
        "admin_api" => "through the admin API",
        _ => "",
    };
    let sessions = match s.sessions {
        0 => String::new(),
        n => format!(" and {} sessions", count(n)),
    };
    let time = match s.duration_s {
        t if t < 10.0 => format!("{t:.1} s"),
        t => duration(t),
    };
    let late = match s.late_start_s {
        Some(late) if late >= 0.5 => {
            format!(" · the load started {late:.1} s after --start-at (setup ran past it)")
        }
        _ => String::new(),
    };
    format!(
        "set up {} users{sessions} in {time} {how}{late} · ",
        count(s.users)
    )
}

pub fn duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec} s"),
        (0, m, sec) => format!("{m} min {sec} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// The banner: the one-line answer for whoever reads only this.
fn banner(r: &RunResult, findings: &[Finding]) -> String {
    let confirmed: Vec<String> = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Confirmed)
        .map(|f| format!("risk {}", f.number))
        .collect();
    let breached = r.thresholds.iter().filter(|t| !t.passed).count();
    let oracle_bad = r.oracle.as_ref().is_some_and(|o| !o.clean());
    let (class, head) = match r.status.outcome {
        Outcome::Failed => ("fail", "The run failed".to_owned()),
        _ if breached > 0 => (
            "fail",
            format!("{breached} of {} thresholds breached", r.thresholds.len()),
        ),
        _ if oracle_bad => ("fail", "Data correctness checks failed".to_owned()),
        Outcome::Interrupted => (
            "warn",
            "Interrupted: the figures cover only what ran".to_owned(),
        ),
        _ if !confirmed.is_empty() => (
            "warn",
            "Thresholds held, but risks were confirmed".to_owned(),
        ),
        _ => ("pass", "All thresholds held".to_owned()),
    };
    let mut detail = Vec::new();
    if !confirmed.is_empty() {
        detail.push(format!("Confirmed: {}.", confirmed.join(", ")));
    }
    if super::generator::was_bottleneck(r) {
        detail.push(
            "The generator was saturated at times; see Generator health before trusting latencies."
                .into(),
        );
    }
    if let Some(m) = &r.status.message {
        detail.push(m.clone());
    }
    format!(
        "<div class=\"banner {class}\">{}<small>{}</small></div>",
        esc(&head),
        esc(&detail.join(" "))
    )
}

fn figure(value: &str, label: &str) -> String {
    format!(
        "<div class=\"figure\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )
}

pub fn summary(r: &RunResult, findings: &[Finding]) -> String {
    let mut body = banner(r, findings);
    let total = r.total_count();
    let err_rate = if total > 0 {
        r.total_errors() as f64 / total as f64
    } else {
        0.0
    };
    body.push_str("<h3>Risks of the FinOS report</h3>");
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                format!("<a href=\"#risk-{}\">Risk {}</a>", f.number, f.number),
                esc(f.title),
                format!(
                    "<span class=\"badge {}\">{}</span>",
                    f.verdict.class(),
                    esc(f.verdict.words())
                ),
                esc(&f.summary),
            ]
        })
        .collect();
    body.push_str(&table("risks", &["", "risk", "verdict", "evidence"], &rows));
    // The first screen answers the planner: verdicts, then what to run next, then figures.
    body.push_str(&super::next_steps::html(r, findings));
    let secs = r.duration_s.max(1.0);
    body.push_str("<div class=\"figures\">");
    body.push_str(&figure(&count(r.peak.devices), "peak devices"));
    body.push_str(&figure(&count(r.peak.websockets), "peak websockets"));
    body.push_str(&figure(&count(total), "operations"));
    body.push_str(&figure(
        &format!("{:.0}/s", total as f64 / secs),
        "mean throughput",
    ));
    body.push_str(&figure(&pct(err_rate), "errors"));
    if let Some(o) = &r.oracle {
        body.push_str(&figure(
            &format!("{} / {}", count(o.users_converged), count(o.users_checked)),
            "users converged",
        ));
    }
    body.push_str("</div>");
    body.push_str(&thresholds(r));
    body.push_str(&operations(r));
    super::html::section("summary", "Summary", &body)
}

fn thresholds(r: &RunResult) -> String {
    if r.thresholds.is_empty() {
        return "<h3>Thresholds</h3><p class=\"note\">The scenario set no thresholds.</p>".into();
    }
    let rows: Vec<Vec<String>> = r
        .thresholds
        .iter()
        .map(|t| {
            let shown = if t.shown.is_empty() {
                t.value.map_or("no data".into(), |v| format!("{v}"))
            } else {
                t.shown.clone()
            };
            let (class, word) = if t.passed {
                ("pass", "passed")
            } else {
                ("fail", "breached")
            };
            vec![
                format!("<code>{}</code>", esc(&t.expression)),
                esc(&shown),
                format!("<span class=\"badge {class}\">{word}</span>"),
            ]
        })
        .collect();
    format!(
        "<h3>Thresholds</h3>{}",
        table("thresholds", &["expression", "measured", "result"], &rows)
    )
}

pub fn operations(r: &RunResult) -> String {
    let rows: Vec<Vec<String>> = r
        .operations
        .iter()
        .map(|(name, o)| {
            vec![
                format!("<code>{}</code>", esc(name)),
                count(o.count),
                format!("{} ({})", count(o.errors), pct(o.error_rate())),
                latency(o, o.p50_ms),
                latency(o, o.p90_ms),
                latency(o, o.p99_ms),
                latency(o, o.p999_ms),
                latency(o, o.max_ms),
            ]
        })
        .collect();
    let note = format!(
        "<p class=\"note\">Latencies are of successful operations, from HdrHistograms (3 significant figures). Coordinated omission: {}{}</p>",
        esc(&r.coordinated_omission.correction),
        if r.coordinated_omission.note.is_empty() {
            String::new()
        } else {
            format!(" — {}", esc(&r.coordinated_omission.note))
        }
    );
    format!(
        "<h3>Operations</h3>{}{note}",
        table(
            "nums",
            &[
                "operation",
                "count",
                "errors",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "max"
            ],
            &rows
        )
    )
}

pub fn footer(r: &RunResult) -> String {
    format!(
        "<footer>syncstorm result schema {} · {} · {} · rendered offline, no external resources</footer>",
        r.schema_version,
        esc(&r.machine.os),
        esc(&r.machine.kernel)
    )
}

/// A latency cell: "—" when the operation never succeeded (there is no latency to show).
pub fn latency(o: &crate::result::OperationResult, value_ms: f64) -> String {
    if o.count == o.errors {
        "—".into()
    } else {
        ms(value_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::SetupInfo;

    #[test]
    fn the_header_says_how_long_setup_took() {
        let mut r = RunResult::default();
        assert!(!header(&r).contains("set up"));
        r.setup = Some(SetupInfo {
            duration_s: 41.2,
            method: "sql".into(),
            users: 50_000,
            sessions: 100_000,
            rows: 1_000_000,
            ..SetupInfo::default()
        });
        let html = header(&r);
        assert!(html.contains("set up 50"), "{html}");
        assert!(html.contains("sessions in 41 s by SQL"), "{html}");
        assert!(!html.contains("start-at"), "{html}");
        r.setup.as_mut().unwrap().late_start_s = Some(12.3);
        assert!(
            header(&r).contains("started 12.3 s after"),
            "{}",
            header(&r)
        );
    }
}
