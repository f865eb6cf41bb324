//! Setup as fast as the database allows, on a stack whose JWT secret we hold (the embedded
//! one): users go into `auth.users` by one `COPY`, and every device's stored session is minted
//! here — a row in `auth.sessions`, a live refresh token in `auth.refresh_tokens`, and an
//! access token signed with the stack's secret carrying the claims its Auth signs
//! (`syncstorm_stack::auth::sessions::token_response`). So a device's later refresh rotates
//! that token and its token checks verify that JWT exactly as after a real password sign-in.
//!
//! Every user of a run shares the run's password (`population::credentials`), so its bcrypt
//! hash is computed once, at the stack's cost; a password sign-in still verifies that hash at
//! the same cost. Everything goes in one transaction: a stopped setup leaves no user behind.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use rand::Rng;
use rand::distr::Alphanumeric;
use syncstorm_wire::client::Session;
use syncstorm_wire::jwt::{self, Claims};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::population::{SeedError, credentials};

/// Bytes sent per `COPY` message.
const CHUNK: usize = 1 << 20;
/// GoTrue's nil instance id.
const INSTANCE: &str = "00000000-0000-0000-0000-000000000000";
/// What GoTrue stores as an email user's app metadata.
const APP_METADATA: &str = r#"{"provider": "email", "providers": ["email"]}"#;

/// What minting needs from the stack: its secret, its access-token lifetime, its bcrypt cost.
#[derive(Clone)]
pub struct StackAuth {
    pub jwt_secret: String,
    pub jwt_expiry: Duration,
    pub bcrypt_cost: u32,
}

/// One fast setup: where, whose users, and how many devices each.
pub struct SqlSetup<'a> {
    pub database_url: &'a str,
    pub tag: &'a str,
    pub devices_per_user: u64,
    pub auth: &'a StackAuth,
    /// Mint a stored session per device (`device.session = "stored"`).
    pub sessions: bool,
}

/// Users' server ids in user order, and (when asked) every device's session in device order.
pub struct Created {
    pub ids: Vec<Uuid>,
    pub sessions: Vec<Session>,
}

/// The three `COPY` bodies and what they stand for.
struct Prepared {
    users: Vec<u8>,
    sessions: Vec<u8>,
    tokens: Vec<u8>,
    created: Created,
}

/// Creates `users` and their devices' sessions by SQL, in one transaction.
pub async fn create(
    setup: &SqlSetup<'_>,
    users: Range<u64>,
    cancel: &CancellationToken,
) -> Result<Created, SeedError> {
    let (mut client, connection) = tokio::select! {
        c = tokio_postgres::connect(setup.database_url, tokio_postgres::NoTls) => c.map_err(SeedError::Connect)?,
        _ = cancel.cancelled() => return Err(SeedError::Cancelled),
    };
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let plan = Plan::of(setup, users);
    let stop = cancel.clone();
    let building = tokio::task::spawn_blocking(move || plan.build(&stop));
    let prepared = tokio::select! {
        p = building => p.map_err(|e| SeedError::Build(e.to_string()))??,
        _ = cancel.cancelled() => return Err(SeedError::Cancelled),
    };
    let copied = copy_all(&mut client, &prepared);
    let outcome = tokio::select! {
        r = copied => r.map_err(SeedError::Users),
        _ = cancel.cancelled() => Err(SeedError::Cancelled),
    };
    drop(client);
    connection.abort();
    outcome.map(|()| prepared.created)
}

async fn copy_all(
    client: &mut tokio_postgres::Client,
    p: &Prepared,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    copy(
        &tx,
        "copy auth.users (instance_id, id, aud, role, email, encrypted_password, \
         email_confirmed_at, last_sign_in_at, raw_app_meta_data, raw_user_meta_data) from stdin",
        &p.users,
    )
    .await?;
    if !p.sessions.is_empty() {
        copy(
            &tx,
            "copy auth.sessions (id, user_id) from stdin",
            &p.sessions,
        )
        .await?;
        copy(
            &tx,
            "copy auth.refresh_tokens (token, user_id, revoked, session_id) from stdin",
            &p.tokens,
        )
        .await?;
    }
    tx.commit().await
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &str,
    body: &[u8],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in::<_, Bytes>(statement).await?;
    futures_util::pin_mut!(sink);
    for chunk in body.chunks(CHUNK) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await.map(|_| ())
}

/// What the blocking builder needs, owned.
struct Plan {
    tag: String,
    users: Range<u64>,
    per_user: u64,
    auth: StackAuth,
    sessions: bool,
}

impl Plan {
    fn of(setup: &SqlSetup<'_>, users: Range<u64>) -> Plan {
        Plan {
            tag: setup.tag.to_owned(),
            users,
            per_user: setup.devices_per_user.max(1),
            auth: setup.auth.clone(),
            sessions: setup.sessions,
        }
    }

    /// Hashes the run's password once, then writes every row in `COPY`'s text format (no
    /// value here contains a tab, newline or backslash: e-mails, ids, tokens, a bcrypt hash).
    /// Stops early (`Cancelled`) once `stop` is cancelled, so a stopped run's shutdown does not
    /// wait for this blocking task.
    fn build(self, stop: &CancellationToken) -> Result<Prepared, SeedError> {
        let password = credentials(&self.tag, 0).password;
        let hash = bcrypt::hash(password, self.auth.bcrypt_cost)
            .map_err(|e| SeedError::Build(format!("cannot hash the run's password: {e}")))?;
        let now = chrono::Utc::now();
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let (issued, lifetime) = (now.timestamp(), self.auth.jwt_expiry.as_secs() as i64);
        let count = (self.users.end - self.users.start) as usize;
        let mut p = Prepared {
            users: Vec::with_capacity(count * 220),
            sessions: Vec::new(),
            tokens: Vec::new(),
            created: Created {
                ids: Vec::with_capacity(count),
                sessions: Vec::new(),
            },
        };
        let mut rng = rand::rng();
        for index in self.users.clone() {
            if index % 1_024 == 0 && stop.is_cancelled() {
                return Err(SeedError::Cancelled);
            }
            let id = Uuid::new_v4();
            let email = credentials(&self.tag, index).email;
            p.users.extend_from_slice(
                format!(
                    "{INSTANCE}\t{id}\tauthenticated\tauthenticated\t{email}\t{hash}\t{at}\t{at}\t{APP_METADATA}\t{{}}\n"
                )
                .as_bytes(),
            );
            p.created.ids.push(id);
            if !self.sessions {
                continue;
            }
            for _ in 0..self.per_user {
                let session_id = Uuid::new_v4();
                let token: String = (&mut rng)
                    .sample_iter(Alphanumeric)
                    .take(32)
                    .map(char::from)
                    .collect();
                p.sessions
                    .extend_from_slice(format!("{session_id}\t{id}\n").as_bytes());
                p.tokens
                    .extend_from_slice(format!("{token}\t{id}\tf\t{session_id}\n").as_bytes());
                let claims = Claims {
                    sub: Some(id.to_string()),
                    role: "authenticated".into(),
                    aud: Some("authenticated".into()),
                    exp: issued + lifetime,
                    iat: issued,
                    iss: None,
                    email: Some(email.clone()),
                    session_id: Some(session_id.to_string()),
                };
                p.created.sessions.push(Session {
                    access_token: jwt::encode(&self.auth.jwt_secret, &claims),
                    refresh_token: token,
                    expires_at: issued + lifetime,
                    user_id: id.to_string(),
                });
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_sessions_come_in_user_then_device_order() {
        let plan = Plan {
            tag: "t-1-2.syncstorm.test".into(),
            users: 3..5,
            per_user: 2,
            auth: StackAuth {
                jwt_secret: "s".repeat(40),
                jwt_expiry: Duration::from_secs(3_600),
                bcrypt_cost: 4,
            },
            sessions: true,
        };
        let p = plan.build(&CancellationToken::new()).unwrap();
        let users = String::from_utf8(p.users).unwrap();
        assert_eq!(users.lines().count(), 2);
        assert!(
            users
                .lines()
                .next()
                .unwrap()
                .contains("\tu3@t-1-2.syncstorm.test\t")
        );
        assert_eq!(p.created.sessions.len(), 4);
        assert_eq!(String::from_utf8(p.tokens).unwrap().lines().count(), 4);
        let s = &p.created.sessions[2];
        assert_eq!(s.user_id, p.created.ids[1].to_string());
        let claims = jwt::decode(&"s".repeat(40), &s.access_token).unwrap();
        assert_eq!(claims.sub.as_deref(), Some(s.user_id.as_str()));
        assert_eq!(claims.role, "authenticated");
        assert_eq!(claims.exp, s.expires_at);
    }
}
