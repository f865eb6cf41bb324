//! Workers 2..N of a multi-process stack forward `/rest/v1/*` and `/auth/v1/*` to the parent
//! over loopback, the way Kong proxies to the one PostgREST and the one GoTrue, so the whole
//! stack has one REST pool and one Auth pool (one FIFO wait queue each), as Supabase does.
//!
//! Method, path, query, headers and body go through unchanged except the hop-by-hop headers
//! (RFC 9110 §7.6.1), and the peer address is appended to `X-Forwarded-For` as Kong does (the
//! token rate limiter keys on its first entry, so a client is still counted as itself).
//! Status, headers and body come back unchanged except the hop-by-hop headers. The `apikey`
//! gate runs before this, at the edge.
//!
//! Transport: up to [`HTTP1_CONNECTIONS`] HTTP/1.1 keep-alive connections per worker
//! (`StackConfig::forward_http1_connections`), the cheapest way, and when all of those are
//! busy — a deep queue for the pool — the overflow is multiplexed on one HTTP/2 connection
//! (h2c, prior knowledge, no stream limit). So no request ever waits in a worker (they all
//! wait in the pool's one FIFO queue), and the parent spends at most `HTTP1_CONNECTIONS + 1`
//! files per worker however deep the queue, keeping its 20,000-file limit for its own
//! websockets. Measured with `benches/token_check.rs` (stack CPU per token check, worker 1
//! straight ≈185 µs): forwarding adds ≈96 µs over HTTP/1.1 and ≈121 µs over HTTP/2.

mod h2;
mod held;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub(crate) use h2::serve_internal_h2;

/// HTTP/1.1 connections a worker may hold to the parent at once by default; requests beyond
/// go over HTTP/2.
pub const HTTP1_CONNECTIONS: usize = 128;
/// How long an idle keep-alive connection to the parent is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Headers that describe one connection, never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Why a request could not be forwarded (answered with Kong's 502).
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("cannot connect to the stack's parent process at {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("HTTP/2 to the stack's parent process failed: {0}")]
    Http2(#[from] hyper::Error),
    #[error("HTTP/1.1 to the stack's parent process failed: {0}")]
    Http1(#[from] hyper_util::client::legacy::Error),
    #[error("the path {0:?} cannot be forwarded")]
    BadPath(String),
}

/// The parent's private REST/Auth listeners (HTTP/1.1 and HTTP/2) and the connections to them.
pub struct Upstream {
    http1_base: String,
    http1: Client<HttpConnector, Body>,
    http1_slots: Arc<Semaphore>,
    h2: h2::H2Link,
}

impl Upstream {
    /// Forwards over at most `http1_connections` HTTP/1.1 connections to `http1`, the rest
    /// over one HTTP/2 connection to `h2`.
    pub fn new(http1: SocketAddr, h2: SocketAddr, http1_connections: usize) -> Upstream {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(http1_connections)
            .build(connector);
        Upstream {
            http1_base: format!("http://{http1}"),
            http1: client,
            http1_slots: Arc::new(Semaphore::new(http1_connections)),
            h2: h2::H2Link::new(h2),
        }
    }

    /// Sends over HTTP/1.1 if a connection slot is free (held until the body is read), else
    /// over HTTP/2.
    async fn send(&self, mut request: Request, path: &str) -> Result<Response, ForwardError> {
        let Ok(slot) = Arc::clone(&self.http1_slots).try_acquire_owned() else {
            *request.version_mut() = Version::HTTP_2;
            let response = self.h2.send(request, path).await?;
            return Ok(response.map(Body::new));
        };
        *request.version_mut() = Version::HTTP_11;
        *request.uri_mut() = absolute(&self.http1_base, path)?;
        let response = self.http1.request(request).await?;
        Ok(response.map(|body| Body::new(held::Held::new(body, slot))))
    }
}

/// `http://<parent listener><path and query>`.
fn absolute(base: &str, path: &str) -> Result<Uri, ForwardError> {
    format!("{base}{path}")
        .parse::<Uri>()
        .map_err(|_| ForwardError::BadPath(path.to_string()))
}

/// `/rest/v1/*` and `/auth/v1/*`, forwarded to `upstream`.
pub fn router(upstream: Arc<Upstream>) -> Router {
    Router::new()
        .route("/rest/v1/{*path}", any(forward))
        .route("/auth/v1/{*path}", any(forward))
        .with_state(upstream)
}

async fn forward(
    State(upstream): State<Arc<Upstream>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    strip_hop_by_hop(request.headers_mut());
    append_forwarded_for(request.headers_mut(), peer.ip());
    match upstream.send(request, &path).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            *response.version_mut() = Version::HTTP_11;
            response
        }
        Err(e) => {
            tracing::warn!("forwarding a request failed: {e}");
            bad_gateway()
        }
    }
}

/// Removes the standard hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(&named) {
        headers.remove(name);
    }
    // A websocket upgrade never reaches these routes; `Upgrade` is connection-level too.
    headers.remove(header::UPGRADE);
}

/// `X-Forwarded-For: <existing>, <peer>`, as Kong sends it.
fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let name = HeaderName::from_static("x-forwarded-for");
    let value = match headers.get(&name).and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// Kong's answer when the upstream cannot be reached.
fn bad_gateway() -> Response {
    let body = serde_json::json!({
        "message": "An invalid response was received from the upstream server"
    });
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `router` on a free loopback port (with peer addresses, as the stack does).
    async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn requests_beyond_the_http1_connections_go_over_one_http2_connection() {
        let all_in = Arc::new(tokio::sync::Barrier::new(3));
        // The parent's side answers with the HTTP version and connection (the worker's port)
        // each request came in on, once all three are in flight together.
        let parent = Router::new().route(
            "/rest/v1/{*path}",
            axum::routing::get(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| async move {
                    all_in.wait().await;
                    format!("{:?} {}", request.version(), peer.port())
                },
            ),
        );
        let http1 = serve(parent.clone()).await;
        let h2_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h2 = h2_listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(serve_internal_h2(h2_listener, parent, stop.clone()));
        let worker = serve(router(Arc::new(Upstream::new(http1, h2, 1)))).await;
        let http = reqwest::Client::new();
        let get = |i: usize| {
            let request = http.get(format!("http://{worker}/rest/v1/t{i}?select=a"));
            async move { request.send().await.unwrap().text().await.unwrap() }
        };
        let mut answers = futures_util::future::join_all((0..3).map(get)).await;
        answers.sort();
        let (versions, ports): (Vec<&str>, Vec<&str>) =
            answers.iter().filter_map(|a| a.split_once(' ')).unzip();
        assert_eq!(versions, ["HTTP/1.1", "HTTP/2.0", "HTTP/2.0"]);
        assert_eq!(
            ports[1], ports[2],
            "both overflow requests share one connection"
        );
        stop.cancel();
    }

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_headers_stay() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("prefer", "return=representation"),
            ("apikey", "k"),
        ] {
            headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["apikey", "prefer"]);
    }

    #[test]
    fn the_peer_is_appended_to_forwarded_for() {
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        let mut headers = HeaderMap::new();
        append_forwarded_for(&mut headers, peer);
        assert_eq!(headers["x-forwarded-for"], "127.0.0.9");
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.1.2.3"));
        append_forwarded_for(&mut headers, peer);
        assert_eq!(headers["x-forwarded-for"], "10.1.2.3, 127.0.0.9");
    }
}
