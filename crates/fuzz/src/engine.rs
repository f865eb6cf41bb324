//! The loop: make case `i`'s input from a seeded RNG, hand it to the target, catch a panic,
//! and count. Case `i` of a run with seed `s` is always the same input, so a failure found in
//! a million-case run replays alone (`syncstorm-fuzz TARGET 1 --seed S --first-case I`).

use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;

/// What a target did with one input that it handled without breaking its property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The parser accepted the input (so the input reached the code behind the parser).
    Accepted,
    /// The parser refused it with a one-sentence error.
    Refused,
}

/// One parser under attack: how to make an input, and how to feed it.
pub trait Target {
    type Input: Debug;

    fn name(&self) -> &'static str;

    /// The input of one case; every random choice comes from `rng`.
    fn generate(&self, rng: &mut SmallRng) -> Self::Input;

    /// Feeds `input`; `Err` says how the answer broke the property (a panic is caught outside).
    fn check(&self, input: &Self::Input) -> Result<Verdict, String>;
}

/// The first input that broke the property.
#[derive(Debug, Clone)]
pub struct Failure {
    pub case: u64,
    /// The input, as `{:?}` prints it.
    pub input: String,
    /// The panic message, or how the error broke the one-sentence rule.
    pub problem: String,
}

/// The figures of one target's run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub cases: u64,
    pub accepted: u64,
    pub refused: u64,
    pub elapsed: Duration,
    pub failure: Option<Failure>,
}

impl Report {
    pub fn inputs_per_second(&self) -> f64 {
        self.cases as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} inputs in {:.1} s ({:.0} inputs/s), {} accepted, {} refused, {}",
            self.target,
            self.cases,
            self.elapsed.as_secs_f64(),
            self.inputs_per_second(),
            self.accepted,
            self.refused,
            match &self.failure {
                None => "0 failures".to_string(),
                Some(f) => format!(
                    "FAILED at case {}: {} on input {}",
                    f.case, f.problem, f.input
                ),
            }
        )
    }
}

/// Runs cases `first..first + cases` of `target` with `seed`, stopping at the first failure.
pub fn run<T: Target>(target: &T, seed: u64, first: u64, cases: u64) -> Report {
    let start = Instant::now();
    let mut report = Report {
        target: target.name(),
        seed,
        cases: 0,
        accepted: 0,
        refused: 0,
        elapsed: Duration::ZERO,
        failure: None,
    };
    for case in first..first.saturating_add(cases) {
        let input = target.generate(&mut case_rng(seed, case));
        report.cases += 1;
        match catch_unwind(AssertUnwindSafe(|| target.check(&input))) {
            Ok(Ok(Verdict::Accepted)) => report.accepted += 1,
            Ok(Ok(Verdict::Refused)) => report.refused += 1,
            Ok(Err(problem)) => report.failure = Some(failure(case, &input, problem)),
            Err(payload) => {
                let problem = format!("panic: {}", panic_message(payload.as_ref()));
                report.failure = Some(failure(case, &input, problem));
            }
        }
        if report.failure.is_some() {
            break;
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// Case `case`'s RNG: the seed and the case number mixed (SplitMix64's constant), so
/// neighbouring cases get unrelated streams.
pub fn case_rng(seed: u64, case: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn failure(case: u64, input: &impl Debug, problem: String) -> Failure {
    Failure {
        case,
        input: format!("{input:?}"),
        problem,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// The property every refusal must keep: its message is one non-empty line.
pub fn one_sentence(error: &impl Display) -> Result<Verdict, String> {
    let text = error.to_string();
    if text.trim().is_empty() {
        Err("the error message is empty".to_string())
    } else if text.contains(['\n', '\r']) {
        Err(format!("the error message spans lines: {text:?}"))
    } else {
        Ok(Verdict::Refused)
    }
}

/// `Accepted` for `Ok`, the one-sentence check for `Err`.
pub fn judged<V, E: Display>(result: &Result<V, E>) -> Result<Verdict, String> {
    match result {
        Ok(_) => Ok(Verdict::Accepted),
        Err(e) => one_sentence(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A target whose parser panics on one input, to show the loop reports it.
    struct PanicsOnSeven;

    impl Target for PanicsOnSeven {
        type Input = u8;
        fn name(&self) -> &'static str {
            "panics-on-seven"
        }
        fn generate(&self, rng: &mut SmallRng) -> u8 {
            rng.random_range(0..10)
        }
        fn check(&self, input: &u8) -> Result<Verdict, String> {
            assert_ne!(*input, 7, "seven");
            one_sentence(&if input.is_multiple_of(2) {
                "even"
            } else {
                "odd\nline"
            })
        }
    }

    #[test]
    fn a_panic_is_caught_and_reported_with_its_input() {
        let report = run(&PanicsOnSeven, 1, 0, 10_000);
        let failure = report.failure.expect("some case draws 7 or an odd number");
        assert!(failure.problem.contains("seven") || failure.problem.contains("spans lines"));
        assert_eq!(report.cases, failure.case + 1);
    }

    #[test]
    fn a_case_replays_alone() {
        let mut a = case_rng(5, 123);
        let mut b = case_rng(5, 123);
        assert_eq!(a.random::<u64>(), b.random::<u64>());
    }

    #[test]
    fn the_sentence_rule_refuses_empty_and_multiline_messages() {
        assert!(one_sentence(&"").is_err());
        assert!(one_sentence(&"two\nlines").is_err());
        assert_eq!(one_sentence(&"fine."), Ok(Verdict::Refused));
    }
}
