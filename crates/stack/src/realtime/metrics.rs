//! Realtime's probes: counters the harness samples from `GET /metrics` (Prometheus text).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a change delivery was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Over the plan's events-per-second budget (Supabase drops these silently).
    Budget,
    /// The subscriber's outbound queue was full (a client too slow to read).
    SlowClient,
}

macro_rules! counters {
    ($($name:ident: $help:literal),* $(,)?) => {
        /// Monotonic counters and gauges, all relaxed atomics (probes, not synchronisation).
        #[derive(Debug, Default)]
        pub struct Metrics { $(pub $name: AtomicU64,)* }
        const HELP: &[(&str, &str)] = &[$((stringify!($name), $help),)*];
        impl Metrics {
            fn values(&self) -> Vec<u64> { vec![$(self.$name.load(Ordering::Relaxed),)*] }
        }
    };
}

counters! {
    connections_opened_total: "websocket connections accepted",
    connections_refused_cap_total: "upgrades refused with 403: max connections held",
    connections_refused_jwt_total: "upgrades refused with 403: apikey missing or not a valid JWT",
    connections_idle_closed_total: "sockets closed after the idle timeout without any frame",
    joins_total: "channel joins accepted",
    joins_refused_rate_total: "joins refused: ClientJoinRateLimitReached",
    joins_refused_channels_total: "joins refused: ChannelRateLimitReached",
    joins_refused_token_total: "joins refused: access token invalid or expired",
    channels_current: "channels joined right now",
    subscriptions_current: "postgres_changes bindings registered right now",
    channel_events_total: "client messages on channels counted against events per second",
    channel_events_refused_total: "channels closed: Too many messages per second",
    channels_token_expired_total: "channels closed because their access token expired",
    events_delivered_total: "postgres_changes frames queued to subscribers",
    events_dropped_budget_total: "postgres_changes deliveries dropped: over the events per second budget",
    events_dropped_slow_client_total: "postgres_changes deliveries dropped: subscriber queue full",
    authz_checks_total: "row visibility checks (one per change and distinct subscriber identity)",
    authz_queries_total: "authorization round trips to PostgreSQL",
    authz_micros_total: "time spent in authorization round trips, microseconds",
    polls_total: "replication slot polls",
    poll_changes_total: "changes read from the replication slot",
    poll_micros_total: "time spent polling the slot, microseconds",
    poll_lag_micros_last: "commit to poll delay of the newest change of the last non-empty poll, microseconds",
    poll_lag_micros_max: "largest commit to poll delay seen, microseconds",
    changes_dispatched_total: "changes through binding matching and row authorization",
    dispatch_queue_changes: "changes captured and not yet dispatched (the pipeline's backlog)",
    wal_behind_bytes: "WAL written but not yet confirmed by this process's slot, bytes",
    fanout_changes_received_total: "changes received from the stack's one capture (other processes)",
    fanout_lagged_batches_total: "batches a follower process lost because it fell behind the capture",
}

impl Metrics {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        let _ = self;
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason, n: u64) {
        let counter = match reason {
            DropReason::Budget => &self.events_dropped_budget_total,
            DropReason::SlowClient => &self.events_dropped_slow_client_total,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set(&self, gauge: &AtomicU64, value: u64) {
        let _ = self;
        gauge.store(value, Ordering::Relaxed);
    }

    pub fn sub(&self, gauge: &AtomicU64, n: u64) {
        let _ = self;
        let _ = gauge.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    pub fn record_lag(&self, micros: u64) {
        self.poll_lag_micros_last.store(micros, Ordering::Relaxed);
        self.poll_lag_micros_max
            .fetch_max(micros, Ordering::Relaxed);
    }

    /// Prometheus text exposition; `connections` is the live count from the caps, `decoder`
    /// the slot's plugin (an info gauge, so the harness can say which one ran), and
    /// `deliveries_average` the stack-wide events-budget average (the first process only, so
    /// sums over processes stay right).
    pub fn render(
        &self,
        connections: u32,
        decoder: super::Decoder,
        deliveries_average: Option<f64>,
    ) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP syncstorm_realtime_processes stack processes reporting (sums to their count)"
        );
        let _ = writeln!(out, "# TYPE syncstorm_realtime_processes gauge");
        let _ = writeln!(out, "syncstorm_realtime_processes 1");
        if let Some(avg) = deliveries_average {
            let _ = writeln!(
                out,
                "# HELP syncstorm_realtime_events_budget_average change deliveries per second, \
                 averaged as the events budget is (up to the last 60 s)"
            );
            let _ = writeln!(out, "# TYPE syncstorm_realtime_events_budget_average gauge");
            let _ = writeln!(out, "syncstorm_realtime_events_budget_average {avg:.3}");
        }
        let _ = writeln!(
            out,
            "# HELP syncstorm_realtime_decoder_info the output plugin capturing changes"
        );
        let _ = writeln!(out, "# TYPE syncstorm_realtime_decoder_info gauge");
        let plugin = decoder.plugin();
        let _ = writeln!(
            out,
            "syncstorm_realtime_decoder_info{{decoder=\"{plugin}\"}} 1"
        );
        let _ = writeln!(
            out,
            "# HELP syncstorm_realtime_connections websocket connections held right now"
        );
        let _ = writeln!(out, "# TYPE syncstorm_realtime_connections gauge");
        let _ = writeln!(out, "syncstorm_realtime_connections {connections}");
        for ((name, help), value) in HELP.iter().zip(self.values()) {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP syncstorm_realtime_{name} {help}");
            let _ = writeln!(out, "# TYPE syncstorm_realtime_{name} {kind}");
            let _ = writeln!(out, "syncstorm_realtime_{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_with_help_and_type() {
        let m = Metrics::default();
        m.add(&m.events_delivered_total, 3);
        m.dropped(DropReason::Budget, 2);
        m.record_lag(150);
        let text = m.render(7, super::super::Decoder::Pgoutput, Some(2.5));
        assert!(text.contains("syncstorm_realtime_connections 7\n"));
        assert!(text.contains("syncstorm_realtime_events_delivered_total 3\n"));
        assert!(text.contains("syncstorm_realtime_events_dropped_budget_total 2\n"));
        assert!(text.contains("# TYPE syncstorm_realtime_poll_lag_micros_max gauge"));
        assert!(text.contains("syncstorm_realtime_decoder_info{decoder=\"pgoutput\"} 1\n"));
        assert!(text.contains("syncstorm_realtime_events_budget_average 2.500\n"));
        assert_eq!(text.matches("# TYPE").count(), HELP.len() + 4);
    }
}
