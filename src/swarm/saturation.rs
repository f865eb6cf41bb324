//! The generator's own saturation, so a slow harness is never mistaken for a slow server:
//! event-loop lag (how late a 50 ms tick fires), CPU % and RSS of this process, per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Tick whose lateness measures the event loop's lag.
const LAG_TICK: Duration = Duration::from_millis(50);

/// One interval of the generator's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SaturationSample {
    /// Worst lateness of a tick in this second, milliseconds.
    pub loop_lag_max_ms: f64,
    /// CPU time used in this second, percent of one core (200 % = both cores).
    pub cpu_percent: f64,
    /// Resident memory at the end of the second, bytes.
    pub rss_bytes: u64,
}

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn clock_ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}

/// Measures event-loop lag in the background: a 50 ms tick records how late it fires.
/// The worst lateness since the last [`Meter::take`] is kept in µs. Ends with `cancel`.
pub fn spawn_lag_monitor(cancel: CancellationToken) -> Arc<AtomicU64> {
    let worst = Arc::new(AtomicU64::new(0));
    let out = worst.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(LAG_TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                fired = ticks.tick() => {
                    let late = Instant::now().saturating_duration_since(fired);
                    worst.fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                }
            }
        }
    });
    out
}

/// Turns the lag monitor and the process's CPU clock into one sample per call.
pub struct Meter {
    worst_lag_us: Arc<AtomicU64>,
    cpu_before: f64,
    at_before: Instant,
}

impl Meter {
    pub fn new(worst_lag_us: Arc<AtomicU64>) -> Meter {
        Meter {
            worst_lag_us,
            cpu_before: cpu_seconds().unwrap_or(0.0),
            at_before: Instant::now(),
        }
    }

    /// The figures since the previous call.
    pub fn take(&mut self) -> SaturationSample {
        let now = Instant::now();
        let cpu_now = cpu_seconds().unwrap_or(self.cpu_before);
        let elapsed = now.duration_since(self.at_before).as_secs_f64().max(1e-3);
        let sample = SaturationSample {
            loop_lag_max_ms: self.worst_lag_us.swap(0, Ordering::Relaxed) as f64 / 1e3,
            cpu_percent: (cpu_now - self.cpu_before) / elapsed * 100.0,
            rss_bytes: rss_bytes(),
        };
        (self.cpu_before, self.at_before) = (cpu_now, now);
        sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_come_from_fields_fourteen_and_fifteen() {
        let stat = "1234 (sync storm) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        assert!(rss_bytes() > 1_000_000);
        assert!(cpu_seconds().is_some());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocked_loop_shows_up_as_lag() {
        let cancel = CancellationToken::new();
        let mut meter = Meter::new(spawn_lag_monitor(cancel.clone()));
        // Let the monitor take its first tick, then block the only runtime thread.
        tokio::time::sleep(Duration::from_millis(60)).await;
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let sample = meter.take();
        cancel.cancel();
        assert!(sample.loop_lag_max_ms >= 200.0, "{sample:?}");
        assert!(sample.cpu_percent >= 0.0 && sample.rss_bytes > 0);
        assert!(meter.take().loop_lag_max_ms < 200.0, "taken lag resets");
    }
}
