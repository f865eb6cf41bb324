//! Thresholds: `"token_check.p99" = "< 500ms"` → a `Threshold` the run checks at the end.
//!
//! Metric names (the scheme the results use):
//! - `<operation>.<stat>`: operation one of [`OPERATIONS`], stat one of `p50 p90 p99 p999 max`
//!   (durations, compared in milliseconds), `count`, `errors` (counts), `error_rate` (fraction);
//! - `errors.rate` (all errors / all requests, a fraction), `errors.count`;
//! - `oracle.users_checked|users_converged|unconverged_users|lost_updates|skipped_rows|fk_errors`,
//!   `oracle.rls_attempts|rls_leaks` (RLS under load: attempts on other users' rows, and the
//!   rows read or written through them);
//! - `peak.devices`, `peak.websockets`;
//! - `counters.<name>`: an event counter's total over the run, [`COUNTERS`].
//!
//! Values carry their unit: durations need one (`us`, `ms`, `s`), rates take `%` or a plain
//! fraction, counts are plain numbers. `Threshold::value` is in the canonical unit.

use serde::{Serialize, Serializer};
use std::fmt;
use syncstorm_metrics::names::{counter, op};

/// Operation names a threshold may use: the shared ones of `syncstorm_metrics::names::op` and
/// those the driver records itself (`ws_join`, `push.read`, per-table and per-tier pulls).
pub const OPERATIONS: &[&str] = &[
    op::SIGN_IN,
    op::TOKEN_REFRESH,
    op::TOKEN_CHECK,
    op::PULL,
    "pull.tier1",
    "pull.tier2",
    "pull.tier3",
    "pull.wallets",
    "pull.channels",
    "pull.categories_user",
    "pull.transactions",
    "pull.plans",
    op::PUSH,
    "push.read",
    op::BULK_PUSH,
    op::SYNC,
    op::WS_CONNECT,
    op::WS_JOIN,
    op::PULSE_DELIVERY,
    op::LONG_POLL,
    op::PERIODIC_POLL,
];

/// Event counters a threshold may name as `counters.<name>` (`syncstorm_metrics::names::counter`).
pub const COUNTERS: &[&str] = &[
    counter::APP_OPENS,
    counter::WS_REJECTED,
    counter::JOINS_REJECTED,
    counter::WS_RECONNECTS,
    counter::PULSES_RECEIVED,
    counter::PULLS_SKIPPED,
    counter::ROWS_PUSHED,
    counter::ROWS_PULLED,
    counter::BULK_ROWS,
    counter::ARRIVALS_LATE,
];

const STATS: &[&str] = &[
    "p50",
    "p90",
    "p99",
    "p999",
    "max",
    "count",
    "errors",
    "error_rate",
];
const ORACLE: &[&str] = &[
    "users_checked",
    "users_converged",
    "unconverged_users",
    "lost_updates",
    "skipped_rows",
    "fk_errors",
    "overruled_writes",
    "rows_refused",
    "quiet_syncs_failed",
    "devices_unchecked",
    "rls_attempts",
    "rls_leaks",
];
const PEAK: &[&str] = &["devices", "websockets"];
const OPS: &str = "<, <=, >, >=, == or !=";

/// What a metric measures, which decides the units its threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Milliseconds.
    Duration,
    /// A fraction in 0..=1.
    Rate,
    Count,
}

/// A parsed metric name; `Display` gives the canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// `token_check.p99`: `stat` is one of `p50 p90 p99 p999 max count errors error_rate`.
    Operation { operation: String, stat: String },
    /// `errors.rate` or `errors.count`, over all operations.
    Errors { rate: bool },
    /// `oracle.<field>`.
    Oracle(String),
    /// `peak.devices` or `peak.websockets`.
    Peak(String),
    /// `counters.<name>`: a counter's total.
    Counter(String),
}

impl Metric {
    /// Parses a metric name or says which part is wrong and what is allowed.
    pub fn parse(name: &str) -> Result<Metric, String> {
        let Some((head, tail)) = name.rsplit_once('.') else {
            return Err("is not a metric name; write <operation>.<stat> (e.g. token_check.p99), errors.rate, oracle.<field>, peak.<field> or counters.<name>".to_string());
        };
        match head {
            "errors" => match tail {
                "rate" => Ok(Metric::Errors { rate: true }),
                "count" => Ok(Metric::Errors { rate: false }),
                _ => Err(one_of("errors field", tail, &["rate", "count"])),
            },
            "oracle" => pick(tail, ORACLE, "oracle field").map(Metric::Oracle),
            "peak" => pick(tail, PEAK, "peak field").map(Metric::Peak),
            "counters" => pick(tail, COUNTERS, "counter").map(Metric::Counter),
            _ => {
                let operation = pick(head, OPERATIONS, "operation")?;
                let stat = pick(tail, STATS, "statistic")?;
                Ok(Metric::Operation { operation, stat })
            }
        }
    }

    pub fn kind(&self) -> MetricKind {
        match self {
            Metric::Operation { stat, .. } => match stat.as_str() {
                "count" | "errors" => MetricKind::Count,
                "error_rate" => MetricKind::Rate,
                _ => MetricKind::Duration,
            },
            Metric::Errors { rate: true } => MetricKind::Rate,
            _ => MetricKind::Count,
        }
    }
}

fn pick(word: &str, allowed: &[&str], what: &str) -> Result<String, String> {
    if allowed.contains(&word) {
        Ok(word.to_string())
    } else {
        Err(one_of(what, word, allowed))
    }
}

fn one_of(what: &str, word: &str, allowed: &[&str]) -> String {
    let hint = crate::error::did_you_mean(word, allowed.iter().copied());
    format!(
        "has an unknown {what} {word:?}; allowed: {}{hint}",
        allowed.join(", ")
    )
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Operation { operation, stat } => write!(f, "{operation}.{stat}"),
            Metric::Errors { rate: true } => f.write_str("errors.rate"),
            Metric::Errors { rate: false } => f.write_str("errors.count"),
            Metric::Oracle(field) => write!(f, "oracle.{field}"),
            Metric::Peak(field) => write!(f, "peak.{field}"),
            Metric::Counter(name) => write!(f, "counters.{name}"),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }
}

/// One pass/fail rule on one metric of the results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// As written, normalised: `token_check.p99 < 500ms`.
    pub expression: String,
    #[serde(serialize_with = "as_text")]
    pub metric: Metric,
    #[serde(serialize_with = "as_symbol")]
    pub op: Op,
    /// In the metric's canonical unit: ms for durations, a fraction for rates, else plain.
    pub value: f64,
}

fn as_text<S: Serializer>(m: &Metric, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(m)
}
fn as_symbol<S: Serializer>(op: &Op, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.symbol())
}

impl Threshold {
    /// Parses `metric` and `condition` (`"< 500ms"`). The error completes a sentence that
    /// starts with the threshold's name.
    pub fn parse(metric: &str, condition: &str) -> Result<Threshold, String> {
        let metric = Metric::parse(metric.trim())?;
        let condition = condition.trim();
        let split = condition
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '!'))
            .unwrap_or(condition.len());
        let (op_text, value_text) = (&condition[..split], condition[split..].trim());
        let op = Op::parse(op_text).ok_or_else(|| {
            format!(
                "= {condition:?} is not a condition; write OPERATOR VALUE with OPERATOR one of {OPS}, e.g. \"< 500ms\""
            )
        })?;
        let value = parse_value(value_text, metric.kind())
            .map_err(|why| format!("= {condition:?} has a bad value: {why}"))?;
        Ok(Threshold {
            expression: format!("{metric} {} {value_text}", op.symbol()),
            metric,
            op,
            value,
        })
    }

    /// Parses a whole expression as given to `--threshold`: `token_check.p99 < 500ms`.
    pub fn parse_expression(expr: &str) -> Result<Threshold, String> {
        let at = expr.find(['<', '>', '=', '!']).ok_or_else(|| {
            format!("{expr:?} is not a threshold; write METRIC OPERATOR VALUE with OPERATOR one of {OPS}, e.g. \"token_check.p99 < 500ms\"")
        })?;
        let metric = expr[..at].trim();
        Threshold::parse(metric, &expr[at..])
            .map_err(|why| format!("{} {why}", crate::error::printable(metric)))
    }

    /// True when `actual` (in the canonical unit) satisfies the rule; NaN never does.
    pub fn check(&self, actual: f64) -> bool {
        match self.op {
            Op::Lt => actual < self.value,
            Op::Le => actual <= self.value,
            Op::Gt => actual > self.value,
            Op::Ge => actual >= self.value,
            Op::Eq => actual == self.value,
            Op::Ne => !actual.is_nan() && actual != self.value,
        }
    }
}

/// Reads `500ms`, `2s`, `1%`, `0.01`, `0` into the canonical unit of `kind`.
fn parse_value(text: &str, kind: MetricKind) -> Result<f64, String> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..end], text[end..].trim());
    let n: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let to_ms = match unit {
        "us" | "µs" => Some(0.001),
        "ms" => Some(1.0),
        "s" => Some(1000.0),
        _ => None,
    };
    match (kind, unit, to_ms) {
        (MetricKind::Duration, _, Some(scale)) => Ok(n * scale),
        (MetricKind::Duration, _, None) => Err(format!(
            "this metric is a duration, so {text:?} needs a unit: us, ms or s (e.g. 500ms)"
        )),
        (MetricKind::Rate, "%", _) if n <= 100.0 => Ok(n / 100.0),
        (MetricKind::Rate, "", _) if n <= 1.0 => Ok(n),
        (MetricKind::Rate, ..) => Err(format!(
            "this metric is a rate, so write a percentage up to 100% or a fraction up to 1 (e.g. 1% or 0.01), not {text:?}"
        )),
        (MetricKind::Count, "", _) => Ok(n),
        (MetricKind::Count, ..) => Err(format!(
            "this metric is a count, so write a plain number without a unit, not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalised_to_canonical_units() {
        let t = Threshold::parse("token_check.p99", "< 0.5s").unwrap();
        assert_eq!((t.op, t.value), (Op::Lt, 500.0));
        assert_eq!(t.expression, "token_check.p99 < 0.5s");
        let t = Threshold::parse("errors.rate", "<= 1%").unwrap();
        assert!((t.value - 0.01).abs() < 1e-12);
        let t = Threshold::parse("oracle.lost_updates", "== 0").unwrap();
        assert_eq!((t.op, t.value), (Op::Eq, 0.0));
        let t = Threshold::parse("pull.transactions.p99", "< 2s").unwrap();
        assert_eq!(t.metric.to_string(), "pull.transactions.p99");
        let t = Threshold::parse("sync.p50", "< 250us").unwrap();
        assert!((t.value - 0.25).abs() < 1e-12);
    }

    #[test]
    fn check_compares_with_each_operator() {
        let cases = [
            ("< 500ms", 499.0, true),
            ("< 500ms", 500.0, false),
            ("<= 500ms", 500.0, true),
            ("> 500ms", 500.0, false),
            (">= 500ms", 500.0, true),
            ("== 500ms", 500.0, true),
            ("!= 500ms", 500.0, false),
            ("!= 500ms", f64::NAN, false),
            ("< 500ms", f64::NAN, false),
        ];
        for (cond, actual, expected) in cases {
            let t = Threshold::parse("push.p99", cond).unwrap();
            assert_eq!(t.check(actual), expected, "{cond} with {actual}");
        }
    }

    #[test]
    fn units_must_fit_the_metric() {
        let err = Threshold::parse("token_check.p99", "< 500").unwrap_err();
        assert!(err.contains("needs a unit"), "{err}");
        let err = Threshold::parse("errors.rate", "< 5").unwrap_err();
        assert!(err.contains("a rate"), "{err}");
        let err = Threshold::parse("oracle.lost_updates", "== 0ms").unwrap_err();
        assert!(err.contains("a count"), "{err}");
    }

    #[test]
    fn unknown_metric_parts_are_named_with_a_hint() {
        let err = Metric::parse("token_chek.p99").unwrap_err();
        assert!(
            err.contains("\"token_chek\"") && err.contains("did you mean \"token_check\""),
            "{err}"
        );
        let err = Metric::parse("token_check.p95").unwrap_err();
        assert!(err.contains("unknown statistic \"p95\""), "{err}");
        let err = Metric::parse("oracle.lost").unwrap_err();
        assert!(err.contains("oracle field \"lost\""), "{err}");
    }

    #[test]
    fn expressions_split_at_the_operator() {
        let t = Threshold::parse_expression("pulse_delivery.p90 >= 1ms").unwrap();
        assert_eq!(t.metric.to_string(), "pulse_delivery.p90");
        assert_eq!(t.op, Op::Ge);
        assert!(Threshold::parse_expression("token_check.p99 500ms").is_err());
    }

    #[test]
    fn a_metric_name_with_a_line_break_is_refused_in_one_line() {
        // Found by the fuzzer (`syncstorm-fuzz set-threshold`): the name was echoed raw.
        let err = Threshold::parse_expression("ws_join.c\nount > 10").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(
            err.starts_with("ws_join.c\\nount has an unknown statistic"),
            "{err}"
        );
    }
}
