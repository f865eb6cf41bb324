//! The plan's realtime caps, counted the way Supabase's tenant counters are: connections held,
//! per-second windows for joins and channel events, and for change deliveries Supabase's rate
//! counter — the limit compared with the average of up to the last 60 completed seconds, so a
//! burst passes, sustained overload drops changes, and recovery lags up to a minute. The counters live in a
//! [`region`](super::region) every worker process of the stack maps, so each cap is one count
//! across all workers, as Supabase counts per tenant across its cluster. Lock-free, so one set
//! of counters serves every connection task of every process.

use super::region::{CDC_AVERAGE, CHANNEL_EVENTS, CONNECTIONS, JOINS, SharedCounters};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use syncstorm_plans::RealtimeCaps;

/// Takes `n` events from the budget of `limit` in the wall-clock second `now_secs` counted in
/// `window` (high 32 bits: the second; low 32 bits: events counted in it); all or nothing.
/// Supabase compares a moving average of one-second buckets; a fixed window trips at exactly
/// the configured value, which is what a load test wants to see.
pub fn try_take(window: &AtomicU64, n: u32, limit: u32, now_secs: u32) -> bool {
    window
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            let (second, used) = ((packed >> 32) as u32, packed as u32);
            let used = if second == now_secs { used } else { 0 };
            let next = used.checked_add(n).filter(|&total| total <= limit)?;
            Some((u64::from(now_secs) << 32) | u64::from(next))
        })
        .is_ok()
}

/// Supabase's tenant rate counter over shared slots: slot 0 holds the first second counted,
/// then one bucket per second of the window (packed like [`try_take`]'s window).
pub struct MovingAverage<'a>(&'a [AtomicU64]);

impl<'a> MovingAverage<'a> {
    /// Seconds averaged over, at most.
    pub const WINDOW_SECS: u32 = 60;
    /// Slots it spans.
    pub const SLOTS: usize = 1 + Self::WINDOW_SECS as usize;

    pub fn new(slots: &'a [AtomicU64]) -> Self {
        assert_eq!(
            slots.len(),
            Self::SLOTS,
            "a moving average spans {} slots",
            Self::SLOTS
        );
        MovingAverage(slots)
    }

    fn bucket(&self, second: u32) -> &AtomicU64 {
        &self.0[1 + (second % Self::WINDOW_SECS) as usize]
    }

    /// Events per second over the completed seconds before `now` (at most the last 60; 0
    /// before the first second has completed).
    pub fn average(&self, now: u32) -> f64 {
        let started = self.0[0].load(Ordering::Acquire) as u32;
        if started == 0 || now <= started {
            return 0.0;
        }
        let seconds = (now - started).min(Self::WINDOW_SECS);
        let sum: u64 = (1..=seconds)
            .map(|back| {
                let packed = self.bucket(now - back).load(Ordering::Acquire);
                if (packed >> 32) as u32 == now - back {
                    u64::from(packed as u32)
                } else {
                    0
                }
            })
            .sum();
        sum as f64 / f64::from(seconds)
    }

    /// Counts `n` events in second `now`.
    pub fn add(&self, n: u32, now: u32) {
        let _ = self.0[0].compare_exchange(0, u64::from(now), Ordering::AcqRel, Ordering::Acquire);
        let _ = self
            .bucket(now)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
                let (second, used) = ((packed >> 32) as u32, packed as u32);
                let used = if second == now { used } else { 0 };
                Some((u64::from(now) << 32) | u64::from(used.saturating_add(n)))
            });
    }

    /// Counts `n` events unless the average is already above `limit` (then they are dropped,
    /// as Supabase drops the changes it pulled).
    pub fn try_take(&self, n: u32, limit: u32, now: u32) -> bool {
        if self.average(now) > f64::from(limit) {
            return false;
        }
        self.add(n, now);
        true
    }
}

/// Caps in force and the counters they are checked against.
#[derive(Debug)]
pub struct Caps {
    pub limits: RealtimeCaps,
    counters: SharedCounters,
}

/// A held connection place; dropping it frees the place (every way a socket ends drops it).
#[derive(Debug)]
pub struct ConnectionPlace(Arc<Caps>);

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        // Own slot first: if the process dies between the two, the parent's correction (which
        // subtracts the own slot from the total) leaves no leaked place.
        let counters = &self.0.counters;
        counters.own_connections().fetch_sub(1, Ordering::AcqRel);
        counters.slot(CONNECTIONS).fetch_sub(1, Ordering::AcqRel);
    }
}

/// Current wall-clock second (shared by every process on the machine).
pub fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl Caps {
    /// Caps counted in `counters` (shared with the stack's other workers, or private).
    pub fn new(limits: RealtimeCaps, counters: SharedCounters) -> Caps {
        Caps { limits, counters }
    }

    /// Takes a connection place, or `None` when `max_connections` are held across all workers.
    pub fn try_connect(self: &Arc<Self>) -> Option<ConnectionPlace> {
        let max = u64::from(self.limits.max_connections);
        self.counters
            .slot(CONNECTIONS)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        self.counters
            .own_connections()
            .fetch_add(1, Ordering::AcqRel);
        Some(ConnectionPlace(Arc::clone(self)))
    }

    /// Connections this process holds (what its `/metrics` reports, so sums over workers add up).
    pub fn connections(&self) -> u32 {
        self.counters.own_connections().load(Ordering::Acquire) as u32
    }

    /// Connections held by every worker of the stack together.
    pub fn global_connections(&self) -> u32 {
        self.counters.slot(CONNECTIONS).load(Ordering::Acquire) as u32
    }

    pub fn try_join(&self) -> bool {
        let window = self.counters.slot(JOINS);
        try_take(window, 1, self.limits.joins_per_second, now_secs())
    }

    pub fn try_channel_event(&self) -> bool {
        let window = self.counters.slot(CHANNEL_EVENTS);
        try_take(window, 1, self.limits.events_per_second, now_secs())
    }

    fn cdc_average(&self) -> MovingAverage<'_> {
        MovingAverage::new(self.counters.slots(CDC_AVERAGE, MovingAverage::SLOTS))
    }

    /// Counts `n` deliveries of one change against the events budget, or refuses them while
    /// the 60-second average is above it.
    pub fn try_deliver(&self, n: u32) -> bool {
        self.cdc_average()
            .try_take(n, self.limits.events_per_second, now_secs())
    }

    /// The change deliveries' moving average now, events per second (stack-wide).
    pub fn deliveries_average(&self) -> f64 {
        self.cdc_average().average(now_secs())
    }

    /// Whether this process reports the stack-wide figures (the first process does).
    pub fn reports_stack_wide(&self) -> bool {
        self.counters.is_first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn average_slots() -> Vec<AtomicU64> {
        (0..MovingAverage::SLOTS)
            .map(|_| AtomicU64::new(0))
            .collect()
    }

    #[test]
    fn a_burst_passes_and_sustained_overload_is_dropped_until_the_average_falls() {
        let slots = average_slots();
        let avg = MovingAverage::new(&slots);
        // Second 100: nothing completed yet, so a burst of 50 against a limit of 10 passes.
        assert!((0..50).all(|_| avg.try_take(1, 10, 100)));
        assert_eq!(avg.average(100), 0.0);
        // Second 101: the average of one completed second is 50 > 10: dropped, not counted.
        assert_eq!(avg.average(101), 50.0);
        assert!(!avg.try_take(1, 10, 101));
        // Averaged over more quiet seconds the burst fades: 50 / 5 = 10, not above the limit.
        assert_eq!(avg.average(105), 10.0);
        assert!(avg.try_take(1, 10, 105));
        // After 60 s the burst's bucket is out of the window.
        assert_eq!(avg.average(161), 1.0 / 60.0);
    }

    #[test]
    fn window_trips_at_the_limit_and_resets_next_second() {
        let w = AtomicU64::new(0);
        assert!((0..3).all(|_| try_take(&w, 1, 3, 10)));
        assert!(!try_take(&w, 1, 3, 10));
        assert!(try_take(&w, 3, 3, 11));
        assert!(
            !try_take(&w, 4, 3, 12),
            "a batch larger than the limit never fits"
        );
    }

    #[test]
    fn connection_places_are_freed_on_drop() {
        let caps = Arc::new(Caps::new(limits(2), SharedCounters::private().unwrap()));
        let a = caps.try_connect().unwrap();
        let _b = caps.try_connect().unwrap();
        assert!(caps.try_connect().is_none());
        drop(a);
        assert_eq!(caps.connections(), 1);
        assert!(caps.try_connect().is_some());
    }

    #[test]
    fn two_workers_on_one_region_share_one_connection_cap() {
        let region = Arc::new(super::super::region::CounterRegion::private().unwrap());
        let one = Arc::new(Caps::new(limits(3), SharedCounters::new(region.clone(), 0)));
        let two = Arc::new(Caps::new(limits(3), SharedCounters::new(region, 1)));
        let held = [one.try_connect(), two.try_connect(), two.try_connect()];
        assert!(held.iter().all(Option::is_some));
        assert!(one.try_connect().is_none() && two.try_connect().is_none());
        assert_eq!((one.connections(), two.connections()), (1, 2));
        assert_eq!(one.global_connections(), 3);
        drop(held);
        assert!(
            two.try_connect().is_some(),
            "a place freed on one worker serves the other"
        );
    }

    fn limits(max_connections: u32) -> RealtimeCaps {
        RealtimeCaps {
            max_connections,
            joins_per_second: 1,
            events_per_second: 1,
            channels_per_client: 1,
        }
    }
}
