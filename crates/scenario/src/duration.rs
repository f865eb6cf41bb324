//! Durations written the humantime way (`"500ms"`, `"30s"`, `"2m"`, `"1h30m"`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// What the error messages say a duration looks like.
pub const DURATION_HINT: &str =
    "a number with a unit, e.g. \"500ms\", \"30s\", \"2m\" or \"1h30m\"";

/// A `Duration` that reads and writes as a humantime string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }
}

/// Parses a duration, or says in one phrase why not (used by `--set` and thresholds too).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("is not a duration; write {DURATION_HINT}"))
}

/// Formats a duration compactly (`"1m 30s"` → `"1m30s"`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{DURATION_HINT}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "is not a duration: a bare number has no unit; write {DURATION_HINT}"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                self.visit_i64(v as i64)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_compact_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 500ms "), Ok(Duration::from_millis(500)));
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .starts_with("is not a duration")
        );
    }
}
