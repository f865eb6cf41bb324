//! The device's GoTrue session: the first sign-in (retried until it succeeds or the run ends),
//! and refreshes before expiry with the rotating refresh token.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use syncstorm_wire::client::{AuthClient, ClientError, Session};
use syncstorm_wire::error::ErrorKind;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Credentials;
use super::metrics::{Metrics, op};
use super::network::Clock;

/// A sign-in or refresh in flight, with the operation name it is recorded under.
pub(crate) type AuthPending = Pin<Box<dyn Future<Output = AuthDone> + Send>>;

pub(crate) struct AuthDone {
    pub op: &'static str,
    pub took: Duration,
    pub result: Result<Session, ClientError>,
}

/// Signs in, waiting for the network and retrying every `retry` until it works.
/// `None` when the run is cancelled first.
pub(crate) async fn sign_in<M: Metrics>(
    auth: &AuthClient,
    credentials: &Credentials,
    metrics: &M,
    retry: Duration,
    online: &mut watch::Receiver<bool>,
    cancel: &CancellationToken,
) -> Option<Session> {
    loop {
        tokio::select! {
            _ = online.wait_for(|up| *up) => {}
            _ = cancel.cancelled() => return None,
        }
        // Boxed: the request's future lives only while signing in, and inline it would
        // size the device's task for its whole life.
        let done = tokio::select! {
            done = Box::pin(password_grant(auth.clone(), credentials.clone())) => done,
            _ = cancel.cancelled() => return None,
        };
        match done.result {
            Ok(session) => {
                metrics.latency(op::SIGN_IN, done.took);
                return Some(session);
            }
            Err(e) => metrics.error(op::SIGN_IN, e.kind),
        }
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = cancel.cancelled() => return None,
        }
    }
}

async fn password_grant(auth: AuthClient, credentials: Credentials) -> AuthDone {
    let started = Instant::now();
    let result = auth
        .sign_in_with_password(&credentials.email, &credentials.password)
        .await;
    AuthDone {
        op: op::SIGN_IN,
        took: started.elapsed(),
        result,
    }
}

/// Refreshes the session; if the refresh token was refused (used up, revoked), signs in
/// with the password again, as the app would send the user back to its login.
pub(crate) fn renew(auth: AuthClient, session: Session, credentials: Credentials) -> AuthPending {
    Box::pin(async move {
        let started = Instant::now();
        let result = auth.refresh(&session).await;
        match result {
            Err(e) if e.kind == ErrorKind::Unauthorized => password_grant(auth, credentials).await,
            result => AuthDone {
                op: op::TOKEN_REFRESH,
                took: started.elapsed(),
                result,
            },
        }
    })
}

/// A reopened app's stored session, refreshed first when it is due (as supabase-js does on
/// start). Offline it is kept as it is: the loop refreshes it once the network is back.
/// `None` when the refresh failed and the device must sign in.
pub(crate) async fn refresh_stored<M: Metrics>(
    stored: Session,
    auth: &AuthClient,
    credentials: &Credentials,
    metrics: &M,
    clock: &Clock,
    margin: Duration,
    online: &watch::Receiver<bool>,
) -> Option<Session> {
    if refresh_due_ms(&stored, clock, margin) > clock.now_ms() || !*online.borrow() {
        return Some(stored);
    }
    let done = renew(auth.clone(), stored, credentials.clone()).await;
    match done.result {
        Ok(fresh) => {
            metrics.latency(done.op, done.took);
            Some(fresh)
        }
        Err(e) => {
            metrics.error(done.op, e.kind);
            None
        }
    }
}

/// When to refresh: `margin` before expiry, but never later than halfway through the token's
/// remaining life (so a short test expiry is still refreshed in time).
pub(crate) fn refresh_due_ms(session: &Session, clock: &Clock, margin: Duration) -> i64 {
    let now_ms = clock.now_ms();
    let expires_ms = session.expires_at.saturating_mul(1000);
    let remaining = (expires_ms - now_ms).max(0);
    let margin_ms = (margin.as_millis() as i64).min(remaining / 2);
    expires_ms - margin_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> Session {
        Session {
            access_token: String::new(),
            refresh_token: String::new(),
            expires_at,
            user_id: String::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_comes_before_expiry_even_for_short_tokens() {
        let clock = Clock::starting_at(1_000_000);
        let margin = Duration::from_secs(60);
        // One hour left: refresh a minute before.
        assert_eq!(
            refresh_due_ms(&session(1_000 + 3_600), &clock, margin),
            4_600_000 - 60_000
        );
        // Ten seconds left: refresh halfway.
        assert_eq!(refresh_due_ms(&session(1_010), &clock, margin), 1_005_000);
        // Already expired: now.
        assert_eq!(refresh_due_ms(&session(900), &clock, margin), 900_000);
    }
}
