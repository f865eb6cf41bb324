//! The socket task behind [`super::RealtimeClient`]: connect, join, heartbeat, reconnect.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::ClientError;
use super::realtime::{RealtimeEvent, SocketSetup, closed};
use super::rest::parse_iso_millis;
use crate::error::ErrorKind;
use crate::phoenix::{self, JoinConfig, JoinPayload, Message, ReplyPayload, ReplyStatus, event};

use super::realtime_upgrade::{Socket, connect};

/// How a connected session ended.
enum Ended {
    /// Leave, cancellation, or the device dropped its handle: the task ends.
    Stop,
    /// The socket or channel was lost; `joined` tells whether it had been joined (a success
    /// resets the failure count).
    Lost { error: ClientError, joined: bool },
}

/// Sends events to the device with the channel's policy (see the module docs of `realtime`).
struct Delivery {
    tx: mpsc::Sender<Box<RealtimeEvent>>,
    dropped: u32,
}

impl Delivery {
    /// Drops and counts a change when the channel is full. `false` once the device is gone.
    fn change(&mut self, table: String, commit_ms: i64, received_ms: i64) -> bool {
        let event = RealtimeEvent::Change {
            table,
            commit_ms,
            received_ms,
            dropped_before: self.dropped,
        };
        match self.tx.try_send(Box::new(event)) {
            Ok(()) => {
                self.dropped = 0;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped = self.dropped.saturating_add(1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Waits for room. `false` once the device is gone or the task is cancelled.
    async fn lifecycle(&self, event: RealtimeEvent, setup: &SocketSetup) -> bool {
        tokio::select! {
            sent = self.tx.send(Box::new(event)) => sent.is_ok(),
            _ = setup.cancel.cancelled() => false,
        }
    }
}

pub(crate) async fn run(mut setup: SocketSetup, events: mpsc::Sender<Box<RealtimeEvent>>) {
    let mut delivery = Delivery {
        tx: events,
        dropped: 0,
    };
    let mut failures = 0u32;
    loop {
        if !wait_until_online(&mut setup).await {
            return;
        }
        let (error, joined) = match serve(&mut setup, &mut delivery).await {
            Ended::Stop => return,
            Ended::Lost { error, joined } => (error, joined),
        };
        failures = if joined { 1 } else { failures + 1 };
        let offline = error.kind == ErrorKind::Offline;
        if !delivery
            .lifecycle(RealtimeEvent::Disconnected { error }, &setup)
            .await
        {
            return;
        }
        // Back from an outage the device reconnects at once (the reconnect storm); otherwise
        // it waits as its policy says.
        if !offline && !backoff(&setup, failures).await {
            return;
        }
    }
}

/// Waits until the network is up. `false` on cancellation.
async fn wait_until_online(setup: &mut SocketSetup) -> bool {
    tokio::select! {
        // A dropped network switch leaves the device online.
        _ = setup.online.wait_for(|online| *online) => true,
        _ = setup.cancel.cancelled() => false,
    }
}

/// Resolves when the network goes down; never, if the switch is gone.
async fn until_offline(mut online: tokio::sync::watch::Receiver<bool>) {
    if online.wait_for(|online| !*online).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits the policy's delay. `false` on cancellation.
async fn backoff(setup: &SocketSetup, failures: u32) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(setup.options.reconnect.delay(failures)) => true,
        _ = setup.cancel.cancelled() => false,
    }
}

/// One connection: connect and join; the joined socket is then served by [`serve`].
async fn open(setup: &mut SocketSetup, delivery: &mut Delivery) -> Result<(Socket, Refs), Ended> {
    let started = Instant::now();
    let connecting = tokio::time::timeout(setup.options.connect_timeout, connect(setup));
    let mut socket = tokio::select! {
        result = connecting => match result {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) => return Err(Ended::Lost { error, joined: false }),
            Err(_) => return Err(lost(ErrorKind::Timeout, "websocket connect timed out", false)),
        },
        _ = setup.cancel.cancelled() => return Err(Ended::Stop),
        _ = until_offline(setup.online.clone()) => return Err(offline(false)),
    };
    let connected = RealtimeEvent::Connected {
        took: started.elapsed(),
    };
    if !delivery.lifecycle(connected, setup).await {
        return Err(Ended::Stop);
    }
    let mut refs = Refs::default();
    match join(setup, &mut socket, &mut refs).await {
        Ok(took) => {
            if !delivery
                .lifecycle(RealtimeEvent::Joined { took }, setup)
                .await
            {
                return Err(Ended::Stop);
            }
            Ok((socket, refs))
        }
        Err(JoinFailed::Refused(reason)) => {
            let _ = socket.close(None).await;
            let error = ClientError::new(join_refusal_kind(&reason), reason.clone());
            if !delivery
                .lifecycle(RealtimeEvent::JoinRefused { reason }, setup)
                .await
            {
                return Err(Ended::Stop);
            }
            Err(Ended::Lost {
                error,
                joined: false,
            })
        }
        Err(JoinFailed::Lost(ended)) => Err(ended),
    }
}

/// Message refs of one socket: the join's, and a counter for the rest.
#[derive(Default)]
struct Refs {
    next: u64,
    join: String,
    pending_heartbeat: Option<String>,
}

impl Refs {
    fn next(&mut self) -> String {
        self.next += 1;
        self.next.to_string()
    }
}

enum JoinFailed {
    Refused(String),
    Lost(Ended),
}

/// Sends `phx_join` and reads frames until its reply (or the join timeout).
async fn join(
    setup: &mut SocketSetup,
    socket: &mut Socket,
    refs: &mut Refs,
) -> Result<Duration, JoinFailed> {
    let started = Instant::now();
    refs.join = refs.next();
    let payload = JoinPayload {
        config: JoinConfig {
            postgres_changes: setup.subscription.filters.clone(),
            broadcast: Some(json!({"ack": false, "self": false})),
            presence: Some(json!({"enabled": false, "key": ""})),
            private: false,
        },
        access_token: Some(setup.token.borrow_and_update().to_string()),
    };
    let message = Message::new(&setup.subscription.topic, event::JOIN, json!(payload))
        .with_refs(Some(refs.join.clone()), Some(refs.join.clone()));
    if let Err(e) = socket
        .send(WsMessage::text(message.encode(setup.options.vsn)))
        .await
    {
        return Err(JoinFailed::Lost(ws_lost(&e, false)));
    }
    let deadline = tokio::time::sleep(setup.options.join_timeout);
    tokio::pin!(deadline);
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = &mut deadline => return Err(JoinFailed::Lost(lost(ErrorKind::Timeout, "join timed out", false))),
            _ = setup.cancel.cancelled() => return Err(JoinFailed::Lost(Ended::Stop)),
            _ = until_offline(setup.online.clone()) => return Err(JoinFailed::Lost(offline(false))),
        };
        let message = match read_message(frame, setup.options.vsn) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(ended) => return Err(JoinFailed::Lost(ended)),
        };
        if message.event == event::REPLY && message.msg_ref.as_deref() == Some(&refs.join) {
            return match serde_json::from_value::<ReplyPayload>(message.payload) {
                Ok(r) if r.status == ReplyStatus::Ok => Ok(started.elapsed()),
                Ok(r) => Err(JoinFailed::Refused(reply_reason(&r.response))),
                Err(_) => Err(JoinFailed::Refused("malformed join reply".into())),
            };
        }
    }
}

/// Why the joined session woke up.
enum Wake {
    Stop,
    Offline,
    Token,
    Heartbeat,
    Frame(Option<Result<WsMessage, tungstenite::Error>>),
}

/// One connection: opened and joined, then heartbeats, token pushes and changes until it is
/// lost or stopped.
async fn serve(setup: &mut SocketSetup, delivery: &mut Delivery) -> Ended {
    // Opening is boxed: it is short-lived, and inline it would size the task for its life.
    // The socket is opened here, not passed in, so that it is stored once in this future.
    let (mut socket, mut refs) = match Box::pin(open(setup, delivery)).await {
        Ok(opened) => opened,
        Err(ended) => return ended,
    };
    let period = setup.options.heartbeat_interval;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let vsn = setup.options.vsn;
    let cancel = setup.cancel.clone();
    loop {
        let wake = tokio::select! {
            _ = cancel.cancelled() => Wake::Stop,
            _ = until_offline(setup.online.clone()) => Wake::Offline,
            changed = setup.token.changed() => match changed {
                Ok(()) => Wake::Token,
                Err(_) => Wake::Stop,
            },
            _ = heartbeat.tick() => Wake::Heartbeat,
            frame = socket.next() => Wake::Frame(frame),
        };
        let outgoing = match wake {
            Wake::Stop => {
                return leave(&mut socket, setup, &mut refs).await;
            }
            Wake::Offline => return offline(true),
            Wake::Token => {
                let payload = json!({"access_token": &**setup.token.borrow_and_update()});
                Message::new(&setup.subscription.topic, event::ACCESS_TOKEN, payload)
                    .with_refs(Some(refs.join.clone()), Some(refs.next()))
            }
            Wake::Heartbeat => {
                if refs.pending_heartbeat.is_some() {
                    return lost(ErrorKind::WsClosed, "heartbeat timeout", true);
                }
                let r = refs.next();
                refs.pending_heartbeat = Some(r.clone());
                Message::new(phoenix::PHOENIX_TOPIC, event::HEARTBEAT, json!({}))
                    .with_refs(None, Some(r))
            }
            Wake::Frame(frame) => match read_message(frame, vsn) {
                Ok(Some(message)) => match on_message(message, setup, &mut refs, delivery) {
                    Some(ended) => return ended,
                    None => continue,
                },
                Ok(None) => continue,
                Err(ended) => return ended,
            },
        };
        if let Err(e) = socket.send(WsMessage::text(outgoing.encode(vsn))).await {
            return ws_lost(&e, true);
        }
    }
}

#[derive(Deserialize)]
struct ChangeBrief {
    data: ChangeBriefData,
}

#[derive(Deserialize)]
struct ChangeBriefData {
    table: String,
    commit_timestamp: String,
}

/// Handles one server message on a joined socket; `Some` when the session ends.
fn on_message(
    message: Message,
    setup: &SocketSetup,
    refs: &mut Refs,
    delivery: &mut Delivery,
) -> Option<Ended> {
    if message.topic == phoenix::PHOENIX_TOPIC {
        if message.event == event::REPLY && message.msg_ref == refs.pending_heartbeat {
            refs.pending_heartbeat = None;
        }
        return None;
    }
    if message.topic != setup.subscription.topic {
        return None;
    }
    match message.event.as_str() {
        event::POSTGRES_CHANGES => {
            let received_ms = unix_ms_now();
            let brief: ChangeBrief = serde_json::from_value(message.payload).ok()?;
            let commit_ms = parse_iso_millis(&brief.data.commit_timestamp).unwrap_or(received_ms);
            if !delivery.change(brief.data.table, commit_ms, received_ms) {
                return Some(Ended::Stop);
            }
            None
        }
        event::SYSTEM => system_message(&message.payload, delivery),
        event::CLOSE | event::ERROR => Some(lost(ErrorKind::WsClosed, message.event, true)),
        _ => None,
    }
}

/// A `system` message: "Subscribed to PostgreSQL" is passed on; errors are followed by
/// `phx_close`, which ends the session.
fn system_message(payload: &serde_json::Value, delivery: &mut Delivery) -> Option<Ended> {
    let message = payload
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    let ok = payload.get("status").and_then(|s| s.as_str()) == Some("ok");
    if ok && message == phoenix::reason::SUBSCRIBED {
        // Lifecycle events normally wait for room; this one is only informative, so a full
        // channel drops it rather than stall the socket.
        let _ = delivery.tx.try_send(Box::new(RealtimeEvent::Subscribed));
    } else if !ok {
        tracing::debug!(message, "realtime system error");
    }
    None
}

/// Reads one frame into a Phoenix message; `Ok(None)` for frames to skip (pings, malformed
/// text, binary), `Err` when the socket is gone.
fn read_message(
    frame: Option<Result<WsMessage, tungstenite::Error>>,
    vsn: phoenix::Vsn,
) -> Result<Option<Message>, Ended> {
    match frame {
        Some(Ok(WsMessage::Text(text))) => Ok(Message::decode(text.as_str(), vsn).ok()),
        Some(Ok(WsMessage::Close(_))) | None => {
            Err(lost(ErrorKind::WsClosed, "server closed the socket", true))
        }
        Some(Ok(_)) => Ok(None),
        Some(Err(e)) => Err(ws_lost(&e, true)),
    }
}

async fn leave(socket: &mut Socket, setup: &SocketSetup, refs: &mut Refs) -> Ended {
    let message = Message::new(&setup.subscription.topic, event::LEAVE, json!({}))
        .with_refs(Some(refs.join.clone()), Some(refs.next()));
    let _ = socket
        .send(WsMessage::text(message.encode(setup.options.vsn)))
        .await;
    let _ = socket.close(None).await;
    Ended::Stop
}

fn join_refusal_kind(reason: &str) -> ErrorKind {
    if reason.contains("RateLimitReached") || reason.contains("Too many") {
        ErrorKind::RateLimited
    } else if reason.contains("JWT") || reason.contains("Unauthorized") || reason.contains("Token")
    {
        ErrorKind::Unauthorized
    } else {
        ErrorKind::WsClosed
    }
}

fn reply_reason(response: &serde_json::Value) -> String {
    response
        .get("reason")
        .and_then(|r| r.as_str())
        .unwrap_or("join refused")
        .to_owned()
}

fn ws_lost(e: &tungstenite::Error, joined: bool) -> Ended {
    let error = match e {
        tungstenite::Error::Io(io) => ClientError::from_io(io),
        other => closed(other.to_string()),
    };
    Ended::Lost { error, joined }
}

fn lost(kind: ErrorKind, reason: impl Into<String>, joined: bool) -> Ended {
    Ended::Lost {
        error: ClientError::new(kind, reason),
        joined,
    }
}

fn offline(joined: bool) -> Ended {
    Ended::Lost {
        error: ClientError::offline(),
        joined,
    }
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
