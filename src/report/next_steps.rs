//! "What to try next": for each risk the run confirmed or strained, the mitigation runs that
//! answer whether it helps — as commands a planner can paste. Shipped scenarios are named by
//! path; a scenario of the user's own is `<this scenario>`.

use super::html::esc;
use super::risks::{Finding, Verdict};
use crate::result::RunResult;

/// Scenarios shipped in `scenarios/`, which a command can name by path.
const SHIPPED: [&str; 7] = [
    "quickstart",
    "risk1-token-storm",
    "risk1-reconnect-storm",
    "risk2-websocket-limit",
    "risk3-row-lock",
    "roadmap-batching",
    "roadmap-jittered-retries",
];

/// (why, command) per suggestion, for the risks that were confirmed or under strain.
pub fn suggestions(r: &RunResult, findings: &[Finding]) -> Vec<(String, String)> {
    let this = if SHIPPED.contains(&r.scenario.name.as_str()) {
        format!("scenarios/{}.toml", r.scenario.name)
    } else {
        "<this scenario>".to_string()
    };
    let mut out = Vec::new();
    for f in findings {
        if !matches!(f.verdict, Verdict::Confirmed | Verdict::Strained) {
            continue;
        }
        match f.number {
            1 => {
                out.push((
                    "Risk 1: spread the token-check retries (backoff with full jitter)".into(),
                    format!("syncstorm run {this} --set device.usap.retry=exponential_full_jitter"),
                ));
                out.push((
                    "Risk 1: the same load on a larger compute (more DB connections)".into(),
                    format!("syncstorm run {this} --set target.plan=pro-large"),
                ));
            }
            2 => {
                out.push((
                    "Risk 2: a plan with 10,000 realtime connections".into(),
                    format!("syncstorm run {this} --set target.plan=team"),
                ));
                out.push((
                    "Risk 2: the polling fallback instead of a socket per device".into(),
                    format!("syncstorm run {this} --set device.pulse.mode=periodic"),
                ));
            }
            3 => out.push((
                "Risk 3: push in batches of 25 rows (roadmap item 1)".into(),
                "syncstorm run scenarios/roadmap-batching.toml".into(),
            )),
            _ => {}
        }
    }
    // A modelled run's follow-ups are modelled too (and bulk imports only run for real).
    if r.target.kind == "model" {
        for (_, command) in &mut out {
            if !command.contains("risk3") && !command.contains("roadmap-batching") {
                *command = command.replacen("syncstorm run ", "syncstorm model ", 1);
            }
        }
    }
    out
}

/// The list as HTML, or nothing when no risk needs a follow-up.
pub fn html(r: &RunResult, findings: &[Finding]) -> String {
    let steps = suggestions(r, findings);
    if steps.is_empty() {
        return String::new();
    }
    let mut out = String::from("<h3>What to try next</h3><ul class=\"next\">");
    for (why, command) in steps {
        out.push_str(&format!(
            "<li>{}: <code>{}</code></li>",
            esc(&why),
            esc(&command)
        ));
    }
    out.push_str(
        "</ul><p class=\"note\">Then <code>syncstorm compare</code> this result with the \
         new one: it puts both runs side by side.</p>",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::risks::assess;

    fn finding(number: u8, verdict: Verdict) -> Finding {
        let mut f = assess(&RunResult::default()).remove(0);
        f.number = number;
        f.verdict = verdict;
        f
    }

    #[test]
    fn only_confirmed_or_strained_risks_get_commands_naming_the_scenario_run() {
        let mut r = RunResult::default();
        r.scenario.name = "risk2-websocket-limit".into();
        let findings = [
            finding(1, Verdict::NotObserved),
            finding(2, Verdict::Confirmed),
            finding(3, Verdict::Strained),
        ];
        let steps = suggestions(&r, &findings);
        let commands: Vec<&str> = steps.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(
            commands,
            [
                "syncstorm run scenarios/risk2-websocket-limit.toml --set target.plan=team",
                "syncstorm run scenarios/risk2-websocket-limit.toml --set device.pulse.mode=periodic",
                "syncstorm run scenarios/roadmap-batching.toml",
            ]
        );
        r.scenario.name = "my-own".into();
        assert!(suggestions(&r, &findings)[0].1.contains("<this scenario>"));
        assert!(html(&r, &[finding(1, Verdict::NotExercised)]).is_empty());
    }
}
