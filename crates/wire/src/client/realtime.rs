//! Realtime client: one socket task per device that connects, joins one `postgres_changes`
//! channel for its user, heartbeats, pushes refreshed access tokens, and reconnects with its
//! retry policy; the device reads what happens from a small bounded channel.
//!
//! Channel policy when full: a change event is **dropped and counted** (the queue already holds
//! an event that will make the device sync, and a sync reads the latest state, so a dropped
//! pulse loses no data — the count is carried on the next delivered change); lifecycle events
//! (connected, joined, disconnected…) **wait** for room.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::{ClientError, Endpoint};
use crate::error::ErrorKind;
use crate::phoenix::{PostgresChangeFilter, Vsn};

/// Delays between reconnect attempts: `delays[n]` after the n-th failure in a row, the last one
/// repeating; with `full_jitter` each wait is uniform in `[0, delay]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub delays: Vec<Duration>,
    pub full_jitter: bool,
}

impl Default for ReconnectPolicy {
    /// realtime-js: 1 s, 2 s, 5 s, then every 10 s.
    fn default() -> Self {
        ReconnectPolicy {
            delays: [1_000, 2_000, 5_000, 10_000]
                .map(Duration::from_millis)
                .to_vec(),
            full_jitter: false,
        }
    }
}

impl ReconnectPolicy {
    /// The wait after `failures` failed attempts in a row (`failures >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(last) = self.delays.last() else {
            return Duration::ZERO;
        };
        let index = failures.saturating_sub(1) as usize;
        let base = *self.delays.get(index).unwrap_or(last);
        if self.full_jitter && !base.is_zero() {
            Duration::from_millis(rand::random_range(0..=base.as_millis() as u64))
        } else {
            base
        }
    }
}

/// Socket knobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealtimeOptions {
    pub vsn: Vsn,
    /// Phoenix heartbeat period (realtime-js: 25 s); an unanswered heartbeat at the next tick
    /// closes the socket.
    pub heartbeat_interval: Duration,
    pub connect_timeout: Duration,
    /// How long to wait for the join reply (realtime-js: 10 s).
    pub join_timeout: Duration,
    pub reconnect: ReconnectPolicy,
    /// Source address to bind (spreads connections to a remote target over local addresses).
    pub local_address: Option<IpAddr>,
    /// Capacity of the event channel to the device.
    pub events_capacity: usize,
}

impl Default for RealtimeOptions {
    fn default() -> Self {
        RealtimeOptions {
            vsn: Vsn::V1,
            heartbeat_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            reconnect: ReconnectPolicy::default(),
            local_address: None,
            events_capacity: 4,
        }
    }
}

/// The one channel a device joins.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// `realtime:<name>`.
    pub topic: String,
    pub filters: Vec<PostgresChangeFilter>,
}

impl Subscription {
    /// Changes to the user's row in `user_sync_tokens` (the default Nano-Pulse).
    pub fn sync_token(user_id: &str) -> Subscription {
        Subscription::tables(user_id, &["user_sync_tokens"])
    }

    /// Changes to the user's rows in the given tables (one binding per table).
    pub fn tables(user_id: &str, tables: &[&str]) -> Subscription {
        let filters = tables
            .iter()
            .map(|table| PostgresChangeFilter {
                event: "*".into(),
                schema: "public".into(),
                table: Some((*table).into()),
                filter: Some(format!("user_id=eq.{user_id}")),
                id: None,
            })
            .collect();
        Subscription {
            topic: format!("realtime:sync:{user_id}"),
            filters,
        }
    }
}

/// What the socket task tells the device.
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeEvent {
    /// The websocket upgrade succeeded after `took` (the `ws_connect` latency).
    Connected { took: Duration },
    /// The join was accepted after `took` (the `ws_join` latency).
    Joined { took: Duration },
    /// The server confirmed the `postgres_changes` subscription; changes now flow.
    Subscribed,
    /// A change for this user (a Nano-Pulse). Times are Unix milliseconds: the commit time from
    /// the server and the (true) time it was read off the socket.
    Change {
        table: String,
        commit_ms: i64,
        received_ms: i64,
        /// Changes dropped because the channel was full since the last delivered one.
        dropped_before: u32,
    },
    /// The server refused the join (`reason` is Realtime's `<Code>: <message>`).
    JoinRefused { reason: String },
    /// The socket or the channel closed; the task reconnects after its policy's delay.
    Disconnected { error: ClientError },
}

/// A device's handle on its socket task. Dropping it aborts the task, so no socket outlives
/// its device; [`RealtimeClient::leave`] ends it politely.
#[derive(Debug)]
pub struct RealtimeClient {
    /// The latest access token (shared with the device's copy, not copied per socket); the
    /// task pushes each new one to the joined channel.
    token: watch::Sender<Arc<str>>,
    /// Ends the task (it sends `phx_leave` and closes the socket first).
    stop: CancellationToken,
    /// Boxed: a channel reserves room for 32 messages up front, 56 bytes each unboxed.
    events: mpsc::Receiver<Box<RealtimeEvent>>,
    task: AbortOnDropHandle<()>,
}

/// Everything the socket task needs, owned by it.
pub(crate) struct SocketSetup {
    pub endpoint: Endpoint,
    pub options: RealtimeOptions,
    pub subscription: Subscription,
    pub token: watch::Receiver<Arc<str>>,
    /// `true` while the network is up; the task closes its socket while it is `false`.
    pub online: watch::Receiver<bool>,
    /// The device's cancellation, or [`RealtimeClient::leave`].
    pub cancel: CancellationToken,
}

impl RealtimeClient {
    /// Starts the socket task. It runs until [`RealtimeClient::leave`], `cancel`, or the
    /// handle is dropped.
    pub fn spawn(
        endpoint: Endpoint,
        options: RealtimeOptions,
        subscription: Subscription,
        access_token: impl Into<Arc<str>>,
        online: watch::Receiver<bool>,
        cancel: &CancellationToken,
    ) -> RealtimeClient {
        let (token_tx, token_rx) = watch::channel(access_token.into());
        let (event_tx, event_rx) = mpsc::channel(options.events_capacity.max(1));
        let stop = cancel.child_token();
        let setup = SocketSetup {
            endpoint,
            options,
            subscription,
            token: token_rx,
            online,
            cancel: stop.clone(),
        };
        let task =
            AbortOnDropHandle::new(tokio::spawn(super::realtime_socket::run(setup, event_tx)));
        RealtimeClient {
            token: token_tx,
            stop,
            events: event_rx,
            task,
        }
    }

    /// The next event; `None` once the task has ended.
    pub async fn next_event(&mut self) -> Option<RealtimeEvent> {
        self.events.recv().await.map(|event| *event)
    }

    /// Hands a refreshed token to the socket without waiting: pushed as `access_token` to the
    /// joined channel, and used for every later join.
    pub fn set_access_token(&self, token: impl Into<Arc<str>>) {
        self.token.send_replace(token.into());
    }

    /// Leaves the channel, closes the socket and waits for the task to end.
    pub async fn leave(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// `ws_closed` with a reason, for the `Disconnected` event.
pub(crate) fn closed(reason: impl Into<String>) -> ClientError {
    ClientError::new(ErrorKind::WsClosed, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_step_then_repeat_and_jitter_stays_below() {
        let policy = ReconnectPolicy::default();
        let secs: Vec<u64> = (1..=6).map(|n| policy.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 5, 10, 10, 10]);
        let jittered = ReconnectPolicy {
            full_jitter: true,
            ..policy
        };
        assert!((0..100).all(|_| jittered.delay(3) <= Duration::from_secs(5)));
    }

    #[test]
    fn subscriptions_filter_on_the_user() {
        let s = Subscription::tables("u1", &["wallets", "plans"]);
        assert_eq!(s.filters.len(), 2);
        assert_eq!(s.filters[1].filter.as_deref(), Some("user_id=eq.u1"));
        assert_eq!(
            Subscription::sync_token("u1").filters[0].table.as_deref(),
            Some("user_sync_tokens")
        );
    }
}
