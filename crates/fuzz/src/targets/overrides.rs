//! `--set PATH=VALUE` and `--threshold EXPR` on a valid scenario: paths taken from the
//! scenario's own fields (so most reach validation), values from the hostile list, both
//! mutated now and then; thresholds from every metric name the results use.

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use syncstorm_scenario::{COUNTERS, OPERATIONS, Threshold, split_path};

use crate::engine::{Target, Verdict, judged, one_sentence};
use crate::mutate::Mutator;
use crate::targets::scenario::{SHIPPED, without_comments};

/// One command line's extra arguments.
#[derive(Debug)]
pub struct CommandLine {
    pub sets: Vec<String>,
    pub thresholds: Vec<String>,
}

pub struct Overrides {
    /// The quick start, parsed once: every case edits a copy.
    base: toml::Value,
    paths: Vec<String>,
    values: Mutator,
    expressions: Mutator,
}

impl Default for Overrides {
    fn default() -> Self {
        let text = without_comments(SHIPPED[0]);
        let base = syncstorm_scenario::parse_document("fuzz.toml", &text)
            .expect("the quick start is valid TOML");
        let mut paths = Vec::new();
        leaf_paths(&base, String::new(), &mut paths);
        paths.extend(["population.users", "load.duration", "run.seed"].map(String::from));
        let expressions = threshold_seeds();
        Overrides {
            base,
            values: Mutator::new(Vec::new(), &[]),
            expressions: Mutator::new(expressions, &["<", "<=", ">", ">=", "==", "!="]),
            paths,
        }
    }
}

/// Dotted paths of every leaf of `value`, array entries by index.
fn leaf_paths(value: &toml::Value, prefix: String, out: &mut Vec<String>) {
    let join = |key: &str| {
        let key = if key.contains('.') {
            format!("{key:?}")
        } else {
            key.to_string()
        };
        if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        toml::Value::Table(table) => {
            for (key, v) in table {
                leaf_paths(v, join(key), out);
            }
        }
        toml::Value::Array(items) => {
            out.push(prefix.clone());
            for (i, v) in items.iter().enumerate() {
                leaf_paths(v, join(&i.to_string()), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// A valid expression on every operation stat, counter and oracle figure.
fn threshold_seeds() -> Vec<String> {
    let mut seeds: Vec<String> = OPERATIONS
        .iter()
        .flat_map(|op| {
            [
                format!("{op}.p99 < 500ms"),
                format!("{op}.error_rate <= 1%"),
                format!("{op}.count > 10"),
            ]
        })
        .collect();
    seeds.extend(COUNTERS.iter().map(|c| format!("counters.{c} >= 0")));
    seeds.extend(
        [
            "errors.rate < 0.05",
            "errors.count == 0",
            "oracle.lost_updates == 0",
            "oracle.unconverged_users != 1",
            "peak.websockets < 10_000",
            "token_check.max < 2s",
        ]
        .map(String::from),
    );
    seeds
}

impl Overrides {
    fn set(&self, rng: &mut SmallRng) -> String {
        let path = self.paths.choose(rng).map_or("", String::as_str);
        let value = self.values.word(rng);
        let expr = format!("{path}={value}");
        if rng.random_ratio(1, 4) {
            self.values.mutate(&expr, rng)
        } else {
            expr
        }
    }
}

impl Target for Overrides {
    type Input = CommandLine;

    fn name(&self) -> &'static str {
        "set-threshold"
    }

    fn generate(&self, rng: &mut SmallRng) -> CommandLine {
        CommandLine {
            sets: (0..rng.random_range(0..=3))
                .map(|_| self.set(rng))
                .collect(),
            thresholds: (0..rng.random_range(0..=2))
                .map(|_| self.expressions.generate(rng))
                .collect(),
        }
    }

    fn check(&self, line: &CommandLine) -> Result<Verdict, String> {
        for expr in &line.thresholds {
            judged(&Threshold::parse_expression(expr).map_err(Sentence))?;
        }
        for expr in &line.sets {
            let path = expr.split_once('=').map_or(expr.as_str(), |(p, _)| p);
            judged(&split_path(path).map_err(Sentence))?;
        }
        let mut doc = self.base.clone();
        for expr in &line.sets {
            if let Err(e) = syncstorm_scenario::apply_override(&mut doc, expr) {
                return one_sentence(&e);
            }
        }
        for expr in &line.thresholds {
            if let Err(e) = syncstorm_scenario::add_threshold(&mut doc, expr) {
                return one_sentence(&e);
            }
        }
        judged(&syncstorm_scenario::from_document("fuzz.toml", doc))
    }
}

/// A `String` error as a `Display`.
struct Sentence(String);

impl std::fmt::Display for Sentence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
