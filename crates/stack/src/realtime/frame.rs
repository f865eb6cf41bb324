//! Server-side frames. Vsn 1.0.0 server messages carry `topic, event, payload, ref` only (no
//! `join_ref`), like Phoenix's V1 serializer; change frames are assembled around the change's
//! pre-serialized `data` so one change costs one serialization, whatever the fan-out.

use serde_json::json;
use syncstorm_wire::phoenix::{Message, SystemPayload, Vsn, event};

/// Encodes a server message.
pub fn encode(msg: &Message, vsn: Vsn) -> String {
    match vsn {
        Vsn::V1 if msg.join_ref.is_some() => {
            msg.clone().with_refs(None, msg.msg_ref.clone()).encode(vsn)
        }
        _ => msg.encode(vsn),
    }
}

/// A `postgres_changes` push for one channel.
pub fn change_frame(vsn: Vsn, topic: &str, ids: &[u32], data_json: &str) -> String {
    let topic = serde_json::to_string(topic).unwrap_or_default();
    let ids = serde_json::to_string(ids).unwrap_or_default();
    let payload = format!("{{\"ids\":{ids},\"data\":{data_json}}}");
    match vsn {
        Vsn::V1 => format!(
            "{{\"topic\":{topic},\"event\":\"{}\",\"payload\":{payload},\"ref\":null}}",
            event::POSTGRES_CHANGES
        ),
        Vsn::V2 => format!(
            "[null,null,{topic},\"{}\",{payload}]",
            event::POSTGRES_CHANGES
        ),
    }
}

/// A `system` push (`extension` is `postgres_changes` or `system`).
pub fn system(topic: &str, extension: &str, ok: bool, message: &str) -> Message {
    let payload = SystemPayload {
        extension: extension.to_string(),
        status: if ok { "ok" } else { "error" }.to_string(),
        message: message.to_string(),
        channel: topic.strip_prefix("realtime:").unwrap_or(topic).to_string(),
    };
    Message::new(
        topic,
        event::SYSTEM,
        serde_json::to_value(payload).unwrap_or_default(),
    )
}

/// `phx_close` for a channel; `ref` is the join's ref, which is how clients tell channels apart.
pub fn close(topic: &str, join_ref: Option<&str>) -> Message {
    let join_ref = join_ref.map(str::to_string);
    Message::new(topic, event::CLOSE, json!({})).with_refs(join_ref.clone(), join_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_frames_decode_as_phoenix_messages() {
        for vsn in [Vsn::V1, Vsn::V2] {
            let text = change_frame(vsn, "realtime:a\"b", &[5, 9], r#"{"type":"INSERT"}"#);
            let m = Message::decode(&text, vsn).unwrap();
            assert_eq!(
                (m.topic.as_str(), m.event.as_str()),
                ("realtime:a\"b", "postgres_changes")
            );
            assert_eq!(
                m.payload,
                json!({"ids": [5, 9], "data": {"type": "INSERT"}})
            );
            assert_eq!(m.msg_ref, None);
        }
    }

    #[test]
    fn v1_server_frames_have_no_join_ref() {
        let m = close("realtime:x", Some("3"));
        assert!(!encode(&m, Vsn::V1).contains("join_ref"));
        assert!(encode(&m, Vsn::V2).starts_with("[\"3\",\"3\""));
    }

    /// A `system` push has exactly `extension`, `status`, `message` and `channel` (the topic
    /// without `realtime:`), as `push_system_message` in supabase/realtime v2.78.15's
    /// `lib/realtime_web/channels/realtime_channel.ex` pushes it; `ref` is null.
    #[test]
    fn system_members_match_realtime() {
        let m = system(
            "realtime:wallets",
            "postgres_changes",
            true,
            "Subscribed to PostgreSQL",
        );
        assert_eq!((m.event.as_str(), m.msg_ref), ("system", None));
        assert_eq!(
            m.payload,
            json!({"extension": "postgres_changes", "status": "ok",
                   "message": "Subscribed to PostgreSQL", "channel": "wallets"})
        );
        let m = system(
            "realtime:w",
            "system",
            false,
            "Too many messages per second",
        );
        assert_eq!(m.payload["status"], "error");
        assert_eq!(m.payload["extension"], "system");
    }
}
