//! The result reader (`RunResult::from_json`, what `report`, `compare` and `merge` load) and
//! the histograms it carries, seeded with the recorded quick start's result. The seed is
//! shortened to two entries per array (the per-second series of a one-minute run) so that a
//! million inputs cost minutes, not hours; every field and section is still there.

use std::path::Path;

use rand::rngs::SmallRng;
use serde_json::Value;
use syncstorm::result::RunResult;

use crate::engine::{Target, Verdict, one_sentence};
use crate::mutate::Mutator;

const RECORDED: &str = include_str!(
    "../../../../docs/runs/quickstart-20261205T035357Z/quickstart-20261205T035406Z.json"
);

/// Keeps the first `keep` entries of every array, at every depth.
pub fn shortened(value: &mut Value, keep: usize) {
    match value {
        Value::Array(items) => {
            items.truncate(keep);
            items.iter_mut().for_each(|v| shortened(v, keep));
        }
        Value::Object(map) => map.values_mut().for_each(|v| shortened(v, keep)),
        _ => {}
    }
}

pub struct ResultReader {
    mutator: Mutator,
}

impl Default for ResultReader {
    fn default() -> Self {
        let mut value: Value = serde_json::from_str(RECORDED).expect("the recorded result is JSON");
        shortened(&mut value, 2);
        let seed = serde_json::to_string_pretty(&value).expect("JSON serializes");
        ResultReader {
            mutator: Mutator::new(
                vec![seed],
                &["\"schema_version\": 1", "\"hist\": \"HISTFAAAAB"],
            ),
        }
    }
}

impl Target for ResultReader {
    type Input = String;

    fn name(&self) -> &'static str {
        "result"
    }

    fn generate(&self, rng: &mut SmallRng) -> String {
        self.mutator.generate(rng)
    }

    fn check(&self, text: &String) -> Result<Verdict, String> {
        let result = match RunResult::from_json(Path::new("fuzz.json"), text) {
            Ok(result) => result,
            Err(e) => return one_sentence(&e),
        };
        for op in result.operations.values() {
            if let Err(e) = op.to_snapshot() {
                one_sentence(&e)?;
            }
        }
        Ok(Verdict::Accepted)
    }
}
