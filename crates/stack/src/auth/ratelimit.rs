//! GoTrue's `/token` limiter: a token bucket per client address (capacity `burst`, refilled at
//! `rate` per `per`), password and refresh grants sharing it, 429 when empty.
//!
//! The client address is the first `X-Forwarded-For` entry when present (GoTrue's
//! `GOTRUE_RATE_LIMIT_HEADER` set to it), else the peer address; a harness that simulates many
//! devices from one machine can thus give each device its own address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use syncstorm_plans::RateLimit;

/// Beyond this many tracked addresses, full buckets are forgotten (they equal a fresh one).
const MAX_TRACKED: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets keyed by client address.
#[derive(Debug)]
pub struct TokenLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenLimiter {
    pub fn new(limit: RateLimit) -> Self {
        TokenLimiter {
            capacity: f64::from(limit.burst.max(1)),
            per_second: f64::from(limit.rate) / limit.per.as_secs_f64().max(1e-9),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`; false when the bucket is empty.
    pub fn try_acquire(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            self.forget_full(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated);
        (bucket.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity)
    }

    fn forget_full(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, b| self.refilled(b, now) < self.capacity);
    }

    /// How long until `key` has a token again (for `Retry-After`-style logging and tests).
    pub fn refill_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second.max(1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, secs: u64, burst: u32) -> TokenLimiter {
        TokenLimiter::new(RateLimit {
            rate,
            per: Duration::from_secs(secs),
            burst,
        })
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let l = limiter(1_800, 3_600, 30);
        let t0 = Instant::now();
        assert!((0..30).all(|_| l.try_acquire("a", t0)));
        assert!(!l.try_acquire("a", t0));
        assert!(l.try_acquire("b", t0), "buckets are per address");
        assert!(!l.try_acquire("a", t0 + Duration::from_millis(1_900)));
        assert!(l.try_acquire("a", t0 + Duration::from_millis(2_100)));
        assert_eq!(l.refill_interval(), Duration::from_secs(2));
    }
}
