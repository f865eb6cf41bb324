//! One verdict per risk of the FinOS report, each with the sentence and the figures behind it.
//!
//! Verdict rules are deliberately simple and written down here so a reader can check them:
//! "confirmed" needs failures or a hard limit reached, "under strain" needs measurable
//! queueing or slowdown short of that, "not observed" means the risk was exercised and the
//! figures stayed clear, "not exercised" means the scenario did not create the conditions,
//! and "inconclusive" means the figures a latency- or error-based verdict rests on were taken
//! while the test machine itself was saturated (see [`machine`]): they may be its limit, not
//! Supabase's. A hard limit reached (sockets at the plan's cap, refused upgrades, lock waits
//! between users) does not depend on the machine's speed and keeps its verdict.

mod clauses;
pub mod machine;
mod realtime_backlog;
mod risk1;
mod risk2;
mod risk3;

use super::charts::Chart;
use crate::result::RunResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Confirmed,
    Strained,
    NotObserved,
    NotExercised,
    Inconclusive,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Strained => "under strain",
            Verdict::NotObserved => "not observed",
            Verdict::NotExercised => "not exercised by this scenario",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// CSS class of the badge.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Strained => "strained",
            Verdict::NotObserved => "not-observed",
            Verdict::NotExercised => "not-exercised",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The name in the result JSON (`risks.riskN.verdict`).
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Strained => "under_strain",
            Verdict::NotObserved => "not_observed",
            Verdict::NotExercised => "not_exercised",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The finding for one risk.
#[derive(Debug, Clone)]
pub struct Finding {
    pub number: u8,
    pub title: &'static str,
    /// What the FinOS report claims, in one line.
    pub claim: &'static str,
    pub verdict: Verdict,
    /// One sentence built from the numbers.
    pub summary: String,
    /// Supporting figures, one per line.
    pub evidence: Vec<String>,
    pub charts: Vec<Chart>,
    /// Whether the verdict rests on latencies or error rates (which a saturated machine can
    /// cause) rather than on a hard limit reached.
    pub on_latency: bool,
}

impl Finding {
    /// "risk 1: confirmed — at 38k opens/min …"
    pub fn headline(&self) -> String {
        format!(
            "risk {}: {} — {}",
            self.number,
            self.verdict.words(),
            self.summary
        )
    }
}

/// Assesses the three risks from a result; a latency- or error-based verdict whose evidence
/// was taken on a saturated machine becomes inconclusive, saying why.
pub fn assess(r: &RunResult) -> Vec<Finding> {
    let mut findings = vec![risk1::assess(r), risk2::assess(r), risk3::assess(r)];
    for f in &mut findings {
        machine::qualify(r, f);
    }
    findings
}

/// Joins clauses into one readable phrase: "a, b and c".
pub(crate) fn join_clauses(clauses: &[String]) -> String {
    match clauses {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The two largest error kinds of an operation as "pool_timeout 5,210, timeout 12".
pub(crate) fn top_kinds(kinds: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(2)
        .map(|(k, n)| format!("{k} {}", super::html::count(**n)))
        .collect::<Vec<_>>()
        .join(", ")
}
