//! The Nano-Pulse over Supabase Realtime: opening the device's socket task, and turning what
//! it reports into measurements and machine events.

use std::time::Duration;

use syncstorm_device::{PulseSubscribe, Table};
use syncstorm_metrics::{counter, gauge};
use syncstorm_wire::client::{
    Endpoint, RealtimeClient, RealtimeEvent, RealtimeOptions, Subscription,
};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::{Metrics, op};

/// Errors of sockets that were up and then lost (server close, heartbeat timeout, reset).
pub const WS_SESSION: &str = "ws_session";

/// Counter: subscriptions the server confirmed ("Subscribed to PostgreSQL"); changes flow
/// only after it.
pub const WS_SUBSCRIBED: &str = "ws_subscribed";

/// The channel subscription the knobs ask for.
pub(crate) fn subscription(subscribe: PulseSubscribe, user_id: &str) -> Subscription {
    match subscribe {
        PulseSubscribe::UserSyncTokens => Subscription::sync_token(user_id),
        PulseSubscribe::Tables => {
            let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
            Subscription::tables(user_id, &names)
        }
    }
}

pub(crate) struct PulseSocket {
    pub client: RealtimeClient,
    /// Whether the socket is connected now (for the `sockets_open` gauge and for telling a
    /// failed connect from a lost session).
    connected: bool,
    /// The last join was refused; the disconnect that follows is a `ws_join` error.
    join_refused: bool,
}

pub(crate) struct OpenArgs<'a> {
    pub endpoint: &'a Endpoint,
    pub options: &'a RealtimeOptions,
    pub subscribe: PulseSubscribe,
    pub user_id: &'a str,
    /// The device's own copy, shared with the socket task.
    pub access_token: std::sync::Arc<str>,
    pub online: watch::Receiver<bool>,
    pub cancel: &'a CancellationToken,
}

impl PulseSocket {
    pub fn open(args: OpenArgs<'_>) -> PulseSocket {
        let client = RealtimeClient::spawn(
            args.endpoint.clone(),
            args.options.clone(),
            subscription(args.subscribe, args.user_id),
            args.access_token,
            args.online,
            args.cancel,
        );
        PulseSocket {
            client,
            connected: false,
            join_refused: false,
        }
    }

    /// Records one socket event; `true` when it is a pulse the machine must see.
    pub fn on_event<M: Metrics>(&mut self, event: RealtimeEvent, metrics: &M) -> bool {
        match event {
            RealtimeEvent::Connected { took } => {
                self.connected = true;
                metrics.latency(op::WS_CONNECT, took);
                metrics.gauge(gauge::SOCKETS_OPEN, 1);
            }
            RealtimeEvent::Joined { took } => metrics.latency(op::WS_JOIN, took),
            RealtimeEvent::Subscribed => metrics.count(WS_SUBSCRIBED, 1),
            RealtimeEvent::Change {
                commit_ms,
                received_ms,
                dropped_before,
                ..
            } => {
                let delay = Duration::from_millis((received_ms - commit_ms).max(0) as u64);
                metrics.latency(op::PULSE_DELIVERY, delay);
                metrics.count(counter::PULSES_RECEIVED, 1 + u64::from(dropped_before));
                return true;
            }
            RealtimeEvent::JoinRefused { .. } => {
                self.join_refused = true;
                metrics.count(counter::JOINS_REJECTED, 1);
            }
            RealtimeEvent::Disconnected { error } => {
                self.on_disconnect(error.kind, error.status, metrics)
            }
        }
        false
    }

    fn on_disconnect<M: Metrics>(&mut self, kind: ErrorKind, status: Option<u16>, metrics: &M) {
        let was_connected = std::mem::replace(&mut self.connected, false);
        if was_connected {
            metrics.gauge(gauge::SOCKETS_OPEN, -1);
        }
        if std::mem::take(&mut self.join_refused) {
            metrics.error(op::WS_JOIN, kind);
        } else if was_connected {
            if kind != ErrorKind::Offline {
                metrics.error(WS_SESSION, kind);
            }
        } else {
            metrics.error(op::WS_CONNECT, kind);
            if status == Some(403) {
                metrics.count(counter::WS_REJECTED, 1);
            }
        }
        metrics.count(counter::WS_RECONNECTS, 1);
    }

    /// Leaves politely (bounded: a hung server cannot hold the run's end).
    pub async fn close<M: Metrics>(self, metrics: &M) {
        if self.connected {
            metrics.gauge(gauge::SOCKETS_OPEN, -1);
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.leave()).await;
    }
}
