//! The one rule every risk's verdict follows, so each risk is only its list of clauses:
//! any hard clause (failures, a limit reached) confirms the risk; else any soft clause
//! (queueing, slowdown short of that) is strain; else the figures stayed clear.

use super::{Verdict, join_clauses};

/// The clauses found for one risk, in the order they were found.
#[derive(Debug, Default)]
pub(crate) struct Clauses {
    hard: Vec<String>,
    soft: Vec<String>,
}

impl Clauses {
    /// A clause that confirms the risk on its own.
    pub fn hard(&mut self, clause: impl Into<String>) {
        self.hard.push(clause.into());
    }

    /// A clause that shows strain short of the risk.
    pub fn soft(&mut self, clause: impl Into<String>) {
        self.soft.push(clause.into());
    }

    /// Whether any clause confirms the risk.
    pub fn confirms(&self) -> bool {
        !self.hard.is_empty()
    }

    /// The verdict and its sentence, "{scale}{joint}{clauses}.", with `clear` giving the
    /// sentence when no clause was found.
    pub fn verdict(
        self,
        scale: &str,
        joint: &str,
        clear: impl FnOnce() -> String,
    ) -> (Verdict, String) {
        let said = |clauses: &[String]| format!("{scale}{joint}{}.", join_clauses(clauses));
        if !self.hard.is_empty() {
            (Verdict::Confirmed, said(&self.hard))
        } else if !self.soft.is_empty() {
            (Verdict::Strained, said(&self.soft))
        } else {
            (Verdict::NotObserved, clear())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_clause_confirms_and_soft_ones_are_then_left_out() {
        let mut c = Clauses::default();
        c.soft("p99 was 300 ms");
        c.hard("checks failed at 2 %");
        c.hard("the queue grew past 10 s");
        assert!(c.confirms());
        let (verdict, said) = c.verdict("at 100 opens/min", " ", || unreachable!());
        assert_eq!(verdict, Verdict::Confirmed);
        assert_eq!(
            said,
            "at 100 opens/min checks failed at 2 % and the queue grew past 10 s."
        );
    }

    #[test]
    fn soft_clauses_alone_are_strain_and_none_is_clear() {
        let mut c = Clauses::default();
        c.soft("p99 was 300 ms");
        assert_eq!(
            c.verdict("with 5 devices", ", ", String::new),
            (Verdict::Strained, "with 5 devices, p99 was 300 ms.".into())
        );
        let none = Clauses::default();
        assert_eq!(
            none.verdict("x", ", ", || "all clear.".into()),
            (Verdict::NotObserved, "all clear.".into())
        );
    }
}
