//! The simulated network a device sits on, and the driver's clock.

use tokio::sync::watch;

/// A switch the swarm flips to cut a cohort of devices off the network (an outage window).
/// Devices hold receivers: in-flight requests fail with `offline`, sockets close, and when the
/// switch goes back on every device gets the "network back" trigger at once.
#[derive(Debug)]
pub struct NetworkSwitch {
    tx: watch::Sender<bool>,
}

impl Default for NetworkSwitch {
    fn default() -> Self {
        NetworkSwitch::new()
    }
}

impl NetworkSwitch {
    /// A switch that starts online.
    pub fn new() -> NetworkSwitch {
        NetworkSwitch {
            tx: watch::channel(true).0,
        }
    }

    /// What a device watches (`true` while online).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    pub fn set_online(&self, online: bool) {
        self.tx.send_replace(online);
    }

    pub fn is_online(&self) -> bool {
        *self.tx.borrow()
    }
}

/// Resolves when the network goes down; never if the switch is gone (the device stays online).
pub(crate) async fn until_offline(mut online: watch::Receiver<bool>) {
    if online.wait_for(|up| !*up).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The driver's timeline: true epoch milliseconds, advanced by tokio's clock so that tests
/// with `tokio::time::pause()` see time move only when they move it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_instant: tokio::time::Instant,
    base_ms: i64,
}

impl Clock {
    /// A clock reading the system time now.
    pub fn system() -> Clock {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock::starting_at(base_ms)
    }

    /// A clock reading `base_ms` now.
    pub fn starting_at(base_ms: i64) -> Clock {
        Clock {
            base_instant: tokio::time::Instant::now(),
            base_ms,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.base_ms + self.base_instant.elapsed().as_millis() as i64
    }

    /// What the timeline read (or will read) at `instant`.
    pub fn ms_at(&self, instant: tokio::time::Instant) -> i64 {
        if instant >= self.base_instant {
            self.base_ms + (instant - self.base_instant).as_millis() as i64
        } else {
            self.base_ms - (self.base_instant - instant).as_millis() as i64
        }
    }

    /// The tokio instant at which the timeline reads `at_ms` (now, if that is past).
    pub fn instant_at(&self, at_ms: i64) -> tokio::time::Instant {
        let offset = (at_ms - self.base_ms).max(0) as u64;
        (self.base_instant + std::time::Duration::from_millis(offset))
            .max(tokio::time::Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_tokio_time() {
        let clock = Clock::starting_at(1_000);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(
            clock.instant_at(2_000) - tokio::time::Instant::now(),
            Duration::from_millis(750)
        );
    }

    #[tokio::test]
    async fn devices_see_the_switch() {
        let switch = NetworkSwitch::new();
        let rx = switch.subscribe();
        let waiting = tokio::spawn(until_offline(rx));
        switch.set_online(false);
        waiting.await.unwrap();
        assert!(!switch.is_online());
    }
}
