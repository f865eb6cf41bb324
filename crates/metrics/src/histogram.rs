//! Latency histograms: construction, percentile summaries, and a compact text encoding
//! (HdrHistogram V2 + deflate, base64) so results and shard files merge without loss.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::MetricsError;

/// Latencies are recorded in microseconds with 3 significant figures.
pub const SIGNIFICANT_FIGURES: u8 = 3;
/// Larger values are clamped: nothing a device waits for lasts longer than an hour.
pub const MAX_MICROS: u64 = 3_600_000_000;

/// An empty latency histogram (µs). It starts small and grows with the largest value seen, so
/// a histogram of millisecond latencies stays a few KiB.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is valid");
    h.auto(true);
    h
}

/// Records one latency, clamped to [`MAX_MICROS`].
pub fn record_micros(h: &mut Histogram<u64>, micros: u64) {
    // Auto-resizing histograms accept any value up to u64::MAX / 2; the clamp keeps one
    // absurd value (a clock jump) from inflating the counts array.
    let value = micros.min(MAX_MICROS);
    if h.record(value).is_err() {
        // Only reachable on a histogram that cannot resize (e.g. built elsewhere).
        h.saturating_record(value);
    }
}

/// Encodes a histogram as base64 of its V2-deflate serialization (the HdrHistogram
/// interchange format, readable by the Java/Go/C ports too).
pub fn encode(h: &Histogram<u64>) -> Result<String, MetricsError> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| MetricsError::Encode(format!("{e:?}")))?;
    Ok(STANDARD.encode(bytes))
}

/// Decodes [`encode`]'s output; the histogram comes back auto-resizing so it can absorb
/// merges of any range.
pub fn decode(text: &str) -> Result<Histogram<u64>, MetricsError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| MetricsError::Decode(format!("not base64: {e}")))?;
    // hdrhistogram 7.6 negates a decoded run of zeros with `-`, which panics on i64::MIN where
    // overflow checks are on (debug builds, the fuzz profile): a damaged payload in a result
    // file must be an error, not a panic.
    let decoded =
        std::panic::catch_unwind(|| Deserializer::new().deserialize(&mut bytes.as_slice()))
            .map_err(|_| {
                MetricsError::Decode(
                    "not an HdrHistogram V2 payload: a count is out of range".into(),
                )
            })?;
    let mut h: Histogram<u64> = decoded
        .map_err(|e| MetricsError::Decode(format!("not an HdrHistogram V2 payload: {e:?}")))?;
    h.auto(true);
    Ok(h)
}

/// Adds `other` into `into`; exact because both share the same bucket layout rules.
pub fn add(into: &mut Histogram<u64>, other: &Histogram<u64>) -> Result<(), MetricsError> {
    into.add(other)
        .map_err(|e| MetricsError::Merge(format!("{e:?}")))
}

/// Serde adapter: a `Histogram<u64>` field stored as the base64 V2-deflate string.
pub mod serde_base64 {
    use super::*;
    use serde::{Deserializer as De, Serializer as Ser};

    pub fn serialize<S: Ser>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let text = encode(h).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: De<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}

/// The figures a report shows for one operation. Latencies are in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Successful operations (the values in the histogram).
    pub ok: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        LatencySummary {
            ok: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An uncompressed V2 payload (cookie, header, counts) whose one count is the zig-zag
    /// varint of i64::MIN: a run of zeros too long to negate.
    fn payload_with_a_count_of_i64_min() -> String {
        let counts = [0xFFu8; 9];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0x1c84_9313u32.to_be_bytes());
        bytes.extend_from_slice(&(counts.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&3u32.to_be_bytes());
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&3_600_000_000u64.to_be_bytes());
        bytes.extend_from_slice(&1.0f64.to_be_bytes());
        bytes.extend_from_slice(&counts);
        STANDARD.encode(bytes)
    }

    #[test]
    fn a_count_of_i64_min_is_an_error_not_a_panic() {
        // Found by the fuzzer (`syncstorm-fuzz result`): hdrhistogram negated it and panicked.
        let err = decode(&payload_with_a_count_of_i64_min()).unwrap_err();
        assert!(
            err.to_string().starts_with("could not decode a histogram"),
            "{err}"
        );
    }

    #[test]
    fn encode_decode_keeps_every_count() {
        let mut h = new_histogram();
        for v in [0, 1, 999, 1_000, 12_345, 9_999_999] {
            record_micros(&mut h, v);
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(back.is_auto_resize());
    }

    #[test]
    fn decode_rejects_garbage_with_a_reason() {
        assert!(matches!(decode("%%%"), Err(MetricsError::Decode(_))));
        assert!(matches!(decode("aGVsbG8="), Err(MetricsError::Decode(_))));
    }

    #[test]
    fn huge_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        record_micros(&mut h, u64::MAX);
        assert_eq!(h.len(), 1);
        assert!(h.max() >= MAX_MICROS && h.max() < MAX_MICROS + MAX_MICROS / 500);
    }

    #[test]
    fn summary_is_in_milliseconds() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            record_micros(&mut h, v * 1000);
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.ok, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_ms - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }
}
