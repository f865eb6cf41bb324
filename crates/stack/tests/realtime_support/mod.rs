//! Shared by the realtime tests: a Realtime service on a free port over the shared test
//! cluster, users with tokens, and a small raw Phoenix client (both serializer versions).
#![allow(dead_code, unused_macros)]

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use syncstorm_plans::RealtimeCaps;
use syncstorm_stack::postgres::shared_test_cluster;
use syncstorm_stack::realtime::{Decoder, Realtime, RealtimeConfig};
use syncstorm_wire::phoenix::{Message, Vsn};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

pub const SECRET: &str = "realtime-test-secret-0123456789-0123456789";

pub const ROOMY: RealtimeCaps = RealtimeCaps {
    max_connections: 1000,
    joins_per_second: 1000,
    events_per_second: 100_000,
    channels_per_client: 100,
};

pub struct Server {
    pub realtime: Realtime,
    pub addr: std::net::SocketAddr,
    pub db: tokio_postgres::Client,
    serve: tokio::task::JoinHandle<()>,
}

pub async fn db() -> tokio_postgres::Client {
    let url = shared_test_cluster().superuser_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

pub fn config(caps: RealtimeCaps) -> RealtimeConfig {
    RealtimeConfig::new(shared_test_cluster().superuser_url(), SECRET, caps)
}

/// [`config`] capturing with one decoder rather than the preferred one.
pub fn config_with(caps: RealtimeCaps, decoder: Decoder) -> RealtimeConfig {
    let mut c = config(caps);
    c.decoder = Some(decoder);
    c
}

/// Whether the test cluster's server can load wal2json (a package of its own). When it
/// cannot, says so on stderr: the caller skips its wal2json variant.
pub async fn skip_without_wal2json() -> bool {
    let probe = format!("syncstorm_probe_{:08x}", rand::random::<u32>());
    let sql = "select pg_create_logical_replication_slot($1, 'wal2json', true)";
    // The temporary slot goes with this connection.
    let missing = match db().await.execute(sql, &[&probe]).await {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::UNDEFINED_FILE),
                "{e}"
            );
            true
        }
    };
    if missing {
        eprintln!(
            "SKIPPED: wal2json is not installed for this PostgreSQL \
             (apt-get install postgresql-15-wal2json); the pgoutput variant covers capture here"
        );
    }
    missing
}

/// Declares `NAME::wal2json` and `NAME::pgoutput` for each `async fn NAME(Decoder)`, so
/// every capture test runs against both decoders; the wal2json one skips, saying why, where
/// the plugin is not installed.
macro_rules! for_each_decoder {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            use syncstorm_stack::realtime::Decoder;

            #[tokio::test]
            async fn wal2json() {
                if crate::realtime_support::skip_without_wal2json().await {
                    return;
                }
                super::$name(Decoder::Wal2json).await
            }

            #[tokio::test]
            async fn pgoutput() {
                super::$name(Decoder::Pgoutput).await
            }
        }
    )* };
}

impl Server {
    pub async fn start(config: RealtimeConfig) -> Server {
        let realtime = Realtime::start(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = realtime.router();
        let serve = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server {
            realtime,
            addr,
            db: db().await,
            serve,
        }
    }

    pub fn url(&self, key: &str, vsn: Vsn) -> String {
        format!(
            "ws://{}/realtime/v1/websocket?apikey={key}&vsn={}",
            self.addr,
            vsn.as_str()
        )
    }

    pub async fn metric(&self, name: &str) -> u64 {
        self.metric_f64(name).await as u64
    }

    pub async fn metric_f64(&self, name: &str) -> f64 {
        let body = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!("syncstorm_realtime_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    pub async fn stop(self) {
        self.serve.abort();
        self.realtime.stop().await;
    }
}

pub fn token(role: &str, sub: Option<Uuid>, exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"role": role, "exp": now + exp_in, "iat": now, "aud": "authenticated"});
    if let Some(sub) = sub {
        claims["sub"] = json!(sub.to_string());
    }
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

pub fn anon_key() -> String {
    token("anon", None, 3600)
}

/// A fresh user in `auth.users`, with an access token.
pub async fn user(db: &tokio_postgres::Client) -> (Uuid, String) {
    let id = Uuid::new_v4();
    db.execute(
        "insert into auth.users (id, email, role, aud) values ($1, $2, 'authenticated', 'authenticated')",
        &[&id, &format!("{id}@example.com")],
    )
    .await
    .unwrap();
    (id, token("authenticated", Some(id), 3600))
}

/// Inserts a wallet for `user` (its trigger raises the user's sync token).
pub async fn wallet(db: &tokio_postgres::Client, user: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    db.execute(
        "insert into public.wallets (id, user_id, name) values ($1, $2, 'w')",
        &[&id, &user],
    )
    .await
    .unwrap();
    id
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub vsn: Vsn,
    next_ref: u64,
}

/// Connects; `Err(status)` when the upgrade is refused.
pub async fn connect(url: &str, vsn: Vsn) -> Result<Client, u16> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => Ok(Client {
            ws,
            vsn,
            next_ref: 0,
        }),
        Err(tungstenite::Error::Http(resp)) => {
            let empty = resp.body().as_ref().is_none_or(|b| b.is_empty());
            assert!(
                resp.status() != 403 || empty,
                "Realtime's 403 has an empty body"
            );
            Err(resp.status().as_u16())
        }
        Err(e) => panic!("connect failed: {e}"),
    }
}

pub fn binding(event: &str, table: &str, filter: Option<&str>) -> Value {
    let mut b = json!({"event": event, "schema": "public", "table": table});
    if let Some(f) = filter {
        b["filter"] = json!(f);
    }
    b
}

impl Client {
    pub async fn push(&mut self, topic: &str, event: &str, payload: Value) -> String {
        self.next_ref += 1;
        let r = self.next_ref.to_string();
        let msg = Message::new(topic, event, payload).with_refs(Some(r.clone()), Some(r.clone()));
        self.ws
            .send(WsMessage::Text(msg.encode(self.vsn).into()))
            .await
            .unwrap();
        r
    }

    pub async fn join(
        &mut self,
        topic: &str,
        bindings: Vec<Value>,
        access_token: Option<&str>,
    ) -> String {
        let mut payload = json!({"config": {"broadcast": {"ack": false, "self": false},
            "presence": {"enabled": false, "key": ""}, "postgres_changes": bindings, "private": false}});
        if let Some(t) = access_token {
            payload["access_token"] = json!(t);
        }
        self.push(topic, "phx_join", payload).await
    }

    /// The next message, or `None` when the socket closed. Panics after `within`.
    pub async fn recv_within(&mut self, within: Duration) -> Option<Message> {
        let next = tokio::time::timeout(within, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(WsMessage::Text(t))) => {
                        return Some(Message::decode(t.as_str(), self.vsn).unwrap());
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        });
        next.await.expect("no frame within the time limit")
    }

    pub async fn recv(&mut self) -> Message {
        self.recv_within(Duration::from_secs(5))
            .await
            .expect("socket closed")
    }

    /// Joins and expects the ok reply, then the "Subscribed to PostgreSQL" system message.
    pub async fn subscribe(
        &mut self,
        topic: &str,
        bindings: Vec<Value>,
        access_token: Option<&str>,
    ) -> Vec<u64> {
        let n = bindings.len();
        let r = self.join(topic, bindings, access_token).await;
        let reply = self.recv().await;
        assert_eq!(
            (reply.event.as_str(), reply.msg_ref.as_deref()),
            ("phx_reply", Some(r.as_str()))
        );
        assert_eq!(reply.payload["status"], "ok", "{:?}", reply.payload);
        let ids: Vec<u64> = (0..n)
            .map(|i| {
                reply.payload["response"]["postgres_changes"][i]["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        if n > 0 {
            let system = self.recv().await;
            assert_eq!(system.event, "system");
            assert_eq!(
                system.payload["message"], "Subscribed to PostgreSQL",
                "{:?}",
                system.payload
            );
        }
        ids
    }

    /// The next `postgres_changes` event, skipping nothing else silently.
    pub async fn change(&mut self) -> Message {
        let m = self
            .recv_within(Duration::from_secs(1))
            .await
            .expect("socket closed");
        assert_eq!(m.event, "postgres_changes", "{m:?}");
        m
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
