//! Where a device's requests go and how its HTTP connections are made.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ClientError;
use crate::postgrest::ErrorKind;

/// A Supabase project as one device sees it: the base URL (`http://127.0.0.3:54321`, the
/// address this device should use) and the project's anon key. Cheap to clone: a swarm of
/// devices shares the strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Arc<str>,
    api_key: Arc<str>,
}

impl Endpoint {
    /// `base_url` without a trailing slash is kept as given; a trailing slash is dropped.
    pub fn new(base_url: &str, api_key: &str) -> Result<Endpoint, ClientError> {
        let parsed = url::Url::parse(base_url).map_err(|e| {
            ClientError::new(
                ErrorKind::Connect,
                format!("bad base URL {base_url:?}: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::new(
                ErrorKind::Connect,
                format!("base URL {base_url:?} must be http(s)://host[:port]"),
            ));
        }
        Ok(Endpoint {
            base: base_url.trim_end_matches('/').into(),
            api_key: api_key.into(),
        })
    }

    /// The same project reached through another address (the embedded stack listens on
    /// several loopback addresses so that 100k connections fit the ephemeral port range).
    pub fn with_ip(&self, ip: IpAddr) -> Endpoint {
        let mut url = url::Url::parse(&self.base).expect("validated in Endpoint::new");
        url.set_ip_host(ip).expect("http(s) URLs accept an IP host");
        Endpoint {
            base: url.as_str().trim_end_matches('/').into(),
            api_key: self.api_key.clone(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `base + path`, `path` starting with `/`.
    pub(crate) fn url(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.base.len() + path.len());
        s.push_str(&self.base);
        s.push_str(path);
        s
    }

    /// The realtime websocket URL: `ws(s)://host/realtime/v1/websocket?apikey=…&vsn=…`.
    pub fn realtime_url(&self, vsn: crate::phoenix::Vsn) -> String {
        let ws_base = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        format!(
            "{ws_base}/realtime/v1/websocket?apikey={}&vsn={}",
            self.api_key,
            vsn.as_str()
        )
    }
}

/// Whether each device owns its HTTP connections (100k phones are 100k TCP connections) or
/// devices share one pool (the cheap way to generate request load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionModel {
    #[default]
    PerDevice,
    Shared,
}

/// How HTTP connections are made and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Whole-request deadline (the app's fetch timeout).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Idle keep-alive connections kept per host (per device in the per-device model).
    pub max_idle_per_host: usize,
    /// Idle connections are closed after this long (a phone's OS does the same).
    pub idle_timeout: Duration,
    /// Source address to bind (spreads a remote target's connections over local addresses).
    pub local_address: Option<IpAddr>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_idle_per_host: 1,
            idle_timeout: Duration::from_secs(90),
            local_address: None,
        }
    }
}

/// Builds an HTTP client (a connection pool). HTTP/1.1 only, no proxy from the environment,
/// `TCP_NODELAY` like browsers.
pub fn http_client(options: &HttpOptions) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .pool_max_idle_per_host(options.max_idle_per_host)
        .pool_idle_timeout(options.idle_timeout);
    if let Some(ip) = options.local_address {
        builder = builder.local_address(ip);
    }
    builder
        .build()
        .map_err(|e| ClientError::new(ErrorKind::Connect, format!("cannot build HTTP client: {e}")))
}

/// Hands each device its HTTP client according to the connection model.
#[derive(Debug, Clone)]
pub struct HttpClients {
    model: ConnectionModel,
    options: HttpOptions,
    shared: reqwest::Client,
}

impl HttpClients {
    pub fn new(model: ConnectionModel, options: HttpOptions) -> Result<HttpClients, ClientError> {
        let shared = http_client(&options)?;
        Ok(HttpClients {
            model,
            options,
            shared,
        })
    }

    /// A client for one device: its own pool, or a handle on the shared one.
    pub fn for_device(&self) -> Result<reqwest::Client, ClientError> {
        match self.model {
            ConnectionModel::PerDevice => http_client(&self.options),
            ConnectionModel::Shared => Ok(self.shared.clone()),
        }
    }
}

/// Sends a request and reads its whole body: the status and the bytes, or the transport error
/// as a `ClientError` (the caller decodes non-2xx bodies in its service's error format).
pub(crate) async fn send_and_read(
    request: reqwest::RequestBuilder,
) -> Result<(u16, bytes::Bytes), ClientError> {
    let response = request
        .send()
        .await
        .map_err(|e| ClientError::from_reqwest(&e))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::from_reqwest(&e))?;
    Ok((status, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_validate_and_move_between_addresses() {
        let e = Endpoint::new("http://127.0.0.1:5432/", "key").unwrap();
        assert_eq!(e.base_url(), "http://127.0.0.1:5432");
        let moved = e.with_ip("127.0.0.7".parse().unwrap());
        assert_eq!(moved.url("/rest/v1/x"), "http://127.0.0.7:5432/rest/v1/x");
        assert_eq!(
            moved.realtime_url(crate::phoenix::Vsn::V2),
            "ws://127.0.0.7:5432/realtime/v1/websocket?apikey=key&vsn=2.0.0"
        );
        assert!(Endpoint::new("localhost:80", "k").is_err());
        assert!(Endpoint::new("not a url", "k").is_err());
    }
}
