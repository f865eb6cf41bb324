//! The wait between USAP check attempts.

use crate::knobs::{RetryPolicy, UsapKnobs};
use rand::Rng;
use rand::rngs::SmallRng;

/// Delay in milliseconds after failed attempt number `attempt` (1-based).
/// `fixed`: the base delay; `exponential`: base·2^(attempt−1), capped at `max_delay`;
/// `exponential_full_jitter`: uniform in [0, that].
pub(crate) fn check_delay_ms(knobs: &UsapKnobs, attempt: u32, rng: &mut SmallRng) -> i64 {
    let base = knobs.base_delay.as_millis() as u64;
    let cap = knobs.max_delay.as_millis() as u64;
    let exponential = || {
        base.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(40))
            .min(cap)
    };
    let delay = match knobs.retry {
        RetryPolicy::Fixed => base,
        RetryPolicy::Exponential => exponential(),
        RetryPolicy::ExponentialFullJitter => rng.random_range(0..=exponential()),
    };
    i64::try_from(delay).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::time::Duration;

    fn knobs(retry: RetryPolicy) -> UsapKnobs {
        UsapKnobs {
            max_attempts: 10,
            retry,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        }
    }

    #[test]
    fn policies_follow_their_formulas() {
        let mut rng = SmallRng::seed_from_u64(1);
        let fixed: Vec<i64> = (1..=5)
            .map(|a| check_delay_ms(&knobs(RetryPolicy::Fixed), a, &mut rng))
            .collect();
        assert_eq!(fixed, [100, 100, 100, 100, 100]);
        let exp: Vec<i64> = (1..=6)
            .map(|a| check_delay_ms(&knobs(RetryPolicy::Exponential), a, &mut rng))
            .collect();
        assert_eq!(exp, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            check_delay_ms(&knobs(RetryPolicy::Exponential), 500, &mut rng),
            1000
        );
    }

    #[test]
    fn full_jitter_stays_under_the_exponential_bound_and_varies() {
        let mut rng = SmallRng::seed_from_u64(7);
        let policy = knobs(RetryPolicy::ExponentialFullJitter);
        let draws: Vec<i64> = (0..200)
            .map(|_| check_delay_ms(&policy, 3, &mut rng))
            .collect();
        assert!(draws.iter().all(|d| (0..=400).contains(d)));
        assert!(draws.iter().any(|d| *d < 200) && draws.iter().any(|d| *d > 200));
    }
}
