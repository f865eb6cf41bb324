//! One socket's channels and the Phoenix protocol on them: join, leave, heartbeat, token
//! refresh and expiry, and the caps that apply per join and per channel message. No IO: every
//! call returns the frames to send and whether the socket must close.

use super::Shared;
use super::capture::ChangeKind;
use super::filter::{Filter, subscription_id};
use super::frame;
use super::registry::{Outbox, Sub};
use super::token::{self, Identity, TokenError};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use syncstorm_wire::phoenix::{
    JoinPayload, Message, PHOENIX_TOPIC, PostgresChangeFilter, ReplyStatus, event, reason,
};

/// What the socket task must do after handling a message.
#[derive(Debug, Default)]
pub struct Reaction {
    pub frames: Vec<String>,
    pub close_socket: bool,
}

struct Joined {
    topic: Arc<str>,
    join_ref: Option<String>,
    keys: Vec<u64>,
    exp: i64,
    fingerprint: u64,
}

pub struct Session {
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    socket_identity: Identity,
    channels: Vec<Joined>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn unable_to_subscribe(b: &PostgresChangeFilter) -> String {
    format!(
        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled \
         for the given connect parameters: [event: {}, schema: {}, table: {}, filters: [{}]]",
        b.event,
        b.schema,
        b.table.as_deref().unwrap_or("*"),
        b.filter.as_deref().unwrap_or("")
    )
}

impl Session {
    pub fn new(shared: Arc<Shared>, outbox: Arc<Outbox>, socket_identity: Identity) -> Session {
        Session {
            shared,
            outbox,
            socket_identity,
            channels: Vec::new(),
        }
    }

    fn encode(&self, msg: &Message) -> String {
        frame::encode(msg, self.outbox.vsn)
    }

    pub fn handle(&mut self, msg: Message) -> Reaction {
        let mut r = Reaction::default();
        if msg.topic == PHOENIX_TOPIC {
            r.frames
                .push(self.encode(&msg.reply(ReplyStatus::Ok, json!({}))));
            return r;
        }
        match msg.event.as_str() {
            event::JOIN => self.join(msg, &mut r),
            _ if self.position(&msg.topic).is_none() => {
                self.refuse(&msg, "unmatched topic", &mut r)
            }
            event::LEAVE => {
                r.frames
                    .push(self.encode(&msg.reply(ReplyStatus::Ok, json!({}))));
                self.close_channel(&msg.topic, None, &mut r);
            }
            _ => self.channel_message(msg, &mut r),
        }
        r
    }

    fn position(&self, topic: &str) -> Option<usize> {
        self.channels.iter().position(|c| &*c.topic == topic)
    }

    fn refuse(&self, msg: &Message, reason: &str, r: &mut Reaction) {
        let reply = msg.reply(ReplyStatus::Error, json!({ "reason": reason }));
        r.frames.push(self.encode(&reply));
    }

    fn join(&mut self, msg: Message, r: &mut Reaction) {
        let shared = Arc::clone(&self.shared);
        let m = &shared.metrics;
        let Some(name) = msg.topic.strip_prefix("realtime:") else {
            return self.refuse(&msg, "unmatched topic", r);
        };
        if name.is_empty() {
            return self.refuse(&msg, reason::TOPIC_NAME_REQUIRED, r);
        }
        if !self.shared.caps.try_join() {
            m.add(&m.joins_refused_rate_total, 1);
            self.refuse(&msg, reason::TOO_MANY_JOINS, r);
            r.close_socket = true;
            return;
        }
        if self.position(&msg.topic).is_some() {
            // Phoenix closes the existing channel on a duplicate join, then joins afresh.
            self.close_channel(&msg.topic.clone(), None, r);
        }
        if self.channels.len() >= self.shared.caps.limits.channels_per_client as usize {
            m.add(&m.joins_refused_channels_total, 1);
            return self.refuse(&msg, reason::TOO_MANY_CHANNELS, r);
        }
        let payload: JoinPayload = match serde_json::from_value(msg.payload.clone()) {
            Ok(p) => p,
            Err(e) => return self.refuse(&msg, &format!("InvalidJoinPayload: {e}"), r),
        };
        match self.identity_for(payload.access_token.as_deref()) {
            Ok(identity) => self.accept_join(msg, payload.config.postgres_changes, identity, r),
            Err(e) => {
                m.add(&m.joins_refused_token_total, 1);
                self.refuse(&msg, &e.join_reason(), r);
            }
        }
    }

    /// The channel's token: `access_token` if given (opaque `sb_` keys are ignored), else the
    /// socket's key.
    fn identity_for(&self, access_token: Option<&str>) -> Result<Identity, TokenError> {
        match access_token.filter(|t| !t.starts_with("sb_")) {
            Some(t) => token::verify(&self.shared.config.jwt_secret, t, now()),
            None => Ok(self.socket_identity.clone()),
        }
    }

    fn accept_join(
        &mut self,
        msg: Message,
        bindings: Vec<PostgresChangeFilter>,
        identity: Identity,
        r: &mut Reaction,
    ) {
        let m = &self.shared.metrics;
        m.add(&m.joins_total, 1);
        m.add(&m.channels_current, 1);
        let topic: Arc<str> = Arc::from(msg.topic.as_str());
        let echoed: Vec<Value> = bindings
            .iter()
            .map(|b| {
                let mut v = serde_json::to_value(b).unwrap_or_default();
                v["id"] = json!(subscription_id(b));
                v
            })
            .collect();
        let reply = msg.reply(ReplyStatus::Ok, json!({ "postgres_changes": echoed }));
        r.frames.push(self.encode(&reply));
        let mut joined = Joined {
            topic: Arc::clone(&topic),
            join_ref: msg.join_ref.clone().or(msg.msg_ref.clone()),
            keys: Vec::new(),
            exp: identity.exp,
            fingerprint: identity.fingerprint,
        };
        if !bindings.is_empty() {
            let status = match self.subscriptions(&topic, &bindings, &identity) {
                Ok(subs) => {
                    m.add(&m.subscriptions_current, subs.len() as u64);
                    joined.keys = subs
                        .into_iter()
                        .map(|s| self.shared.registry.add(s))
                        .collect();
                    frame::system(&topic, "postgres_changes", true, reason::SUBSCRIBED)
                }
                Err(text) => frame::system(&topic, "postgres_changes", false, &text),
            };
            r.frames.push(self.encode(&status));
        }
        self.channels.push(joined);
    }

    /// Validates every binding against the publication; all or none, like Realtime's insert of
    /// the channel's subscription rows.
    fn subscriptions(
        &self,
        topic: &Arc<str>,
        bindings: &[PostgresChangeFilter],
        identity: &Identity,
    ) -> Result<Vec<Sub>, String> {
        let catalog = self.shared.catalog.get();
        let one = |b: &PostgresChangeFilter| -> Option<Sub> {
            let event = match b.event.as_str() {
                "*" => None,
                "INSERT" => Some(ChangeKind::Insert),
                "UPDATE" => Some(ChangeKind::Update),
                "DELETE" => Some(ChangeKind::Delete),
                _ => return None,
            };
            let filter = match b.filter.as_deref().filter(|f| !f.is_empty()) {
                Some(text) => Some(Filter::parse(text).ok()?),
                None => None,
            };
            let table = b.table.clone().filter(|t| t != "*");
            if let Some(t) = &table {
                let info = catalog.get(&b.schema, t)?;
                if filter
                    .as_ref()
                    .is_some_and(|f| !info.columns.contains(&f.column))
                {
                    return None;
                }
            }
            Some(Sub {
                outbox: Arc::clone(&self.outbox),
                topic: Arc::clone(topic),
                id: subscription_id(b),
                event,
                schema: b.schema.clone(),
                table,
                filter,
                claims: Arc::clone(&identity.claims),
            })
        };
        bindings
            .iter()
            .map(|b| one(b).ok_or_else(|| unable_to_subscribe(b)))
            .collect()
    }

    fn channel_message(&mut self, msg: Message, r: &mut Reaction) {
        let shared = Arc::clone(&self.shared);
        let m = &shared.metrics;
        m.add(&m.channel_events_total, 1);
        if !self.shared.caps.try_channel_event() {
            m.add(&m.channel_events_refused_total, 1);
            let error = ("system", reason::TOO_MANY_MESSAGES.to_string());
            return self.close_channel(&msg.topic, Some(error), r);
        }
        if msg.event == event::ACCESS_TOKEN {
            self.refresh_token(msg, r);
        }
    }

    fn refresh_token(&mut self, msg: Message, r: &mut Reaction) {
        let Some(token) = msg.payload.get("access_token").and_then(Value::as_str) else {
            return;
        };
        let Some(i) = self.position(&msg.topic) else {
            return;
        };
        if token.starts_with("sb_") {
            return;
        }
        match token::verify(&self.shared.config.jwt_secret, token, now()) {
            Ok(id) => {
                let joined = &mut self.channels[i];
                if id.fingerprint != joined.fingerprint {
                    self.shared
                        .registry
                        .set_claims(&joined.keys, Arc::clone(&id.claims));
                    joined.exp = id.exp;
                    joined.fingerprint = id.fingerprint;
                }
                // Realtime re-subscribes a channel's postgres_changes under every accepted
                // token, and says so again (`handle_in("access_token", …)` then
                // `handle_info(:postgres_subscribe, …)` in realtime_channel.ex, v2.78.15).
                if !joined.keys.is_empty() {
                    let ok =
                        frame::system(&msg.topic, "postgres_changes", true, reason::SUBSCRIBED);
                    r.frames.push(self.encode(&ok));
                }
            }
            Err(e) => self.close_channel(&msg.topic, Some(("system", e.to_string())), r),
        }
    }

    /// Removes a channel; with an error, first pushes it as a `system` message.
    fn close_channel(&mut self, topic: &str, error: Option<(&str, String)>, r: &mut Reaction) {
        let Some(i) = self.position(topic) else {
            return;
        };
        let joined = self.channels.remove(i);
        if let Some((extension, text)) = error {
            r.frames
                .push(self.encode(&frame::system(topic, extension, false, &text)));
        }
        r.frames
            .push(self.encode(&frame::close(topic, joined.join_ref.as_deref())));
        self.forget(joined);
    }

    fn forget(&self, joined: Joined) {
        let m = &self.shared.metrics;
        for key in &joined.keys {
            self.shared.registry.remove(*key);
        }
        m.subscriptions_current
            .fetch_sub(joined.keys.len() as u64, Ordering::Relaxed);
        m.channels_current.fetch_sub(1, Ordering::Relaxed);
    }

    /// The earliest `exp` of a joined channel's token.
    pub fn next_expiry(&self) -> Option<i64> {
        self.channels.iter().map(|c| c.exp).min()
    }

    /// Closes channels whose token has expired, as Realtime does when it re-checks a token.
    pub fn expire(&mut self) -> Reaction {
        let mut r = Reaction::default();
        let now = now();
        while let Some(c) = self.channels.iter().find(|c| c.exp <= now) {
            let (topic, ago) = (c.topic.to_string(), now - c.exp);
            let m = &self.shared.metrics;
            m.add(&m.channels_token_expired_total, 1);
            let error = ("system", TokenError::Expired(ago).to_string());
            self.close_channel(&topic, Some(error), &mut r);
        }
        r
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for joined in std::mem::take(&mut self.channels) {
            self.forget(joined);
        }
    }
}
