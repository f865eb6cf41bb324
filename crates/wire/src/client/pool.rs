//! Keep-alive connections: one [`Pool`] per device (per-device model) or per worker (shared
//! model), keyed by the server address, and one reaper task per [`Registry`] that closes
//! connections idle longer than the idle timeout (as a phone's OS does) — one task for all
//! the pools, not one per device.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::ClientError;
use super::http::{Endpoint, HttpOptions, Method, Request};
use super::http1::{self, Conn};
use crate::error::ErrorKind;

/// The pools made with one set of options, and their reaper.
#[derive(Debug)]
pub(crate) struct Registry {
    options: HttpOptions,
    pools: Mutex<Vec<Weak<Pool>>>,
    reaper: OnceLock<()>,
}

#[derive(Debug)]
pub(crate) struct Pool {
    registry: Arc<Registry>,
    idle: Mutex<Vec<Conn>>,
    /// The `https://` path, made on first use.
    reqwest: OnceLock<reqwest::Client>,
}

impl Registry {
    pub fn new(options: HttpOptions) -> Arc<Registry> {
        Arc::new(Registry {
            options,
            pools: Mutex::new(Vec::new()),
            reaper: OnceLock::new(),
        })
    }

    /// A new, empty pool, watched by the reaper.
    pub fn new_pool(self: &Arc<Registry>) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            registry: self.clone(),
            idle: Mutex::new(Vec::new()),
            reqwest: OnceLock::new(),
        });
        lock(&self.pools).push(Arc::downgrade(&pool));
        pool
    }

    /// Starts the reaper once, from inside a runtime (pools made outside one are reaped on
    /// checkout only, until a pool is made inside one).
    fn ensure_reaper(self: &Arc<Registry>) {
        if self.reaper.get().is_some() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.reaper.get_or_init(|| {
                runtime.spawn(reap(Arc::downgrade(self)));
            });
        }
    }

    /// Closes expired or server-closed idle connections and forgets dropped pools.
    fn sweep(&self) {
        let now = tokio::time::Instant::now();
        let idle_timeout = self.options.idle_timeout;
        let mut closed = Vec::new();
        lock(&self.pools).retain(|weak| {
            let Some(pool) = weak.upgrade() else {
                return false;
            };
            let mut idle = lock(&pool.idle);
            let mut i = 0;
            while i < idle.len() {
                if now.duration_since(idle[i].idle_since) >= idle_timeout || idle[i].looks_closed()
                {
                    closed.push(idle.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            true
        });
        drop(closed);
    }
}

/// The reaper: sweeps every half idle timeout while the registry lives.
async fn reap(registry: Weak<Registry>) {
    let period = match registry.upgrade() {
        Some(r) => {
            (r.options.idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        match registry.upgrade() {
            Some(r) => r.sweep(),
            None => return,
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-push; the list itself is intact.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    fn options(&self) -> &HttpOptions {
        &self.registry.options
    }

    /// The reqwest client for `https://` targets.
    pub fn reqwest(&self) -> Result<&reqwest::Client, ClientError> {
        if let Some(client) = self.reqwest.get() {
            return Ok(client);
        }
        let client = super::http::reqwest_client(self.options())?;
        Ok(self.reqwest.get_or_init(|| client))
    }

    /// One request within the request timeout, on an idle connection or a new one. A GET
    /// whose reused connection turns out closed before any answer goes once more on a new
    /// connection (the server closed it while idle).
    pub async fn exchange<R>(
        &self,
        endpoint: &Endpoint,
        request: &Request<'_>,
        read: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, ClientError> {
        let timeout = self.options().request_timeout;
        match tokio::time::timeout(timeout, self.exchange_untimed(endpoint, request, read)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::new(
                ErrorKind::Timeout,
                format!("no complete answer within {timeout:?}"),
            )),
        }
    }

    async fn exchange_untimed<R>(
        &self,
        endpoint: &Endpoint,
        request: &Request<'_>,
        read: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, ClientError> {
        let addr = endpoint.socket_addr().await?;
        let mut may_retry = request.method == Method::Get;
        loop {
            let (mut conn, reused) = match self.checkout(addr) {
                Some(conn) => (conn, true),
                None => (http1::connect(addr, self.options()).await?, false),
            };
            match conn.round_trip(endpoint, request).await {
                Ok(answer) => {
                    let result = read(answer.status, conn.body(&answer));
                    if answer.reusable {
                        self.checkin(conn);
                    }
                    return Ok(result);
                }
                Err(failure) if failure.early && reused && may_retry => may_retry = false,
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// The most recently used live idle connection to `addr`, if any.
    fn checkout(&self, addr: std::net::SocketAddr) -> Option<Conn> {
        let idle_timeout = self.options().idle_timeout;
        loop {
            let conn = {
                let mut idle = lock(&self.idle);
                let i = idle.iter().rposition(|c| c.addr == addr)?;
                idle.swap_remove(i)
            };
            if conn.idle_since.elapsed() < idle_timeout && !conn.looks_closed() {
                return Some(conn);
            }
        }
    }

    /// Keeps the connection for the next request, unless this host already has its share of
    /// idle connections.
    fn checkin(&self, mut conn: Conn) {
        let max = self.options().max_idle_per_host;
        conn.trim();
        conn.idle_since = tokio::time::Instant::now();
        let mut idle = lock(&self.idle);
        let full = idle.len() >= max && idle.iter().filter(|c| c.addr == conn.addr).count() >= max;
        if !full {
            idle.push(conn);
            drop(idle);
            self.registry.ensure_reaper();
        }
    }
}
