//! The sessions phones already hold when the run starts.
//!
//! A FinOS phone that has been used before keeps its GoTrue session on disk: opening the app
//! refreshes it when it is due but never signs in. Starting every simulated device without a
//! session would add one password sign-in per device to the first open — for risk 1's storm,
//! 100,000 bcrypt sign-ins that real phones never send. So on a real project setup signs every
//! device in once, paced and unmeasured (against the run's request ceiling like every other
//! request), and the devices start with those sessions; on the embedded stack they are minted
//! directly instead (`crate::fast_setup`). `device.session = "sign_in"` skips this and models
//! fresh installs instead.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use syncstorm_wire::client::{AuthClient, ClientError, Endpoint, Session};
use tokio_util::sync::CancellationToken;

use crate::population::credentials;
use crate::target::RequestLimiter;

/// Setup sign-ins in flight at once.
pub const SIGN_IN_CONCURRENCY: usize = 32;
/// Attempts per device before setup gives up on it.
const ATTEMPTS: u32 = 5;
/// Pause between attempts (a busy auth pool answers with timeouts, not refusals).
const RETRY_AFTER: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("device {device} could not sign in during setup after {ATTEMPTS} attempts: {source}")]
    SignIn {
        device: u64,
        #[source]
        source: ClientError,
    },
    #[error("the setup sign-ins were stopped")]
    Cancelled,
    #[error("cannot build the HTTP client for the setup sign-ins: {0}")]
    Client(String),
}

/// What setup needs to sign devices in.
pub struct SignInSetup<'a> {
    pub endpoint: &'a Endpoint,
    pub tag: &'a str,
    pub devices_per_user: u64,
    pub max_request_rate: Option<f64>,
}

/// Signs in every device of `users`, in device order (`users.start * devices_per_user` first).
pub async fn sign_in_devices(
    setup: &SignInSetup<'_>,
    users: Range<u64>,
    cancel: &CancellationToken,
) -> Result<Vec<Session>, SessionError> {
    let per_user = setup.devices_per_user.max(1);
    let limiter = setup
        .max_request_rate
        .and_then(|rate| RequestLimiter::new(rate, (rate / 10.0).floor() as u32))
        .map(Arc::new);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| SessionError::Client(e.to_string()))?;
    let auth = Arc::new(AuthClient::new(http, setup.endpoint.clone()));
    let tag: Arc<str> = Arc::from(setup.tag);
    let devices = users.start * per_user..users.end * per_user;
    let sign_ins = stream::iter(devices)
        .map(|device| {
            let (auth, tag, limiter) = (auth.clone(), tag.clone(), limiter.clone());
            async move {
                let c = credentials(&tag, device / per_user);
                sign_in_with_retries(&auth, &c.email, &c.password, limiter.as_deref())
                    .await
                    .map_err(|source| SessionError::SignIn { device, source })
            }
        })
        .buffered(SIGN_IN_CONCURRENCY)
        .collect::<Vec<_>>();
    let sessions = tokio::select! {
        sessions = sign_ins => sessions,
        _ = cancel.cancelled() => return Err(SessionError::Cancelled),
    };
    sessions.into_iter().collect()
}

async fn sign_in_with_retries(
    auth: &AuthClient,
    email: &str,
    password: &str,
    limiter: Option<&RequestLimiter>,
) -> Result<Session, ClientError> {
    let mut attempt = 1;
    loop {
        if let Some(limiter) = limiter {
            limiter.acquire().await;
        }
        match auth.sign_in_with_password(email, password).await {
            Ok(session) => return Ok(session),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(_) => attempt += 1,
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}
