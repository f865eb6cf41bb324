//! Inputs that reach deep code: a valid seed (a shipped scenario, a real frame, a real token)
//! with a few mutations stacked, so most inputs are nearly valid and get past the first
//! syntax check; now and then pure noise, for the shallow paths.

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;

/// Values that break naive number, duration and string handling.
pub const HOSTILE_VALUES: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "0.5",
    "-0.5",
    "1e309",
    "-1e309",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "255",
    "256",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "\"\"",
    "\"x\"",
    "\"\\u0000\"",
    "\"é✓\"",
    "[]",
    "[1, 2]",
    "{}",
    "true",
    "false",
    "null",
    "0ms",
    "1us",
    "500ms",
    "18446744073709551615s",
    "9999999999999d",
    "1h",
    "0%",
    "100%",
    "101%",
    "-5%",
    "1..2",
    "2..1",
];

/// Bytes a mutation inserts one at a time: the delimiters of the formats under attack.
const DELIMITERS: &[u8] = b"=.,:;()[]{}\"'\\ \n\t#&?*!<>-_%+0123456789";

/// A seed set and the words to splice into it.
pub struct Mutator {
    seeds: Vec<String>,
    words: Vec<String>,
}

impl Mutator {
    /// `extra` adds format tokens; the seeds' own words (field names, keywords) are added too.
    pub fn new(seeds: Vec<String>, extra: &[&str]) -> Mutator {
        let mut words: Vec<String> = HOSTILE_VALUES.iter().map(|s| s.to_string()).collect();
        words.extend(extra.iter().map(|s| s.to_string()));
        for seed in &seeds {
            words.extend(
                seed.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| w.len() > 1)
                    .map(str::to_string),
            );
        }
        words.sort();
        words.dedup();
        Mutator { seeds, words }
    }

    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    /// A random word of the dictionary.
    pub fn word(&self, rng: &mut SmallRng) -> &str {
        self.words.choose(rng).map_or("", String::as_str)
    }

    /// One input: a mutated seed (nine times in ten) or noise.
    pub fn generate(&self, rng: &mut SmallRng) -> String {
        if rng.random_ratio(1, 10) || self.seeds.is_empty() {
            return self.noise(rng);
        }
        let seed = self.seeds.choose(rng).map_or("", String::as_str);
        self.mutate(seed, rng)
    }

    /// `seed` with one, two or four mutations stacked (mostly few, so most mutants stay
    /// close enough to valid to reach validation).
    pub fn mutate(&self, seed: &str, rng: &mut SmallRng) -> String {
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..1 << rng.random_range(0..3) {
            self.mutate_once(&mut bytes, rng);
        }
        into_text(bytes)
    }

    fn mutate_once(&self, bytes: &mut Vec<u8>, rng: &mut SmallRng) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..9) {
            0 if at < bytes.len() => bytes[at] = rng.random(),
            1 => bytes.insert(at, *DELIMITERS.choose(rng).unwrap_or(&b'.')),
            2 => {
                let end = span_end(bytes, at, rng);
                bytes.drain(at..end);
            }
            3 => {
                let end = span_end(bytes, at, rng);
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            4 => {
                let word = self.word(rng).as_bytes().to_vec();
                bytes.splice(at..at, word);
            }
            5 => self.replace_value(bytes, rng),
            6 => self.splice_other_seed(bytes, at, rng),
            7 => bytes.truncate(at),
            _ => {
                let end = span_end(bytes, at, rng);
                let word = self.word(rng).as_bytes().to_vec();
                bytes.splice(at..end, word);
            }
        }
    }

    /// Replaces the token after a random `=`, `:` or `,` with a dictionary word: in TOML, JSON
    /// and query strings that is a field's value, the place validation looks hardest.
    fn replace_value(&self, bytes: &mut Vec<u8>, rng: &mut SmallRng) {
        let marks: Vec<usize> = (0..bytes.len())
            .filter(|&i| matches!(bytes[i], b'=' | b':' | b','))
            .collect();
        let Some(&mark) = marks.choose(rng) else {
            return;
        };
        let start = mark + 1;
        let start = start + bytes[start..].iter().take_while(|&&b| b == b' ').count();
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|&&b| !matches!(b, b'\n' | b',' | b'&' | b'}' | b']' | b')'))
                .count();
        let word = self.word(rng).as_bytes().to_vec();
        bytes.splice(start..end, word);
    }

    fn splice_other_seed(&self, bytes: &mut Vec<u8>, at: usize, rng: &mut SmallRng) {
        let Some(other) = self.seeds.choose(rng) else {
            return;
        };
        let from = rng.random_range(0..=other.len());
        bytes.truncate(at);
        bytes.extend_from_slice(&other.as_bytes()[from..]);
    }

    /// Up to 64 random bytes, mostly from the formats' delimiters and dictionary words.
    fn noise(&self, rng: &mut SmallRng) -> String {
        let mut bytes = Vec::new();
        for _ in 0..rng.random_range(0..16) {
            match rng.random_range(0..3) {
                0 => bytes.push(rng.random()),
                1 => bytes.push(*DELIMITERS.choose(rng).unwrap_or(&b' ')),
                _ => bytes.extend_from_slice(self.word(rng).as_bytes()),
            }
        }
        bytes.truncate(64);
        into_text(bytes)
    }
}

/// The end of a span of up to 32 bytes starting at `at`.
fn span_end(bytes: &[u8], at: usize, rng: &mut SmallRng) -> usize {
    (at + rng.random_range(0..=32)).min(bytes.len())
}

/// The parsers take text, as their callers read it: invalid UTF-8 becomes U+FFFD.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::case_rng;

    #[test]
    fn mutants_differ_from_their_seed_and_mostly_keep_its_shape() {
        let seed = crate::targets::scenario::without_comments(crate::targets::scenario::SHIPPED[0]);
        let mutator = Mutator::new(vec![seed.clone()], &[]);
        let mutants: Vec<String> = (0..200)
            .map(|i| mutator.generate(&mut case_rng(1, i)))
            .collect();
        assert!(mutants.iter().filter(|m| **m != seed).count() > 150);
        assert!(
            mutants
                .iter()
                .filter(|m| m.contains("[population]"))
                .count()
                > 100
        );
    }

    #[test]
    fn the_dictionary_holds_the_seeds_words() {
        let mutator = Mutator::new(vec!["alpha.beta=1".into()], &["extra"]);
        assert!(mutator.words.contains(&"alpha".to_string()));
        assert!(mutator.words.contains(&"extra".to_string()));
    }
}
