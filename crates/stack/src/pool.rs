//! The REST and Auth connection pools, with the probes the harness reads from `/metrics`:
//! `syncstorm_pool_{size,in_use,waiting,max_wait_ms}{pool="rest"|"auth"}` gauges and
//! `syncstorm_pool_timeouts_total{pool=…}`. One pool of each per stack (the parent process
//! owns them; worker processes forward to it), as PostgREST and GoTrue are one service each
//! behind Kong, so waiters queue in one FIFO.

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolBuildError {
    #[error("{url} is not a valid PostgreSQL URL: {source}")]
    BadUrl {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot build the {name} connection pool: {reason}")]
    Build { name: &'static str, reason: String },
}

/// A pool that records how long checkouts wait and how many time out.
pub struct MeteredPool {
    pool: Pool,
    name: &'static str,
    /// Longest checkout wait since the last [`MeteredPool::render`], microseconds.
    max_wait_micros: AtomicU64,
    timeouts: AtomicU64,
    /// Per operation label: (holds, µs held in total) — a connection's hold time is the
    /// server-side service time the capacity model is calibrated on.
    holds: Mutex<BTreeMap<&'static str, (u64, u64)>>,
}

impl MeteredPool {
    /// A pool named `name` (the `pool` label) of at most `size` connections to `url`; a
    /// checkout waits at most `wait`.
    pub fn connect(
        name: &'static str,
        url: &str,
        size: u32,
        wait: Duration,
    ) -> Result<MeteredPool, PoolBuildError> {
        let pg: tokio_postgres::Config = url.parse().map_err(|source| PoolBuildError::BadUrl {
            url: url.to_string(),
            source,
        })?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size.max(1) as usize)
            .wait_timeout(Some(wait))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| PoolBuildError::Build {
                name,
                reason: e.to_string(),
            })?;
        Ok(MeteredPool {
            pool,
            name,
            max_wait_micros: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            holds: Mutex::new(BTreeMap::new()),
        })
    }

    /// Checks a connection out (waiting in the pool's FIFO queue), recording the wait.
    pub async fn get(&self) -> Result<Object, PoolError> {
        let started = Instant::now();
        let result = self.pool.get().await;
        let waited = started.elapsed().as_micros() as u64;
        self.max_wait_micros.fetch_max(waited, Ordering::Relaxed);
        if matches!(result, Err(PoolError::Timeout(_))) {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Records that a connection was held for `held` by a request of operation `op`.
    pub fn record_hold(&self, op: &'static str, held: Duration) {
        let micros = held.as_micros().min(u128::from(u64::MAX)) as u64;
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        let slot = holds.entry(op).or_default();
        slot.0 += 1;
        slot.1 += micros;
    }

    /// The pool's gauges and counter in Prometheus text; resets the longest wait, so each
    /// scrape reports the longest wait since the one before.
    pub fn render(&self, out: &mut String) {
        let status = self.pool.status();
        let in_use = status.size.saturating_sub(status.available);
        let max_wait_ms = self.max_wait_micros.swap(0, Ordering::Relaxed) as f64 / 1000.0;
        let timeouts = self.timeouts.load(Ordering::Relaxed);
        let name = self.name;
        let rows: [(&str, &str, &str, String); 5] = [
            (
                "size",
                "gauge",
                "connections the pool may open",
                status.max_size.to_string(),
            ),
            (
                "in_use",
                "gauge",
                "connections checked out right now",
                in_use.to_string(),
            ),
            (
                "waiting",
                "gauge",
                "requests queued for a connection",
                status.waiting.to_string(),
            ),
            (
                "max_wait_ms",
                "gauge",
                "longest wait for a connection since the previous scrape, ms",
                format!("{max_wait_ms:.3}"),
            ),
            (
                "timeouts_total",
                "counter",
                "checkouts that gave up after the pool timeout",
                timeouts.to_string(),
            ),
        ];
        for (field, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP syncstorm_pool_{field} {help}");
            let _ = writeln!(out, "# TYPE syncstorm_pool_{field} {kind}");
            let _ = writeln!(out, "syncstorm_pool_{field}{{pool=\"{name}\"}} {value}");
        }
        let holds = self.holds.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !holds.is_empty() {
            let _ = writeln!(
                out,
                "# HELP syncstorm_pool_holds_total connections checked out and returned, by operation"
            );
            let _ = writeln!(out, "# TYPE syncstorm_pool_holds_total counter");
            for (op, (n, _)) in &holds {
                let _ = writeln!(
                    out,
                    "syncstorm_pool_holds_total{{pool=\"{name}\",op=\"{op}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP syncstorm_pool_hold_seconds_total time connections were held, by operation"
            );
            let _ = writeln!(out, "# TYPE syncstorm_pool_hold_seconds_total counter");
            for (op, (_, micros)) in &holds {
                let _ = writeln!(
                    out,
                    "syncstorm_pool_hold_seconds_total{{pool=\"{name}\",op=\"{op}\"}} {:.6}",
                    *micros as f64 / 1e6
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_pool_renders_its_size_and_zeros() {
        let pool = MeteredPool::connect(
            "rest",
            "postgres://u@127.0.0.1:1/db",
            3,
            Duration::from_secs(1),
        )
        .unwrap();
        let mut text = String::new();
        pool.render(&mut text);
        assert!(
            text.contains("syncstorm_pool_size{pool=\"rest\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("syncstorm_pool_in_use{pool=\"rest\"} 0\n"));
        assert!(text.contains("syncstorm_pool_waiting{pool=\"rest\"} 0\n"));
        assert!(text.contains("syncstorm_pool_max_wait_ms{pool=\"rest\"} 0.000\n"));
        assert!(text.contains("# TYPE syncstorm_pool_timeouts_total counter"));
    }

    #[test]
    fn a_bad_url_is_one_sentence() {
        let err = MeteredPool::connect("auth", "not a url", 1, Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("not a url is not a valid PostgreSQL URL")
        );
    }
}
