//! The Phoenix frame decoder, both serializer versions, and the payloads read out of a frame
//! by event: a join's config and its `postgres_changes` filters (matched against a record),
//! a reply, a change and a system message. Seeded with the frames supabase-js and Realtime
//! exchange.

use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};
use syncstorm_stack::realtime::filter::{Filter, subscription_id};
use syncstorm_wire::phoenix::{
    ChangesPayload, JoinPayload, Message, ReplyPayload, SystemPayload, Vsn, event,
};

use crate::engine::{Target, Verdict, one_sentence};
use crate::mutate::Mutator;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4ZjBjNmIxZSIsInJvbGUiOiJhdXRoZW50aWNhdGVkIiwiZXhwIjo0MTAyNDQ0ODAwLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJl";

fn seed_messages() -> Vec<Message> {
    let refs = |m: Message| m.with_refs(Some("1".into()), Some("2".into()));
    let record = json!({"id": "8f0c6b1e", "user_id": "u1", "amount": 12.5, "deleted": false});
    vec![
        refs(Message::new(
            "realtime:sync-u1",
            event::JOIN,
            json!({"config": {"broadcast": {"self": false}, "presence": {"key": ""}, "private": false,
                "postgres_changes": [
                    {"event": "*", "schema": "public", "table": "sync_state", "filter": "user_id=eq.u1"},
                    {"event": "UPDATE", "schema": "public", "table": "transactions", "filter": "amount=in.(1,2,3)"}
                ]}, "access_token": TOKEN}),
        )),
        Message::new("phoenix", event::HEARTBEAT, json!({})).with_refs(None, Some("5".into())),
        refs(Message::new(
            "realtime:sync-u1",
            event::ACCESS_TOKEN,
            json!({"access_token": TOKEN}),
        )),
        refs(Message::new("realtime:sync-u1", event::LEAVE, json!({}))),
        refs(Message::new(
            "realtime:sync-u1",
            event::REPLY,
            json!({"status": "ok", "response": {"postgres_changes": [{"id": 1234, "event": "*", "schema": "public", "table": "sync_state"}]}}),
        )),
        Message::new(
            "realtime:sync-u1",
            event::POSTGRES_CHANGES,
            json!({"ids": [1234], "data": {"schema": "public", "table": "transactions",
                "commit_timestamp": "2026-12-05T03:54:06.123Z", "type": "UPDATE",
                "columns": [{"name": "id", "type": "uuid"}], "record": record,
                "old_record": {"id": "8f0c6b1e"}, "errors": null}}),
        ),
        Message::new(
            "realtime:sync-u1",
            event::SYSTEM,
            json!({"extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL", "channel": "sync-u1"}),
        ),
    ]
}

/// One text frame and the version the socket was opened with.
#[derive(Debug)]
pub struct Frame {
    pub vsn: Vsn,
    pub text: String,
}

pub struct PhoenixFrame {
    mutator: Mutator,
}

impl Default for PhoenixFrame {
    fn default() -> Self {
        let seeds = seed_messages()
            .iter()
            .flat_map(|m| [m.encode(Vsn::V1), m.encode(Vsn::V2)])
            .collect();
        PhoenixFrame {
            mutator: Mutator::new(seeds, &["[", "]", "{", "}", "\"ref\"", "\"join_ref\"", "*"]),
        }
    }
}

impl Target for PhoenixFrame {
    type Input = Frame;

    fn name(&self) -> &'static str {
        "phoenix-frame"
    }

    fn generate(&self, rng: &mut SmallRng) -> Frame {
        Frame {
            vsn: if rng.random() { Vsn::V1 } else { Vsn::V2 },
            text: self.mutator.generate(rng),
        }
    }

    fn check(&self, frame: &Frame) -> Result<Verdict, String> {
        let message = match Message::decode(&frame.text, frame.vsn) {
            Ok(message) => message,
            Err(e) => return one_sentence(&e),
        };
        // What the server and the client answer with must encode again.
        message.encode(frame.vsn);
        message
            .reply(syncstorm_wire::phoenix::ReplyStatus::Ok, json!({}))
            .encode(frame.vsn);
        read_payload(&message)?;
        Ok(Verdict::Accepted)
    }
}

/// Reads the payload as the receiver of this event does.
fn read_payload(message: &Message) -> Result<(), String> {
    let payload = message.payload.clone();
    match message.event.as_str() {
        event::JOIN => {
            if let Ok(join) = serde_json::from_value::<JoinPayload>(payload) {
                for binding in &join.config.postgres_changes {
                    subscription_id(binding);
                    let Some(text) = &binding.filter else {
                        continue;
                    };
                    match Filter::parse(text) {
                        Ok(filter) => {
                            filter.eq_key();
                            filter.matches(&sample_record(&message.payload));
                        }
                        Err(e) => {
                            one_sentence(&e)?;
                        }
                    }
                }
            }
        }
        event::REPLY => {
            let _ = serde_json::from_value::<ReplyPayload>(payload);
        }
        event::POSTGRES_CHANGES => {
            let _ = serde_json::from_value::<ChangesPayload>(payload);
        }
        event::SYSTEM => {
            let _ = serde_json::from_value::<SystemPayload>(payload);
        }
        _ => {}
    }
    Ok(())
}

/// A record to match filters against: the frame's own payload fields, so a mutated value
/// meets a filter that names it.
fn sample_record(payload: &Value) -> serde_json::Map<String, Value> {
    let mut record = payload.as_object().cloned().unwrap_or_default();
    record.insert("user_id".into(), json!("u1"));
    record.insert("amount".into(), json!(2));
    record
}
