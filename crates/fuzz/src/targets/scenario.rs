//! The scenario parser: TOML text → validated run plan, seeded with every shipped scenario.

use rand::rngs::SmallRng;

use crate::engine::{Target, Verdict, judged};
use crate::mutate::Mutator;

/// The shipped scenarios, comment lines dropped: the fuzzer's time goes to the fields.
pub const SHIPPED: &[&str] = &[
    include_str!("../../../../scenarios/quickstart.toml"),
    include_str!("../../../../scenarios/risk1-reconnect-storm.toml"),
    include_str!("../../../../scenarios/risk1-token-storm.toml"),
    include_str!("../../../../scenarios/risk2-websocket-limit.toml"),
    include_str!("../../../../scenarios/risk3-row-lock.toml"),
    include_str!("../../../../scenarios/roadmap-batching.toml"),
    include_str!("../../../../scenarios/roadmap-jittered-retries.toml"),
];

/// Tokens of the format that the seeds may not hold.
const TOML_TOKENS: &[&str] = &[
    "[[phases]]",
    "[target.plan_overrides]",
    "[faults]",
    "[device]",
    "[behaviour]",
    "[run]",
    "= {",
    "= [",
    "\"\"\"",
    "'''",
    "1979-05-27T07:32:00Z",
];

pub fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

pub struct ScenarioParser {
    mutator: Mutator,
}

impl Default for ScenarioParser {
    fn default() -> Self {
        let seeds = SHIPPED.iter().map(|s| without_comments(s)).collect();
        ScenarioParser {
            mutator: Mutator::new(seeds, TOML_TOKENS),
        }
    }
}

impl Target for ScenarioParser {
    type Input = String;

    fn name(&self) -> &'static str {
        "scenario"
    }

    fn generate(&self, rng: &mut SmallRng) -> String {
        self.mutator.generate(rng)
    }

    fn check(&self, text: &String) -> Result<Verdict, String> {
        judged(&syncstorm_scenario::from_str_with(
            "fuzz.toml",
            text,
            &[],
            &[],
        ))
    }
}
