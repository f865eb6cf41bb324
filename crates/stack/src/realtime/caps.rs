//! The plan's realtime caps, counted the way Supabase's tenant counters are: connections held,
//! and per-second windows for joins, channel events and CDC deliveries. Lock-free, so one set of
//! counters serves every connection task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use syncstorm_plans::RealtimeCaps;

/// Counts events in the current wall-clock second; refuses what would pass `limit`.
/// Supabase compares a moving average of one-second buckets; a fixed window trips at exactly
/// the configured value, which is what a load test wants to see.
#[derive(Debug, Default)]
pub struct SecondWindow {
    /// High 32 bits: the second; low 32 bits: events counted in it.
    state: AtomicU64,
}

impl SecondWindow {
    /// Takes `n` events from this second's budget of `limit`; all or nothing.
    pub fn try_take(&self, n: u32, limit: u32, now_secs: u32) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
                let (second, used) = ((packed >> 32) as u32, packed as u32);
                let used = if second == now_secs { used } else { 0 };
                let next = used.checked_add(n).filter(|&total| total <= limit)?;
                Some((u64::from(now_secs) << 32) | u64::from(next))
            })
            .is_ok()
    }
}

/// Caps in force and the counters they are checked against.
#[derive(Debug)]
pub struct Caps {
    pub limits: RealtimeCaps,
    connections: AtomicU32,
    pub joins: SecondWindow,
    pub channel_events: SecondWindow,
    pub cdc_events: SecondWindow,
}

/// A held connection place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPlace(Arc<Caps>);

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
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
    pub fn new(limits: RealtimeCaps) -> Caps {
        Caps {
            limits,
            connections: AtomicU32::new(0),
            joins: SecondWindow::default(),
            channel_events: SecondWindow::default(),
            cdc_events: SecondWindow::default(),
        }
    }

    /// Takes a connection place, or `None` when `max_connections` are held.
    pub fn try_connect(self: &Arc<Self>) -> Option<ConnectionPlace> {
        let max = self.limits.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionPlace(Arc::clone(self)))
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Acquire)
    }

    pub fn try_join(&self) -> bool {
        self.joins
            .try_take(1, self.limits.joins_per_second, now_secs())
    }

    pub fn try_channel_event(&self) -> bool {
        self.channel_events
            .try_take(1, self.limits.events_per_second, now_secs())
    }

    /// Takes `n` deliveries of one change from the CDC budget.
    pub fn try_deliver(&self, n: u32) -> bool {
        self.cdc_events
            .try_take(n, self.limits.events_per_second, now_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_trips_at_the_limit_and_resets_next_second() {
        let w = SecondWindow::default();
        assert!((0..3).all(|_| w.try_take(1, 3, 10)));
        assert!(!w.try_take(1, 3, 10));
        assert!(w.try_take(3, 3, 11));
        assert!(
            !w.try_take(4, 3, 12),
            "a batch larger than the limit never fits"
        );
    }

    #[test]
    fn connection_places_are_freed_on_drop() {
        let caps = Arc::new(Caps::new(RealtimeCaps {
            max_connections: 2,
            joins_per_second: 1,
            events_per_second: 1,
            channels_per_client: 1,
        }));
        let a = caps.try_connect().unwrap();
        let _b = caps.try_connect().unwrap();
        assert!(caps.try_connect().is_none());
        drop(a);
        assert_eq!(caps.connections(), 1);
        assert!(caps.try_connect().is_some());
    }
}
