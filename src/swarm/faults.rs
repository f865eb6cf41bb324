//! Faults: which devices an outage window cuts off, and each device's clock skew. Both are
//! pure functions of (seed, device), so every worker and shard agrees without talking.

use std::time::Duration;

use syncstorm_scenario::Faults;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::driver::NetworkSwitch;

/// Outages beyond this many are refused by the plan check (a device's membership is a bitmask).
pub const MAX_OUTAGES: usize = 16;

/// A well-mixed 64-bit hash of `(seed, device, salt)` (splitmix64's finaliser).
pub fn mix(seed: u64, device: u64, salt: u64) -> u64 {
    let mut z = seed
        ^ device.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` for `(seed, device, salt)`.
pub fn unit(seed: u64, device: u64, salt: u64) -> f64 {
    (mix(seed, device, salt) >> 11) as f64 / (1u64 << 53) as f64
}

const SALT_SKEW_PICK: u64 = 0x5EED_0001;
const SALT_SKEW_SIZE: u64 = 0x5EED_0002;
const SALT_OUTAGE: u64 = 0x5EED_1000;

/// The bitmask of outages that cut `device` off (bit `i` = outage `i`).
pub fn outage_mask(faults: &Faults, seed: u64, device: u64) -> u32 {
    faults
        .outages
        .iter()
        .take(MAX_OUTAGES)
        .enumerate()
        .filter(|(i, o)| unit(seed, device, SALT_OUTAGE + *i as u64) < o.fraction)
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

/// The device's clock offset in milliseconds (0 for devices without skew).
pub fn clock_skew_ms(faults: &Faults, seed: u64, device: u64) -> i64 {
    let Some(skew) = &faults.clock_skew else {
        return 0;
    };
    if unit(seed, device, SALT_SKEW_PICK) >= skew.fraction {
        return 0;
    }
    let max = skew.max.as_millis() as f64;
    ((unit(seed, device, SALT_SKEW_SIZE) * 2.0 - 1.0) * max).round() as i64
}

/// One network switch per distinct outage mask: devices with the same mask share it.
pub struct NetworkPlan {
    switches: Vec<(u32, NetworkSwitch)>,
    windows: Vec<(Duration, Duration)>,
}

impl NetworkPlan {
    pub fn new(faults: &Faults) -> Self {
        NetworkPlan {
            switches: Vec::new(),
            windows: faults
                .outages
                .iter()
                .take(MAX_OUTAGES)
                .map(|o| (o.start, o.start + o.duration))
                .collect(),
        }
    }

    /// The switch of devices with `mask`, if [`NetworkPlan::switch`] created it.
    pub fn get(&self, mask: u32) -> Option<&NetworkSwitch> {
        self.switches
            .iter()
            .find(|(m, _)| *m == mask)
            .map(|(_, s)| s)
    }

    /// The switch for devices of `mask` (created on first use).
    pub fn switch(&mut self, mask: u32) -> &NetworkSwitch {
        let at = match self.switches.iter().position(|(m, _)| *m == mask) {
            Some(i) => i,
            None => {
                self.switches.push((mask, NetworkSwitch::new()));
                self.switches.len() - 1
            }
        };
        &self.switches[at].1
    }

    /// Outages whose window covers `elapsed`, as a mask.
    pub fn active_at(&self, elapsed: Duration) -> u32 {
        self.windows
            .iter()
            .enumerate()
            .filter(|(_, (start, end))| elapsed >= *start && elapsed < *end)
            .fold(0, |mask, (i, _)| mask | 1 << i)
    }

    /// Window edges (start and end instants) in time order, deduplicated.
    fn edges(&self) -> Vec<Duration> {
        let mut edges: Vec<Duration> = self.windows.iter().flat_map(|(s, e)| [*s, *e]).collect();
        edges.sort();
        edges.dedup();
        edges
    }

    fn apply(&self, elapsed: Duration) {
        let active = self.active_at(elapsed);
        for (mask, switch) in &self.switches {
            switch.set_online(mask & active == 0);
        }
    }

    /// Flips the switches at every window edge until the last edge or `cancel`.
    /// Bounded: one wake-up per edge.
    pub async fn drive(&self, origin: Instant, cancel: CancellationToken) {
        for edge in self.edges() {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(origin + edge) => self.apply(edge),
            }
        }
        // Whatever happens, nobody is left offline for the quiet sync.
        for (_, switch) in &self.switches {
            switch.set_online(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncstorm_scenario::{ClockSkew, Outage};

    fn faults(fraction: f64) -> Faults {
        Faults {
            outages: vec![
                Outage {
                    start: Duration::from_secs(10),
                    duration: Duration::from_secs(5),
                    fraction,
                },
                Outage {
                    start: Duration::from_secs(12),
                    duration: Duration::from_secs(10),
                    fraction: 1.0,
                },
            ],
            clock_skew: Some(ClockSkew {
                fraction: 0.1,
                max: Duration::from_secs(30),
            }),
        }
    }

    #[test]
    fn outage_membership_follows_the_fraction() {
        let f = faults(0.2);
        let hit = (0..10_000)
            .filter(|d| outage_mask(&f, 7, *d) & 1 != 0)
            .count();
        assert!((1_800..=2_200).contains(&hit), "{hit}");
        assert!((0..100).all(|d| outage_mask(&f, 7, d) & 2 != 0));
        assert_eq!(outage_mask(&f, 7, 3), outage_mask(&f, 7, 3));
    }

    #[test]
    fn skew_hits_a_tenth_within_the_bound() {
        let f = faults(0.2);
        let skews: Vec<i64> = (0..10_000).map(|d| clock_skew_ms(&f, 1, d)).collect();
        let skewed = skews.iter().filter(|s| **s != 0).count();
        assert!((800..=1_200).contains(&skewed), "{skewed}");
        assert!(skews.iter().all(|s| s.abs() <= 30_000));
        assert!(skews.iter().any(|s| *s < -1_000) && skews.iter().any(|s| *s > 1_000));
    }

    #[tokio::test(start_paused = true)]
    async fn switches_follow_the_windows_and_end_online() {
        let mut plan = NetworkPlan::new(&faults(0.5));
        let first_only = plan.switch(0b01).subscribe();
        let both = plan.switch(0b11).subscribe();
        let none = plan.switch(0).subscribe();
        assert_eq!(plan.active_at(Duration::from_secs(13)), 0b11);
        let origin = Instant::now();
        let cancel = CancellationToken::new();
        let plan = std::sync::Arc::new(plan);
        let driver = tokio::spawn({
            let plan = plan.clone();
            async move { plan.drive(origin, cancel).await }
        });
        tokio::time::sleep_until(origin + Duration::from_millis(11_000)).await;
        assert!(!*first_only.borrow() && !*both.borrow() && *none.borrow());
        tokio::time::sleep_until(origin + Duration::from_millis(16_000)).await;
        assert!(*first_only.borrow() && !*both.borrow());
        driver.await.unwrap();
        assert!(*first_only.borrow() && *both.borrow() && *none.borrow());
    }
}
