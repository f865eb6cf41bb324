//! Supabase Realtime's Phoenix channel frames, both serializer versions:
//! vsn 1.0.0 — JSON objects `{topic, event, payload, ref, join_ref}`;
//! vsn 2.0.0 — JSON arrays `[join_ref, ref, topic, event, payload]`.
//! Only text frames are modelled: replies, system messages and postgres_changes are JSON text in
//! both versions (binary frames carry user broadcasts, which the sync protocol does not use).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Serializer version, from the `vsn` query parameter (absent = 1.0.0, as Realtime does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Vsn {
    #[default]
    #[serde(rename = "1.0.0")]
    V1,
    #[serde(rename = "2.0.0")]
    V2,
}

impl Vsn {
    pub fn parse(s: &str) -> Option<Vsn> {
        match s {
            "1.0.0" => Some(Vsn::V1),
            "2.0.0" => Some(Vsn::V2),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Vsn::V1 => "1.0.0",
            Vsn::V2 => "2.0.0",
        }
    }
}

/// Event names on the wire.
pub mod event {
    pub const JOIN: &str = "phx_join";
    pub const LEAVE: &str = "phx_leave";
    pub const REPLY: &str = "phx_reply";
    pub const CLOSE: &str = "phx_close";
    pub const ERROR: &str = "phx_error";
    pub const HEARTBEAT: &str = "heartbeat";
    pub const ACCESS_TOKEN: &str = "access_token";
    pub const SYSTEM: &str = "system";
    pub const POSTGRES_CHANGES: &str = "postgres_changes";
}

/// The topic heartbeats use.
pub const PHOENIX_TOPIC: &str = "phoenix";

/// One Phoenix message, independent of serializer version.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// Why a text frame is not a Phoenix message (Realtime logs `MalformedWebSocketMessage` and
/// drops it; the socket stays open).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Phoenix message: {0}")]
pub struct MalformedMessage(pub &'static str);

#[derive(Serialize, Deserialize)]
struct V1Frame {
    topic: String,
    event: String,
    payload: Value,
    #[serde(rename = "ref")]
    msg_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    join_ref: Option<String>,
}

impl Message {
    pub fn new(topic: impl Into<String>, event: impl Into<String>, payload: Value) -> Message {
        Message {
            join_ref: None,
            msg_ref: None,
            topic: topic.into(),
            event: event.into(),
            payload,
        }
    }

    pub fn with_refs(mut self, join_ref: Option<String>, msg_ref: Option<String>) -> Message {
        self.join_ref = join_ref;
        self.msg_ref = msg_ref;
        self
    }

    /// Encodes as a text frame in the given version.
    pub fn encode(&self, vsn: Vsn) -> String {
        match vsn {
            Vsn::V1 => serde_json::to_string(&V1Frame {
                topic: self.topic.clone(),
                event: self.event.clone(),
                payload: self.payload.clone(),
                msg_ref: self.msg_ref.clone(),
                join_ref: self.join_ref.clone(),
            }),
            Vsn::V2 => serde_json::to_string(&json!([
                self.join_ref,
                self.msg_ref,
                self.topic,
                self.event,
                self.payload
            ])),
        }
        .expect("a JSON value always serializes")
    }

    /// Decodes a text frame in the given version.
    pub fn decode(text: &str, vsn: Vsn) -> Result<Message, MalformedMessage> {
        match vsn {
            Vsn::V1 => {
                let f: V1Frame = serde_json::from_str(text).map_err(|_| {
                    MalformedMessage("expected an object with topic, event, payload, ref")
                })?;
                Ok(Message {
                    join_ref: f.join_ref,
                    msg_ref: f.msg_ref,
                    topic: f.topic,
                    event: f.event,
                    payload: f.payload,
                })
            }
            Vsn::V2 => {
                let (join_ref, msg_ref, topic, event, payload): (
                    Option<String>,
                    Option<String>,
                    String,
                    String,
                    Value,
                ) = serde_json::from_str(text).map_err(|_| {
                    MalformedMessage("expected an array [join_ref, ref, topic, event, payload]")
                })?;
                Ok(Message {
                    join_ref,
                    msg_ref,
                    topic,
                    event,
                    payload,
                })
            }
        }
    }

    /// A `phx_reply` answering this message.
    pub fn reply(&self, status: ReplyStatus, response: Value) -> Message {
        Message {
            join_ref: self.join_ref.clone(),
            msg_ref: self.msg_ref.clone(),
            topic: self.topic.clone(),
            event: event::REPLY.to_string(),
            payload: json!({"status": status, "response": response}),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyStatus {
    Ok,
    Error,
}

/// The `payload` of a `phx_reply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyPayload {
    pub status: ReplyStatus,
    #[serde(default)]
    pub response: Value,
}

/// One `postgres_changes` binding requested in `phx_join` (and echoed back with `id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PostgresChangeFilter {
    /// `INSERT`, `UPDATE`, `DELETE` or `*`.
    pub event: String,
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// `"<col>=<op>.<value>"`, ops `eq neq lt lte gt gte in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Set only in the server's join reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// `config` of a `phx_join` payload (broadcast and presence are accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinConfig {
    #[serde(default)]
    pub postgres_changes: Vec<PostgresChangeFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Value>,
    #[serde(default)]
    pub private: bool,
}

/// A `phx_join` payload. `access_token` sits at the top level, not in `config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinPayload {
    #[serde(default)]
    pub config: JoinConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// A column in a change's `columns` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The `data` of a `postgres_changes` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeData {
    pub schema: String,
    pub table: String,
    /// UTC ISO-8601 with millisecond precision.
    pub commit_timestamp: String,
    /// `INSERT`, `UPDATE` or `DELETE`.
    #[serde(rename = "type")]
    pub change_type: String,
    pub columns: Vec<Column>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_record: Option<Value>,
    pub errors: Option<Vec<String>>,
}

/// The payload of a `postgres_changes` event: the matching subscription ids and the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangesPayload {
    pub ids: Vec<u64>,
    pub data: ChangeData,
}

/// The payload of a `system` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPayload {
    pub extension: String,
    pub status: String,
    pub message: String,
    pub channel: String,
}

/// Reason strings Realtime puts in join error replies and system errors.
pub mod reason {
    pub const TOO_MANY_CONNECTIONS: &str = "ConnectionRateLimitReached: Too many connected users";
    pub const TOO_MANY_CHANNELS: &str = "ChannelRateLimitReached: Too many channels";
    pub const TOO_MANY_JOINS: &str = "ClientJoinRateLimitReached: Too many joins per second";
    pub const TOO_MANY_MESSAGES: &str = "Too many messages per second";
    pub const TOPIC_NAME_REQUIRED: &str = "TopicNameRequired: You must provide a topic name";
    pub const SUBSCRIBED: &str = "Subscribed to PostgreSQL";
    pub const JWT_ROLE_EXP_REQUIRED: &str = "Fields `role` and `exp` are required in JWT";
    pub const JWT_SIGNATURE: &str = "JwtSignatureError: Failed to validate JWT signature";
    /// `Token has expired N seconds ago`, as Realtime words it.
    pub fn token_expired(seconds_ago: i64) -> String {
        format!("Token has expired {seconds_ago} seconds ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_round_trip() {
        let m = Message::new("realtime:u1", event::JOIN, json!({"config": {}}))
            .with_refs(Some("1".into()), Some("2".into()));
        for vsn in [Vsn::V1, Vsn::V2] {
            assert_eq!(Message::decode(&m.encode(vsn), vsn).unwrap(), m, "{vsn:?}");
        }
        assert!(
            m.encode(Vsn::V2)
                .starts_with("[\"1\",\"2\",\"realtime:u1\"")
        );
    }

    #[test]
    fn decodes_what_supabase_js_sends() {
        let v1 = r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"5"}"#;
        let m = Message::decode(v1, Vsn::V1).unwrap();
        assert_eq!(
            (m.event.as_str(), m.msg_ref.as_deref()),
            ("heartbeat", Some("5"))
        );
        let v2 = r#"[null,"6","phoenix","heartbeat",{}]"#;
        assert_eq!(Message::decode(v2, Vsn::V2).unwrap().join_ref, None);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for bad in ["", "{}", "[1,2]", "{\"topic\":1}", "null"] {
            assert!(Message::decode(bad, Vsn::V1).is_err(), "{bad}");
            assert!(Message::decode(bad, Vsn::V2).is_err(), "{bad}");
        }
    }

    #[test]
    fn join_payload_matches_supabase_shape() {
        let p: JoinPayload = serde_json::from_value(json!({
            "config": {"broadcast": {"ack": false, "self": false},
                       "presence": {"enabled": false, "key": ""},
                       "postgres_changes": [{"event": "*", "schema": "public",
                                              "table": "user_sync_tokens", "filter": "user_id=eq.7"}],
                       "private": false},
            "access_token": "jwt"}))
        .unwrap();
        assert_eq!(
            p.config.postgres_changes[0].filter.as_deref(),
            Some("user_id=eq.7")
        );
        assert_eq!(p.access_token.as_deref(), Some("jwt"));
    }

    /// The members of a change's `data`, one event type at a time, as supabase/realtime
    /// v2.78.15 encodes them (`lib/realtime/adapters/changes.ex`: `NewRecord`, `UpdatedRecord`,
    /// `DeletedRecord`, derived `Jason.Encoder` except `subscription_ids`; `errors` is `null`
    /// unless non-empty, `convert_errors` in `lib/extensions/postgres_cdc_rls/replication_poller.ex`),
    /// wrapped as `{ids, data}` (`lib/extensions/postgres_cdc_rls/message_dispatcher.ex`).
    /// `eventType`, `new` and `old` are supabase-js's renaming on the client, not wire members.
    #[test]
    fn change_data_members_match_realtime() {
        let data = |change_type: &str, record: Option<Value>, old_record: Option<Value>| {
            let payload = ChangesPayload {
                ids: vec![7],
                data: ChangeData {
                    schema: "public".into(),
                    table: "wallets".into(),
                    commit_timestamp: "2026-01-02T03:04:05.678Z".into(),
                    change_type: change_type.into(),
                    columns: vec![Column {
                        name: "id".into(),
                        type_name: "uuid".into(),
                    }],
                    record,
                    old_record,
                    errors: None,
                },
            };
            serde_json::to_value(payload).unwrap()
        };
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let common = [
            "columns",
            "commit_timestamp",
            "errors",
            "schema",
            "table",
            "type",
        ];
        let with = |extra: &[&str]| {
            let mut k: Vec<String> = common.iter().chain(extra).map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        let row = json!({"id": "a"});
        let insert = data("INSERT", Some(row.clone()), None);
        assert_eq!(keys(&insert), ["data", "ids"]);
        assert_eq!(keys(&insert["data"]), with(&["record"]));
        let update = data("UPDATE", Some(row.clone()), Some(row.clone()));
        assert_eq!(keys(&update["data"]), with(&["old_record", "record"]));
        let delete = data("DELETE", None, Some(row));
        assert_eq!(keys(&delete["data"]), with(&["old_record"]));
        assert_eq!(delete["data"]["errors"], Value::Null);
        assert_eq!(delete["ids"], json!([7]));
        assert_eq!(
            insert["data"]["columns"],
            json!([{"name": "id", "type": "uuid"}])
        );
    }

    /// A `phx_reply` payload is `{status, response}` (Phoenix's `Phoenix.Socket.Reply`, which
    /// supabase/realtime's channels answer through), with `status` `ok` or `error`.
    #[test]
    fn reply_members_match_phoenix() {
        let join = Message::new("realtime:x", event::JOIN, json!({}))
            .with_refs(Some("1".into()), Some("2".into()));
        let reply = join.reply(ReplyStatus::Error, json!({"reason": "unmatched topic"}));
        assert_eq!(
            (
                reply.event.as_str(),
                reply.join_ref.as_deref(),
                reply.msg_ref.as_deref()
            ),
            ("phx_reply", Some("1"), Some("2"))
        );
        assert_eq!(
            reply.payload,
            json!({"status": "error", "response": {"reason": "unmatched topic"}})
        );
    }
}
