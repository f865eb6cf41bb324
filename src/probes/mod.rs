//! Server-side probes on the run's timeline: once per second, the database's connections by
//! state, wait events and blocked sessions (`pg_stat_activity`, `pg_locks`), and the stack's
//! `/metrics` (realtime counters, pool queues). Probes only read; they never change the server.

pub mod pg;
pub mod prom;

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::result::{PoolSample, ProbeSample, Probes};

/// How long one sample may take before it is counted as failed.
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(900);

/// Prefix of the embedded realtime server's metric names.
const REALTIME_PREFIX: &str = "syncstorm_realtime_";
/// Prefix of pool gauges (`syncstorm_pool_waiting{pool="rest"}`).
const POOL_PREFIX: &str = "syncstorm_pool_";

/// What to sample.
#[derive(Debug, Clone, Default)]
pub struct ProbeConfig {
    /// Direct database URL (embedded stack, or `--database-url`).
    pub database_url: Option<String>,
    /// Prometheus endpoints of the stack (one per realtime process).
    pub metrics_urls: Vec<String>,
    /// Said in the result: what was sampled.
    pub source: String,
    pub interval: Duration,
}

/// Samples until `cancel`; `t` of each sample counts from `origin` (the run's start).
pub async fn run(config: ProbeConfig, origin: Instant, cancel: CancellationToken) -> Probes {
    let interval = config.interval.max(Duration::from_millis(100));
    let mut probes = Probes {
        source: Some(config.source.clone()),
        interval_ms: interval.as_millis() as u64,
        ..Probes::default()
    };
    let db = match &config.database_url {
        Some(url) => connect_db(url, &mut probes).await,
        None => None,
    };
    let http = reqwest::Client::builder()
        .timeout(SAMPLE_TIMEOUT)
        .build()
        .ok();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return probes,
            _ = ticks.tick() => {}
        }
        let t = origin.elapsed().as_secs_f64();
        let sampled = tokio::time::timeout(
            SAMPLE_TIMEOUT,
            sample(db.as_ref(), http.as_ref(), &config.metrics_urls, t),
        )
        .await;
        match sampled {
            Ok(Some(s)) => probes.samples.push(s),
            _ => probes.failed_samples += 1,
        }
    }
}

async fn connect_db(url: &str, probes: &mut Probes) -> Option<pg::PgProbe> {
    match pg::PgProbe::connect(url).await {
        Ok(db) => {
            probes.db_max_connections = db.max_connections().await.ok();
            Some(db)
        }
        Err(err) => {
            tracing::warn!("database probes are off: {err}");
            None
        }
    }
}

/// One sample; `None` when every source failed.
async fn sample(
    db: Option<&pg::PgProbe>,
    http: Option<&reqwest::Client>,
    metrics_urls: &[String],
    t: f64,
) -> Option<ProbeSample> {
    let mut s = ProbeSample {
        t,
        ..ProbeSample::default()
    };
    let mut ok = db.is_none() && metrics_urls.is_empty();
    if let Some(db) = db {
        ok |= db.sample_into(&mut s).await.is_ok();
    }
    for url in metrics_urls {
        let Some(http) = http else { break };
        if let Some(text) = fetch(http, url).await {
            apply_metrics(&text, &mut s);
            ok = true;
        }
    }
    ok.then_some(s)
}

async fn fetch(http: &reqwest::Client, url: &str) -> Option<String> {
    let response = http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// Adds a `/metrics` page's figures to `sample` (summed when several processes report).
pub fn apply_metrics(text: &str, sample: &mut ProbeSample) {
    let (samples, _bad) = prom::parse(text);
    for m in samples {
        if let Some(key) = m.name.strip_prefix(REALTIME_PREFIX) {
            *sample.realtime.entry(key.to_owned()).or_default() += m.value;
        } else if let Some(field) = m.name.strip_prefix(POOL_PREFIX) {
            let name = m.labels.get("pool").cloned().unwrap_or_else(|| "db".into());
            let pool = sample.pools.entry(name).or_default();
            match (field, m.labels.get("op")) {
                ("holds_total", Some(op)) => {
                    pool.holds.entry(op.clone()).or_default().count += m.value.max(0.0) as u64;
                }
                ("hold_seconds_total", Some(op)) => {
                    pool.holds.entry(op.clone()).or_default().seconds += m.value.max(0.0);
                }
                _ => apply_pool_field(pool, field, m.value),
            }
        }
    }
}

fn apply_pool_field(pool: &mut PoolSample, field: &str, value: f64) {
    let count = value.max(0.0) as u32;
    match field {
        "size" => pool.size += count,
        "in_use" => pool.in_use += count,
        "waiting" => pool.waiting += count,
        "max_wait_ms" => pool.max_wait_ms = pool.max_wait_ms.max(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_and_pool_metrics_land_in_their_fields_and_sum_over_processes() {
        let page = "syncstorm_realtime_connections 10\nsyncstorm_realtime_joins_total 4\n\
                    syncstorm_pool_size{pool=\"rest\"} 10\nsyncstorm_pool_waiting{pool=\"rest\"} 3\n\
                    syncstorm_pool_max_wait_ms{pool=\"rest\"} 120.5\nunrelated_metric 1\n\
                    syncstorm_pool_holds_total{pool=\"rest\",op=\"pull\"} 4\n\
                    syncstorm_pool_hold_seconds_total{pool=\"rest\",op=\"pull\"} 0.002\n";
        let mut s = ProbeSample::default();
        apply_metrics(page, &mut s);
        apply_metrics("syncstorm_realtime_connections 5\n", &mut s);
        assert_eq!(s.realtime["connections"], 15.0);
        assert_eq!(s.realtime["joins_total"], 4.0);
        assert_eq!(s.pools["rest"].size, 10);
        assert_eq!(s.pools["rest"].waiting, 3);
        assert_eq!(s.pools["rest"].max_wait_ms, 120.5);
        assert_eq!(s.pools["rest"].holds["pull"].count, 4);
        assert_eq!(s.pools["rest"].holds["pull"].seconds, 0.002);
        assert_eq!(s.realtime.len(), 2);
    }
}
