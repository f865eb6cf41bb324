//! Where a device's requests go and how its HTTP connections are made.
//!
//! `http://` targets (the embedded stack, and every load test on loopback) go through our own
//! small HTTP/1.1 client ([`super::http1`], [`super::pool`]): requests are written straight
//! into the connection's buffer from pre-split pieces, answers are decoded from that buffer,
//! and no task or channel sits between a device and its socket. That is what lets one
//! generator thread keep up with `wrk` and keeps an idle device's connection near 1 KiB.
//! `https://` targets (hosted Supabase) go through `reqwest` with rustls and Mozilla's roots;
//! their websockets through [`super::transport`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ClientError;
use super::pool::{Pool, Registry};
use crate::error::ErrorKind;

/// A Supabase project as one device sees it: the base URL (`http://127.0.0.3:54321`, the
/// address this device should use) and the project's anon key. Cheap to clone (one `Arc`):
/// a swarm of devices shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Arc<EndpointParts>);

#[derive(Debug, PartialEq, Eq)]
struct EndpointParts {
    base: String,
    api_key: String,
    https: bool,
    /// `host[:port]` as the `Host` header carries it.
    authority: String,
    /// The base URL's path, without a trailing slash (empty for a project URL).
    prefix: String,
    host: String,
    port: u16,
    /// The socket address when the host is an IP literal (no lookup per connection).
    addr: Option<SocketAddr>,
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
        Ok(Endpoint::from_parsed(
            &parsed,
            base_url.trim_end_matches('/'),
            api_key,
        ))
    }

    fn from_parsed(parsed: &url::Url, base: &str, api_key: &str) -> Endpoint {
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => String::new(),
        };
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => String::new(),
        };
        let addr = host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        let prefix = parsed.path().trim_end_matches('/').to_owned();
        Endpoint(Arc::new(EndpointParts {
            base: base.to_owned(),
            api_key: api_key.to_owned(),
            https: parsed.scheme() == "https",
            authority,
            prefix,
            host,
            port,
            addr,
        }))
    }

    /// The same project reached through another address (the embedded stack listens on
    /// several loopback addresses so that 100k connections fit the ephemeral port range).
    pub fn with_ip(&self, ip: IpAddr) -> Endpoint {
        let mut url = url::Url::parse(&self.0.base).expect("validated in Endpoint::new");
        url.set_ip_host(ip).expect("http(s) URLs accept an IP host");
        Endpoint::from_parsed(&url, url.as_str().trim_end_matches('/'), &self.0.api_key)
    }

    pub fn base_url(&self) -> &str {
        &self.0.base
    }

    pub fn api_key(&self) -> &str {
        &self.0.api_key
    }

    pub(crate) fn is_https(&self) -> bool {
        self.0.https
    }

    /// The host name (or literal address) of the base URL.
    pub(crate) fn host(&self) -> &str {
        &self.0.host
    }

    pub(crate) fn authority(&self) -> &str {
        &self.0.authority
    }

    /// The base URL's path (requests' paths are appended to it).
    pub(crate) fn path_prefix(&self) -> &str {
        &self.0.prefix
    }

    /// Where to connect: the literal address, or the first one the resolver gives.
    pub(crate) async fn socket_addr(&self) -> Result<SocketAddr, ClientError> {
        if let Some(addr) = self.0.addr {
            return Ok(addr);
        }
        let host = self.0.host.as_str();
        tokio::net::lookup_host((host, self.0.port))
            .await
            .map_err(|e| ClientError::from_io(&e))?
            .next()
            .ok_or_else(|| ClientError::new(ErrorKind::Connect, format!("{host} has no address")))
    }

    /// `base + path`, `path` starting with `/`.
    pub(crate) fn url(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.0.base.len() + path.len());
        s.push_str(&self.0.base);
        s.push_str(path);
        s
    }

    /// The realtime websocket URL: `ws(s)://host/realtime/v1/websocket?apikey=…&vsn=…`.
    pub fn realtime_url(&self, vsn: crate::phoenix::Vsn) -> String {
        let base = &self.0.base;
        let ws_base = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", base.trim_start_matches("http://"))
        };
        format!(
            "{ws_base}/realtime/v1/websocket?apikey={}&vsn={}",
            self.0.api_key,
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

/// A reqwest client with the same settings (the `https://` path): HTTP/1.1 only, no proxy
/// from the environment, `TCP_NODELAY` like browsers.
pub(crate) fn reqwest_client(options: &HttpOptions) -> Result<reqwest::Client, ClientError> {
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

/// One device's (or one shared) HTTP connection pool. Cheap to clone: clones share the pool.
/// Built by [`http_client`] / [`HttpClients`]; a `reqwest::Client` converts into one that
/// sends everything through reqwest (for callers that already have one).
#[derive(Debug, Clone)]
pub struct HttpClient(Via);

#[derive(Debug, Clone)]
enum Via {
    Pool(Arc<Pool>),
    Reqwest(reqwest::Client),
}

impl From<reqwest::Client> for HttpClient {
    fn from(client: reqwest::Client) -> HttpClient {
        HttpClient(Via::Reqwest(client))
    }
}

/// Builds a standalone HTTP client (its own pool, its own idle reaper).
pub fn http_client(options: &HttpOptions) -> Result<HttpClient, ClientError> {
    let registry = Registry::new(options.clone());
    Ok(HttpClient(Via::Pool(registry.new_pool())))
}

/// Hands each device its HTTP client according to the connection model.
#[derive(Debug, Clone)]
pub struct HttpClients {
    model: ConnectionModel,
    registry: Arc<Registry>,
    shared: Arc<Pool>,
}

impl HttpClients {
    pub fn new(model: ConnectionModel, options: HttpOptions) -> Result<HttpClients, ClientError> {
        let registry = Registry::new(options);
        let shared = registry.new_pool();
        Ok(HttpClients {
            model,
            registry,
            shared,
        })
    }

    /// A client for one device: its own pool, or a handle on the shared one.
    pub fn for_device(&self) -> Result<HttpClient, ClientError> {
        Ok(HttpClient(Via::Pool(match self.model {
            ConnectionModel::PerDevice => self.registry.new_pool(),
            ConnectionModel::Shared => self.shared.clone(),
        })))
    }
}

/// The request methods the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

/// One request, borrowed from its caller: the path and query come in pieces that are written
/// one after the other (no URL string is built per request).
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub method: Method,
    /// Path and query, starting with `/`, as pieces to concatenate.
    pub path: &'a [&'a str],
    /// `Authorization: Bearer <token>`.
    pub bearer: Option<&'a str>,
    /// PostgREST's `Prefer` header.
    pub prefer: Option<&'static str>,
    /// A JSON body (`Content-Type: application/json`).
    pub json: Option<Vec<u8>>,
}

impl HttpClient {
    /// Sends `request` (with the project's `apikey`) and hands the status and the whole body
    /// to `read`; transport failures are `ClientError`s (the caller decodes non-2xx bodies in
    /// its service's error format).
    pub(crate) async fn exchange<R>(
        &self,
        endpoint: &Endpoint,
        request: Request<'_>,
        read: impl FnOnce(u16, &[u8]) -> R,
    ) -> Result<R, ClientError> {
        match &self.0 {
            Via::Pool(pool) if !endpoint.is_https() => {
                pool.exchange(endpoint, &request, read).await
            }
            // Boxed: reqwest's futures are large and this path is not the hot one.
            Via::Pool(pool) => {
                Box::pin(via_reqwest(pool.reqwest()?, endpoint, request, read)).await
            }
            Via::Reqwest(client) => Box::pin(via_reqwest(client, endpoint, request, read)).await,
        }
    }
}

async fn via_reqwest<R>(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    request: Request<'_>,
    read: impl FnOnce(u16, &[u8]) -> R,
) -> Result<R, ClientError> {
    let url = endpoint.url(&request.path.concat());
    let mut builder = match request.method {
        Method::Get => client.get(url),
        Method::Post => client.post(url),
        Method::Patch => client.patch(url),
        Method::Delete => client.delete(url),
    }
    .header("apikey", endpoint.api_key());
    if let Some(token) = request.bearer {
        builder = builder.bearer_auth(token);
    }
    if let Some(prefer) = request.prefer {
        builder = builder.header("Prefer", prefer);
    }
    if let Some(json) = request.json {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json);
    }
    let response = builder
        .send()
        .await
        .map_err(|e| ClientError::from_reqwest(&e))?;
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::from_reqwest(&e))?;
    Ok(read(status, &bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_validate_and_move_between_addresses() {
        let e = Endpoint::new("http://127.0.0.1:5432/", "key").unwrap();
        assert_eq!(e.base_url(), "http://127.0.0.1:5432");
        assert_eq!((e.authority(), e.path_prefix()), ("127.0.0.1:5432", ""));
        let prefixed = Endpoint::new("http://127.0.0.1:5432/project/", "key").unwrap();
        assert_eq!(prefixed.path_prefix(), "/project");
        let moved = e.with_ip("127.0.0.7".parse().unwrap());
        assert_eq!(moved.url("/rest/v1/x"), "http://127.0.0.7:5432/rest/v1/x");
        assert_eq!(moved.0.addr, Some("127.0.0.7:5432".parse().unwrap()));
        assert_eq!(
            moved.realtime_url(crate::phoenix::Vsn::V2),
            "ws://127.0.0.7:5432/realtime/v1/websocket?apikey=key&vsn=2.0.0"
        );
        let named = Endpoint::new("https://abc.supabase.co", "k").unwrap();
        assert!(named.is_https() && named.0.addr.is_none());
        assert_eq!((named.authority(), named.0.port), ("abc.supabase.co", 443));
        assert!(Endpoint::new("localhost:80", "k").is_err());
        assert!(Endpoint::new("not a url", "k").is_err());
    }
}
